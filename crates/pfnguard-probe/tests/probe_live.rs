//! `run()` on the machine running the tests: the memfd control is always
//! reachable, and an exporter that is not is reported, never a crash.

use std::time::Duration;

use pfnguard_probe::{run, ProbeOptions};
use pfnguard_report::{ExporterId, OpKey, Outcome};

fn is_unavailable(v: &str) -> bool {
    matches!(v.parse(), Ok(Outcome::Unavailable(_)))
}

fn opts(ids: &[ExporterId]) -> ProbeOptions {
    ProbeOptions {
        exporters: ids.to_vec(),
        op_timeout: Duration::from_secs(10),
        odirect_path: None,
        create_soft_roce: None,
        kmsg: false,
        scenarios: None,
    }
}

/// The RDMA devices of the host (`/sys/class/infiniband`), by name.
fn ib_devices() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/class/infiniband")
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Whether the host has a uverbs node.
fn has_uverbs_node() -> bool {
    std::fs::read_dir("/dev/infiniband").is_ok_and(|d| {
        d.filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().starts_with("uverbs"))
    })
}

#[test]
fn memfd_control() {
    let uverbs = has_uverbs_node();
    let ib_before = ib_devices();
    let report = run(&opts(&[ExporterId::Memfd]));
    assert_eq!(
        ib_devices(),
        ib_before,
        "the probe creates no RDMA device unless asked"
    );
    assert!(!report.kernel_release.is_empty());
    assert_eq!(report.exporters.len(), 1);
    let row = &report.exporters[0];
    assert_eq!(row.exporter, "memfd");
    assert_eq!(row.status, None);
    assert_eq!(row.ops.len(), OpKey::ALL.len(), "every op key has a value");
    let op = |k: OpKey| row.ops[&k].to_string();
    for k in [
        OpKey::Export,
        OpKey::MmapShared,
        OpKey::Vmsplice,
        OpKey::IoUringRegister,
        OpKey::ProcessVmReadv,
        OpKey::ProcessVmWritev,
        OpKey::ProcMemRead,
        OpKey::ProcMemWrite,
        OpKey::PipeWrite,
        OpKey::ForkChildRead,
        OpKey::FutexWakeShared,
        OpKey::MadvPopulateRead,
        OpKey::MadvPopulateWrite,
        OpKey::MremapGrow,
    ] {
        // io_uring may be disabled by sysctl; that is reported as unavailable.
        if k == OpKey::IoUringRegister && is_unavailable(&op(k)) {
            continue;
        }
        assert_eq!(op(k), "ok", "{k}");
    }
    // A private file mapping copies on write; shmem pages are normal pages.
    assert_eq!(op(OpKey::MmapPrivate), "ok:cow");
    let flags = op(OpKey::Vmflags);
    assert!(flags.starts_with("rd wr sh mr mw me ms"), "{flags}");
    assert!(!flags.contains(" pf") && !flags.contains(" io"), "{flags}");
    assert_eq!(op(OpKey::Rss), "counted");
    assert_eq!(op(OpKey::Pagemap), "present");
    assert_eq!(op(OpKey::Mlock), "ok:locked");
    assert_eq!(op(OpKey::MadvDontneed), "ok:refault-ok");
    for k in [OpKey::OdirectRead, OpKey::OdirectWrite] {
        assert!(op(k) == "ok" || is_unavailable(&op(k)), "{k}: {}", op(k));
    }
    let kvm = op(OpKey::KvmMap);
    assert!(!kvm.is_empty() && kvm != "skipped", "{kvm}");
    if !uverbs {
        let rdma = op(OpKey::RdmaRegMr);
        assert!(
            rdma.starts_with("unavailable: ENODEV (no RDMA device; create_soft_roce"),
            "{rdma}"
        );
    } else {
        // ok, or an errno (RLIMIT_MEMLOCK without CAP_IPC_LOCK), or unavailable.
        let rdma = op(OpKey::RdmaRegMr);
        assert!(!rdma.is_empty() && rdma != "skipped", "{rdma}");
    }
    assert_eq!(row.detail["size"], 16384);
    assert!(row.detail["vmflags_raw"]
        .as_str()
        .unwrap()
        .starts_with("VmFlags: rd wr sh"));
    assert!(row.detail["maps"]
        .as_str()
        .unwrap()
        .contains("/memfd:pfnguard-memfd"));
}

#[test]
fn unreachable_exporters_are_unavailable() {
    let report = run(&opts(&[
        ExporterId::GemDma,
        ExporterId::VividDmaContig,
        ExporterId::GemDma,
    ]));
    assert_eq!(report.exporters.len(), 2, "duplicates are probed once");
    for row in &report.exporters {
        if row.exporter == "vivid-dma-contig" && row.status.is_none() {
            continue; // a machine with vivid allocators=1
        }
        let status = row.status.as_deref().unwrap();
        assert!(is_unavailable(status), "{status}");
        assert!(row.ops.is_empty());
    }
    let json = serde_json::to_value(&report).unwrap();
    // No gem-dma card on a test machine: the status names where the probe looked.
    let status = json["exporters"][0]["status"].as_str().unwrap_or_default();
    assert!(
        status.starts_with("unavailable: /dev/dri/card*"),
        "{status}"
    );
    assert_eq!(json["exporters"][0]["ops"], serde_json::json!({}));
}

#[test]
fn default_run_includes_the_control() {
    let report = run(&ProbeOptions {
        op_timeout: Duration::from_secs(10),
        ..ProbeOptions::default()
    });
    let memfd = report
        .exporters
        .iter()
        .find(|r| r.exporter == "memfd")
        .expect("memfd row");
    assert_eq!(memfd.ops[&OpKey::Export], Outcome::Ok);
    let probed: Vec<&str> = report
        .exporters
        .iter()
        .filter(|r| r.status.is_none())
        .map(|r| r.exporter.as_str())
        .collect();
    assert_eq!(
        probed.last(),
        Some(&"memfd"),
        "the control comes after every dma-buf exporter"
    );
}

#[test]
fn odirect_target_is_left_as_it_was() {
    let p = std::env::temp_dir().join(format!("pfnguard-odirect-{}", std::process::id()));
    let content: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&p, &content).expect("write target");
    let report = run(&ProbeOptions {
        odirect_path: Some(p.clone()),
        ..opts(&[ExporterId::Memfd])
    });
    let after = std::fs::read(&p).expect("read target");
    let _ = std::fs::remove_file(&p);
    let w = report.exporters[0].ops[&OpKey::OdirectWrite].to_string();
    assert!(w == "ok" || is_unavailable(&w), "{w}");
    assert!(after == content, "odirect_write ({w}) changed the target");
}

/// `kmsg: true` on this machine: the log is read around every op that ran, so the row has
/// `warned_at` (empty unless this kernel warned) and no op lost its marker. It writes 23
/// marker lines into the kernel log (and re-arms WARN_ONCE when debugfs is mounted), so it
/// runs only with `PFNGUARD_TEST_KMSG=1`, and where `/dev/kmsg` can be read and written.
#[test]
fn kmsg_reads_the_log_around_every_op() {
    if std::env::var_os("PFNGUARD_TEST_KMSG").is_none() {
        return;
    }
    let report = run(&ProbeOptions {
        kmsg: true,
        ..opts(&[ExporterId::Memfd])
    });
    if !report.kmsg {
        return; // no access to /dev/kmsg: said on stderr
    }
    let row = &report.exporters[0];
    let warned_at = row.warned_at.as_ref().expect("warned_at with kmsg");
    for (op, sites) in warned_at {
        assert!(!sites.is_empty(), "{op}");
        assert!(row.detail["kmsg"][op.as_str()].is_array(), "{op}");
    }
    let notes = row.detail.get("kmsg_notes").cloned().unwrap_or_default();
    assert!(!notes.to_string().contains("was not read back"), "{notes}");
}
