//! The procfs parsers on files captured from real kernels
//! (`tests/fixtures/<kernel release>/<exporter>.{smaps,maps,fdinfo,pagemap,json}`,
//! written by `examples/capture_fixtures.rs`).
//!
//! Each `.json` names the mapping's address and length and what the capture
//! saw (`expect`); every parser must find the same VMA and agree with it.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use pfnguard_probe::procfs::{self, PagemapEntry};
use serde_json::Value;

fn fixture_sets() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    for kdir in std::fs::read_dir(&root).expect("tests/fixtures exists") {
        let kdir = kdir.expect("readable fixture directory").path();
        if !kdir.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&kdir).expect("readable kernel directory") {
            let p = f.expect("readable entry").path();
            if p.extension().is_some_and(|e| e == "json") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn sibling(meta: &Path, ext: &str) -> PathBuf {
    meta.with_extension(ext)
}

fn hex(v: &Value) -> u64 {
    let s = v.as_str().expect("hex string");
    u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex address")
}

#[test]
fn fixtures_exist() {
    assert!(
        !fixture_sets().is_empty(),
        "no fixtures under tests/fixtures"
    );
}

#[test]
fn smaps_and_maps_find_the_mapping() {
    for meta_path in fixture_sets() {
        let meta: Value =
            serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
        let addr = hex(&meta["addr"]);
        let len = meta["len"].as_u64().unwrap();
        let name = meta_path.display();

        let smaps = std::fs::read_to_string(sibling(&meta_path, "smaps")).unwrap();
        let vmas = procfs::parse_smaps(&smaps).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(vmas.len() > 3, "{name}: too few VMAs");
        let vma =
            procfs::find_vma(&vmas, addr).unwrap_or_else(|| panic!("{name}: no VMA at {addr:#x}"));
        assert_eq!(vma.header.end - vma.header.start, len, "{name}");
        assert!(vma.header.is_shared(), "{name}: not a shared mapping");
        assert_eq!(&vma.header.perms, "rw-s", "{name}");
        let line = vma
            .vmflags_line
            .as_deref()
            .unwrap_or_else(|| panic!("{name}: no VmFlags"));
        assert!(line.starts_with("VmFlags: "), "{name}");
        for f in ["rd", "wr", "sh", "mr", "mw", "me", "ms"] {
            assert!(vma.has_flag(f), "{name}: VmFlags lacks {f}");
        }
        let expect = &meta["expect"];
        assert_eq!(
            Some(vma.vmflags_joined().as_str()),
            expect["vmflags"].as_str(),
            "{name}"
        );
        assert_eq!(vma.rss_kb(), expect["rss_kb"].as_u64(), "{name}");
        assert!(
            vma.pss_kb().is_some() && vma.locked_kb().is_some(),
            "{name}"
        );
        // Every VMA has the fields the probe reads.
        for v in &vmas {
            assert!(v.rss_kb().is_some(), "{name}: {} has no Rss", v.header_line);
            assert!(
                v.vmflags_line.is_some(),
                "{name}: {} has no VmFlags",
                v.header_line
            );
        }

        let maps = std::fs::read_to_string(sibling(&meta_path, "maps")).unwrap();
        let entries = procfs::parse_maps(&maps).unwrap_or_else(|e| panic!("{name}: {e}"));
        let entry = entries
            .iter()
            .find(|e| e.start == addr)
            .unwrap_or_else(|| panic!("{name}: not in maps"));
        assert_eq!(entry, &vma.header, "{name}: maps and smaps disagree");
        let path = entry.pathname.as_deref().unwrap_or("");
        if meta["exporter"] == "memfd" {
            assert!(path.starts_with("/memfd:"), "{name}: {path}");
        } else if meta["expect"]["exp_name"].is_string() {
            // dma_buf_dentry_ops.d_dname: "/dmabuf:<name>"; i915 and the DRM
            // node mappings show another file.
            assert!(!path.is_empty(), "{name}: mapping without a file");
        }
    }
}

#[test]
fn fdinfo_fields() {
    for meta_path in fixture_sets() {
        let meta: Value =
            serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
        let name = meta_path.display();
        let info =
            procfs::parse_fdinfo(&std::fs::read_to_string(sibling(&meta_path, "fdinfo")).unwrap());
        assert!(
            info.flags.is_some() && info.ino.is_some() && info.pos.is_some(),
            "{name}"
        );
        assert_eq!(
            info.exp_name.as_deref(),
            meta["expect"]["exp_name"].as_str(),
            "{name}"
        );
        if info.is_dma_buf() {
            assert_eq!(info.size, meta["size"].as_u64(), "{name}: dma-buf size");
            assert!(info.count.is_some(), "{name}: dma-buf count");
        } else {
            assert_eq!(
                meta["exporter"], "memfd",
                "{name}: a dma-buf fdinfo without exp_name"
            );
            assert_eq!(info.size, None, "{name}");
        }
    }
}

#[test]
fn pagemap_entries() {
    for meta_path in fixture_sets() {
        let meta: Value =
            serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
        let name = meta_path.display();
        let page = meta["page_size"].as_u64().unwrap();
        let bytes = std::fs::read(sibling(&meta_path, "pagemap")).unwrap();
        let pages = meta["len"].as_u64().unwrap() / page;
        assert_eq!(bytes.len() as u64, pages * 8, "{name}");
        let expect: Vec<bool> = meta["expect"]["pagemap_present"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_bool().unwrap())
            .collect();
        let mut cur = Cursor::new(bytes);
        for (i, want) in expect.iter().enumerate() {
            // The capture holds the entries of the mapping only, so page i of
            // the mapping is at virtual address i * page in this reader.
            let e: PagemapEntry =
                procfs::read_pagemap_entry(&mut cur, i as u64 * page, page).unwrap();
            assert_eq!(e.present(), *want, "{name}: page {i}");
            if e.present() {
                assert!(!e.swapped(), "{name}: page {i} present and swapped");
            }
        }
        assert!(
            procfs::read_pagemap_entry(&mut cur, pages * page, page).is_err(),
            "{name}: read past the end"
        );
    }
}

/// The control captured on this development machine: a plain shmem memfd is
/// a normal shared file mapping, counted in Rss, present in pagemap.
#[test]
fn memfd_control_on_the_dev_machine() {
    let meta =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/6.18.44-fc-v782/memfd.json");
    let m: Value = serde_json::from_str(&std::fs::read_to_string(&meta).unwrap()).unwrap();
    let smaps = std::fs::read_to_string(sibling(&meta, "smaps")).unwrap();
    let vmas = procfs::parse_smaps(&smaps).unwrap();
    let vma = procfs::find_vma(&vmas, hex(&m["addr"])).unwrap();
    // This kernel is built without CONFIG_MEM_SOFT_DIRTY, hence no `sd`.
    assert_eq!(
        vma.vmflags_line.as_deref(),
        Some("VmFlags: rd wr sh mr mw me ms ")
    );
    assert_eq!(vma.vmflags_joined(), "rd wr sh mr mw me ms");
    assert_eq!(vma.rss_kb(), Some(16));
    assert!(vma
        .header
        .pathname
        .as_deref()
        .unwrap()
        .starts_with("/memfd:pfnguard-memfd"));
    let info = procfs::parse_fdinfo(&std::fs::read_to_string(sibling(&meta, "fdinfo")).unwrap());
    assert!(!info.is_dma_buf());
    assert_eq!(info.flags.as_deref(), Some("02100002"));
}

/// The Debian guests' captures against the VmFlags / exp_name / Rss columns of
/// the exporter catalogue (`docs/exporters.md` §C1), written down
/// independently of the capture's own `expect` block.
#[test]
fn debian_captures_match_the_exporter_catalogue() {
    const PFN_SHMEM: &str = "rd wr sh mr mw me ms pf de dd sd";
    const PFN_IO: &str = "rd wr sh mr mw me ms pf io de dd sd";
    const PFN_IO_PAT: &str = "rd wr sh mr mw me ms pf io de ar dd sd";
    const MIXED: &str = "rd wr sh mr mw me ms de dd sd mm";
    const PLAIN: &str = "rd wr sh mr mw me ms sd";
    // (kernel, exporter, VmFlags, exp_name, Rss counted)
    let table: &[(&str, &str, &str, Option<&str>, bool)] = &[
        ("6.1.0-56-amd64", "memfd", PLAIN, None, true),
        ("6.1.0-56-amd64", "vgem", PFN_SHMEM, Some("drm"), false),
        (
            "6.1.0-56-amd64",
            "virtio-gpu",
            PFN_SHMEM,
            Some("virtio_gpu"),
            false,
        ),
        (
            "6.1.0-56-amd64",
            "vivid-vmalloc",
            MIXED,
            Some("videobuf2_vmalloc"),
            true,
        ),
        (
            "6.1.0-56-amd64",
            "vivid-dma-contig",
            PFN_IO_PAT,
            Some("videobuf2_dma_contig"),
            false,
        ),
        ("6.12.117+deb12-amd64", "memfd", PLAIN, None, true),
        (
            "6.12.117+deb12-amd64",
            "system-heap",
            PFN_IO,
            Some("system"),
            false,
        ),
        (
            "6.12.117+deb12-amd64",
            "udmabuf-shmem",
            PFN_SHMEM,
            Some("udmabuf"),
            false,
        ),
        (
            "6.12.117+deb12-amd64",
            "vgem",
            PFN_SHMEM,
            Some("drm"),
            false,
        ),
        (
            "6.12.117+deb12-amd64",
            "virtio-gpu",
            PFN_SHMEM,
            Some("virtio_gpu"),
            false,
        ),
        ("6.12.117+deb12-amd64", "bochs", PFN_IO, Some("drm"), false),
        (
            "6.12.117+deb12-amd64",
            "vivid-vmalloc",
            MIXED,
            Some("videobuf2_vmalloc"),
            true,
        ),
        (
            "6.12.117+deb12-amd64",
            "vivid-dma-contig",
            PFN_IO_PAT,
            Some("videobuf2_dma_contig"),
            false,
        ),
    ];
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    for (kernel, id, flags, exp_name, counted) in table {
        let meta_path = root.join(kernel).join(format!("{id}.json"));
        let m: Value = serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
        let smaps = std::fs::read_to_string(sibling(&meta_path, "smaps")).unwrap();
        let vmas = procfs::parse_smaps(&smaps).unwrap();
        let vma = procfs::find_vma(&vmas, hex(&m["addr"])).unwrap();
        assert_eq!(vma.vmflags_joined(), *flags, "{kernel} {id}");
        assert_eq!(vma.rss_kb().unwrap() > 0, *counted, "{kernel} {id}");
        let info =
            procfs::parse_fdinfo(&std::fs::read_to_string(sibling(&meta_path, "fdinfo")).unwrap());
        assert_eq!(info.exp_name.as_deref(), *exp_name, "{kernel} {id}");
        if exp_name.is_some() {
            // dma_buf_dentry_ops.d_dname of an unnamed dma-buf.
            assert_eq!(
                vma.header.pathname.as_deref(),
                Some("/dmabuf:"),
                "{kernel} {id}"
            );
            assert_eq!(
                info.ino,
                Some(vma.header.inode),
                "{kernel} {id}: fdinfo ino is the mapped inode"
            );
        }
        // Special PTEs are invisible to pagemap; normal pages are present.
        let bytes = std::fs::read(sibling(&meta_path, "pagemap")).unwrap();
        let first = procfs::read_pagemap_entry(&mut Cursor::new(bytes), 0, 4096).unwrap();
        assert_eq!(first.present(), *counted, "{kernel} {id}: pagemap");
    }
}
