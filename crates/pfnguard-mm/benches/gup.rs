//! `pin_user_pages_fast(FOLL_LONGTERM|FOLL_WRITE)` over a fully populated 1 GiB MAP_SHARED memfd
//! mapping (262,144 PTEs). The pin is timed, the unpin is not; criterion's throughput figure is
//! pages per second, and the mean time per page is printed after each kernel.
//!
//! Run: `cargo bench -p pfnguard-mm --bench gup`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pfnguard_mm::gup::{pin_user_pages_fast, Foll};
use pfnguard_mm::madvise::{madvise, Advice};
use pfnguard_mm::mmap::do_mmap;
use pfnguard_mm::shmem::memfd_create;
use pfnguard_mm::{Config, Kernel, KernelFacts, MapFlags, MmapArgs, Pfn, Prot, PAGE_SIZE};

const PAGES: u64 = 262_144;

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("pin_user_pages_fast_1GiB_memfd");
    g.throughput(Throughput::Elements(PAGES));
    g.sample_size(20);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(4));
    for facts in [KernelFacts::of("6.1.192"), KernelFacts::of("6.12.117")] {
        let mut k = Kernel::new(facts, Config::default());
        let mm = Kernel::INIT_MM;
        let (file, _inode) = memfd_create("bench", PAGES, false);
        let len = PAGES * PAGE_SIZE;
        let addr = do_mmap(
            &mut k,
            mm,
            Some(file),
            MmapArgs::new(len, Prot::RW, MapFlags::SHARED),
        )
        .expect("mmap");
        madvise(&mut k, mm, addr, len, Advice::PopulateWrite).expect("populate");
        let mut pages: Vec<Pfn> = Vec::with_capacity(PAGES as usize);
        let (mut timed, mut pinned) = (Duration::ZERO, 0u64);
        g.bench_function(format!("linux_{}", facts.version().line()), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    pages.clear();
                    let t = Instant::now();
                    let n = pin_user_pages_fast(
                        &mut k,
                        mm,
                        addr,
                        PAGES,
                        Foll::LONGTERM | Foll::WRITE,
                        &mut pages,
                    );
                    total += t.elapsed();
                    assert_eq!(black_box(n), Ok(PAGES));
                    k.unpin_user_pages(&pages);
                }
                timed += total;
                pinned += iters * PAGES;
                total
            })
        });
        if pinned > 0 {
            println!(
                "linux {}: {:.2} ns/page over {pinned} pinned pages",
                facts.version(),
                timed.as_nanos() as f64 / pinned as f64
            );
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
