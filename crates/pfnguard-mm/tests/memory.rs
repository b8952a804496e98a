//! Memory budget of the model, measured with a counting global allocator: a fully populated
//! 1 GiB memfd mapping costs at most 64 bytes per resident page, and a 1 TiB VM_PFNMAP aperture
//! with 1,000 scattered touched pages stays under 1 MiB.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Mutex;

use common::*;
use pfnguard_mm::facts::every_line;
use pfnguard_mm::fault::user_access;
use pfnguard_mm::madvise::{madvise, Advice};
use pfnguard_mm::mmap::do_mmap;
use pfnguard_mm::shmem::memfd_create;
use pfnguard_mm::{MapFlags, MmapArgs, Prot, VmFlags, PAGE_SIZE};

/// Bytes currently allocated through the global allocator.
static LIVE: AtomicIsize = AtomicIsize::new(0);
/// The measurements run one at a time so that their deltas do not mix.
static SERIAL: Mutex<()> = Mutex::new(());

struct Counting;

// SAFETY: every call forwards to `System` with the caller's arguments unchanged; the counter is
// only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded contract of GlobalAlloc::alloc.
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded contract of GlobalAlloc::alloc_zeroed.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded contract of GlobalAlloc::dealloc.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded contract of GlobalAlloc::realloc.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const GIB_PAGES: u64 = 262_144;

#[test]
fn memfd_1gib_at_most_64_bytes_per_page() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for p in every_line() {
        let mut k = kernel(p);
        let (file, inode) = memfd_create("mem", GIB_PAGES, false);
        let len = GIB_PAGES * PAGE_SIZE;
        let a = do_mmap(
            &mut k,
            MM,
            Some(file),
            MmapArgs::new(len, Prot::RW, MapFlags::SHARED),
        )
        .unwrap();
        let before = live();
        madvise(&mut k, MM, a, len, Advice::PopulateWrite).unwrap();
        let bytes = live() - before;
        let per_page = bytes as f64 / GIB_PAGES as f64;
        println!(
            "linux {}: populating 1 GiB memfd: {bytes} bytes, {per_page:.2} bytes/page",
            p.version()
        );
        assert_eq!(
            k.mm(MM).counter(pfnguard_mm::RssCounter::Shmem),
            GIB_PAGES as i64
        );
        assert!(pte(&k, MM, a.add_pages(GIB_PAGES - 1)).present());
        assert!(per_page <= 64.0, "{per_page:.2} bytes per resident page");
        drop(inode);
    }
}

#[test]
fn pfnmap_1tib_aperture_1000_pages_under_1mib() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for p in every_line() {
        let mut k = kernel(p);
        let pages: u64 = 1 << 28; // 1 TiB
        let before = live();
        let dev = k.frames.alloc_device(pages);
        let drv = Driver {
            pre_flags: VmFlags::PFNMAP | VmFlags::IO | VmFlags::DONTEXPAND | VmFlags::DONTDUMP,
            fault: FaultAction::InsertPfn(dev),
            ..Driver::default()
        };
        // The model's mmap area grows up from 0x7f00_0000_0000 and holds less than 1 TiB: the
        // aperture goes at a hint address.
        let mut args = MmapArgs::new(pages * PAGE_SIZE, Prot::RW, MapFlags::SHARED);
        args.addr = Some(pfnguard_mm::VirtAddr(0x1000_0000_0000));
        let a = do_mmap(&mut k, MM, Some(dev_file(drv, true)), args).unwrap();
        // 1,000 distinct pages spread over the whole aperture (a multiplicative walk).
        let mut touched = std::collections::BTreeSet::new();
        let mut x: u64 = 0x9E37_79B9;
        while touched.len() < 1000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let off = (x >> 20) % pages;
            touched.insert(off);
        }
        let offs: Vec<u64> = touched.iter().copied().collect();
        drop(touched);
        let mid = live();
        for &off in &offs {
            user_access(&mut k, MM, a.add_pages(off), true).unwrap();
        }
        let bytes = live() - before;
        let faults = live() - mid;
        println!(
            "linux {}: 1 TiB VM_PFNMAP aperture, 1000 touched pages: {bytes} bytes in total ({faults} from the faults)",
            p.version()
        );
        for &off in offs.iter().step_by(97) {
            let e = pte(&k, MM, a.add_pages(off));
            assert!(e.special() && e.pfn().0 == dev.0 + off);
        }
        assert!(bytes < 1 << 20, "{bytes} bytes");
        drop(offs);
    }
}
