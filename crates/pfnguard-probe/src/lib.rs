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
//! removes it again when it ends. The probe changes no other host state.
//!
//! Modules: [`uapi`] (hand-written kernel uapi layouts, checked against the
//! headers by `tests/uapi_headers.rs`), [`procfs`] (smaps, maps, pagemap and
//! fdinfo parsers), one module per exporter family (`dma_heap`, `udmabuf`,
//! `drm`, `v4l2`, `memfd`), `ops` and `kvm` (the op keys), `worker` (the
//! time-bounded child), `capture` ([`capture_fixtures`], the procfs fixtures
//! the parser tests read), and `sys`, the only module with `unsafe` code.
#![deny(unsafe_code)]
#![warn(missing_docs)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use pfnguard_report::{value, ExporterReport, ProbeReport};
use serde_json::{json, Map};

mod capture;
mod dma_heap;
mod drm;
mod errno;
mod exporter;
mod kvm;
mod memfd;
mod odirect;
mod ops;
pub mod procfs;
mod rdma;
mod sys;
pub mod uapi;
mod udmabuf;
mod v4l2;
mod worker;

pub use capture::capture_fixtures;
use exporter::{Candidate, FamilyScan, Source};

/// What to probe and how.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// Exporter ids to probe; empty means every exporter the kernel can reach.
    pub exporters: Vec<String>,
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
}

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
        }
    }
}

/// The exporter id of the memfd control.
pub const MEMFD_ID: &str = "memfd";

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

    /// The family an exporter id belongs to, if it is not found.
    fn of(id: &str) -> Option<Family> {
        if id.starts_with("udmabuf-") {
            Some(Family::Udmabuf)
        } else if v4l2::is_v4l2_id(id) {
            Some(Family::V4l2)
        } else if drm::KNOWN_IDS.contains(&id) {
            Some(Family::Drm)
        } else if dma_heap::is_heap_id(id) {
            Some(Family::DmaHeap)
        } else {
            None
        }
    }
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

impl Discovery {
    /// Ids of the exporters found, in report order (the memfd control last).
    pub fn exporter_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for c in self.candidates() {
            if !ids.contains(&c.id) {
                ids.push(c.id);
            }
        }
        ids
    }

    /// Every candidate, the first of each id kept, others noted in its detail.
    fn candidates(&self) -> Vec<Candidate> {
        let mut out: Vec<Candidate> = Vec::new();
        let mut all: Vec<Candidate> = self
            .scans
            .iter()
            .flat_map(|(_, s)| s.candidates.clone())
            .collect();
        all.push(Candidate {
            id: MEMFD_ID.into(),
            source: Source::Memfd,
            detail: Map::from_iter([("node".to_owned(), json!("memfd_create"))]),
        });
        for c in all {
            match out.iter_mut().find(|o| o.id == c.id) {
                Some(first) => {
                    let node = c.detail.get("node").cloned().unwrap_or(json!(null));
                    match first
                        .detail
                        .entry("duplicates")
                        .or_insert_with(|| json!([]))
                    {
                        serde_json::Value::Array(a) => a.push(node),
                        other => *other = json!([node]),
                    }
                }
                None => out.push(c),
            }
        }
        out
    }

    fn scan_of(&self, fam: Family) -> Option<&FamilyScan> {
        self.scans.iter().find(|(f, _)| *f == fam).map(|(_, s)| s)
    }

    /// Why a requested exporter id is not among the candidates.
    fn reason_missing(&self, id: &str) -> (String, Vec<String>) {
        for (_, scan) in &self.scans {
            if let Some((_, why)) = scan.unavailable.iter().find(|(u, _)| u == id) {
                return (why.clone(), Vec::new());
            }
        }
        if id == "virtio-gpu-blob" {
            return (
                "not probed: virtio-gpu blob resources need DRM_IOCTL_VIRTGPU_RESOURCE_CREATE_BLOB"
                    .into(),
                Vec::new(),
            );
        }
        let Some(fam) = Family::of(id) else {
            return ("ENOENT".into(), Vec::new());
        };
        let Some(scan) = self.scan_of(fam) else {
            return ("ENOENT".into(), Vec::new());
        };
        let errors = scan.errors.clone();
        if let Some(r) = &scan.reason {
            return (r.clone(), errors);
        }
        let why = match fam {
            Family::DmaHeap => "ENOENT".to_owned(),
            Family::Udmabuf => "ENOENT".to_owned(),
            Family::Drm => format!("no DRM card driven by {id}"),
            Family::V4l2 => format!("no V4L2 capture node exporting as {id}"),
        };
        (why, errors)
    }
}

/// The row of an exporter that could not be reached.
fn unavailable_row(id: &str, reason: &str, errors: Vec<String>) -> ExporterReport {
    let mut detail = Map::new();
    if !errors.is_empty() {
        detail.insert("errors".into(), json!(errors));
    }
    ExporterReport {
        kernel: None,
        exporter: id.to_owned(),
        policy: None,
        ops: Default::default(),
        warnings: Vec::new(),
        status: Some(format!("{}{reason}", value::UNAVAILABLE_PREFIX)),
        detail,
    }
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
    let env = ops::Env {
        page,
        timeout: opts.op_timeout,
        odirect: odirect.path.clone(),
        rdma,
    };
    let discovery = discover(opts.op_timeout);
    let candidates = discovery.candidates();

    let mut exporters = Vec::new();
    if opts.exporters.is_empty() {
        for c in &candidates {
            exporters.push(ops::probe_exporter(c, &env));
        }
        for (_, scan) in &discovery.scans {
            for (id, why) in &scan.unavailable {
                exporters.push(unavailable_row(id, why, Vec::new()));
            }
        }
    } else {
        let mut seen = BTreeSet::new();
        for id in &opts.exporters {
            if !seen.insert(id.as_str()) {
                continue;
            }
            match candidates.iter().find(|c| &c.id == id) {
                Some(c) => exporters.push(ops::probe_exporter(c, &env)),
                None => {
                    let (why, errors) = discovery.reason_missing(id);
                    exporters.push(unavailable_row(id, &why, errors));
                }
            }
        }
    }
    drop(odirect);
    if let Some(Err(e)) = soft_roce.map(rdma::SoftRoceDevice::remove) {
        eprintln!("pfnguard: {e}");
    }
    ProbeReport {
        kernel_release: kernel_release(),
        exporters,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_of_ids() {
        assert_eq!(Family::of("udmabuf-hugetlb"), Some(Family::Udmabuf));
        assert_eq!(Family::of("vivid-dma-contig"), Some(Family::V4l2));
        assert_eq!(Family::of("vgem"), Some(Family::Drm));
        assert_eq!(Family::of("system-heap"), Some(Family::DmaHeap));
        assert_eq!(Family::of("nonsense"), None);
    }
}
