//! Driver facts from 6.13 on, each predicted on the versions either side of its change
//! ([`either_side`]): the rows the real kernels 6.16.12 to 7.3.4 gave where they changed.

use pfnguard_dmabuf::exporters::ExportCtx;
use pfnguard_dmabuf::{by_id, predict, run_cell, Policy, DEFAULT_PAGES};
use pfnguard_mm::facts::either_side;
use pfnguard_mm::fault::touch_range;
use pfnguard_mm::mmap::do_mmap;
use pfnguard_mm::{Fact, Kernel, KernelFacts, MapFlags, MmapArgs, Prot, ResolvedKernel, PAGE_SIZE};
use pfnguard_report::{ExporterId, OpKey};

/// The kernel at `f`'s version with Debian's amd64 build (trixie's config: the real kernels
/// probed from 6.16 on are Debian's; CONFIG_DEBUG_VM off).
fn resolved(f: KernelFacts) -> ResolvedKernel {
    pfnguard_mm::resolve_kernel(&f.version().to_string())
        .expect("modeled kernel")
        .with_config(pfnguard_mm::debian::TRIXIE.config())
}

/// One predicted cell (policy `off`, the default 4 pages).
fn cell(f: KernelFacts, id: ExporterId, op: OpKey) -> String {
    predict(&resolved(f), by_id(id).as_ref(), Policy::Off, DEFAULT_PAGES).ops[&op].to_string()
}

/// drivers/gpu/drm/tiny/bochs.c: drm_gem_vram (TTM: VM_PFNMAP|VM_IO, `ttm_bo_vm_access`) before
/// 6.15, the GEM shmem helper (VM_PFNMAP, no `->access`: /proc/PID/mem EIO) since — the rows of
/// the real 6.12.117 and 6.16.12.
#[test]
fn bochs_moves_from_ttm_to_the_shmem_helper() {
    let (before, after) = either_side(Fact::BochsGemShmem);
    for (f, io, mem) in [(before, true, "ok"), (after, false, "EIO")] {
        let v = f.version();
        let flags = cell(f, ExporterId::Bochs, OpKey::Vmflags);
        assert_eq!(flags.split(' ').any(|m| m == "io"), io, "{v}: {flags}");
        assert!(flags.split(' ').any(|m| m == "pf"), "{v}: {flags}");
        assert_eq!(cell(f, ExporterId::Bochs, OpKey::ProcMemRead), mem, "{v}");
        assert_eq!(cell(f, ExporterId::Bochs, OpKey::ProcMemWrite), mem, "{v}");
        assert_eq!(
            cell(f, ExporterId::Bochs, OpKey::MmapPrivate),
            "EINVAL",
            "{v}"
        );
    }
}

/// vivid-dma-contig maps with one whole-VMA `remap_pfn_range()`: smaps `ar` (VM_PAT) before
/// 6.16, none since (mm/memory.c:remap_pfn_range_track keeps the reservation in the VMA's
/// pfnmap_track_ctx).
#[test]
fn dma_contig_loses_vm_pat() {
    let (before, after) = either_side(Fact::PfnmapTrackCtx);
    for (f, ar) in [(before, true), (after, false)] {
        let flags = cell(f, ExporterId::VividDmaContig, OpKey::Vmflags);
        assert_eq!(
            flags.split(' ').any(|m| m == "ar"),
            ar,
            "{}: {flags}",
            f.version()
        );
    }
}

/// udmabuf over an unfaulted hugetlb memfd: UDMABUF_CREATE works on 6.15 (an unreserved huge
/// page is dequeued), fails with ENOMEM on 6.16 (alloc_hugetlb_folio_reserve refuses without a
/// reservation) and works again on 6.17 (memfd_alloc_folio reserves first) — the real 6.12.117,
/// 6.16.12 and 6.17.13.
#[test]
fn udmabuf_on_a_hugetlb_memfd() {
    let (v615, v616) = either_side(Fact::HugetlbReserveGuard);
    let (v616b, v617) = either_side(Fact::MemfdHugetlbReserve);
    assert_eq!(v616, v616b);
    for (f, export) in [(v615, "ok"), (v616, "ENOMEM"), (v617, "ok")] {
        assert_eq!(
            cell(f, ExporterId::UdmabufHugetlb, OpKey::Export),
            export,
            "{}",
            f.version()
        );
    }
    assert!(cell(v616, ExporterId::UdmabufHugetlb, OpKey::Vmflags).starts_with("skipped"));
    assert_eq!(cell(v616, ExporterId::UdmabufShmem, OpKey::Export), "ok");
}

/// fs/libfs.c:init_pseudo makes the dma-buf filesystem noexec from 7.0: every dma-buf mapping
/// (heaps, udmabuf, DRM PRIME, videobuf2 EXPBUF) loses `me`; the memfd control keeps it.
#[test]
fn dma_buf_mappings_lose_mayexec() {
    let (before, after) = either_side(Fact::PseudoFsNoexec);
    for id in [
        ExporterId::SystemHeap,
        ExporterId::UdmabufShmem,
        ExporterId::Vgem,
        ExporterId::VividVmalloc,
    ] {
        for (f, me) in [(before, true), (after, false)] {
            let flags = cell(f, id, OpKey::Vmflags);
            assert_eq!(
                flags.split(' ').any(|m| m == "me"),
                me,
                "{id} {}: {flags}",
                f.version()
            );
        }
    }
    let flags = cell(after, ExporterId::Memfd, OpKey::Vmflags);
    assert!(flags.split(' ').any(|m| m == "me"), "{flags}");
}

/// udmabuf_vm_fault: from 6.14 the first fault inserts every PTE of the VMA; before, one per
/// fault.
#[test]
fn udmabuf_first_fault_populates_the_vma() {
    let (before, after) = either_side(Fact::UdmabufPrefault);
    for (f, present) in [(before, 1), (after, DEFAULT_PAGES as usize)] {
        let mut k = Kernel::new(f, Policy::Off.mm_config());
        let cx = ExportCtx {
            policy: Policy::Off,
            pages: DEFAULT_PAGES,
        };
        let e = by_id(ExporterId::UdmabufShmem)
            .export(&mut k, &cx)
            .expect("export");
        let mm = Kernel::INIT_MM;
        let a = do_mmap(
            &mut k,
            mm,
            Some(e.file.clone()),
            MmapArgs::new(e.size, Prot::RW, MapFlags::SHARED),
        )
        .expect("mmap");
        touch_range(&mut k, mm, a.add_pages(1), PAGE_SIZE, false).expect("touch one page");
        let n = k
            .mm(mm)
            .pt
            .collect_in(a, a.add_pages(DEFAULT_PAGES))
            .iter()
            .filter(|(_, p)| p.present() && p.special())
            .count();
        assert_eq!(n, present, "{}", f.version());
    }
}

/// udmabuf's size_limit_mb: 64 MiB until 7.3 (UDMABUF_CREATE of 64 MiB + 4 KiB → EINVAL),
/// INT_MAX since.
#[test]
fn udmabuf_beyond_64_mib() {
    let (before, after) = either_side(Fact::UdmabufSizeLimitIntMax);
    let pages = (64 << 20) / PAGE_SIZE + 1;
    for (f, export) in [(before, "EINVAL"), (after, "ok")] {
        let c = run_cell(
            &resolved(f),
            by_id(ExporterId::UdmabufShmem).as_ref(),
            Policy::Off,
            OpKey::Export,
            pages,
            false,
        );
        assert_eq!(c.value.to_string(), export, "{}", f.version());
        let c = run_cell(
            &resolved(f),
            by_id(ExporterId::UdmabufShmem).as_ref(),
            Policy::Off,
            OpKey::Export,
            pages - 1,
            false,
        );
        assert_eq!(c.value.to_string(), "ok", "{}: exactly 64 MiB", f.version());
    }
}

/// system_heap_mmap: before 6.17 one remap_pfn_range() per page, so MAP_PRIVATE of a 64 KiB
/// buffer (one order-4 chunk) fails the COW rule (`addr != vm_start`) with EINVAL; since, one
/// remap per chunk covers the whole VMA and the private mapping CoWs. Two chunks (32 pages:
/// order 4 twice) still fail, and the 4-page buffers the real kernels were probed with are
/// four order-0 chunks either way.
#[test]
fn system_heap_private_mapping_inside_one_chunk() {
    let (before, after) = either_side(Fact::SystemHeapChunkRemap);
    let private = |f: KernelFacts, pages: u64| {
        run_cell(
            &resolved(f),
            by_id(ExporterId::SystemHeap).as_ref(),
            Policy::Off,
            OpKey::MmapPrivate,
            pages,
            false,
        )
        .value
        .to_string()
    };
    assert_eq!(private(before, 16), "EINVAL");
    assert_eq!(private(after, 16), "ok:cow");
    for f in [before, after] {
        assert_eq!(private(f, 32), "EINVAL", "{}", f.version());
        assert_eq!(private(f, DEFAULT_PAGES), "EINVAL", "{}", f.version());
        assert_eq!(
            cell(f, ExporterId::SystemHeap, OpKey::MmapShared),
            "ok",
            "{}",
            f.version()
        );
    }
}
