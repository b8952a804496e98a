//! `pfnguard audit-workload`: the workload the QEMU guests of harness/realkernel run after the
//! probe to prove `pfnguard audit` on a real kernel. It makes a known set of dma-bufs
//! (pfnguard-probe's `workload`: every reachable exporter, shared with a fork child and over
//! SCM_RIGHTS with an exec'd process, named, mapped, one held only by the kernel), audits the
//! system while they are held, and holds the audit to what it did and to debugfs
//! `dma_buf/bufinfo` (pfnguard-audit's `verify`). It writes into DIR:
//!
//! | file | contents |
//! |---|---|
//! | `truth.json` | the workload's ground truth |
//! | `capture/` | `pfnguard audit --capture` of that moment (replay with `--replay`) |
//! | `audit.json` | the audit |
//! | `audit.txt` | the audit's per-process and per-buffer tables |
//! | `verify.txt` | every figure compared, then the mismatches and the summary |
//!
//! Exit status 1 when anything disagrees.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context as _, Result};
use pfnguard_audit::{Reader, Root, ScanOptions};
use pfnguard_probe::workload::{self, Workload};

use crate::audit::{render, AuditFormat, View};

fn write(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The receiver's side: stdin is the socket the workload passes fds on.
pub fn receiver() -> Result<ExitCode> {
    workload::receiver()?;
    Ok(ExitCode::SUCCESS)
}

/// Run the workload, audit, capture and verify into `dir` (new or empty).
pub fn run(dir: &Path) -> Result<ExitCode> {
    crate::audit::new_or_empty(dir, "--out")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating --out {}", dir.display()))?;
    let t0 = std::time::Instant::now();
    let exe = std::env::current_exe().context("the path of this executable (/proc/self/exe)")?;
    let mut receiver = Command::new(exe);
    receiver.args(["audit-workload", "--receiver"]);
    let w = Workload::start(&mut receiver)?;
    let truth = w.truth().clone();
    write(
        &dir.join("truth.json"),
        &serde_json::to_string_pretty(&truth)?,
    )?;

    let root = Root::system();
    let reader = Reader::new(&root, true);
    let scan = pfnguard_audit::scan(&reader, ScanOptions::default())?;
    reader.write_capture(&dir.join("capture"))?;
    drop(w);

    let audit = pfnguard_audit::audit(&scan, None);
    write(
        &dir.join("audit.json"),
        &serde_json::to_string_pretty(&audit)?,
    )?;
    let mut tables = render(&audit, View::Process, AuditFormat::Table);
    tables.push('\n');
    tables.push_str(&render(&audit, View::Buffers, AuditFormat::Table));
    write(&dir.join("audit.txt"), &tables)?;

    let v = pfnguard_audit::verify::verify(&truth, &audit, scan.bufinfo.as_ref());
    let mut text = String::new();
    for a in &v.agreed {
        writeln!(text, "agree {a}")?;
    }
    for n in &truth.notes {
        writeln!(text, "note {n}")?;
    }
    write!(text, "{v}")?;
    write(&dir.join("verify.txt"), &text)?;
    for n in &truth.notes {
        eprintln!("pfnguard audit-workload: note: {n}");
    }
    eprint!("{v}");
    eprintln!(
        "pfnguard audit-workload: {} buffers ({} bytes, {} kernel-only), {} processes, {:.2} s",
        truth.buffers.len(),
        truth.buffers.iter().map(|b| b.size).sum::<u64>(),
        truth
            .buffers
            .iter()
            .filter(|b| b.kernel_held_by.is_some())
            .count(),
        truth.processes.len(),
        t0.elapsed().as_secs_f64()
    );
    Ok(if v.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
