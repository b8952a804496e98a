//! Every catalogue exporter on both modeled kernels under policy `off`: the full row of op
//! values, written out from the kernel sources (`docs/exporters.md` §C, the source cross-check
//! table), and the individual cells that carry a source finding, each with its cite.

mod common;
use common::resolved;

use std::collections::BTreeMap;

use pfnguard_dmabuf::exporters::ExportCtx;
use pfnguard_dmabuf::{by_id, catalogue, predict, Policy, DEFAULT_PAGES};
use pfnguard_mm::fault::touch_range;
use pfnguard_mm::kvm::{hva_to_pfn, KvmPfn};
use pfnguard_mm::mmap::do_mmap;
use pfnguard_mm::{Kernel, KernelFacts, MapFlags, MmapArgs, Prot, PAGE_SIZE};
use pfnguard_report::OpKey;

fn kernel(name: &str) -> KernelFacts {
    resolved(name).facts
}

/// The ops of one exporter on one kernel under `off`.
fn row(k: &str, id: &str) -> BTreeMap<OpKey, String> {
    let id = id
        .parse()
        .unwrap_or_else(|e| panic!("catalogue exporter {id}: {e}"));
    predict(&resolved(k), by_id(id).as_ref(), Policy::Off, DEFAULT_PAGES)
        .ops
        .into_iter()
        .map(|(op, v)| (op, v.to_string()))
        .collect()
}

fn cell(k: &str, id: &str, op: OpKey) -> String {
    row(k, id)[&op].clone()
}

/// A full expected row, in `OpKey::ALL` order.
type Row = [&'static str; 24];

/// [PFN]: special PTEs in a VM_PFNMAP VMA, no `.access`; MAP_PRIVATE refused by the exporter.
/// GUP: fast GUP bails on pte_special, slow GUP's check_vma_flags refuses VM_IO|VM_PFNMAP
/// (mm/gup.c:check_vma_flags) → EFAULT; /proc/PID/mem moves 0 bytes → EIO
/// (fs/proc/base.c:mem_rw); MADV_POPULATE → EINVAL; MADV_DONTNEED on VM_PFNMAP → EINVAL
/// (mm/madvise.c:madvise_dontneed_free_valid_vma); mremap of VM_DONTEXPAND|VM_PFNMAP → EFAULT
/// (mm/mremap.c:vma_to_resize); KVM takes the remapped path on page 0 (refcounted) → ok.
const PFN: Row = [
    "ok",
    "ok",
    "EINVAL",
    "?",
    "zero",
    "hole",
    "EFAULT",
    "EFAULT",
    "EFAULT",
    "EFAULT",
    "EFAULT",
    "EFAULT",
    "EIO",
    "EIO",
    "ok",
    "ok",
    "EFAULT",
    "EINVAL",
    "EINVAL",
    "ok:not-locked",
    "EINVAL",
    "EFAULT",
    "ok",
    "EFAULT",
];

/// shmem page cache (memfd, i915 after vma_set_file): everything works, mlock locks.
const SHMEM: Row = [
    "ok",
    "ok",
    "ok:cow",
    "rd wr sh mr mw me ms sd",
    "counted",
    "present",
    "ok",
    "ok",
    "ok",
    "ok",
    "ok",
    "ok",
    "ok",
    "ok",
    "ok",
    "ok",
    "ok",
    "ok",
    "ok",
    "ok:locked",
    "ok:refault-ok",
    "ok",
    "ok",
    "ok",
];

/// [PAGE] in VM_MIXEDMAP via vm_insert_page (vb2 vmalloc / dma-sg): order-0 pages with mapping
/// NULL. 6.1 io_uring pins, then refuses the non-shmem file VMA (io_uring/rsrc.c:io_pin_pages)
/// → EOPNOTSUPP, 6.12 pins (io_uring/memmap.c:io_pin_pages) → ok; the shared futex key needs a
/// mapping (kernel/futex/core.c:get_futex_key) → EFAULT; no ->fault, so the refault after
/// MADV_DONTNEED is SIGBUS (mm/memory.c:do_fault).
fn vb2_mixed(k: &str) -> Row {
    [
        "ok",
        "ok",
        "ok:cow",
        "rd wr sh mr mw me ms de dd sd mm",
        "counted",
        "present",
        "ok",
        "ok",
        "ok",
        if k == "6.1" { "EOPNOTSUPP" } else { "ok" },
        "ok",
        "ok",
        "ok",
        "ok",
        "ok",
        "ok",
        "EFAULT",
        "ok",
        "ok",
        "ok:not-locked",
        "ok:refault-sigbus",
        "EFAULT",
        "ok",
        "ok",
    ]
}

/// VM_IO|VM_MIXEDMAP with normal PTEs to shmem pages (rockchip, tegra): fast GUP takes the shmem
/// pages (both kernels); slow GUP refuses VM_IO (check_vma_flags), so process_vm_* EFAULT and
/// 6.1 io_uring (slow pin_user_pages) EFAULT; no `.access` → /proc/PID/mem EIO.
fn io_mixed(k: &str, refault: &'static str) -> Row {
    [
        "ok",
        "ok",
        "ok:cow",
        "rd wr sh mr mw me ms io de dd sd mm",
        "counted",
        "present",
        "ok",
        "ok",
        "ok",
        if k == "6.1" { "EFAULT" } else { "ok" },
        "EFAULT",
        "EFAULT",
        "EIO",
        "EIO",
        "ok",
        "ok",
        "ok",
        "EINVAL",
        "EINVAL",
        "ok:not-locked",
        refault,
        "EFAULT",
        "ok",
        "ok",
    ]
}

/// A fault handler that returns `vmf->page` without any VMA flag (6.1 cma-heap / udmabuf).
fn fault_page(io_uring: &'static str, futex: &'static str, rdma: &'static str) -> Row {
    [
        "ok",
        "ok",
        "EINVAL",
        "rd wr sh mr mw me ms sd",
        "counted",
        "present",
        "ok",
        "ok",
        "ok",
        io_uring,
        "ok",
        "ok",
        "ok",
        "ok",
        "ok",
        "ok",
        futex,
        "ok",
        "ok",
        "ok:locked",
        "ok:refault-ok",
        "ok",
        "ok",
        rdma,
    ]
}

fn pfn(vmflags: &'static str, changes: &[(OpKey, &'static str)]) -> Row {
    let mut r = PFN;
    r[3] = vmflags;
    for (op, v) in changes {
        r[OpKey::ALL.iter().position(|o| o == op).expect("op")] = v;
    }
    r
}

fn expected(k: &str, id: &str) -> Row {
    const IO: &str = "rd wr sh mr mw me ms pf io de dd sd";
    const NOIO: &str = "rd wr sh mr mw me ms pf de dd sd";
    const PAT: &str = "rd wr sh mr mw me ms pf io de ar dd sd";
    let new = k == "6.12";
    match id {
        // system_heap_mmap: remap_pfn_range per page, so no VM_PAT for 4 pages.
        "system-heap" => pfn(IO, &[]),
        // cma_heap_mmap: 6.8+ VM_IO|VM_PFNMAP + vmf_insert_pfn; before, vmf->page of a CMA page:
        // LONGTERM pins cannot migrate it (livelock until a signal → EINTR), mapping NULL → the
        // futex key fails.
        "cma-heap" if new => pfn(IO, &[]),
        "cma-heap" => fault_page("EINTR", "EFAULT", "EINTR"),
        // udmabuf 6.11+: VM_PFNMAP without VM_IO + vmf_insert_pfn; before, vmf->page of a shmem
        // (or hugetlb) page in a VMA whose file is the dma-buf (6.1 io_uring: EOPNOTSUPP).
        "udmabuf-shmem" | "udmabuf-hugetlb" if new => pfn(NOIO, &[]),
        "udmabuf-shmem" | "udmabuf-hugetlb" => fault_page("EOPNOTSUPP", "ok", "ok"),
        "vgem" | "virtio-gpu" | "cirrus" => pfn(NOIO, &[]),
        // TTM: ttm_bo_vm_access copies the SYSTEM/VRAM BO, so /proc/PID/mem works.
        "bochs" if !new => {
            let mut r = ["skipped"; 24];
            r[0] = "ENOSYS";
            r
        }
        // qxl on 6.1: drm_gem_dmabuf_mmap without .gem_prime_mmap → -ENOSYS.
        "qxl" if !new => {
            let mut r = ["skipped"; 24];
            r[0] = "ok";
            r[1] = "ENOSYS";
            r
        }
        "bochs" | "qxl" | "amdgpu" => pfn(
            IO,
            &[(OpKey::ProcMemRead, "ok"), (OpKey::ProcMemWrite, "ok")],
        ),
        "i915" | "memfd" => SHMEM,
        // drm_gem_dma_mmap / vb2_dc_mmap → dma_direct_mmap: one whole-VMA remap_pfn_range (VM_PAT),
        // legal on a COW mapping.
        "gem-dma" | "vivid-dma-contig" => pfn(PAT, &[(OpKey::MmapPrivate, "ok:cow")]),
        "vivid-vmalloc" | "vb2-dma-sg" => vb2_mixed(k),
        "rockchip" => io_mixed(k, "ok:refault-sigbus"),
        // tegra_bo_fault re-inserts the page after MADV_DONTNEED.
        "tegra" => io_mixed(k, "ok:refault-ok"),
        // virtio_gpu_vram_mmap: VM_MIXEDMAP, then io_remap_pfn_range of the whole VMA.
        "virtio-gpu-blob" => pfn(
            "rd wr sh mr mw me ms pf io de ar dd sd mm",
            &[(OpKey::MmapPrivate, "ok:cow")],
        ),
        other => panic!("no expectation for {other}"),
    }
}

#[test]
fn every_catalogue_exporter_matches_its_source_row_on_both_kernels() {
    let mut failures = Vec::new();
    for k in ["6.1", "6.12"] {
        for e in catalogue() {
            let got = row(k, e.id());
            let want = expected(k, e.id());
            for (op, w) in OpKey::ALL.iter().zip(want) {
                if got[op] != w {
                    failures.push(format!(
                        "{k} {} {op}: model {:?}, source {w:?}",
                        e.id(),
                        got[op]
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} cell(s) differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn catalogue_ids_are_the_documented_ones() {
    let ids: Vec<String> = catalogue().iter().map(|e| e.id().to_owned()).collect();
    assert_eq!(
        ids,
        [
            "system-heap",
            "cma-heap",
            "udmabuf-shmem",
            "udmabuf-hugetlb",
            "vgem",
            "virtio-gpu",
            "cirrus",
            "bochs",
            "qxl",
            "amdgpu",
            "i915",
            "gem-dma",
            "vivid-vmalloc",
            "vivid-dma-contig",
            "vb2-dma-sg",
            "rockchip",
            "tegra",
            "virtio-gpu-blob",
            "memfd"
        ]
    );
}

#[test]
fn system_heap_has_no_vm_pat_for_four_pages() {
    // system_heap_mmap calls remap_pfn_range once per page; track_pfn_remap sets VM_PAT only
    // when one call covers the whole VMA (arch/x86/mm/pat/memtype.c).
    for k in ["6.1", "6.12"] {
        assert_eq!(
            cell(k, "system-heap", OpKey::Vmflags),
            "rd wr sh mr mw me ms pf io de dd sd"
        );
    }
}

#[test]
fn vivid_dma_contig_has_vm_pat() {
    // kernel/dma/direct.c:dma_direct_mmap: one remap_pfn_range of the whole VMA.
    for k in ["6.1", "6.12"] {
        assert_eq!(
            cell(k, "vivid-dma-contig", OpKey::Vmflags),
            "rd wr sh mr mw me ms pf io de ar dd sd"
        );
    }
}

#[test]
fn vivid_vmalloc_io_uring_differs_between_kernels() {
    // 6.1 io_uring/rsrc.c:io_pin_pages rejects a file VMA that is not shmem/hugetlb after
    // pinning; 6.12 io_uring/memmap.c:io_pin_pages has no such check.
    assert_eq!(
        cell("6.1", "vivid-vmalloc", OpKey::IoUringRegister),
        "EOPNOTSUPP"
    );
    assert_eq!(cell("6.12", "vivid-vmalloc", OpKey::IoUringRegister), "ok");
}

#[test]
fn futex_on_vmalloc_pages_fails_after_gup_succeeds() {
    // kernel/futex/core.c:get_futex_key: GUP returns the page, folio->mapping is NULL → -EFAULT.
    for k in ["6.1", "6.12"] {
        assert_eq!(cell(k, "vivid-vmalloc", OpKey::FutexWakeShared), "EFAULT");
        assert_eq!(cell(k, "vivid-vmalloc", OpKey::OdirectRead), "ok");
        assert_eq!(cell(k, "memfd", OpKey::FutexWakeShared), "ok");
    }
}

#[test]
fn bochs_on_6_1_cannot_export() {
    // 6.1 drm_prime.c:drm_prime_handle_to_fd_ioctl: no prime_handle_to_fd → -ENOSYS; 6.6+ has
    // the generic fallback.
    let r = row("6.1", "bochs");
    assert_eq!(r[&OpKey::Export], "ENOSYS");
    assert!(r
        .iter()
        .filter(|(op, _)| **op != OpKey::Export)
        .all(|(_, v)| v == "skipped"));
    assert_eq!(cell("6.12", "bochs", OpKey::Export), "ok");
}

#[test]
fn qxl_on_6_1_exports_but_cannot_mmap() {
    // 6.1 qxl_drv.c:qxl_driver sets .prime_handle_to_fd but no .gem_prime_mmap, and
    // drm_prime.c:drm_gem_dmabuf_mmap returns -ENOSYS without one; 6.6+ calls
    // drm_gem_prime_mmap itself (the TTM row, as bochs).
    let r = row("6.1", "qxl");
    assert_eq!(r[&OpKey::Export], "ok");
    assert_eq!(r[&OpKey::MmapShared], "ENOSYS");
    assert_eq!(row("6.12", "qxl"), row("6.12", "bochs"));
}

#[test]
fn ttm_proc_mem_goes_through_vm_ops_access() {
    // drivers/gpu/drm/ttm/ttm_bo_vm.c:ttm_bo_vm_access after GUP refuses the VM_IO|VM_PFNMAP VMA.
    for (k, id) in [("6.12", "bochs"), ("6.1", "amdgpu"), ("6.12", "amdgpu")] {
        assert_eq!(cell(k, id, OpKey::ProcMemRead), "ok", "{k} {id}");
        assert_eq!(cell(k, id, OpKey::ProcMemWrite), "ok", "{k} {id}");
        assert_eq!(cell(k, id, OpKey::ProcessVmReadv), "EFAULT", "{k} {id}");
    }
    // The same shape without .access (shmem helper) gives EIO.
    assert_eq!(cell("6.12", "vgem", OpKey::ProcMemRead), "EIO");
}

#[test]
fn cma_heap_maps_normal_ptes_on_6_1_and_pfnmap_on_6_12() {
    let old = row("6.1", "cma-heap");
    assert_eq!(old[&OpKey::Vmflags], "rd wr sh mr mw me ms sd");
    assert_eq!(old[&OpKey::Rss], "counted");
    assert_eq!(old[&OpKey::Pagemap], "present");
    assert_eq!(old[&OpKey::OdirectRead], "ok");
    let new = row("6.12", "cma-heap");
    assert_eq!(new[&OpKey::Vmflags], "rd wr sh mr mw me ms pf io de dd sd");
    assert_eq!(new[&OpKey::Rss], "zero");
    assert_eq!(new[&OpKey::Pagemap], "hole");
    assert_eq!(new[&OpKey::OdirectRead], "EFAULT");
}

#[test]
fn udmabuf_maps_normal_ptes_on_6_1_and_pfnmap_without_io_on_6_12() {
    let old = row("6.1", "udmabuf-shmem");
    assert_eq!(old[&OpKey::Vmflags], "rd wr sh mr mw me ms sd");
    assert_eq!(old[&OpKey::MremapGrow], "ok");
    assert_eq!(old[&OpKey::Mlock], "ok:locked");
    let new = row("6.12", "udmabuf-shmem");
    assert_eq!(new[&OpKey::Vmflags], "rd wr sh mr mw me ms pf de dd sd");
    assert_eq!(new[&OpKey::MremapGrow], "EFAULT");
    assert_eq!(new[&OpKey::Vmsplice], "EFAULT");
}

#[test]
fn madv_dontneed_refault_without_fault_handler_is_sigbus() {
    // mm/memory.c:do_fault: no ->fault → VM_FAULT_SIGBUS once the PTE is zapped.
    for k in ["6.1", "6.12"] {
        assert_eq!(
            cell(k, "vivid-vmalloc", OpKey::MadvDontneed),
            "ok:refault-sigbus"
        );
        assert_eq!(cell(k, "memfd", OpKey::MadvDontneed), "ok:refault-ok");
        assert_eq!(cell(k, "system-heap", OpKey::MadvDontneed), "EINVAL");
    }
}

#[test]
fn private_mappings_follow_each_exporter() {
    for k in ["6.1", "6.12"] {
        for (id, v) in [
            ("system-heap", "EINVAL"),
            ("vgem", "EINVAL"),
            ("amdgpu", "EINVAL"),
            ("vivid-vmalloc", "ok:cow"),
            ("vivid-dma-contig", "ok:cow"),
            ("i915", "ok:cow"),
        ] {
            assert_eq!(cell(k, id, OpKey::MmapPrivate), v, "{k} {id}");
        }
    }
}

#[test]
fn not_built_exporters_say_why() {
    // Debian's builds: bookworm has no dma-buf heaps or udmabuf, trixie has the system heap and
    // udmabuf but not the CMA heap; no amd64 build has the ARM DRM drivers.
    let d = |id: &str, release: &str| {
        let k = pfnguard_mm::resolve_kernel(release).expect("release");
        let r = predict(
            &k,
            by_id(id.parse().expect("catalogue id")).as_ref(),
            Policy::Off,
            DEFAULT_PAGES,
        );
        let export = r.ops[&OpKey::Export].to_string();
        let why = r
            .detail
            .get("not_built")
            .and_then(|v| v.as_str().map(str::to_owned));
        (why, export.starts_with("unavailable"))
    };
    let bookworm = "6.1.0-57-amd64";
    let trixie = "6.12.117+deb13-amd64";
    assert_eq!(
        d("system-heap", bookworm),
        (Some("CONFIG_DMABUF_HEAPS is not set".into()), true)
    );
    assert_eq!(d("system-heap", trixie), (None, false));
    assert_eq!(
        d("udmabuf-shmem", bookworm),
        (Some("CONFIG_UDMABUF is not set".into()), true)
    );
    assert_eq!(d("udmabuf-shmem", trixie), (None, false));
    assert_eq!(
        d("cma-heap", trixie),
        (Some("CONFIG_DMABUF_HEAPS_CMA is not set".into()), true)
    );
    assert_eq!(
        d("tegra", trixie),
        (Some("CONFIG_DRM_TEGRA is not set".into()), true)
    );
    // A bare version names no build: every modeled exporter is there.
    assert_eq!(d("tegra", "6.12.117"), (None, false));
    assert_eq!(d("vgem", "5.10.0-46-amd64"), (None, false));
}

/// KVM on a page other than 0: `hva_to_pfn_remapped` → `kvm_try_get_pfn` →
/// `get_page_unless_zero` on the page itself (virt/kvm/kvm_main.c), which fails for the tail
/// pages of a non-compound high-order allocation (dma-direct, TTM pool) → KVM_PFN_ERR_FAULT.
fn kvm_write(k: &str, id: &str, page: u64) -> &'static str {
    let profile = kernel(k);
    let exp = by_id(id.parse().expect("catalogue id"));
    let mut kern = Kernel::new(profile, Policy::Off.mm_config());
    let cx = ExportCtx {
        policy: Policy::Off,
        pages: DEFAULT_PAGES,
    };
    let e = exp.export(&mut kern, &cx).expect("export");
    let mm = Kernel::INIT_MM;
    let addr = do_mmap(
        &mut kern,
        mm,
        Some(e.file.clone()),
        MmapArgs::new(e.size, Prot::RW, MapFlags::SHARED),
    )
    .expect("mmap");
    touch_range(&mut kern, mm, addr, e.size, true).expect("touch");
    match hva_to_pfn(&mut kern, mm, addr.add_pages(page), true).expect("hva_to_pfn") {
        KvmPfn::Pfn { .. } => "ok",
        KvmPfn::ErrFault | KvmPfn::ErrRoFault => "EFAULT",
        KvmPfn::ErrSigpending => "EINTR",
    }
}

#[test]
fn kvm_map_of_tail_pages_of_non_compound_allocations_fails() {
    assert_eq!(PAGE_SIZE, 4096);
    for k in ["6.1", "6.12"] {
        assert_eq!(kvm_write(k, "vivid-dma-contig", 0), "ok");
        for p in 1..DEFAULT_PAGES {
            assert_eq!(
                kvm_write(k, "vivid-dma-contig", p),
                "EFAULT",
                "{k} page {p}"
            );
        }
        // Order-0 pages, each refcounted: every page works.
        for p in 0..DEFAULT_PAGES {
            assert_eq!(kvm_write(k, "system-heap", p), "ok", "{k} page {p}");
            assert_eq!(kvm_write(k, "vgem", p), "ok", "{k} page {p}");
        }
    }
    assert_eq!(kvm_write("6.12", "bochs", 0), "ok");
    assert_eq!(kvm_write("6.12", "bochs", 2), "EFAULT");
    // udmabuf-hugetlb 6.12: pages 1.. are tails of the hugetlb folio (refcount 0).
    assert_eq!(kvm_write("6.12", "udmabuf-hugetlb", 0), "ok");
    assert_eq!(kvm_write("6.12", "udmabuf-hugetlb", 1), "EFAULT");
}
