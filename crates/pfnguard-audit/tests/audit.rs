//! The audit on the hand-built fixture tree `tests/fixtures/desktop` (see its README).

use std::path::{Path, PathBuf};

use pfnguard_audit::{audit, scan, Audit, Reader, Root, ScanOptions};
use pfnguard_report::OpKey;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/desktop")
}

fn run(root: &Root) -> Audit {
    let r = Reader::new(root, false);
    let s = scan(&r, ScanOptions::default()).expect("scan");
    audit(&s, None)
}

fn proc_row(a: &Audit, pid: u32) -> &pfnguard_audit::ProcessRow {
    a.processes.iter().find(|p| p.pid == pid).expect("pid")
}

#[test]
fn per_process_figures() {
    let a = run(&Root::fixture(&fixture()));
    let pids: Vec<u32> = a.processes.iter().map(|p| p.pid).collect();
    assert_eq!(pids, vec![100, 101, 200]);
    let cam = proc_row(&a, 100);
    assert_eq!((cam.fds, cam.mappings), (2, 1));
    assert_eq!(
        (cam.size_bytes, cam.pss_bytes, cam.rss_bytes),
        (24576, 12288, 0)
    );
    let child = proc_row(&a, 101);
    assert_eq!((child.size_bytes, child.pss_bytes), (16384, 8192));
    let comp = proc_row(&a, 200);
    assert_eq!((comp.fds, comp.mappings), (3, 4));
    assert_eq!(
        (comp.size_bytes, comp.pss_bytes, comp.rss_bytes),
        (24576, 20480, 12288)
    );
    assert_eq!(comp.comm, "compositor");
}

#[test]
fn pss_is_shared_among_holders_and_mappers() {
    let a = run(&Root::fixture(&fixture()));
    let b = |ino| a.buffers.iter().find(|b| b.inode == ino).expect("inode");
    // fork-shared: parent and child hold and map it.
    assert_eq!(b(1001).pids(), vec![100, 101]);
    assert_eq!(b(1001).pss_bytes, 8192);
    // SCM_RIGHTS-shared: the sender holds it, the receiver holds and maps it.
    assert_eq!(b(1002).pids(), vec![100, 200]);
    assert_eq!(b(1002).fd_refs.len(), 2);
    assert_eq!(b(1002).map_refs.len(), 1);
    assert_eq!(b(1002).pss_bytes, 4096);
    // Mapped with no fd left: size and exporter from bufinfo.
    assert_eq!(b(1004).exporter, "drm");
    assert_eq!(b(1004).size_bytes, 4096);
    assert!(b(1004).fd_refs.is_empty());
    assert_eq!(b(1003).name.as_deref(), Some("vivid-cap"));
    // The sum of Pss over processes is the userspace total.
    assert_eq!(a.totals.userspace_pss_bytes, a.totals.userspace_bytes);
}

#[test]
fn kernel_only_buffers_from_bufinfo() {
    let a = run(&Root::fixture(&fixture()));
    let k: Vec<u64> = a
        .buffers
        .iter()
        .filter(|b| b.kernel_only)
        .map(|b| b.inode)
        .collect();
    assert_eq!(k, vec![1005]);
    let b = a.buffers.iter().find(|b| b.inode == 1005).expect("1005");
    assert_eq!(b.attached, vec!["0000:00:02.0".to_owned()]);
    assert_eq!(a.totals.kernel_bytes, Some(65536));
    assert_eq!(a.totals.userspace_bytes, 40960);
    assert_eq!(a.totals.dmabuf_bytes, 106496);
    assert_eq!(a.totals.buffers, 6);
    let sys = a
        .exporters
        .iter()
        .find(|e| e.exporter == "system")
        .expect("system");
    assert_eq!(
        (sys.buffers, sys.bytes, sys.kernel_only_bytes),
        (2, 81920, 65536)
    );
}

#[test]
fn vanished_and_unreadable_processes() {
    let a = run(&Root::fixture(&fixture()));
    assert_eq!(a.vanished, vec![300]);
    let u: Vec<(u32, &str)> = a
        .unreadable
        .iter()
        .map(|u| (u.pid, u.what.as_str()))
        .collect();
    assert_eq!(u, vec![(400, "fd"), (400, "maps")]);
    assert_eq!(a.unreadable[0].comm.as_deref(), Some("ssh-agent"));
    assert!(a.unreadable[0].why.contains("Permission denied"));
    assert!(a
        .notes
        .iter()
        .any(|n| n.contains("1 processes could not be read")));
}

#[test]
fn the_contract_per_mapping() {
    let a = run(&Root::fixture(&fixture()));
    assert_eq!(a.kernel.modeled.as_deref(), Some("6.12.117"));
    let comp = proc_row(&a, 200);
    let m = |ino| comp.maps.iter().find(|m| m.inode == ino).expect("mapping");
    // udmabuf on 6.12: VM_PFNMAP, special PTEs, no GUP user gets a struct page.
    let u = m(1002);
    assert!(u.contract.pfnmap, "{u:?}");
    assert_eq!(u.contract.verdict, "ok");
    assert_eq!(u.contract.gup_struct_page, Some(vec![]));
    let pm = u.contract.pagemap.expect("pagemap");
    assert_eq!((pm.present, pm.normal), (2, 0));
    // vivid-vmalloc: VM_MIXEDMAP with struct pages; flagged with the model's reason.
    let v = m(1003);
    assert!(!v.contract.pfnmap);
    assert_eq!(v.contract.verdict, "breaks");
    assert_eq!(v.contract.flags, vec!["mm", "de", "dd"]);
    let reason = v.contract.reason.as_deref().unwrap_or_default();
    assert!(
        reason.starts_with("VM_MIXEDMAP: vivid-vmalloc: "),
        "{reason}"
    );
    let gup = v.contract.gup_struct_page.clone().expect("modeled");
    for op in [OpKey::OdirectRead, OpKey::IoUringRegister, OpKey::Vmsplice] {
        assert!(gup.contains(&op), "{op} missing from {gup:?}");
    }
    assert_eq!(v.contract.pagemap.map(|p| p.normal), Some(2));
    // An exporter the model lacks, mapped without pf.
    let mali = m(1006);
    assert_eq!(mali.contract.verdict, "breaks");
    assert_eq!(mali.contract.gup_struct_page, None);
    assert!(mali
        .contract
        .reason
        .as_deref()
        .is_some_and(|r| r.contains("`mali` not modeled")));
    assert_eq!(a.totals.mappings_breaking, 2);
}

#[test]
fn capture_then_replay_is_equal() {
    let root = Root::fixture(&fixture());
    let r = Reader::new(&root, true);
    let s = scan(&r, ScanOptions::default()).expect("scan");
    let before = audit(&s, None);
    let dir = std::env::temp_dir().join(format!("pfnguard-audit-capture-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let n = r.write_capture(&dir).expect("capture");
    assert!(n > 10);
    // Only what was read: init's maps has no /dmabuf line, so its smaps was not read.
    assert!(!dir.join("proc/1/smaps").exists());
    assert!(dir.join("proc/1/maps").exists());
    let after = run(&Root::fixture(&dir));
    // Refusing a non-empty directory.
    let again = r.write_capture(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(before, after);
    assert!(again.is_err());
}

#[test]
fn not_a_procfs() {
    let dir = std::env::temp_dir();
    let root = Root {
        proc: dir.join("pfnguard-audit-no-such-dir"),
        ..Root::fixture(&dir)
    };
    let r = Reader::new(&root, false);
    let e = scan(&r, ScanOptions::default()).expect_err("no procfs");
    assert!(e.to_string().contains("not a procfs"), "{e}");
}

#[test]
fn growth_between_samples() {
    let a = run(&Root::fixture(&fixture()));
    let mut b = a.clone();
    b.processes[0].fds += 2;
    b.processes[0].size_bytes += 8192;
    b.exporters[0].bytes += 8192;
    let g = pfnguard_audit::growth(&a, &b);
    assert_eq!(g.len(), 2, "{g:?}");
    assert_eq!(g[0].key, "camera:100");
    assert_eq!((g[0].fds, g[0].bytes), (2, 8192));
    assert_eq!(g[1].what, "exporter");
}

#[test]
fn capture_keeps_empty_directories() {
    // A kernel thread: comm, an empty fd/ and an empty maps; it must replay as present, not
    // as a process that exited.
    let base = std::env::temp_dir().join(format!("pfnguard-audit-kthread-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let src = base.join("src");
    std::fs::create_dir_all(src.join("proc/2/fd")).expect("mkdir");
    std::fs::write(src.join("proc/2/comm"), "kthreadd\n").expect("comm");
    std::fs::write(src.join("proc/2/maps"), "").expect("maps");
    let root = Root::fixture(&src);
    let r = Reader::new(&root, true);
    let mut before = audit(&scan(&r, ScanOptions::default()).expect("scan"), None);
    let dst = base.join("dst");
    r.write_capture(&dst).expect("capture");
    // A marker keeps the empty fd/ in version control.
    let kept = dst
        .join("proc/2/fd")
        .join(pfnguard_audit::root::KEEP_FILE)
        .exists();
    let mut after = run(&Root::fixture(&dst));
    let _ = std::fs::remove_dir_all(&base);
    assert!(kept);
    assert!(before.vanished.is_empty());
    // The notes name the root's paths (no bufinfo under src/ or dst/).
    assert_eq!(before.notes.len(), after.notes.len());
    before.notes.clear();
    after.notes.clear();
    assert_eq!(before, after);
}

#[test]
fn drm_candidates_narrow_to_the_bound_drivers() {
    use pfnguard_report::ExporterId;
    // The desktop fixture's 1004 is a `drm` buffer; with debugfs saying that only vgem and
    // bochs-drm are bound, only those two remain candidates.
    let base = std::env::temp_dir().join(format!("pfnguard-audit-dri-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let debugfs = base.join("debugfs");
    for (minor, name) in [
        ("0", "vgem dev= unique=vgem\n"),
        ("1", "bochs-drm dev=0000:00:03.0 unique=0000:00:03.0\n"),
        ("128", "bochs-drm dev=0000:00:03.0 unique=0000:00:03.0\n"),
    ] {
        std::fs::create_dir_all(debugfs.join("dri").join(minor)).expect("mkdir");
        std::fs::write(debugfs.join("dri").join(minor).join("name"), name).expect("name");
    }
    std::fs::create_dir_all(debugfs.join("dma_buf")).expect("mkdir");
    std::fs::copy(
        fixture().join("debugfs/dma_buf/bufinfo"),
        debugfs.join("dma_buf/bufinfo"),
    )
    .expect("bufinfo");
    let narrowed = run(&Root {
        debugfs: debugfs.clone(),
        ..Root::fixture(&fixture())
    });
    let _ = std::fs::remove_dir_all(&base);
    let of = |a: &Audit| {
        a.buffers
            .iter()
            .find(|b| b.inode == 1004)
            .map(|b| b.modeled_as.clone())
            .expect("1004")
    };
    assert_eq!(
        of(&narrowed),
        vec![ExporterId::Vgem, ExporterId::Bochs],
        "bound: vgem, bochs-drm"
    );
    let all = run(&Root::fixture(&fixture()));
    assert_eq!(of(&all).len(), 5, "no dri/: every GEM-PRIME exporter");
}
