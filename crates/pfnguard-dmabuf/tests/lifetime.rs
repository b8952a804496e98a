//! The end of a buffer's life and the exporter moving its memory: `Exported::release`,
//! `Exported::evict`, `Exported::move_notify` and `Exported::backing`, asserted on frame
//! refcounts, freed frames, page-table entries and kernel events.

mod common;

use std::sync::Arc;

use pfnguard_dmabuf::exporters::drm::DRM_FILE_PAGE_OFFSET_START;
use pfnguard_dmabuf::exporters::{ExportCtx, Exported};
use pfnguard_dmabuf::predict::mm_config;
use pfnguard_dmabuf::{by_id, Policy};
use pfnguard_mm::fault::touch_range;
use pfnguard_mm::fork::dup_mmap;
use pfnguard_mm::frames::Mapping;
use pfnguard_mm::io_uring::{io_sqe_buffer_register, io_sqe_buffers_unregister};
use pfnguard_mm::kernel::HeldPages;
use pfnguard_mm::mmap::{do_mmap, do_munmap};
use pfnguard_mm::{Errno, Event, Fail, Kernel, MapFlags, MmId, MmapArgs, Pfn, Prot, VirtAddr};
use pfnguard_report::ExporterId;

const PAGES: u64 = 4;
const KERNELS: [&str; 2] = ["6.12", "7.3"];

fn kernel(name: &str) -> Kernel {
    let r = common::resolved(name);
    Kernel::new(r.facts, mm_config(&r, Policy::Off))
}

fn export(k: &mut Kernel, id: ExporterId) -> Exported {
    let cx = ExportCtx {
        policy: Policy::Off,
        pages: PAGES,
    };
    by_id(id).export(k, &cx).expect("export")
}

/// `mmap(MAP_SHARED, PROT_READ|PROT_WRITE)` of the whole buffer and a write to every page.
fn map_touch(k: &mut Kernel, e: &Exported) -> VirtAddr {
    let mm = Kernel::INIT_MM;
    let addr = do_mmap(
        k,
        mm,
        Some(Arc::clone(&e.file)),
        MmapArgs::new(e.size, Prot::RW, MapFlags::SHARED),
    )
    .expect("mmap");
    touch_range(k, mm, addr, e.size, true).expect("touch");
    addr
}

fn freed(k: &Kernel, p: Pfn) -> bool {
    k.frames.is_freed(p)
}

fn refcount(k: &Kernel, p: Pfn) -> i32 {
    let f = k.frames.folio_of(p).expect("struct page");
    k.frames.folio(f).refcount
}

fn uaf(k: &Kernel) -> Vec<Pfn> {
    k.events
        .iter()
        .filter_map(|e| match e {
            Event::UseAfterFree { pfn, .. } => Some(*pfn),
            _ => None,
        })
        .collect()
}

/// The frame a present PTE at `addr` maps, if any.
fn pte_pfn(k: &Kernel, mm: MmId, addr: VirtAddr) -> Option<Pfn> {
    let pte = k.mm(mm).pt.get(addr);
    pte.present().then(|| pte.pfn())
}

const RELEASED: [ExporterId; 7] = [
    ExporterId::SystemHeap,
    ExporterId::UdmabufShmem,
    ExporterId::Vgem,
    ExporterId::Qxl,
    ExporterId::VividVmalloc,
    ExporterId::VividDmaContig,
    ExporterId::Memfd,
];

/// Mapped, touched, unmapped, released: every frame that backed the buffer is freed (none was
/// before the release), nothing is reported, the buffer has no backing left, and a second
/// release changes nothing.
#[test]
fn release_after_munmap_frees_every_frame() {
    for v in KERNELS {
        for id in RELEASED {
            let mut k = kernel(v);
            let e = export(&mut k, id);
            let addr = map_touch(&mut k, &e);
            let backing = e.backing(&k);
            assert_eq!(backing.len() as u64, PAGES, "{v} {id}: backing {backing:?}");
            do_munmap(&mut k, Kernel::INIT_MM, addr, e.size).expect("munmap");
            for &p in &backing {
                assert!(!freed(&k, p), "{v} {id}: pfn {p} freed before the release");
            }
            e.release(&mut k);
            for &p in &backing {
                assert!(freed(&k, p), "{v} {id}: pfn {p} not freed by the release");
            }
            assert!(e.backing(&k).is_empty(), "{v} {id}: backing after release");
            assert!(uaf(&k).is_empty(), "{v} {id}: {:?}", k.warnings());
            let events = k.events.len();
            e.release(&mut k);
            assert_eq!(k.events.len(), events, "{v} {id}: second release");
        }
    }
}

/// vivid-vmalloc maps its vmalloc pages with normal PTEs (`vm_insert_page()`), so io_uring can
/// pin one long term. Released after munmap with the pin held: vfree's `__free_page()` drops
/// the area's reference, the pinned page stays allocated — stale: no longer the buffer's, not
/// free — and goes when io_uring unpins it; no use-after-free at any point.
#[test]
fn release_keeps_a_pinned_vmalloc_page_until_unpin() {
    for v in KERNELS {
        let mut k = kernel(v);
        let e = export(&mut k, ExporterId::VividVmalloc);
        let addr = map_touch(&mut k, &e);
        let pinned = io_sqe_buffer_register(&mut k, Kernel::INIT_MM, addr, 1).expect("pin");
        let p = pinned[0];
        let backing = e.backing(&k);
        assert_eq!(backing[0], p, "{v}");
        do_munmap(&mut k, Kernel::INIT_MM, addr, e.size).expect("munmap");
        e.release(&mut k);
        assert!(!freed(&k, p), "{v}: the pinned page was freed");
        assert_eq!(
            refcount(&k, p),
            pfnguard_mm::frames::GUP_PIN_COUNTING_BIAS,
            "{v}: only the pin is left"
        );
        assert!(!e.backing(&k).contains(&p), "{v}");
        for &q in &backing[1..] {
            assert!(freed(&k, q), "{v}: unpinned page {q} not freed");
        }
        assert!(uaf(&k).is_empty(), "{v}: {:?}", k.warnings());
        io_sqe_buffers_unregister(&mut k);
        assert!(freed(&k, p), "{v}: not freed by the unpin");
        assert!(uaf(&k).is_empty(), "{v}: {:?}", k.warnings());
    }
}

/// Memory the driver frees whatever maps it, released while a mapping still reaches it (what
/// the caller must not do, and what a driver freeing such memory on its own schedule does):
/// dma-direct's non-compound block under vivid-dma-contig's special PTEs, and amdgpu's VRAM —
/// each frame still mapped is reported as a use-after-free. Refcounted memory in the same
/// situation (vivid-vmalloc: normal PTEs hold references) is not freed and not reported.
#[test]
fn release_while_mapped_reports_use_after_free_for_memory_without_references() {
    for v in KERNELS {
        for id in [ExporterId::VividDmaContig, ExporterId::Amdgpu] {
            let mut k = kernel(v);
            let e = export(&mut k, id);
            let addr = map_touch(&mut k, &e);
            let backing = e.backing(&k);
            assert_eq!(
                pte_pfn(&k, Kernel::INIT_MM, addr),
                Some(backing[0]),
                "{v} {id}"
            );
            assert!(uaf(&k).is_empty(), "{v} {id}");
            e.release(&mut k);
            let reported = uaf(&k);
            for &p in &backing {
                assert!(freed(&k, p), "{v} {id}: pfn {p} not freed");
                assert!(reported.contains(&p), "{v} {id}: pfn {p} not reported");
            }
        }
        let mut k = kernel(v);
        let e = export(&mut k, ExporterId::VividVmalloc);
        let addr = map_touch(&mut k, &e);
        let backing = e.backing(&k);
        e.release(&mut k);
        for &p in &backing {
            assert!(!freed(&k, p), "{v}: a mapped vmalloc page was freed");
        }
        assert!(uaf(&k).is_empty(), "{v}: {:?}", k.warnings());
        do_munmap(&mut k, Kernel::INIT_MM, addr, e.size).expect("munmap");
        for &p in &backing {
            assert!(freed(&k, p), "{v}: pfn {p} not freed by the munmap");
        }
        assert!(uaf(&k).is_empty(), "{v}: {:?}", k.warnings());
    }
}

/// qxl's dumb BO lives in TTM_PL_SYSTEM pool pages: eviction is a swapout. Every PTE of the
/// dma-buf mapping — in the parent and in a forked child, both linked into the DRM device's
/// address space through `drm_gem_dmabuf_export()`'s `f_mapping` — is zapped, the pool pages
/// are freed, the contents sit in the swap storage, and the next touch faults new pool pages in.
#[test]
fn ttm_swapout_zaps_every_mapping_and_the_next_touch_maps_new_pages() {
    for v in KERNELS {
        let mut k = kernel(v);
        let e = export(&mut k, ExporterId::Qxl);
        let addr = map_touch(&mut k, &e);
        let child = dup_mmap(&mut k, Kernel::INIT_MM).expect("fork");
        touch_range(&mut k, child, addr, e.size, false).expect("child touch");
        let old = e.backing(&k);
        assert_eq!(pte_pfn(&k, Kernel::INIT_MM, addr), Some(old[0]), "{v}");
        assert_eq!(pte_pfn(&k, child, addr), Some(old[0]), "{v}");
        e.evict(&mut k).expect("evict");
        for mm in [Kernel::INIT_MM, child] {
            for i in 0..PAGES {
                assert_eq!(
                    pte_pfn(&k, mm, addr.add_pages(i)),
                    None,
                    "{v}: {mm:?} page {i}"
                );
            }
        }
        for &p in &old {
            assert!(freed(&k, p), "{v}: old pool page {p} not freed");
        }
        let swap = e.backing(&k);
        assert_eq!(
            swap.len() as u64,
            PAGES,
            "{v}: contents in the swap storage"
        );
        assert!(
            swap.iter().all(|p| !old.contains(p) && !freed(&k, *p)),
            "{v}"
        );
        touch_range(&mut k, Kernel::INIT_MM, addr, e.size, true).expect("touch after");
        let new = e.backing(&k);
        assert_eq!(new.len() as u64, PAGES, "{v}");
        assert!(
            new.iter().all(|p| !old.contains(p) && !swap.contains(p)),
            "{v}"
        );
        assert_eq!(pte_pfn(&k, Kernel::INIT_MM, addr), Some(new[0]), "{v}");
        for &p in &swap {
            assert!(
                freed(&k, p),
                "{v}: swap storage page {p} kept after the swapin"
            );
        }
        assert!(uaf(&k).is_empty(), "{v}: {:?}", k.warnings());
    }
}

/// amdgpu's BO lives in VRAM: eviction moves it to TT pool pages and gives the VRAM back. The
/// mapping is zapped first, so no PTE reaches the freed VRAM; the next touch maps the new pages.
#[test]
fn ttm_vram_eviction_zaps_then_frees_the_vram() {
    for v in KERNELS {
        let mut k = kernel(v);
        let e = export(&mut k, ExporterId::Amdgpu);
        let addr = map_touch(&mut k, &e);
        let old = e.backing(&k);
        assert!(old.iter().all(|p| !k.frames.pfn_valid(*p)), "{v}: VRAM");
        e.evict(&mut k).expect("evict");
        assert_eq!(pte_pfn(&k, Kernel::INIT_MM, addr), None, "{v}: zapped");
        for &p in &old {
            assert!(freed(&k, p), "{v}: VRAM {p} not given back");
        }
        let new = e.backing(&k);
        assert!(
            new.iter().all(|p| k.frames.pfn_valid(*p) && !freed(&k, *p)),
            "{v}"
        );
        touch_range(&mut k, Kernel::INIT_MM, addr, e.size, true).expect("touch after");
        assert_eq!(pte_pfn(&k, Kernel::INIT_MM, addr), Some(new[0]), "{v}");
        assert!(uaf(&k).is_empty(), "{v}: {:?}", k.warnings());
    }
}

/// A page reference pins the page, not the PTE. GUP cannot take one through a TTM mapping
/// (VM_PFNMAP: io_uring's pin fails), so the reference here is an in-kernel holder's
/// `get_page()` on the BO's first page, taken before the eviction: that page stays allocated
/// — stale, no longer backing the BO, not free — the rest of the non-compound pool block is
/// freed, and the page goes when the holder puts it.
#[test]
fn ttm_page_reference_taken_before_eviction_keeps_the_old_page() {
    for v in KERNELS {
        let mut k = kernel(v);
        let e = export(&mut k, ExporterId::Qxl);
        let addr = map_touch(&mut k, &e);
        let r = io_sqe_buffer_register(&mut k, Kernel::INIT_MM, addr, 1);
        assert_eq!(
            r,
            Err(Fail::Errno(Errno::EFAULT)),
            "{v}: GUP on a TTM mapping"
        );
        let old = e.backing(&k);
        let f = k.frames.folio_of(old[0]).expect("struct page");
        k.folio_get(f, 1);
        k.held.push(HeldPages {
            holder: "driver",
            pinned: false,
            pages: vec![old[0]],
        });
        e.evict(&mut k).expect("evict");
        assert!(!freed(&k, old[0]), "{v}: the referenced page was freed");
        assert_eq!(refcount(&k, old[0]), 1, "{v}: only the holder's reference");
        assert!(!e.backing(&k).contains(&old[0]), "{v}: stale, not backing");
        for &p in &old[1..] {
            assert!(freed(&k, p), "{v}: pool page {p} not freed");
        }
        assert!(uaf(&k).is_empty(), "{v}: {:?}", k.warnings());
        k.release_held("driver");
        assert!(freed(&k, old[0]), "{v}: not freed by the last put");
        assert!(uaf(&k).is_empty(), "{v}: {:?}", k.warnings());
    }
}

/// i915's purge (the shrinker truncating an object marked I915_MADV_DONTNEED): every PTE of
/// the shmem file is zapped and the page cache emptied; a page a pin holds stays allocated
/// outside the file (no longer the buffer's backing), the others are freed, and the next touch
/// faults in a new page.
#[test]
fn i915_purge_unmaps_the_shmem_folios_and_a_pin_keeps_its_page() {
    for v in KERNELS {
        let mut k = kernel(v);
        let e = export(&mut k, ExporterId::I915);
        let addr = map_touch(&mut k, &e);
        let old = e.backing(&k);
        assert_eq!(
            old.len(),
            PAGES as usize,
            "{v}: the touch populated the cache"
        );
        let f = k.frames.folio_of(old[0]).expect("struct page");
        k.folio_get(f, 1);
        k.held.push(HeldPages {
            holder: "driver",
            pinned: true,
            pages: vec![old[0]],
        });
        e.evict(&mut k).expect("purge");
        assert!(e.backing(&k).is_empty(), "{v}: the page cache is empty");
        for i in 0..PAGES {
            assert_eq!(
                pte_pfn(&k, Kernel::INIT_MM, addr.add_pages(i)),
                None,
                "{v}: page {i}"
            );
        }
        assert!(!freed(&k, old[0]), "{v}: the pinned page was freed");
        assert_eq!(refcount(&k, old[0]), 1, "{v}: only the pin's reference");
        for &p in &old[1..] {
            assert!(freed(&k, p), "{v}: page {p} not freed");
        }
        touch_range(&mut k, Kernel::INIT_MM, addr, 1, true).expect("refault");
        let new = pte_pfn(&k, Kernel::INIT_MM, addr).expect("mapped again");
        assert_ne!(new, old[0], "{v}: the refault maps a new page");
        assert_eq!(e.backing(&k), vec![new], "{v}");
        k.release_held("driver");
        assert!(freed(&k, old[0]), "{v}: not freed by the unpin");
        assert!(uaf(&k).is_empty(), "{v}: {:?}", k.warnings());
    }
}

/// Exporters whose memory never moves: evict is -EOPNOTSUPP and changes nothing (backing and
/// PTEs as before); a released buffer cannot be evicted either.
#[test]
fn evict_is_eopnotsupp_where_the_memory_never_moves() {
    for v in KERNELS {
        for id in [
            ExporterId::SystemHeap,
            ExporterId::UdmabufShmem,
            ExporterId::Vgem,
            ExporterId::VividVmalloc,
            ExporterId::VividDmaContig,
            ExporterId::Memfd,
        ] {
            let mut k = kernel(v);
            let e = export(&mut k, id);
            let addr = map_touch(&mut k, &e);
            let backing = e.backing(&k);
            let pte = pte_pfn(&k, Kernel::INIT_MM, addr);
            assert!(pte.is_some(), "{v} {id}");
            assert_eq!(
                e.evict(&mut k),
                Err(Fail::Errno(Errno::EOPNOTSUPP)),
                "{v} {id}"
            );
            assert_eq!(e.backing(&k), backing, "{v} {id}");
            assert_eq!(pte_pfn(&k, Kernel::INIT_MM, addr), pte, "{v} {id}");
        }
        let mut k = kernel(v);
        let e = export(&mut k, ExporterId::Qxl);
        e.release(&mut k);
        assert_eq!(e.evict(&mut k), Err(Fail::Errno(Errno::EOPNOTSUPP)), "{v}");
    }
}

/// dma_buf_move_notify with no importer attached: nothing observable changes.
#[test]
fn move_notify_without_importers_changes_nothing() {
    for v in KERNELS {
        let mut k = kernel(v);
        let e = export(&mut k, ExporterId::Qxl);
        let addr = map_touch(&mut k, &e);
        let (backing, events, pte) = (
            e.backing(&k),
            k.events.len(),
            pte_pfn(&k, Kernel::INIT_MM, addr),
        );
        e.move_notify(&mut k);
        assert_eq!(e.backing(&k), backing, "{v}");
        assert_eq!(k.events.len(), events, "{v}");
        assert_eq!(pte_pfn(&k, Kernel::INIT_MM, addr), pte, "{v}");
    }
}

/// A VMA of a dma-buf fd is linked into its file's `f_mapping` (`vma_link_file()`), and a zap
/// of that address space over the range of file offsets the VMA covers reaches it: for the GEM
/// exporters the fake offset `drm_gem_prime_mmap()` added to `vm_pgoff` is in that range
/// (what `drm_vma_node_unmap()` zaps), a range beside it does not reach the VMA.
#[test]
fn unmap_mapping_range_reaches_the_vmas_of_the_address_space_by_file_offset() {
    let mut k = kernel("7.3");
    for (id, pgoff) in [
        (ExporterId::Qxl, DRM_FILE_PAGE_OFFSET_START),
        (ExporterId::Vgem, DRM_FILE_PAGE_OFFSET_START),
        (ExporterId::SystemHeap, 0),
    ] {
        let e = export(&mut k, id);
        let buf = e.buf.as_ref().expect("dma-buf");
        assert_eq!(e.file.mapping.host, Some(buf.f_mapping), "{id}");
        let addr = map_touch(&mut k, &e);
        let vma = k.mm(Kernel::INIT_MM).vma_at(addr).cloned().expect("vma");
        assert_eq!(vma.pgoff, pgoff, "{id}");
        assert_eq!(
            vma.file.and_then(|f| f.mapping.host),
            Some(buf.f_mapping),
            "{id}"
        );
        let other = k.new_address_space();
        assert_eq!(
            pfnguard_mm::zap::unmap_mapping_range(&mut k, other, 0, 0),
            0,
            "{id}: another address space"
        );
        assert_eq!(
            pfnguard_mm::zap::unmap_mapping_range(&mut k, buf.f_mapping, pgoff + PAGES, 0),
            0,
            "{id}: beyond the VMA"
        );
        assert!(pte_pfn(&k, Kernel::INIT_MM, addr).is_some(), "{id}");
        assert_eq!(
            pfnguard_mm::zap::unmap_mapping_range(&mut k, buf.f_mapping, pgoff + 1, 1),
            1,
            "{id}"
        );
        assert!(
            pte_pfn(&k, Kernel::INIT_MM, addr).is_some(),
            "{id}: page 0 kept"
        );
        assert_eq!(
            pte_pfn(&k, Kernel::INIT_MM, addr.add_pages(1)),
            None,
            "{id}: page 1"
        );
        do_munmap(&mut k, Kernel::INIT_MM, addr, e.size).expect("munmap");
    }
}

/// Every catalogue exporter on every modeled line: exported, mapped and touched where its mmap
/// works there, unmapped, released — every frame that backed it is free, nothing is reported.
#[test]
fn every_exporter_released_after_munmap_frees_its_backing() {
    for v in ["5.10", "6.1", "6.12", "7.3"] {
        for &id in ExporterId::ALL {
            let mut k = kernel(v);
            let cx = ExportCtx {
                policy: Policy::Off,
                pages: PAGES,
            };
            let Ok(e) = by_id(id).export(&mut k, &cx) else {
                continue;
            };
            let mm = Kernel::INIT_MM;
            if let Ok(addr) = do_mmap(
                &mut k,
                mm,
                Some(Arc::clone(&e.file)),
                MmapArgs::new(e.size, Prot::RW, MapFlags::SHARED),
            ) {
                let _ = touch_range(&mut k, mm, addr, e.size, true);
                do_munmap(&mut k, mm, addr, e.size).expect("munmap");
            }
            let backing = e.backing(&k);
            e.release(&mut k);
            for &p in &backing {
                assert!(freed(&k, p), "{v} {id}: pfn {p} not freed");
            }
            assert!(e.backing(&k).is_empty(), "{v} {id}");
            assert!(uaf(&k).is_empty(), "{v} {id}: {:?}", k.warnings());
        }
    }
}

/// i915 (and vgem before the shmem helper) map the object's shmem file itself: the VMA's
/// `vm_file` is `obj->filp`, not the dma-buf, so the dma-buf may go while the mapping lives.
/// `fput(obj->filp)` then leaves the page cache to the VMA: nothing is freed, nothing reported,
/// and the mapping still reaches the same pages.
#[test]
fn release_leaves_the_shmem_file_a_mapping_holds() {
    for (v, id) in [("7.3", ExporterId::I915), ("5.10", ExporterId::Vgem)] {
        let mut k = kernel(v);
        let e = export(&mut k, id);
        let addr = map_touch(&mut k, &e);
        let vma = k.mm(Kernel::INIT_MM).vma_at(addr).cloned().expect("vma");
        assert!(
            !Arc::ptr_eq(vma.file.as_ref().expect("file"), &e.file),
            "{v} {id}: vm_file is the shmem file"
        );
        let backing = e.backing(&k);
        assert_eq!(backing.len() as u64, PAGES, "{v} {id}");
        e.release(&mut k);
        for &p in &backing {
            assert!(!freed(&k, p), "{v} {id}: pfn {p} freed under its mapping");
            assert_eq!(
                refcount(&k, p),
                2,
                "{v} {id}: the page cache's and the PTE's"
            );
            let f = k.frames.folio_of(p).expect("struct page");
            assert_eq!(
                k.frames.folio(f).mapping,
                Mapping::Shmem,
                "{v} {id}: still cached"
            );
        }
        assert_eq!(
            pte_pfn(&k, Kernel::INIT_MM, addr),
            Some(backing[0]),
            "{v} {id}"
        );
        assert!(uaf(&k).is_empty(), "{v} {id}: {:?}", k.warnings());
    }
}

/// A buffer's lifetime is state of the kernel: released, evicted or swapped back in on a clone
/// of the kernel, it is untouched in the original (frames, the released flag, the backing, the
/// shmem page caches), and the other way round.
#[test]
fn a_kernel_clone_has_its_own_buffer_lifetime() {
    let ids = [
        ExporterId::SystemHeap,
        ExporterId::UdmabufShmem,
        ExporterId::Vgem,
        ExporterId::Qxl,
        ExporterId::Amdgpu,
        ExporterId::VividVmalloc,
        ExporterId::VividDmaContig,
        ExporterId::Memfd,
    ];
    for v in KERNELS {
        for id in ids {
            let mut k = kernel(v);
            let e = export(&mut k, id);
            let addr = map_touch(&mut k, &e);
            do_munmap(&mut k, Kernel::INIT_MM, addr, e.size).expect("munmap");
            let backing = e.backing(&k);
            assert!(!backing.is_empty(), "{v} {id}");
            let released = |k: &Kernel| e.buf.as_ref().is_some_and(|b| b.is_released(k));

            // Released on the clone only.
            let mut c = k.clone();
            e.release(&mut c);
            for &p in &backing {
                assert!(freed(&c, p), "{v} {id}: pfn {p} not freed in the clone");
                assert!(!freed(&k, p), "{v} {id}: pfn {p} freed in the original");
            }
            assert!(e.backing(&c).is_empty(), "{v} {id}");
            assert_eq!(e.backing(&k), backing, "{v} {id}: the original's backing");
            assert_eq!(released(&c), e.buf.is_some(), "{v} {id}");
            assert!(!released(&k), "{v} {id}: released in the original");

            // Evicted on a clone (where the exporter can): the original keeps its backing.
            let mut c = k.clone();
            if e.evict(&mut c).is_ok() {
                assert_ne!(e.backing(&c), backing, "{v} {id}: evicted");
                assert_eq!(e.backing(&k), backing, "{v} {id}: the original's backing");
                for &p in &backing {
                    assert!(!freed(&k, p), "{v} {id}: pfn {p} freed in the original");
                }
                // The original, released afterwards, frees what it has; the clone is untouched.
                let before = e.backing(&c);
                e.release(&mut k);
                assert!(!released(&c), "{v} {id}: released in the clone");
                assert_eq!(e.backing(&c), before, "{v} {id}: the clone's backing");
            } else {
                e.release(&mut k);
                assert!(!released(&c), "{v} {id}: released in the clone");
                assert_eq!(e.backing(&c), backing, "{v} {id}: the clone's backing");
                for &p in &backing {
                    assert!(!freed(&c, p), "{v} {id}: pfn {p} freed in the clone");
                }
            }
            assert!(e.backing(&k).is_empty(), "{v} {id}");
        }
    }
}

/// An exporter whose memory never moves (`Exported::backing_moves` false) has the frames it
/// exported as its backing through a mapping, a write fault on every page and an eviction
/// attempt; one whose memory moves says so, and its backing after an eviction may differ.
#[test]
fn backing_that_does_not_move_stays_the_frames_at_export() {
    let mut moving = Vec::new();
    for name in ["5.10", "6.1", "6.12", "7.3"] {
        for &id in ExporterId::ALL {
            let mut k = kernel(name);
            let cx = ExportCtx {
                policy: Policy::Off,
                pages: PAGES,
            };
            let Ok(e) = by_id(id).export(&mut k, &cx) else {
                continue;
            };
            let at_export = e.backing(&k);
            let mm = Kernel::INIT_MM;
            let args = MmapArgs::new(e.size, Prot::RW, MapFlags::SHARED);
            if let Ok(addr) = do_mmap(&mut k, mm, Some(Arc::clone(&e.file)), args) {
                // A fault may fail (SIGBUS on some exporters): the backing is asked anyway.
                let _ = touch_range(&mut k, mm, addr, e.size, true);
            }
            let evicted = e.evict(&mut k).is_ok();
            if e.backing_moves() {
                moving.push(id);
                continue;
            }
            assert!(
                !evicted,
                "{id} on {name}: evicts but says its memory never moves"
            );
            assert_eq!(
                e.backing(&k),
                at_export,
                "{id} on {name}: the backing moved"
            );
        }
    }
    for id in [ExporterId::Amdgpu, ExporterId::Qxl, ExporterId::I915] {
        assert!(moving.contains(&id), "{id} moves its memory");
    }
}
