//! A full audit (scan of every process, figures, the model's predictions) of synthetic trees
//! of 500, 1,000 and 2,000 processes, each holding 25 dma-buf fds and mapping 10 of them: at
//! 2,000, the budget's 50,000 fds and 20,000 mappings. `thrpt` is processes per second; equal
//! throughput across the three sizes is linear growth.
//!
//! ```text
//! cargo bench -p pfnguard-audit --bench audit
//! ```

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use pfnguard_audit::{audit, scan, synth, Reader, Root, ScanOptions};

fn bench(c: &mut Criterion) {
    let base = std::env::temp_dir().join(format!("pfnguard-audit-bench-{}", std::process::id()));
    let mut g = c.benchmark_group("audit");
    g.sample_size(10);
    for procs in [500usize, 1000, 2000] {
        let dir = base.join(procs.to_string());
        let figures = match synth::write_fixture(&dir, procs, 25, 10) {
            Ok(f) => f,
            Err(e) => panic!("writing the synthetic tree under {}: {e}", dir.display()),
        };
        let root = Root::fixture(&dir);
        g.throughput(Throughput::Elements(procs as u64));
        g.bench_function(format!("{procs}_procs"), |b| {
            b.iter(|| {
                let r = Reader::new(&root, false);
                let s = scan(&r, ScanOptions::default()).expect("scan");
                let a = audit(&s, None);
                assert_eq!(a.totals.fds as usize, figures.fds);
                a
            })
        });
    }
    g.finish();
    let _ = std::fs::remove_dir_all(&base);
}

criterion_group!(benches, bench);
criterion_main!(benches);
