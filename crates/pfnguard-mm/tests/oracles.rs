//! The model test oracles of `docs/mm-semantics.md` §13, one test per numbered oracle, on every
//! line from 5.10 to 7.3. Where that text and the Debian sources disagree the source wins, a comment names
//! the function, and the disagreement is listed under "Corrections found against the source" at
//! the end of `docs/mm-semantics.md`.

mod common;

use common::*;
use pfnguard_mm::access::{proc_mem_rw, process_vm_rw};
use pfnguard_mm::bio::{bio_iov_iter_get_pages, bio_release_pages};
use pfnguard_mm::coredump::{core_dump, filter, DumpedVma};
use pfnguard_mm::facts::every_line;
use pfnguard_mm::fault::{handle_mm_fault, user_access};
use pfnguard_mm::fork::dup_mmap;
use pfnguard_mm::frames::{AllocSpec, FolioFlags, Mapping};
use pfnguard_mm::gup::{
    self, get_user_pages, get_user_pages_fast, pin_user_pages, pin_user_pages_fast, FastStop, Foll,
};
use pfnguard_mm::insert::{self, VmallocArea};
use pfnguard_mm::kvm::{hva_to_pfn, kvm_release_pfn, KvmPfn};
use pfnguard_mm::madvise::{madvise, mlock, Advice};
use pfnguard_mm::mmap::{do_mmap, do_munmap};
use pfnguard_mm::mremap::{mremap, MremapFlags};
use pfnguard_mm::normal_page::vm_normal_page;
use pfnguard_mm::pagetable::{PgProt, Pte};
use pfnguard_mm::proc::{pagemap_entry, pm, smaps, status};
use pfnguard_mm::splice::{pipe_read_all, vmsplice_to_pipe};
use pfnguard_mm::umem::ib_umem_get;
use pfnguard_mm::vma::FaultFlags;
use pfnguard_mm::{
    Config, Errno, Event, Fact, Fail, Kernel, KernelFacts, MapFlags, MmapArgs, Pfn, Prot,
    RssCounter, Signal, VirtAddr, VmFault, VmFlags, PAGE_SIZE,
};

fn efault<T: std::fmt::Debug>(r: Result<T, Fail>) {
    assert_eq!(r.unwrap_err(), Fail::Errno(Errno::EFAULT));
}

fn rss(k: &Kernel, c: RssCounter) -> i64 {
    k.mm(MM).counter(c)
}

fn all_rss_zero(k: &Kernel) -> bool {
    k.mm(MM).rss == [0; 4]
}

fn smaps_at(k: &Kernel, a: VirtAddr) -> pfnguard_mm::proc::Smaps {
    let v = k.mm(MM).vma_at(a).expect("VMA").clone();
    smaps(k, MM, &v)
}

fn gup_fast_stop(k: &mut Kernel, a: VirtAddr, flags: Foll) -> (u64, FastStop, Vec<Pfn>) {
    let mut v = Vec::new();
    let (n, s) = gup::gup_fast(k, MM, a, 1, flags, &mut v);
    (n, s, v)
}

#[test]
fn oracle_01_remap_pfn_range_special_pte() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a, page) = setup_remap(&mut k);
        let f = vflags(&k, MM, a);
        assert!(f.contains(VmFlags::IO | VmFlags::PFNMAP | VmFlags::DONTEXPAND | VmFlags::DONTDUMP));
        assert_eq!(
            f.contains(VmFlags::PAT),
            !p.has(Fact::PfnmapTrackCtx),
            "whole-VMA remap sets VM_PAT until the PAT reservation moves to pfnmap_track_ctx"
        );
        assert!(!f.contains(VmFlags::MIXEDMAP));
        assert!(k.vma(vid(&k, MM, a)).unwrap().pat_reserved);
        let e = pte(&k, MM, a);
        assert!(e.present() && e.access_permitted(true) && e.special());
        assert_eq!(e.pfn(), page);
        assert_eq!((refc(&k, page), mapc(&k, page)), (1, 0));
        assert!(all_rss_zero(&k));
        assert_eq!(k.nr_file_mapped, 0);
    }
}

#[test]
fn oracle_02_remap_get_user_pages_fast_efault() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a, page) = setup_remap(&mut k);
        assert_eq!(gup_fast_stop(&mut k, a, Foll::GET).1, FastStop::Special);
        let mut v = Vec::new();
        efault(get_user_pages_fast(&mut k, MM, a, 1, Foll::empty(), &mut v));
        assert!(v.is_empty());
        assert_eq!(refc(&k, page), 1);
    }
}

#[test]
fn oracle_03_remap_longterm_pin_efault() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a, page) = setup_remap(&mut k);
        let mut v = Vec::new();
        efault(pin_user_pages_fast(
            &mut k,
            MM,
            a,
            1,
            Foll::LONGTERM | Foll::WRITE,
            &mut v,
        ));
        assert!(!pinned(&k, page));
        assert_eq!(refc(&k, page), 1);
        assert!(k.mm(MM).has_pinned, "MMF_HAS_PINNED is set before the walk");
    }
}

#[test]
fn oracle_04_remap_smaps() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a, _) = setup_remap(&mut k);
        let s = smaps_at(&k, a);
        assert_eq!((s.rss_kb, s.pss_kb, s.size_kb), (0, 0, 4));
        let mut want = vec!["rd", "wr", "sh", "mr", "mw", "me", "ms", "pf", "io", "de"];
        if !p.has(Fact::PfnmapTrackCtx) {
            want.push("ar");
        }
        want.extend(["dd", "sd"]);
        assert_eq!(s.vmflags, want);
    }
}

#[test]
fn oracle_05_private_per_page_remap() {
    for p in every_line() {
        let mut k = kernel(p);
        let pages = vec![drvpage(&mut k), drvpage(&mut k)];
        let drv = Driver {
            action: MmapAction::RemapPerPage(pages.clone()),
            ..Driver::default()
        };
        let r = map(&mut k, MM, drv, 2, Prot::RW, MapFlags::PRIVATE, true);
        assert_eq!(r.unwrap_err(), Fail::Errno(Errno::EINVAL));
        assert!(k.mm(MM).vmas.is_empty(), "the failed VMA is gone");
        assert!(k
            .mm(MM)
            .pt
            .collect_in(VirtAddr(0), VirtAddr(1 << 47))
            .is_empty());
        assert_eq!(refc(&k, pages[0]), 1);

        let one = vec![drvpage(&mut k)];
        let drv = Driver {
            action: MmapAction::RemapPerPage(one.clone()),
            ..Driver::default()
        };
        let a = map(&mut k, MM, drv, 1, Prot::RW, MapFlags::PRIVATE, true).unwrap();
        let v = k.vma(vid(&k, MM, a)).unwrap();
        assert_eq!(v.pgoff, one[0].0, "COW remap sets vm_pgoff = pfn");
        assert!(v.flags.contains(VmFlags::PFNMAP) && v.pat_reserved);
        assert_eq!(v.flags.contains(VmFlags::PAT), !p.has(Fact::PfnmapTrackCtx));
    }
}

#[test]
fn oracle_06_vm_insert_page_normal_pte() {
    for p in every_line() {
        let mut k = kernel(p);
        let page = drvpage(&mut k);
        let a = setup_insert(&mut k, page);
        let f = vflags(&k, MM, a);
        assert!(f.contains(VmFlags::MIXEDMAP));
        assert!(
            !f.intersects(VmFlags::PFNMAP | VmFlags::IO | VmFlags::DONTEXPAND | VmFlags::DONTDUMP)
        );
        let e = pte(&k, MM, a);
        assert!(e.present() && !e.special());
        assert_eq!(e.pfn(), page);
        assert_eq!((refc(&k, page), mapc(&k, page)), (2, 1));
        // 6.1 caches the increment per task (SPLIT_RSS_COUNTING); the model keeps the synced value.
        assert_eq!(rss(&k, RssCounter::File), 1);
        assert_eq!(k.nr_file_mapped, 1);
    }
}

#[test]
fn oracle_07_insert_page_longterm_pin_nullmap() {
    for p in every_line() {
        let mut k = kernel(p);
        let page = drvpage(&mut k);
        let a = setup_insert(&mut k, page);
        let (n, stop, got) = gup_fast_stop(&mut k, a, Foll::PIN | Foll::LONGTERM);
        if p.has(Fact::GupFastFolioAllowed) && !p.has(Fact::GupFastNullMapping) {
            assert_eq!((n, stop), (0, FastStop::FolioNotAllowed));
            assert_eq!(refc(&k, page), 2, "fast path pinned, refused, unpinned");
        } else {
            assert_eq!((n, stop), (1, FastStop::Done));
            k.unpin_user_pages(&got);
        }
        let mut v = Vec::new();
        assert_eq!(
            pin_user_pages_fast(&mut k, MM, a, 1, Foll::LONGTERM, &mut v),
            Ok(1)
        );
        assert_eq!(v, vec![page]);
        assert_eq!(refc(&k, page), 1026);
        assert!(pinned(&k, page));
    }
}

#[test]
fn oracle_08_big_folio_longterm_pin_fast() {
    for p in every_line() {
        let mut k = kernel(p);
        let page = bigpage(&mut k);
        let a = setup_insert(&mut k, page);
        let (r0, p0) = (refc(&k, page), pinc(&k, page));
        let (n, stop, got) = gup_fast_stop(&mut k, a, Foll::PIN | Foll::LONGTERM);
        assert_eq!((n, stop), (1, FastStop::Done));
        assert_eq!((refc(&k, page), pinc(&k, page)), (r0 + 1, p0 + 1));
        k.unpin_user_pages(&got);
        let mut v = Vec::new();
        assert_eq!(
            pin_user_pages_fast(&mut k, MM, a, 1, Foll::LONGTERM, &mut v),
            Ok(1)
        );
        assert_eq!((refc(&k, page), pinc(&k, page)), (r0 + 1, 1));
    }
}

#[test]
fn oracle_09_longterm_write_pin_dirty_tracking() {
    for p in every_line() {
        let mut k = kernel(p);
        let page = drvpage(&mut k);
        let a = setup_insert(&mut k, page);
        let mut v = Vec::new();
        assert_eq!(
            pin_user_pages_fast(&mut k, MM, a, 1, Foll::LONGTERM | Foll::WRITE, &mut v),
            Ok(1)
        );

        let mut k = kernel(p);
        let page = drvpage(&mut k);
        let drv = Driver {
            action: MmapAction::InsertPage(vec![page]),
            page_mkwrite: true,
            ..Driver::default()
        };
        let a = map_shared(&mut k, drv, 1).unwrap();
        let mut v = Vec::new();
        let r = pin_user_pages_fast(&mut k, MM, a, 1, Foll::LONGTERM | Foll::WRITE, &mut v);
        if p.has(Fact::GupWritableFileMapping) {
            efault(r);
            assert_eq!(refc(&k, page), 2);
        } else {
            // 6.1 has no writable_file_mapping_allowed() (mm/gup.c:check_vma_flags).
            assert_eq!(r, Ok(1));
        }
    }
}

#[test]
fn oracle_10_get_user_pages_and_put() {
    for p in every_line() {
        let mut k = kernel(p);
        let page = drvpage(&mut k);
        let a = setup_insert(&mut k, page);
        let mut v = Vec::new();
        assert_eq!(
            get_user_pages(&mut k, MM, a, 1, Foll::empty(), &mut v),
            Ok(1)
        );
        assert_eq!(refc(&k, page), 3);
        k.put_pages(&v);
        assert_eq!(refc(&k, page), 2);
    }
}

#[test]
fn oracle_11_vm_insert_page_pfnmap_bug() {
    for p in every_line() {
        let mut k = kernel(p);
        let page = drvpage(&mut k);
        let drv = Driver {
            pre_flags: VmFlags::PFNMAP,
            action: MmapAction::InsertPage(vec![page]),
            ..Driver::default()
        };
        let r = map_shared(&mut k, drv, 1).unwrap_err();
        assert!(is_bug(&r, "vma->vm_flags & VM_PFNMAP"), "{r:?}");
        assert!(k.oops.is_some());

        // 6.1 mm/memory.c:vm_insert_page tests page_count() before the BUG_ONs.
        let mut k = kernel(p);
        let block = k
            .frames
            .alloc(AllocSpec {
                order: 1,
                compound: false,
                mapping: Mapping::None,
                flags: pfnguard_mm::frames::FolioFlags::empty(),
            })
            .unwrap();
        let tail = Pfn(block.0 + 1);
        let drv = Driver {
            pre_flags: VmFlags::PFNMAP,
            action: MmapAction::InsertPage(vec![tail]),
            ..Driver::default()
        };
        let r = map_shared(&mut k, drv, 1).unwrap_err();
        if !p.has(Fact::InsertCountInValidate) {
            assert_eq!(r, Fail::Errno(Errno::EINVAL));
        } else {
            assert!(is_bug(&r, "vma->vm_flags & VM_PFNMAP"));
        }
    }
}

#[test]
fn oracle_12_pfnmap_mixedmap_insert_fast_gup_bypass() {
    for p in every_line() {
        let mut k = kernel(p);
        let page = drvpage(&mut k);
        let drv = Driver {
            pre_flags: VmFlags::PFNMAP | VmFlags::MIXEDMAP,
            action: MmapAction::InsertPage(vec![page]),
            ..Driver::default()
        };
        let a = map_shared(&mut k, drv, 1).unwrap();
        assert!(k.events.is_empty() && k.oops.is_none());
        assert!(!pte(&k, MM, a).special());
        assert_eq!(refc(&k, page), 2);
        assert_eq!(rss(&k, RssCounter::File), 1);
        let mut v = Vec::new();
        efault(get_user_pages(&mut k, MM, a, 1, Foll::empty(), &mut v));
        let r = get_user_pages_fast(&mut k, MM, a, 1, Foll::empty(), &mut v);
        if p.has(Fact::GupFastFolioAllowed) && !p.has(Fact::GupFastNullMapping) {
            efault(r);
        } else {
            assert_eq!(r, Ok(1));
            assert_eq!(v, vec![page]);
        }

        let mut k = kernel(p);
        let big = bigpage(&mut k);
        let drv = Driver {
            pre_flags: VmFlags::PFNMAP | VmFlags::MIXEDMAP,
            action: MmapAction::InsertPage(vec![big]),
            ..Driver::default()
        };
        let a = map_shared(&mut k, drv, 1).unwrap();
        let mut v = Vec::new();
        assert_eq!(
            get_user_pages_fast(&mut k, MM, a, 1, Foll::empty(), &mut v),
            Ok(1)
        );
        assert_eq!(v, vec![big]);

        // Under P3 (Config::pfnmap_insert_check): WARN and -EINVAL, no PTE.
        let mut k = Kernel::new(
            p,
            Config {
                pfnmap_insert_check: true,
                ..Config::default()
            },
        );
        let page = drvpage(&mut k);
        let drv = Driver {
            pre_flags: VmFlags::PFNMAP | VmFlags::MIXEDMAP,
            action: MmapAction::InsertPage(vec![page]),
            ..Driver::default()
        };
        assert_eq!(
            map_shared(&mut k, drv, 1).unwrap_err(),
            Fail::Errno(Errno::EINVAL)
        );
        assert_eq!(warns_at(&k, "mm/memory.c:vm_pfnmap_insert_refused"), 1);
        assert!(k
            .mm(MM)
            .pt
            .collect_in(VirtAddr(0), VirtAddr(1 << 47))
            .is_empty());
        assert_eq!(refc(&k, page), 1);
    }
}

#[test]
fn oracle_13_vm_io_vm_map_pages_shmem() {
    for p in every_line() {
        let mut k = kernel(p);
        let shm = vec![shmpage(&mut k), shmpage(&mut k)];
        let drv = Driver {
            pre_flags: VmFlags::IO,
            action: MmapAction::MapPages(shm.clone()),
            ..Driver::default()
        };
        let a = map_shared(&mut k, drv, 2).unwrap();
        let f = vflags(&k, MM, a);
        assert!(f.contains(VmFlags::IO | VmFlags::MIXEDMAP) && !f.contains(VmFlags::PFNMAP));
        assert_eq!(rss(&k, RssCounter::Shmem), 2);
        let mut v = Vec::new();
        efault(get_user_pages(&mut k, MM, a, 1, Foll::empty(), &mut v));
        assert_eq!(
            get_user_pages_fast(&mut k, MM, a, 1, Foll::empty(), &mut v),
            Ok(1)
        );
        k.put_pages(&v);
        let mut v = Vec::new();
        assert_eq!(
            pin_user_pages_fast(&mut k, MM, a, 1, Foll::LONGTERM | Foll::WRITE, &mut v),
            Ok(1)
        );
        k.unpin_user_pages(&v);
        let r = io_uring_register(&mut k, MM, a, 2);
        if p.has(Fact::IoUringPinFast) {
            assert_eq!(r.as_ref().map(|v| v.len()), Ok(2));
            assert!(pinned(&k, shm[0]) && pinned(&k, shm[1]));
        } else {
            efault(r);
            assert!(!pinned(&k, shm[0]));
        }

        // A ZONE_MOVABLE shm page: the LONGTERM fast path refuses it, the slow path sees VM_IO.
        let mut k = kernel(p);
        let mv = k
            .frames
            .alloc(AllocSpec {
                flags: AllocSpec::SHMEM.flags | FolioFlags::ZONE_MOVABLE,
                ..AllocSpec::SHMEM
            })
            .unwrap();
        let drv = Driver {
            pre_flags: VmFlags::IO,
            action: MmapAction::MapPages(vec![mv]),
            ..Driver::default()
        };
        let a = map_shared(&mut k, drv, 1).unwrap();
        let mut v = Vec::new();
        let r = pin_user_pages_fast(&mut k, MM, a, 1, Foll::LONGTERM | Foll::WRITE, &mut v);
        if p.has(Fact::GupLongtermMovable) {
            efault(r);
            assert!(!pinned(&k, mv));
        } else {
            // 5.10 mm/gup.c:lockless_pages_from_mm pins any page for FOLL_LONGTERM.
            assert_eq!(r, Ok(1));
            assert!(pinned(&k, mv));
        }
    }
}

#[test]
fn oracle_14_vm_insert_page_from_fault() {
    for p in every_line() {
        let mut k = kernel(p);
        let page = drvpage(&mut k);
        let drv = Driver {
            fault: FaultAction::InsertPage(vec![page]),
            ..Driver::default()
        };
        let a = map_shared(&mut k, drv, 1).unwrap();
        let r = user_access(&mut k, MM, a, false).unwrap_err();
        assert!(is_bug(&r, "mmap_read_trylock(vma->vm_mm)"), "{r:?}");
        assert_eq!(user_access(&mut k, MM, a, false).unwrap_err(), r);

        let mut k = kernel(p);
        let page = drvpage(&mut k);
        let drv = Driver {
            pre_flags: VmFlags::MIXEDMAP,
            fault: FaultAction::InsertPage(vec![page]),
            ..Driver::default()
        };
        let a = map_shared(&mut k, drv, 1).unwrap();
        let id = vid(&k, MM, a);
        assert_eq!(
            handle_mm_fault(&mut k, id, a, FaultFlags::default()),
            Ok(VmFault::NOPAGE)
        );
        assert!(!pte(&k, MM, a).special());
        assert_eq!((refc(&k, page), mapc(&k, page)), (2, 1));
        assert_eq!(rss(&k, RssCounter::File), 1);
    }
}

#[test]
fn oracle_15_vm_insert_page_errors() {
    for p in every_line() {
        let mut k = kernel(p);
        let page = drvpage(&mut k);
        let drv = Driver {
            action: MmapAction::InsertPage(vec![page]),
            ..Driver::default()
        };
        let a = map_shared(&mut k, drv, 4).unwrap();
        let id = vid(&k, MM, a);
        let other = drvpage(&mut k);
        let e = |r: Result<(), Fail>| r.unwrap_err();
        assert_eq!(
            e(insert::vm_insert_page(&mut k, id, a.add_pages(4), other)),
            Fail::Errno(Errno::EFAULT)
        );
        let anon = anonpage(&mut k);
        assert_eq!(
            e(insert::vm_insert_page(&mut k, id, a.add_pages(1), anon)),
            Fail::Errno(Errno::EINVAL)
        );
        let slab = k
            .frames
            .alloc(AllocSpec {
                flags: FolioFlags::SLAB,
                ..AllocSpec::DRIVER_PAGE
            })
            .unwrap();
        assert_eq!(
            e(insert::vm_insert_page(&mut k, id, a.add_pages(1), slab)),
            Fail::Errno(Errno::EINVAL)
        );
        let block = k
            .frames
            .alloc(AllocSpec {
                order: 1,
                compound: false,
                mapping: Mapping::None,
                flags: pfnguard_mm::frames::FolioFlags::empty(),
            })
            .unwrap();
        assert_eq!(
            e(insert::vm_insert_page(
                &mut k,
                id,
                a.add_pages(1),
                Pfn(block.0 + 1)
            )),
            Fail::Errno(Errno::EINVAL)
        );
        assert!(pte(&k, MM, a.add_pages(1)).is_none());
        assert_eq!(
            e(insert::vm_insert_page(&mut k, id, a, other)),
            Fail::Errno(Errno::EBUSY)
        );
        assert_eq!(
            insert::vmf_insert_page(&mut k, id, a, other),
            Ok(VmFault::NOPAGE)
        );
        assert_eq!(refc(&k, other), 1);
        assert_eq!(pte(&k, MM, a).pfn(), page);
    }
}

#[test]
fn oracle_16_zero_page_6_12() {
    let p = KernelFacts::of("6.12.117");
    let mut k = kernel(p);
    let zero = k.frames.zero_pfn();
    let drv = Driver {
        action: MmapAction::InsertPage(vec![zero]),
        ..Driver::default()
    };
    assert_eq!(
        map_shared(&mut k, drv, 1).unwrap_err(),
        Fail::Errno(Errno::EINVAL)
    );
    // O_RDONLY fd: no VM_WRITE, no VM_MAYWRITE.
    for (prot, flags, writable_fd) in [
        (Prot::R, MapFlags::SHARED, false),
        (Prot::RW, MapFlags::PRIVATE, true),
    ] {
        let mut k = kernel(p);
        let r0 = refc(&k, zero);
        let drv = Driver {
            action: MmapAction::InsertPage(vec![zero]),
            ..Driver::default()
        };
        let a = map(&mut k, MM, drv, 1, prot, flags, writable_fd).unwrap();
        let e = pte(&k, MM, a);
        assert!(e.present() && e.special() && e.pfn() == zero);
        assert_eq!(refc(&k, zero), r0);
        assert!(all_rss_zero(&k));
        assert_eq!(k.nr_file_mapped, 0);
    }
}

#[test]
fn oracle_16_zero_page_6_1() {
    let mut k = kernel(KernelFacts::of("6.1.192"));
    let zero = k.frames.zero_pfn();
    let r0 = refc(&k, zero);
    let drv = Driver {
        action: MmapAction::InsertPage(vec![zero]),
        ..Driver::default()
    };
    let a = map_shared(&mut k, drv, 1).unwrap();
    let e = pte(&k, MM, a);
    assert!(e.present() && !e.special() && e.pfn() == zero);
    assert_eq!(refc(&k, zero), r0 + 1);
    assert_eq!(mapc(&k, zero), 1);
    assert_eq!(rss(&k, RssCounter::File), 1);
}

#[test]
fn oracle_17_vm_insert_pages_partial() {
    for p in every_line() {
        let mut k = kernel(p);
        let a = map_shared(
            &mut k,
            Driver {
                pre_flags: VmFlags::MIXEDMAP,
                ..Driver::default()
            },
            4,
        )
        .unwrap();
        let id = vid(&k, MM, a);
        let pages = vec![
            drvpage(&mut k),
            drvpage(&mut k),
            anonpage(&mut k),
            drvpage(&mut k),
        ];
        let (r, num) = insert::vm_insert_pages(&mut k, id, a, &pages);
        assert_eq!((r, num), (Err(Fail::Errno(Errno::EINVAL)), 2));
        assert_eq!((refc(&k, pages[0]), refc(&k, pages[1])), (2, 2));
        assert_eq!(refc(&k, pages[3]), 1);
        assert!(pte(&k, MM, a.add_pages(1)).present());
        assert!(pte(&k, MM, a.add_pages(2)).is_none() && pte(&k, MM, a.add_pages(3)).is_none());
        assert_eq!(rss(&k, RssCounter::File), 2);
    }
}

#[test]
fn oracle_18_vm_map_pages_enxio() {
    for p in every_line() {
        for (pgoff, num, len) in [(2u64, 2usize, 1u64), (2, 3, 2)] {
            let mut k = kernel(p);
            let pages: Vec<Pfn> = (0..num).map(|_| drvpage(&mut k)).collect();
            let drv = Driver {
                action: MmapAction::MapPages(pages),
                ..Driver::default()
            };
            let mut args = MmapArgs::new(len * PAGE_SIZE, Prot::RW, MapFlags::SHARED);
            args.pgoff = pgoff;
            let r = do_mmap(&mut k, MM, Some(dev_file(drv, true)), args);
            assert_eq!(
                r.unwrap_err(),
                Fail::Errno(Errno::ENXIO),
                "pgoff {pgoff} num {num}"
            );
        }
    }
}

fn pfnmap_lazy(k: &mut Kernel, base: Pfn, pages: u64) -> VirtAddr {
    let drv = Driver {
        pre_flags: VmFlags::PFNMAP | VmFlags::IO | VmFlags::DONTEXPAND | VmFlags::DONTDUMP,
        fault: FaultAction::InsertPfn(base),
        ..Driver::default()
    };
    map_shared(k, drv, pages).unwrap()
}

#[test]
fn oracle_19_vmf_insert_pfn_from_fault() {
    for p in every_line() {
        let mut k = kernel(p);
        let page = drvpage(&mut k);
        let a = pfnmap_lazy(&mut k, page, 1);
        let id = vid(&k, MM, a);
        assert_eq!(
            handle_mm_fault(&mut k, id, a, FaultFlags::default()),
            Ok(VmFault::NOPAGE)
        );
        let e = pte(&k, MM, a);
        assert!(e.special() && e.pfn() == page);
        assert_eq!((refc(&k, page), mapc(&k, page)), (1, 0));
        assert!(all_rss_zero(&k));
        assert_eq!(
            insert::vmf_insert_pfn(&mut k, id, a, page),
            Ok(VmFault::NOPAGE)
        );
        assert_eq!(pte(&k, MM, a), e);
        assert_eq!(refc(&k, page), 1);
        user_access(&mut k, MM, a, true).unwrap();
    }
}

#[test]
fn oracle_20_vmf_insert_pfn_bugs() {
    let cases: [(VmFlags, MapFlags, bool, &str); 4] = [
        (
            VmFlags::empty(),
            MapFlags::SHARED,
            false,
            "!(vma->vm_flags & (VM_PFNMAP|VM_MIXEDMAP))",
        ),
        (
            VmFlags::PFNMAP | VmFlags::MIXEDMAP,
            MapFlags::SHARED,
            false,
            "(vma->vm_flags & (VM_PFNMAP|VM_MIXEDMAP)) == (VM_PFNMAP|VM_MIXEDMAP)",
        ),
        (
            VmFlags::PFNMAP,
            MapFlags::PRIVATE,
            false,
            "(vma->vm_flags & VM_PFNMAP) && is_cow_mapping(vma->vm_flags)",
        ),
        (
            VmFlags::MIXEDMAP,
            MapFlags::SHARED,
            true,
            "(vma->vm_flags & VM_MIXEDMAP) && pfn_valid(pfn)",
        ),
    ];
    for p in every_line() {
        for (flags, mf, ram, assertion) in cases {
            let mut k = kernel(p);
            let pfn = if ram {
                drvpage(&mut k)
            } else {
                k.frames.alloc_device(1)
            };
            let drv = Driver {
                pre_flags: flags,
                ..Driver::default()
            };
            let a = map(&mut k, MM, drv, 1, Prot::RW, mf, true).unwrap();
            let id = vid(&k, MM, a);
            let r = insert::vmf_insert_pfn(&mut k, id, a, pfn).unwrap_err();
            assert!(is_bug(&r, assertion), "{r:?}");
        }
        let mut k = kernel(p);
        let dev = k.frames.alloc_device(1);
        let a = map_shared(
            &mut k,
            Driver {
                pre_flags: VmFlags::PFNMAP,
                ..Driver::default()
            },
            1,
        )
        .unwrap();
        let id = vid(&k, MM, a);
        assert_eq!(
            insert::vmf_insert_pfn(&mut k, id, a.add_pages(1), dev),
            Ok(VmFault::SIGBUS)
        );
    }
}

#[test]
fn oracle_21_vmf_insert_mixed_special() {
    for p in every_line() {
        let mut k = kernel(p);
        let page = drvpage(&mut k);
        let a = setup_mixed(&mut k, page);
        let e = pte(&k, MM, a);
        assert!(e.special() && e.pfn() == page);
        assert_eq!(refc(&k, page), 1);
        let mut v = Vec::new();
        if p.has(Fact::GupPfnPteEexistBails) {
            assert_eq!(
                get_user_pages(&mut k, MM, a, 1, Foll::empty(), &mut v).unwrap_err(),
                Fail::Errno(Errno::EEXIST)
            );
            assert_eq!(
                pin_user_pages_fast(&mut k, MM, a, 1, Foll::empty(), &mut v).unwrap_err(),
                Fail::Errno(Errno::EEXIST)
            );
        } else {
            // 5.10 mm/gup.c:follow_pfn_pte: FOLL_GET -> -EFAULT; FOLL_PIN counted, no page.
            efault(get_user_pages(&mut k, MM, a, 1, Foll::empty(), &mut v));
            assert_eq!(
                pin_user_pages_fast(&mut k, MM, a, 1, Foll::empty(), &mut v),
                Ok(1)
            );
            assert!(v.is_empty());
        }
        let id = vid(&k, MM, a);
        assert_eq!(
            gup::populate_vma_page_range(&mut k, id, a, a.add_pages(1)),
            Ok(1)
        );
        assert_eq!(hva_to_pfn(&mut k, MM, a, true), Ok(KvmPfn::ErrFault));
        assert_eq!(hva_to_pfn(&mut k, MM, a, false), Ok(KvmPfn::ErrFault));
        assert_eq!(refc(&k, page), 1);
    }
}

#[test]
fn oracle_22_vmf_insert_mixed_pfnmap_dev() {
    for p in every_line() {
        let mut k = kernel(p);
        let dev = k.frames.alloc_device(1);
        let drv = Driver {
            pre_flags: VmFlags::PFNMAP,
            fault: FaultAction::InsertMixedDev(dev),
            ..Driver::default()
        };
        let a = map_shared(&mut k, drv, 1).unwrap();
        let r = user_access(&mut k, MM, a, false).unwrap_err();
        if p.has(Fact::MixedOkSigbus) {
            assert_eq!(r, Fail::Signal(Signal::Bus));
            assert!(pte(&k, MM, a).is_none());
        } else {
            assert!(is_bug(&r, "!vm_mixed_ok(vma, pfn)"));
        }
    }
}

fn fault_page_driver(k: &mut Kernel, pre_flags: VmFlags, page: Pfn) -> VirtAddr {
    let drv = Driver {
        pre_flags,
        fault: FaultAction::SetPage(vec![page]),
        ..Driver::default()
    };
    map_shared(k, drv, 1).unwrap()
}

#[test]
fn oracle_23_fault_vmf_page_plain_vma() {
    for p in every_line() {
        let mut k = kernel(p);
        let page = drvpage(&mut k);
        let a = fault_page_driver(&mut k, VmFlags::empty(), page);
        user_access(&mut k, MM, a, true).unwrap();
        let e = pte(&k, MM, a);
        assert!(!e.special() && e.write() && e.dirty());
        assert_eq!((refc(&k, page), mapc(&k, page)), (2, 1));
        assert_eq!(rss(&k, RssCounter::File), 1);
        assert_eq!(k.nr_file_mapped, 1);
        assert_eq!(smaps_at(&k, a).rss_kb, 4);
        let mut v = Vec::new();
        assert_eq!(
            get_user_pages_fast(&mut k, MM, a, 1, Foll::empty(), &mut v),
            Ok(1)
        );
        assert_eq!(refc(&k, page), 3);
    }
}

#[test]
fn oracle_24_fault_vmf_page_pfnmap_vma() {
    for p in every_line() {
        let mut k = kernel(p);
        let page = drvpage(&mut k);
        let a = fault_page_driver(&mut k, VmFlags::PFNMAP, page);
        user_access(&mut k, MM, a, false).unwrap();
        assert!(!pte(&k, MM, a).special());
        assert_eq!(refc(&k, page), 2);
        let mut v = Vec::new();
        efault(get_user_pages(&mut k, MM, a, 1, Foll::empty(), &mut v));
        let r = get_user_pages_fast(&mut k, MM, a, 1, Foll::empty(), &mut v);
        if p.has(Fact::GupFastFolioAllowed) && !p.has(Fact::GupFastNullMapping) {
            efault(r);
        } else {
            assert_eq!(r, Ok(1));
            k.put_pages(&v);
        }
        let s = smaps_at(&k, a);
        assert_eq!(
            s.rss_kb,
            if !p.has(Fact::WalkPageVmaNoTest) {
                0
            } else {
                4
            }
        );
        assert_eq!(status(&k, MM).rss_file, 4);
        // fs/proc/task_mmu.c:pagemap_read: walk_page_test skips VM_PFNMAP, a hole in both trees.
        assert_eq!(pagemap_entry(&k, MM, a), pm::SOFT_DIRTY);

        let mut k = kernel(p);
        let shm = shmpage(&mut k);
        let a = fault_page_driver(&mut k, VmFlags::PFNMAP, shm);
        user_access(&mut k, MM, a, false).unwrap();
        let mut v = Vec::new();
        assert_eq!(
            get_user_pages_fast(&mut k, MM, a, 1, Foll::empty(), &mut v),
            Ok(1)
        );
        assert_eq!(status(&k, MM).rss_shmem, 4);

        let mut k = Kernel::new(
            p,
            Config {
                pfnmap_insert_check: true,
                ..Config::default()
            },
        );
        let page = drvpage(&mut k);
        let a = fault_page_driver(&mut k, VmFlags::PFNMAP, page);
        assert_eq!(
            user_access(&mut k, MM, a, false).unwrap_err(),
            Fail::Signal(Signal::Bus)
        );
        assert_eq!(warns_at(&k, "mm/memory.c:vm_pfnmap_insert_refused"), 1);
        assert!(pte(&k, MM, a).is_none());
        assert_eq!(refc(&k, page), 1, "the handler's reference is dropped");
    }
}

fn cma_page(k: &mut Kernel) -> Pfn {
    k.frames
        .alloc(AllocSpec {
            flags: FolioFlags::CMA,
            ..AllocSpec::DRIVER_PAGE
        })
        .unwrap()
}

/// CONFIG_CMA is off in both Debian configs; the mechanism is tested with a CMA-flagged folio.
#[test]
fn oracle_25_cma_non_lru_longterm_livelock() {
    for p in every_line() {
        let mut k = kernel(p);
        let page = cma_page(&mut k);
        let a = fault_page_driver(&mut k, VmFlags::empty(), page);
        user_access(&mut k, MM, a, false).unwrap();
        let mut v = Vec::new();
        let r = pin_user_pages(&mut k, MM, a, 1, Foll::LONGTERM, &mut v);
        if p.has(Fact::GupLongtermMovable) {
            assert_eq!(r.unwrap_err(), Fail::Errno(Errno::EINTR));
            assert!(k.events.iter().any(|e| matches!(e, Event::Livelock { .. })));
            assert!(v.is_empty());
            assert_eq!(refc(&k, page), 2, "pins dropped on every round");
            assert!(!pinned(&k, page));
        } else {
            // 5.10 mm/gup.c:check_and_migrate_cma_pages: not isolatable, left pinned.
            assert_eq!(r, Ok(1));
            assert!(pinned(&k, page));
        }

        // 6.12 cma_heap sets VM_PFNMAP: -EFAULT at once.
        let mut k = kernel(p);
        let page = cma_page(&mut k);
        let a = fault_page_driver(&mut k, VmFlags::PFNMAP | VmFlags::IO, page);
        user_access(&mut k, MM, a, false).unwrap();
        let mut v = Vec::new();
        efault(pin_user_pages(&mut k, MM, a, 1, Foll::LONGTERM, &mut v));
        assert!(!k.events.iter().any(|e| matches!(e, Event::Livelock { .. })));
    }
}

#[test]
fn oracle_26_cma_lru_anon_migrated() {
    for p in every_line() {
        let mut k = kernel(p);
        let a = anon_map(&mut k, MM, 1);
        user_access(&mut k, MM, a, true).unwrap();
        let old = pte(&k, MM, a).pfn();
        let f = fid(&k, old);
        k.frames.folio_mut(f).flags |= FolioFlags::CMA;
        let (n, stop, got) = gup_fast_stop(&mut k, a, Foll::PIN | Foll::LONGTERM);
        if !p.has(Fact::GupLongtermMovable) {
            // 5.10: GUP-fast pins the CMA page; nothing migrates it.
            assert_eq!((n, stop), (1, FastStop::Done));
            assert_eq!(got, vec![old]);
            continue;
        }
        assert_eq!((n, stop), (0, FastStop::Grab));
        let mut v = Vec::new();
        assert_eq!(
            pin_user_pages_fast(&mut k, MM, a, 1, Foll::LONGTERM, &mut v),
            Ok(1)
        );
        let new = v[0];
        assert_ne!(new, old);
        assert_eq!(pte(&k, MM, a).pfn(), new);
        let nf = k.frames.folio(fid(&k, new));
        assert!(!nf.flags.contains(FolioFlags::CMA) && nf.maybe_dma_pinned());
        assert_eq!((nf.refcount, nf.mapcount), (1025, 1));
        assert!(k.frames.folio(f).is_freed());
        k.unpin_user_pages(&v);
        assert_eq!(refc(&k, new), 1);
        assert!(!k.use_after_free_reported());
    }
}

#[test]
fn oracle_27_fork_remap() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a, page) = setup_remap(&mut k);
        let parent = pte(&k, MM, a);
        let child = dup_mmap(&mut k, MM).unwrap();
        assert_eq!(vflags(&k, child, a), vflags(&k, MM, a));
        assert!(
            k.vma(vid(&k, child, a)).unwrap().pat_reserved,
            "track_pfn_copy"
        );
        let c = pte(&k, child, a);
        assert!(c.special() && c.pfn() == page && !c.dirty() && !c.young());
        assert_eq!(pte(&k, MM, a), parent);
        assert_eq!(refc(&k, page), 1);
        assert_eq!(k.mm(child).rss, [0; 4]);

        madvise(&mut k, MM, a, PAGE_SIZE, Advice::DontFork).unwrap();
        let child = dup_mmap(&mut k, MM).unwrap();
        assert!(k.mm(child).vma_at(a).is_none());
        assert!(pte(&k, child, a).is_none());
    }
}

#[test]
fn oracle_28_fork_insert_page() {
    for p in every_line() {
        let mut k = kernel(p);
        let page = drvpage(&mut k);
        let a = setup_insert(&mut k, page);
        user_access(&mut k, MM, a, true).unwrap();
        let parent = pte(&k, MM, a);
        let child = dup_mmap(&mut k, MM).unwrap();
        let c = pte(&k, child, a);
        assert!(!c.special() && c.pfn() == page && !c.dirty() && !c.young() && c.write());
        assert_eq!(pte(&k, MM, a), parent);
        assert_eq!((refc(&k, page), mapc(&k, page)), (3, 2));
        assert_eq!(k.mm(child).counter(RssCounter::File), 1);
        assert_eq!(k.nr_file_mapped, 2);
    }
}

#[test]
fn oracle_29_munmap_remap() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a, page) = setup_remap(&mut k);
        let id = vid(&k, MM, a);
        pfnguard_mm::zap::unmap_single_vma(&mut k, id);
        assert!(!k.vma(id).unwrap().pat_reserved, "untrack_pfn");
        let (a2, page2) = setup_remap(&mut k);
        do_munmap(&mut k, MM, a2, PAGE_SIZE).unwrap();
        assert!(pte(&k, MM, a2).is_none() && k.mm(MM).vma_at(a2).is_none());
        assert_eq!((refc(&k, page), refc(&k, page2)), (1, 1));
        assert!(all_rss_zero(&k));
    }
}

#[test]
fn oracle_30_munmap_insert_page() {
    for p in every_line() {
        let mut k = kernel(p);
        let page = drvpage(&mut k);
        let a = setup_insert(&mut k, page);
        user_access(&mut k, MM, a, true).unwrap();
        do_munmap(&mut k, MM, a, PAGE_SIZE).unwrap();
        assert!(pte(&k, MM, a).is_none());
        assert_eq!((refc(&k, page), mapc(&k, page)), (1, 0));
        assert_eq!(rss(&k, RssCounter::File), 0);
        assert_eq!(k.nr_file_mapped, 0);
        assert!(
            k.frames
                .folio(fid(&k, page))
                .flags
                .contains(FolioFlags::DIRTY),
            "D11: PG_dirty at zap"
        );
        assert!(k.events.is_empty());
    }
}

#[test]
fn oracle_31_mremap_dontexpand() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a, page) = setup_remap(&mut k);
        let mv = MremapFlags {
            maymove: true,
            ..MremapFlags::default()
        };
        assert_eq!(
            mremap(&mut k, MM, a, PAGE_SIZE, 2 * PAGE_SIZE, mv, None).unwrap_err(),
            Fail::Errno(Errno::EFAULT)
        );
        let du = MremapFlags {
            maymove: true,
            dontunmap: true,
            ..MremapFlags::default()
        };
        assert_eq!(
            mremap(&mut k, MM, a, PAGE_SIZE, PAGE_SIZE, du, None).unwrap_err(),
            Fail::Errno(Errno::EINVAL)
        );
        let dest = VirtAddr(0x6000_0000_0000);
        let fx = MremapFlags {
            maymove: true,
            fixed: true,
            ..MremapFlags::default()
        };
        assert_eq!(
            mremap(&mut k, MM, a, PAGE_SIZE, PAGE_SIZE, fx, Some(dest)),
            Ok(dest)
        );
        let e = pte(&k, MM, dest);
        assert!(e.special() && e.pfn() == page);
        assert!(pte(&k, MM, a).is_none() && k.mm(MM).vma_at(a).is_none());
        assert!(vflags(&k, MM, dest).contains(VmFlags::PFNMAP));
        assert_eq!(
            vflags(&k, MM, dest).contains(VmFlags::PAT),
            !p.has(Fact::PfnmapTrackCtx)
        );
        // mm/mremap.c:move_vma: untrack_pfn_clear() hits the old VMA; the new one keeps the memtype.
        assert!(k.vma(vid(&k, MM, dest)).unwrap().pat_reserved);
    }
}

#[test]
fn oracle_32_mlock_special_vmas() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a1, _) = setup_remap(&mut k);
        let page = drvpage(&mut k);
        let a6 = setup_insert(&mut k, page);
        for a in [a1, a6] {
            mlock(&mut k, MM, a, PAGE_SIZE).unwrap();
            assert!(!smaps_at(&k, a).vmflags.contains(&"lo"));
        }
        assert_eq!(status(&k, MM).vm_lck, 0);
        assert_eq!(refc(&k, page), 2);

        let mut locked = MapFlags::SHARED;
        locked.locked = true;
        let drv = Driver {
            action: MmapAction::RemapWhole(drvpage(&mut k)),
            ..Driver::default()
        };
        let a = map(&mut k, MM, drv, 1, Prot::RW, locked, true).unwrap();
        assert!(!vflags(&k, MM, a).intersects(VmFlags::LOCKED_MASK));
        assert_eq!(k.mm(MM).locked_vm, 0);

        // A MIXEDMAP VMA with a hole and no ->fault: populate -EFAULT becomes -ENOMEM
        // (__mlock_posix_error_return; docs/mm-semantics.md, corrections, item 7).
        let drv = Driver {
            pre_flags: VmFlags::MIXEDMAP,
            ..Driver::default()
        };
        let a = map_shared(&mut k, drv, 1).unwrap();
        assert_eq!(
            mlock(&mut k, MM, a, PAGE_SIZE).unwrap_err(),
            Fail::Errno(Errno::ENOMEM)
        );
    }
}

#[test]
fn oracle_33_madvise_special_vmas() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a1, _) = setup_remap(&mut k);
        let page = drvpage(&mut k);
        let a6 = setup_insert(&mut k, page);
        let einval = Fail::Errno(Errno::EINVAL);
        assert_eq!(
            madvise(&mut k, MM, a1, PAGE_SIZE, Advice::DontNeed).unwrap_err(),
            einval
        );
        assert!(pte(&k, MM, a1).present());
        madvise(&mut k, MM, a6, PAGE_SIZE, Advice::DontNeed).unwrap();
        assert!(pte(&k, MM, a6).is_none() && k.mm(MM).vma_at(a6).is_some());
        assert_eq!((refc(&k, page), mapc(&k, page)), (1, 0));
        assert_eq!((rss(&k, RssCounter::File), k.nr_file_mapped), (0, 0));
        for a in [a1, a6] {
            assert_eq!(
                madvise(&mut k, MM, a, PAGE_SIZE, Advice::DoDump).unwrap_err(),
                einval
            );
        }
        assert_eq!(
            madvise(&mut k, MM, a1, PAGE_SIZE, Advice::DoFork).unwrap_err(),
            einval
        );
        madvise(&mut k, MM, a6, PAGE_SIZE, Advice::DoFork).unwrap();
        assert_eq!(
            madvise(&mut k, MM, a1, PAGE_SIZE, Advice::PopulateRead).unwrap_err(),
            einval
        );
    }
}

#[test]
fn oracle_34_proc_mem_access() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a, _) = setup_remap(&mut k);
        assert_eq!(
            proc_mem_rw(&mut k, MM, a, 16, false).unwrap_err(),
            Fail::Errno(Errno::EIO)
        );

        let mut k = kernel(p);
        let page = drvpage(&mut k);
        let drv = Driver {
            action: MmapAction::RemapWhole(page),
            access: true,
            ..Driver::default()
        };
        let a = map_shared(&mut k, drv, 1).unwrap();
        assert_eq!(proc_mem_rw(&mut k, MM, a, 16, false), Ok(16));
        assert_eq!(proc_mem_rw(&mut k, MM, a, 16, true), Ok(16));
        let drv = Driver {
            action: MmapAction::RemapWhole(drvpage(&mut k)),
            access: true,
            ..Driver::default()
        };
        let ro = map(&mut k, MM, drv, 1, Prot::R, MapFlags::SHARED, true).unwrap();
        assert_eq!(proc_mem_rw(&mut k, MM, ro, 16, false), Ok(16));
        assert_eq!(
            proc_mem_rw(&mut k, MM, ro, 16, true).unwrap_err(),
            Fail::Errno(Errno::EIO)
        );
        assert_eq!(refc(&k, page), 1);
    }
}

#[test]
fn oracle_35_process_vm_readv() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a1, _) = setup_remap(&mut k);
        efault(process_vm_rw(&mut k, MM, a1, 64, false));
        let page = drvpage(&mut k);
        let a6 = setup_insert(&mut k, page);
        assert_eq!(process_vm_rw(&mut k, MM, a6, 4096, false), Ok(4096));
        assert_eq!(refc(&k, page), 2);
        assert!(!pinned(&k, page));
    }
}

#[test]
fn oracle_36_io_uring_register_buffers() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a1, _) = setup_remap(&mut k);
        efault(io_uring_register(&mut k, MM, a1, 1));
        let page = drvpage(&mut k);
        let a6 = setup_insert(&mut k, page);
        let r = io_uring_register(&mut k, MM, a6, 1);
        if !p.has(Fact::IoUringNoFileCheck) {
            assert_eq!(r.unwrap_err(), Fail::Errno(Errno::EOPNOTSUPP));
            assert_eq!(refc(&k, page), 2);
        } else {
            assert_eq!(r, Ok(vec![page]));
            assert_eq!(refc(&k, page), 2 + 1024);
        }
        if p.has(Fact::IoUringPinFast) {
            let m = drvpage(&mut k);
            let a21 = setup_mixed(&mut k, m);
            assert_eq!(
                io_uring_register(&mut k, MM, a21, 1).unwrap_err(),
                Fail::Errno(Errno::EEXIST)
            );
        }
    }
}

#[test]
fn oracle_37_odirect_read() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a1, _) = setup_remap(&mut k);
        efault(bio_iov_iter_get_pages(&mut k, MM, a1, 1, true));
        let page = drvpage(&mut k);
        let a6 = setup_insert(&mut k, page);
        let b = bio_iov_iter_get_pages(&mut k, MM, a6, 1, true).unwrap();
        assert_eq!(b.pages, vec![page]);
        assert_eq!(b.pinned, p.has(Fact::OdirectPin));
        assert_eq!(
            refc(&k, page),
            if p.has(Fact::OdirectPin) { 2 + 1024 } else { 3 }
        );
        bio_release_pages(&mut k, b);
        assert_eq!(refc(&k, page), 2);
    }
}

#[test]
fn oracle_38_vmsplice() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a1, _) = setup_remap(&mut k);
        efault(vmsplice_to_pipe(&mut k, MM, a1, 1));
        pipe_read_all(&mut k);
        let page = drvpage(&mut k);
        let a6 = setup_insert(&mut k, page);
        assert_eq!(vmsplice_to_pipe(&mut k, MM, a6, 1), Ok(1));
        // The pipe buffer keeps its page reference until the pipe is read.
        assert_eq!(refc(&k, page), 3);
        pipe_read_all(&mut k);
        assert_eq!(refc(&k, page), 2);
    }
}

#[test]
fn oracle_39_rdma_umem() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a1, _) = setup_remap(&mut k);
        efault(ib_umem_get(&mut k, MM, a1, 1, true));
        assert_eq!(k.mm(MM).pinned_vm, 0);
        let page = drvpage(&mut k);
        let a6 = setup_insert(&mut k, page);
        assert_eq!(
            ib_umem_get(&mut k, MM, a6, 1, true).map(|u| u.pages),
            Ok(vec![page])
        );
        assert_eq!(status(&k, MM).vm_pin, 4);
        assert!(pinned(&k, page));
    }
}

#[test]
fn oracle_40_kvm_remapped() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a, page) = setup_remap(&mut k);
        let r = hva_to_pfn(&mut k, MM, a, true).unwrap();
        // From 6.13 kvm_resolve_pfn() takes no reference on remapped pfns.
        let refs = !p.has(Fact::KvmPfnmapNoRefs);
        assert_eq!(
            r,
            KvmPfn::Pfn {
                pfn: page,
                refcounted: refs,
                writable: true
            }
        );
        assert_eq!(refc(&k, page), 1 + i32::from(refs));
        kvm_release_pfn(&mut k, r);
        assert_eq!(refc(&k, page), 1);

        let drv = Driver {
            action: MmapAction::RemapWhole(page),
            ..Driver::default()
        };
        let ro = map(&mut k, MM, drv, 1, Prot::R, MapFlags::SHARED, true).unwrap();
        assert_eq!(hva_to_pfn(&mut k, MM, ro, true), Ok(KvmPfn::ErrRoFault));
        assert_eq!(refc(&k, page), 1);
    }
}

#[test]
fn oracle_41_kvm_refcount_zero_page() {
    for p in every_line() {
        let mut k = kernel(p);
        let block = k
            .frames
            .alloc(AllocSpec {
                order: 1,
                compound: false,
                mapping: Mapping::None,
                flags: pfnguard_mm::frames::FolioFlags::empty(),
            })
            .unwrap();
        let tail = Pfn(block.0 + 1);
        let drv = Driver {
            action: MmapAction::RemapWhole(tail),
            ..Driver::default()
        };
        let a = map_shared(&mut k, drv, 1).unwrap();
        let want = if p.has(Fact::KvmPfnmapNoRefs) {
            KvmPfn::Pfn {
                pfn: tail,
                refcounted: false,
                writable: true,
            }
        } else {
            KvmPfn::ErrFault
        };
        assert_eq!(hva_to_pfn(&mut k, MM, a, true), Ok(want));
        assert_eq!(refc(&k, tail), 0);
    }
}

#[test]
fn oracle_42_kvm_lazy_pfnmap_fixup() {
    for p in every_line() {
        let mut k = kernel(p);
        let dev = k.frames.alloc_device(4);
        let a = pfnmap_lazy(&mut k, dev, 4);
        assert!(pte(&k, MM, a.add_pages(2)).is_none());
        let r = hva_to_pfn(&mut k, MM, a.add_pages(2), false).unwrap();
        assert_eq!(
            r,
            KvmPfn::Pfn {
                pfn: Pfn(dev.0 + 2),
                refcounted: false,
                writable: true
            }
        );
        assert!(pte(&k, MM, a.add_pages(2)).special());
        let page = drvpage(&mut k);
        let a = pfnmap_lazy(&mut k, page, 1);
        let refs = !p.has(Fact::KvmPfnmapNoRefs);
        assert!(matches!(
            hva_to_pfn(&mut k, MM, a, true),
            Ok(KvmPfn::Pfn { refcounted, .. }) if refcounted == refs
        ));
        assert_eq!(refc(&k, page), 1 + i32::from(refs));
    }
}

fn vma_with(k: &Kernel, a: VirtAddr, flags: VmFlags) -> pfnguard_mm::Vma {
    let mut v = k.mm(MM).vma_at(a).unwrap().clone();
    v.flags = flags;
    v
}

#[test]
fn oracle_43_vm_normal_page_x86() {
    for p in every_line() {
        let mut k = kernel(p);
        let a = anon_map(&mut k, MM, 1);
        let page = drvpage(&mut k);
        let base = VmFlags::READ | VmFlags::WRITE | VmFlags::SHARED | VmFlags::MAYWRITE;
        let special = Pte::new(page, PgProt::new(Pte::PRESENT | Pte::USER)).mkspecial();
        let normal = Pte::new(page, PgProt::new(Pte::PRESENT | Pte::USER));
        let zero = Pte::new(k.frames.zero_pfn(), PgProt::new(Pte::PRESENT | Pte::USER)).mkspecial();
        let high = Pte::new(
            Pfn(k.frames.highest_memmap_pfn().0 + 1),
            PgProt::new(Pte::PRESENT | Pte::USER),
        );
        let pfnmap = vma_with(&k, a, base | VmFlags::PFNMAP);
        let mixed = vma_with(&k, a, base | VmFlags::MIXEDMAP);
        let io = vma_with(&k, a, base | VmFlags::IO);
        let plain = vma_with(&k, a, base);
        assert_eq!(vm_normal_page(&mut k, &pfnmap, a, special), None);
        assert_eq!(vm_normal_page(&mut k, &mixed, a, special), None);
        assert_eq!(vm_normal_page(&mut k, &plain, a, zero), None);
        assert!(k.events.is_empty());
        assert_eq!(vm_normal_page(&mut k, &plain, a, special), None);
        assert!(bad_page_map(&k));
        k.events.clear();
        assert_eq!(vm_normal_page(&mut k, &pfnmap, a, normal), Some(page));
        assert_eq!(vm_normal_page(&mut k, &io, a, normal), Some(page));
        assert!(k.events.is_empty());
        assert_eq!(vm_normal_page(&mut k, &pfnmap, a, high), None);
        assert!(bad_page_map(&k));
    }
}

#[test]
fn oracle_44_vm_normal_page_generic() {
    for p in every_line() {
        let mut k = Kernel::new(
            p,
            Config {
                arch_has_pte_special: false,
                ..Config::default()
            },
        );
        let a = anon_map(&mut k, MM, 1);
        let page = drvpage(&mut k);
        let shared = VmFlags::READ | VmFlags::WRITE | VmFlags::SHARED | VmFlags::MAYWRITE;
        let cow = VmFlags::READ | VmFlags::WRITE | VmFlags::MAYWRITE;
        let e = Pte::new(page, PgProt::new(Pte::PRESENT | Pte::USER));
        let pfnmap = vma_with(&k, a, shared | VmFlags::PFNMAP);
        assert_eq!(vm_normal_page(&mut k, &pfnmap, a, e), None);
        let mut pfnmap_cow = vma_with(&k, a, cow | VmFlags::PFNMAP);
        pfnmap_cow.pgoff = page.0;
        assert_eq!(
            vm_normal_page(&mut k, &pfnmap_cow, a, e),
            None,
            "pfn == pgoff + off"
        );
        pfnmap_cow.pgoff = page.0 + 7;
        assert_eq!(vm_normal_page(&mut k, &pfnmap_cow, a, e), Some(page));
        let mixed = vma_with(&k, a, shared | VmFlags::MIXEDMAP);
        let dev = k.frames.alloc_device(1);
        assert_eq!(
            vm_normal_page(
                &mut k,
                &mixed,
                a,
                Pte::new(dev, PgProt::new(Pte::PRESENT | Pte::USER))
            ),
            None
        );
        let z = k.frames.zero_pfn();
        let r = vm_normal_page(
            &mut k,
            &mixed,
            a,
            Pte::new(z, PgProt::new(Pte::PRESENT | Pte::USER)),
        );
        if p.has(Fact::InsertZeropageSpecial) {
            assert_eq!(r, None);
        } else {
            assert_eq!(r, Some(z));
        }
    }
}

#[test]
fn oracle_45_write_fault_shared_pfnmap() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a, page) = setup_remap(&mut k);
        let e = pte(&k, MM, a);
        k.mm_mut(MM).pt.set(a, e.wrprotect());
        user_access(&mut k, MM, a, true).unwrap();
        let e2 = pte(&k, MM, a);
        assert!(e2.write() && e2.special() && e2.pfn() == page && e2.dirty());
        assert_eq!(refc(&k, page), 1);
        assert!(all_rss_zero(&k));

        let mut k = kernel(p);
        let dev = k.frames.alloc_device(1);
        let drv = Driver {
            pre_flags: VmFlags::PFNMAP | VmFlags::IO,
            fault: FaultAction::InsertPfn(dev),
            pfn_mkwrite: true,
            ..Driver::default()
        };
        let calls = drv.pfn_mkwrite_calls.clone();
        let a = map_shared(&mut k, drv, 1).unwrap();
        user_access(&mut k, MM, a, false).unwrap();
        assert!(!pte(&k, MM, a).write(), "write-notify VMA: read-only PTE");
        user_access(&mut k, MM, a, true).unwrap();
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(pte(&k, MM, a).write() && pte(&k, MM, a).special());
    }
}

#[test]
fn oracle_46_cow_write_in_private_remap() {
    for p in every_line() {
        let mut k = kernel(p);
        let page = drvpage(&mut k);
        let drv = Driver {
            action: MmapAction::RemapWhole(page),
            ..Driver::default()
        };
        let a = map(&mut k, MM, drv, 1, Prot::RW, MapFlags::PRIVATE, true).unwrap();
        assert!(!pte(&k, MM, a).write());
        user_access(&mut k, MM, a, true).unwrap();
        let e = pte(&k, MM, a);
        assert!(!e.special() && e.write() && e.pfn() != page);
        assert_eq!(rss(&k, RssCounter::Anon), 1);
        assert_eq!(mapping(&k, e.pfn()), Mapping::Anon);
        let v = k.mm(MM).vma_at(a).unwrap().clone();
        assert_eq!(vm_normal_page(&mut k, &v, a, e), Some(e.pfn()));
        assert_eq!(refc(&k, page), 1);
        let mut pg = Vec::new();
        efault(get_user_pages(&mut k, MM, a, 1, Foll::empty(), &mut pg));
    }
}

#[test]
fn oracle_47_no_fault_handler_sigbus() {
    for p in every_line() {
        let mut k = kernel(p);
        let a = map_shared(&mut k, Driver::default(), 1).unwrap();
        assert_eq!(
            user_access(&mut k, MM, a, false).unwrap_err(),
            Fail::Signal(Signal::Bus)
        );
        let id = vid(&k, MM, a);
        assert_eq!(
            handle_mm_fault(&mut k, id, a, FaultFlags::default()),
            Ok(VmFault::SIGBUS)
        );
        assert!(k.oops.is_none());
    }
}

#[test]
fn oracle_48_fault_returns_zero_without_page() {
    for p in every_line() {
        let mut k = kernel(p);
        let drv = Driver {
            fault: FaultAction::ReturnZeroNoPage,
            ..Driver::default()
        };
        let a = map_shared(&mut k, drv, 1).unwrap();
        let r = user_access(&mut k, MM, a, false).unwrap_err();
        assert!(
            is_bug(
                &r,
                "->fault returned 0 with vmf->page == NULL (lock_page(NULL))"
            ),
            "{r:?}"
        );
    }
}

#[test]
fn oracle_49_core_dump() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a1, _) = setup_remap(&mut k);
        let page = drvpage(&mut k);
        let a6 = setup_insert(&mut k, page);
        let m = drvpage(&mut k);
        let a21 = setup_mixed(&mut k, m);
        let find = |d: &[(VirtAddr, DumpedVma)], a: VirtAddr| {
            d.iter()
                .find(|(s, _)| *s == a)
                .map(|(_, d)| d.clone())
                .unwrap()
        };
        let d = core_dump(&mut k, MM, filter::DEFAULT);
        assert_eq!(find(&d, a1), DumpedVma::Skipped("VM_DONTDUMP"));
        assert_eq!(find(&d, a6), DumpedVma::Skipped("coredump_filter"));
        assert_eq!(find(&d, a21), DumpedVma::Skipped("coredump_filter"));
        let d = core_dump(&mut k, MM, filter::DEFAULT | filter::MAPPED_SHARED);
        assert_eq!(find(&d, a6), DumpedVma::Dumped { pages: 1, holes: 0 });
        assert_eq!(find(&d, a21), DumpedVma::Dumped { pages: 0, holes: 1 });
        assert_eq!(refc(&k, page), 2);
    }
}

/// P1 (the dma-buf core WARN) lives in pfnguard-dmabuf and is tested there; the MM layer offers
/// the P3 check (`Config::pfnmap_insert_check`), tested here: WARN_ON_ONCE once per boot, every
/// refused insert -EINVAL, VM_MIXEDMAP-only VMAs unaffected.
#[test]
fn oracle_50_p3_insert_check_warn_once() {
    for p in every_line() {
        let mut k = Kernel::new(
            p,
            Config {
                pfnmap_insert_check: true,
                ..Config::default()
            },
        );
        let page = drvpage(&mut k);
        let a = setup_insert(&mut k, page);
        assert!(!pte(&k, MM, a).special() && k.events.is_empty());
        for _ in 0..2 {
            let drv = Driver {
                pre_flags: VmFlags::IO | VmFlags::MIXEDMAP,
                action: MmapAction::InsertPage(vec![page]),
                ..Driver::default()
            };
            assert_eq!(
                map_shared(&mut k, drv, 1).unwrap_err(),
                Fail::Errno(Errno::EINVAL)
            );
        }
        assert_eq!(warns_at(&k, "mm/memory.c:vm_pfnmap_insert_refused"), 1);
        let area = VmallocArea::vmalloc_user(&mut k, 1).unwrap();
        let drv = Driver {
            pre_flags: VmFlags::PFNMAP | VmFlags::MIXEDMAP,
            action: MmapAction::RemapVmalloc(area),
            ..Driver::default()
        };
        assert_eq!(
            map_shared(&mut k, drv, 1).unwrap_err(),
            Fail::Errno(Errno::EINVAL)
        );
    }
}

#[test]
fn oracle_51_gup_fast_pin_during_fork() {
    for p in every_line() {
        let run = |odd: bool| {
            let mut k = kernel(p);
            let a = memfd_map(&mut k, MM, 2);
            pfnguard_mm::fault::touch_range(&mut k, MM, a, 2 * PAGE_SIZE, true).unwrap();
            if odd {
                k.mm_mut(MM).write_protect_seq = 1;
                let mut v = Vec::new();
                assert_eq!(
                    gup::gup_fast(&mut k, MM, a, 2, Foll::PIN, &mut v),
                    (0, FastStop::ForkInProgress)
                );
                let mut v = Vec::new();
                assert_eq!(
                    gup::gup_fast(&mut k, MM, a, 2, Foll::GET, &mut v).0,
                    2,
                    "FOLL_GET ignores write_protect_seq"
                );
                k.put_pages(&v);
            }
            let mut v = Vec::new();
            let r = pin_user_pages_fast(&mut k, MM, a, 2, Foll::WRITE, &mut v);
            let counts: Vec<i32> = v.iter().map(|&p| refc(&k, p)).collect();
            (r, v, counts)
        };
        let (slow_r, slow_v, slow_c) = {
            let mut k = kernel(p);
            let a = memfd_map(&mut k, MM, 2);
            pfnguard_mm::fault::touch_range(&mut k, MM, a, 2 * PAGE_SIZE, true).unwrap();
            let mut v = Vec::new();
            let r = pin_user_pages(&mut k, MM, a, 2, Foll::WRITE, &mut v);
            let c: Vec<i32> = v.iter().map(|&p| refc(&k, p)).collect();
            (r, v, c)
        };
        let (r, v, c) = run(true);
        assert_eq!((r, &v, &c), (slow_r.clone(), &slow_v, &slow_c));
        assert_eq!(slow_r, Ok(2));
        assert_eq!(c, vec![2 + 1024, 2 + 1024]);
        assert_eq!(run(false).2, c);
    }
}

#[test]
fn oracle_52_lockonfault_mnemonic() {
    for p in every_line() {
        let mut k = kernel(p);
        let a = anon_map(&mut k, MM, 1);
        let id = vid(&k, MM, a);
        k.vma_mut(id).unwrap().flags |= VmFlags::LOCKED | VmFlags::LOCKONFAULT;
        let f = smaps_at(&k, a).vmflags;
        let want = if p.has(Fact::SmapsLockonfault) {
            "lf"
        } else {
            "??"
        };
        assert_eq!(f, vec!["rd", "wr", "mr", "mw", "me", "lo", want, "sd"]);
    }
}
