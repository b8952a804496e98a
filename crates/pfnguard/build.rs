//! Embeds the real-kernel evidence (`reports/*/probe.json`, written by `scripts/real-kernels`)
//! so that `pfnguard matrix` can mark the cells a real kernel confirmed, and the patched kernel's
//! (`reports/patched/LEVEL/probe.json`) so that `pfnguard report` can set its outcomes beside
//! the model's.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let reports = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../reports");
    println!("cargo:rerun-if-changed={}", reports.display());
    let mut dirs: Vec<_> = std::fs::read_dir(&reports)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    dirs.sort();
    let mut out = String::from("/// `(report directory, probe.json)` of every committed real-kernel report.\npub const PROBES: &[(&str, &str)] = &[\n");
    for d in dirs {
        let probe = d.join("probe.json");
        if !probe.is_file() {
            continue;
        }
        println!("cargo:rerun-if-changed={}", probe.display());
        let name = d
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "    ({name:?}, include_str!({:?})),",
            probe.display().to_string()
        );
    }
    out.push_str("];\n");
    // The patched kernel booted at each mmap_check level (scripts/patched-kernel).
    let patched = reports.join("patched");
    println!("cargo:rerun-if-changed={}", patched.display());
    out.push_str("/// `(mmap_check level, probe.json)` of the patched kernel's reports under reports/patched.\npub const PATCHED: &[(&str, &str)] = &[\n");
    for level in ["off", "warn", "require", "strict"] {
        let probe = patched.join(level).join("probe.json");
        if !probe.is_file() {
            continue;
        }
        println!("cargo:rerun-if-changed={}", probe.display());
        let _ = writeln!(
            out,
            "    ({level:?}, include_str!({:?})),",
            probe.display().to_string()
        );
    }
    out.push_str("];\n");
    let dest =
        Path::new(&std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into())).join("evidence.rs");
    if let Err(e) = std::fs::write(&dest, out) {
        panic!("writing {}: {e}", dest.display());
    }
}
