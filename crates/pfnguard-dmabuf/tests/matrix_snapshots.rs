//! The full matrix (every catalogue exporter x every op) for both kernels and all four
//! policies, as Markdown snapshots under tests/snapshots/. A change to any cell, or to the
//! kernel warnings an exporter triggers, shows up as a snapshot diff.
//!
//! Update after an intended change: `INSTA_UPDATE=always cargo test -p pfnguard-dmabuf --test
//! matrix_snapshots`, then review the .snap diff.

mod common;
use common::resolved;

use std::fmt::Write as _;

use pfnguard_dmabuf::{catalogue, predict, Policy, DEFAULT_PAGES};
use pfnguard_report::OpKey;

fn matrix(kernel: &str, policy: Policy) -> String {
    let profile = resolved(kernel);
    let mut s = format!(
        "Linux {} ({}), policy {}\n\n",
        kernel,
        profile.version,
        policy.name()
    );
    let _ = writeln!(
        s,
        "| exporter | {} |",
        OpKey::ALL.map(OpKey::as_str).join(" | ")
    );
    let _ = writeln!(s, "|{}", "---|".repeat(OpKey::ALL.len() + 1));
    let mut warnings = Vec::new();
    for e in catalogue() {
        let r = predict(&profile, e.as_ref(), policy, DEFAULT_PAGES);
        let cells: Vec<String> = OpKey::ALL.iter().map(|op| r.ops[op].to_string()).collect();
        let _ = writeln!(s, "| {} | {} |", r.exporter, cells.join(" | "));
        for w in &r.warnings {
            warnings.push(format!("- {}: {w}", r.exporter));
        }
    }
    s.push_str("\nKernel warnings:\n");
    if warnings.is_empty() {
        s.push_str("- none\n");
    }
    for w in warnings {
        s.push_str(&w);
        s.push('\n');
    }
    s
}

macro_rules! snap {
    ($name:ident, $kernel:literal, $policy:expr) => {
        #[test]
        fn $name() {
            insta::assert_snapshot!(matrix($kernel, $policy));
        }
    };
}

snap!(matrix_6_1_off, "6.1", Policy::Off);
snap!(matrix_6_1_warn, "6.1", Policy::Warn);
snap!(matrix_6_1_require, "6.1", Policy::Require);
snap!(matrix_6_1_strict, "6.1", Policy::Strict);
snap!(matrix_6_12_off, "6.12", Policy::Off);
snap!(matrix_6_12_warn, "6.12", Policy::Warn);
snap!(matrix_6_12_require, "6.12", Policy::Require);
snap!(matrix_6_12_strict, "6.12", Policy::Strict);
