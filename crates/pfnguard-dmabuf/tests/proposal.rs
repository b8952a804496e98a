//! The 2021 proposal's claims, run on the model (`docs/mm-semantics.md` §11):
//!
//! * under `warn` (kernel/dma-buf-mmap-check at `dma_buf.mmap_check=warn`: a `WARN_ONCE` after
//!   the exporter's mmap unless the VMA is VM_PFNMAP without VM_MIXEDMAP, and the mmap proceeds)
//!   the three holes (a) VM_PFNMAP|VM_MIXEDMAP + vm_insert_page, (b) VM_IO(+MIXEDMAP) +
//!   vm_map_pages (rockchip), (c) `->fault` returning `vmf->page` in a VM_PFNMAP VMA still let
//!   fast-GUP consumers reach struct pages; (a) and (b) warn, (c) has nothing to see at mmap
//!   time and stays silent;
//! * under `strict` no dma-buf exporter lets a GUP consumer reach a struct page;
//! * `require` breaks the exporters that map struct pages, with the exceptions spelled out.
//!
//! "Reach a struct page" is decided by running the op: its value, and for the two paths that
//! succeed without struct-page GUP (KVM's remapped path, `vm_ops->access`) the recorded trace.

mod common;
use common::resolved;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pfnguard_dmabuf::custom::{self, CustomExporter};
use pfnguard_dmabuf::exporters::{ExportCtx, Exporter};
use pfnguard_dmabuf::predict::Cell;
use pfnguard_dmabuf::{by_id, catalogue, run_cell, Policy, DEFAULT_PAGES};
use pfnguard_mm::{Kernel, KernelFacts};
use pfnguard_report::OpKey;

const KERNELS: [&str; 2] = ["6.1", "6.12"];

/// Consumers that take the mapping's pages with GUP (fast or slow) and use them.
const GUP_OPS: [OpKey; 11] = [
    OpKey::OdirectRead,
    OpKey::OdirectWrite,
    OpKey::Vmsplice,
    OpKey::IoUringRegister,
    OpKey::ProcessVmReadv,
    OpKey::ProcessVmWritev,
    OpKey::FutexWakeShared,
    OpKey::RdmaRegMr,
    OpKey::KvmMap,
    OpKey::ProcMemRead,
    OpKey::ProcMemWrite,
];

/// Hole (a): VM_PFNMAP|VM_MIXEDMAP set by the driver, then vm_insert_page (which does not
/// BUG on VM_PFNMAP once VM_MIXEDMAP is set: mm/memory.c:vm_insert_page).
const HOLE_A: &str = r#"
name = "hole-a-pfnmap-mixedmap-vm-insert-page"
pages = 4
set_flags = ["PFNMAP", "MIXEDMAP", "DONTEXPAND", "DONTDUMP"]
insert = "vm_insert_page"
at = "mmap"
memory = "shmem"
"#;

/// Hole (c): VM_PFNMAP, and ->fault returns vmf->page (finish_fault installs a normal PTE).
const HOLE_C: &str = r#"
name = "hole-c-pfnmap-fault-page"
pages = 4
requires_shared = true
set_flags = ["PFNMAP", "DONTEXPAND", "DONTDUMP"]
insert = "fault_page"
at = "fault"
memory = "shmem"
"#;

fn kernel(name: &str) -> KernelFacts {
    resolved(name).facts
}

fn inline(name: &str, text: &str) -> Arc<dyn Exporter> {
    let desc = custom::parse(Path::new(name), text).unwrap_or_else(|e| panic!("{e}"));
    Arc::new(CustomExporter { desc })
}

fn hole_a() -> Arc<dyn Exporter> {
    inline("hole-a.toml", HOLE_A)
}

fn hole_c() -> Arc<dyn Exporter> {
    inline("hole-c.toml", HOLE_C)
}

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/exporters")
}

/// One user-described exporter per insert function (examples/exporters).
fn examples() -> Vec<Arc<dyn Exporter>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("examples/exporters")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 10, "one example per insert function");
    files
        .iter()
        .map(|f| Arc::new(custom::load(f).unwrap_or_else(|e| panic!("{e}"))) as Arc<dyn Exporter>)
        .collect()
}

fn everyone() -> Vec<Arc<dyn Exporter>> {
    let mut v = catalogue();
    v.push(hole_a());
    v.push(hole_c());
    v.extend(examples());
    v
}

fn pages(e: &dyn Exporter) -> u64 {
    e.fixed_pages().unwrap_or(DEFAULT_PAGES)
}

fn cell(k: &str, e: &dyn Exporter, p: Policy, op: OpKey, trace: bool) -> Cell {
    run_cell(&resolved(k), e, p, op, pages(e), trace)
}

fn value(k: &str, e: &dyn Exporter, p: Policy, op: OpKey) -> String {
    cell(k, e, p, op, false).value.to_string()
}

/// Whether the exporter hands out a dma-buf (the memfd control does not): decided by exporting.
fn is_dma_buf(k: &str, e: &dyn Exporter) -> bool {
    let profile = kernel(k);
    let mut kern = Kernel::new(profile, Policy::Off.mm_config());
    let cx = ExportCtx {
        policy: Policy::Off,
        pages: pages(e),
    };
    e.export(&mut kern, &cx).is_ok_and(|x| x.buf.is_some())
}

fn has_step(c: &Cell, function: &str, note_part: &str) -> bool {
    c.trace.as_ref().is_some_and(|t| {
        t.steps()
            .iter()
            .any(|s| s.function == function && s.note.contains(note_part))
    })
}

/// The trace shows GUP returning a struct page: a slow-GUP `vm_normal_page()` hit, a fast-GUP
/// walk that took at least one page, or KVM's fast-only GUP.
fn took_struct_page(c: &Cell) -> bool {
    let Some(t) = &c.trace else { return false };
    t.steps().iter().any(|s| {
        (s.function == "mm/gup.c:follow_page_pte" && s.note.contains("vm_normal_page() = pfn"))
            || (s.function == "mm/gup.c:gup_fast_pte_range" && !s.note.contains(": 0/"))
            || s.function == "virt/kvm/kvm_main.c:hva_to_pfn_fast"
    })
}

/// A success that involved no struct-page GUP: KVM's `hva_to_pfn_remapped` (follow_pte /
/// follow_pfnmap_start on a VM_IO|VM_PFNMAP VMA, virt/kvm/kvm_main.c) or `__access_remote_vm`
/// falling back to `vm_ops->access` (mm/memory.c) after GUP refused the VMA.
fn succeeded_without_gup(c: &Cell) -> bool {
    c.value == "ok"
        && !took_struct_page(c)
        && (c.trace.as_ref().is_some_and(|t| {
            t.steps()
                .iter()
                .any(|s| s.function == "virt/kvm/kvm_main.c:hva_to_pfn_remapped")
        }) || has_step(c, "mm/memory.c:__access_remote_vm", ".access"))
}

/// Every (kernel, exporter, op) of `exps` where a GUP consumer got `ok` from a dma-buf other than
/// through the two non-GUP paths.
fn struct_page_reaches(
    exps: &[Arc<dyn Exporter>],
    p: Policy,
) -> BTreeSet<(String, String, String)> {
    let mut out = BTreeSet::new();
    for k in KERNELS {
        for e in exps {
            if !is_dma_buf(k, e.as_ref()) {
                continue;
            }
            for op in GUP_OPS {
                let c = cell(k, e.as_ref(), p, op, true);
                if c.value == "ok" && !succeeded_without_gup(&c) {
                    out.insert((k.to_owned(), e.id().to_owned(), op.to_string()));
                }
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// (a) warn leaves the holes open

/// Under `warn`, the fast-GUP consumers that still get `ok` for one hole exporter.
fn fast_gup_oks(k: &str, e: &dyn Exporter) -> Vec<OpKey> {
    [
        OpKey::OdirectRead,
        OpKey::OdirectWrite,
        OpKey::Vmsplice,
        OpKey::IoUringRegister,
        OpKey::FutexWakeShared,
        OpKey::RdmaRegMr,
        OpKey::KvmMap,
    ]
    .into_iter()
    .filter(|&op| {
        let c = cell(k, e, Policy::Warn, op, true);
        c.value == "ok" && took_struct_page(&c)
    })
    .collect()
}

#[test]
fn warn_leaves_hole_a_open() {
    let e = hole_a();
    let all = vec![
        OpKey::OdirectRead,
        OpKey::OdirectWrite,
        OpKey::Vmsplice,
        OpKey::IoUringRegister,
        OpKey::FutexWakeShared,
        OpKey::RdmaRegMr,
        OpKey::KvmMap,
    ];
    assert_eq!(fast_gup_oks("6.12", e.as_ref()), all);
    // 6.1 io_uring pins with the slow pin_user_pages, whose check_vma_flags refuses VM_PFNMAP.
    let mut old = all.clone();
    old.retain(|&o| o != OpKey::IoUringRegister);
    assert_eq!(fast_gup_oks("6.1", e.as_ref()), old);
    assert_eq!(
        value("6.1", e.as_ref(), Policy::Warn, OpKey::IoUringRegister),
        "EFAULT"
    );
    for k in KERNELS {
        // Slow GUP sees VM_PFNMAP and refuses; only the VMA-blind fast path gets through.
        assert_eq!(
            value(k, e.as_ref(), Policy::Warn, OpKey::ProcessVmReadv),
            "EFAULT"
        );
        assert_eq!(
            value(k, e.as_ref(), Policy::Warn, OpKey::Vmflags),
            "rd wr sh mr mw me ms pf de dd sd mm"
        );
        // vm_insert_page() at mmap time added VM_MIXEDMAP to VM_PFNMAP: Jason Gunthorpe's form
        // of the check, (vm_flags & (VM_PFNMAP | VM_MIXEDMAP)) != VM_PFNMAP, warns; the v3
        // patch's WARN_ON_ONCE(!(vm_flags & VM_PFNMAP)) would have stayed silent.
        let c = cell(k, e.as_ref(), Policy::Warn, OpKey::OdirectRead, false);
        assert_eq!(c.value, "ok");
        assert_eq!(
            c.warn_sites,
            ["drivers/dma-buf/dma-buf.c:dma_buf_mmap_exporter"],
            "{k}"
        );
    }
}

#[test]
fn warn_leaves_hole_b_rockchip_open_and_warns() {
    let e = by_id("rockchip".parse().expect("catalogue id"));
    assert_eq!(
        fast_gup_oks("6.12", e.as_ref()),
        [
            OpKey::OdirectRead,
            OpKey::OdirectWrite,
            OpKey::Vmsplice,
            OpKey::IoUringRegister,
            OpKey::FutexWakeShared,
            OpKey::RdmaRegMr,
            OpKey::KvmMap
        ]
    );
    assert_eq!(
        fast_gup_oks("6.1", e.as_ref()),
        [
            OpKey::OdirectRead,
            OpKey::OdirectWrite,
            OpKey::Vmsplice,
            OpKey::FutexWakeShared,
            OpKey::RdmaRegMr,
            OpKey::KvmMap
        ]
    );
    for k in KERNELS {
        assert_eq!(
            value(k, e.as_ref(), Policy::Warn, OpKey::Vmflags),
            "rd wr sh mr mw me ms io de dd sd mm"
        );
        assert_eq!(
            value(k, e.as_ref(), Policy::Warn, OpKey::ProcessVmReadv),
            "EFAULT"
        );
        // No VM_PFNMAP: the WARN fires, and the mmap still succeeds.
        let c = cell(k, e.as_ref(), Policy::Warn, OpKey::OdirectRead, false);
        assert_eq!(c.value, "ok");
        assert_eq!(
            c.events,
            [
                "WARN: dma-buf: exporter rockchip set up a mapping without VM_PFNMAP or with \
              VM_MIXEDMAP (READ|WRITE|SHARED|MAYREAD|MAYWRITE|MAYEXEC|MAYSHARE|IO|DONTEXPAND|\
              DONTDUMP|MIXEDMAP) at drivers/dma-buf/dma-buf.c:dma_buf_mmap_exporter"
            ],
            "{k}"
        );
    }
}

#[test]
fn warn_leaves_hole_c_open() {
    let e = hole_c();
    let all = vec![
        OpKey::OdirectRead,
        OpKey::OdirectWrite,
        OpKey::Vmsplice,
        OpKey::IoUringRegister,
        OpKey::FutexWakeShared,
        OpKey::RdmaRegMr,
        OpKey::KvmMap,
    ];
    assert_eq!(fast_gup_oks("6.12", e.as_ref()), all);
    let mut old = all.clone();
    old.retain(|&o| o != OpKey::IoUringRegister);
    assert_eq!(fast_gup_oks("6.1", e.as_ref()), old);
    for k in KERNELS {
        assert_eq!(
            value(k, e.as_ref(), Policy::Warn, OpKey::Vmflags),
            "rd wr sh mr mw me ms pf de dd sd"
        );
        let c = cell(k, e.as_ref(), Policy::Warn, OpKey::OdirectRead, false);
        assert_eq!(
            c.events,
            Vec::<String>::new(),
            "{k}: VM_PFNMAP is set, the v3 WARN is silent"
        );
    }
}

#[test]
fn warn_changes_no_outcome_and_warns_exactly_for_vmas_without_vm_pfnmap_or_with_vm_mixedmap() {
    let mut warned = BTreeSet::new();
    for k in KERNELS {
        for e in catalogue() {
            for op in OpKey::ALL {
                let off = cell(k, e.as_ref(), Policy::Off, op, false);
                let warn = cell(k, e.as_ref(), Policy::Warn, op, false);
                assert_eq!(off.value, warn.value, "{k} {} {op}", e.id());
                if op == OpKey::MmapShared && !warn.events.is_empty() {
                    warned.insert(format!("{k} {}", e.id()));
                }
            }
        }
    }
    let want: BTreeSet<String> = [
        "6.1 cma-heap",
        "6.1 udmabuf-shmem",
        "6.1 udmabuf-hugetlb",
        "6.1 i915",
        "6.1 vivid-vmalloc",
        "6.1 vb2-dma-sg",
        "6.1 rockchip",
        "6.1 tegra",
        // VM_PFNMAP, but virtio_gpu_vram_mmap() sets VM_MIXEDMAP before io_remap_pfn_range().
        "6.1 virtio-gpu-blob",
        "6.12 i915",
        "6.12 vivid-vmalloc",
        "6.12 vb2-dma-sg",
        "6.12 rockchip",
        "6.12 tegra",
        "6.12 virtio-gpu-blob",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(warned, want);
}

// ---------------------------------------------------------------------------------------------
// (b) strict closes them

#[test]
fn strict_lets_no_gup_consumer_reach_a_struct_page() {
    let exps = everyone();
    let reaches = struct_page_reaches(&exps, Policy::Strict);
    assert!(
        reaches.is_empty(),
        "under strict, struct pages reached: {reaches:#?}"
    );
    // The checker is not vacuous: under warn it finds the holes, on both kernels.
    let warn = struct_page_reaches(&exps, Policy::Warn);
    for (k, id, op) in [
        ("6.1", "vivid-vmalloc", "odirect_read"),
        ("6.12", "vivid-vmalloc", "io_uring_register"),
        ("6.12", "rockchip", "vmsplice"),
        (
            "6.1",
            "hole-a-pfnmap-mixedmap-vm-insert-page",
            "rdma_reg_mr",
        ),
        ("6.12", "hole-c-pfnmap-fault-page", "odirect_write"),
        ("6.12", "example-vm-map-pages", "process_vm_readv"),
        ("6.1", "cma-heap", "odirect_read"),
    ] {
        assert!(
            warn.contains(&(k.to_owned(), id.to_owned(), op.to_owned())),
            "{k} {id} {op} under warn"
        );
    }
}

#[test]
fn strict_successes_are_the_memfd_control_or_non_gup_paths() {
    // Every ok of a GUP consumer under strict, with how it got there.
    let mut oks = BTreeSet::new();
    for k in KERNELS {
        for e in everyone() {
            let dmabuf = is_dma_buf(k, e.as_ref());
            for op in GUP_OPS {
                let c = cell(k, e.as_ref(), Policy::Strict, op, true);
                if c.value != "ok" {
                    continue;
                }
                let how = if !dmabuf {
                    "not a dma-buf"
                } else if op == OpKey::KvmMap && succeeded_without_gup(&c) {
                    "hva_to_pfn_remapped"
                } else if succeeded_without_gup(&c) {
                    "vm_ops->access"
                } else {
                    "STRUCT PAGE"
                };
                oks.insert((e.id().to_owned(), op.to_string(), how));
            }
        }
    }
    let kinds: BTreeSet<&str> = oks.iter().map(|(_, _, h)| *h).collect();
    assert_eq!(
        kinds,
        BTreeSet::from(["hva_to_pfn_remapped", "not a dma-buf", "vm_ops->access"])
    );
    // The ->access successes are exactly the TTM and generic_access_phys exporters.
    let access: BTreeSet<&str> = oks
        .iter()
        .filter(|(_, _, h)| *h == "vm_ops->access")
        .map(|(e, _, _)| e.as_str())
        .collect();
    assert_eq!(
        access,
        BTreeSet::from([
            "amdgpu",
            "bochs",
            "example-io-remap-pfn-range",
            "example-vmf-insert-pfn-prot",
            "qxl"
        ])
    );
}

#[test]
fn strict_accepts_exactly_the_special_pte_exporters() {
    let mut accepted = BTreeSet::new();
    for k in KERNELS {
        for e in everyone() {
            if is_dma_buf(k, e.as_ref())
                && value(k, e.as_ref(), Policy::Strict, OpKey::MmapShared) == "ok"
            {
                accepted.insert(format!("{k} {}", e.id()));
            }
        }
    }
    let mut want = BTreeSet::new();
    for k in KERNELS {
        for id in [
            "system-heap",
            "vgem",
            "virtio-gpu",
            "cirrus",
            "amdgpu",
            "gem-dma",
            "vivid-dma-contig",
            "example-io-remap-pfn-range",
            "example-remap-pfn-range",
            "example-vmf-insert-pfn",
            "example-vmf-insert-pfn-prot",
        ] {
            want.insert(format!("{k} {id}"));
        }
    }
    for id in [
        "cma-heap",
        "udmabuf-shmem",
        "udmabuf-hugetlb",
        "bochs",
        "qxl",
    ] {
        want.insert(format!("6.12 {id}"));
    }
    assert_eq!(accepted, want);
}

#[test]
fn strict_refuses_each_hole_where_it_happens() {
    for k in KERNELS {
        // (a): vm_insert_page into a VM_PFNMAP VMA, refused by the insert-path check at mmap.
        let a = cell(
            k,
            hole_a().as_ref(),
            Policy::Strict,
            OpKey::MmapShared,
            false,
        );
        assert_eq!(a.value, "EINVAL");
        assert_eq!(a.events, ["WARN: vm_insert_page: struct page inserted into a VM_PFNMAP or VM_IO mapping (PFNMAP) at mm/memory.c:vm_pfnmap_insert_refused"]);
        // (b): rockchip's vm_map_pages into a VM_IO VMA.
        let b = cell(
            k,
            by_id("rockchip".parse().expect("catalogue id")).as_ref(),
            Policy::Strict,
            OpKey::MmapShared,
            false,
        );
        assert_eq!(b.value, "EINVAL");
        assert_eq!(b.events, ["WARN: vm_insert_page: struct page inserted into a VM_PFNMAP or VM_IO mapping (IO) at mm/memory.c:vm_pfnmap_insert_refused"]);
        // (c): the mmap passes (no PTE yet); the first touch faults and finish_fault refuses.
        let c = cell(
            k,
            hole_c().as_ref(),
            Policy::Strict,
            OpKey::MmapShared,
            false,
        );
        assert_eq!(c.value, "SIGBUS");
        assert_eq!(c.events, ["WARN: finish_fault: struct page inserted into a VM_PFNMAP or VM_IO mapping (PFNMAP) at mm/memory.c:vm_pfnmap_insert_refused"]);
    }
}

// ---------------------------------------------------------------------------------------------
// (c) require breaks the exporters that map struct pages

/// Under `off`: Rss counted, or a GUP consumer that uses the pages got `ok`.
fn maps_struct_pages(k: &str, e: &dyn Exporter) -> bool {
    value(k, e, Policy::Off, OpKey::Rss) == "counted"
        || [
            OpKey::OdirectRead,
            OpKey::OdirectWrite,
            OpKey::Vmsplice,
            OpKey::IoUringRegister,
            OpKey::ProcessVmReadv,
            OpKey::ProcessVmWritev,
            OpKey::FutexWakeShared,
            OpKey::RdmaRegMr,
        ]
        .into_iter()
        .any(|op| value(k, e, Policy::Off, op) == "ok")
}

#[test]
fn require_breaks_exactly_the_struct_page_exporters_with_three_exceptions() {
    for k in KERNELS {
        let mut maps = BTreeSet::new();
        let mut broken = BTreeSet::new();
        for e in everyone() {
            if !is_dma_buf(k, e.as_ref())
                || value(k, e.as_ref(), Policy::Off, OpKey::MmapShared) != "ok"
            {
                continue;
            }
            if maps_struct_pages(k, e.as_ref()) {
                maps.insert(e.id().to_owned());
            }
            if value(k, e.as_ref(), Policy::Require, OpKey::MmapShared) != "ok" {
                broken.insert(e.id().to_owned());
            }
        }
        // Broken although no struct page is reachable: the VMA is VM_MIXEDMAP.
        //  - virtio-gpu-blob: drivers/gpu/drm/virtio/virtgpu_vram.c:virtio_gpu_vram_mmap sets
        //    VM_MIXEDMAP, then io_remap_pfn_range of host memory adds VM_PFNMAP.
        //  - vmf_insert_mixed: on x86 (CONFIG_ARCH_HAS_PTE_SPECIAL) mm/memory.c:__vm_insert_mixed
        //    installs special PTEs even for pfn_valid frames, in a VM_MIXEDMAP VMA.
        let false_breaks: BTreeSet<String> = broken.difference(&maps).cloned().collect();
        assert_eq!(
            false_breaks,
            BTreeSet::from([
                "example-vmf-insert-mixed".to_owned(),
                "virtio-gpu-blob".to_owned()
            ]),
            "{k}"
        );
        // Not broken although struct pages are reachable: ->fault returns vmf->page in a VM_PFNMAP
        // VMA; at mmap time there is no PTE to see, so only strict's finish_fault check catches it.
        let misses: BTreeSet<String> = maps.difference(&broken).cloned().collect();
        assert_eq!(
            misses,
            BTreeSet::from(["hole-c-pfnmap-fault-page".to_owned()]),
            "{k}"
        );
    }
}

#[test]
fn require_breaks_these_catalogue_exporters() {
    for (k, want) in [
        (
            "6.1",
            vec![
                "cma-heap",
                "udmabuf-shmem",
                "udmabuf-hugetlb",
                "i915",
                "vivid-vmalloc",
                "vb2-dma-sg",
                "rockchip",
                "tegra",
                "virtio-gpu-blob",
            ],
        ),
        (
            "6.12",
            vec![
                "i915",
                "vivid-vmalloc",
                "vb2-dma-sg",
                "rockchip",
                "tegra",
                "virtio-gpu-blob",
            ],
        ),
    ] {
        let got: Vec<String> = catalogue()
            .iter()
            .filter(|e| {
                e.id() != "memfd"
                    && value(k, e.as_ref(), Policy::Require, OpKey::MmapShared) == "EINVAL"
            })
            .map(|e| e.id().to_owned())
            .collect();
        assert_eq!(got, want, "{k}");
    }
}

#[test]
fn virtio_gpu_blob_is_pfnmap_and_mixedmap_with_no_struct_page() {
    let e = by_id("virtio-gpu-blob".parse().expect("catalogue id"));
    for k in KERNELS {
        assert_eq!(
            value(k, e.as_ref(), Policy::Off, OpKey::Vmflags),
            "rd wr sh mr mw me ms pf io de ar dd sd mm"
        );
        assert!(!maps_struct_pages(k, e.as_ref()));
        assert_eq!(
            value(k, e.as_ref(), Policy::Require, OpKey::MmapShared),
            "EINVAL"
        );
    }
}
