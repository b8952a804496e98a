//! The data of every [`Fact`]: one [`FactInfo`] per fact, in declaration order.
//!
//! Sources: the Debian source trees of 5.10.262, 6.1.192, 6.12.117, 7.2.13 and 7.3.4 (the
//! before/after cites), the mainline commits named, and the real kernels probed under QEMU
//! (`reports/`): 5.10.262, 6.1.192, 6.12.117, 6.16.12, 6.17.13, 6.18.15, 7.2.13, 7.3.4.

use crate::facts::{Area, Fact, FactInfo};
use crate::version::KernelVersion as V;

const fn v(major: u16, minor: u16) -> V {
    V::release(major, minor)
}

/// Every fact, in [`Fact`] declaration order.
pub static FACTS: [FactInfo; Fact::ALL.len()] = [
    FactInfo {
        fact: Fact::TtmPfnmap,
        summary: "TTM maps buffer objects VM_PFNMAP|VM_IO with vmf_insert_pfn_prot() and refuses \
                  MAP_PRIVATE (was VM_MIXEDMAP|VM_IO, vmf_insert_mixed_prot(), CoW allowed)",
        area: Area::Drm,
        since: v(5, 11),
        commit: Some("f91142c62161 drm/ttm: nuke VM_MIXEDMAP on BO mappings v3"),
        backports: &[],
        before: "drivers/gpu/drm/ttm/ttm_bo_vm.c:ttm_bo_mmap_vma_setup",
        after: "drivers/gpu/drm/ttm/ttm_bo_vm.c:ttm_bo_mmap_obj",
        evidence: "5.10.262 tree VM_MIXEDMAP, 6.1.192 tree VM_PFNMAP; mainline commit",
    },
    FactInfo {
        fact: Fact::DrmShmemPfnmap,
        summary: "drm_gem_shmem maps VM_PFNMAP with vmf_insert_pfn() (was VM_MIXEDMAP and \
                  vmf_insert_page(): normal, refcounted PTEs GUP can take)",
        area: Area::Drm,
        since: v(5, 14),
        commit: Some("8b93d1d7dbd5 drm/shmem-helper: Switch to vmf_insert_pfn"),
        backports: &[],
        before: "drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_mmap",
        after: "drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_mmap",
        evidence: "5.10.262 tree and real kernel VM_MIXEDMAP, 6.1.192 VM_PFNMAP; mainline commit",
    },
    FactInfo {
        fact: Fact::VgemShmemHelper,
        summary: "vgem uses the GEM shmem helper (was vgem_prime_mmap: the shmem file's own \
                  mmap, a plain shmem VMA)",
        area: Area::Drm,
        since: v(5, 14),
        commit: Some("45d9c8dde4cd drm/vgem: use shmem helpers"),
        backports: &[],
        before: "drivers/gpu/drm/vgem/vgem_drv.c:vgem_prime_mmap",
        after: "drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_mmap",
        evidence: "5.10.262 tree and real kernel (shmem VMA, io_uring ok), 6.1.192 shmem helper",
    },
    FactInfo {
        fact: Fact::Vb2DmaSgDontexpand,
        summary: "videobuf2-dma-sg sets VM_DONTEXPAND|VM_DONTDUMP on its mmap",
        area: Area::Media,
        since: v(5, 15),
        commit: None,
        backports: &[],
        before: "drivers/media/common/videobuf2/videobuf2-dma-sg.c:vb2_dma_sg_mmap",
        after: "drivers/media/common/videobuf2/videobuf2-dma-sg.c:vb2_dma_sg_mmap",
        evidence: "5.10.262 tree without, 6.1.192 tree with",
    },
    FactInfo {
        fact: Fact::NoVmDenywrite,
        summary: "VM_DENYWRITE is removed, and with it the smaps `dw` mnemonic",
        area: Area::Proc,
        since: v(5, 15),
        commit: Some("8d0920bde5eb mm: remove VM_DENYWRITE"),
        backports: &[],
        before: "fs/proc/task_mmu.c:show_smap_vma_flags",
        after: "fs/proc/task_mmu.c:show_smap_vma_flags",
        evidence: "5.10.262 tree has `dw`, 6.1.192 not; mainline commit",
    },
    FactInfo {
        fact: Fact::SmapsUffdMinor,
        summary: "VM_UFFD_MINOR and its smaps mnemonic `ui`",
        area: Area::Proc,
        since: v(5, 13),
        commit: Some("7677f7fd8be7 userfaultfd: add minor fault registration mode"),
        backports: &[],
        before: "fs/proc/task_mmu.c:show_smap_vma_flags",
        after: "fs/proc/task_mmu.c:show_smap_vma_flags",
        evidence: "5.10.262 tree without, 6.1.192 with; mainline commit",
    },
    FactInfo {
        fact: Fact::MadvPopulate,
        summary: "MADV_POPULATE_READ/WRITE exist (faultin_vma_page_range(); -EINVAL on \
                  VM_IO|VM_PFNMAP); before, unknown advice -EINVAL",
        area: Area::Madvise,
        since: v(5, 14),
        commit: Some("4ca9b3859dac mm/madvise: introduce MADV_POPULATE_(READ|WRITE) to prefault page tables"),
        backports: &[],
        before: "mm/madvise.c:madvise_behavior_valid",
        after: "mm/madvise.c:madvise_populate",
        evidence: "5.10.262 real kernel -EINVAL on memfd; mainline commit",
    },
    FactInfo {
        fact: Fact::UmemNoForce,
        summary: "ib_umem_get() adds FOLL_WRITE only for writable registrations and never \
                  FOLL_FORCE",
        area: Area::Consumers,
        since: v(6, 2),
        commit: Some("7b5a2e2a2dbd RDMA/umem: remove FOLL_FORCE usage"),
        backports: &[],
        before: "drivers/infiniband/core/umem.c:ib_umem_get",
        after: "drivers/infiniband/core/umem.c:ib_umem_get",
        evidence: "6.1.192 tree FOLL_FORCE, 6.12.117 tree without; mainline series of 6.2",
    },
    FactInfo {
        fact: Fact::GupValidArgs,
        summary: "is_valid_gup_args(): pin_user_pages() and friends return 0 on invalid flags \
                  (was WARN and -EINVAL)",
        area: Area::Gup,
        since: v(6, 3),
        commit: Some("d64e2dbc33aa mm/gup: simplify the external interface functions and consolidate invariants"),
        backports: &[],
        before: "mm/gup.c:pin_user_pages",
        after: "mm/gup.c:is_valid_gup_args",
        evidence: "6.1.192 and 6.12.117 trees; mainline commit",
    },
    FactInfo {
        fact: Fact::GupFastOverflowChecked,
        summary: "GUP-fast returns -EOVERFLOW when start+len wraps and -EFAULT beyond \
                  TASK_SIZE_MAX (was 0 pages)",
        area: Area::Gup,
        since: v(6, 3),
        commit: Some("c28b1fc70390 mm/gup: have internal functions get the mmap_read_lock()"),
        backports: &[],
        before: "mm/gup.c:internal_get_user_pages_fast",
        after: "mm/gup.c:gup_fast_fallback",
        evidence: "6.1.192 and 6.12.117 trees",
    },
    FactInfo {
        fact: Fact::KvmSigpending,
        summary: "hva_to_pfn() turns -EINTR from the slow GUP into KVM_PFN_ERR_SIGPENDING",
        area: Area::Kvm,
        since: v(6, 4),
        commit: Some("fe5ed56c7973 kvm: Add KVM_PFN_ERR_SIGPENDING"),
        backports: &[],
        before: "virt/kvm/kvm_main.c:hva_to_pfn",
        after: "virt/kvm/kvm_main.c:hva_to_pfn",
        evidence: "6.1.192 and 6.12.117 trees; mainline commit",
    },
    FactInfo {
        fact: Fact::OdirectPin,
        summary: "O_DIRECT bios take user pages with iov_iter_extract_pages() and FOLL_PIN \
                  (was iov_iter_get_pages2(), FOLL_GET)",
        area: Area::Consumers,
        since: v(6, 4),
        commit: Some("b1b40ed8e6d3 block: convert bio_iov_iter_get_pages to use iov_iter_extract_pages"),
        backports: &[],
        before: "block/bio.c:__bio_iov_iter_get_pages",
        after: "block/bio.c:__bio_iov_iter_get_pages",
        evidence: "6.1.192 and 6.12.117 trees; mainline commit",
    },
    FactInfo {
        fact: Fact::GupWritableFileMapping,
        summary: "check_vma_flags() refuses FOLL_LONGTERM|FOLL_WRITE on file mappings that need \
                  dirty tracking",
        area: Area::Gup,
        since: v(6, 5),
        commit: Some("b5054174ac7c mm/gup: disallow FOLL_LONGTERM GUP-nonfast writing to file-backed mappings"),
        backports: &[],
        before: "mm/gup.c:check_vma_flags",
        after: "mm/gup.c:writable_file_mapping_allowed",
        evidence: "6.1.192 and 6.12.117 trees; mainline commit",
    },
    FactInfo {
        fact: Fact::GupFastFolioAllowed,
        summary: "GUP-fast checks folio_fast_pin_allowed()/gup_fast_folio_allowed(): NULL-mapping \
                  folios go to the slow path, LONGTERM|WRITE pins of non-shmem files are refused",
        area: Area::Gup,
        since: v(6, 5),
        commit: Some("2a2d5c07d4b1 mm/gup: disallow FOLL_LONGTERM GUP-fast writing to file-backed mappings"),
        backports: &[],
        before: "mm/gup.c:gup_pte_range",
        after: "mm/gup.c:gup_fast_folio_allowed",
        evidence: "6.1.192 and 6.12.117 trees; mainline commit",
    },
    FactInfo {
        fact: Fact::IoUringPinFast,
        summary: "io_uring buffer registration pins with pin_user_pages_fast() (was \
                  pin_user_pages() with a VMA array)",
        area: Area::Consumers,
        since: v(6, 5),
        commit: Some("0056346e95c0 io_uring: rsrc: avoid use of vmas parameter in pin_user_pages()"),
        backports: &[],
        before: "io_uring/rsrc.c:io_pin_pages",
        after: "io_uring/memmap.c:io_pin_pages",
        evidence: "6.1.192 and 6.12.117 trees; mainline commit",
    },
    FactInfo {
        fact: Fact::IoUringNoFileCheck,
        summary: "io_uring no longer refuses file-backed buffers other than shmem/hugetlbfs with \
                  -EOPNOTSUPP; GUP decides",
        area: Area::Consumers,
        since: v(6, 5),
        commit: Some("38bd78294cd6 io_uring: rsrc: delegate VMA file-backed check to GUP"),
        backports: &[],
        before: "io_uring/rsrc.c:io_pin_pages",
        after: "io_uring/rsrc.c:io_pin_pages",
        evidence: "6.1.192 tree and 5.10/6.1 real kernels -EOPNOTSUPP, 6.12.117 ok; mainline commit",
    },
    FactInfo {
        fact: Fact::GupFastProtnoneBails,
        summary: "GUP-fast bails on every PROT_NONE PTE (was only when !gup_can_follow_protnone())",
        area: Area::Gup,
        since: v(6, 6),
        commit: Some("d74943a2f3cd mm/gup: reintroduce FOLL_NUMA as FOLL_HONOR_NUMA_FAULT"),
        backports: &[],
        before: "mm/gup.c:gup_pte_range",
        after: "mm/gup.c:gup_fast_pte_range",
        evidence: "6.1.192 and 6.12.117 trees",
    },
    FactInfo {
        fact: Fact::PopulateRefusesInaccessible,
        summary: "populate_vma_page_range() refuses inaccessible VMAs with -EFAULT and forces \
                  only private writable ones",
        area: Area::Gup,
        since: v(6, 6),
        commit: Some("8ac268436e6d mm/gup: don't implicitly set FOLL_FORCE for populate"),
        backports: &[],
        before: "mm/gup.c:populate_vma_page_range",
        after: "mm/gup.c:populate_vma_page_range",
        evidence: "6.1.192 and 6.12.117 trees",
    },
    FactInfo {
        fact: Fact::WpSharedMayshare,
        summary: "do_wp_page() takes the shared path for VM_SHARED|VM_MAYSHARE (was only for \
                  VM_WRITE|VM_SHARED)",
        area: Area::Memory,
        since: v(6, 6),
        commit: None,
        backports: &[],
        before: "mm/memory.c:do_wp_page",
        after: "mm/memory.c:do_wp_page",
        evidence: "6.1.192 and 6.12.117 trees",
    },
    FactInfo {
        fact: Fact::DevmapBit57,
        summary: "x86 _PAGE_BIT_DEVMAP moves from bit 58 to bit 57",
        area: Area::Memory,
        since: v(6, 6),
        commit: Some("a0d2e4b4e6d1 x86/mm: Introduce _PAGE_SAVED_DIRTY"),
        backports: &[],
        before: "arch/x86/include/asm/pgtable_types.h:_PAGE_BIT_DEVMAP",
        after: "arch/x86/include/asm/pgtable_types.h:_PAGE_BIT_DEVMAP",
        evidence: "6.1.192 and 6.12.117 trees (shadow-stack series)",
    },
    FactInfo {
        fact: Fact::SmapsShadowStack,
        summary: "smaps mnemonic `ss` for VM_SHADOW_STACK",
        area: Area::Proc,
        since: v(6, 6),
        commit: None,
        backports: &[],
        before: "fs/proc/task_mmu.c:show_smap_vma_flags",
        after: "fs/proc/task_mmu.c:show_smap_vma_flags",
        evidence: "6.1.192 and 6.12.117 trees (shadow-stack series)",
    },
    FactInfo {
        fact: Fact::SmapsLockonfault,
        summary: "smaps mnemonic `lf` for VM_LOCKONFAULT",
        area: Area::Proc,
        since: v(6, 6),
        commit: None,
        backports: &[],
        before: "fs/proc/task_mmu.c:show_smap_vma_flags",
        after: "fs/proc/task_mmu.c:show_smap_vma_flags",
        evidence: "6.1.192 and 6.12.117 trees",
    },
    FactInfo {
        fact: Fact::DrmGenericPrime,
        summary: "drm_prime_handle_to_fd_ioctl() falls back to drm_gem_prime_handle_to_fd() and \
                  drm_gem_dmabuf_mmap() always calls drm_gem_prime_mmap() (was -ENOSYS without \
                  the driver hooks)",
        area: Area::Drm,
        since: v(6, 6),
        commit: None,
        backports: &[],
        before: "drivers/gpu/drm/drm_prime.c:drm_gem_dmabuf_mmap",
        after: "drivers/gpu/drm/drm_prime.c:drm_gem_dmabuf_mmap",
        evidence: "6.1.192 real kernel bochs export -ENOSYS, 6.12.117 ok",
    },
    FactInfo {
        fact: Fact::CmaHeapPfnmap,
        summary: "The CMA heap maps VM_IO|VM_PFNMAP with vmf_insert_pfn() (was vmf->page)",
        area: Area::DmaBuf,
        since: v(6, 8),
        commit: None,
        backports: &[],
        before: "drivers/dma-buf/heaps/cma_heap.c:cma_heap_vm_fault",
        after: "drivers/dma-buf/heaps/cma_heap.c:cma_heap_vm_fault",
        evidence: "6.1.192 and 6.12.117 trees",
    },
    FactInfo {
        fact: Fact::HugetlbPageType,
        summary: "hugetlb folios are a page type; validate_page_before_insert() refuses them",
        area: Area::Memory,
        since: v(6, 9),
        commit: Some("d99e3140a4d3 mm: turn folio_test_hugetlb into a PageType"),
        backports: &[],
        before: "mm/memory.c:validate_page_before_insert",
        after: "mm/memory.c:validate_page_before_insert",
        evidence: "6.1.192 and 6.12.117 trees; mainline commit",
    },
    FactInfo {
        fact: Fact::InsertCountInValidate,
        summary: "validate_page_before_insert() checks the page count (was in vm_insert_page())",
        area: Area::Memory,
        since: v(6, 10),
        commit: None,
        backports: &[],
        before: "mm/memory.c:vm_insert_page",
        after: "mm/memory.c:validate_page_before_insert",
        evidence: "6.1.192 and 6.12.117 trees",
    },
    FactInfo {
        fact: Fact::InsertZeropageSpecial,
        summary: "vm_insert_page(s) and vmf_insert_mixed() map the shared zero page as a special \
                  PTE where vm_mixed_zeropage_allowed(); vm_normal_page() returns none for it",
        area: Area::Memory,
        since: v(6, 10),
        commit: Some("fce831c92092 mm/memory: cleanly support zeropage in vm_insert_page*(), vm_map_pages*() and vmf_insert_mixed()"),
        backports: &[],
        before: "mm/memory.c:validate_page_before_insert",
        after: "mm/memory.c:vm_mixed_zeropage_allowed",
        evidence: "6.1.192 and 6.12.117 trees; mainline commit",
    },
    FactInfo {
        fact: Fact::MixedOkSigbus,
        summary: "__vm_insert_mixed() returns VM_FAULT_SIGBUS when vm_mixed_ok() fails (was \
                  BUG_ON)",
        area: Area::Memory,
        since: v(6, 10),
        commit: Some("fce831c92092 mm/memory: cleanly support zeropage in vm_insert_page*(), vm_map_pages*() and vmf_insert_mixed()"),
        backports: &[],
        before: "mm/memory.c:__vm_insert_mixed",
        after: "mm/memory.c:__vm_insert_mixed",
        evidence: "6.1.192 and 6.12.117 trees",
    },
    FactInfo {
        fact: Fact::SmapsSealed,
        summary: "smaps mnemonic `sl` for VM_SEALED",
        area: Area::Proc,
        since: v(6, 10),
        commit: None,
        backports: &[],
        before: "fs/proc/task_mmu.c:show_smap_vma_flags",
        after: "fs/proc/task_mmu.c:show_smap_vma_flags",
        evidence: "6.12.117 tree (mseal)",
    },
    FactInfo {
        fact: Fact::SmapsDroppable,
        summary: "smaps mnemonic `dp` for VM_DROPPABLE",
        area: Area::Proc,
        since: v(6, 11),
        commit: None,
        backports: &[],
        before: "fs/proc/task_mmu.c:show_smap_vma_flags",
        after: "fs/proc/task_mmu.c:show_smap_vma_flags",
        evidence: "6.12.117 tree (MAP_DROPPABLE)",
    },
    FactInfo {
        fact: Fact::UdmabufPfnmap,
        summary: "udmabuf maps VM_PFNMAP with vmf_insert_pfn() (was vmf->page: normal PTEs)",
        area: Area::DmaBuf,
        since: v(6, 11),
        commit: Some("7d79cd784470 udmabuf: use vmf_insert_pfn and VM_PFNMAP for handling mmap"),
        backports: &[],
        before: "drivers/dma-buf/udmabuf.c:udmabuf_vm_fault",
        after: "drivers/dma-buf/udmabuf.c:udmabuf_vm_fault",
        evidence: "6.1.192 and 6.12.117 trees; mainline commit",
    },
    FactInfo {
        fact: Fact::KvmFollowPfnmap,
        summary: "hva_to_pfn_remapped() uses follow_pfnmap_start() (was follow_pte())",
        area: Area::Kvm,
        since: v(6, 12),
        commit: Some("5731aacd54a8 KVM: use follow_pfnmap API"),
        backports: &[],
        before: "virt/kvm/kvm_main.c:hva_to_pfn_remapped",
        after: "virt/kvm/kvm_main.c:hva_to_pfn_remapped",
        evidence: "6.1.192 and 6.12.117 trees; mainline commit",
    },
    FactInfo {
        fact: Fact::WalkPageVmaNoTest,
        summary: "walk_page_vma() no longer applies walk_page_test(): smaps walks VM_PFNMAP VMAs",
        area: Area::Proc,
        since: v(6, 12),
        commit: None,
        backports: &[],
        before: "mm/pagewalk.c:walk_page_vma",
        after: "mm/pagewalk.c:walk_page_vma",
        evidence: "6.1.192 and 6.12.117 trees",
    },
    FactInfo {
        fact: Fact::KvmPfnmapNoRefs,
        summary: "hva_to_pfn_remapped() hands back the pfn it found without a page reference \
                  (kvm_resolve_pfn(); was kvm_try_get_pfn(), which fails on refcount-0 pages)",
        area: Area::Kvm,
        since: v(6, 13),
        commit: None,
        backports: &[],
        before: "virt/kvm/kvm_main.c:kvm_try_get_pfn",
        after: "virt/kvm/kvm_main.c:kvm_resolve_pfn",
        evidence: "6.12.117 tree kvm_try_get_pfn(), 7.2.13 tree kvm_resolve_pfn() and \
                   allow_unsafe_mappings; 6.13 is the merge of the kvm_follow_pfn series (not \
                   checked against mainline history); no probed cell tells them apart",
    },
    FactInfo {
        fact: Fact::UdmabufPrefault,
        summary: "udmabuf_vm_fault() inserts the faulting pfn, then every other PTE of the VMA \
                  (was one vmf_insert_pfn() per fault)",
        area: Area::DmaBuf,
        since: v(6, 14),
        commit: None,
        backports: &[],
        before: "drivers/dma-buf/udmabuf.c:udmabuf_vm_fault",
        after: "drivers/dma-buf/udmabuf.c:udmabuf_vm_fault",
        evidence: "bounded by the trees: 6.12.117 one PTE per fault, 7.2.13 prefault loop; 6.14 \
                   from the udmabuf series of Dec 2024 (not checked against mainline history); \
                   the probes fault every page, so no cell bounds it further",
    },
    FactInfo {
        fact: Fact::BochsGemShmem,
        summary: "bochs uses the GEM shmem helper (DRM_GEM_SHMEM_DRIVER_OPS: VM_PFNMAP without \
                  VM_IO, no vm_ops->access) instead of drm_gem_vram/TTM",
        area: Area::Drm,
        since: v(6, 15),
        commit: None,
        backports: &[],
        before: "drivers/gpu/drm/tiny/bochs.c:DRM_GEM_VRAM_DRIVER",
        after: "drivers/gpu/drm/tiny/bochs.c:DRM_GEM_SHMEM_DRIVER_OPS",
        evidence: "bounded by the real kernels: 6.12.117 bochs `io` and /proc/PID/mem ok (TTM), \
                   6.16.12 no `io` and EIO; 7.2.13 tree tiny/bochs.c DRM_GEM_SHMEM_DRIVER_OPS; \
                   6.15 from the drm-misc-next conversion of early 2025 (not checked against \
                   mainline history)",
    },
    FactInfo {
        fact: Fact::PfnmapTrackCtx,
        summary: "remap_pfn_range() of a whole VMA keeps the PAT reservation in \
                  vma->pfnmap_track_ctx and sets no VM_PAT (smaps `ar`)",
        area: Area::Memory,
        since: v(6, 16),
        commit: None,
        backports: &[],
        before: "arch/x86/mm/pat/memtype.c:track_pfn_remap",
        after: "mm/memory.c:remap_pfn_range_track",
        evidence: "real kernels: 6.12.117 vivid-dma-contig VmFlags `ar`, 6.16.12 none; 7.2.13 \
                   tree has pfnmap_track_ctx and no VM_PAT",
    },
    FactInfo {
        fact: Fact::HugetlbReserveGuard,
        summary: "alloc_hugetlb_folio_reserve() returns NULL when resv_huge_pages is 0 (was \
                  VM_BUG_ON and an unreserved dequeue): memfd_pin_folios() of an unpopulated \
                  hugetlb memfd fails -ENOMEM",
        area: Area::Memory,
        since: v(6, 16),
        commit: None,
        backports: &[],
        before: "mm/hugetlb.c:alloc_hugetlb_folio_reserve",
        after: "mm/hugetlb.c:alloc_hugetlb_folio_reserve",
        evidence: "real kernels: 6.12.117 UDMABUF_CREATE of a hugetlb memfd ok, 6.16.12 ENOMEM; \
                   6.12.117 tree VM_BUG_ON, 7.2.13 tree the guard; \"mm/hugetlb: don't crash \
                   when allocating a folio if there are no resv\" is named a v6.16 fix in a \
                   downstream backport (NVIDIA/NV-Kernels#180)",
    },
    FactInfo {
        fact: Fact::MemfdHugetlbReserve,
        summary: "memfd_alloc_folio() calls hugetlb_reserve_pages() for the index before \
                  alloc_hugetlb_folio_reserve()",
        area: Area::Memory,
        since: v(6, 17),
        commit: None,
        backports: &[],
        before: "mm/memfd.c:memfd_alloc_folio",
        after: "mm/memfd.c:memfd_alloc_folio",
        evidence: "real kernels: 6.16.12 UDMABUF_CREATE of a hugetlb memfd ENOMEM, 6.17.13 ok; \
                   6.12.117 tree without, 7.2.13 tree with the reservation",
    },
    FactInfo {
        fact: Fact::SystemHeapChunkRemap,
        summary: "system_heap_mmap() calls remap_pfn_range() once per scatterlist entry (a chunk \
                  of order 8, 4 or 0) instead of once per page: MAP_PRIVATE of a range inside \
                  one chunk succeeds, and a chunk covering the whole VMA is PAT-tracked",
        area: Area::DmaBuf,
        since: v(6, 17),
        commit: None,
        backports: &[],
        before: "drivers/dma-buf/heaps/system_heap.c:system_heap_mmap",
        after: "drivers/dma-buf/heaps/system_heap.c:system_heap_mmap",
        evidence: "bounded by the trees: 6.12.117 per-page loop, 7.2.13 per-sg-entry loop; the \
                   probes' 16 KiB buffers are four order-0 chunks, so 6.16-7.3 cannot tell; 6.17 \
                   from the mid-2025 posting (\"use larger contiguous mappings instead of \
                   per-page mmap\"), not checked against mainline history",
    },
    FactInfo {
        fact: Fact::PseudoFsNoexec,
        summary: "init_pseudo() sets SB_I_NOEXEC|SB_I_NODEV, so do_mmap() clears VM_MAYEXEC \
                  (smaps `me`) on dma-buf mappings and refuses PROT_EXEC with -EPERM",
        area: Area::DmaBuf,
        since: v(7, 0),
        commit: None,
        backports: &[],
        before: "fs/libfs.c:init_pseudo",
        after: "fs/libfs.c:init_pseudo",
        evidence: "real kernels: 6.18.15 dma-buf VmFlags `me`, 7.2.13 none (memfd keeps it); \
                   6.12.117 fs/libfs.c init_pseudo without, 7.2.13 with the flags; the dma-buf \
                   form of the fix was posted in January 2026, so 7.0 is the first merge \
                   window it can have reached (not checked against mainline history)",
    },
    FactInfo {
        fact: Fact::UdmabufSizeLimitIntMax,
        summary: "udmabuf's size_limit_mb module parameter defaults to INT_MAX (was 64): \
                  udmabuf_create() no longer refuses buffers beyond 64 MiB with -EINVAL",
        area: Area::DmaBuf,
        since: v(7, 3),
        commit: None,
        backports: &[],
        before: "drivers/dma-buf/udmabuf.c:udmabuf_create",
        after: "drivers/dma-buf/udmabuf.c:udmabuf_create",
        evidence: "bounded by the trees: 7.2.13 `size_limit_mb = 64`, 7.3.4 `= INT_MAX`; the \
                   probes use 16 KiB buffers, so no cell bounds it further",
    },
];
