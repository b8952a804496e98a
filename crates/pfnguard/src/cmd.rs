//! `predict`, `explain`, `probe`, `exporters` and `ops`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use pfnguard_dmabuf::{by_id, predict, run_cell, Exporter, Policy, DEFAULT_PAGES};
use pfnguard_mm::{resolve_kernel, KernelConfig, ResolvedKernel};
use pfnguard_report::{ExporterId, ExporterReport, OpKey};

use crate::render::table;
use crate::Format;

/// Resolve `--kernel` (and `--config`) for the model, printing on stderr how the name was read
/// when it matters: a line stands for its newest point release, a build no name reveals is
/// taken as having every exporter.
pub fn kernel(name: &str, config: Option<&KernelConfig>) -> Result<ResolvedKernel> {
    let mut r = resolve_kernel(name).map_err(|e| anyhow!("--kernel: {e}"))?;
    if let Some(c) = config {
        r = r.with_config(c.clone());
    }
    for note in &r.notes {
        eprintln!("pfnguard: note: {note}");
    }
    Ok(r)
}

/// The kernels of a command that takes several `--kernel`s: those given, in order and each
/// once, or with none every modeled line at its newest point release (no note per line).
pub fn kernels(
    names: &[String],
    config: Option<&KernelConfig>,
) -> Result<Vec<Arc<ResolvedKernel>>> {
    let mut ks: Vec<Arc<ResolvedKernel>> = Vec::new();
    if names.is_empty() {
        for line in pfnguard_mm::LINES {
            let mut k = resolve_kernel(&line.to_string())?;
            k.notes.clear();
            if let Some(c) = config {
                k = k.with_config(c.clone());
            }
            ks.push(Arc::new(k));
        }
    } else {
        for name in names {
            let k = kernel(name, config)?;
            if !ks.iter().any(|q| q.name == k.name) {
                ks.push(Arc::new(k));
            }
        }
    }
    Ok(ks)
}

/// Kernels whose facts and build are the same run the same kernel paths: the first of each
/// such group, in order. The model is deterministic, so one run answers for all of them.
pub fn distinct_kernels(ks: &[Arc<ResolvedKernel>]) -> Vec<Arc<ResolvedKernel>> {
    let mut distinct: Vec<Arc<ResolvedKernel>> = Vec::new();
    for k in ks {
        if !distinct.iter().any(|d| same_run(d, k)) {
            distinct.push(k.clone());
        }
    }
    distinct
}

/// Whether two kernels run the same kernel paths (same facts, same build).
pub fn same_run(a: &ResolvedKernel, b: &ResolvedKernel) -> bool {
    a.facts == b.facts && a.config.bits() == b.config.bits()
}

/// Consecutive kernels with the same `sig` merged: (first, last, sig) of each run.
pub fn kernel_runs<T: PartialEq>(
    ks: &[Arc<ResolvedKernel>],
    sig: impl Fn(&ResolvedKernel) -> T,
) -> Vec<(Arc<ResolvedKernel>, Arc<ResolvedKernel>, T)> {
    let mut out: Vec<(Arc<ResolvedKernel>, Arc<ResolvedKernel>, T)> = Vec::new();
    for k in ks {
        let s = sig(k);
        match out.last_mut() {
            Some((_, last, prev)) if *prev == s => *last = k.clone(),
            _ => out.push((k.clone(), k.clone(), s)),
        }
    }
    out
}

/// `--policy` repeated: each once, in order.
pub fn distinct_policies(ps: &[Policy]) -> Vec<Policy> {
    let mut out: Vec<Policy> = Vec::new();
    for p in ps {
        if !out.contains(p) {
            out.push(*p);
        }
    }
    out
}

/// Read `--config FILE`: a kernel `.config`.
pub fn load_config(path: Option<&std::path::Path>) -> Result<Option<KernelConfig>> {
    let Some(path) = path else {
        return Ok(None);
    };
    let p = path.display().to_string();
    let meta = std::fs::metadata(path).with_context(|| format!("--config {p}: cannot read"))?;
    if !meta.is_file() || meta.len() > 16 << 20 {
        return Err(anyhow!("--config {p}: not a kernel .config file"));
    }
    let text =
        std::fs::read_to_string(path).with_context(|| format!("--config {p}: cannot read"))?;
    KernelConfig::parse(&p, &text)
        .map(Some)
        .map_err(|e| anyhow!("--config {e}"))
}

/// `--exporter ID` or `--exporter-file PATH`.
pub enum ExporterArg {
    /// A catalogue exporter.
    Id(ExporterId),
    /// A user-described exporter, with its file's buffer size.
    File(Arc<pfnguard_dmabuf::custom::CustomExporter>),
}

impl ExporterArg {
    /// From the two mutually exclusive options (clap enforces one of them).
    pub fn new(id: Option<ExporterId>, file: Option<PathBuf>) -> Result<Self> {
        match (id, file) {
            (Some(id), _) => Ok(ExporterArg::Id(id)),
            (None, Some(path)) => Ok(ExporterArg::File(Arc::new(pfnguard_dmabuf::custom::load(
                &path,
            )?))),
            (None, None) => Err(anyhow!("give --exporter ID or --exporter-file PATH")),
        }
    }

    /// The exporter model and the buffer size in pages: the file's own, or `--pages`.
    pub fn resolve(&self, pages: Option<u64>) -> (Arc<dyn Exporter>, u64) {
        match self {
            ExporterArg::Id(id) => (by_id(*id), pages.unwrap_or(DEFAULT_PAGES)),
            ExporterArg::File(f) => {
                let e: Arc<dyn Exporter> = f.clone();
                let n = e.fixed_pages().unwrap_or(DEFAULT_PAGES);
                (e, n)
            }
        }
    }
}

/// Print a value as pretty JSON.
pub fn print_json<T: serde::Serialize>(out: &mut dyn Write, v: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(v).context("encoding JSON")?;
    out.write_all(text.as_bytes())?;
    writeln!(out)?;
    Ok(())
}

/// One exporter's row as text: header, details, a table of ops, the kernel log.
pub fn report_table(r: &ExporterReport) -> String {
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
    if !r.ops.is_empty() {
        out.push('\n');
        let gup = r.gup_struct_pages.as_deref().unwrap_or_default();
        let warned = r.warned.as_deref().unwrap_or_default();
        let model = r.gup_struct_pages.is_some();
        let rows: Vec<Vec<String>> = r
            .ops
            .iter()
            .map(|(k, v)| {
                let mut row = vec![k.to_string(), v.describe()];
                if model {
                    let mut note = Vec::new();
                    if gup.contains(k) {
                        note.push("GUP got struct pages");
                    }
                    if warned.contains(k) {
                        note.push("WARN");
                    }
                    row.push(note.join(", "));
                }
                row
            })
            .collect();
        let mut headers = vec!["op".to_owned(), "value".to_owned()];
        if model {
            headers.push("note".to_owned());
        }
        out.push_str(&table(&headers, &rows));
    }
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
    out: &mut dyn Write,
    k: &ResolvedKernel,
    exp: ExporterArg,
    policy: Policy,
    pages: Option<u64>,
    format: Format,
) -> Result<ExitCode> {
    let (e, pages) = exp.resolve(pages);
    let r = predict(k, e.as_ref(), policy, pages);
    match format {
        Format::Json => print_json(out, &r)?,
        Format::Table => write!(out, "{}", report_table(&r))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `pfnguard explain`.
pub fn explain(
    out: &mut dyn Write,
    k: &ResolvedKernel,
    exp: ExporterArg,
    op: OpKey,
    policy: Policy,
    pages: Option<u64>,
    format: Format,
) -> Result<ExitCode> {
    let (e, pages) = exp.resolve(pages);
    let c = run_cell(k, e.as_ref(), policy, op, pages, true);
    let steps = c.trace.as_ref().map(|t| t.steps()).unwrap_or_default();
    match format {
        Format::Json => print_json(
            out,
            &serde_json::json!({
                "kernel": k.name, "kernel_version": k.version.to_string(), "config": k.config.source.to_string(), "exporter": e.id(), "policy": policy.name(), "op": op.as_str(),
                "pages": pages, "value": c.value, "gup_struct_pages": c.gup_struct_pages,
                "warnings": c.events, "steps": steps,
            }),
        )?,
        Format::Table => {
            writeln!(
                out,
                "{} ({} page(s)) on Linux {}, {}, policy {}: {} = {}\n",
                e.id(),
                pages,
                k.label(),
                k.config.source,
                policy.name(),
                op,
                c.value.describe()
            )?;
            if let Some(t) = &c.trace {
                write!(out, "{t}")?;
            }
            if c.gup_struct_pages > 0 {
                writeln!(
                    out,
                    "\nGUP handed {} struct page(s) of the buffer to this path.",
                    c.gup_struct_pages
                )?;
            }
            if !c.events.is_empty() {
                writeln!(out, "\nkernel log:")?;
                for w in &c.events {
                    writeln!(out, "  {w}")?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What `pfnguard probe` was asked for.
pub struct ProbeArgs {
    /// `--exporter`.
    pub exporters: Vec<ExporterId>,
    /// `--odirect`.
    pub odirect: Option<PathBuf>,
    /// `--timeout`, seconds.
    pub timeout: u64,
    /// `--create-soft-roce[=IFACE]` (empty: the first interface that is up).
    pub create_soft_roce: Option<String>,
    /// `--kmsg`.
    pub kmsg: bool,
    /// `--scenarios DIR`.
    pub scenarios: Option<PathBuf>,
}

/// `pfnguard probe`.
pub fn probe(out: &mut dyn Write, args: ProbeArgs, format: Format) -> Result<ExitCode> {
    let scenarios = args.scenarios.as_deref().map(scenario_inputs).transpose()?;
    let opts = pfnguard_probe::ProbeOptions {
        exporters: args.exporters,
        op_timeout: Duration::from_secs(args.timeout),
        odirect_path: args.odirect,
        create_soft_roce: args.create_soft_roce.map(|iface| {
            if iface.is_empty() {
                pfnguard_probe::SoftRoce::FirstUp
            } else {
                pfnguard_probe::SoftRoce::Netdev(iface)
            }
        }),
        kmsg: args.kmsg,
        scenarios,
    };
    let r = pfnguard_probe::run(&opts);
    match format {
        Format::Json => print_json(out, &r)?,
        Format::Table => {
            writeln!(
                out,
                "kernel {}{}\n",
                r.kernel_release,
                r.kernel_version
                    .as_deref()
                    .map(|v| format!(" (Linux {v})"))
                    .unwrap_or_default()
            )?;
            if let Some(level) = &r.mmap_check {
                writeln!(out, "dma-buf mmap_check: {level}\n")?;
            }
            for e in &r.exporters {
                writeln!(out, "{}", report_table(e))?;
                if let Some(w) = e.warned_at.as_ref().filter(|w| !w.is_empty()) {
                    writeln!(out, "kernel WARNs (--kmsg):")?;
                    for (op, sites) in w {
                        writeln!(out, "  {op}: {}", sites.join(", "))?;
                    }
                    writeln!(out)?;
                }
            }
            for u in &r.unmodeled {
                writeln!(out, "not probed: {} at {} (no model)", u.name, u.node)?;
            }
            if let Some(sec) = &r.scenarios {
                writeln!(out)?;
                for run in &sec.runs {
                    if let Some(s) = &run.status {
                        writeln!(out, "scenario {} ({}): {s}", run.scenario, run.exporter)?;
                        continue;
                    }
                    writeln!(
                        out,
                        "scenario {} ({}): {} of {} interleavings",
                        run.scenario,
                        run.exporter,
                        run.interleavings.len(),
                        run.total.as_deref().unwrap_or("?")
                    )?;
                    for il in &run.interleavings {
                        let steps: Vec<String> = il
                            .steps
                            .iter()
                            .map(|c| format!("{}:{}={}", c.actor, c.text, c.value))
                            .collect();
                        writeln!(out, "  {}", steps.join(" "))?;
                        if let Some(c) = &il.cut {
                            writeln!(out, "  cut short: {c}")?;
                        }
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The scenario files under `dir` as the probe runs them: each observable one planned by the
/// model (its interleavings chosen), the others with the reason. A file that does not parse is
/// an input error naming its file, line and key.
fn scenario_inputs(dir: &std::path::Path) -> Result<Vec<pfnguard_probe::ScenarioInput>> {
    use pfnguard_probe::ScenarioInput;
    let files = pfnguard_scenario::scenario::scenario_files(dir)
        .map_err(|e| anyhow!("--scenarios: {e}"))?;
    if files.is_empty() {
        return Err(anyhow!(
            "--scenarios {}: no scenario files (*.toml)",
            dir.display()
        ));
    }
    let mut out = Vec::new();
    for f in files {
        let text = pfnguard_dmabuf::text_file::read_bounded(&f, 1 << 20, "a scenario file")
            .map_err(|e| anyhow!("--scenarios: {}: {e}", f.display()))?;
        let sc = pfnguard_scenario::parse_scenario(&f, &text)
            .map_err(|e| anyhow!("--scenarios: {e}"))?;
        out.push(match pfnguard_scenario::observe::plan(&sc) {
            Ok(plan) => ScenarioInput::Plan(plan, text),
            Err(reason) => ScenarioInput::Skip {
                name: sc.name.clone(),
                exporter: sc.exporter.id().to_owned(),
                reason,
            },
        });
    }
    Ok(out)
}

// The probe records the model's cap in its report.
const _: () = assert!(pfnguard_probe::SCENARIO_CAP == pfnguard_scenario::observe::INTERLEAVING_CAP);

/// `pfnguard exporters`.
pub fn list_exporters(out: &mut dyn Write, format: Format) -> Result<ExitCode> {
    let all = pfnguard_dmabuf::catalogue();
    match format {
        Format::Json => print_json(
            out,
            &all.iter()
                .map(|e| serde_json::json!({"exporter": e.id(), "mmap_path": e.summary()}))
                .collect::<Vec<_>>(),
        )?,
        Format::Table => {
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|e| vec![e.id().to_owned(), e.summary().to_owned()])
                .collect();
            write!(
                out,
                "{}",
                table(&["exporter".into(), "mmap path".into()], &rows)
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `pfnguard ops`.
pub fn list_ops(out: &mut dyn Write, format: Format) -> Result<ExitCode> {
    match format {
        Format::Json => print_json(
            out,
            &OpKey::ALL
                .iter()
                .map(|o| {
                    serde_json::json!({
                        "op": o.as_str(),
                        "what": o.describe(),
                        "needs": o.prerequisite().map(OpKey::as_str),
                    })
                })
                .collect::<Vec<_>>(),
        )?,
        Format::Table => {
            let rows: Vec<Vec<String>> = OpKey::ALL
                .iter()
                .map(|o| {
                    vec![
                        o.to_string(),
                        o.prerequisite().map_or("-".into(), |p| p.to_string()),
                        o.describe().to_owned(),
                    ]
                })
                .collect();
            write!(
                out,
                "{}",
                table(&["op".into(), "needs".into(), "what it does".into()], &rows)
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `pfnguard facts`: every kernel fact the model knows, or those in force at one kernel.
pub fn list_facts(
    out: &mut dyn Write,
    kernel: Option<&ResolvedKernel>,
    format: Format,
) -> Result<ExitCode> {
    let facts: Vec<&pfnguard_mm::facts::FactInfo> = pfnguard_mm::Fact::ALL
        .iter()
        .filter(|f| kernel.is_none_or(|k| k.facts.has(**f)))
        .map(|f| f.info())
        .collect();
    match format {
        Format::Json => print_json(out, &facts)?,
        Format::Table => {
            if let Some(k) = kernel {
                writeln!(
                    out,
                    "Linux {}: {} of {} facts in force ({})\n",
                    k.label(),
                    facts.len(),
                    pfnguard_mm::Fact::ALL.len(),
                    k.config.source
                )?;
            }
            let rows: Vec<Vec<String>> = facts
                .iter()
                .map(|i| {
                    let mut since = i.since.line().to_string();
                    if !i.backports.is_empty() {
                        let b: Vec<String> = i.backports.iter().map(|b| b.to_string()).collect();
                        since.push_str(&format!(" ({})", b.join(", ")));
                    }
                    vec![i.fact.id().to_owned(), since, i.summary.to_owned()]
                })
                .collect();
            write!(
                out,
                "{}",
                table(
                    &[
                        "fact".into(),
                        "since (backports)".into(),
                        "what changed".into()
                    ],
                    &rows
                )
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
