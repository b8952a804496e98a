//! The built `pfnguard` binary: argument errors, output formats, the JSON shapes, and `check`
//! against the probe reports of Debian's real kernels committed under `reports/` (the same
//! files `pfnguard matrix` marks its confirmed cells from).

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

/// The committed real-kernel probe report of a line (`reports/<release>/`).
fn report(line: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../reports");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("reports/")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
            name.is_some_and(|n| n.starts_with(&format!("{line}.")))
        })
        .collect();
    found.sort();
    let d = found
        .pop()
        .unwrap_or_else(|| panic!("no report of Linux {line} in reports/"));
    d.join("probe.json")
}

const R61: &str = "6.1";
const R612: &str = "6.12";

/// A scratch file in the temporary directory, removed when dropped.
struct Scratch(PathBuf);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl AsRef<Path> for Scratch {
    fn as_ref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn tmp(name: &str) -> Scratch {
    Scratch(std::env::temp_dir().join(format!("pfnguard-cli-{}-{name}", std::process::id())))
}

/// A probe report changed by `f`, written to a scratch file.
fn doctored(dir: &str, name: &str, f: impl FnOnce(&mut serde_json::Value)) -> Scratch {
    let text = std::fs::read_to_string(report(dir)).expect("report");
    let mut v: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    f(&mut v);
    let p = tmp(name);
    std::fs::write(&p, serde_json::to_string_pretty(&v).expect("encode")).expect("write");
    p
}

fn row<'a>(v: &'a mut serde_json::Value, id: &str) -> &'a mut serde_json::Value {
    v["exporters"]
        .as_array_mut()
        .expect("exporters")
        .iter_mut()
        .find(|e| e["exporter"] == id)
        .expect("row")
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
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
        &["--kernel", "Linux 5.4 is not modeled", "5.10 to 7.3"],
    );
    assert_usage_error(&["matrix", "--kernel", "4.19"], &["--kernel", "4.19"]);
    for bad in ["6.1foo", "6.1x", "6.1 ", "6.1.", "x", "6.1.0-"] {
        assert_usage_error(
            &["predict", "--kernel", bad, "--exporter", "vgem"],
            &["--kernel", "is not a kernel"],
        );
    }
}

#[test]
fn kernels_other_than_the_modeled_one_say_what_models_them() {
    for (name, note) in [
        ("6.1", None),
        ("6.6", None),
        ("6.14", None),
        ("6.1.192", None),
        ("6.12.117+deb12-amd64", None),
        ("5.10.0-32-amd64", None),
        ("7.3.4+deb13-amd64", None),
        ("6.1.0-0.deb11.13-amd64", Some("bullseye backport")),
        ("6.12.0-trunk-amd64", Some("--config")),
        ("6.18.44-fc-v1045", Some("not a Debian release")),
        ("6.1.0-10-amd64", Some("6.1.37 to 6.1.38")),
    ] {
        let o = pfnguard(&["predict", "--kernel", name, "--exporter", "vgem"]);
        assert_eq!(o.status.code(), Some(0), "{name}: {}", stderr(&o));
        let err = stderr(&o);
        assert_eq!(err.contains("note:"), note.is_some(), "{name}: {err}");
        if let Some(n) = note {
            assert!(err.contains(n), "{name}: {err}");
        }
    }
    assert_usage_error(
        &[
            "predict",
            "--kernel",
            "6.1.0-999-amd64",
            "--exporter",
            "vgem",
        ],
        &["ABI 999", "name the upstream version"],
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
        &["--policy", "'lax'", "off, warn, require, strict"],
    );
    assert_usage_error(
        &["matrix", "--policy", "off", "--policy", "nope"],
        &["--policy", "'nope'"],
    );
}

#[test]
fn bad_exporter_is_exit_2_naming_the_argument() {
    assert_usage_error(
        &["predict", "--kernel", "6.12", "--exporter", "nvidia"],
        &["--exporter", "`nvidia`", "system-heap", "memfd"],
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
    // A typo is not a missing device.
    assert_usage_error(
        &["probe", "--exporter", "nosuch"],
        &["--exporter", "`nosuch`", "vgem"],
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
    for pages in ["0", "65537", "four"] {
        assert_usage_error(
            &[
                "predict",
                "--kernel",
                "6.12",
                "--exporter",
                "vgem",
                "--pages",
                pages,
            ],
            &["--pages", "from 1 to 65536"],
        );
    }
    // An exporter file sizes its own buffer: --pages beside it is refused, not ignored.
    assert_usage_error(
        &[
            "predict",
            "--kernel",
            "6.12",
            "--exporter-file",
            "examples/exporters/vm_insert_page.toml",
            "--pages",
            "8",
        ],
        &["--pages", "--exporter-file"],
    );
    assert_usage_error(&["check"], &["--probe"]);
}

#[test]
fn every_command_takes_the_formats_the_readme_names() {
    for args in [
        vec!["exporters", "--format", "json"],
        vec!["ops", "--format", "json"],
        vec![
            "predict",
            "--kernel",
            "6.1",
            "--exporter",
            "vgem",
            "--format",
            "json",
        ],
        vec![
            "explain",
            "--kernel",
            "6.1",
            "--exporter",
            "vgem",
            "--op",
            "rss",
            "--format",
            "json",
        ],
        vec!["matrix", "--kernel", "6.1", "--format", "json"],
    ] {
        let o = pfnguard(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        serde_json::from_str::<serde_json::Value>(&stdout(&o))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    }
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&pfnguard(&["ops", "--format", "json"]))).expect("JSON");
    assert_eq!(v.as_array().map(Vec::len), Some(24));
    assert_eq!(v[2]["op"], "mmap_private");
    assert_eq!(v[2]["needs"], "mmap_shared");
    // Markdown is the matrix's alone.
    assert_usage_error(
        &[
            "predict",
            "--kernel",
            "6.1",
            "--exporter",
            "vgem",
            "--format",
            "markdown",
        ],
        &["--format", "'markdown'"],
    );
    assert_usage_error(
        &["check", "--probe", "x", "--format", "markdown"],
        &["--format"],
    );
}

#[test]
fn bad_exporter_file_is_exit_2_with_file_line_and_key() {
    let p = tmp("bad-pages.toml");
    std::fs::write(&p, "name = \"x\"\npages = 0\ninsert = \"vm_insert_page\"\nat = \"mmap\"\nmemory = \"driver-pages\"\n").expect("write");
    let ps = path(&p);
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
fn predict_json_has_the_documented_keys() {
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
    assert_eq!(
        keys,
        [
            "detail",
            "exporter",
            "gup_struct_pages",
            "kernel",
            "ops",
            "policy",
            "warned",
            "warned_at",
            "warnings"
        ]
    );
    assert_eq!(v["kernel"], "6.12");
    assert_eq!(v["exporter"], "rockchip");
    assert_eq!(v["policy"], "off");
    let ops = v["ops"].as_object().expect("ops");
    assert_eq!(ops.len(), 24);
    assert_eq!(ops["vmflags"], "rd wr sh mr mw me ms io de dd sd mm");
    assert_eq!(ops["io_uring_register"], "ok");
    assert_eq!(ops["process_vm_readv"], "EFAULT");
    assert_eq!(v["detail"]["config"], "every modeled option built");
    assert!(v["detail"].get("not_built").is_none(), "{v}");
    // Debian's amd64 build has no rockchip driver: the export is unavailable, naming the option.
    let o = pfnguard(&[
        "predict",
        "--kernel",
        "6.12.117+deb13-amd64",
        "--exporter",
        "rockchip",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let d: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(d["detail"]["not_built"], "CONFIG_DRM_ROCKCHIP is not set");
    assert!(
        d["ops"]["export"]
            .as_str()
            .is_some_and(|e| e.starts_with("unavailable") && e.contains("CONFIG_DRM_ROCKCHIP")),
        "{d}"
    );
    // No warnings under `off`: the key is there, empty.
    assert_eq!(v["warnings"], serde_json::json!([]));
    // rockchip's vm_map_pages() hands its pages to every GUP user that reaches them.
    let gup = v["gup_struct_pages"].as_array().expect("gup_struct_pages");
    assert!(gup.contains(&"io_uring_register".into()), "{gup:?}");
    assert!(!gup.contains(&"process_vm_readv".into()), "{gup:?}");

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
        w[0].as_str().unwrap_or_default().contains(
            "dma-buf: exporter rockchip set up a mapping without VM_PFNMAP or with VM_MIXEDMAP"
        ),
        "{w:?}"
    );
    // Every op maps the buffer first, so every op warns, at the check's one WARN_ONCE site.
    let at = v["warned_at"].as_object().expect("warned_at");
    assert_eq!(
        at.len(),
        v["ops"].as_object().expect("ops").len() - 1,
        "{at:?}"
    );
    assert!(!at.contains_key("export"), "{at:?}");
    assert_eq!(
        at["mmap_shared"],
        serde_json::json!(["drivers/dma-buf/dma-buf.c:dma_buf_mmap_exporter"])
    );
}

#[test]
fn hugetlb_buffers_take_any_size() {
    // The hugetlb memfd behind udmabuf is sized up to whole huge pages, as userspace must.
    let o = pfnguard(&[
        "predict",
        "--kernel",
        "6.12",
        "--exporter",
        "udmabuf-hugetlb",
        "--pages",
        "513",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(v["ops"]["export"], "ok");
    assert_eq!(v["ops"]["mmap_shared"], "ok");
    let o = pfnguard(&[
        "explain",
        "--kernel",
        "6.12",
        "--exporter",
        "udmabuf-hugetlb",
        "--pages",
        "513",
        "--op",
        "export",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("udmabuf-hugetlb (513 page(s)) on Linux 6.12"),
        "{}",
        stdout(&o)
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
            "vivid-vmalloc (4 page(s)) on Linux 6.1 (6.1.y), every modeled option built, policy off: io_uring_register = EOPNOTSUPP"
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
    assert!(v["gup_struct_pages"].as_u64().is_some_and(|n| n > 0), "{v}");
    assert!(v["steps"].as_array().is_some_and(|s| !s.is_empty()));
}

#[test]
fn explain_of_a_large_buffer_stays_bounded() {
    let o = pfnguard(&[
        "explain",
        "--kernel",
        "6.12",
        "--exporter",
        "memfd",
        "--pages",
        "65536",
        "--op",
        "mmap_shared",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.lines().count() < 1100, "{} lines", out.lines().count());
    assert!(out.contains("step(s) left out"), "{out}");
}

#[test]
fn output_into_a_closed_pipe_exits_cleanly() {
    let bin = env!("CARGO_BIN_EXE_pfnguard");
    for cmd in [
        "\"$0\" matrix | head -1",
        "\"$0\" matrix --format json | head -1",
        "\"$0\" explain --kernel 6.12 --exporter memfd --pages 4096 --op mmap_shared | head -1",
    ] {
        let o = Command::new("bash")
            .args(["-c", &format!("set -o pipefail; {cmd}"), bin])
            .output()
            .expect("bash");
        assert_eq!(o.status.code(), Some(0), "{cmd}: {}", stderr(&o));
        assert!(stderr(&o).is_empty(), "{cmd}: {}", stderr(&o));
        assert_eq!(stdout(&o).lines().count(), 1);
    }
}

#[test]
fn matrix_leads_with_the_verdict_and_keeps_to_120_columns() {
    let o = pfnguard(&["matrix"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Every line, runs of lines with the same rows shown once under their range.
    let every_line = stdout(&o);
    assert!(every_line.starts_with("Linux 5.10"), "{every_line}");
    assert!(
        every_line.contains(" – 7.3: which exporters") || every_line.contains("Linux 7.3 (7.3.y)"),
        "{every_line}"
    );
    let o = pfnguard(&["matrix", "--policy", "off", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let rows = rows.as_array().expect("rows");
    for line in ["5.10", "6.6", "6.14", "7.3"] {
        assert!(rows.iter().any(|r| r["kernel"] == line), "{line}");
    }
    assert_eq!(rows.len(), 34 * pfnguard_report::ExporterId::ALL.len());
    let o = pfnguard(&["matrix", "--kernel", "6.1", "--kernel", "6.12"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.starts_with(
            "Linux 6.1 (6.1.y): which exporters hand struct pages to get_user_pages (policy off)"
        ),
        "{out}"
    );
    let long: Vec<&str> = out.lines().filter(|l| l.chars().count() > 120).collect();
    assert!(long.is_empty(), "{long:?}");
    // One verdict line per exporter: vivid-vmalloc's pages reach O_DIRECT; strict closes it.
    let vivid = out
        .lines()
        .find(|l| l.starts_with("vivid-vmalloc "))
        .expect("verdict");
    assert!(
        vivid.contains("STRUCT PAGES to GUP via odirect_read"),
        "{vivid}"
    );
    let system = out
        .lines()
        .find(|l| l.starts_with("system-heap "))
        .expect("verdict");
    assert!(system.contains("no struct pages reach GUP"), "{system}");
    assert!(out.contains("strict: closes it"), "{out}");
    // The legend, and cells a real kernel confirmed marked apart from model-only ones.
    assert!(out.contains("Legend:"), "{out}");
    let vgem = out
        .lines()
        .find(|l| l.starts_with("vgem ") && l.contains("EINVAL"))
        .expect("vgem row");
    assert!(vgem.contains("ok+"), "{vgem}");
    let rockchip = out
        .lines()
        .find(|l| l.starts_with("rockchip ") && l.contains("cow"))
        .expect("rockchip row");
    assert!(!rockchip.contains('+'), "{rockchip}");
}

#[test]
fn matrix_shows_warnings_and_changed_cells() {
    let o = pfnguard(&[
        "matrix", "--kernel", "6.12", "--policy", "off", "--policy", "warn", "--policy", "require",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("Linux 6.12 (6.12.y), policy warn, cells changed from off marked *"),
        "{out}"
    );
    // rockchip's VM_IO mapping makes the v3 check WARN on every op under warn.
    let warn_table = out.split("policy warn, cells").nth(1).expect("warn table");
    let rockchip = warn_table
        .lines()
        .find(|l| l.starts_with("rockchip "))
        .expect("rockchip row");
    assert!(rockchip.contains("ok!"), "{rockchip}");
    let require_table = out
        .split("policy require, cells")
        .nth(1)
        .expect("require table");
    let vivid = require_table
        .lines()
        .find(|l| l.starts_with("vivid-vmalloc "))
        .expect("vivid row");
    assert!(vivid.contains("*EINVAL"), "{vivid}");

    let o = pfnguard(&[
        "matrix", "--kernel", "6.12", "--policy", "off", "--policy", "require", "--format",
        "markdown",
    ]);
    let out = stdout(&o);
    assert!(
        out.contains("### Linux 6.12 (6.12.y), policy require, cells changed from off marked *"),
        "{out}"
    );
    let row = out
        .lines()
        .filter(|l| l.starts_with("| vivid-vmalloc |"))
        .nth(1)
        .expect("require row");
    assert!(
        row.starts_with("| vivid-vmalloc | ok | *EINVAL! | *skipped |"),
        "{row}"
    );
}

#[test]
fn check_agrees_with_the_real_kernels_counting_skips_apart() {
    let o = pfnguard(&["check", "--probe", path(&report(R612))]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("6.12.117+deb12-amd64 (Linux 6.12.117), checked against the model of Linux 6.12.117 (Debian amd64 config, trixie and later)"),
        "{out}"
    );
    assert!(
        out.contains("264/264 compared cells agree; 0 skipped on both sides"),
        "{out}"
    );
    assert!(!out.contains("DISAGREE"), "{out}");
    // The scenario library ran there too: every scenario step both measured agrees, the
    // skipped ones counted apart.
    assert!(
        out.contains("scenarios: 1897/1897 compared scenario-step cells agree (19 scenarios, 198 interleavings); 112 skipped on either side, 0 missing"),
        "{out}"
    );
    // The harness records the package the kernel came from; check names it.
    assert!(
        out.contains("package: linux-image-6.12.117+deb12-amd64-unsigned 6.12.117-"),
        "{out}"
    );

    // 6.1: bochs's export fails with ENOSYS on both sides, and so does qxl's dma-buf mmap; the 23
    // and 22 ops after them are skipped on both sides, counted apart and not as agreement.
    let o = pfnguard(&["check", "--probe", path(&report(R61)), "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(j["result"], "every compared cell agrees");
    let k = &j["kernels"][0];
    assert_eq!(k["compared"], 147);
    assert_eq!(k["agree"], 147);
    assert_eq!(k["skipped_both"], 45);
    // The probe read the upstream version from /proc/version: the model is that kernel's.
    assert_eq!(k["kernel_version"], "6.1.192");
    assert_eq!(k["model"], "6.1.192 (Debian amd64 config, bookworm)");
    assert!(k.get("model_note").is_none(), "{k}");
}

#[test]
fn check_of_nothing_fails() {
    let p = tmp("empty.json");
    std::fs::write(
        &p,
        r#"{"kernel_release": "6.12.117+deb12-amd64", "exporters": []}"#,
    )
    .expect("write");
    let o = pfnguard(&["check", "--probe", path(&p)]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("nothing compared"), "{}", stdout(&o));

    let p = tmp("unavailable.json");
    std::fs::write(
        &p,
        r#"{"kernel_release": "6.12.117+deb12-amd64", "exporters": [
            {"exporter": "vgem", "status": "unavailable: /dev/dri/card*: ENOENT"}]}"#,
    )
    .expect("write");
    let o = pfnguard(&["check", "--probe", path(&p)]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("not compared: vgem: unavailable: /dev/dri/card*: ENOENT"),
        "{out}"
    );
    assert!(out.contains("nothing compared"), "{out}");
}

#[test]
fn check_fails_on_missing_ops() {
    let p = doctored(R612, "missing-op.json", |v| {
        row(v, "vgem")["ops"]
            .as_object_mut()
            .expect("ops")
            .remove("pagemap");
    });
    let o = pfnguard(&["check", "--probe", path(&p)]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("MISSING vgem pagemap"), "{out}");
    assert!(
        out.contains(
            "263/263 compared cells agree; 0 skipped on both sides, 0 not measured, 1 missing"
        ),
        "{out}"
    );

    let p = doctored(R612, "empty-ops.json", |v| {
        row(v, "system-heap")["ops"] = serde_json::json!({});
    });
    let o = pfnguard(&["check", "--probe", path(&p)]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("24 missing"), "{}", stdout(&o));
}

#[test]
fn check_refuses_duplicates_unknown_ids_and_bad_values() {
    let p = doctored(R612, "duplicate.json", |v| {
        let first = v["exporters"][0].clone();
        v["exporters"]
            .as_array_mut()
            .expect("exporters")
            .push(first);
    });
    assert_usage_error(
        &["check", "--probe", path(&p)],
        &["appears twice", "exporters[0]"],
    );

    let p = doctored(R612, "unknown.json", |v| {
        v["exporters"][1]["exporter"] = "nvidia".into();
    });
    assert_usage_error(
        &["check", "--probe", path(&p)],
        &["exporters[1].exporter", "`nvidia`"],
    );

    let p = doctored(R612, "bad-value.json", |v| {
        row(v, "vgem")["ops"]["rss"] = "ok".into();
    });
    assert_usage_error(
        &["check", "--probe", path(&p)],
        &["(vgem)", "op rss", "`ok`"],
    );

    let p = doctored(R612, "garbage-value.json", |v| {
        row(v, "vgem")["ops"]["rss"] = "lots".into();
    });
    assert_usage_error(
        &["check", "--probe", path(&p)],
        &["garbage-value.json:", "`lots`"],
    );

    let p = doctored(R612, "skipped-without-cause.json", |v| {
        row(v, "vgem")["ops"]["mlock"] = "skipped".into();
    });
    assert_usage_error(&["check", "--probe", path(&p)], &["op mlock is `skipped`"]);
}

#[test]
fn check_bounds_and_rounds_the_buffer_size_like_the_kernel() {
    let p = doctored(R612, "huge.json", |v| {
        row(v, "vgem")["detail"]["size"] = serde_json::json!(u64::MAX);
    });
    assert_usage_error(
        &["check", "--probe", path(&p)],
        &["detail.size", "1 to 65536 pages"],
    );
    // The probe maps the whole pages of a buffer (Buffer::map_len rounds down), so a report of
    // 4096 + 100 bytes was probed on one page: a one-page system-heap buffer is whole-VMA
    // remapped (`ar`, ok:cow), a two-page one is not, so rounding up would disagree.
    let one_page = pfnguard(&[
        "predict",
        "--kernel",
        "6.12",
        "--exporter",
        "system-heap",
        "--pages",
        "1",
        "--format",
        "json",
    ]);
    let one: serde_json::Value = serde_json::from_str(&stdout(&one_page)).expect("JSON");
    let p = doctored(R612, "ragged.json", |v| {
        let r = row(v, "system-heap");
        r["ops"] = one["ops"].clone();
        r["detail"]["size"] = serde_json::json!(4096 + 100);
    });
    let o = pfnguard(&["check", "--probe", path(&p)]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

#[test]
fn check_reports_a_doctored_cell_with_its_trace() {
    let p = doctored(R612, "doctored.json", |v| {
        let r = row(v, "vivid-vmalloc");
        assert_eq!(r["ops"]["io_uring_register"], "ok");
        r["ops"]["io_uring_register"] = "EOPNOTSUPP".into();
    });
    let o = pfnguard(&["check", "--probe", path(&p)]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("DISAGREE vivid-vmalloc io_uring_register: kernel EOPNOTSUPP / model ok"),
        "{out}"
    );
    assert_eq!(out.matches("DISAGREE").count(), 1, "{out}");
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
    assert!(out.contains("263/264 compared cells agree"), "{out}");

    let o = pfnguard(&["check", "--probe", path(&p), "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(j["result"], "cells disagree");
    assert_eq!(
        (
            j["totals"]["agree"].as_u64(),
            j["totals"]["compared"].as_u64()
        ),
        (Some(263), Some(264))
    );
    assert_eq!(j["kernels"][0]["disagreements"][0]["kernel"], "EOPNOTSUPP");
    assert_eq!(j["kernels"][0]["disagreements"][0]["model"], "ok");
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
        r#"{"kernel_release": "4.19.0-27-amd64", "exporters": []}"#,
    )
    .expect("write");
    assert_usage_error(
        &["check", "--probe", path(&p)],
        &[
            "\"4.19.0-27-amd64\"",
            "Linux 4.19.0 is not modeled",
            "5.10 to 7.3",
        ],
    );
    let p = tmp("broken.json");
    std::fs::write(&p, "{\n  \"kernel_release\": 3\n}").expect("write");
    assert_usage_error(&["check", "--probe", path(&p)], &["broken.json:2:"]);
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

#[test]
fn check_counts_a_cell_once_across_reports_and_reads_bounded_input() {
    let p = report(R612);
    assert_usage_error(
        &["check", "--probe", path(&p), "--probe", path(&p)],
        &["is also in --probe"],
    );
    // An op given twice in a row is refused, not resolved by whichever came last.
    let text = std::fs::read_to_string(&p).expect("report");
    let twice = text.replacen(
        "\"vmsplice\": \"EFAULT\",",
        "\"vmsplice\": \"ok\", \"vmsplice\": \"EFAULT\",",
        1,
    );
    assert_ne!(twice, text);
    let t = tmp("op-twice.json");
    std::fs::write(&t, twice).expect("write");
    assert_usage_error(
        &["check", "--probe", path(&t)],
        &["op vmsplice given twice"],
    );
    assert_usage_error(
        &["check", "--probe", "/dev/zero"],
        &["--probe /dev/zero", "larger than"],
    );
    assert_usage_error(
        &["predict", "--kernel", "6.1", "--exporter-file", "/dev/zero"],
        &["/dev/zero", "larger than"],
    );
}

#[test]
fn matrix_refuses_two_exporters_of_one_name() {
    let f = "examples/exporters/vm_insert_page.toml";
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(f);
    assert_usage_error(
        &[
            "matrix",
            "--exporter-file",
            path(&file),
            "--exporter-file",
            path(&file),
        ],
        &["is already in the matrix"],
    );
}

#[test]
fn kernels_of_other_architectures_are_not_modeled() {
    assert_usage_error(
        &[
            "predict",
            "--kernel",
            "6.12.117+deb12-arm64",
            "--exporter",
            "vgem",
        ],
        &["--kernel", "arm64", "x86-64"],
    );
}

/// `--kmsg` is opt-in and its help says what it changes on the host; without it the report
/// has no `warned_at` and no kernel log details.
#[test]
fn probe_reads_the_kernel_log_only_when_asked() {
    let o = pfnguard(&["probe", "--help"]);
    let help = stdout(&o);
    for needle in [
        "--kmsg",
        "changes host state",
        "/sys/kernel/debug/clear_warn_once",
        "pfnguard: EXPORTER OP",
        "warned_at",
    ] {
        assert!(help.contains(needle), "{needle}: {help}");
    }
    let o = pfnguard(&["probe", "--exporter", "memfd", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("probe JSON");
    assert!(j.get("kmsg").is_none(), "{j}");
    let row = &j["exporters"][0];
    assert!(row.get("warned_at").is_none(), "{row}");
    let detail = row["detail"].as_object().expect("detail");
    assert!(detail.keys().all(|k| !k.starts_with("kmsg")), "{row}");
    assert!(!stderr(&o).contains("--kmsg"), "{}", stderr(&o));
}

#[test]
fn probe_odirect_help_says_what_it_does_to_the_target() {
    let o = pfnguard(&["probe", "--help"]);
    assert!(
        stdout(&o).contains("writes back the bytes it read there first"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn history_names_the_fact_that_changed_each_value() {
    let o = pfnguard(&[
        "history",
        "--exporter",
        "udmabuf-shmem",
        "--op",
        "rdma_reg_mr",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("Linux 5.10 to 7.3"), "{out}");
    assert!(out.contains("changed in 6.11"), "{out}");
    assert!(out.contains("udmabuf-pfnmap (since 6.11"), "{out}");
    assert!(
        out.contains("drivers/dma-buf/udmabuf.c:udmabuf_vm_fault"),
        "{out}"
    );
    let o = pfnguard(&["history", "--exporter", "memfd", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    assert_eq!(v["ops"].as_array().map(Vec::len), Some(24));
    assert_usage_error(
        &["history", "--exporter", "nosuch"],
        &["--exporter", "nosuch"],
    );
    assert_usage_error(
        &["history", "--exporter", "vgem", "--op", "nosuch"],
        &["--op", "nosuch"],
    );
    let cfg = tmp("bad.config");
    std::fs::write(&cfg, "CONFIG_UDMABUF=y\nnonsense\n").expect("write");
    let o = pfnguard(&["history", "--exporter", "vgem", "--config", path(&cfg)]);
    assert_ne!(o.status.code(), Some(0));
    assert!(stderr(&o).contains("bad.config:2:"), "{}", stderr(&o));
    // A .config without udmabuf: the exporter is unavailable on every line.
    std::fs::write(&cfg, "# CONFIG_UDMABUF is not set\nCONFIG_DRM_VGEM=m\n").expect("write");
    let o = pfnguard(&[
        "history",
        "--exporter",
        "udmabuf-shmem",
        "--op",
        "export",
        "--config",
        path(&cfg),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("CONFIG_UDMABUF is not set"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn facts_lists_the_changes_and_those_in_force() {
    let o = pfnguard(&["facts", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let all: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
    let all = all.as_array().expect("facts");
    assert!(all.iter().any(|f| f["fact"] == "udmabuf-pfnmap"));
    for f in all {
        for key in ["fact", "summary", "since", "before", "after", "evidence"] {
            assert!(f[key].is_string(), "{key}: {f}");
        }
    }
    let at = |k: &str| -> Vec<String> {
        let o = pfnguard(&["facts", "--kernel", k, "--format", "json"]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("json");
        v.as_array()
            .expect("facts")
            .iter()
            .map(|f| f["fact"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    // 5.10.262 has only the stable backports of later changes.
    for f in at("5.10.0-46-amd64") {
        let info = all.iter().find(|i| i["fact"] == f).expect("listed");
        assert!(
            info["backports"].as_array().is_some_and(|b| b
                .iter()
                .any(|v| v.as_str().is_some_and(|v| v.starts_with("5.10.")))),
            "{f}"
        );
    }
    assert!(at("5.10.0").is_empty());
    assert!(!at("6.10").contains(&"udmabuf-pfnmap".to_owned()));
    assert!(at("6.11").contains(&"udmabuf-pfnmap".to_owned()));
    assert_eq!(at("7.3").len(), all.len());
    assert_usage_error(&["facts", "--kernel", "8.1"], &["--kernel", "5.10 to 7.3"]);
}

const R73: &str = "7.3";

/// The model's `warned_at` of one exporter under a policy, as `predict` prints it.
fn predicted_warnings(kernel: &str, policy: &str, exporter: &str) -> serde_json::Value {
    let o = pfnguard(&[
        "predict",
        "--kernel",
        kernel,
        "--policy",
        policy,
        "--exporter",
        exporter,
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    v["warned_at"].clone()
}

#[test]
fn check_runs_the_policy_the_kernel_ran() {
    // A kernel that says it refused nothing at `require` disagrees where the model refuses:
    // vivid's vmalloc buffers are VM_MIXEDMAP (remap_vmalloc_range -> vm_insert_page).
    let p = doctored(R73, "require.json", |v| v["mmap_check"] = "require".into());
    let o = pfnguard(&["check", "--probe", path(&p)]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("policy: require (the kernel's dma_buf.mmap_check)"),
        "{out}"
    );
    let disagree: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("DISAGREE") && !l.starts_with("DISAGREE scenario"))
        .collect();
    assert!(
        disagree.contains(&"DISAGREE vivid-vmalloc mmap_shared: kernel ok / model EINVAL"),
        "{out}"
    );
    assert!(
        disagree.iter().all(|l| l.contains("vivid-vmalloc")),
        "{out}"
    );
    // The scenario steps the kernel ran at `off` disagree the same way: each scenario on
    // vivid-vmalloc has its mmap refused by the model, and nothing else disagrees first.
    let scenario: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("DISAGREE scenario"))
        .collect();
    assert!(!scenario.is_empty(), "{out}");
    assert!(
        scenario
            .iter()
            .all(|l| l.contains(":mmap") && l.ends_with("mmap: kernel ok / model EINVAL")),
        "{out}"
    );
    assert!(
        scenario
            .iter()
            .any(|l| l.starts_with("DISAGREE scenario vb2-dontneed-sigbus [")),
        "{out}"
    );

    let p = doctored(R73, "bad-level.json", |v| v["mmap_check"] = "loud".into());
    let o = pfnguard(&["check", "--probe", path(&p)]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("--probe {}: mmap_check: ", path(&p))),
        "{err}"
    );
    assert!(err.contains("`loud`"), "{err}");
}

#[test]
fn check_compares_the_kernels_warnings_when_the_log_was_read() {
    let kernel = "7.3.4+deb13-amd64";
    // At `warn` the model warns on every op of vivid-vmalloc after its export; a log that
    // shows no warning disagrees on exactly those cells.
    let silent = doctored(R73, "warn-silent.json", |v| {
        v["mmap_check"] = "warn".into();
        v["kmsg"] = true.into();
    });
    let o = pfnguard(&["check", "--probe", path(&silent), "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let d = j["kernels"][0]["disagreements"].as_array().expect("list");
    let expected = predicted_warnings(kernel, "warn", "vivid-vmalloc");
    let warned = expected.as_object().expect("warned_at");
    assert!(!warned.is_empty(), "{expected}");
    assert_eq!(d.len(), warned.len(), "{d:?}");
    for x in d {
        assert_eq!(x["exporter"], "vivid-vmalloc", "{x}");
        assert_eq!(x["kernel"], x["model"], "{x}");
        assert_eq!(x["kernel_warnings"], serde_json::json!([]), "{x}");
        assert_eq!(
            x["model_warnings"],
            serde_json::json!(["drivers/dma-buf/dma-buf.c:dma_buf_mmap_exporter"]),
            "{x}"
        );
    }

    // The same log with those warnings agrees, and counts the cells that warned.
    let logged = doctored(R73, "warn-logged.json", |v| {
        v["mmap_check"] = "warn".into();
        v["kmsg"] = true.into();
        row(v, "vivid-vmalloc")["warned_at"] = expected.clone();
    });
    let o = pfnguard(&["check", "--probe", path(&logged), "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    assert_eq!(j["kernels"][0]["cells_with_warnings"], warned.len());
    assert_eq!(j["kernels"][0]["warnings_compared"], true);

    // A warning the model does not predict disagrees, even where the outcome agrees.
    let extra = doctored(R73, "warn-extra.json", |v| {
        v["mmap_check"] = "warn".into();
        v["kmsg"] = true.into();
        row(v, "vivid-vmalloc")["warned_at"] = expected.clone();
        row(v, "vgem")["warned_at"] =
            serde_json::json!({"mmap_shared": ["mm/memory.c:vm_pfnmap_insert_refused"]});
    });
    let o = pfnguard(&["check", "--probe", path(&extra)]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("DISAGREE vgem mmap_shared: kernel ok / model ok"),
        "{out}"
    );
    assert!(
        out.contains("  warnings: kernel mm/memory.c:vm_pfnmap_insert_refused / model none"),
        "{out}"
    );
}

#[test]
fn check_against_another_kernel_compares_the_cells_both_measured() {
    let r = report(R73);
    let o = pfnguard(&["check", "--probe", path(&r), "--against", path(&r)]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains(
            "264/264 cells both kernels measured are equal; 0 skipped on both, 0 not measured"
        ),
        "{}",
        stdout(&o)
    );
    // One changed cell and one exporter the other kernel lacks.
    let other = doctored(R73, "other.json", |v| {
        row(v, "vgem")["ops"]["vmsplice"] = "ok".into();
        let sys = row(v, "system-heap");
        sys["status"] = "unavailable: ENOENT".into();
        sys["ops"] = serde_json::json!({});
    });
    let o = pfnguard(&["check", "--probe", path(&r), "--against", path(&other)]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("DIFFERS vgem vmsplice: here EFAULT / there ok"),
        "{out}"
    );
    assert!(out.contains("not measured on both: system-heap export: exporter: probed here, unavailable: ENOENT there"), "{out}");
    assert!(
        out.contains("cells differ from the --against kernel"),
        "{out}"
    );
}

fn scenarios_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

#[test]
fn run_checks_the_scenario_library() {
    let dir = scenarios_dir();
    let o = pfnguard(&["run", path(&dir)]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("0 differ"), "{out}");
    assert!(
        out.contains("ok      udmabuf-longterm-pin-vmf-page [6.12 off] gup_struct_page never"),
        "{out}"
    );
    // Byte for byte the same on a second run, times on stderr only.
    let again = pfnguard(&["run", path(&dir)]);
    assert_eq!(stdout(&again), out);
    let j = pfnguard(&["run", path(&dir), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).expect("JSON");
    assert!(v.as_array().is_some_and(|a| a.len() >= 10));
}

#[test]
fn run_exits_1_when_a_verdict_differs_and_2_on_a_bad_scenario() {
    let differs = tmp("differs.toml");
    std::fs::write(
        &differs,
        "kernel = \"6.12\"\nexporter = \"vivid-vmalloc\"\n[[actor]]\nname = \"p\"\nsteps = [\"mmap\", \"touch 0\", \"gup_get 0\"]\n[expect]\nleak = \"never\"\n",
    )
    .expect("write");
    let o = pfnguard(&["run", path(differs.as_ref())]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    assert!(stdout(&o).contains("DIFFERS"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("gup_get 0"),
        "the witness: {}",
        stdout(&o)
    );

    let bad = tmp("bad.toml");
    std::fs::write(
        &bad,
        "kernel = \"6.12\"\nexporter = \"vgem\"\n[[actor]]\nname = \"p\"\nsteps = [\"mmap\", \"touch x\"]\n",
    )
    .expect("write");
    let o = pfnguard(&["run", path(bad.as_ref())]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("bad.toml:5: key `actor.steps`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn explore_lists_reachable_properties_with_witnesses() {
    let o = pfnguard(&[
        "explore",
        "--exporter",
        "udmabuf-shmem",
        "--kernel",
        "6.1",
        "--depth",
        "3",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("gup_struct_page reachable in 2 step(s)"),
        "{out}"
    );
    assert!(out.contains("mm/gup.c:get_user_pages_fast"), "{out}");
    let j = pfnguard(&[
        "explore",
        "--exporter",
        "udmabuf-shmem",
        "--kernel",
        "7.3",
        "--depth",
        "3",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).expect("JSON");
    let gup = v["properties"]
        .as_array()
        .expect("properties")
        .iter()
        .find(|p| p["property"] == "gup_struct_page")
        .expect("gup_struct_page");
    // udmabuf is VM_PFNMAP from 6.11, and KVM takes no reference on VM_PFNMAP pfns from 6.13.
    assert_eq!(gup["reachable"], false);
    assert_eq!(v["policy"], "off");
    assert_usage_error(
        &["explore", "--exporter", "nvidia", "--kernel", "6.1"],
        &["nvidia"],
    );
}

/// `explore --all`: every case explored, lines with the same answer merged into ranges, the
/// policies side by side; the JSON has one row per exporter, kernel and policy.
#[test]
fn explore_all_tabulates_exporters_kernels_and_policies() {
    let args = [
        "explore",
        "--all",
        "--exporter",
        "udmabuf-shmem",
        "--kernel",
        "6.1",
        "--kernel",
        "6.10",
        "--kernel",
        "7.3",
        "--policy",
        "off",
        "--policy",
        "require",
        "--depth",
        "3",
        "--no-importer",
    ];
    let o = pfnguard(&args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    // Up to 6.10 udmabuf's ->fault hands out vmf->page (GUP takes it); require refuses that
    // mapping; 7.3 maps VM_PFNMAP and KVM takes no reference.
    assert!(
        out.contains("udmabuf-shmem  off      6.1 – 6.10  gup_struct_page"),
        "{out}"
    );
    assert!(
        out.contains("udmabuf-shmem  off      7.3         -"),
        "{out}"
    );
    assert!(
        out.contains("udmabuf-shmem  require  6.1 – 6.10  warn"),
        "{out}"
    );
    let md = pfnguard(&[&args[..], &["--format", "markdown"]].concat());
    assert!(
        stdout(&md).contains(
            "| `udmabuf-shmem` | 6.1 – 6.10: gup leak<br>7.3: - | 6.1 – 6.10: warn<br>7.3: - |"
        ),
        "{}",
        stdout(&md)
    );
    let j = pfnguard(&[&args[..], &["--format", "json"]].concat());
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).expect("JSON");
    let rows = v["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 6, "1 exporter x 3 kernels x 2 policies");
    assert_eq!(rows[0]["kernel"], "6.1");
    assert_eq!(rows[0]["policy"], "off");
    assert_eq!(rows[0]["status"], "explored");
    assert_eq!(rows[0]["reachable"][0]["property"], "gup_struct_page");
    assert_eq!(rows[0]["reachable"][0]["steps"], 2);
    // One case without --all, and markdown only with it.
    let two = pfnguard(&[
        "explore",
        "--exporter",
        "vgem",
        "--kernel",
        "6.1",
        "--kernel",
        "7.3",
    ]);
    assert_eq!(two.status.code(), Some(2));
    assert!(
        stderr(&two).contains("--kernel given 2 times"),
        "{}",
        stderr(&two)
    );
    let md1 = pfnguard(&[
        "explore",
        "--exporter",
        "vgem",
        "--kernel",
        "6.1",
        "--format",
        "markdown",
    ]);
    assert_eq!(md1.status.code(), Some(2));
    assert!(
        stderr(&md1).contains("markdown is for the table of --all"),
        "{}",
        stderr(&md1)
    );
}

/// A scenario for the report's scenario section: vgem on the 6.12 line, every step `ok` on
/// the model in the order below.
const SCENARIO: &str = r#"name = "two-maps"
source = "test"
kernel = "6.12"
exporter = "vgem"
[[actor]]
name = "p"
steps = ["mmap", "touch 0", "munmap"]
[[actor]]
name = "q"
steps = ["mmap", "read 0"]
"#;

/// The 6.12 report with a scenario section of one run of SCENARIO (order p p q q p), the
/// kernel's values `values`, changed by `f`.
fn with_scenarios(
    name: &str,
    values: [&str; 5],
    f: impl FnOnce(&mut serde_json::Value),
) -> Scratch {
    doctored(R612, name, |v| {
        let order = ["p:mmap", "p:touch 0", "q:mmap", "q:read 0", "p:munmap"];
        let who = [("p", 1), ("p", 2), ("q", 1), ("q", 2), ("p", 3)];
        let steps: Vec<serde_json::Value> = who
            .iter()
            .zip(order)
            .zip(values)
            .map(|(((a, n), o), val)| {
                serde_json::json!({"actor": a, "step": n, "text": o.split_once(':').unwrap().1, "value": val})
            })
            .collect();
        v["scenarios"] = serde_json::json!({
            "cap": 24,
            "runs": [
                {"scenario": "two-maps", "exporter": "vgem", "definition": SCENARIO, "total": "10",
                 "interleavings": [{"order": order, "steps": steps}]},
                {"scenario": "gup", "exporter": "vgem", "status": "skipped: not observable: gup_pin"}
            ]
        });
        f(v);
    })
}

#[test]
fn check_compares_scenario_steps_with_the_model() {
    let p = with_scenarios("sc-agree.json", ["ok"; 5], |_| {});
    let o = pfnguard(&["check", "--probe", path(&p), "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let s = &j["kernels"][0]["scenarios"];
    assert_eq!(s["compared"], 5, "{s}");
    assert_eq!(s["agree"], 5);
    assert_eq!(s["skipped"], 0);
    assert_eq!(s["not_compared"][0]["scenario"], "gup");
    assert_eq!(j["totals"]["scenario_agree"], 5);
    // The op cells are counted as before, apart from the scenario cells.
    assert_eq!(j["kernels"][0]["compared"], 264);

    // A step the kernel answered differently is a disagreement, named with the interleaving.
    let p = with_scenarios(
        "sc-disagree.json",
        ["ok", "SIGBUS", "ok", "ok", "ok"],
        |_| {},
    );
    let o = pfnguard(&["check", "--probe", path(&p)]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    assert!(
        out.contains("DISAGREE scenario two-maps [p:mmap p:touch 0 q:mmap q:read 0 p:munmap]: p#2 touch 0: kernel SIGBUS / model ok"),
        "{out}"
    );
    assert!(
        out.contains("scenarios: 4/5 compared scenario-step cells agree"),
        "{out}"
    );
    assert!(
        out.starts_with("") && out.contains("scenario steps disagree"),
        "{out}"
    );
}

#[test]
fn check_counts_skipped_and_missing_scenario_steps_apart() {
    // Skipped on the kernel's side: not compared, not agreement.
    let p = with_scenarios(
        "sc-skipped.json",
        ["ok", "ok", "ok", "skipped", "ok"],
        |_| {},
    );
    let o = pfnguard(&["check", "--probe", path(&p), "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    let j: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON");
    let s = &j["kernels"][0]["scenarios"];
    assert_eq!(
        (
            s["compared"].as_u64(),
            s["agree"].as_u64(),
            s["skipped"].as_u64()
        ),
        (Some(4), Some(4), Some(1))
    );

    // A run cut short: the steps it lacks are missing, not compared.
    let p = with_scenarios("sc-cut.json", ["ok"; 5], |v| {
        let il = &mut v["scenarios"]["runs"][0]["interleavings"][0];
        il["steps"].as_array_mut().expect("steps").truncate(3);
        il["cut"] = "the actor died".into();
    });
    let o = pfnguard(&["check", "--probe", path(&p)]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("3/3 compared scenario-step cells agree (1 scenarios, 1 interleavings); 0 skipped on either side, 2 missing"), "{}", stdout(&o));
}

#[test]
fn check_fails_a_scenario_section_that_compares_nothing() {
    let p = with_scenarios("sc-nothing.json", ["skipped"; 5], |_| {});
    let o = pfnguard(&["check", "--probe", path(&p)]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("the scenario section compares nothing"),
        "{}",
        stdout(&o)
    );

    let p = with_scenarios("sc-none-run.json", ["ok"; 5], |v| {
        v["scenarios"]["runs"]
            .as_array_mut()
            .expect("runs")
            .remove(0);
    });
    let o = pfnguard(&["check", "--probe", path(&p)]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));

    // A report without the section checks as before and says so.
    let p = doctored(R61, "sc-absent.json", |v| {
        v.as_object_mut().expect("report").remove("scenarios");
    });
    let o = pfnguard(&["check", "--probe", path(&p)]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("scenarios: not probed"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn check_refuses_a_malformed_scenario_section() {
    let p = with_scenarios(
        "sc-bad-value.json",
        ["ok", "fine", "ok", "ok", "ok"],
        |_| {},
    );
    assert_usage_error(
        &["check", "--probe", path(&p)],
        &["sc-bad-value.json", "`fine`"],
    );

    let p = with_scenarios("sc-bad-order.json", ["ok"; 5], |v| {
        v["scenarios"]["runs"][0]["interleavings"][0]["order"][1] = "p:read 0".into();
    });
    assert_usage_error(
        &["check", "--probe", path(&p)],
        &["scenarios.runs[0].interleavings[0].order[1]", "`touch 0`"],
    );

    let p = with_scenarios("sc-bad-definition.json", ["ok"; 5], |v| {
        v["scenarios"]["runs"][0]["definition"] =
            SCENARIO.replace("\"read 0\"", "\"read x\"").into();
    });
    assert_usage_error(
        &["check", "--probe", path(&p)],
        &["scenarios.runs[0].definition:10", "actor.steps"],
    );
}

#[test]
fn report_writes_the_page_and_names_bad_arguments() {
    let out = tmp("report.html");
    let o = pfnguard(&[
        "report",
        "--kernel",
        "7.3",
        "--policy",
        "off",
        "--witness-depth",
        "2",
        "--out",
        path(out.as_ref()),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let html = std::fs::read_to_string(&out).expect("the page");
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..80]);
    assert!(html.trim_end().ends_with("</html>"));
    assert!(stdout(&o).contains("wrote"), "{}", stdout(&o));
    assert_usage_error(
        &["report", "--kernel", "5.4", "--out", "x.html"],
        &["--kernel"],
    );
    assert_usage_error(&["report"], &["--out"]);
    assert_usage_error(
        &["report", "--kernel", "7.3", "--out", "/no/such/dir/r.html"],
        &["--out /no/such/dir/r.html", "does not exist"],
    );
    assert_usage_error(
        &[
            "report",
            "--kernel",
            "7.3",
            "--explain-kernel",
            "6.1",
            "--out",
            path(out.as_ref()),
        ],
        &["--explain-kernel 6.1"],
    );
    assert_usage_error(
        &[
            "report",
            "--kernel",
            "7.3",
            "--exporter-file",
            "/no/such.toml",
            "--out",
            path(out.as_ref()),
        ],
        &["/no/such.toml"],
    );
}
