//! The real-kernel evidence committed under `reports/`: the probe reports of Debian's kernels
//! booted under QEMU, embedded at build time, so the matrix can mark the cells a real kernel
//! confirmed.

use pfnguard_mm::{resolve_release, ResolvedKernel};
use pfnguard_report::{OpKey, Outcome, ProbeReport};

include!(concat!(env!("OUT_DIR"), "/evidence.rs"));

/// One probed cell.
#[derive(Debug, Clone)]
pub struct Probed {
    /// `uname -r` of the kernel.
    pub release: String,
    /// What it did.
    pub outcome: Outcome,
}

/// The embedded probe reports, parsed, each with the kernel it ran on.
pub fn probed() -> Vec<(ResolvedKernel, ProbeReport)> {
    PROBES
        .iter()
        .filter_map(|(_, text)| {
            let report = serde_json::from_str::<ProbeReport>(text).ok()?;
            let k =
                resolve_release(&report.kernel_release, report.kernel_version.as_deref()).ok()?;
            Some((k, report))
        })
        .collect()
}

/// The patched kernel's reports (reports/patched), by mmap_check level, parsed.
pub fn patched() -> Vec<(&'static str, ProbeReport)> {
    PATCHED
        .iter()
        .filter_map(|(level, text)| Some((*level, serde_json::from_str(text).ok()?)))
        .collect()
}

/// Every probed, measured cell of the real kernels whose facts are those of `kernel`:
/// `(exporter, op) -> what the kernels said`.
pub fn cells(
    probed: &[(ResolvedKernel, ProbeReport)],
    kernel: &ResolvedKernel,
) -> std::collections::BTreeMap<(String, OpKey), Vec<Probed>> {
    let mut out: std::collections::BTreeMap<(String, OpKey), Vec<Probed>> = Default::default();
    for (r, report) in probed {
        if r.facts != kernel.facts {
            continue;
        }
        for row in &report.exporters {
            for (op, outcome) in &row.ops {
                if outcome.is_measured() {
                    out.entry((row.exporter.clone(), *op))
                        .or_default()
                        .push(Probed {
                            release: report.kernel_release.clone(),
                            outcome: outcome.clone(),
                        });
                }
            }
        }
    }
    out
}
