//! A fuzz target for scenario files on stable Rust: mutates the library's scenario files (byte
//! flips from a TOML-ish alphabet, truncations, splices of other files, deletions, duplicated
//! lines) with a deterministic xorshift generator and parses every variant; a panic is a bug.
//! Every variant that parses is also explored (bounded), so the parser's output is exercised
//! too.
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
    let files = scenario_files(&dir).unwrap_or_default();
    let texts: Vec<Vec<u8>> = files.iter().filter_map(|f| std::fs::read(f).ok()).collect();
    if texts.is_empty() {
        eprintln!("no scenario files under {}", dir.display());
        std::process::exit(2);
    }
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let alphabet = b"=[]{}\"',.#\n 0123456789abcdefxyz-_:EOK";
    let t0 = Instant::now();
    let (mut parsed, mut explored) = (0u64, 0u64);
    let limits = Limits {
        max_states: 2_000,
        threads: 1,
        ..Limits::default()
    };
    for i in 0..n {
        let base = &texts[(i as usize) % texts.len()];
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
                    let other = &texts[(next() as usize) % texts.len()];
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
        if let Ok(sc) = parse_scenario(Path::new("fuzz.toml"), &s) {
            parsed += 1;
            // Explore one in 64 of the variants that parse (exploration costs far more).
            if next() % 64 == 0 {
                let _ = run_scenario(&sc, limits);
                explored += 1;
            }
        }
        if (i + 1) % 1_000_000 == 0 {
            eprintln!(
                "{} executions, {parsed} parsed, {explored} explored, {:.0} exec/s",
                i + 1,
                (i + 1) as f64 / t0.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "{n} executions without a panic ({parsed} parsed, {explored} explored) in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}
