//! The live-kernel probe: the same operations as the model, on real exporters.
//!
//! [`run`] finds every dma-buf exporter the running kernel lets userspace
//! reach (dma-heaps, udmabuf, DRM dumb buffers, V4L2 `MMAP` buffers) plus a
//! plain memfd as the non-dma-buf control, and for each runs every
//! [`OpKey`](pfnguard_report::OpKey) against a fresh buffer, as the contract
//! defines them. Each op runs in a forked child that leads its own process
//! group and is bounded by [`ProbeOptions::op_timeout`]: a fault kills only
//! that child (`SIGBUS`), a hang is killed and reported as `timeout`.
//!
//! Exporters are scanned in their own time-bounded children too: every
//! `/dev/dma_heap/*`, `/dev/udmabuf` (shmem, and hugetlb when the pool has
//! free pages), every `/dev/dri/card*` (id from the `DRM_IOCTL_VERSION`
//! driver name) and one streaming capture node per V4L2 instance (`bus_info`;
//! vivid's allocator told apart by the `VIDIOC_REQBUFS` capabilities).
//!
//! `kvm_map` creates a VM on `/dev/kvm` whose vCPU writes into a memslot
//! over the mapping (`unavailable: ENOENT` without `/dev/kvm`).
//! `rdma_reg_mr` registers the mapping as a memory region through the legacy
//! uverbs `write()` ABI on the first `/dev/infiniband/uverbs*` node. Without
//! one it is `unavailable: ENODEV`, unless [`ProbeOptions::create_soft_roce`]
//! asks for a soft-RoCE device and `rdma_rxe` is loaded: then the probe
//! creates `rxe0` over the chosen network interface (RDMA netlink) and
//! removes it again when it ends.
//!
//! Every run reads the dma-buf core's mmap check level from
//! `/sys/module/dma_buf/parameters/mmap_check` (the series in `kernel/dma-buf-mmap-check`;
//! absent on other kernels) into [`ProbeReport::mmap_check`]. With [`ProbeOptions::kmsg`] the
//! probe reads the kernel log around every op (`kmsg_watch`) and records, per op, the WARN
//! sites the kernel logged ([`pfnguard_report::ExporterReport::warned_at`], parsed by
//! [`kmsg`]); for that it writes a marker line into the kernel log and resets the kernel's
//! warn-once flags before each op. The probe changes no other host state.
//!
//! Modules: [`uapi`] (hand-written kernel uapi layouts, checked against the
//! headers by `tests/uapi_headers.rs`), [`procfs`] (smaps, maps, pagemap and
//! fdinfo parsers), one module per exporter family (`dma_heap`, `udmabuf`,
//! `drm`, `v4l2`, `memfd`), `ops` and `kvm` (the op keys), `worker` (the
//! time-bounded child), `capture` ([`capture_fixtures`], the procfs fixtures
//! the parser tests read), [`kmsg`] (the `/dev/kmsg` record and WARN parser) and
//! `kmsg_watch` (reading the log around each op), and `sys`, the only module with
//! `unsafe` code and the one that makes the syscalls on the kernel log.
#![deny(unsafe_code)]
#![warn(missing_docs)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use pfnguard_report::scenarios::{ScenarioPlan, ScenarioRun, ScenarioSection};
use pfnguard_report::{ExporterId, ExporterReport, Outcome, ProbeReport, Unmodeled};
use serde_json::{json, Map};

mod capture;
mod dma_heap;
mod drm;
mod errno;
mod exporter;
pub mod kmsg;
mod kmsg_watch;
mod kvm;
mod memfd;
mod odirect;
mod ops;
pub mod procfs;
mod rdma;
mod scenarios;
mod sys;
pub mod uapi;
mod udmabuf;
mod v4l2;
mod worker;
pub mod workload;

pub use capture::capture_fixtures;
use exporter::{Candidate, FamilyScan, Source};

/// What to probe and how.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Exporters to probe; empty means every exporter the kernel can reach.
    pub exporters: Vec<ExporterId>,
    /// Upper bound for one op; a hang is killed and reported as `timeout`.
    pub op_timeout: Duration,
    /// File or block device for the O_DIRECT ops; `None` picks one.
    pub odirect_path: Option<PathBuf>,
    /// Create a soft-RoCE device for `rdma_reg_mr` when the host has no RDMA
    /// device (no `/dev/infiniband/uverbs*`) and `rdma_rxe` is loaded. This
    /// changes host state: the device `rxe0` exists while the probe runs and is
    /// removed when [`run`] returns (also when it unwinds). `None` (the
    /// default) never creates one; `rdma_reg_mr` is then
    /// `unavailable: ENODEV (no RDMA device; ...)` on a host without a device.
    pub create_soft_roce: Option<SoftRoce>,
    /// Read the kernel log (`/dev/kmsg`) around every op of every exporter, `export` included,
    /// and record the WARNs the kernel logged during each op: the row's `warned_at` (op → the
    /// `file:function` of each WARN site), the raw lines in `detail.kmsg`, problems in
    /// `detail.kmsg_notes`, and [`ProbeReport::kmsg`] set. This changes host state: before each
    /// op the probe writes `pfnguard: EXPORTER OP` into the kernel log and writes `1` to
    /// `/sys/kernel/debug/clear_warn_once` (when debugfs is mounted there), which re-arms every
    /// `WARN_ONCE` site of the kernel. Needs read access to `/dev/kmsg` (`CAP_SYSLOG` under
    /// `kernel.dmesg_restrict`); without it the run goes on without the log (a note on
    /// stderr, `kmsg` false). `false` (the default) touches neither.
    pub kmsg: bool,
    /// Scenarios to run on the kernel's exporters (`probe --scenarios DIR`): each observable
    /// one as the model planned it, the others with the reason; `None` runs none and leaves
    /// the report's `scenarios` section out.
    pub scenarios: Option<Vec<ScenarioInput>>,
}

/// A scenario handed to the probe.
#[derive(Debug, Clone)]
pub enum ScenarioInput {
    /// An observable scenario with its chosen interleavings, and the scenario file's text,
    /// which the report keeps so that `check` runs the model on exactly what was run.
    Plan(ScenarioPlan, String),
    /// A scenario that is not run, and why.
    Skip {
        /// The scenario's name.
        name: String,
        /// Its exporter.
        exporter: String,
        /// Why it is not run (not observable, or not readable).
        reason: String,
    },
}

/// The most interleavings of one scenario the probe runs (the model's choice, recorded in the
/// report).
pub const SCENARIO_CAP: usize = 24;

/// The network interface a soft-RoCE device is created over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SoftRoce {
    /// The first interface, by name, that is up and not a loopback.
    FirstUp,
    /// This interface, which must exist and be up.
    Netdev(String),
}

impl Default for ProbeOptions {
    /// Every reachable exporter, 10 s per op, a scratch file for O_DIRECT.
    fn default() -> Self {
        Self {
            exporters: Vec::new(),
            op_timeout: Duration::from_secs(10),
            odirect_path: None,
            create_soft_roce: None,
            kmsg: false,
            scenarios: None,
        }
    }
}

/// The exporter families the probe scans, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    DmaHeap,
    Udmabuf,
    Drm,
    V4l2,
}

impl Family {
    const ALL: [Family; 4] = [Family::DmaHeap, Family::Udmabuf, Family::Drm, Family::V4l2];

    fn scan(self, page: usize) -> FamilyScan {
        match self {
            Family::DmaHeap => dma_heap::scan(),
            Family::Udmabuf => udmabuf::scan(page),
            Family::Drm => drm::scan(),
            Family::V4l2 => v4l2::scan(),
        }
    }

    /// The family that finds a catalogue exporter (`None`: the memfd control and the
    /// exporters no device scan reports, such as virtio-gpu blobs).
    fn of(id: ExporterId) -> Option<Family> {
        match id {
            ExporterId::SystemHeap | ExporterId::CmaHeap => Some(Family::DmaHeap),
            ExporterId::UdmabufShmem | ExporterId::UdmabufHugetlb => Some(Family::Udmabuf),
            ExporterId::Vgem
            | ExporterId::VirtioGpu
            | ExporterId::Cirrus
            | ExporterId::Bochs
            | ExporterId::Qxl
            | ExporterId::Amdgpu
            | ExporterId::I915
            | ExporterId::GemDma
            | ExporterId::Rockchip
            | ExporterId::Tegra => Some(Family::Drm),
            ExporterId::VividVmalloc | ExporterId::VividDmaContig | ExporterId::Vb2DmaSg => {
                Some(Family::V4l2)
            }
            ExporterId::VirtioGpuBlob | ExporterId::Memfd => None,
        }
    }

    /// Where the family's devices live, for messages.
    fn nodes(self) -> &'static str {
        match self {
            Family::DmaHeap => "/dev/dma_heap/*",
            Family::Udmabuf => "/dev/udmabuf",
            Family::Drm => "/dev/dri/card*",
            Family::V4l2 => "/dev/video*",
        }
    }
}

/// The catalogue exporter of a DRM driver name (`drm_driver.name`: `vgem`, `bochs-drm`,
/// `cirrus-qemu`, ...), if the catalogue has it.
pub fn drm_driver_exporter(name: &str) -> Option<ExporterId> {
    drm::driver_id(name).parse().ok()
}

/// What the device scans found.
#[derive(Debug, Default)]
pub struct Discovery {
    scans: Vec<(Family, FamilyScan)>,
}

/// Scan the system for exporters, each family in its own time-bounded child.
pub fn discover(op_timeout: Duration) -> Discovery {
    let page = rustix::param::page_size();
    let scans = Family::ALL
        .into_iter()
        .map(|fam| {
            let scan = worker::run(op_timeout, |_| fam.scan(page)).unwrap_or_else(|e| FamilyScan {
                reason: Some(format!("discovery failed: {e}")),
                ..Default::default()
            });
            (fam, scan)
        })
        .collect();
    Discovery { scans }
}

/// A found exporter of the catalogue.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) id: ExporterId,
    pub(crate) cand: Candidate,
}

impl Discovery {
    /// Ids of the catalogue exporters found, in report order (the memfd control last).
    pub fn exporter_ids(&self) -> Vec<ExporterId> {
        self.candidates().0.into_iter().map(|f| f.id).collect()
    }

    /// Every catalogue exporter found, the first of each id kept and others noted in its
    /// detail; and the devices whose exporter the model does not know.
    pub(crate) fn candidates(&self) -> (Vec<Found>, Vec<Unmodeled>) {
        let mut out: Vec<Found> = Vec::new();
        let mut unmodeled = Vec::new();
        let mut all: Vec<Candidate> = self
            .scans
            .iter()
            .flat_map(|(_, s)| s.candidates.clone())
            .collect();
        all.push(Candidate {
            id: ExporterId::Memfd.to_string(),
            source: Source::Memfd,
            detail: Map::from_iter([("node".to_owned(), json!("memfd_create"))]),
        });
        for c in all {
            let Ok(id) = c.id.parse::<ExporterId>() else {
                let node = c.detail.get("node").and_then(|n| n.as_str()).unwrap_or("?");
                unmodeled.push(Unmodeled {
                    node: node.to_owned(),
                    name: c.id.clone(),
                });
                continue;
            };
            match out.iter_mut().find(|o| o.id == id) {
                Some(first) => {
                    let node = c.detail.get("node").cloned().unwrap_or(json!(null));
                    match first
                        .cand
                        .detail
                        .entry("duplicates")
                        .or_insert_with(|| json!([]))
                    {
                        serde_json::Value::Array(a) => a.push(node),
                        other => *other = json!([node]),
                    }
                }
                None => out.push(Found { id, cand: c }),
            }
        }
        for (fam, scan) in &self.scans {
            for (name, why) in &scan.unavailable {
                if name.parse::<ExporterId>().is_err() {
                    unmodeled.push(Unmodeled {
                        node: fam.nodes().to_owned(),
                        name: format!("{name} ({why})"),
                    });
                }
            }
        }
        (out, unmodeled)
    }

    fn scan_of(&self, fam: Family) -> Option<&FamilyScan> {
        self.scans.iter().find(|(f, _)| *f == fam).map(|(_, s)| s)
    }

    /// Why a requested exporter is not among the candidates, naming where it was looked for.
    fn reason_missing(&self, id: ExporterId) -> (String, Vec<String>) {
        for (_, scan) in &self.scans {
            if let Some((_, why)) = scan.unavailable.iter().find(|(u, _)| u == id.as_str()) {
                return (why.clone(), Vec::new());
            }
        }
        let Some(fam) = Family::of(id) else {
            return (
                format!(
                    "not probed: no device scan finds {id} (virtio-gpu blob resources need \
                     DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB)"
                ),
                Vec::new(),
            );
        };
        let Some(scan) = self.scan_of(fam) else {
            return (format!("{}: not scanned", fam.nodes()), Vec::new());
        };
        let errors = scan.errors.clone();
        if let Some(r) = &scan.reason {
            return (format!("{}: {r}", fam.nodes()), errors);
        }
        let why = match fam {
            Family::DmaHeap => format!("{}: no heap exporting as {id}", fam.nodes()),
            Family::Udmabuf => format!("{}: ENOENT", fam.nodes()),
            Family::Drm => format!("{}: no DRM card driven by {id}", fam.nodes()),
            Family::V4l2 => format!("{}: no V4L2 capture node exporting as {id}", fam.nodes()),
        };
        (why, errors)
    }
}

/// The row of an exporter that could not be reached.
fn unavailable_row(id: ExporterId, reason: &str, errors: Vec<String>) -> ExporterReport {
    let mut detail = Map::new();
    if !errors.is_empty() {
        detail.insert("errors".into(), json!(errors));
    }
    ExporterReport {
        kernel: None,
        exporter: id.to_string(),
        policy: None,
        ops: Default::default(),
        warnings: Vec::new(),
        gup_struct_pages: None,
        warned: None,
        warned_at: None,
        status: Some(Outcome::unavailable(reason).to_string()),
        detail,
    }
}

/// The upstream version in `/proc/version` (`Linux version 6.1.0-56-amd64 (...) #1 SMP
/// PREEMPT_DYNAMIC Debian 6.1.192-1 (...)`): the first `MAJOR.MINOR.PATCH` after the
/// distribution name, else the release's own.
pub fn kernel_version() -> Option<String> {
    let text = std::fs::read_to_string("/proc/version").ok()?;
    parse_kernel_version(&text)
}

fn parse_kernel_version(text: &str) -> Option<String> {
    let is_version = |w: &str| {
        let core = w.split(['-', '+', '~']).next().unwrap_or("");
        let parts: Vec<&str> = core.split('.').collect();
        (parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
        .then(|| core.to_owned())
    };
    let words: Vec<&str> = text.split_whitespace().collect();
    if let Some(i) = words.iter().position(|w| *w == "Debian" || *w == "Ubuntu") {
        if let Some(v) = words[i + 1..].iter().find_map(|w| is_version(w)) {
            return Some(v);
        }
    }
    words.get(2).and_then(|w| is_version(w))
}

/// The kernel release (`uname -r`).
pub fn kernel_release() -> String {
    rustix::system::uname()
        .release()
        .to_string_lossy()
        .into_owned()
}

/// Probe the running kernel.
///
/// With [`ProbeOptions::exporters`] empty, every reachable exporter gets a
/// row (plus `udmabuf-hugetlb` as unavailable when udmabuf exists but the
/// hugetlb pool is empty); otherwise exactly the requested ids, in order,
/// unreachable ones as `{"status": "unavailable: REASON", "ops": {}}`.
pub fn run(opts: &ProbeOptions) -> ProbeReport {
    let page = rustix::param::page_size();
    let odirect = odirect::OdirectTarget::resolve(opts.odirect_path.as_deref());
    // A soft-RoCE device created here is removed below, or by its destructor on unwind.
    let (rdma, soft_roce) = rdma::setup(opts.op_timeout, opts.create_soft_roce.as_ref());
    let kmsg = opts.kmsg.then(open_kmsg).flatten();
    let env = ops::Env {
        page,
        timeout: opts.op_timeout,
        odirect: odirect.path.clone(),
        rdma,
        kmsg,
    };
    let discovery = discover(opts.op_timeout);
    let (found, unmodeled) = discovery.candidates();

    let mut exporters = Vec::new();
    if opts.exporters.is_empty() {
        for f in &found {
            exporters.push(ops::probe_exporter(f.id, &f.cand, &env));
        }
        for (_, scan) in &discovery.scans {
            for (name, why) in &scan.unavailable {
                if let Ok(id) = name.parse::<ExporterId>() {
                    exporters.push(unavailable_row(id, why, Vec::new()));
                }
            }
        }
    } else {
        let mut seen = BTreeSet::new();
        for &id in &opts.exporters {
            if !seen.insert(id) {
                continue;
            }
            match found.iter().find(|f| f.id == id) {
                Some(f) => exporters.push(ops::probe_exporter(f.id, &f.cand, &env)),
                None => {
                    let (why, errors) = discovery.reason_missing(id);
                    exporters.push(unavailable_row(id, &why, errors));
                }
            }
        }
    }
    let scenarios = opts.scenarios.as_ref().map(|list| {
        let run_env = scenarios::RunEnv {
            page,
            step_timeout: opts.op_timeout,
            odirect: odirect.path.clone(),
        };
        run_scenarios(list, &discovery, &found, &run_env)
    });
    drop(odirect);
    if let Some(Err(e)) = soft_roce.map(rdma::SoftRoceDevice::remove) {
        eprintln!("pfnguard: {e}");
    }
    ProbeReport {
        kernel_release: kernel_release(),
        kernel_version: kernel_version(),
        kernel_package: None,
        mmap_check: mmap_check(),
        kmsg: env.kmsg.is_some(),
        exporters,
        unmodeled,
        scenarios,
    }
}

/// Run the scenarios on the exporters found; one entry per scenario, in order.
fn run_scenarios(
    list: &[ScenarioInput],
    discovery: &Discovery,
    found: &[Found],
    env: &scenarios::RunEnv,
) -> ScenarioSection {
    let runs = list
        .iter()
        .map(|s| match s {
            ScenarioInput::Skip {
                name,
                exporter,
                reason,
            } => ScenarioRun {
                scenario: name.clone(),
                exporter: exporter.clone(),
                definition: None,
                status: Some(format!("skipped: {reason}")),
                total: None,
                interleavings: Vec::new(),
            },
            ScenarioInput::Plan(plan, text) => {
                let mut run = ScenarioRun {
                    scenario: plan.name.clone(),
                    exporter: plan.exporter.to_string(),
                    definition: Some(text.clone()),
                    status: None,
                    total: Some(plan.total.to_string()),
                    interleavings: Vec::new(),
                };
                match found.iter().find(|f| f.id == plan.exporter) {
                    Some(f) => {
                        run.interleavings = scenarios::run_plan(plan, &f.cand.source, env);
                    }
                    None => {
                        let (why, _) = discovery.reason_missing(plan.exporter);
                        run.status = Some(format!(
                            "skipped: exporter {} not reachable: {why}",
                            plan.exporter
                        ));
                    }
                }
                run
            }
        })
        .collect();
    ScenarioSection {
        cap: SCENARIO_CAP,
        runs,
    }
}

/// The kernel log reader for `--kmsg`, or `None` (said on stderr) when `/dev/kmsg` cannot be
/// read.
fn open_kmsg() -> Option<kmsg_watch::KmsgWatch> {
    match kmsg_watch::KmsgWatch::open() {
        Ok(w) => {
            for n in &w.notes {
                eprintln!("pfnguard: --kmsg: {n}");
            }
            Some(w)
        }
        Err(e) => {
            eprintln!("pfnguard: --kmsg: {e}: the kernel log is not read");
            None
        }
    }
}

/// Where the dma-buf mmap check series (`kernel/dma-buf-mmap-check`) shows its level.
pub const MMAP_CHECK_PARAM: &str = "/sys/module/dma_buf/parameters/mmap_check";

/// The dma-buf core's mmap check level (`off`, `warn`, `require`, `strict`), `None` on a kernel
/// without the parameter.
pub fn mmap_check() -> Option<String> {
    std::fs::read_to_string(MMAP_CHECK_PARAM)
        .ok()
        .and_then(|t| parse_mmap_check(&t))
}

/// The value of the parameter file: its `get` (`dma_buf_mmap_check_get`) prints the level's
/// name and a newline.
fn parse_mmap_check(text: &str) -> Option<String> {
    let v = text.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_of_ids() {
        assert_eq!(
            Family::of(ExporterId::UdmabufHugetlb),
            Some(Family::Udmabuf)
        );
        assert_eq!(Family::of(ExporterId::VividDmaContig), Some(Family::V4l2));
        assert_eq!(Family::of(ExporterId::Vgem), Some(Family::Drm));
        assert_eq!(Family::of(ExporterId::SystemHeap), Some(Family::DmaHeap));
        assert_eq!(Family::of(ExporterId::Memfd), None);
    }

    #[test]
    fn upstream_version_from_proc_version() {
        let deb = "Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian \
                   12.2.0-14+deb12u1) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP \
                   PREEMPT_DYNAMIC Debian 6.1.192-1 (2026-10-01)";
        assert_eq!(parse_kernel_version(deb).as_deref(), Some("6.1.192"));
        let plain = "Linux version 6.18.3 (root@host) (gcc 14) #1 SMP";
        assert_eq!(parse_kernel_version(plain).as_deref(), Some("6.18.3"));
        assert_eq!(parse_kernel_version("garbage"), None);
    }

    #[test]
    fn mmap_check_level_is_trimmed() {
        assert_eq!(parse_mmap_check("warn\n").as_deref(), Some("warn"));
        assert_eq!(parse_mmap_check(" strict \n").as_deref(), Some("strict"));
        assert_eq!(parse_mmap_check("\n"), None);
        assert_eq!(parse_mmap_check(""), None);
    }

    #[test]
    fn unknown_devices_are_listed_not_probed() {
        let mut heap = FamilyScan::default();
        heap.candidates.push(Candidate {
            id: "secure-heap".into(),
            source: Source::DmaHeap {
                node: "/dev/dma_heap/secure".into(),
            },
            detail: Map::from_iter([("node".to_owned(), json!("/dev/dma_heap/secure"))]),
        });
        let d = Discovery {
            scans: vec![(Family::DmaHeap, heap)],
        };
        let (found, unmodeled) = d.candidates();
        assert_eq!(
            found.iter().map(|f| f.id).collect::<Vec<_>>(),
            vec![ExporterId::Memfd]
        );
        assert_eq!(unmodeled.len(), 1);
        assert_eq!(unmodeled[0].node, "/dev/dma_heap/secure");
        let (why, _) = d.reason_missing(ExporterId::Vgem);
        assert!(why.contains("/dev/dri/card*"), "{why}");
    }
}
