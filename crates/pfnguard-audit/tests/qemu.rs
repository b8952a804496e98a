//! The audit of real kernels: the captures `pfnguard audit-workload` made in the QEMU guests of
//! harness/realkernel (`tests/fixtures/qemu/<release>/`: `capture/` and the workload's
//! `truth.json`, copied from `reports/<release>/audit/`), replayed and held to the ground truth,
//! to debugfs bufinfo and, mapping by mapping, to the model's prediction for the exporter.

use std::path::{Path, PathBuf};

use pfnguard_audit::verify::verify;
use pfnguard_audit::{audit, scan, Audit, Reader, Root, ScanOptions};
use pfnguard_probe::workload::Truth;
use pfnguard_report::ExporterId;

fn guests() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qemu");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/qemu")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("truth.json").is_file())
        .collect();
    out.sort();
    out
}

fn load(dir: &Path) -> (Truth, Audit, Option<pfnguard_audit::bufinfo::Bufinfo>) {
    let text = std::fs::read_to_string(dir.join("truth.json")).expect("truth.json");
    let truth: Truth = serde_json::from_str(&text).expect("a ground truth");
    let root = Root::fixture(&dir.join("capture"));
    let s = scan(&Reader::new(&root, false), ScanOptions::default()).expect("scan");
    let a = audit(&s, None);
    (truth, a, s.bufinfo)
}

#[test]
fn at_least_two_kernel_lines() {
    assert!(guests().len() >= 2, "{:?}", guests());
}

#[test]
fn replayed_audits_equal_the_ground_truth() {
    for dir in guests() {
        let (truth, a, bi) = load(&dir);
        let v = verify(&truth, &a, bi.as_ref());
        assert!(v.ok(), "{}:\n{v}", dir.display());
        assert_eq!(
            a.kernel.release.as_deref(),
            Some(truth.kernel_release.as_str())
        );
    }
}

#[test]
fn every_scenario_of_the_workload_is_there() {
    use pfnguard_probe::workload::{FORKED_COMM, KERNEL_HELD_NAME, RECEIVER_COMM};
    for dir in guests() {
        let (truth, a, _) = load(&dir);
        let d = dir.display();
        // Three processes: the workload, its fork child, the exec'd SCM_RIGHTS receiver.
        assert_eq!(truth.processes.len(), 3, "{d}");
        let pid = |comm: &str| {
            truth
                .processes
                .iter()
                .find(|p| p.comm == comm)
                .map(|p| p.pid)
                .expect("process")
        };
        let row = |pid: u32| a.processes.iter().find(|p| p.pid == pid);
        // The fork child holds and maps the buffer it shares; the receiver holds what it got.
        let forked = row(pid(FORKED_COMM)).expect("the fork child's row");
        assert_eq!((forked.fds, forked.mappings), (1, 1), "{d}");
        let receiver = row(pid(RECEIVER_COMM)).expect("the receiver's row");
        assert!(receiver.fds >= 1, "{d}");
        // A buffer its mapping alone holds.
        assert!(
            a.buffers
                .iter()
                .any(|b| b.fd_refs.is_empty() && !b.map_refs.is_empty()),
            "{d}"
        );
        // One buffer only the kernel holds, with its importer attached.
        let kernel: Vec<_> = a.buffers.iter().filter(|b| b.kernel_only).collect();
        assert_eq!(kernel.len(), 1, "{d}: one buffer only the kernel holds");
        assert!(!kernel[0].attached.is_empty(), "{d}: its importer");
        assert_eq!(kernel[0].name.as_deref(), Some(KERNEL_HELD_NAME), "{d}");
        // Every name the workload gave shows, and every one of NAMES was given.
        for t in &truth.buffers {
            let r = a.buffers.iter().find(|r| r.inode == t.inode).expect("row");
            assert_eq!(r.name, t.name, "{d}: {}", t.exporter);
        }
        for n in pfnguard_probe::workload::NAMES {
            assert!(
                truth.buffers.iter().any(|t| t.name.as_deref() == Some(n)),
                "{d}: {n}"
            );
        }
        // vivid's vmalloc buffer breaks the contract (VM_MIXEDMAP) on every line.
        let vivid = truth
            .buffers
            .iter()
            .find(|b| b.exporter == ExporterId::VividVmalloc)
            .expect("vivid-vmalloc");
        let m = a
            .processes
            .iter()
            .flat_map(|p| &p.maps)
            .find(|m| m.inode == vivid.inode)
            .expect("its mapping");
        assert_eq!(m.contract.verdict, "breaks", "{d}");
        assert!(m.contract.flags.contains(&"mm".to_owned()), "{d}");
        // `drm` buffers: the GEM-PRIME exporters bound in the guest (debugfs dri/*/name), not
        // gem-dma, which no guest device binds.
        for b in a.buffers.iter().filter(|b| b.exporter == "drm") {
            assert_eq!(
                b.modeled_as,
                vec![
                    ExporterId::Vgem,
                    ExporterId::Cirrus,
                    ExporterId::Bochs,
                    ExporterId::Qxl
                ],
                "{d}: {}",
                b.inode
            );
        }
    }
}

#[test]
fn a_wrong_ground_truth_is_caught() {
    let dir = &guests()[0];
    let (mut truth, a, bi) = load(dir);
    truth.buffers[0].holders.push(1);
    truth.buffers[1].size += 4096;
    let v = verify(&truth, &a, bi.as_ref());
    assert!(!v.ok());
    assert!(v.mismatches.iter().any(|m| m.contains("holders")), "{v}");
    assert!(v.mismatches.iter().any(|m| m.contains("size")), "{v}");
    // A buffer the workload did not make.
    let (mut truth, a, bi) = load(dir);
    truth.buffers.pop();
    assert!(!verify(&truth, &a, bi.as_ref()).ok());
}
