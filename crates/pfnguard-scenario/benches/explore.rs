//! States per second of the explorer: a symmetric scenario of three processes that each map,
//! touch, pin and unpin the buffer, `explore` of one exporter at depth 4, and the README's
//! figure, `explore` of vivid-vmalloc on 6.12 at depth 6 (the default alphabet, with the
//! importing device: 345,059 states) on one thread and on two (`thrpt` is distinct states per
//! second):
//!
//! ```text
//! cargo bench -p pfnguard-scenario --bench explore -- vivid
//! ```
//!
//! With the `pfnguard` binary's allocator (mimalloc), so that the figures are the command's.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pfnguard_scenario::{explore_alphabet, parse_scenario, run_scenario, Limits};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SYMMETRIC: &str = r#"
kernel = "6.12"
exporter = "udmabuf-shmem"
[[actor]]
name = "a"
steps = ["mmap", "touch 0", "gup_pin 0", "gup_unpin", "munmap"]
[[actor]]
name = "b"
steps = ["mmap", "touch 0", "gup_pin 0", "gup_unpin", "munmap"]
[[actor]]
name = "c"
steps = ["mmap", "touch 0", "gup_pin 0", "gup_unpin", "munmap"]
"#;

fn bench(c: &mut Criterion) {
    let sc = match parse_scenario(Path::new("symmetric.toml"), SYMMETRIC) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    let mut g = c.benchmark_group("explore");
    g.sample_size(10);
    g.bench_function("symmetric-3x5", |b| {
        b.iter(|| run_scenario(&sc, Limits::default()))
    });
    let k = match pfnguard_mm::resolve_kernel("6.12") {
        Ok(k) => k,
        Err(e) => panic!("{e}"),
    };
    let exp = pfnguard_dmabuf::by_id(pfnguard_report::ExporterId::UdmabufShmem);
    g.bench_function("alphabet-udmabuf-depth4", |b| {
        b.iter(|| {
            explore_alphabet(
                "6.12",
                &k,
                exp.as_ref(),
                pfnguard_dmabuf::Policy::Off,
                1,
                4,
                Limits::default(),
            )
        })
    });
    g.finish();

    let vivid = pfnguard_dmabuf::by_id(pfnguard_report::ExporterId::VividVmalloc);
    let run = |threads: usize| {
        explore_alphabet(
            "6.12",
            &k,
            vivid.as_ref(),
            pfnguard_dmabuf::Policy::Off,
            1,
            6,
            Limits {
                threads,
                ..Limits::default()
            },
        )
    };
    let states = match run(1) {
        Ok(r) => r.states,
        Err(e) => panic!("{e}"),
    };
    let mut g = c.benchmark_group("explore-vivid-vmalloc-6.12-depth6");
    g.sample_size(10);
    g.throughput(Throughput::Elements(states as u64));
    for threads in [1, 2] {
        g.bench_function(format!("threads-{threads}"), |b| b.iter(|| run(threads)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
