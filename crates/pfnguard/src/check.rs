//! `pfnguard check`: the model against probe reports, cell by cell.
//!
//! Only cells both sides measured are compared. Cells skipped on both sides (a step they need
//! failed) and cells either side could not measure (`unavailable: ...`) are counted apart;
//! an op missing from a probe row is an error of the comparison, and so is a comparison of
//! nothing.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use pfnguard_dmabuf::{by_id, run_cell, Policy, DEFAULT_PAGES, MAX_PAGES};
use pfnguard_mm::{resolve_release, trace::Step, ResolvedKernel, PAGE_SIZE};
use pfnguard_report::{ExporterId, ExporterReport, OpKey, Outcome, ProbeReport, Unmodeled};
use serde::Serialize;

use crate::cmd::print_json;
use crate::Format;

/// One compared cell that disagrees, with the model's path.
#[derive(Debug, Serialize)]
struct Disagreement {
    exporter: ExporterId,
    op: OpKey,
    kernel: String,
    model: String,
    steps: Vec<Step>,
}

/// A cell that was not compared, and why.
#[derive(Debug, Serialize)]
struct Unmeasured {
    exporter: ExporterId,
    op: OpKey,
    why: String,
}

/// An exporter of the probe report that was not compared, and why.
#[derive(Debug, Serialize)]
struct NotCompared {
    exporter: ExporterId,
    why: String,
}

/// The comparison of one probe report (one kernel).
#[derive(Debug, Serialize)]
struct KernelCheck {
    probe: String,
    kernel_release: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel_package: Option<pfnguard_report::KernelPackage>,
    model: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    model_note: Option<String>,
    /// Cells both sides measured.
    compared: usize,
    agree: usize,
    disagree: usize,
    /// Cells skipped on both sides: not compared, not agreement.
    skipped_both: usize,
    /// Cells either side could not measure.
    unmeasured: Vec<Unmeasured>,
    /// Ops a probed exporter's row lacks.
    missing: Vec<(ExporterId, OpKey)>,
    disagreements: Vec<Disagreement>,
    not_compared: Vec<NotCompared>,
    unmodeled: Vec<Unmodeled>,
}

/// A probe report read and checked against the vocabulary, every row with its buffer size.
struct Loaded {
    report: ProbeReport,
    rows: Vec<(ExporterId, u64)>,
    kernel: ResolvedKernel,
}

/// The largest probe report `check` reads (a report of every exporter is under 100 KiB).
const MAX_REPORT_BYTES: u64 = 16 << 20;

/// A text file of at most `max` bytes; anything longer (or endless, like a device) is an error.
fn read_bounded(path: &Path, max: u64) -> Result<String> {
    use std::io::Read as _;
    let f = std::fs::File::open(path)?;
    let mut text = String::new();
    f.take(max + 1).read_to_string(&mut text)?;
    if text.len() as u64 > max {
        bail!("larger than {max} bytes: not a probe report");
    }
    Ok(text)
}

/// Read a probe report; every error names the file and, where there is one, the row and key.
fn load(path: &Path) -> Result<Loaded> {
    let p = path.display();
    let text = read_bounded(path, MAX_REPORT_BYTES)
        .with_context(|| format!("--probe {p}: cannot read"))?;
    let mut report: ProbeReport = serde_json::from_str(&text)
        .map_err(|e| anyhow!("--probe {p}:{}:{}: {e}", e.line(), e.column()))?;
    let resolved = resolve_release(&report.kernel_release, report.kernel_version.as_deref())
        .map_err(|e| anyhow!("--probe {p}: kernel {:?}: {e}", report.kernel_release))?;
    let mut rows: Vec<(ExporterId, u64)> = Vec::new();
    for (i, row) in report.exporters.iter_mut().enumerate() {
        let at = format!("--probe {p}: exporters[{i}]");
        let id: ExporterId = row
            .exporter
            .parse()
            .map_err(|e| anyhow!("{at}.exporter: {e}"))?;
        if let Some(j) = rows.iter().position(|(seen, _)| *seen == id) {
            bail!("{at}: exporter {id} appears twice (also exporters[{j}])");
        }
        row.resolve_skips()
            .map_err(|e| anyhow!("{at} ({id}): {e}"))?;
        rows.push((
            id,
            pages_of(row).map_err(|e| anyhow!("{at}.detail.size: {e}"))?,
        ));
    }
    Ok(Loaded {
        report,
        rows,
        kernel: resolved,
    })
}

/// The buffer size the probe used, in whole pages as the kernel maps them (rounded down, the
/// way the exporters size their buffers), bounded by the model's limit.
fn pages_of(row: &ExporterReport) -> Result<u64> {
    let Some(v) = row.detail.get("size") else {
        return Ok(DEFAULT_PAGES);
    };
    let size = v
        .as_u64()
        .ok_or_else(|| anyhow!("{v} is not a size in bytes"))?;
    let pages = size / PAGE_SIZE;
    if !(1..=MAX_PAGES).contains(&pages) {
        bail!("{size} bytes is {pages} page(s); the model runs buffers of 1 to {MAX_PAGES} pages");
    }
    Ok(pages)
}

fn compare(path: &Path, l: Loaded) -> KernelCheck {
    let Loaded {
        report,
        rows,
        kernel,
    } = l;
    let mut c = KernelCheck {
        probe: path.display().to_string(),
        kernel_release: report.kernel_release.clone(),
        kernel_version: report.kernel_version.clone(),
        kernel_package: report.kernel_package.clone(),
        model: format!("{} ({})", kernel.version, kernel.config.source),
        model_note: (!kernel.notes.is_empty()).then(|| kernel.notes.join("; ")),
        compared: 0,
        agree: 0,
        disagree: 0,
        skipped_both: 0,
        unmeasured: Vec::new(),
        missing: Vec::new(),
        disagreements: Vec::new(),
        not_compared: Vec::new(),
        unmodeled: report.unmodeled.clone(),
    };
    for (row, (id, pages)) in report.exporters.iter().zip(rows) {
        if let Some(s) = &row.status {
            c.not_compared.push(NotCompared {
                exporter: id,
                why: s.clone(),
            });
            continue;
        }
        let exp = by_id(id);
        for op in OpKey::ALL {
            let Some(probed) = row.ops.get(&op) else {
                c.missing.push((id, op));
                continue;
            };
            let model = run_cell(&kernel, exp.as_ref(), Policy::Off, op, pages, false).value;
            match (probed, &model) {
                (Outcome::Unavailable(why), _) => c.unmeasured.push(Unmeasured {
                    exporter: id,
                    op,
                    why: format!("kernel: unavailable: {why}"),
                }),
                (_, Outcome::Unavailable(why)) => c.unmeasured.push(Unmeasured {
                    exporter: id,
                    op,
                    why: format!("model: unavailable: {why}"),
                }),
                (Outcome::Skipped(_), Outcome::Skipped(_)) => c.skipped_both += 1,
                _ => {
                    c.compared += 1;
                    if *probed == model {
                        c.agree += 1;
                        continue;
                    }
                    c.disagree += 1;
                    let traced = run_cell(&kernel, exp.as_ref(), Policy::Off, op, pages, true);
                    c.disagreements.push(Disagreement {
                        exporter: id,
                        op,
                        kernel: probed.describe(),
                        model: model.describe(),
                        steps: traced.trace.map(|t| t.steps()).unwrap_or_default(),
                    });
                }
            }
        }
    }
    c
}

/// The result of a whole check, from its per-kernel parts.
fn verdict(checks: &[KernelCheck]) -> (&'static str, ExitCode) {
    let compared: usize = checks.iter().map(|c| c.compared).sum();
    if checks.iter().any(|c| !c.missing.is_empty()) {
        ("ops missing from a probe report", ExitCode::from(1))
    } else if checks.iter().any(|c| c.disagree > 0) {
        ("cells disagree", ExitCode::from(1))
    } else if checks.iter().any(|c| c.compared == 0) || compared == 0 {
        ("nothing compared", ExitCode::from(1))
    } else {
        ("every compared cell agrees", ExitCode::SUCCESS)
    }
}

fn print_table(out: &mut dyn Write, c: &KernelCheck) -> Result<()> {
    writeln!(
        out,
        "{}: {}{}, checked against the model of Linux {}",
        c.probe,
        c.kernel_release,
        c.kernel_version
            .as_deref()
            .map(|v| format!(" (Linux {v})"))
            .unwrap_or_default(),
        c.model
    )?;
    if let Some(k) = &c.kernel_package {
        writeln!(out, "package: {} {}", k.name, k.version)?;
    }
    if let Some(n) = &c.model_note {
        writeln!(out, "note: {n}")?;
    }
    writeln!(out)?;
    for d in &c.disagreements {
        writeln!(
            out,
            "DISAGREE {} {}: kernel {} / model {}",
            d.exporter, d.op, d.kernel, d.model
        )?;
        for s in &d.steps {
            writeln!(
                out,
                "    {:indent$}{}: {}",
                "",
                s.function,
                s.note,
                indent = 2 * s.depth as usize
            )?;
        }
        writeln!(out)?;
    }
    for (e, op) in &c.missing {
        writeln!(out, "MISSING {e} {op}: the probe report has no value")?;
    }
    for n in &c.not_compared {
        writeln!(out, "not compared: {}: {}", n.exporter, n.why)?;
    }
    for u in &c.unmeasured {
        writeln!(out, "not measured: {} {}: {}", u.exporter, u.op, u.why)?;
    }
    for u in &c.unmodeled {
        writeln!(out, "not modeled: {} at {}", u.name, u.node)?;
    }
    writeln!(
        out,
        "{}/{} compared cells agree; {} skipped on both sides, {} not measured, {} missing\n",
        c.agree,
        c.compared,
        c.skipped_both,
        c.unmeasured.len(),
        c.missing.len()
    )?;
    Ok(())
}

/// `pfnguard check`: compare and print; exit status 1 unless every compared cell agrees, no
/// op is missing and something was compared.
pub fn check(out: &mut dyn Write, paths: &[PathBuf], format: Format) -> Result<ExitCode> {
    let loaded = paths
        .iter()
        .map(|p| load(p).map(|l| (p, l)))
        .collect::<Result<Vec<_>>>()?;
    // A cell counts once: the same exporter of the same kernel in two reports is an error.
    let mut seen: BTreeMap<(String, ExporterId), &Path> = BTreeMap::new();
    for (p, l) in &loaded {
        for (id, _) in &l.rows {
            let key = (l.report.kernel_release.clone(), *id);
            if let Some(first) = seen.insert(key, p.as_path()) {
                bail!(
                    "--probe {}: exporter {id} of {} is also in --probe {}",
                    p.display(),
                    l.report.kernel_release,
                    first.display()
                );
            }
        }
    }
    let checks: Vec<KernelCheck> = loaded.into_iter().map(|(p, l)| compare(p, l)).collect();
    let (result, code) = verdict(&checks);
    let sum = |f: fn(&KernelCheck) -> usize| checks.iter().map(f).sum::<usize>();
    let totals: BTreeMap<&str, usize> = BTreeMap::from([
        ("compared", sum(|c| c.compared)),
        ("agree", sum(|c| c.agree)),
        ("disagree", sum(|c| c.disagree)),
        ("skipped_both", sum(|c| c.skipped_both)),
        ("not_measured", sum(|c| c.unmeasured.len())),
        ("missing", sum(|c| c.missing.len())),
    ]);
    match format {
        Format::Json => print_json(
            out,
            &serde_json::json!({ "result": result, "totals": totals, "kernels": checks }),
        )?,
        Format::Table => {
            for c in &checks {
                print_table(out, c)?;
            }
            writeln!(
                out,
                "{result}: {}/{} compared cells agree over {} probe report(s)",
                totals["agree"],
                totals["compared"],
                checks.len()
            )?;
        }
    }
    Ok(code)
}
