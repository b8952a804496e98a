//! `pfnguard explore --all`: every exporter x kernel line x policy explored, and what is
//! reachable in each, with the lines where that changes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Result};
use pfnguard_dmabuf::{Exporter, Policy};
use pfnguard_mm::{KernelConfig, ResolvedKernel};
use pfnguard_report::ExporterId;
use pfnguard_scenario::property::Property;
use pfnguard_scenario::{explore_alphabet_with, Alphabet, ExploreReport, Limits};

use crate::cmd::{distinct_kernels, distinct_policies, kernel_runs, kernels, print_json, same_run};
use crate::render::{markdown, table};
use crate::MatrixFormat;

/// What `--all` explores: each list empty means "all".
pub struct Cases<'a> {
    /// `--kernel` (default: every modeled line at its newest point release).
    pub kernels: &'a [String],
    /// `--config`.
    pub config: Option<&'a KernelConfig>,
    /// `--exporter` (default: the whole catalogue, unless only files are given).
    pub exporters: &'a [ExporterId],
    /// `--exporter-file`.
    pub exporter_files: &'a [PathBuf],
    /// `--policy` (default: all four).
    pub policies: &'a [Policy],
    /// `--pages` for catalogue exporters (default 1).
    pub pages: Option<u64>,
}

/// One exploration's answer.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case", tag = "status")]
enum Cell {
    /// Explored.
    Explored {
        /// Distinct states visited.
        states: usize,
        /// Whether `--max-states` stopped the search first.
        complete: bool,
        /// The reachable properties, with the length of the shortest run to each.
        reachable: Vec<Reached>,
    },
    /// The kernel's build lacks the exporter, or the model cannot export from it.
    Unavailable {
        /// Why.
        reason: String,
    },
}

/// A reachable property.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
struct Reached {
    property: &'static str,
    /// The steps of its shortest witness.
    steps: usize,
}

impl Cell {
    fn from_report(r: &ExploreReport) -> Cell {
        Cell::Explored {
            states: r.states,
            complete: r.complete,
            reachable: r
                .properties
                .iter()
                .filter(|p| p.reachable)
                .map(|p| Reached {
                    property: p.property.name(),
                    steps: p.witness.as_ref().map_or(0, |w| w.steps.len()),
                })
                .collect(),
        }
    }

    /// What the tables show: the reachable properties (short names), or `n/a`. Two kernels
    /// with the same text share a range.
    fn text(&self, short: bool) -> String {
        match self {
            Cell::Unavailable { .. } => "n/a".to_owned(),
            Cell::Explored {
                complete,
                reachable,
                ..
            } => {
                let mut s: Vec<&str> = reachable
                    .iter()
                    .map(|r| {
                        if short {
                            Property::ALL
                                .iter()
                                .find(|p| p.name() == r.property)
                                .map_or(r.property, |p| short_name(*p))
                        } else {
                            r.property
                        }
                    })
                    .collect();
                if s.is_empty() {
                    s.push("-");
                }
                let mut t = s.join(" ");
                if !complete {
                    t.push_str(" (incomplete)");
                }
                t
            }
        }
    }
}

/// The short names of the Markdown table.
fn short_name(p: Property) -> &'static str {
    match p {
        Property::GupStructPage => "gup",
        Property::UseAfterFree => "uaf",
        Property::StaleMapping => "stale",
        Property::Bug => "bug",
        Property::Warn => "warn",
        Property::BadPageMap => "bad_map",
        Property::Leak => "leak",
    }
}

/// One row of the JSON output: one exporter on one kernel under one policy.
#[derive(serde::Serialize)]
struct JsonRow<'a> {
    exporter: &'a str,
    kernel: &'a str,
    version: String,
    #[serde(serialize_with = "policy_name")]
    policy: Policy,
    #[serde(flatten)]
    cell: &'a Cell,
}

fn policy_name<S: serde::Serializer>(p: &Policy, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string())
}

#[derive(serde::Serialize)]
struct JsonDoc<'a> {
    depth: usize,
    fork: bool,
    second_page: bool,
    importer: bool,
    rows: Vec<JsonRow<'a>>,
}

/// `pfnguard explore --all`.
#[allow(clippy::too_many_arguments)]
pub fn explore_all(
    out: &mut dyn Write,
    cases: &Cases<'_>,
    depth: usize,
    alphabet: Alphabet,
    max_states: usize,
    threads: usize,
    format: MatrixFormat,
) -> Result<ExitCode> {
    let t = Instant::now();
    let ks = kernels(cases.kernels, cases.config)?;
    let policies: Vec<Policy> = if cases.policies.is_empty() {
        Policy::ALL.to_vec()
    } else {
        distinct_policies(cases.policies)
    };
    let mut exps: Vec<(Arc<dyn Exporter>, u64)> = Vec::new();
    let ids: Vec<ExporterId> = if cases.exporters.is_empty() && cases.exporter_files.is_empty() {
        ExporterId::ALL.to_vec()
    } else {
        cases.exporters.to_vec()
    };
    for id in ids {
        if !exps.iter().any(|(e, _)| e.id() == id.as_str()) {
            exps.push((
                pfnguard_dmabuf::exporters::by_id(id),
                cases.pages.unwrap_or(1),
            ));
        }
    }
    for f in cases.exporter_files {
        let e = pfnguard_dmabuf::custom::load(f)?;
        if exps.iter().any(|(x, _)| x.id() == e.id()) {
            bail!(
                "--exporter-file {}: an exporter named `{}` is already in the table",
                f.display(),
                e.id()
            );
        }
        let n = e.fixed_pages().unwrap_or(pfnguard_dmabuf::DEFAULT_PAGES);
        exps.push((Arc::new(e), n));
    }

    // Each distinct kernel is explored once (the exploration is deterministic).
    let distinct = distinct_kernels(&ks);
    let limits = Limits {
        max_states,
        threads,
        ..Limits::default()
    };
    // cells[d][p][e]
    let mut cells: Vec<Vec<Vec<Cell>>> = Vec::new();
    let mut states = 0usize;
    for d in &distinct {
        let mut per_policy = Vec::new();
        for &p in &policies {
            let mut per_exp = Vec::new();
            for (e, pages) in &exps {
                let cell = match explore_alphabet_with(
                    &d.name,
                    d,
                    e.as_ref(),
                    p,
                    *pages,
                    depth,
                    limits,
                    alphabet,
                ) {
                    Ok(r) => {
                        states += r.states;
                        Cell::from_report(&r)
                    }
                    Err(err) => Cell::Unavailable {
                        reason: err.to_string(),
                    },
                };
                per_exp.push(cell);
            }
            per_policy.push(per_exp);
        }
        cells.push(per_policy);
    }
    let elapsed = t.elapsed().as_secs_f64();
    eprintln!(
        "pfnguard: explore --all: {} exporter(s) x {} kernel(s) ({} distinct) x {} policies, depth {}: {} states in {:.1} s ({:.0} states/s)",
        exps.len(),
        ks.len(),
        distinct.len(),
        policies.len(),
        depth,
        states,
        elapsed,
        states as f64 / elapsed.max(1e-9)
    );
    let cell_of = |k: &ResolvedKernel, pi: usize, ei: usize| -> &Cell {
        let d = distinct
            .iter()
            .position(|d| same_run(d, k))
            .unwrap_or_default();
        &cells[d][pi][ei]
    };

    match format {
        MatrixFormat::Json => {
            let mut rows = Vec::new();
            for (ei, (e, _)) in exps.iter().enumerate() {
                for (pi, &p) in policies.iter().enumerate() {
                    for k in &ks {
                        rows.push(JsonRow {
                            exporter: e.id(),
                            kernel: &k.name,
                            version: k.version.to_string(),
                            policy: p,
                            cell: cell_of(k, pi, ei),
                        });
                    }
                }
            }
            print_json(
                out,
                &JsonDoc {
                    depth,
                    fork: alphabet.fork,
                    second_page: alphabet.second_page,
                    importer: alphabet.importer,
                    rows,
                },
            )?;
        }
        MatrixFormat::Table => {
            let headers: Vec<String> = ["exporter", "policy", "kernels", "reachable"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            let mut rows = Vec::new();
            for (ei, (e, _)) in exps.iter().enumerate() {
                for (pi, &p) in policies.iter().enumerate() {
                    for (range, text) in ranges(&ks, |k| cell_of(k, pi, ei).text(false)) {
                        rows.push(vec![e.id().to_owned(), p.to_string(), range, text]);
                    }
                }
            }
            out.write_all(table(&headers, &rows).as_bytes())?;
            writeln!(
                out,
                "\nreachable: the properties some sequence of up to {depth} steps reaches (`pfnguard explore --exporter E --kernel K --policy P` shows a shortest witness); -: none; n/a: the kernel's build lacks the exporter"
            )?;
        }
        MatrixFormat::Markdown => {
            let mut headers = vec!["exporter".to_owned()];
            headers.extend(policies.iter().map(|p| format!("`{p}`")));
            let mut rows = Vec::new();
            for (ei, (e, _)) in exps.iter().enumerate() {
                let mut row = vec![format!("`{}`", e.id())];
                for pi in 0..policies.len() {
                    let rs = ranges(&ks, |k| cell_of(k, pi, ei).text(true));
                    let cell = if rs.len() == 1 {
                        rs[0].1.clone()
                    } else {
                        rs.iter()
                            .map(|(range, text)| format!("{range}: {text}"))
                            .collect::<Vec<_>>()
                            .join("<br>")
                    };
                    row.push(cell);
                }
                rows.push(row);
            }
            out.write_all(markdown(&headers, &rows).as_bytes())?;
            let legend: Vec<String> = Property::ALL
                .iter()
                .map(|p| format!("`{}` {}", short_name(*p), p.name()))
                .collect();
            writeln!(
                out,
                "\nReachable within {depth} steps: {}; `-` none; `n/a` the build lacks the exporter.",
                legend.join(", ")
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Consecutive kernels with the same text merged: (`5.10 – 6.10` or `6.11`, text).
fn ranges(
    ks: &[Arc<ResolvedKernel>],
    text: impl Fn(&ResolvedKernel) -> String,
) -> Vec<(String, String)> {
    kernel_runs(ks, text)
        .into_iter()
        .map(|(first, last, t)| {
            let range = if first.name == last.name {
                first.name.clone()
            } else {
                format!("{} – {}", first.name, last.name)
            };
            (range, t)
        })
        .collect()
}
