//! Capture procfs fixtures (smaps, maps, fdinfo, pagemap) of every reachable
//! exporter into `DIR/<kernel release>/` (default: this crate's `tests/fixtures`).
//!
//! `cargo run -p pfnguard-probe --example capture_fixtures -- [--exporter ID]... [DIR]`

use std::path::PathBuf;
use std::process::ExitCode;

use pfnguard_probe::{capture_fixtures, ProbeOptions};

fn main() -> ExitCode {
    let mut opts = ProbeOptions::default();
    let mut dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"));
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--exporter" {
            match args.next() {
                Some(id) => match id.parse() {
                    Ok(id) => opts.exporters.push(id),
                    Err(e) => {
                        eprintln!("capture_fixtures: --exporter: {e}");
                        return ExitCode::from(2);
                    }
                },
                None => {
                    eprintln!("capture_fixtures: --exporter needs a value");
                    return ExitCode::from(2);
                }
            }
        } else {
            dir = PathBuf::from(arg);
        }
    }
    let mut failed = false;
    for (id, res) in capture_fixtures(&opts, &dir) {
        match res {
            Ok(path) => println!("{id}: {}", path.display()),
            Err(e) => {
                failed = true;
                eprintln!("{id}: {e}");
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
