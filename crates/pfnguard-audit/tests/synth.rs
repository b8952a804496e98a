//! The synthetic tree's figures come out of the audit exactly.

use pfnguard_audit::{audit, scan, synth, Reader, Root, ScanOptions};

#[test]
fn synthetic_tree_figures() {
    let dir = std::env::temp_dir().join(format!("pfnguard-audit-synth-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let f = synth::write_fixture(&dir, 20, 8, 3).expect("write");
    let root = Root::fixture(&dir);
    let r = Reader::new(&root, false);
    let s = scan(
        &r,
        ScanOptions {
            pagemap: true,
            threads: 2,
        },
    )
    .expect("scan");
    let a = audit(&s, None);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(a.processes.len(), f.procs);
    assert_eq!(a.totals.fds as usize, f.fds);
    assert_eq!(a.totals.mappings as usize, f.mappings);
    assert_eq!(a.totals.buffers as usize, f.buffers);
    // 20 processes: 10 pairs sharing 5 buffers each, 3 own buffers each.
    assert_eq!(f.buffers, 10 * 5 + 20 * 3);
    assert_eq!(a.totals.userspace_bytes, f.buffers as u64 * synth::BUF_SIZE);
    assert_eq!(a.totals.userspace_pss_bytes, a.totals.userspace_bytes);
    let shared = a.buffers.iter().filter(|b| b.pids().len() == 2).count();
    assert_eq!(shared, 50);
    // Every videobuf2_vmalloc mapping breaks the contract, no other does.
    let vm = a
        .processes
        .iter()
        .flat_map(|p| &p.maps)
        .filter(|m| m.exporter == "videobuf2_vmalloc")
        .count() as u64;
    assert!(vm > 0);
    assert_eq!(a.totals.mappings_breaking, vm);
}
