//! The vocabulary shared by the model (`pfnguard predict`) and the live-kernel
//! probe (`pfnguard probe`): the userspace operation keys, the value strings
//! they report, and the JSON documents both emit, so that `pfnguard check`
//! can compare them cell by cell.
//!
//! Values are strings on purpose: `ok`, an errno name (`EFAULT`), a signal
//! (`SIGBUS`, `SIGSEGV`), `BUG`, `skipped`, `timeout`, `unavailable: REASON`,
//! `ok:<suffix>` where the kernel reports success but the effect differs, and
//! for `vmflags` the smaps mnemonics in kernel order.
#![warn(missing_docs)]

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

/// The value of one cell: what the kernel (or the model) said for one op.
pub type OpValue = String;

/// Values that are not an outcome of the op itself but of the harness.
pub mod value {
    /// The op succeeded.
    pub const OK: &str = "ok";
    /// An earlier step (export, mmap) failed, so the op did not run.
    pub const SKIPPED: &str = "skipped";
    /// The op did not finish within its time bound and was killed.
    pub const TIMEOUT: &str = "timeout";
    /// A kernel BUG_ON fired (model only; a real kernel oopses).
    pub const BUG: &str = "BUG";
    /// Prefix of a value for an exporter or op the running system cannot reach.
    pub const UNAVAILABLE_PREFIX: &str = "unavailable: ";

    /// Whether a value says the cell could not be measured at all
    /// (`unavailable: …`), as opposed to an outcome.
    pub fn is_unavailable(v: &str) -> bool {
        v.starts_with(UNAVAILABLE_PREFIX)
    }
}

/// One exporter's row: what `predict` prints, and one element of the probe's
/// `exporters` array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExporterReport {
    /// Kernel profile (`6.1`, `6.12`) for predictions; absent in probe rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<String>,
    /// Exporter id (`system-heap`, `vgem`, …).
    pub exporter: String,
    /// Policy (`off`, `warn`, `require`, `strict`) for predictions; absent in probe rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    /// The outcome of each op. A probe row for an unreachable exporter has none.
    #[serde(default)]
    pub ops: BTreeMap<OpKey, OpValue>,
    /// Kernel warnings recorded while running the ops (model only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// `unavailable: REASON` when the exporter could not be reached (probe only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Free-form details: device node, driver name, sizes, raw smaps lines.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub detail: serde_json::Map<String, serde_json::Value>,
}

/// The document `pfnguard probe --format json` prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// `uname -r` of the probed kernel.
    pub kernel_release: String,
    /// One row per exporter the probe looked for.
    pub exporters: Vec<ExporterReport>,
}
