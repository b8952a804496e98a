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
        since: v(5, 14),
        commit: Some("f91142c62161 drm/ttm: nuke VM_MIXEDMAP on BO mappings v3"),
        backports: &[],
        before: "drivers/gpu/drm/ttm/ttm_bo_vm.c:ttm_bo_mmap_vma_setup",
        after: "drivers/gpu/drm/ttm/ttm_bo_vm.c:ttm_bo_mmap_obj",
        evidence: "5.10.262 tree ttm_bo_mmap_vma_setup VM_MIXEDMAP with no COW check, 6.1.192 tree \
                   ttm_bo_mmap_obj VM_PFNMAP with it; the commit (patch of 2021-06-07, \
                   \"v2: reject COW mappings\") found on git.proxmox.com and repo.jachan.dev; 5.14, \
                   the merge window after it, from the patch date, not from a tag",
    },
    FactInfo {
        fact: Fact::DrmShmemPfnmap,
        summary: "drm_gem_shmem maps VM_PFNMAP with vmf_insert_pfn() (was VM_MIXEDMAP and \
                  vmf_insert_page(): normal, refcounted PTEs GUP can take)",
        area: Area::Drm,
        since: v(5, 16),
        commit: None,
        backports: &[],
        before: "drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_mmap",
        after: "drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_mmap",
        evidence: "5.10.262 tree (drm_gem_shmem_mmap: VM_MIXEDMAP|VM_DONTEXPAND, fault \
                   vmf_insert_page) and real kernel (virtio-gpu `mm`, GUP ok), 6.1.192 VM_PFNMAP: \
                   bounded 5.10 < x <= 6.1; \"drm/shmem-helper: Switch to vmf_insert_pfn\" (Daniel \
                   Vetter, v4 series of 2021-07-13) is listed in the drm pull for 5.16-rc1; commit \
                   id not corroborated",
    },
    FactInfo {
        fact: Fact::VgemShmemHelper,
        summary: "vgem uses the GEM shmem helper (was vgem_prime_mmap: the shmem file's own \
                  mmap, a plain shmem VMA)",
        area: Area::Drm,
        since: v(5, 16),
        commit: None,
        backports: &[],
        before: "drivers/gpu/drm/vgem/vgem_drv.c:vgem_prime_mmap",
        after: "drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_mmap",
        evidence: "5.10.262 tree (vgem_prime_mmap: call_mmap on obj->filp) and real kernel (a shmem \
                   VMA: io_uring ok, MAP_PRIVATE ok:cow), 6.1.192 shmem helper: bounded \
                   5.10 < x <= 6.1; \"drm/vgem: use shmem helpers\" (Daniel Vetter, same series as \
                   the shmem helper's vmf_insert_pfn) is listed in the drm pull for 5.16-rc1; \
                   commit id not corroborated",
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
        evidence: "5.10.262 tree without, 6.1.192 tree with: bounded 5.10 < x <= 6.1; 5.15 is a guess \
                   inside that bound (no commit found)",
    },
    FactInfo {
        fact: Fact::NoVmDenywrite,
        summary: "VM_DENYWRITE is removed, and with it the smaps `dw` mnemonic",
        area: Area::Proc,
        since: v(5, 15),
        commit: None,
        backports: &[],
        before: "fs/proc/task_mmu.c:show_smap_vma_flags",
        after: "fs/proc/task_mmu.c:show_smap_vma_flags",
        evidence: "5.10.262 tree has `dw`, 6.1.192 not; 5.15 (David Hildenbrand, \"mm: remove \
                   VM_DENYWRITE\") from recollection, commit id not corroborated",
    },
    FactInfo {
        fact: Fact::SmapsUffdMinor,
        summary: "VM_UFFD_MINOR and its smaps mnemonic `ui`",
        area: Area::Proc,
        since: v(5, 13),
        commit: None,
        backports: &[],
        before: "fs/proc/task_mmu.c:show_smap_vma_flags",
        after: "fs/proc/task_mmu.c:show_smap_vma_flags",
        evidence: "5.10.262 tree without, 6.1.192 with; 5.13 (userfaultfd minor faults, Axel \
                   Rasmussen) from recollection, commit id not corroborated",
    },
    FactInfo {
        fact: Fact::GupLongtermMovable,
        summary: "FOLL_LONGTERM pins refuse ZONE_MOVABLE as well as CMA pages: GUP-fast falls back \
                  to the slow path, which migrates them and retries while any is not isolatable \
                  (was: GUP-fast pinned anything; the slow path migrated CMA pages it could \
                  isolate and left the rest pinned)",
        area: Area::Gup,
        since: v(5, 13),
        commit: None,
        backports: &[],
        before: "mm/gup.c:check_and_migrate_cma_pages",
        after: "mm/gup.c:check_and_migrate_movable_pages",
        evidence: "5.10.262 tree (lockless_pages_from_mm without a pinnable check, \
                   check_and_migrate_cma_pages), 6.1.192 tree (try_grab_folio refuses \
                   !is_longterm_pinnable, check_and_migrate_movable_pages): bounded 5.10 < x <= \
                   6.1; 5.13 (Pavel Tatashin, \"mm/gup: migrate pinned pages out of movable \
                   zone\") from recollection, commit id not corroborated",
    },
    FactInfo {
        fact: Fact::MadvPopulate,
        summary: "MADV_POPULATE_READ/WRITE exist (faultin_vma_page_range(); -EINVAL on \
                  VM_IO|VM_PFNMAP); before, unknown advice -EINVAL",
        area: Area::Madvise,
        since: v(5, 14),
        commit: None,
        backports: &[],
        before: "mm/madvise.c:madvise_behavior_valid",
        after: "mm/madvise.c:madvise_populate",
        evidence: "5.10.262 tree (madvise_behavior_valid has no POPULATE) and real kernel -EINVAL on \
                   memfd, 6.1.192 tree madvise_populate; 5.14 (David Hildenbrand) from recollection, \
                   commit id not corroborated",
    },
    FactInfo {
        fact: Fact::GupPfnPteEexistBails,
        summary: "__get_user_pages() returns -EEXIST at a PTE without struct page when pages are \
                  requested, and follow_pfn_pte() no longer refuses FOLL_GET (was: FOLL_GET -> \
                  -EFAULT, FOLL_PIN -> the page counted and pages[i] left unset)",
        area: Area::Gup,
        since: v(5, 18),
        commit: None,
        backports: &[],
        before: "mm/gup.c:follow_pfn_pte",
        after: "mm/gup.c:__get_user_pages",
        evidence: "5.10.262 tree (follow_pfn_pte FOLL_GET -> -EFAULT; -EEXIST -> goto next_page), \
                   6.1.192 tree (if (pages) return -EEXIST): bounded 5.10 < x <= 6.1; 5.18 (John \
                   Hubbard, \"mm/gup: follow_pfn_pte(): -EEXIST cleanup\") from recollection, \
                   commit id not corroborated",
    },
    FactInfo {
        fact: Fact::UmemNoForce,
        summary: "ib_umem_get() adds FOLL_WRITE only for writable registrations and never \
                  FOLL_FORCE",
        area: Area::Consumers,
        since: v(6, 2),
        commit: None,
        backports: &[],
        before: "drivers/infiniband/core/umem.c:ib_umem_get",
        after: "drivers/infiniband/core/umem.c:ib_umem_get",
        evidence: "6.1.192 tree FOLL_FORCE, 6.12.117 tree without; 6.2 (David Hildenbrand's \
                   \"remove FOLL_FORCE usage from drivers\" series) from recollection, commit id not \
                   corroborated",
    },
    FactInfo {
        fact: Fact::GupValidArgs,
        summary: "is_valid_gup_args(): pin_user_pages() and friends return 0 on invalid flags \
                  (was WARN and -EINVAL)",
        area: Area::Gup,
        since: v(6, 3),
        commit: None,
        backports: &[],
        before: "mm/gup.c:pin_user_pages",
        after: "mm/gup.c:is_valid_gup_args",
        evidence: "6.1.192 tree (pin_user_pages: WARN, -EINVAL) and 6.12.117 tree \
                   (is_valid_gup_args: 0 from the slow pin entry points); 6.3 (Jason Gunthorpe's \
                   GUP interface consolidation) from recollection, commit id not corroborated",
    },
    FactInfo {
        fact: Fact::GupFastOverflowChecked,
        summary: "GUP-fast returns -EOVERFLOW when start+len wraps and -EFAULT beyond \
                  TASK_SIZE_MAX (was 0 pages)",
        area: Area::Gup,
        since: v(6, 3),
        commit: None,
        backports: &[],
        before: "mm/gup.c:internal_get_user_pages_fast",
        after: "mm/gup.c:gup_fast_fallback",
        evidence: "6.1.192 tree returns 0, 6.12.117 tree -EOVERFLOW: bounded 6.1 < x <= 6.12; 6.3 \
                   is a low-confidence guess (the GUP reworks of that cycle), no commit found",
    },
    FactInfo {
        fact: Fact::KvmSigpending,
        summary: "hva_to_pfn() turns -EINTR from the slow GUP into KVM_PFN_ERR_SIGPENDING",
        area: Area::Kvm,
        since: v(6, 2),
        commit: None,
        backports: &[],
        before: "virt/kvm/kvm_main.c:hva_to_pfn",
        after: "virt/kvm/kvm_main.c:hva_to_pfn",
        evidence: "6.1.192 tree without, 6.12.117 tree with; 6.2 (Peter Xu, \"kvm: Add \
                   KVM_PFN_ERR_SIGPENDING\", Oct 2022 series) from recollection, commit id not \
                   corroborated",
    },
    FactInfo {
        fact: Fact::OdirectPin,
        summary: "O_DIRECT bios take user pages with iov_iter_extract_pages() and FOLL_PIN \
                  (was iov_iter_get_pages2(), FOLL_GET)",
        area: Area::Consumers,
        since: v(6, 4),
        commit: None,
        backports: &[],
        before: "block/bio.c:__bio_iov_iter_get_pages",
        after: "block/bio.c:__bio_iov_iter_get_pages",
        evidence: "6.1.192 tree FOLL_GET, 6.12.117 tree iov_iter_extract_pages; 6.4 (David Howells, \
                   \"block: Switch to pinning pages\") from recollection, maybe 6.3; commit id not \
                   corroborated",
    },
    FactInfo {
        fact: Fact::GupWritableFileMapping,
        summary: "check_vma_flags() refuses FOLL_LONGTERM|FOLL_WRITE on file mappings that need \
                  dirty tracking",
        area: Area::Gup,
        since: v(6, 5),
        commit: None,
        backports: &[],
        before: "mm/gup.c:check_vma_flags",
        after: "mm/gup.c:writable_file_mapping_allowed",
        evidence: "6.1.192 tree without, 6.12.117 tree with; 6.5 (Lorenzo Stoakes) from \
                   recollection, commit id not corroborated",
    },
    FactInfo {
        fact: Fact::GupFastFolioAllowed,
        summary: "GUP-fast checks folio_fast_pin_allowed()/gup_fast_folio_allowed(): NULL-mapping \
                  folios go to the slow path, LONGTERM|WRITE pins of non-shmem files are refused",
        area: Area::Gup,
        since: v(6, 5),
        commit: None,
        backports: &[],
        before: "mm/gup.c:gup_pte_range",
        after: "mm/gup.c:gup_fast_folio_allowed",
        evidence: "6.1.192 tree page_is_secretmem(), 6.12.117 tree gup_fast_folio_allowed(); 6.5 \
                   (Lorenzo Stoakes, folio_fast_pin_allowed) from recollection, commit id not \
                   corroborated",
    },
    FactInfo {
        fact: Fact::GupPinFastInvalidEinval,
        summary: "pin_user_pages_fast() returns -EINVAL again on invalid flags (from \
                  is_valid_gup_args() until then it returned 0, like the slow pin entry points \
                  still do)",
        area: Area::Gup,
        since: v(6, 5),
        commit: None,
        backports: &[V::new(6, 4, 10)],
        before: "mm/gup.c:pin_user_pages_fast",
        after: "mm/gup.c:pin_user_pages_fast",
        evidence: "\"mm/gup: do not return 0 from pin_user_pages_fast() for bad args\": 6.12's \
                   Debian changelog lists it in the 6.4.10 stable shortlog (a 6.5-rc fix, \
                   backported to 6.4.10); 6.12.117 tree returns \
                   -EINVAL; commit id not corroborated",
    },
    FactInfo {
        fact: Fact::IoUringPinFast,
        summary: "io_uring buffer registration pins with pin_user_pages_fast() (was \
                  pin_user_pages() with a VMA array)",
        area: Area::Consumers,
        since: v(6, 5),
        commit: None,
        backports: &[],
        before: "io_uring/rsrc.c:io_pin_pages",
        after: "io_uring/memmap.c:io_pin_pages",
        evidence: "6.1.192 tree pin_user_pages() with vmas, 6.12.117 tree pin_user_pages_fast(): \
                   bounded 6.1 < x <= 6.12; 6.5 (the \"remove the vmas parameter\" rework) is a \
                   low-confidence guess, no commit found",
    },
    FactInfo {
        fact: Fact::IoUringNoFileCheck,
        summary: "io_uring no longer refuses file-backed buffers other than shmem/hugetlbfs with \
                  -EOPNOTSUPP; GUP decides",
        area: Area::Consumers,
        since: v(6, 5),
        commit: None,
        backports: &[],
        before: "io_uring/rsrc.c:io_pin_pages",
        after: "io_uring/rsrc.c:io_pin_pages",
        evidence: "6.1.192 tree and 5.10.262/6.1.192 real kernels -EOPNOTSUPP, 6.12.117 ok; 6.5 \
                   (Lorenzo Stoakes, \"delegate VMA file-backed check to GUP\") from recollection; \
                   not in 6.1.y (6.1.192 tree); commit id not corroborated",
    },
    FactInfo {
        fact: Fact::GupFastProtnoneBails,
        summary: "GUP-fast bails on every PROT_NONE PTE (was only when !gup_can_follow_protnone())",
        area: Area::Gup,
        since: v(6, 5),
        commit: None,
        backports: &[V::new(6, 4, 13)],
        before: "mm/gup.c:gup_pte_range",
        after: "mm/gup.c:gup_fast_pte_range",
        evidence: "6.1.192 and 6.12.117 trees; 6.5: a 6.5-rc fix (\"mm/gup: reintroduce FOLL_NUMA as \
                   FOLL_HONOR_NUMA_FAULT\") that 6.12's Debian changelog lists in the 6.4.13 stable \
                   shortlog (backported to 6.4.13); not in \
                   6.1.y (6.1.192 tree); commit id not corroborated",
    },
    FactInfo {
        fact: Fact::PopulateRefusesInaccessible,
        summary: "populate_vma_page_range() refuses inaccessible VMAs with -EFAULT and forces \
                  only private writable ones",
        area: Area::Gup,
        since: v(6, 6),
        commit: None,
        backports: &[],
        before: "mm/gup.c:populate_vma_page_range",
        after: "mm/gup.c:populate_vma_page_range",
        evidence: "6.1.192 and 6.12.117 trees: bounded 6.1 < x <= 6.12; 6.6 is a low-confidence \
                   guess (the 6.5/6.6 FOLL_FORCE/NUMA work), no commit found",
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
        evidence: "6.1.192 and 6.12.117 trees: bounded 6.1 < x <= 6.12; 6.6 is a low-confidence \
                   guess, no commit found",
    },
    FactInfo {
        fact: Fact::DevmapBit57,
        summary: "x86 _PAGE_BIT_DEVMAP moves from bit 58 to bit 57",
        area: Area::Memory,
        since: v(6, 6),
        commit: None,
        backports: &[],
        before: "arch/x86/include/asm/pgtable_types.h:_PAGE_BIT_DEVMAP",
        after: "arch/x86/include/asm/pgtable_types.h:_PAGE_BIT_DEVMAP",
        evidence: "6.1.192 tree SOFTW4 = 58, 6.12.117 tree 57; 6.6 (x86 shadow stacks, \
                   \"x86/mm: Introduce _PAGE_SAVED_DIRTY\") from recollection, commit id not \
                   corroborated",
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
        commit: None,
        backports: &[],
        before: "mm/memory.c:validate_page_before_insert",
        after: "mm/memory.c:validate_page_before_insert",
        evidence: "6.1.192 and 6.12.117 trees; 6.9 (Matthew Wilcox, \"mm: turn folio_test_hugetlb \
                   into a PageType\") from recollection, commit id not corroborated",
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
        evidence: "6.1.192 and 6.12.117 trees; 6.10 (David Hildenbrand's zeropage series) from \
                   recollection, no commit found",
    },
    FactInfo {
        fact: Fact::InsertZeropageSpecial,
        summary: "vm_insert_page(s) and vmf_insert_mixed() map the shared zero page as a special \
                  PTE where vm_mixed_zeropage_allowed(); vm_normal_page() returns none for it",
        area: Area::Memory,
        since: v(6, 10),
        commit: None,
        backports: &[],
        before: "mm/memory.c:validate_page_before_insert",
        after: "mm/memory.c:vm_mixed_zeropage_allowed",
        evidence: "6.1.192 and 6.12.117 trees; 6.10 (David Hildenbrand, \"cleanly support zeropage \
                   in vm_insert_page*(), vm_map_pages*() and vmf_insert_mixed()\") from recollection, \
                   commit id not corroborated",
    },
    FactInfo {
        fact: Fact::MixedOkSigbus,
        summary: "__vm_insert_mixed() returns VM_FAULT_SIGBUS when vm_mixed_ok() fails (was \
                  BUG_ON)",
        area: Area::Memory,
        since: v(6, 10),
        commit: None,
        backports: &[],
        before: "mm/memory.c:__vm_insert_mixed",
        after: "mm/memory.c:__vm_insert_mixed",
        evidence: "6.1.192 tree BUG_ON, 6.12.117 tree VM_FAULT_SIGBUS; 6.10 (the zeropage series) \
                   from recollection, commit id not corroborated",
    },
    FactInfo {
        fact: Fact::DrmShmemRefusesCow,
        summary: "drm_gem_shmem_mmap() refuses COW (MAP_PRIVATE) mappings with -EINVAL (was: \
                  mapped like shared ones; with VM_PFNMAP the first fault hits \
                  vmf_insert_pfn_prot()'s BUG_ON)",
        area: Area::Drm,
        since: v(6, 10),
        commit: Some(
            "39bc27bd6880 drm/shmem-helper: Fix BUG_ON() on mmap(PROT_WRITE, MAP_PRIVATE)",
        ),
        backports: &[V::new(5, 10, 229), V::new(6, 1, 114)],
        before: "drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_mmap",
        after: "drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_mmap",
        evidence: "\"drm/shmem-helper: Fix BUG_ON() on mmap(PROT_WRITE, MAP_PRIVATE)\" \
                   (CVE-2024-39497): Debian changelogs list it in the 5.10.229 and 6.1.114 stable \
                   shortlogs, not in 6.12.y's (so mainline before 6.12); 6.10 from the CVE's \
                   mid-2024 assignment (a 6.10-rc fix), medium-low confidence; the 5.10.262, \
                   6.1.192 and 6.12.117 trees have the check; other lines' backports (6.6.y) not \
                   corroborated; the commit id from the 6.9-stable review of 2024-06-19 \
                   (\"commit 39bc27bd6880 upstream\"), which also makes it a 6.10-rc fix",
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
        evidence: "6.1.192 tree vmf->page (no 6.1.y backport through 6.1.192), 6.12.117 tree \
                   vmf_insert_pfn; the commit id from the stable maintainers' mails that carry \
                   it (\"Upstream commit 7d79cd784470\"), the fix for the syzbot report \
                   syzbot+3d218f7b6c5511a83a79 (a refcount on vmf->page); 6.11 from \
                   recollection, bounded by the trees",
    },
    FactInfo {
        fact: Fact::KvmFollowPfnmap,
        summary: "hva_to_pfn_remapped() uses follow_pfnmap_start() (was follow_pte())",
        area: Area::Kvm,
        since: v(6, 12),
        commit: None,
        backports: &[],
        before: "virt/kvm/kvm_main.c:hva_to_pfn_remapped",
        after: "virt/kvm/kvm_main.c:hva_to_pfn_remapped",
        evidence: "6.1.192 tree follow_pte(), 6.12.117 tree follow_pfnmap_start(); 6.12 (Peter Xu's \
                   follow_pfnmap API) from recollection, commit id not corroborated",
    },
    FactInfo {
        fact: Fact::WalkPageVmaNoTest,
        summary: "walk_page_vma() no longer applies walk_page_test(): smaps walks VM_PFNMAP VMAs",
        area: Area::Proc,
        since: v(6, 2),
        commit: None,
        backports: &[],
        before: "mm/pagewalk.c:walk_page_vma",
        after: "mm/pagewalk.c:walk_page_vma",
        evidence: "6.1.192 tree walk_page_vma() calls walk_page_test(), 6.12.117 not; 6.2 (Peter Xu, \
                   \"mm/pagewalk: don't trigger test_walk() in walk_page_vma()\") from recollection, \
                   commit id not corroborated",
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
        fact: Fact::PatCowForkRefused,
        summary: "track_pfn_copy() of a COW VM_PAT mapping whose first PTE maps an anon page \
                  (a write after remap_pfn_range()) fails: follow_phys() refuses anon folios and \
                  get_pat_info() cannot recover the cachemode, so dup_mmap() fails and fork() \
                  is -ENOMEM (was: the anon page's address reserved as the range's start, fork \
                  went ahead)",
        area: Area::Memory,
        since: v(6, 9),
        commit: Some("04c35ab3bdae x86/mm/pat: fix VM_PAT handling in COW mappings"),
        backports: &[V::new(5, 10, 215), V::new(6, 1, 85)],
        before: "arch/x86/mm/pat/memtype.c:track_pfn_copy",
        after: "arch/x86/mm/pat/memtype.c:get_pat_info",
        evidence: "real kernels (probe --scenarios): fork after a write to page 0 of a \
                   MAP_PRIVATE vivid dma-contig mapping is ENOMEM on 5.10.262 and 6.12.117; \
                   Debian changelogs list \"mm/pat: fix VM_PAT handling in COW mappings\" \
                   (CVE-2024-35877) in the 5.10.215 and 6.1.85 stable shortlogs; commit id and \
                   v6.9 from the stable backports' \"cherry picked from commit 04c35ab3bdae\" \
                   and the linux-mm thread (\"Was part of v6.9\"); 6.6.y and 6.8.y backports \
                   not corroborated; from 6.16 there is no track_pfn_copy (fact \
                   pfnmap-track-ctx: vm_area_dup() takes a reference on the tracking context)",
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
        fact: Fact::DrmShmemPfnMkwrite,
        summary: "drm_gem_shmem_vm_ops gains .pfn_mkwrite (and .huge_fault): \
                  vma_wants_writenotify() drops write from vm_page_prot, so vgem, virtio-gpu, \
                  cirrus and bochs mappings take a read-only PTE and a second fault on the first \
                  write, which marks the shmem folio dirty",
        area: Area::Drm,
        since: v(6, 19),
        commit: None,
        backports: &[],
        before: "drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_vm_ops",
        after: "drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_pfn_mkwrite",
        evidence: "symbols of Debian's drm_shmem_helper.ko: no drm_gem_shmem_pfn_mkwrite in \
                   6.12.117, 6.16.12, 6.17.13 and 6.18.15, present in 7.2.13 and 7.3.4; so after \
                   6.18, by 7.2 (6.19, the first release in that bound, not checked against \
                   mainline history)",
    },
    FactInfo {
        fact: Fact::VmMapPagesBatched,
        summary: "vm_map_pages() maps through vm_insert_pages(), whose checks on a VMA without \
                  VM_MIXEDMAP are VM_WARN_ON_ONCE (DEBUG_VM only): on a VM_PFNMAP VMA it sets \
                  VM_MIXEDMAP and installs normal PTEs instead of BUG_ON",
        area: Area::Memory,
        since: v(6, 19),
        commit: None,
        backports: &[],
        before: "mm/memory.c:__vm_map_pages",
        after: "mm/memory.c:vm_insert_pages",
        evidence: "7.2.13/7.3.4 trees: __vm_map_pages calls vm_insert_pages, whose checks are \
                   VM_WARN_ON_ONCE; 6.12.117 tree: a vm_insert_page loop and BUG_ON. Debian's \
                   6.16.12, 6.17.13 and 6.18.15 vmlinux: vm_map_pages (found through __ksymtab) \
                   never reaches vm_insert_pages, 7.3.4's does; so after 6.18, by 7.2 (6.19, the \
                   first release in that bound, not checked against mainline history)",
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
    FactInfo {
        fact: Fact::GupFastNullMapping,
        summary: "gup_fast_folio_allowed() returns !reject_file_backed for a folio with a NULL \
                  mapping (was false: every such folio went to the slow path, which refuses \
                  VM_IO|VM_PFNMAP VMAs)",
        area: Area::Gup,
        since: v(7, 3),
        commit: None,
        backports: &[],
        before: "mm/gup.c:gup_fast_folio_allowed",
        after: "mm/gup.c:gup_fast_folio_allowed",
        evidence: "7.2.13 tree `if (!mapping) return false;`, 7.3.4 tree `return \
                   !reject_file_backed;`; no probed exporter has normal PTEs of NULL-mapping \
                   pages in a VM_IO or VM_PFNMAP VMA, so no real-kernel cell tells",
    },
    FactInfo {
        fact: Fact::GenericAccessPhysRejectsRam,
        summary: "generic_access_phys() copies at most one page per call and refuses a pfn \
                  that is online RAM not marked reserved with -EINVAL (/proc/PID/mem and ptrace \
                  of such a VM_IO|VM_PFNMAP mapping fail)",
        area: Area::Memory,
        since: v(7, 3),
        commit: None,
        backports: &[],
        before: "mm/memory.c:generic_access_phys",
        after: "mm/memory.c:generic_access_phys",
        evidence: "7.2.13 tree ioremaps any pfn, 7.3.4 tree checks pfn_to_online_page() and \
                   PageReserved(); no probed exporter uses generic_access_phys as ->access",
    },
];
