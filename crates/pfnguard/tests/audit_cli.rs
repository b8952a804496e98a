//! `pfnguard audit` on the hand-built fixture tree of pfnguard-audit: every format parsed back
//! and its numbers checked, the views, --capture and its replay, --watch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../pfnguard-audit/tests/fixtures/desktop")
}

fn audit(extra: &[&str]) -> Output {
    let f = fixture();
    let mut args = vec!["audit", "--replay", f.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    Command::new(env!("CARGO_BIN_EXE_pfnguard"))
        .args(&args)
        .output()
        .expect("run pfnguard")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}: {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn json_has_the_figures() {
    let v: serde_json::Value =
        serde_json::from_str(&ok(&audit(&["--format", "json"]))).expect("json");
    let procs = v["processes"].as_array().expect("processes");
    let pss: Vec<(u64, u64)> = procs
        .iter()
        .map(|p| {
            (
                p["pid"].as_u64().unwrap_or(0),
                p["pss_bytes"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(pss, vec![(100, 12288), (101, 8192), (200, 20480)]);
    assert_eq!(v["totals"]["kernel_bytes"], 65536);
    assert_eq!(v["totals"]["dmabuf_bytes"], 106496);
    assert_eq!(v["totals"]["mappings_breaking"], 2);
    assert_eq!(v["vanished"], serde_json::json!([300]));
    assert_eq!(v["unreadable"][0]["pid"], 400);
    assert_eq!(v["kernel"]["modeled"], "6.12.117");
}

fn csv(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("header")
        .split(',')
        .map(str::to_owned)
        .collect();
    lines
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(str::to_owned))
                .collect()
        })
        .collect()
}

#[test]
fn csv_views_parse_back() {
    let rows = csv(&ok(&audit(&["--format", "csv"])));
    assert_eq!(rows.len(), 7, "{rows:?}");
    let pss: u64 = rows
        .iter()
        .map(|r| r["pss_bytes"].parse::<u64>().unwrap_or(0))
        .sum();
    assert_eq!(pss, 40960);
    let rows = csv(&ok(&audit(&["--format", "csv", "--buffers"])));
    assert_eq!(rows.len(), 6);
    let k: Vec<&str> = rows
        .iter()
        .filter(|r| r["kernel_only"] == "true")
        .map(|r| r["inode"].as_str())
        .collect();
    assert_eq!(k, vec!["1005"]);
    let r1002 = rows.iter().find(|r| r["inode"] == "1002").expect("1002");
    assert_eq!(r1002["fd_pids"], "100 200");
    assert_eq!(r1002["pss_bytes"], "4096");
    let rows = csv(&ok(&audit(&["--format", "csv", "--all"])));
    // buffer x process pairs: 1001 x2, 1002 x2, 1003, 1004, 1006.
    assert_eq!(rows.len(), 7);
    assert!(rows
        .iter()
        .any(|r| r["inode"] == "1004" && r["fds"] == "0" && r["maps"] == "1"));
}

#[test]
fn prometheus_parses_back() {
    let text = ok(&audit(&["--format", "prometheus"]));
    let mut samples: BTreeMap<String, f64> = BTreeMap::new();
    for l in text.lines() {
        if l.starts_with('#') || l.is_empty() {
            continue;
        }
        let (k, v) = l.rsplit_once(' ').expect("sample line");
        samples.insert(k.to_owned(), v.parse().expect("number"));
    }
    assert_eq!(
        samples[r#"pfnguard_dmabuf_process_pss_bytes{pid="200",comm="compositor",exporter="videobuf2_vmalloc"}"#],
        8192.0
    );
    assert_eq!(
        samples[r#"pfnguard_dmabuf_exporter_bytes{exporter="system"}"#],
        81920.0
    );
    assert_eq!(
        samples[r#"pfnguard_dmabuf_exporter_kernel_bytes{exporter="system"}"#],
        65536.0
    );
    assert_eq!(
        samples[r#"pfnguard_dmabuf_buffers{exporter="system"}"#],
        2.0
    );
    assert_eq!(
        samples[r#"pfnguard_dmabuf_mappings_breaking_contract{exporter="videobuf2_vmalloc"}"#],
        1.0
    );
    assert_eq!(samples["pfnguard_dmabuf_total_bytes"], 106496.0);
    assert_eq!(samples["pfnguard_audit_unreadable_processes"], 1.0);
    let per_process: f64 = samples
        .iter()
        .filter(|(k, _)| k.starts_with("pfnguard_dmabuf_process_bytes{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(per_process, 65536.0);
    // Every metric has its HELP and TYPE.
    for name in samples.keys().map(|k| k.split('{').next().unwrap_or("")) {
        assert!(text.contains(&format!("# TYPE {name} gauge")), "{name}");
    }
}

#[test]
fn table_views() {
    let t = ok(&audit(&[]));
    assert!(t.contains("compositor:200  PROCESS TOTAL"), "{t}");
    assert!(t.contains("breaks: VM_MIXEDMAP: vivid-vmalloc"), "{t}");
    assert!(
        t.contains(
            "dmabuf total: 104 kB kernel_rss: 64 kB userspace_rss: 64 kB userspace_pss: 40 kB"
        ),
        "{t}"
    );
    assert!(t.contains("ssh-agent:400 fd: Permission denied"), "{t}");
    assert!(t.contains("exited during the scan: 300"), "{t}");
    let b = ok(&audit(&["--buffers"]));
    assert!(b.contains("kernel only"), "{b}");
    let a = ok(&audit(&["--all"]));
    assert!(a.contains("0(1) refs"), "{a}");
}

#[test]
fn capture_replays_equal_and_refuses_a_full_directory() {
    let dir = std::env::temp_dir().join(format!("pfnguard-cli-capture-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let d = dir.to_str().expect("utf-8");
    let first = ok(&audit(&["--format", "json", "--capture", d]));
    let f = fixture();
    let replay = Command::new(env!("CARGO_BIN_EXE_pfnguard"))
        .args(["audit", "--replay", d, "--format", "json"])
        .output()
        .expect("run");
    let again = audit(&["--capture", d]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(first, ok(&replay));
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));
    assert!(f.exists());
}

#[test]
fn watch_prints_one_line_per_sample() {
    let out = ok(&audit(&[
        "--watch", "1", "--count", "2", "--format", "json",
    ]));
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["sample"], 1);
    assert_eq!(lines[1]["growth"], serde_json::json!([]));
}

#[test]
fn watch_csv_starts_with_what_each_process_has() {
    let out = ok(&audit(&["--watch", "1", "--count", "2", "--format", "csv"]));
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("sample,seconds,what,key,fds,mappings,bytes")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    // Sample 0: the growth from nothing, so camera:100 has its 2 fds, 1 mapping, 24 kB.
    assert!(
        rows.contains(&vec!["0", "0", "process", "camera:100", "2", "1", "24576"]),
        "{out}"
    );
    assert!(rows.iter().all(|r| r.len() == 7 && r[0] == "0"), "{out}");
}

#[test]
fn watch_refuses_prometheus_before_reading() {
    let o = audit(&["--watch", "1", "--count", "2", "--format", "prometheus"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("--watch with --format prometheus"), "{err}");
    assert!(o.stdout.is_empty());
}

/// A guest's capture (harness/realkernel's audit workload on 7.3) against its ground truth.
#[test]
fn truth_passes_for_the_guest_and_fails_when_tampered() {
    let guest = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../pfnguard-audit/tests/fixtures/qemu/7.3.4+deb13-amd64");
    let capture = guest.join("capture");
    let run = |truth: &Path| {
        Command::new(env!("CARGO_BIN_EXE_pfnguard"))
            .args(["audit", "--replay"])
            .arg(&capture)
            .arg("--truth")
            .arg(truth)
            .output()
            .expect("run pfnguard")
    };
    let good = run(&guest.join("truth.json"));
    ok(&good);
    assert!(String::from_utf8_lossy(&good.stderr).contains(", 0 disagree"));

    let text = std::fs::read_to_string(guest.join("truth.json")).expect("truth.json");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("json");
    v["buffers"][0]["name"] = serde_json::json!("renamed");
    let dir = std::env::temp_dir().join(format!("pfnguard-truth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bad_path = dir.join("truth.json");
    std::fs::write(&bad_path, v.to_string()).expect("write");
    let bad = run(&bad_path);
    std::fs::remove_dir_all(&dir).expect("clean up");
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("MISMATCH buffer") && err.contains("name"),
        "{err}"
    );
}
