//! The vocabulary shared by the model (`pfnguard predict`) and the live-kernel
//! probe (`pfnguard probe`): the userspace operation keys ([`OpKey`]), the
//! exporter ids ([`ExporterId`]), the value of a cell ([`Outcome`]), the rule
//! that decides which ops run after a step failed ([`OpKey::prerequisite`],
//! [`run_row`]), and the JSON documents both emit, so that `pfnguard check`
//! can compare them cell by cell.
#![warn(missing_docs)]

/// Serialize a type as its [`Display`](std::fmt::Display) string and deserialize it with its
/// [`FromStr`](std::str::FromStr), whose error becomes the deserializer's: the JSON documents
/// hold exactly the strings the vocabulary reads and writes.
macro_rules! serde_as_string {
    ($t:ty) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <String as serde::Deserialize>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

mod exporter;
mod outcome;
pub mod scenarios;

pub use exporter::{ExporterId, UnknownExporterId};
pub use outcome::{
    BadOutcome, Effect, ErrnoName, Observation, Outcome, Pagemap, Refault, Rss, SignalName,
};

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A userspace operation that drives a kernel path over a dma-buf mapping.
///
/// The order of the variants is the order of the columns in every table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKey {
    /// Allocate and export the buffer (dma-buf fd).
    Export,
    /// `mmap(MAP_SHARED, PROT_READ|PROT_WRITE)` and touch every page.
    MmapShared,
    /// `mmap(MAP_PRIVATE, PROT_READ|PROT_WRITE)`, then a write to the first page.
    MmapPrivate,
    /// The `VmFlags:` line of `/proc/self/smaps`.
    Vmflags,
    /// `Rss:` of the mapping in `/proc/self/smaps` after every page was touched.
    Rss,
    /// `/proc/self/pagemap` entry of the first page.
    Pagemap,
    /// `read(2)` from an `O_DIRECT` file into the mapping (the mapping is the destination).
    OdirectRead,
    /// `write(2)` to an `O_DIRECT` file from the mapping.
    OdirectWrite,
    /// `vmsplice(2)` of the mapping into a pipe.
    Vmsplice,
    /// io_uring `IORING_REGISTER_BUFFERS` over the mapping.
    IoUringRegister,
    /// `process_vm_readv(2)` with the remote iovec in the mapping.
    ProcessVmReadv,
    /// `process_vm_writev(2)` with the remote iovec in the mapping.
    ProcessVmWritev,
    /// `pread(2)` of `/proc/PID/mem` at the mapping.
    ProcMemRead,
    /// `pwrite(2)` of `/proc/PID/mem` at the mapping.
    ProcMemWrite,
    /// `write(2)` to a pipe from the mapping (a plain copy_from_user).
    PipeWrite,
    /// `fork(2)`, the child reads the mapping.
    ForkChildRead,
    /// `FUTEX_WAKE` (shared) on a word in the mapping.
    FutexWakeShared,
    /// `madvise(MADV_POPULATE_READ)`.
    MadvPopulateRead,
    /// `madvise(MADV_POPULATE_WRITE)`.
    MadvPopulateWrite,
    /// `mlock(2)` of the mapping.
    Mlock,
    /// `madvise(MADV_DONTNEED)`, then touch the first page again.
    MadvDontneed,
    /// `mremap(2)` growing the mapping by one page (MREMAP_MAYMOVE).
    MremapGrow,
    /// A KVM memslot over the mapping, then a guest write fault.
    KvmMap,
    /// RDMA memory registration (`ib_umem_get`).
    RdmaRegMr,
}

impl OpKey {
    /// Every op key, in table order.
    pub const ALL: [OpKey; 24] = [
        OpKey::Export,
        OpKey::MmapShared,
        OpKey::MmapPrivate,
        OpKey::Vmflags,
        OpKey::Rss,
        OpKey::Pagemap,
        OpKey::OdirectRead,
        OpKey::OdirectWrite,
        OpKey::Vmsplice,
        OpKey::IoUringRegister,
        OpKey::ProcessVmReadv,
        OpKey::ProcessVmWritev,
        OpKey::ProcMemRead,
        OpKey::ProcMemWrite,
        OpKey::PipeWrite,
        OpKey::ForkChildRead,
        OpKey::FutexWakeShared,
        OpKey::MadvPopulateRead,
        OpKey::MadvPopulateWrite,
        OpKey::Mlock,
        OpKey::MadvDontneed,
        OpKey::MremapGrow,
        OpKey::KvmMap,
        OpKey::RdmaRegMr,
    ];

    /// The key as it appears in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKey::Export => "export",
            OpKey::MmapShared => "mmap_shared",
            OpKey::MmapPrivate => "mmap_private",
            OpKey::Vmflags => "vmflags",
            OpKey::Rss => "rss",
            OpKey::Pagemap => "pagemap",
            OpKey::OdirectRead => "odirect_read",
            OpKey::OdirectWrite => "odirect_write",
            OpKey::Vmsplice => "vmsplice",
            OpKey::IoUringRegister => "io_uring_register",
            OpKey::ProcessVmReadv => "process_vm_readv",
            OpKey::ProcessVmWritev => "process_vm_writev",
            OpKey::ProcMemRead => "proc_mem_read",
            OpKey::ProcMemWrite => "proc_mem_write",
            OpKey::PipeWrite => "pipe_write",
            OpKey::ForkChildRead => "fork_child_read",
            OpKey::FutexWakeShared => "futex_wake_shared",
            OpKey::MadvPopulateRead => "madv_populate_read",
            OpKey::MadvPopulateWrite => "madv_populate_write",
            OpKey::Mlock => "mlock",
            OpKey::MadvDontneed => "madv_dontneed",
            OpKey::MremapGrow => "mremap_grow",
            OpKey::KvmMap => "kvm_map",
            OpKey::RdmaRegMr => "rdma_reg_mr",
        }
    }
}

impl OpKey {
    /// One line: what the op does, as both the model and the probe run it.
    pub fn describe(self) -> &'static str {
        match self {
            OpKey::Export => "allocate and export the buffer",
            OpKey::MmapShared => "mmap MAP_SHARED PROT_READ|PROT_WRITE, write every page",
            OpKey::MmapPrivate => {
                "mmap MAP_PRIVATE, write page 0: ok:cow if the buffer stays unchanged"
            }
            OpKey::Vmflags => "VmFlags of the mapping in /proc/self/smaps",
            OpKey::Rss => "smaps Rss of the mapping: zero or counted",
            OpKey::Pagemap => "/proc/self/pagemap entry of page 0: present or hole",
            OpKey::OdirectRead => {
                "read(2) from an O_DIRECT file into the mapping (GUP, FOLL_WRITE)"
            }
            OpKey::OdirectWrite => "write(2) to an O_DIRECT file from the mapping (GUP)",
            OpKey::Vmsplice => "vmsplice(2) of the mapping into a pipe (get_user_pages_fast)",
            OpKey::IoUringRegister => "IORING_REGISTER_BUFFERS over the mapping (long-term pin)",
            OpKey::ProcessVmReadv => "process_vm_readv(2) from the mapping (pin_user_pages_remote)",
            OpKey::ProcessVmWritev => {
                "process_vm_writev(2) into the mapping (pin_user_pages_remote)"
            }
            OpKey::ProcMemRead => {
                "pread(2) of /proc/self/mem at the mapping (GUP, then vm_ops->access)"
            }
            OpKey::ProcMemWrite => "pwrite(2) of /proc/self/mem at the mapping",
            OpKey::PipeWrite => "write(2) to a pipe from the mapping (copy_from_user, no GUP)",
            OpKey::ForkChildRead => "fork(2); the child reads every page",
            OpKey::FutexWakeShared => "FUTEX_WAKE on a shared futex in the mapping (get_futex_key)",
            OpKey::MadvPopulateRead => "madvise(MADV_POPULATE_READ)",
            OpKey::MadvPopulateWrite => "madvise(MADV_POPULATE_WRITE)",
            OpKey::Mlock => "mlock(2): ok:locked if VmFlags shows lo",
            OpKey::MadvDontneed => "madvise(MADV_DONTNEED), then a child reads page 0 again",
            OpKey::MremapGrow => "mremap(2) growing the mapping by one page (MREMAP_MAYMOVE)",
            OpKey::KvmMap => "a KVM memslot over the mapping; the guest writes page 0 (hva_to_pfn)",
            OpKey::RdmaRegMr => "RDMA memory registration (ib_umem_get: long-term pin)",
        }
    }
}

impl fmt::Display for OpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An op key that is not one of [`OpKey::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown op key `{0}` (expected one of: {list})", list = OpKey::ALL.map(OpKey::as_str).join(", "))]
pub struct UnknownOpKey(pub String);

impl FromStr for OpKey {
    type Err = UnknownOpKey;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OpKey::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownOpKey(s.to_owned()))
    }
}

impl OpKey {
    /// The op whose success this op needs on its own fresh buffer: every op runs after
    /// `export`, and every op but `export` and `mmap_shared` on the shared mapping that
    /// `mmap_shared` makes and touches (`mmap_private` checks its write through it).
    pub fn prerequisite(self) -> Option<OpKey> {
        match self {
            OpKey::Export => None,
            OpKey::MmapShared => Some(OpKey::Export),
            _ => Some(OpKey::MmapShared),
        }
    }

    /// Every op this one needs, nearest first.
    pub fn prerequisites(self) -> Vec<OpKey> {
        std::iter::successors(self.prerequisite(), |p| p.prerequisite()).collect()
    }
}

/// The skip rule: the step whose failure keeps `op` from running, given the outcomes of the
/// ops before it in the row (`None`: the op runs).
///
/// A prerequisite that did not succeed is the cause; a prerequisite that was itself skipped
/// passes its own cause on.
pub fn skip_cause(op: OpKey, row: &BTreeMap<OpKey, Outcome>) -> Option<OpKey> {
    let pre = op.prerequisite()?;
    match row.get(&pre) {
        Some(Outcome::Skipped(Some(cause))) => Some(*cause),
        Some(v) if v.is_success() => skip_cause(pre, row),
        Some(_) => Some(pre),
        None => skip_cause(pre, row).or(Some(pre)),
    }
}

/// Run every op of a row in table order, each through `run`, except those the skip rule
/// marks [`Outcome::Skipped`]. The model (`pfnguard predict`) and the probe both build their
/// rows with it.
pub fn run_row(mut run: impl FnMut(OpKey) -> Outcome) -> BTreeMap<OpKey, Outcome> {
    let mut row = BTreeMap::new();
    for op in OpKey::ALL {
        let v = match skip_cause(op, &row) {
            Some(cause) => Outcome::Skipped(Some(cause)),
            None => run(op),
        };
        row.insert(op, v);
    }
    row
}

/// A row that breaks the vocabulary's rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RowError {
    /// A value that cannot be the outcome of its op.
    #[error("op {op}: `{value}` is not a value of this op")]
    Misfit {
        /// The op.
        op: OpKey,
        /// Its value.
        value: String,
    },
    /// `skipped` where the skip rule says the op runs.
    #[error("op {op} is `skipped` but the ops it needs ({needs}) succeeded")]
    SkippedWithoutCause {
        /// The op.
        op: OpKey,
        /// Its prerequisites.
        needs: String,
    },
    /// A measured value where the skip rule says the op could not run.
    #[error("op {op} has a value but {cause}, which it needs, did not succeed")]
    RanWithoutPrerequisite {
        /// The op.
        op: OpKey,
        /// The failed step.
        cause: OpKey,
    },
}

/// One exporter's row: what `predict` prints, and one element of the probe's
/// `exporters` array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExporterReport {
    /// Kernel profile (`6.1`, `6.12`) for predictions; absent in probe rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// Exporter: a catalogue id ([`ExporterId`]), or the `name` of a user-described exporter
    /// in predictions.
    pub exporter: String,
    /// Policy (`off`, `warn`, `require`, `strict`) for predictions; absent in probe rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The outcome of each op. A probe row for an unreachable exporter has none. An op given
    /// twice is an error, not a choice.
    #[serde(default, deserialize_with = "unique_ops")]
    pub ops: BTreeMap<OpKey, Outcome>,
    /// Kernel warnings recorded while running the ops (model only; always present, empty when
    /// the kernel warned about nothing).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// The ops whose kernel path got `struct page`s of the buffer from GUP (model only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gup_struct_pages: Option<Vec<OpKey>>,
    /// The ops during which the kernel logged a warning (model only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warned: Option<Vec<OpKey>>,
    /// The kernel's warnings per op, each as the `file:function` of its WARN site
    /// (`drivers/dma-buf/dma-buf.c:dma_buf_mmap_check`), for the ops that warned: the model's
    /// from its warning events, the probe's from the kernel log (`probe --kmsg`). Absent when
    /// warnings were not recorded; an op without warnings has no entry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warned_at: Option<BTreeMap<OpKey, Vec<String>>>,
    /// `unavailable: REASON` when the exporter could not be reached (probe only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Free-form details: device node, driver name, sizes, raw smaps lines.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub detail: serde_json::Map<String, serde_json::Value>,
}

impl ExporterReport {
    /// Check every value against its op and the skip rule, and name the failed step of every
    /// `skipped` cell read from JSON.
    pub fn resolve_skips(&mut self) -> Result<(), RowError> {
        // Table order puts every op after the ops it needs, so causes resolve front to back.
        let mut done: BTreeMap<OpKey, Outcome> = BTreeMap::new();
        for op in OpKey::ALL {
            let Some(v) = self.ops.get_mut(&op) else {
                continue;
            };
            let cause = skip_cause(op, &done).filter(|c| done.contains_key(c));
            match (&*v, cause) {
                (Outcome::Skipped(_), Some(c)) => *v = Outcome::Skipped(Some(c)),
                (Outcome::Skipped(_), None) => {
                    return Err(RowError::SkippedWithoutCause {
                        op,
                        needs: op
                            .prerequisites()
                            .iter()
                            .map(|p| p.as_str())
                            .collect::<Vec<_>>()
                            .join(", "),
                    })
                }
                (Outcome::Unavailable(_), _) | (_, None) => {}
                (_, Some(c)) => return Err(RowError::RanWithoutPrerequisite { op, cause: c }),
            }
            if !v.fits(op) {
                return Err(RowError::Misfit {
                    op,
                    value: v.to_string(),
                });
            }
            done.insert(op, v.clone());
        }
        Ok(())
    }
}

/// The `ops` object of a row, refusing an op key given twice.
fn unique_ops<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<OpKey, Outcome>, D::Error> {
    struct Ops;
    impl<'de> serde::de::Visitor<'de> for Ops {
        type Value = BTreeMap<OpKey, Outcome>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object of op keys and values")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut m: A,
        ) -> Result<Self::Value, A::Error> {
            let mut ops = BTreeMap::new();
            while let Some((k, v)) = m.next_entry::<OpKey, Outcome>()? {
                if ops.insert(k, v).is_some() {
                    return Err(serde::de::Error::custom(format!("op {k} given twice")));
                }
            }
            Ok(ops)
        }
    }
    d.deserialize_map(Ops)
}

/// A device the probe found whose exporter the model does not know (a dma-heap or DRM driver
/// outside the catalogue): listed, never probed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unmodeled {
    /// The device node.
    pub node: String,
    /// The heap or driver name.
    pub name: String,
}

/// A kernel's distribution package: `linux-image-6.1.0-57-amd64-unsigned` `6.1.192-3`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelPackage {
    /// The package name.
    pub name: String,
    /// The package version.
    pub version: String,
}

/// The document `pfnguard probe --format json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// `uname -r` of the probed kernel.
    pub kernel_release: String,
    /// The upstream version the kernel says it is built from (`/proc/version`: Debian's
    /// `6.1.0-56-amd64` is `6.1.192`), when the probe could read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_version: Option<String>,
    /// The distribution package the kernel came from, when the one who booted it knows (the
    /// QEMU harness records it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_package: Option<KernelPackage>,
    /// The dma-buf core's mmap check (`/sys/module/dma_buf/parameters/mmap_check`, from the
    /// series in `kernel/dma-buf-mmap-check`): `off`, `warn`, `require` or `strict`. Absent on
    /// kernels without the parameter, which check nothing (`off`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mmap_check: Option<String>,
    /// Whether the probe read the kernel log around every op (`probe --kmsg`), so that each
    /// row's `warned_at` says which ops warned.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kmsg: bool,
    /// One row per exporter the probe looked for.
    pub exporters: Vec<ExporterReport>,
    /// Devices found whose exporter the model does not know.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmodeled: Vec<Unmodeled>,
    /// The scenarios run on this kernel (`probe --scenarios DIR`), absent when none were
    /// given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenarios: Option<scenarios::ScenarioSection>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_row() -> BTreeMap<OpKey, Outcome> {
        run_row(|op| match op {
            OpKey::Vmflags => "rd wr sh".parse().unwrap_or(Outcome::Bug),
            OpKey::Rss => "counted".parse().unwrap_or(Outcome::Bug),
            OpKey::Pagemap => "present".parse().unwrap_or(Outcome::Bug),
            _ => Outcome::Ok,
        })
    }

    #[test]
    fn probe_report_mmap_check_kmsg_and_warned_at() {
        let json = r#"{
            "kernel_release": "7.3.4",
            "mmap_check": "warn",
            "kmsg": true,
            "exporters": [{
                "exporter": "vgem",
                "ops": {"export": "ok"},
                "warned_at": {"mmap_shared": ["drivers/dma-buf/dma-buf.c:dma_buf_mmap_check"]},
                "detail": {"kmsg": {"mmap_shared": ["dma-buf: exporter vgem set up a mapping"]}}
            }]
        }"#;
        let r: ProbeReport = serde_json::from_str(json).unwrap();
        assert_eq!(r.mmap_check.as_deref(), Some("warn"));
        assert!(r.kmsg);
        let w = r.exporters[0].warned_at.as_ref().unwrap();
        assert_eq!(
            w[&OpKey::MmapShared],
            ["drivers/dma-buf/dma-buf.c:dma_buf_mmap_check"]
        );
        let back: ProbeReport = serde_json::from_value(serde_json::to_value(&r).unwrap()).unwrap();
        assert_eq!(back, r);

        // A report of a probe without --kmsg on a kernel without the parameter: the fields
        // are absent, not null or false.
        let plain = r#"{"kernel_release": "6.1.0-56-amd64", "exporters": [{"exporter": "vgem"}]}"#;
        let mut r: ProbeReport = serde_json::from_str(plain).unwrap();
        assert_eq!((r.mmap_check.as_deref(), r.kmsg), (None, false));
        assert_eq!(r.exporters[0].warned_at, None);
        let v = serde_json::to_value(&r).unwrap();
        assert!(
            v.get("mmap_check").is_none() && v.get("kmsg").is_none(),
            "{v}"
        );
        assert!(v["exporters"][0].get("warned_at").is_none(), "{v}");
        // --kmsg with no warning at all: an empty object, which says "read, nothing warned".
        r.kmsg = true;
        r.exporters[0].warned_at = Some(BTreeMap::new());
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["kmsg"], true);
        assert_eq!(v["exporters"][0]["warned_at"], serde_json::json!({}));
        // An unknown op key is refused.
        let bad = r#"{"exporter": "vgem", "warned_at": {"no_such_op": []}}"#;
        assert!(serde_json::from_str::<ExporterReport>(bad).is_err());
    }

    #[test]
    fn an_op_given_twice_is_refused() {
        let json = r#"{"exporter":"vgem","ops":{"export":"ok","export":"ENOMEM"}}"#;
        let e = serde_json::from_str::<ExporterReport>(json)
            .map(|_| ())
            .unwrap_err();
        assert!(e.to_string().contains("op export given twice"), "{e}");
    }

    #[test]
    fn a_failed_export_skips_everything_else() {
        let row = run_row(|op| {
            assert_eq!(op, OpKey::Export, "{op} ran after export failed");
            Outcome::errno("ENOSYS")
        });
        assert_eq!(row.len(), OpKey::ALL.len());
        assert_eq!(
            row[&OpKey::MmapShared],
            Outcome::Skipped(Some(OpKey::Export))
        );
        assert_eq!(row[&OpKey::Vmsplice], Outcome::Skipped(Some(OpKey::Export)));
    }

    #[test]
    fn a_failed_mmap_skips_every_op_on_the_mapping() {
        let row = run_row(|op| match op {
            OpKey::Export => Outcome::Ok,
            OpKey::MmapShared => Outcome::errno("EINVAL"),
            other => panic!("{other} ran after mmap_shared failed"),
        });
        assert_eq!(
            row[&OpKey::MmapPrivate],
            Outcome::Skipped(Some(OpKey::MmapShared))
        );
        assert_eq!(
            row[&OpKey::KvmMap],
            Outcome::Skipped(Some(OpKey::MmapShared))
        );
    }

    #[test]
    fn resolve_names_causes_and_refuses_inconsistent_rows() {
        let json = r#"{"exporter":"bochs","ops":{"export":"ENOSYS","mmap_shared":"skipped","rss":"skipped"}}"#;
        let mut r: ExporterReport = serde_json::from_str(json).unwrap();
        r.resolve_skips().unwrap();
        assert_eq!(r.ops[&OpKey::Rss], Outcome::Skipped(Some(OpKey::Export)));

        let mut r = ExporterReport {
            kernel: None,
            exporter: "vgem".into(),
            policy: None,
            ops: ok_row(),
            warnings: Vec::new(),
            gup_struct_pages: None,
            warned: None,
            warned_at: None,
            status: None,
            detail: Default::default(),
        };
        r.resolve_skips().unwrap();
        r.ops.insert(OpKey::Mlock, Outcome::Skipped(None));
        assert!(matches!(
            r.clone().resolve_skips(),
            Err(RowError::SkippedWithoutCause {
                op: OpKey::Mlock,
                ..
            })
        ));
        r.ops.insert(OpKey::Mlock, Outcome::Ok);
        r.ops.insert(OpKey::Rss, Outcome::Ok);
        assert!(matches!(
            r.clone().resolve_skips(),
            Err(RowError::Misfit { op: OpKey::Rss, .. })
        ));
        r.ops
            .insert(OpKey::Rss, "zero".parse().unwrap_or(Outcome::Bug));
        r.ops.insert(OpKey::Export, Outcome::errno("ENOMEM"));
        assert!(matches!(
            r.resolve_skips(),
            Err(RowError::RanWithoutPrerequisite { .. })
        ));
    }
}
