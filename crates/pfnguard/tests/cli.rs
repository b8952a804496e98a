//! The built `pfnguard` binary: argument errors, the JSON shape of `predict`, `explain`, and
//! `check` against the probe reports of Debian's real 6.1 and 6.12 kernels (fixtures/).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn pfnguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pfnguard"))
        .args(args)
        .output()
        .expect("run pfnguard")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pfnguard-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    dir.join(name)
}

fn assert_usage_error(args: &[&str], names: &[&str]) {
    let o = pfnguard(args);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    let err = stderr(&o);
    for n in names {
        assert!(
            err.contains(n),
            "{args:?}: stderr does not name {n:?}: {err}"
        );
    }
    assert!(stdout(&o).is_empty(), "{args:?}: {}", stdout(&o));
}

#[test]
fn bad_kernel_is_exit_2_naming_the_argument() {
    assert_usage_error(
        &["predict", "--kernel", "5.4", "--exporter", "vgem"],
        &["--kernel", "\"5.4\"", "6.1, 6.12"],
    );
    assert_usage_error(&["matrix", "--kernel", "4.19"], &["--kernel", "\"4.19\""]);
    assert_usage_error(
        &[
            "explain",
            "--kernel",
            "x",
            "--exporter",
            "vgem",
            "--op",
            "rss",
        ],
        &["--kernel"],
    );
}

#[test]
fn bad_policy_is_exit_2_naming_the_argument() {
    assert_usage_error(
        &[
            "predict",
            "--kernel",
            "6.12",
            "--exporter",
            "vgem",
            "--policy",
            "lax",
        ],
        &["--policy", "`lax`", "off, warn, require or strict"],
    );
    assert_usage_error(
        &["matrix", "--policy", "off", "--policy", "nope"],
        &["--policy", "`nope`"],
    );
}

#[test]
fn bad_exporter_is_exit_2_naming_the_argument() {
    assert_usage_error(
        &["predict", "--kernel", "6.12", "--exporter", "nvidia"],
        &["--exporter", "\"nvidia\"", "system-heap", "memfd"],
    );
    assert_usage_error(
        &[
            "explain",
            "--kernel",
            "6.12",
            "--exporter",
            "nvidia",
            "--op",
            "rss",
        ],
        &["--exporter"],
    );
}

#[test]
fn bad_op_is_exit_2_naming_the_argument() {
    assert_usage_error(
        &[
            "explain",
            "--kernel",
            "6.12",
            "--exporter",
            "vgem",
            "--op",
            "gup",
        ],
        &["--op", "`gup`", "odirect_read", "rdma_reg_mr"],
    );
}

#[test]
fn missing_or_conflicting_arguments_are_exit_2() {
    assert_usage_error(&["predict", "--kernel", "6.12"], &["--exporter"]);
    assert_usage_error(
        &[
            "predict",
            "--kernel",
            "6.12",
            "--exporter",
            "vgem",
            "--exporter-file",
            "x.toml",
        ],
        &["--exporter"],
    );
    assert_usage_error(
        &[
            "predict",
            "--kernel",
            "6.12",
            "--exporter",
            "vgem",
            "--pages",
            "0",
        ],
        &["--pages 0"],
    );
}

#[test]
fn bad_exporter_file_is_exit_2_with_file_line_and_key() {
    let p = tmp("bad-pages.toml");
    std::fs::write(&p, "name = \"x\"\npages = 0\ninsert = \"vm_insert_page\"\nat = \"mmap\"\nmemory = \"driver-pages\"\n").expect("write");
    let ps = p.to_str().expect("utf-8 path");
    assert_usage_error(
        &["predict", "--kernel", "6.1", "--exporter-file", ps],
        &[&format!("{ps}:2: key `pages`: 0 is out of range")],
    );
    assert_usage_error(
        &["matrix", "--exporter-file", "/nonexistent/x.toml"],
        &["/nonexistent/x.toml: "],
    );
}

#[test]
fn predict_json_has_the_fixed_keys() {
    let o = pfnguard(&[
        "predict",
        "--kernel",
        "6.12",
        "--exporter",
        "rockchip",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let obj = v.as_object().expect("object");
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    for k in ["kernel", "exporter", "policy", "ops"] {
        assert!(keys.contains(&k), "missing {k}: {keys:?}");
    }
    for k in &keys {
        assert!(
            ["kernel", "exporter", "policy", "ops", "warnings", "detail"].contains(k),
            "unexpected key {k}"
        );
    }
    assert_eq!(v["kernel"], "6.12");
    assert_eq!(v["exporter"], "rockchip");
    assert_eq!(v["policy"], "off");
    let ops = v["ops"].as_object().expect("ops");
    assert_eq!(ops.len(), 24);
    assert_eq!(ops["vmflags"], "rd wr sh mr mw me ms io de dd sd mm");
    assert_eq!(ops["io_uring_register"], "ok");
    assert_eq!(ops["process_vm_readv"], "EFAULT");
    assert_eq!(
        v["detail"]["debian_amd64"],
        "not built: CONFIG_DRM_ROCKCHIP is ARM-only"
    );
    // No warnings under `off`: the key is left out.
    assert!(obj.get("warnings").is_none());

    let o = pfnguard(&[
        "predict",
        "--kernel",
        "6.12",
        "--exporter",
        "rockchip",
        "--policy",
        "warn",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let w = v["warnings"].as_array().expect("warnings");
    assert_eq!(w.len(), 1);
    assert!(
        w[0].as_str()
            .expect("str")
            .contains("!(vma->vm_flags & VM_PFNMAP) [policy warn]"),
        "{w:?}"
    );
}

#[test]
fn explain_shows_the_kernel_path() {
    let o = pfnguard(&[
        "explain",
        "--kernel",
        "6.1",
        "--exporter",
        "vivid-vmalloc",
        "--op",
        "io_uring_register",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with(
            "vivid-vmalloc on Linux 6.1 (6.1.192), policy off: io_uring_register = EOPNOTSUPP"
        ),
        "{out}"
    );
    assert!(out.contains("io_uring/rsrc.c:io_pin_pages: file-backed VMA that is not shmem/hugetlb -> -EOPNOTSUPP"), "{out}");
    let o = pfnguard(&[
        "explain",
        "--kernel",
        "6.12",
        "--exporter",
        "vivid-vmalloc",
        "--op",
        "io_uring_register",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(v["value"], "ok");
    assert!(v["steps"].as_array().is_some_and(|s| !s.is_empty()));
}

#[test]
fn matrix_markdown_marks_changed_cells() {
    let o = pfnguard(&[
        "matrix", "--kernel", "6.12", "--policy", "off", "--policy", "require", "--format",
        "markdown",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("### Linux 6.12 (6.12.117), policy require (cells changed from off marked)"),
        "{out}"
    );
    let row = out
        .lines()
        .filter(|l| l.starts_with("| vivid-vmalloc |"))
        .nth(1)
        .expect("require row");
    assert!(
        row.starts_with("| vivid-vmalloc | ok | **EINVAL** | **EINVAL** | **skipped** |"),
        "{row}"
    );
}

#[test]
fn check_agrees_with_the_real_6_12_probe() {
    let o = pfnguard(&[
        "check",
        "--probe",
        fixture("probe-6.12.117.json").to_str().expect("path"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with(
            "probe of 6.12.117+deb12-amd64 checked against the model of Linux 6.12 (6.12.117)"
        ),
        "{out}"
    );
    assert!(out.trim_end().ends_with("184/184 cells agree"), "{out}");
    assert!(!out.contains("DISAGREE"), "{out}");
    assert!(out.contains("note: udmabuf-hugetlb: unavailable: no free hugetlb pages (HugePages_Free: 0) (not compared)"), "{out}");
}

#[test]
fn check_agrees_with_the_real_6_1_probe() {
    let o = pfnguard(&[
        "check",
        "--probe",
        fixture("probe-6.1.0-56.json").to_str().expect("path"),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).trim_end().ends_with("139/139 cells agree"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn check_reports_a_doctored_cell_with_its_trace() {
    let text = std::fs::read_to_string(fixture("probe-6.12.117.json")).expect("fixture");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let row = v["exporters"]
        .as_array_mut()
        .expect("exporters")
        .iter_mut()
        .find(|e| e["exporter"] == "vivid-vmalloc")
        .expect("vivid-vmalloc row");
    assert_eq!(row["ops"]["io_uring_register"], "ok");
    row["ops"]["io_uring_register"] = "EOPNOTSUPP".into();
    let p = tmp("doctored-6.12.json");
    std::fs::write(&p, serde_json::to_string_pretty(&v).expect("encode")).expect("write");

    let o = pfnguard(&["check", "--probe", p.to_str().expect("path")]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("DISAGREE vivid-vmalloc io_uring_register: kernel EOPNOTSUPP / model ok"),
        "{out}"
    );
    assert_eq!(out.matches("DISAGREE").count(), 1, "{out}");
    // The model's path follows the disagreement, indented.
    let after: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("DISAGREE"))
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(after.iter().all(|l| l.starts_with("    ")), "{after:?}");
    assert!(
        after.iter().any(|l| l.contains(
            "io_uring/memmap.c:io_pin_pages: pin_user_pages_fast(FOLL_WRITE|FOLL_LONGTERM)"
        )),
        "{after:?}"
    );
    assert!(out.trim_end().ends_with("183/184 cells agree"), "{out}");

    let o = pfnguard(&[
        "check",
        "--probe",
        p.to_str().expect("path"),
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(
        (j["agree"].as_u64(), j["total"].as_u64()),
        (Some(183), Some(184))
    );
    assert_eq!(j["disagreements"][0]["probe"], "EOPNOTSUPP");
    assert_eq!(j["disagreements"][0]["model"], "ok");
}

#[test]
fn check_rejects_unreadable_or_foreign_reports() {
    assert_usage_error(
        &["check", "--probe", "/nonexistent/probe.json"],
        &["--probe /nonexistent/probe.json: cannot read"],
    );
    let p = tmp("foreign.json");
    std::fs::write(
        &p,
        r#"{"kernel_release": "5.10.0-30-amd64", "exporters": []}"#,
    )
    .expect("write");
    assert_usage_error(
        &["check", "--probe", p.to_str().expect("path")],
        &["\"5.10.0-30-amd64\" matches no modeled kernel"],
    );
    let p = tmp("broken.json");
    std::fs::write(&p, "{\n  \"kernel_release\": 3\n}").expect("write");
    assert_usage_error(
        &["check", "--probe", p.to_str().expect("path")],
        &["broken.json:2:"],
    );
}

/// `probe --create-soft-roce[=IFACE]` is accepted and passed through; an interface name the
/// kernel could not have is refused before anything is created. Without the flag the hint names
/// the option. Only checked on a host without an RDMA device (no uverbs node).
#[test]
fn probe_creates_no_soft_roce_device_unless_asked() {
    let uverbs = std::fs::read_dir("/dev/infiniband").is_ok_and(|d| {
        d.filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().starts_with("uverbs"))
    });
    if uverbs {
        return;
    }
    let ib = || {
        std::fs::read_dir("/sys/class/infiniband")
            .map(|d| d.count())
            .unwrap_or(0)
    };
    let before = ib();
    let rdma = |extra: &[&str]| {
        let mut args = vec!["probe", "--exporter", "memfd", "--format", "json"];
        args.extend_from_slice(extra);
        let o = pfnguard(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        let j: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("probe JSON");
        j["exporters"][0]["ops"]["rdma_reg_mr"]
            .as_str()
            .expect("rdma_reg_mr value")
            .to_owned()
    };
    let plain = rdma(&[]);
    assert!(
        plain.starts_with("unavailable: ENODEV (no RDMA device; create_soft_roce"),
        "{plain}"
    );
    let named = rdma(&["--create-soft-roce=no/such"]);
    assert!(named.starts_with("unavailable: ENODEV ("), "{named}");
    assert_ne!(named, plain);
    assert_eq!(ib(), before, "no RDMA device was left behind");
    assert_usage_error(&["probe", "--create-soft-roce", "eth0"], &["eth0"]);
}
