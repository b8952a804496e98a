//! The subcommands.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use pfnguard_dmabuf::{predict, run_cell, Exporter, Policy};
use pfnguard_mm::{profile_for, KernelProfile, PROFILES};
use pfnguard_report::{ExporterReport, OpKey};

use crate::render::{markdown, table};
use crate::Format;

/// Resolve `--kernel`.
pub fn kernel(name: &str) -> Result<&'static KernelProfile> {
    profile_for(name).ok_or_else(|| {
        anyhow!(
            "--kernel {name:?}: unknown kernel (expected one of: {})",
            PROFILES
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", ")
        )
    })
}

/// Resolve `--policy`.
pub fn policy(name: &str) -> Result<Policy> {
    name.parse::<Policy>().map_err(|e| anyhow!("--policy: {e}"))
}

/// Resolve `--exporter` / `--exporter-file`.
pub fn exporter(id: Option<&str>, file: Option<&Path>) -> Result<Arc<dyn Exporter>> {
    match (id, file) {
        (Some(id), _) => pfnguard_dmabuf::by_id(id).ok_or_else(|| {
            anyhow!(
                "--exporter {id:?}: unknown exporter (expected one of: {})",
                pfnguard_dmabuf::exporters::ids().join(", ")
            )
        }),
        (None, Some(path)) => {
            let e = pfnguard_dmabuf::custom::load(path)?;
            Ok(Arc::new(e))
        }
        (None, None) => bail!("give --exporter ID or --exporter-file PATH"),
    }
}

fn pages_for(exp: &dyn Exporter, pages: u64) -> u64 {
    exp.fixed_pages().unwrap_or(pages)
}

fn print_json<T: serde::Serialize>(v: &T) -> Result<()> {
    println!(
        "{}",
        serde_json::to_string_pretty(v).context("encoding JSON")?
    );
    Ok(())
}

fn report_table(r: &ExporterReport) -> String {
    let mut out = format!(
        "exporter {}  kernel {}  policy {}\n",
        r.exporter,
        r.kernel.as_deref().unwrap_or("-"),
        r.policy.as_deref().unwrap_or("-")
    );
    if let Some(s) = &r.status {
        out.push_str(&format!("status: {s}\n"));
    }
    for (k, v) in &r.detail {
        out.push_str(&format!(
            "{k}: {}\n",
            v.as_str().map_or_else(|| v.to_string(), str::to_owned)
        ));
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = r
        .ops
        .iter()
        .map(|(k, v)| vec![k.to_string(), v.clone()])
        .collect();
    out.push_str(&table(&["op".into(), "value".into()], &rows));
    if !r.warnings.is_empty() {
        out.push_str("\nkernel log:\n");
        for w in &r.warnings {
            out.push_str(&format!("  {w}\n"));
        }
    }
    out
}

/// `pfnguard predict`.
pub fn predict_cmd(
    kernel_name: &str,
    id: Option<&str>,
    file: Option<&Path>,
    policy_name: &str,
    pages: u64,
    format: Format,
) -> Result<ExitCode> {
    let k = kernel(kernel_name)?;
    let p = policy(policy_name)?;
    let e = exporter(id, file)?;
    let pages = pages_for(e.as_ref(), pages);
    if pages == 0 || pages > 1 << 20 {
        bail!("--pages {pages}: must be between 1 and 1048576");
    }
    let r = predict(k, e.as_ref(), p, pages);
    match format {
        Format::Json => print_json(&r)?,
        Format::Table | Format::Markdown => print!("{}", report_table(&r)),
    }
    Ok(ExitCode::SUCCESS)
}

/// `pfnguard matrix`.
pub fn matrix(
    kernels: &[String],
    policies: &[String],
    files: &[PathBuf],
    format: Format,
) -> Result<ExitCode> {
    let ks: Vec<&'static KernelProfile> = if kernels.is_empty() {
        PROFILES.to_vec()
    } else {
        kernels.iter().map(|k| kernel(k)).collect::<Result<_>>()?
    };
    let ps: Vec<Policy> = if policies.is_empty() {
        vec![Policy::Off]
    } else {
        policies.iter().map(|p| policy(p)).collect::<Result<_>>()?
    };
    let mut exps = pfnguard_dmabuf::catalogue();
    for f in files {
        exps.push(Arc::new(pfnguard_dmabuf::custom::load(f)?));
    }
    let mut reports: Vec<ExporterReport> = Vec::new();
    for k in &ks {
        for p in &ps {
            for e in &exps {
                let pages = pages_for(e.as_ref(), pfnguard_dmabuf::DEFAULT_PAGES);
                reports.push(predict(k, e.as_ref(), *p, pages));
            }
        }
    }
    if format == Format::Json {
        print_json(&reports)?;
        return Ok(ExitCode::SUCCESS);
    }
    let base = ps[0];
    let mut headers: Vec<String> = vec!["exporter".into()];
    headers.extend(OpKey::ALL.iter().map(|o| o.to_string()));
    for k in &ks {
        for p in &ps {
            let mut rows = Vec::new();
            for r in reports.iter().filter(|r| {
                r.kernel.as_deref() == Some(k.name) && r.policy.as_deref() == Some(p.name())
            }) {
                let baseline = reports.iter().find(|b| {
                    b.kernel == r.kernel
                        && b.exporter == r.exporter
                        && b.policy.as_deref() == Some(base.name())
                });
                let mut row = vec![r.exporter.clone()];
                for op in OpKey::ALL {
                    let v = r.ops.get(&op).cloned().unwrap_or_default();
                    let changed = *p != base
                        && baseline
                            .and_then(|b| b.ops.get(&op))
                            .is_some_and(|bv| *bv != v);
                    row.push(match (changed, format) {
                        (true, Format::Markdown) => format!("**{v}**"),
                        (true, _) => format!("*{v}"),
                        _ => v,
                    });
                }
                rows.push(row);
            }
            let title = if *p == base || ps.len() == 1 {
                format!("Linux {} ({}), policy {}", k.name, k.release, p.name())
            } else {
                format!(
                    "Linux {} ({}), policy {} (cells changed from {} marked)",
                    k.name,
                    k.release,
                    p.name(),
                    base.name()
                )
            };
            match format {
                Format::Markdown => println!("### {title}\n\n{}", markdown(&headers, &rows)),
                _ => println!("{title}\n{}", table(&headers, &rows)),
            }
        }
    }
    if ps.len() > 1 && format == Format::Table {
        println!(
            "* marks a cell whose value differs from policy {}.",
            base.name()
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `pfnguard explain`.
pub fn explain(
    kernel_name: &str,
    id: Option<&str>,
    file: Option<&Path>,
    op: &str,
    policy_name: &str,
    format: Format,
) -> Result<ExitCode> {
    let k = kernel(kernel_name)?;
    let p = policy(policy_name)?;
    let e = exporter(id, file)?;
    let op: OpKey = op.parse().map_err(|e| anyhow!("--op: {e}"))?;
    let pages = pages_for(e.as_ref(), pfnguard_dmabuf::DEFAULT_PAGES);
    let c = run_cell(k, e.as_ref(), p, op, pages, true);
    let steps = c
        .trace
        .as_ref()
        .map(|t| t.steps().to_vec())
        .unwrap_or_default();
    match format {
        Format::Json => print_json(&serde_json::json!({
            "kernel": k.name, "exporter": e.id(), "policy": p.name(), "op": op.as_str(),
            "value": c.value, "warnings": c.events, "steps": steps,
        }))?,
        _ => {
            println!(
                "{} on Linux {} ({}), policy {}: {} = {}\n",
                e.id(),
                k.name,
                k.release,
                p.name(),
                op,
                c.value
            );
            if let Some(t) = &c.trace {
                print!("{t}");
            }
            if !c.events.is_empty() {
                println!("\nkernel log:");
                for w in &c.events {
                    println!("  {w}");
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `pfnguard probe`. `create_soft_roce`: `--create-soft-roce[=IFACE]`, `""` without IFACE.
pub fn probe(
    exporters: Vec<String>,
    odirect: Option<PathBuf>,
    timeout: u64,
    create_soft_roce: Option<String>,
    format: Format,
) -> Result<ExitCode> {
    if timeout == 0 {
        bail!("--timeout must be at least 1 second");
    }
    let opts = pfnguard_probe::ProbeOptions {
        exporters,
        op_timeout: Duration::from_secs(timeout),
        odirect_path: odirect,
        create_soft_roce: create_soft_roce.map(|iface| {
            if iface.is_empty() {
                pfnguard_probe::SoftRoce::FirstUp
            } else {
                pfnguard_probe::SoftRoce::Netdev(iface)
            }
        }),
    };
    let r = pfnguard_probe::run(&opts);
    match format {
        Format::Json => print_json(&r)?,
        _ => {
            println!("kernel {}\n", r.kernel_release);
            for e in &r.exporters {
                println!("{}", report_table(e));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `pfnguard exporters`.
pub fn list_exporters() -> Result<ExitCode> {
    let rows: Vec<Vec<String>> = pfnguard_dmabuf::catalogue()
        .iter()
        .map(|e| vec![e.id().to_owned(), e.summary().to_owned()])
        .collect();
    print!("{}", table(&["exporter".into(), "mmap path".into()], &rows));
    Ok(ExitCode::SUCCESS)
}

/// `pfnguard ops`.
pub fn list_ops() -> Result<ExitCode> {
    let rows: Vec<Vec<String>> = OpKey::ALL
        .iter()
        .map(|o| vec![o.to_string(), o.describe().to_owned()])
        .collect();
    print!("{}", table(&["op".into(), "what it does".into()], &rows));
    Ok(ExitCode::SUCCESS)
}
