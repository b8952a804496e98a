//! `pfnguard check`: the model against probe reports, cell by cell.
//!
//! Only cells both sides measured are compared. Cells skipped on both sides (a step they need
//! failed) and cells either side could not measure (`unavailable: ...`) are counted apart;
//! an op missing from a probe row is an error of the comparison, and so is a comparison of
//! nothing.
//!
//! The model runs under the policy the kernel ran: the report's `mmap_check` (the
//! `dma_buf.mmap_check` level of the kernel/dma-buf-mmap-check series), `off` when the kernel has
//! no such parameter. When the probe read the kernel log around every op (`kmsg`), a compared
//! cell agrees only if the kernel's WARN sites during the op (`warned_at`) are the model's too.
//! `--against` also compares every report with another kernel's report, cell by cell.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, bail, Context, Result};
use pfnguard_dmabuf::text_file::read_bounded;
use pfnguard_dmabuf::{by_id, run_cell, Policy, DEFAULT_PAGES, MAX_PAGES};
use pfnguard_mm::{resolve_release, trace::Step, KernelConfig, ResolvedKernel, PAGE_SIZE};
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
    /// The WARN sites the kernel logged during the op (when the log was read).
    #[serde(skip_serializing_if = "Option::is_none")]
    kernel_warnings: Option<Vec<String>>,
    /// The WARN sites the model hit (when the kernel's were recorded).
    #[serde(skip_serializing_if = "Option::is_none")]
    model_warnings: Option<Vec<String>>,
    steps: Vec<Step>,
}

/// One cell of two kernels' reports that differs.
#[derive(Debug, Serialize)]
struct Difference {
    exporter: ExporterId,
    op: OpKey,
    this: String,
    other: String,
}

/// A report compared with another kernel's report (`--against`), cell by cell.
#[derive(Debug, Serialize)]
struct Against {
    probe: String,
    kernel_release: String,
    /// Cells both kernels measured.
    compared: usize,
    agree: usize,
    /// Cells skipped on both kernels.
    skipped_both: usize,
    /// Cells either kernel could not measure, and exporters only one of them reached.
    unmeasured: Vec<Unmeasured>,
    differences: Vec<Difference>,
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
    /// The policy the model ran: the kernel's `dma_buf.mmap_check`.
    policy: Policy,
    /// Whether the kernel's warnings were recorded and compared.
    warnings_compared: bool,
    /// Compared cells in which the kernel or the model warned.
    cells_with_warnings: usize,
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
    /// The comparison with `--against`'s report.
    #[serde(skip_serializing_if = "Option::is_none")]
    against: Option<Against>,
    /// The scenario section compared with the model; `None`: the report has none (scenarios
    /// were not probed).
    scenarios: Option<ScenarioCheck>,
}

/// A scenario step on which the kernel and the model differ.
#[derive(Debug, Serialize)]
struct ScenarioDisagreement {
    scenario: String,
    /// The interleaving, `ACTOR:STEP` per step.
    order: Vec<String>,
    actor: String,
    /// The step's number in the actor's list, 1-based.
    step: u16,
    text: String,
    kernel: String,
    model: String,
    /// The model's outcome in words.
    model_detail: String,
    steps: Vec<Step>,
}

/// A scenario of the report that was not compared, and why.
#[derive(Debug, Serialize)]
struct ScenarioNotCompared {
    scenario: String,
    why: String,
}

/// The comparison of the report's scenario section: each step of each interleaving the kernel
/// ran against the model's value at that step.
#[derive(Debug, Default, Serialize)]
struct ScenarioCheck {
    /// Scenarios whose interleavings were compared.
    scenarios: usize,
    interleavings: usize,
    /// Scenario-step cells both sides measured.
    compared: usize,
    agree: usize,
    disagree: usize,
    /// Cells skipped or unavailable on either side: not compared, not agreement.
    skipped: usize,
    /// Cells one side lacks (a run cut short, a model that could not set up the buffer).
    missing: usize,
    not_compared: Vec<ScenarioNotCompared>,
    disagreements: Vec<ScenarioDisagreement>,
}

/// One scenario of the report's section, read back: the scenario (from the text the report
/// keeps) and each interleaving as actor indices.
struct LoadedScenario {
    scenario: pfnguard_scenario::Scenario,
    orders: Vec<Vec<u16>>,
}

/// A probe report read and checked against the vocabulary, every row with its buffer size.
struct Loaded {
    report: ProbeReport,
    rows: Vec<(ExporterId, u64)>,
    kernel: ResolvedKernel,
    policy: Policy,
    /// The scenario section's runs, aligned with `report.scenarios.runs` (`None`: not run).
    scenarios: Vec<Option<LoadedScenario>>,
}

/// The largest probe report `check` reads (a report of every exporter is under 100 KiB).
const MAX_REPORT_BYTES: u64 = 16 << 20;

/// Read a probe report; every error names the file and, where there is one, the row and key.
fn load(arg: &str, path: &Path, config: Option<&KernelConfig>) -> Result<Loaded> {
    let p = path.display();
    let text = read_bounded(path, MAX_REPORT_BYTES, "a probe report")
        .with_context(|| format!("{arg} {p}: cannot read"))?;
    let mut report: ProbeReport = serde_json::from_str(&text)
        .map_err(|e| anyhow!("{arg} {p}:{}:{}: {e}", e.line(), e.column()))?;
    let mut resolved = resolve_release(&report.kernel_release, report.kernel_version.as_deref())
        .map_err(|e| anyhow!("{arg} {p}: kernel {:?}: {e}", report.kernel_release))?;
    if let Some(c) = config {
        resolved = resolved.with_config(c.clone());
    }
    let policy = match report.mmap_check.as_deref() {
        None => Policy::Off,
        Some(level) => level
            .parse()
            .map_err(|e| anyhow!("{arg} {p}: mmap_check: {e}"))?,
    };
    let mut rows: Vec<(ExporterId, u64)> = Vec::new();
    for (i, row) in report.exporters.iter_mut().enumerate() {
        let at = format!("{arg} {p}: exporters[{i}]");
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
    let scenarios = match &report.scenarios {
        None => Vec::new(),
        Some(sec) => sec
            .runs
            .iter()
            .enumerate()
            .map(|(i, run)| load_scenario_run(&format!("{arg} {p}: scenarios.runs[{i}]"), run))
            .collect::<Result<Vec<_>>>()?,
    };
    Ok(Loaded {
        report,
        rows,
        kernel: resolved,
        policy,
        scenarios,
    })
}

/// Read one scenario run back: its scenario file's text parsed, each interleaving's order
/// resolved to actors and checked step by step against the scenario, and each recorded step
/// checked to be the order's. `None` for a run that was not run (a status).
fn load_scenario_run(
    at: &str,
    run: &pfnguard_report::scenarios::ScenarioRun,
) -> Result<Option<LoadedScenario>> {
    if run.status.is_some() {
        if !run.interleavings.is_empty() {
            bail!("{at}: skipped, yet it has interleavings");
        }
        return Ok(None);
    }
    let Some(text) = &run.definition else {
        bail!("{at}.definition: missing (the scenario file's text)");
    };
    let name = PathBuf::from(format!("{at}.definition"));
    let scenario = pfnguard_scenario::parse_scenario(&name, text).map_err(|e| anyhow!("{e}"))?;
    if scenario.name != run.scenario {
        bail!(
            "{at}: the definition is scenario `{}`, not `{}`",
            scenario.name,
            run.scenario
        );
    }
    let mut orders = Vec::new();
    for (j, il) in run.interleavings.iter().enumerate() {
        let at = format!("{at}.interleavings[{j}]");
        let mut pc = vec![0usize; scenario.actors.len()];
        let mut order = Vec::new();
        for (k, entry) in il.order.iter().enumerate() {
            let (actor, text) = entry
                .split_once(':')
                .ok_or_else(|| anyhow!("{at}.order[{k}]: `{entry}` is not ACTOR:STEP"))?;
            let i = scenario
                .actors
                .iter()
                .position(|a| a.name == actor)
                .ok_or_else(|| anyhow!("{at}.order[{k}]: no actor `{actor}` in the scenario"))?;
            let child_name = |c: u16| {
                scenario
                    .actors
                    .get(usize::from(c))
                    .map(|a| a.name.clone())
                    .unwrap_or_default()
            };
            let want = scenario.actors[i]
                .steps
                .get(pc[i])
                .map(|s| s.render(&child_name));
            if want.as_deref() != Some(text) {
                bail!(
                    "{at}.order[{k}]: `{entry}`, but step {} of `{actor}` is {}",
                    pc[i] + 1,
                    want.map_or_else(|| "past its last".to_owned(), |w| format!("`{w}`"))
                );
            }
            pc[i] += 1;
            order.push(u16::try_from(i)?);
        }
        if il.steps.len() > order.len() {
            bail!(
                "{at}.steps: {} steps for an order of {}",
                il.steps.len(),
                order.len()
            );
        }
        let mut seen = vec![0u16; scenario.actors.len()];
        for (k, (cell, &a)) in il.steps.iter().zip(&order).enumerate() {
            let i = usize::from(a);
            seen[i] += 1;
            if cell.actor != scenario.actors[i].name || cell.step != seen[i] {
                bail!(
                    "{at}.steps[{k}]: {}#{}, but the order's step {} is {}#{}",
                    cell.actor,
                    cell.step,
                    k + 1,
                    scenario.actors[i].name,
                    seen[i]
                );
            }
        }
        orders.push(order);
    }
    Ok(Some(LoadedScenario { scenario, orders }))
}

/// Compare the scenario section with the model: every step of every interleaving the kernel
/// ran, on the model of the report's kernel under its policy.
fn compare_scenarios(
    section: &pfnguard_report::scenarios::ScenarioSection,
    loaded: &[Option<LoadedScenario>],
    kernel: &ResolvedKernel,
    policy: Policy,
) -> ScenarioCheck {
    use pfnguard_scenario::observe::{run_order, trace_step};
    let mut c = ScenarioCheck::default();
    for (run, l) in section.runs.iter().zip(loaded) {
        let Some(l) = l else {
            c.not_compared.push(ScenarioNotCompared {
                scenario: run.scenario.clone(),
                why: run.status.clone().unwrap_or_else(|| "not run".into()),
            });
            continue;
        };
        if run.interleavings.is_empty() {
            c.not_compared.push(ScenarioNotCompared {
                scenario: run.scenario.clone(),
                why: "no interleaving run".into(),
            });
            continue;
        }
        c.scenarios += 1;
        for (il, order) in run.interleavings.iter().zip(&l.orders) {
            c.interleavings += 1;
            // The model runs a buffer of the size the kernel's run exported, as the op cells
            // do (an exporter with a size of its own keeps it).
            let mut sc = l.scenario.clone();
            if let Some(pages) = il
                .size
                .map(|b| b / PAGE_SIZE)
                .filter(|p| (1..=MAX_PAGES).contains(p))
            {
                sc.pages = pages;
            }
            let model = match run_order(&sc, kernel, policy, order) {
                Ok(m) => m,
                Err(e) => {
                    c.missing += order.len();
                    c.not_compared.push(ScenarioNotCompared {
                        scenario: run.scenario.clone(),
                        why: format!("model: {e}"),
                    });
                    continue;
                }
            };
            for k in 0..order.len() {
                let (Some(cell), Some(m)) = (il.steps.get(k), model.get(k)) else {
                    c.missing += 1;
                    continue;
                };
                let key = m.outcome.key();
                if !cell.value.measured() || matches!(key, "skipped" | "unavailable") {
                    c.skipped += 1;
                    continue;
                }
                c.compared += 1;
                if cell.value.as_str() == key {
                    c.agree += 1;
                    continue;
                }
                c.disagree += 1;
                c.disagreements.push(ScenarioDisagreement {
                    scenario: run.scenario.clone(),
                    order: il.order.clone(),
                    actor: cell.actor.clone(),
                    step: cell.step,
                    text: cell.text.clone(),
                    kernel: cell.value.to_string(),
                    model: key.to_owned(),
                    model_detail: m.outcome.to_string(),
                    steps: trace_step(&sc, kernel, policy, order, k),
                });
            }
        }
    }
    c
}

/// The buffer size the probe used, in whole pages as the kernel maps them (rounded down, the
/// way the exporters size their buffers), bounded by the model's limit.
pub(crate) fn pages_of(row: &ExporterReport) -> Result<u64> {
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

/// The WARN sites of a cell, each once, in order.
fn sites<S: AsRef<str>>(sites: &[S]) -> Vec<String> {
    let set: std::collections::BTreeSet<&str> = sites.iter().map(AsRef::as_ref).collect();
    set.into_iter().map(str::to_owned).collect()
}

fn compare(path: &Path, l: Loaded) -> KernelCheck {
    let Loaded {
        report,
        rows,
        kernel,
        policy,
        scenarios,
    } = l;
    let kmsg = report.kmsg;
    let mut c = KernelCheck {
        probe: path.display().to_string(),
        kernel_release: report.kernel_release.clone(),
        kernel_version: report.kernel_version.clone(),
        kernel_package: report.kernel_package.clone(),
        model: format!("{} ({})", kernel.version, kernel.config.source),
        model_note: (!kernel.notes.is_empty()).then(|| kernel.notes.join("; ")),
        policy,
        warnings_compared: kmsg,
        cells_with_warnings: 0,
        compared: 0,
        agree: 0,
        disagree: 0,
        skipped_both: 0,
        unmeasured: Vec::new(),
        missing: Vec::new(),
        disagreements: Vec::new(),
        not_compared: Vec::new(),
        unmodeled: report.unmodeled.clone(),
        against: None,
        scenarios: report
            .scenarios
            .as_ref()
            .map(|sec| compare_scenarios(sec, &scenarios, &kernel, policy)),
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
            let cell = run_cell(&kernel, exp.as_ref(), policy, op, pages, false);
            let model = cell.value;
            // With the kernel log read around every op, an op without an entry warned nothing.
            let warnings = kmsg.then(|| {
                let k = row
                    .warned_at
                    .as_ref()
                    .and_then(|w| w.get(&op))
                    .map(|w| sites(w))
                    .unwrap_or_default();
                (k, sites(&cell.warn_sites))
            });
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
                    if warnings
                        .as_ref()
                        .is_some_and(|(k, m)| !k.is_empty() || !m.is_empty())
                    {
                        c.cells_with_warnings += 1;
                    }
                    let warnings_agree = warnings.as_ref().is_none_or(|(k, m)| k == m);
                    if *probed == model && warnings_agree {
                        c.agree += 1;
                        continue;
                    }
                    c.disagree += 1;
                    let traced = run_cell(&kernel, exp.as_ref(), policy, op, pages, true);
                    let (kernel_warnings, model_warnings) = warnings.unzip();
                    c.disagreements.push(Disagreement {
                        exporter: id,
                        op,
                        kernel: probed.describe(),
                        model: model.describe(),
                        kernel_warnings,
                        model_warnings,
                        steps: traced.trace.map(|t| t.steps()).unwrap_or_default(),
                    });
                }
            }
        }
    }
    c
}

/// Compare a report with another kernel's, cell by cell: the cells both kernels measured must
/// be equal.
fn against(this: &Loaded, other_path: &Path, other: &Loaded) -> Against {
    let mut a = Against {
        probe: other_path.display().to_string(),
        kernel_release: other.report.kernel_release.clone(),
        compared: 0,
        agree: 0,
        skipped_both: 0,
        unmeasured: Vec::new(),
        differences: Vec::new(),
    };
    fn row_of(l: &Loaded, id: ExporterId) -> Option<&ExporterReport> {
        l.rows
            .iter()
            .position(|(r, _)| *r == id)
            .and_then(|i| l.report.exporters.get(i))
    }
    let mut ids: Vec<ExporterId> = this.rows.iter().map(|(id, _)| *id).collect();
    for (id, _) in &other.rows {
        if !ids.contains(id) {
            ids.push(*id);
        }
    }
    for id in ids {
        let (mine, theirs) = match (row_of(this, id), row_of(other, id)) {
            (Some(m), Some(t)) if m.status.is_none() && t.status.is_none() => (m, t),
            (m, t) => {
                let why = |r: Option<&ExporterReport>| match r {
                    None => "not probed".to_owned(),
                    Some(r) => r.status.clone().unwrap_or_else(|| "probed".to_owned()),
                };
                a.unmeasured.push(Unmeasured {
                    exporter: id,
                    op: OpKey::Export,
                    why: format!("exporter: {} here, {} there", why(m), why(t)),
                });
                continue;
            }
        };
        for op in OpKey::ALL {
            match (mine.ops.get(&op), theirs.ops.get(&op)) {
                (Some(Outcome::Unavailable(w)), _) | (_, Some(Outcome::Unavailable(w))) => {
                    a.unmeasured.push(Unmeasured {
                        exporter: id,
                        op,
                        why: format!("unavailable: {w}"),
                    })
                }
                (Some(Outcome::Skipped(_)), Some(Outcome::Skipped(_))) => a.skipped_both += 1,
                (Some(m), Some(t)) => {
                    a.compared += 1;
                    if m == t {
                        a.agree += 1;
                    } else {
                        a.differences.push(Difference {
                            exporter: id,
                            op,
                            this: m.describe(),
                            other: t.describe(),
                        });
                    }
                }
                // An op missing from a report is already an error of that report's check.
                _ => {}
            }
        }
    }
    a
}

/// The result of a whole check, from its per-kernel parts.
fn verdict(checks: &[KernelCheck]) -> (&'static str, ExitCode) {
    let compared: usize = checks.iter().map(|c| c.compared).sum();
    if checks.iter().any(|c| !c.missing.is_empty()) {
        ("ops missing from a probe report", ExitCode::from(1))
    } else if checks.iter().any(|c| c.disagree > 0) {
        ("cells disagree", ExitCode::from(1))
    } else if checks
        .iter()
        .filter_map(|c| c.scenarios.as_ref())
        .any(|s| s.disagree > 0)
    {
        ("scenario steps disagree", ExitCode::from(1))
    } else if checks
        .iter()
        .filter_map(|c| c.scenarios.as_ref())
        .any(|s| s.compared == 0)
    {
        ("the scenario section compares nothing", ExitCode::from(1))
    } else if checks.iter().any(|c| c.compared == 0) || compared == 0 {
        ("nothing compared", ExitCode::from(1))
    } else if checks
        .iter()
        .filter_map(|c| c.against.as_ref())
        .any(|a| !a.differences.is_empty())
    {
        ("cells differ from the --against kernel", ExitCode::from(1))
    } else if checks
        .iter()
        .filter_map(|c| c.against.as_ref())
        .any(|a| a.compared == 0)
    {
        (
            "nothing compared with the --against kernel",
            ExitCode::from(1),
        )
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
    writeln!(
        out,
        "policy: {} (the kernel's dma_buf.mmap_check){}",
        c.policy,
        if c.warnings_compared {
            "; kernel warnings compared"
        } else {
            ""
        }
    )?;
    writeln!(out)?;
    for d in &c.disagreements {
        writeln!(
            out,
            "DISAGREE {} {}: kernel {} / model {}",
            d.exporter, d.op, d.kernel, d.model
        )?;
        if let (Some(k), Some(m)) = (&d.kernel_warnings, &d.model_warnings) {
            if k != m {
                let list = |w: &[String]| {
                    if w.is_empty() {
                        "none".to_owned()
                    } else {
                        w.join(", ")
                    }
                };
                writeln!(out, "  warnings: kernel {} / model {}", list(k), list(m))?;
            }
        }
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
        "{}/{} compared cells agree; {} skipped on both sides, {} not measured, {} missing",
        c.agree,
        c.compared,
        c.skipped_both,
        c.unmeasured.len(),
        c.missing.len()
    )?;
    if c.warnings_compared {
        writeln!(
            out,
            "{} compared cells with kernel or model warnings",
            c.cells_with_warnings
        )?;
    }
    match &c.scenarios {
        None => writeln!(
            out,
            "scenarios: not probed (the report has no scenarios section)"
        )?,
        Some(s) => {
            for d in &s.disagreements {
                writeln!(
                    out,
                    "DISAGREE scenario {} [{}]: {}#{} {}: kernel {} / model {}",
                    d.scenario,
                    d.order.join(" "),
                    d.actor,
                    d.step,
                    d.text,
                    d.kernel,
                    d.model_detail
                )?;
                for st in &d.steps {
                    writeln!(
                        out,
                        "    {:indent$}{}: {}",
                        "",
                        st.function,
                        st.note,
                        indent = 2 * st.depth as usize
                    )?;
                }
            }
            for n in &s.not_compared {
                writeln!(out, "scenario not compared: {}: {}", n.scenario, n.why)?;
            }
            writeln!(
                out,
                "scenarios: {}/{} compared scenario-step cells agree ({} scenarios, {} \
                 interleavings); {} skipped on either side, {} missing",
                s.agree, s.compared, s.scenarios, s.interleavings, s.skipped, s.missing
            )?;
        }
    }
    if let Some(a) = &c.against {
        writeln!(out, "against {} ({}):", a.probe, a.kernel_release)?;
        for d in &a.differences {
            writeln!(
                out,
                "DIFFERS {} {}: here {} / there {}",
                d.exporter, d.op, d.this, d.other
            )?;
        }
        for u in &a.unmeasured {
            writeln!(
                out,
                "not measured on both: {} {}: {}",
                u.exporter, u.op, u.why
            )?;
        }
        writeln!(
            out,
            "{}/{} cells both kernels measured are equal; {} skipped on both, {} not measured",
            a.agree,
            a.compared,
            a.skipped_both,
            a.unmeasured.len()
        )?;
    }
    writeln!(out)?;
    Ok(())
}

/// `pfnguard check`: compare and print; exit status 1 unless every compared cell agrees, no
/// op is missing and something was compared.
pub fn check(
    out: &mut dyn Write,
    paths: &[PathBuf],
    config: Option<&KernelConfig>,
    against_path: Option<&Path>,
    format: Format,
) -> Result<ExitCode> {
    let loaded = paths
        .iter()
        .map(|p| load("--probe", p, config).map(|l| (p, l)))
        .collect::<Result<Vec<_>>>()?;
    let other = against_path
        .map(|p| load("--against", p, None).map(|l| (p, l)))
        .transpose()?;
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
    let checks: Vec<KernelCheck> = loaded
        .into_iter()
        .map(|(p, l)| {
            let a = other.as_ref().map(|(op, o)| against(&l, op, o));
            let mut c = compare(p, l);
            c.against = a;
            c
        })
        .collect();
    let (result, code) = verdict(&checks);
    let sum = |f: fn(&KernelCheck) -> usize| checks.iter().map(f).sum::<usize>();
    let totals: BTreeMap<&str, usize> = BTreeMap::from([
        ("compared", sum(|c| c.compared)),
        ("agree", sum(|c| c.agree)),
        ("disagree", sum(|c| c.disagree)),
        ("skipped_both", sum(|c| c.skipped_both)),
        ("not_measured", sum(|c| c.unmeasured.len())),
        ("missing", sum(|c| c.missing.len())),
        (
            "scenario_compared",
            sum(|c| c.scenarios.as_ref().map_or(0, |s| s.compared)),
        ),
        (
            "scenario_agree",
            sum(|c| c.scenarios.as_ref().map_or(0, |s| s.agree)),
        ),
        (
            "scenario_disagree",
            sum(|c| c.scenarios.as_ref().map_or(0, |s| s.disagree)),
        ),
        (
            "scenario_skipped",
            sum(|c| c.scenarios.as_ref().map_or(0, |s| s.skipped)),
        ),
        (
            "scenario_missing",
            sum(|c| c.scenarios.as_ref().map_or(0, |s| s.missing)),
        ),
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
