//! `run` (scenario files) and `explore` (every step sequence of one exporter).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{anyhow, Result};
use pfnguard_dmabuf::Policy;
use pfnguard_scenario::explore::{PropertyResult, Witness};
use pfnguard_scenario::scenario::scenario_files;
use pfnguard_scenario::{
    explore_alphabet_with, load_scenario, run_scenario, Alphabet, CaseReport, ExploreReport, Limits,
};

use crate::cmd::{print_json, ExporterArg};
use crate::Format;

fn witness_text(out: &mut String, w: &Witness, indent: &str) {
    let what = if w.kind == "avoids" {
        "a complete run without it"
    } else {
        "the shortest run to it"
    };
    out.push_str(&format!(
        "{indent}witness ({what}, {} steps):\n",
        w.steps.len()
    ));
    for (i, s) in w.steps.iter().enumerate() {
        out.push_str(&format!(
            "{indent}  {:>2}. {}: {}  -> {}\n",
            i + 1,
            s.actor,
            s.step,
            s.outcome
        ));
    }
    if w.kind == "reaches" && !w.trace.is_empty() {
        out.push_str(&format!("{indent}kernel path of step {}:\n", w.steps.len()));
        for t in &w.trace {
            out.push_str(&format!(
                "{indent}  {}{}: {}\n",
                "  ".repeat(usize::from(t.depth)),
                t.function,
                t.note
            ));
        }
    }
    if !w.events.is_empty() {
        out.push_str(&format!("{indent}kernel log:\n"));
        for e in &w.events {
            out.push_str(&format!("{indent}  {e}\n"));
        }
    }
}

fn property_line(c: &CaseReport, p: &PropertyResult) -> String {
    let expected = p.expected.map_or("-".to_owned(), |e| e.to_string());
    let status = match p.expected {
        None => "info",
        Some(_) if p.ok() => "ok",
        Some(_) => "DIFFERS",
    };
    let mut line = format!(
        "{:<7} {} [{} {}] {:<15} {:<9} expected {:<9} states {}",
        status,
        c.scenario,
        c.kernel,
        c.policy,
        p.property,
        p.verdict.name(),
        expected,
        c.states
    );
    if let Some(why) = p.unavailable {
        line.push_str(&format!("  (cannot happen on this tree: {why})"));
    }
    line
}

/// `pfnguard run PATH...`.
pub fn run(
    out: &mut dyn Write,
    paths: &[PathBuf],
    format: Format,
    max_states: usize,
    threads: usize,
) -> Result<ExitCode> {
    let mut files = Vec::new();
    for p in paths {
        files.extend(scenario_files(p).map_err(|e| anyhow!("{e}"))?);
    }
    if files.is_empty() {
        return Err(anyhow!("no scenario files (*.toml) under the given paths"));
    }
    // Every file must parse before anything runs: a malformed one is an input error.
    let mut scenarios = Vec::new();
    for f in &files {
        scenarios.push(load_scenario(f).map_err(|e| anyhow!("{e}"))?);
    }
    let limits = Limits {
        max_states,
        threads,
        ..Limits::default()
    };
    let mut cases: Vec<CaseReport> = Vec::new();
    let mut elapsed = Duration::ZERO;
    for sc in &scenarios {
        for c in run_scenario(sc, limits) {
            elapsed += c.elapsed;
            eprintln!(
                "pfnguard: {} [{} {}]: {} states in {:.3} s",
                c.scenario,
                c.kernel,
                c.policy,
                c.states,
                c.elapsed.as_secs_f64()
            );
            cases.push(c);
        }
    }
    let states: usize = cases.iter().map(|c| c.states).sum();
    eprintln!(
        "pfnguard: {} scenario(s), {} case(s), {states} states in {:.2} s ({:.0} states/s)",
        scenarios.len(),
        cases.len(),
        elapsed.as_secs_f64(),
        states as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    let bad = cases.iter().filter(|c| !c.ok()).count();
    match format {
        Format::Json => print_json(out, &cases)?,
        Format::Table => {
            let mut s = String::new();
            for c in &cases {
                if let Some(why) = &c.unavailable {
                    s.push_str(&format!(
                        "{:<7} {} [{} {}] {why}\n",
                        "n/a", c.scenario, c.kernel, c.policy
                    ));
                    continue;
                }
                if !c.complete {
                    s.push_str(&format!(
                        "{:<7} {} [{} {}] stopped after {} states (--max-states): verdicts incomplete\n",
                        "DIFFERS", c.scenario, c.kernel, c.policy, c.states
                    ));
                }
                for p in c.properties.iter().filter(|p| p.expected.is_some()) {
                    s.push_str(&property_line(c, p));
                    s.push('\n');
                    if let Some(w) = &p.witness {
                        witness_text(&mut s, w, "        ");
                    }
                }
            }
            let asserted: usize = cases
                .iter()
                .map(|c| c.properties.iter().filter(|p| p.expected.is_some()).count())
                .sum();
            let differ: usize = cases
                .iter()
                .map(|c| c.properties.iter().filter(|p| !p.ok()).count())
                .sum();
            s.push_str(&format!(
                "\n{} scenario(s), {} case(s) (kernel x policy), {asserted} verdict(s) asserted, {differ} differ{}\n",
                scenarios.len(),
                cases.len(),
                if bad == 0 { "" } else { ": FAIL" }
            ));
            out.write_all(s.as_bytes())?;
        }
    }
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `pfnguard explore`.
#[allow(clippy::too_many_arguments)]
pub fn explore(
    out: &mut dyn Write,
    kernel_name: &str,
    kernel: &pfnguard_mm::ResolvedKernel,
    exporter: ExporterArg,
    policy: Policy,
    pages: Option<u64>,
    depth: usize,
    alphabet: Alphabet,
    max_states: usize,
    threads: usize,
    format: Format,
) -> Result<ExitCode> {
    let (exp, pages) = match (&exporter, pages) {
        (ExporterArg::Id(_), None) => (exporter.resolve(Some(1)).0, 1),
        _ => exporter.resolve(pages),
    };
    let limits = Limits {
        max_states,
        threads,
        ..Limits::default()
    };
    let r: ExploreReport = explore_alphabet_with(
        kernel_name,
        kernel,
        exp.as_ref(),
        policy,
        pages,
        depth,
        limits,
        alphabet,
    )
    .map_err(|e| anyhow!("{}: {e}", exp.id()))?;
    eprintln!(
        "pfnguard: explore {} [{} {}] depth {}: {} states in {:.3} s ({:.0} states/s)",
        r.exporter,
        r.kernel,
        r.policy,
        r.depth,
        r.states,
        r.elapsed.as_secs_f64(),
        r.states as f64 / r.elapsed.as_secs_f64().max(1e-9)
    );
    match format {
        Format::Json => print_json(out, &r)?,
        Format::Table => {
            let mut s = format!(
                "explore exporter {}  kernel {}  policy {}  depth {}: {} states{}\n\n",
                r.exporter,
                r.kernel,
                r.policy,
                r.depth,
                r.states,
                if r.complete {
                    ""
                } else {
                    " (stopped by --max-states: incomplete)"
                }
            );
            for p in &r.properties {
                let mut line = format!(
                    "{:<15} {}",
                    p.property.name(),
                    if p.reachable {
                        format!(
                            "reachable in {} step(s)",
                            p.witness.as_ref().map_or(0, |w| w.steps.len())
                        )
                    } else {
                        format!("not reachable in {} steps", r.depth)
                    }
                );
                if let Some(why) = p.unavailable {
                    line.push_str(&format!("  (cannot happen on this tree: {why})"));
                }
                s.push_str(&line);
                s.push('\n');
                if let Some(w) = &p.witness {
                    witness_text(&mut s, w, "    ");
                }
            }
            out.write_all(s.as_bytes())?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
