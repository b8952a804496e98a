//! `pfnguard history`: one exporter's ops on every line from 5.10 to 7.3, where each value
//! changed and the kernel fact that changed it.
//!
//! Each line runs at its newest point release. Where a value changes between two lines, every
//! fact that differs between them is tried alone on the older line's facts: the facts whose flip
//! alone gives the newer value are named as the change; when no single fact does, the facts
//! the newer line cannot do without (each reverted alone loses the new value) are named
//! together, or every differing fact when none is.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use pfnguard_dmabuf::{run_cell, Policy};
use pfnguard_mm::{Fact, KernelConfig, KernelFacts, ResolvedKernel, LINES};
use pfnguard_report::{OpKey, Outcome};
use serde::Serialize;

use crate::cmd::{print_json, ExporterArg};
use crate::Format;

/// Lines `from` to `to` (inclusive) gave `value`.
#[derive(Debug, Serialize)]
pub(crate) struct Segment {
    /// The first line.
    pub(crate) from: String,
    /// The last line.
    pub(crate) to: String,
    /// What they gave.
    pub(crate) value: Outcome,
}

/// A fact, as history names it.
#[derive(Debug, Serialize)]
pub(crate) struct FactRef {
    /// `pfnguard facts` id.
    pub(crate) id: &'static str,
    /// The release that made it.
    pub(crate) since: String,
    /// Its commit, where known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) commit: Option<&'static str>,
    /// Stable backports.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) backports: Vec<String>,
    /// What changed.
    pub(crate) summary: &'static str,
    /// `file:function` before.
    pub(crate) before: &'static str,
    /// `file:function` after.
    pub(crate) after: &'static str,
}

impl FactRef {
    fn of(f: Fact) -> FactRef {
        let i = f.info();
        FactRef {
            id: f.id(),
            since: i.since.line().to_string(),
            commit: i.commit,
            backports: i.backports.iter().map(|b| b.to_string()).collect(),
            summary: i.summary,
            before: i.before,
            after: i.after,
        }
    }
}

/// A value change between two consecutive lines.
#[derive(Debug, Serialize)]
pub(crate) struct Change {
    /// The first line with the new value.
    pub(crate) line: String,
    /// The value before.
    pub(crate) from: Outcome,
    /// The value from `line` on.
    pub(crate) to: Outcome,
    /// The facts that make the change (each alone), or all differing facts when none does alone.
    pub(crate) facts: Vec<FactRef>,
    /// Whether `facts` are only jointly responsible.
    pub(crate) jointly: bool,
}

/// One op's values over the lines.
#[derive(Debug, Serialize)]
pub(crate) struct OpHistory {
    /// The op.
    pub(crate) op: OpKey,
    /// Runs of lines with one value.
    pub(crate) segments: Vec<Segment>,
    /// Where the value changed, and why.
    pub(crate) changes: Vec<Change>,
}

/// One exporter's history.
#[derive(Debug, Serialize)]
pub(crate) struct History {
    /// The exporter.
    pub(crate) exporter: String,
    /// The policy.
    pub(crate) policy: &'static str,
    /// Buffer size.
    pub(crate) pages: u64,
    /// Where the build configuration came from.
    pub(crate) config: String,
    /// `5.10 to 7.3`.
    pub(crate) lines: String,
    /// Per op.
    pub(crate) ops: Vec<OpHistory>,
}

fn with_facts(base: &ResolvedKernel, facts: KernelFacts) -> ResolvedKernel {
    let mut k = base.clone();
    k.facts = facts;
    k
}

/// `pfnguard history`.
#[allow(clippy::too_many_arguments)]
pub fn history(
    out: &mut dyn Write,
    exp: ExporterArg,
    ops: &[OpKey],
    policy: Policy,
    pages: Option<u64>,
    config: Option<&KernelConfig>,
    format: Format,
) -> Result<ExitCode> {
    let (e, pages) = exp.resolve(pages);
    let h = compute(e.as_ref(), ops, policy, pages, config)?;
    match format {
        Format::Json => print_json(out, &h)?,
        Format::Table => write!(out, "{}", render(&h))?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The history of `e`'s `ops` (every op when empty) under `policy` on every line.
pub(crate) fn compute(
    e: &dyn pfnguard_dmabuf::Exporter,
    ops: &[OpKey],
    policy: Policy,
    pages: u64,
    config: Option<&KernelConfig>,
) -> Result<History> {
    let kernels: Vec<ResolvedKernel> = LINES
        .iter()
        .map(|l| {
            let mut k = pfnguard_mm::resolve_kernel(&l.to_string())?;
            if let Some(c) = config {
                k = k.with_config(c.clone());
            }
            Ok(k)
        })
        .collect::<Result<_, pfnguard_mm::version::KernelNameError>>()?;
    let ops: Vec<OpKey> = if ops.is_empty() {
        OpKey::ALL.to_vec()
    } else {
        let mut v = Vec::new();
        for op in ops {
            if !v.contains(op) {
                v.push(*op);
            }
        }
        v
    };
    let cell = |k: &ResolvedKernel, op: OpKey| run_cell(k, e, policy, op, pages, false).value;
    let mut hist = Vec::new();
    for &op in &ops {
        let values: Vec<Outcome> = kernels.iter().map(|k| cell(k, op)).collect();
        let mut segments: Vec<Segment> = Vec::new();
        let mut changes = Vec::new();
        for (i, v) in values.iter().enumerate() {
            match segments.last_mut() {
                Some(s) if s.value == *v => s.to = LINES[i].to_string(),
                _ => {
                    if i > 0 {
                        changes.push(attribute(
                            &kernels[i - 1],
                            &kernels[i],
                            &values[i - 1],
                            v,
                            &cell,
                            op,
                        ));
                    }
                    segments.push(Segment {
                        from: LINES[i].to_string(),
                        to: LINES[i].to_string(),
                        value: v.clone(),
                    });
                }
            }
        }
        hist.push(OpHistory {
            op,
            segments,
            changes,
        });
    }
    let h = History {
        exporter: e.id().to_owned(),
        policy: policy.name(),
        pages,
        config: kernels
            .first()
            .map(|k| k.config.source.to_string())
            .unwrap_or_default(),
        lines: format!("{} to {}", LINES[0], LINES[LINES.len() - 1]),
        ops: hist,
    };
    Ok(h)
}

/// Which facts turn `from` (on `older`) into `to` (on `newer`).
fn attribute(
    older: &ResolvedKernel,
    newer: &ResolvedKernel,
    from: &Outcome,
    to: &Outcome,
    cell: &dyn Fn(&ResolvedKernel, OpKey) -> Outcome,
    op: OpKey,
) -> Change {
    let differing = older.facts.differences(&newer.facts);
    let alone: Vec<Fact> = differing
        .iter()
        .copied()
        .filter(|f| {
            let k = with_facts(older, older.facts.with(*f, newer.facts.has(*f)));
            cell(&k, op) == *to
        })
        .collect();
    // No single fact makes the change: name those the newer line cannot do without (each one
    // reverted alone loses the new value), or every differing fact when none is.
    let needed: Vec<Fact> = differing
        .iter()
        .copied()
        .filter(|f| {
            let k = with_facts(newer, newer.facts.with(*f, older.facts.has(*f)));
            cell(&k, op) != *to
        })
        .collect();
    let jointly = alone.is_empty();
    let facts = match (alone.is_empty(), needed.is_empty()) {
        (false, _) => alone,
        (true, false) => needed,
        (true, true) => differing,
    };
    Change {
        line: newer.version.line().to_string(),
        from: from.clone(),
        to: to.clone(),
        facts: facts.into_iter().map(FactRef::of).collect(),
        jointly,
    }
}

fn render(h: &History) -> String {
    let mut s = format!(
        "{} under policy {}, {} page(s), Linux {} (each line at its newest point release; {})\n",
        h.exporter, h.policy, h.pages, h.lines, h.config
    );
    for o in &h.ops {
        s.push_str(&format!("\n{}\n", o.op));
        for seg in &o.segments {
            let range = if seg.from == seg.to {
                seg.from.clone()
            } else {
                format!("{} – {}", seg.from, seg.to)
            };
            s.push_str(&format!("  {range:<13} {}\n", seg.value));
        }
        for c in &o.changes {
            let how = if c.jointly { " (together)" } else { "" };
            s.push_str(&format!(
                "  changed in {}: {} -> {}{how}\n",
                c.line, c.from, c.to
            ));
            for f in &c.facts {
                let commit = f.commit.map(|c| format!(", {c}")).unwrap_or_default();
                s.push_str(&format!(
                    "    {} (since {}{commit}): {}\n",
                    f.id, f.since, f.summary
                ));
                s.push_str(&format!("      {} -> {}\n", f.before, f.after));
                if !f.backports.is_empty() {
                    s.push_str(&format!(
                        "      also in stable {} (backport)\n",
                        f.backports.join(", ")
                    ));
                }
            }
        }
        if o.changes.is_empty() {
            s.push_str("  unchanged on every line\n");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn udmabuf_closes_its_hole_by_the_fact_that_converted_it() {
        let mut out = Vec::new();
        let exp = ExporterArg::Id("udmabuf-shmem".parse().expect("id"));
        history(
            &mut out,
            exp,
            &[OpKey::OdirectRead],
            Policy::Off,
            None,
            None,
            Format::Json,
        )
        .expect("history");
        let v: serde_json::Value = serde_json::from_slice(&out).expect("json");
        let op = &v["ops"][0];
        assert_eq!(op["segments"][0]["from"], "5.10");
        assert_eq!(op["segments"][0]["value"], "ok");
        let last = op["segments"]
            .as_array()
            .and_then(|a| a.last())
            .expect("segments");
        assert_eq!(last["to"], "7.3");
        assert_eq!(last["value"], "EFAULT");
        let change = op["changes"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["to"] == "EFAULT"))
            .expect("a change to EFAULT");
        assert_eq!(change["facts"][0]["id"], Fact::UdmabufPfnmap.id());
        assert_eq!(
            change["line"],
            Fact::UdmabufPfnmap.info().since.line().to_string()
        );
    }
}
