//! `pfnguard matrix`: the verdict per kernel and exporter, then every exporter x every op.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Result;
use pfnguard_dmabuf::{predict, Exporter, Policy, DEFAULT_PAGES};
use pfnguard_mm::{KernelConfig, ResolvedKernel};
use pfnguard_report::{ExporterReport, Observation, OpKey, Outcome, Refault};

use crate::cmd::{
    distinct_kernels, distinct_policies, kernel_runs, kernels as kernels_of, print_json, same_run,
};
use crate::evidence;
use crate::render::{markdown, table, wrap_columns, wrap_words};
use crate::MatrixFormat;

/// The width the text output keeps to.
const WIDTH: usize = 120;

/// One predicted row and what the real kernels said of its cells.
pub(crate) struct Row {
    /// The kernel.
    pub(crate) kernel: Arc<ResolvedKernel>,
    /// The policy.
    pub(crate) policy: Policy,
    /// The `predict` document.
    pub(crate) report: ExporterReport,
    /// Ops a real kernel measured with the same outcome, and which kernels.
    pub(crate) confirmed: BTreeMap<OpKey, Vec<String>>,
}

impl Row {
    /// The ops through which GUP handed struct pages of the buffer to a kernel path.
    pub(crate) fn leaks(&self) -> &[OpKey] {
        self.report.gup_struct_pages.as_deref().unwrap_or_default()
    }
    /// Whether the modeled kernel logged a warning during `op`.
    pub(crate) fn warned(&self, op: OpKey) -> bool {
        self.report
            .warned
            .as_deref()
            .is_some_and(|w| w.contains(&op))
    }
}

/// Every row of `ks` x `ps` x `exps`, in that order, each distinct kernel run once.
pub(crate) fn run(
    ks: &[Arc<ResolvedKernel>],
    ps: &[Policy],
    exps: &[Arc<dyn Exporter>],
    pages: u64,
) -> Vec<Row> {
    // Each distinct kernel is run once, on two threads (the model is deterministic, so the
    // split changes nothing).
    let distinct = distinct_kernels(ks);
    let jobs: Vec<(usize, Policy, usize)> = (0..distinct.len())
        .flat_map(|d| {
            ps.iter()
                .flat_map(move |&p| (0..exps.len()).map(move |e| (d, p, e)))
        })
        .collect();
    let predict_job = |&(d, p, e): &(usize, Policy, usize)| {
        let x = &exps[e];
        predict(
            &distinct[d],
            x.as_ref(),
            p,
            x.fixed_pages().unwrap_or(pages),
        )
    };
    let half = jobs.len().div_ceil(2);
    let (a, b) = jobs.split_at(half);
    let reports: Vec<ExporterReport> = std::thread::scope(|s| {
        let other = s.spawn(|| b.iter().map(predict_job).collect::<Vec<_>>());
        let mut mine: Vec<ExporterReport> = a.iter().map(predict_job).collect();
        // A panic in the model is a bug: surface it rather than lose the rows.
        match other.join() {
            Ok(rest) => mine.extend(rest),
            Err(p) => std::panic::resume_unwind(p),
        }
        mine
    });
    let probed = evidence::probed();
    let mut rows = Vec::new();
    for k in ks {
        let d = distinct
            .iter()
            .position(|d| same_run(d, k))
            .unwrap_or_default();
        let cells = evidence::cells(&probed, k);
        for &p in ps {
            for (e, _) in exps.iter().enumerate() {
                let i = jobs
                    .iter()
                    .position(|j| *j == (d, p, e))
                    .unwrap_or_default();
                let mut report = reports[i].clone();
                report.kernel = Some(k.name.clone());
                let mut confirmed = BTreeMap::new();
                if p == Policy::Off {
                    for (op, v) in &report.ops {
                        let Some(seen) = cells.get(&(report.exporter.clone(), *op)) else {
                            continue;
                        };
                        let agreeing: Vec<String> = seen
                            .iter()
                            .filter(|s| s.outcome == *v)
                            .map(|s| s.release.clone())
                            .collect();
                        if !agreeing.is_empty() && agreeing.len() == seen.len() {
                            confirmed.insert(*op, agreeing);
                        }
                    }
                }
                rows.push(Row {
                    kernel: k.clone(),
                    policy: p,
                    report,
                    confirmed,
                });
            }
        }
    }
    rows
}

/// `pfnguard matrix`.
pub fn matrix(
    out: &mut dyn Write,
    kernels: &[String],
    config: Option<&KernelConfig>,
    policies: &[Policy],
    files: &[PathBuf],
    pages: Option<u64>,
    format: MatrixFormat,
) -> Result<ExitCode> {
    let ks = kernels_of(kernels, config)?;
    let (ps, tables): (Vec<Policy>, Vec<Policy>) = if policies.is_empty() {
        (Policy::ALL.to_vec(), vec![Policy::Off])
    } else {
        let ps = distinct_policies(policies);
        (ps.clone(), ps)
    };
    let exps = exporters(files)?;
    let rows = run(&ks, &ps, &exps, pages.unwrap_or(DEFAULT_PAGES));
    match format {
        MatrixFormat::Json => json(out, &rows)?,
        MatrixFormat::Table | MatrixFormat::Markdown => {
            let md = format == MatrixFormat::Markdown;
            let groups = group(&ks, &rows);
            for (k, label) in &groups {
                verdict(out, &rows, (k, label), &ps, md)?;
            }
            for (k, label) in &groups {
                for p in &tables {
                    grid(out, &rows, (k, label), *p, ps[0], md)?;
                }
            }
            legend(out, md, ps[0])?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The catalogue exporters, then those of `files` (`--exporter-file`); two of one name are an
/// error naming the file.
pub(crate) fn exporters(files: &[PathBuf]) -> Result<Vec<Arc<dyn Exporter>>> {
    let mut exps = pfnguard_dmabuf::catalogue();
    for f in files {
        let e = pfnguard_dmabuf::custom::load(f)?;
        if exps.iter().any(|x| x.id() == e.id()) {
            anyhow::bail!(
                "--exporter-file {}: an exporter named `{}` is already in the matrix",
                f.display(),
                e.id()
            );
        }
        exps.push(Arc::new(e));
    }
    Ok(exps)
}

/// Consecutive kernels whose rows are all the same (values, warnings, confirmations) shown once,
/// titled by the range (`5.14 – 6.4`): the first kernel of each run and its title.
fn group(ks: &[Arc<ResolvedKernel>], rows: &[Row]) -> Vec<(Arc<ResolvedKernel>, String)> {
    let sig = |k: &ResolvedKernel| -> Vec<String> {
        rows.iter()
            .filter(|r| r.kernel.name == k.name)
            .map(|r| {
                let mut v = serde_json::to_value(&r.report).unwrap_or_default();
                if let Some(o) = v.as_object_mut() {
                    o.remove("kernel");
                    if let Some(d) = o.get_mut("detail").and_then(|d| d.as_object_mut()) {
                        d.remove("kernel_version");
                    }
                }
                format!(
                    "{}{v}{:?}",
                    r.policy,
                    r.confirmed.keys().collect::<Vec<_>>()
                )
            })
            .collect()
    };
    kernel_runs(ks, sig)
        .into_iter()
        .map(|(first, last, _)| {
            let label = if first.name == last.name {
                first.label()
            } else {
                format!("{} – {}", first.name, last.name)
            };
            (first, label)
        })
        .collect()
}

fn json(out: &mut dyn Write, rows: &[Row]) -> Result<()> {
    let mut docs = Vec::new();
    for r in rows {
        let mut v = serde_json::to_value(&r.report)?;
        if let Some(o) = v.as_object_mut() {
            o.insert("confirmed".into(), serde_json::to_value(&r.confirmed)?);
        }
        docs.push(v);
    }
    print_json(out, &docs)
}

fn ops_list(ops: &[OpKey]) -> String {
    ops.iter()
        .map(|o| o.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What `p`'s row changes against the baseline row of the same exporter.
pub(crate) fn policy_effect(base: &Row, r: &Row) -> String {
    let mut parts = Vec::new();
    let (was, now) = (base.leaks(), r.leaks());
    if !now.is_empty() {
        let same = if was == now { " (unchanged)" } else { "" };
        parts.push(format!("still via {} op(s){same}", now.len()));
    } else if !was.is_empty() {
        parts.push("closes it".to_owned());
    }
    let broken: Vec<String> = OpKey::ALL
        .iter()
        .filter(|op| !was.contains(op))
        .filter_map(|op| {
            let (b, v) = (base.report.ops.get(op)?, r.report.ops.get(op)?);
            (b.is_success() && !v.is_success() && !matches!(v, Outcome::Skipped(_)))
                .then(|| format!("{op} ({v})"))
        })
        .collect();
    if !broken.is_empty() {
        parts.push(format!("breaks {}", broken.join(", ")));
    }
    if r.report.warned.as_ref().is_some_and(|w| !w.is_empty()) {
        parts.push("WARNs".to_owned());
    }
    if parts.is_empty() {
        parts.push("no change".to_owned());
    }
    format!("{}: {}", r.policy.name(), parts.join(", "))
}

fn verdict(
    out: &mut dyn Write,
    rows: &[Row],
    (k, label): (&ResolvedKernel, &str),
    ps: &[Policy],
    md: bool,
) -> Result<()> {
    let base = ps[0];
    let title = format!(
        "Linux {}: which exporters hand struct pages to get_user_pages (policy {base})",
        label
    );
    if md {
        writeln!(out, "### {title}\n")?;
    } else {
        writeln!(out, "{title}\n")?;
    }
    let mine: Vec<&Row> = rows.iter().filter(|r| r.kernel.name == k.name).collect();
    for b in mine.iter().filter(|r| r.policy == base) {
        let id = &b.report.exporter;
        let leaks = b.leaks();
        let mut line = if leaks.is_empty() {
            "no struct pages reach GUP".to_owned()
        } else {
            format!("STRUCT PAGES to GUP via {}", ops_list(leaks))
        };
        if id == "memfd" {
            line.push_str(" (the control: normal memory, not a dma-buf)");
        }
        for p in &ps[1..] {
            if let Some(r) = mine
                .iter()
                .find(|r| r.policy == *p && r.report.exporter == *id)
            {
                line.push_str("; ");
                line.push_str(&policy_effect(b, r));
            }
        }
        if md {
            writeln!(out, "- **{id}**: {line}")?;
        } else {
            write!(out, "{}", wrap_words(&format!("{id:<17}"), &line, WIDTH))?;
        }
    }
    writeln!(out)?;
    Ok(())
}

/// The text of a cell in a table: the value, shortened where the legend says so, with its
/// marks.
pub(crate) fn cell_text(r: &Row, base: Option<&Row>, op: OpKey, md: bool) -> String {
    let Some(v) = r.report.ops.get(&op) else {
        return String::new();
    };
    let mut s = if md { v.to_string() } else { short(v) };
    if base.is_some_and(|b| b.report.ops.get(&op) != Some(v)) {
        s = format!("*{s}");
    }
    if r.leaks().contains(&op) {
        s.push('^');
    }
    if r.warned(op) {
        s.push('!');
    }
    if r.confirmed.contains_key(&op) {
        s.push('+');
    }
    s
}

/// Values shortened for the text table (the legend lists them).
pub(crate) fn short(v: &Outcome) -> String {
    match v {
        Outcome::Observed(Observation::VmFlags(f)) => {
            let special: Vec<&str> = f
                .iter()
                .map(String::as_str)
                .filter(|m| matches!(*m, "pf" | "io" | "mm"))
                .collect();
            if special.is_empty() {
                "-".to_owned()
            } else {
                special.join(",")
            }
        }
        Outcome::Effect(pfnguard_report::Effect::Refault(r)) => match r {
            Refault::Ok => "rf:ok".to_owned(),
            Refault::Signal(s) => format!("rf:{}", s.as_str()),
            Refault::Timeout => "rf:timeout".to_owned(),
            Refault::Bug => "rf:BUG".to_owned(),
        },
        Outcome::Skipped(_) => "skip".to_owned(),
        Outcome::Unavailable(_) => "n/a".to_owned(),
        other => other.to_string(),
    }
}

fn grid(
    out: &mut dyn Write,
    rows: &[Row],
    (k, label): (&ResolvedKernel, &str),
    p: Policy,
    base: Policy,
    md: bool,
) -> Result<()> {
    let mine: Vec<&Row> = rows
        .iter()
        .filter(|r| r.kernel.name == k.name && r.policy == p)
        .collect();
    let mut headers = vec!["exporter".to_owned()];
    headers.extend(OpKey::ALL.iter().map(|o| o.to_string()));
    let cells: Vec<Vec<String>> = mine
        .iter()
        .map(|r| {
            let b = (p != base)
                .then(|| {
                    rows.iter().find(|b| {
                        b.kernel.name == k.name
                            && b.policy == base
                            && b.report.exporter == r.report.exporter
                    })
                })
                .flatten();
            let mut row = vec![r.report.exporter.clone()];
            row.extend(OpKey::ALL.iter().map(|op| cell_text(r, b, *op, md)));
            row
        })
        .collect();
    let changed = if p == base {
        String::new()
    } else {
        format!(", cells changed from {base} marked *")
    };
    let title = format!("Linux {label}, policy {p}{changed}");
    if md {
        writeln!(out, "### {title}\n\n{}", markdown(&headers, &cells))?;
    } else {
        writeln!(out, "{title}\n")?;
        write!(out, "{}", wrap_columns(&headers, &cells, WIDTH, table))?;
    }
    Ok(())
}

/// The marks a cell's text carries, each with its meaning: `^`, `!`, `+`, `*`.
pub(crate) fn marks(base: Policy) -> [String; 4] {
    [
        "^ GUP handed struct pages of the buffer to this op's kernel path".to_owned(),
        "! the modeled kernel logged a warning during this op (a WARN, a bad page map, a livelock)".to_owned(),
        "+ a real kernel of this line gave the same value (reports/); cells without + are the model's alone".to_owned(),
        format!("* the value differs from policy {base}"),
    ]
}

/// How [`short`] shortens values.
pub(crate) const SHORTENED: [&str; 2] = [
    "vmflags shows only pf (VM_PFNMAP), io (VM_IO) and mm (VM_MIXEDMAP), - for none",
    "rf:X is ok:refault-X (madv_dontneed, then page 0 read again); skip: a step the op needs failed; n/a: not measurable",
];

fn legend(out: &mut dyn Write, md: bool, base: Policy) -> Result<()> {
    let lines = marks(base);
    let text = [
        SHORTENED[0],
        SHORTENED[1],
        "full values, warnings and the kernels that confirmed each cell: --format json",
    ];
    if md {
        writeln!(out, "Legend:\n")?;
        for l in &lines {
            writeln!(out, "- `{}` {}", &l[..1], &l[2..])?;
        }
        writeln!(out, "- values in full; details with `--format json`")?;
    } else {
        writeln!(out, "Legend:")?;
        for l in lines.iter().map(String::as_str).chain(text) {
            write!(out, "{}", wrap_words("  ", l, WIDTH))?;
        }
    }
    Ok(())
}
