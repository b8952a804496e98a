//! `pfnguard check`: the model against a probe report, cell by cell.

use std::path::Path;
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use pfnguard_dmabuf::{run_cell, Policy};
use pfnguard_mm::profile_for;
use pfnguard_report::{value, ProbeReport};
use serde_json::json;

use crate::Format;

/// One compared cell that disagrees.
#[derive(Debug, serde::Serialize)]
struct Disagreement {
    exporter: String,
    op: String,
    probe: String,
    model: String,
    steps: Vec<pfnguard_mm::trace::Step>,
}

/// Compare and print; exit status 1 on any disagreement.
pub fn check(path: &Path, format: Format) -> Result<ExitCode> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--probe {}: cannot read", path.display()))?;
    let report: ProbeReport = serde_json::from_str(&text).map_err(|e| {
        anyhow!(
            "--probe {}:{}:{}: {e}",
            path.display(),
            e.line(),
            e.column()
        )
    })?;
    let profile = profile_for(&report.kernel_release).ok_or_else(|| {
        anyhow!(
            "--probe {}: kernel_release {:?} matches no modeled kernel",
            path.display(),
            report.kernel_release
        )
    })?;
    let mut agree = 0usize;
    let mut total = 0usize;
    let mut bad: Vec<Disagreement> = Vec::new();
    let mut notes: Vec<String> = Vec::new();
    for row in &report.exporters {
        if let Some(s) = &row.status {
            notes.push(format!("{}: {s} (not compared)", row.exporter));
            continue;
        }
        let Some(exp) = pfnguard_dmabuf::by_id(&row.exporter) else {
            notes.push(format!(
                "{}: no model of this exporter (not compared)",
                row.exporter
            ));
            continue;
        };
        let pages = row
            .detail
            .get("size")
            .and_then(serde_json::Value::as_u64)
            .map(|s| s.div_ceil(4096))
            .filter(|&p| p > 0)
            .unwrap_or(pfnguard_dmabuf::DEFAULT_PAGES);
        for (op, probed) in &row.ops {
            if value::is_unavailable(probed) {
                notes.push(format!("{} {op}: {probed} (not compared)", row.exporter));
                continue;
            }
            total += 1;
            let cell = run_cell(profile, exp.as_ref(), Policy::Off, *op, pages, false);
            if cell.value == *probed {
                agree += 1;
                continue;
            }
            let traced = run_cell(profile, exp.as_ref(), Policy::Off, *op, pages, true);
            bad.push(Disagreement {
                exporter: row.exporter.clone(),
                op: op.to_string(),
                probe: probed.clone(),
                model: cell.value,
                steps: traced.trace.map(|t| t.steps().to_vec()).unwrap_or_default(),
            });
        }
    }
    match format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "kernel_release": report.kernel_release,
                "profile": profile.name,
                "agree": agree,
                "total": total,
                "disagreements": bad,
                "not_compared": notes,
            }))?
        ),
        _ => {
            println!(
                "probe of {} checked against the model of Linux {} ({})\n",
                report.kernel_release, profile.name, profile.release
            );
            for d in &bad {
                println!(
                    "DISAGREE {} {}: kernel {} / model {}",
                    d.exporter, d.op, d.probe, d.model
                );
                for s in &d.steps {
                    println!(
                        "    {:indent$}{}: {}",
                        "",
                        s.function,
                        s.note,
                        indent = 2 * s.depth as usize
                    );
                }
                println!();
            }
            for n in &notes {
                println!("note: {n}");
            }
            println!("{agree}/{total} cells agree");
        }
    }
    Ok(if bad.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
