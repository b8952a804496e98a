//! A fuzz target for scenario and exporter files on stable Rust: mutates the library's scenario
//! files and the exporter files (scenarios/exporters, examples/exporters) — byte flips from a
//! TOML-ish alphabet, truncations, splices of other files, deletions, duplicated lines — with a
//! deterministic xorshift generator and parses every variant; a panic is a bug. One in 64 of
//! the variants that parse is also run (a scenario explored, bounded; an exporter predicted on
//! 6.12), so the parsers' output is exercised too.
//!
//! ```sh
//! cargo run --release -p pfnguard-scenario --example fuzz_scenarios -- 10000000 [SEED]
//! ```

use std::path::Path;
use std::time::Instant;

use pfnguard_scenario::scenario::scenario_files;
use pfnguard_scenario::{parse_scenario, run_scenario, Limits};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let mut x: u64 = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15)
        | 1;
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join("scenarios");
    let files = scenario_files(&dir).unwrap_or_default();
    // (text, is an exporter file)
    let mut texts: Vec<(Vec<u8>, bool)> = files
        .iter()
        .filter_map(|f| std::fs::read(f).ok())
        .map(|t| (t, false))
        .collect();
    let nscenarios = texts.len();
    for d in [
        root.join("scenarios/exporters"),
        root.join("examples/exporters"),
    ] {
        let mut fs: Vec<_> = std::fs::read_dir(&d)
            .map(|r| r.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        fs.sort();
        texts.extend(
            fs.iter()
                .filter(|f| f.extension().is_some_and(|x| x == "toml"))
                .filter_map(|f| std::fs::read(f).ok())
                .map(|t| (t, true)),
        );
    }
    if nscenarios == 0 || texts.len() == nscenarios {
        eprintln!("no scenario or exporter files under {}", root.display());
        std::process::exit(2);
    }
    let kernel = match pfnguard_mm::resolve_kernel("6.12") {
        Ok(k) => k,
        Err(e) => {
            eprintln!("6.12: {e}");
            std::process::exit(2);
        }
    };
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let alphabet = b"=[]{}\"',.#\n 0123456789abcdefxyz-_:EOK";
    let t0 = Instant::now();
    let (mut parsed, mut explored, mut exporters) = (0u64, 0u64, 0u64);
    let limits = Limits {
        max_states: 2_000,
        threads: 1,
        ..Limits::default()
    };
    for i in 0..n {
        let (base, is_exporter) = &texts[(i as usize) % texts.len()];
        let mut t = base.clone();
        for _ in 0..(1 + next() % 6) {
            if t.is_empty() {
                break;
            }
            let at = (next() as usize) % t.len();
            match next() % 6 {
                0 | 1 => t[at] = alphabet[(next() as usize) % alphabet.len()],
                2 => t.truncate(at),
                3 => {
                    let other = &texts[(next() as usize) % texts.len()].0;
                    let from = (next() as usize) % other.len().max(1);
                    let len = (next() % 80) as usize;
                    t.splice(at..at, other[from..].iter().take(len).copied());
                }
                4 => {
                    t.remove(at);
                }
                _ => {
                    // Duplicate the line around `at`.
                    let s = t[..at]
                        .iter()
                        .rposition(|&b| b == b'\n')
                        .map_or(0, |p| p + 1);
                    let e = t[at..]
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(t.len(), |p| at + p + 1);
                    let line: Vec<u8> = t[s..e].to_vec();
                    t.splice(e..e, line);
                }
            }
        }
        let s = String::from_utf8_lossy(&t);
        if *is_exporter {
            if let Ok(desc) = pfnguard_dmabuf::custom::parse(Path::new("fuzz-exporter.toml"), &s) {
                parsed += 1;
                exporters += 1;
                if next() % 64 == 0 {
                    let e = pfnguard_dmabuf::custom::CustomExporter { desc };
                    let pages = e.desc.pages;
                    let _ =
                        pfnguard_dmabuf::predict(&kernel, &e, pfnguard_dmabuf::Policy::Off, pages);
                    explored += 1;
                }
            }
        } else if let Ok(sc) = parse_scenario(Path::new("fuzz.toml"), &s) {
            parsed += 1;
            // Explore one in 64 of the variants that parse (exploration costs far more).
            if next() % 64 == 0 {
                let _ = run_scenario(&sc, limits);
                explored += 1;
            }
        }
        if (i + 1) % 1_000_000 == 0 {
            eprintln!(
                "{} executions, {parsed} parsed ({exporters} exporter files), {explored} run, {:.0} exec/s",
                i + 1,
                (i + 1) as f64 / t0.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "{n} executions without a panic ({parsed} parsed, {exporters} of them exporter files; {explored} run) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}
