//! Write the synthetic tree of the performance budget (2,000 processes, 50,000 dma-buf fds,
//! 20,000 mappings) for `pfnguard audit --replay DIR`:
//!
//! ```text
//! cargo run --release -p pfnguard-audit --example synth_tree -- /tmp/synth [PROCS FDS MAPS]
//! /usr/bin/time -v target/release/pfnguard audit --replay /tmp/synth --format json > /dev/null
//! ```

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: synth_tree DIR [PROCS FDS MAPS]  (default 2000 25 10)");
        return ExitCode::from(2);
    };
    let n = |i: usize, d: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(d);
    match pfnguard_audit::synth::write_fixture(dir.as_ref(), n(1, 2000), n(2, 25), n(3, 10)) {
        Ok(f) => {
            println!("{f:?}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("synth_tree: {dir}: {e}");
            ExitCode::FAILURE
        }
    }
}
