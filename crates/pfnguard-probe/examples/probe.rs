//! Probe the running kernel and print the report as JSON.
//!
//! `cargo run -p pfnguard-probe --example probe -- [probe] [--exporter ID]... [--odirect PATH] [--timeout SECS] [--kmsg] [--format json]`
//!
//! It takes the arguments of `pfnguard probe` (the leading `probe` word and
//! `--format json` are accepted), so a static build of it can stand in for the
//! CLI in `harness/realkernel --probe-bin`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use pfnguard_probe::{run, ProbeOptions};

fn main() -> ExitCode {
    let mut opts = ProbeOptions::default();
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("probe") {
        args.next();
    }
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let parsed = match arg.as_str() {
            "--exporter" => value("--exporter").and_then(|v| {
                v.parse()
                    .map(|id| opts.exporters.push(id))
                    .map_err(|e| format!("--exporter: {e}"))
            }),
            "--odirect" => value("--odirect").map(|v| opts.odirect_path = Some(PathBuf::from(v))),
            "--timeout" => value("--timeout").and_then(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|s| s.is_finite() && *s > 0.0)
                    .map(|s| opts.op_timeout = Duration::from_secs_f64(s))
                    .ok_or_else(|| format!("bad --timeout `{v}`"))
            }),
            "--kmsg" => {
                opts.kmsg = true;
                Ok(())
            }
            "--format" => value("--format").and_then(|v| match v.as_str() {
                "json" => Ok(()),
                _ => Err(format!("only --format json is supported, not `{v}`")),
            }),
            other => Err(format!("unknown argument `{other}`")),
        };
        if let Err(e) = parsed {
            eprintln!("probe: {e}");
            return ExitCode::from(2);
        }
    }
    let report = run(&opts);
    match serde_json::to_string_pretty(&report) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("probe: {e}");
            ExitCode::FAILURE
        }
    }
}
