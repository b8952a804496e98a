//! Paths where the model once departed from the kernel source, each pinned to the line it now
//! follows, on every line from 5.10 to 7.3.

mod common;

use common::*;
use pfnguard_mm::facts::every_line;
use pfnguard_mm::fault::user_access;
use pfnguard_mm::frames::{AllocSpec, FolioFlags, Mapping};
use pfnguard_mm::kvm::{hva_to_pfn, kvm_release_pfn, KvmPfn};
use pfnguard_mm::{Errno, Event, Fail, MapFlags, Prot, Signal, VmFault};

/// A driver page marked PG_reserved (`SetPageReserved()` before `remap_pfn_range()`, as drivers
/// mapping kmalloc/vmalloc memory do).
fn reserved_page(k: &mut pfnguard_mm::Kernel) -> pfnguard_mm::Pfn {
    k.frames
        .alloc(AllocSpec {
            order: 0,
            compound: false,
            mapping: Mapping::None,
            flags: FolioFlags::RESERVED,
        })
        .expect("RAM")
}

/// virt/kvm/kvm_main.c (6.1 and 6.12): `kvm_try_get_pfn()` and `kvm_release_pfn_clean()` both
/// ask `kvm_pfn_to_refcounted_page()`, which is NULL for a PG_reserved page that is neither the
/// zero page nor ZONE_DEVICE: no reference is taken and none is dropped.
#[test]
fn kvm_reserved_page_is_neither_got_nor_put() {
    for p in every_line() {
        let mut k = kernel(p);
        let page = reserved_page(&mut k);
        let drv = Driver {
            action: MmapAction::RemapWhole(page),
            ..Driver::default()
        };
        let a = map_shared(&mut k, drv, 1).expect("mmap");
        let r = hva_to_pfn(&mut k, MM, a, true).expect("hva_to_pfn");
        assert_eq!(
            r,
            KvmPfn::Pfn {
                pfn: page,
                refcounted: false,
                writable: true
            },
            "{}",
            p.version()
        );
        assert_eq!(refc(&k, page), 1, "{}: no reference taken", p.version());
        kvm_release_pfn(&mut k, r);
        assert_eq!(refc(&k, page), 1, "{}: no reference dropped", p.version());
        assert!(!k.frames.folio(fid(&k, page)).is_freed(), "{}", p.version());
        assert!(
            !k.events
                .iter()
                .any(|e| matches!(e, Event::UseAfterFree { .. })),
            "{}: {:?}",
            p.version(),
            k.events
        );
    }
}

/// A refcounted driver page still gets one reference and loses it on release (the get and the
/// put stay paired for the ordinary case); from 6.13 (`kvm_resolve_pfn()`) none is taken.
#[test]
fn kvm_refcounted_page_is_got_and_put_once() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a, page) = setup_remap(&mut k);
        let r = hva_to_pfn(&mut k, MM, a, false).expect("hva_to_pfn");
        let got = if p.has(pfnguard_mm::Fact::KvmPfnmapNoRefs) {
            1
        } else {
            2
        };
        assert_eq!(refc(&k, page), got, "{}", p.version());
        kvm_release_pfn(&mut k, r);
        assert_eq!(refc(&k, page), 1, "{}", p.version());
    }
}

/// Allocate until the model's RAM is gone.
fn exhaust_ram(k: &mut pfnguard_mm::Kernel) {
    for order in (0..=22u8).rev() {
        while k.frames.alloc(AllocSpec::compound(order)).is_some() {}
    }
    assert!(k.frames.alloc(AllocSpec::ANON).is_none());
}

/// mm/memory.c:do_cow_fault allocates the COW page before `__do_fault()`: `if (!folio) return
/// VM_FAULT_OOM;` comes first, so `->fault` never runs (and never takes its page reference).
#[test]
fn cow_fault_without_memory_fails_before_the_fault_handler() {
    for p in every_line() {
        let mut k = kernel(p);
        let page = drvpage(&mut k);
        let drv = Driver {
            fault: FaultAction::SetPage(vec![page]),
            ..Driver::default()
        };
        let a = map(&mut k, MM, drv, 1, Prot::RW, MapFlags::PRIVATE, true).expect("mmap");
        exhaust_ram(&mut k);
        assert_eq!(
            user_access(&mut k, MM, a, true),
            Err(Fail::Errno(Errno::ENOMEM)),
            "{}",
            p.version()
        );
        assert_eq!(refc(&k, page), 1, "{}: ->fault was not called", p.version());
        assert!(k.mm(MM).pt.get(a).is_none(), "{}", p.version());
    }
}

/// With memory, the same private write fault runs `->fault`, maps an anon copy and drops the
/// source reference the handler took.
#[test]
fn cow_fault_maps_a_copy_and_drops_the_source_reference() {
    for p in every_line() {
        let mut k = kernel(p);
        let page = drvpage(&mut k);
        let drv = Driver {
            fault: FaultAction::SetPage(vec![page]),
            ..Driver::default()
        };
        let a = map(&mut k, MM, drv, 1, Prot::RW, MapFlags::PRIVATE, true).expect("mmap");
        assert_eq!(user_access(&mut k, MM, a, true), Ok(()), "{}", p.version());
        let pte = k.mm(MM).pt.get(a);
        assert_ne!(pte.pfn(), page, "{}: the copy is mapped", p.version());
        assert!(pte.write(), "{}", p.version());
        assert_eq!(refc(&k, page), 1, "{}", p.version());
    }
}

/// A shared mapping whose driver has `->page_mkwrite` and maps pages from `->fault`: a read maps
/// the page read-only (write-notify), and the first write goes through do_wp_page.
fn mkwrite_driver(
    k: &mut pfnguard_mm::Kernel,
    ret: Option<VmFault>,
) -> (
    pfnguard_mm::VirtAddr,
    std::sync::Arc<std::sync::atomic::AtomicU32>,
) {
    let page = drvpage(k);
    let drv = Driver {
        fault: FaultAction::SetPage(vec![page]),
        page_mkwrite: true,
        page_mkwrite_ret: ret,
        ..Driver::default()
    };
    let calls = drv.page_mkwrite_calls.clone();
    let a = map_shared(k, drv, 1).expect("mmap");
    assert_eq!(user_access(k, MM, a, false), Ok(()));
    assert!(!k.mm(MM).pt.get(a).write(), "write-notify: read-only PTE");
    (a, calls)
}

/// mm/memory.c:wp_page_shared calls `do_page_mkwrite()` when `vma->vm_ops->page_mkwrite` is set
/// and returns its VM_FAULT_ERROR: the write ends in SIGBUS and the PTE stays read-only.
#[test]
fn wp_page_shared_returns_the_page_mkwrite_error() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a, calls) = mkwrite_driver(&mut k, Some(VmFault::SIGBUS));
        assert_eq!(
            user_access(&mut k, MM, a, true),
            Err(Fail::Signal(Signal::Bus)),
            "{}",
            p.version()
        );
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(!k.mm(MM).pt.get(a).write(), "{}", p.version());
    }
}

/// `->page_mkwrite` returning VM_FAULT_LOCKED lets `finish_mkwrite_fault()` make the PTE
/// writable, once.
#[test]
fn wp_page_shared_makes_the_pte_writable_after_page_mkwrite() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a, calls) = mkwrite_driver(&mut k, None);
        assert_eq!(user_access(&mut k, MM, a, true), Ok(()), "{}", p.version());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        let pte = k.mm(MM).pt.get(a);
        assert!(pte.write() && pte.dirty(), "{}", p.version());
        assert_eq!(user_access(&mut k, MM, a, true), Ok(()), "{}", p.version());
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}

/// do_page_mkwrite: a handler that returns 0 without VM_FAULT_LOCKED for a page with no
/// `folio->mapping` gets `return 0; /* retry */` — the PTE is never made writable and the
/// store faults again and again.
#[test]
fn page_mkwrite_on_a_page_without_mapping_retries() {
    for p in every_line() {
        let mut k = kernel(p);
        let (a, calls) = mkwrite_driver(&mut k, Some(VmFault::NONE));
        let r = user_access(&mut k, MM, a, true);
        assert!(matches!(r, Err(Fail::Hang(_))), "{}: {r:?}", p.version());
        assert!(calls.load(std::sync::atomic::Ordering::SeqCst) > 1);
        assert!(!k.mm(MM).pt.get(a).write(), "{}", p.version());
    }
}

/// mm/memory.c:do_shared_fault: a first write to a shared mapping whose driver maps pages from
/// `->fault` calls `do_page_mkwrite()` before `finish_fault()`; its error is the fault's and no
/// PTE is installed, and the page reference `->fault` took is dropped.
#[test]
fn do_shared_fault_calls_page_mkwrite() {
    for p in every_line() {
        for (ret, ok) in [(None, true), (Some(VmFault::SIGBUS), false)] {
            let mut k = kernel(p);
            let page = drvpage(&mut k);
            let before = refc(&k, page);
            let drv = Driver {
                fault: FaultAction::SetPage(vec![page]),
                page_mkwrite: true,
                page_mkwrite_ret: ret,
                ..Driver::default()
            };
            let calls = drv.page_mkwrite_calls.clone();
            let a = map_shared(&mut k, drv, 1).expect("mmap");
            let r = user_access(&mut k, MM, a, true);
            assert_eq!(
                calls.load(std::sync::atomic::Ordering::SeqCst),
                1,
                "{}",
                p.version()
            );
            if ok {
                assert_eq!(r, Ok(()), "{}", p.version());
                let pte = k.mm(MM).pt.get(a);
                assert!(pte.present() && pte.write(), "{}", p.version());
            } else {
                assert_eq!(r, Err(Fail::Signal(Signal::Bus)), "{}", p.version());
                assert!(!k.mm(MM).pt.get(a).present(), "{}", p.version());
                assert_eq!(refc(&k, page), before, "{}", p.version());
            }
        }
    }
}
