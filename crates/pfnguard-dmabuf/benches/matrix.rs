//! The full matrix — every catalogue exporter × every op × every line × the four policies,
//! each cell on a fresh model instance — in one process.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use pfnguard_dmabuf::{catalogue, run_cell, Policy, DEFAULT_PAGES};
use pfnguard_mm::{resolve_kernel, LINES};
use pfnguard_report::OpKey;

fn full_matrix() -> usize {
    let exporters = catalogue();
    let kernels: Vec<_> = LINES
        .iter()
        .map(|l| resolve_kernel(&l.to_string()).expect("modeled line"))
        .collect();
    let mut cells = 0;
    for profile in &kernels {
        for policy in Policy::ALL {
            for e in &exporters {
                for op in OpKey::ALL {
                    black_box(run_cell(
                        profile,
                        e.as_ref(),
                        policy,
                        op,
                        DEFAULT_PAGES,
                        false,
                    ));
                    cells += 1;
                }
            }
        }
    }
    cells
}

fn bench(c: &mut Criterion) {
    let cells = full_matrix();
    c.bench_function(&format!("full matrix ({cells} cells)"), |b| {
        b.iter(full_matrix)
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
