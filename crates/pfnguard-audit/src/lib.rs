//! `pfnguard audit`: the dma-bufs of a running system, who holds and maps each one, what they
//! cost each process, and whether each mapping keeps the VM_PFNMAP contract.
//!
//! It reads what Android's `dmabuf_dump` (libdmabufinfo) reads, from roots that can be
//! swapped for a fixture tree ([`Root`]):
//!
//! - `/proc/PID/fd/N` links (`/dmabuf:NAME`, fs/dcache.c:d_path → drivers/dma-buf/dma-buf.c:
//!   dmabuffs_dname) and `/proc/PID/fdinfo/N` (fs/proc/fd.c:seq_show, then
//!   drivers/dma-buf/dma-buf.c:dma_buf_show_fdinfo: `size`, `count`, `exp_name`, `name`; `ino`
//!   from seq_show) — module [`fdinfo`];
//! - `/proc/PID/maps` and `/proc/PID/smaps` (fs/proc/task_mmu.c:show_map_vma, show_smap,
//!   show_smap_vma_flags), through pfnguard-probe's parsers;
//! - `/proc/PID/pagemap` (fs/proc/task_mmu.c:pagemap_read, pte_to_pagemap_entry) —
//!   [`contract::PagemapSummary`];
//! - debugfs `dma_buf/bufinfo` ([`bufinfo`]) and sysfs `kernel/dmabuf/buffers` ([`sysfs`]) for
//!   the buffers no process holds;
//! - `/proc/sys/kernel/osrelease` for the kernel the model runs.
//!
//! Nothing is written to the system; processes and fds that vanish during the scan are
//! counted, never an error; what cannot be read is reported with the reason.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use pfnguard_probe::procfs::{parse_maps_line, parse_smaps};
use pfnguard_report::{ExporterId, OpKey};
use serde::Serialize;

pub mod bufinfo;
pub mod contract;
pub mod drm;
pub mod fdinfo;
pub mod root;
pub mod synth;
pub mod sysfs;
pub mod verify;

pub use contract::{
    predict_exporter, Contract, ExporterPrediction, PagemapSummary, Prediction, Predictor, GUP_OPS,
};
pub use root::{Reader, Root};

use root::{Miss, ReadFail, Tree};

/// An error of the audit itself (not a process that vanished or refused to be read).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file of the system could not be read for a reason other than ENOENT, ESRCH, EACCES
    /// or EPERM.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A capture file could not be written.
    #[error("writing {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// `--capture DIR` names a directory that already has files.
    #[error("{0} is not empty: --capture writes only into an empty or new directory")]
    CaptureNotEmpty(PathBuf),
    /// The procfs root has no process directories: not a procfs.
    #[error("{0} lists no process: not a procfs (give --proc DIR)")]
    NoProc(PathBuf),
}

/// The pages the audit assumes (x86-64, the model's architecture).
pub const PAGE_SIZE: u64 = 4096;

/// The most pagemap entries read per mapping (4 GiB of 4 KiB pages).
pub const MAX_PAGEMAP_PAGES: u64 = 1 << 20;

/// One dma-buf fd of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdRef {
    /// The fd number.
    pub fd: u32,
    /// The buffer's inode.
    pub inode: u64,
    /// `size:` of fdinfo.
    pub size: u64,
    /// `exp_name:`.
    pub exp_name: String,
    /// `name:`, when set.
    pub name: Option<String>,
}

/// One `/dmabuf:` mapping of a process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapRef {
    /// First address.
    pub start: u64,
    /// One past the last.
    pub end: u64,
    /// maps permissions.
    pub perms: String,
    /// The buffer's inode (maps' inode column).
    pub inode: u64,
    /// The name after `/dmabuf:`, if any.
    pub name: Option<String>,
    /// smaps `Rss:` in bytes, when smaps was read.
    pub rss: Option<u64>,
    /// smaps `VmFlags:` mnemonics.
    pub vmflags: Vec<String>,
    /// The pagemap summary, when pagemap was readable.
    pub pagemap: Option<PagemapSummary>,
}

/// What the scan found in one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcScan {
    /// The pid.
    pub pid: u32,
    /// `/proc/PID/comm`.
    pub comm: String,
    /// Its dma-buf fds.
    pub fds: Vec<FdRef>,
    /// Its `/dmabuf:` mappings.
    pub maps: Vec<MapRef>,
}

/// A process, or part of one, the audit could not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unreadable {
    /// The pid.
    pub pid: u32,
    /// Its comm, when readable.
    pub comm: Option<String>,
    /// The file that could not be read (`fd`, `maps`, `pagemap`).
    pub what: String,
    /// Why (the errno's message).
    pub why: String,
}

/// Everything one scan read, before the figures are computed.
#[derive(Debug, Clone, Default)]
pub struct Scan {
    /// `/proc/sys/kernel/osrelease`, trimmed.
    pub release: Option<String>,
    /// The processes that hold or map a dma-buf, by pid.
    pub procs: Vec<ProcScan>,
    /// The pids that vanished during the scan.
    pub vanished: Vec<u32>,
    /// What could not be read.
    pub unreadable: Vec<Unreadable>,
    /// debugfs `dma_buf/bufinfo`, when readable.
    pub bufinfo: Option<bufinfo::Bufinfo>,
    /// sysfs `kernel/dmabuf/buffers`, when the kernel has it.
    pub sysfs: Option<Vec<sysfs::SysfsBuffer>>,
    /// The DRM drivers of debugfs `dri/*/name`, when readable ([`drm`]).
    pub drm_drivers: Option<Vec<String>>,
    /// What the scan could not do and what that leaves out.
    pub notes: Vec<String>,
}

fn denied(pid: u32, comm: &Option<String>, what: &str, why: String) -> Unreadable {
    Unreadable {
        pid,
        comm: comm.clone(),
        what: what.to_owned(),
        why,
    }
}

enum ProcResult {
    Found(ProcScan, Vec<Unreadable>, Vec<String>),
    Nothing(Vec<Unreadable>, Vec<String>),
    Vanished,
}

/// Scan one process.
fn scan_pid(r: &Reader<'_>, pid: u32, pagemap: bool) -> Result<ProcResult, AuditError> {
    let mut unreadable = Vec::new();
    let mut notes = Vec::new();
    let comm = match r.text(Tree::Proc, &format!("{pid}/comm")) {
        Ok(c) => Some(c.trim_end_matches('\n').to_owned()),
        Err(ReadFail::Miss(Miss::Gone)) => return Ok(ProcResult::Vanished),
        Err(ReadFail::Miss(Miss::Denied(_))) => None,
        Err(ReadFail::Error(e)) => return Err(e),
    };
    let mut fds = Vec::new();
    match fdinfo::read_dmabuf_fds(r, pid) {
        Ok((f, n)) => {
            fds = f;
            notes.extend(n);
        }
        Err(ReadFail::Miss(Miss::Gone)) => return Ok(ProcResult::Vanished),
        Err(ReadFail::Miss(Miss::Denied(why))) => {
            unreadable.push(denied(pid, &comm, "fd", why));
        }
        Err(ReadFail::Error(e)) => return Err(e),
    }
    let mut maps = Vec::new();
    match r.text(Tree::Proc, &format!("{pid}/maps")) {
        Ok(text) if text.contains("/dmabuf") => {
            maps = read_dmabuf_maps(r, pid, &text, &comm, pagemap, &mut unreadable)?;
        }
        Ok(_) => {}
        Err(ReadFail::Miss(Miss::Gone)) => {
            if fds.is_empty() {
                return Ok(ProcResult::Vanished);
            }
        }
        Err(ReadFail::Miss(Miss::Denied(why))) => {
            unreadable.push(denied(pid, &comm, "maps", why));
        }
        Err(ReadFail::Error(e)) => return Err(e),
    }
    if fds.is_empty() && maps.is_empty() {
        return Ok(ProcResult::Nothing(unreadable, notes));
    }
    Ok(ProcResult::Found(
        ProcScan {
            pid,
            comm: comm.unwrap_or_else(|| "?".to_owned()),
            fds,
            maps,
        },
        unreadable,
        notes,
    ))
}

/// The `/dmabuf:` mappings of `maps`, with smaps' Rss and VmFlags and pagemap's summary.
fn read_dmabuf_maps(
    r: &Reader<'_>,
    pid: u32,
    maps_text: &str,
    comm: &Option<String>,
    pagemap: bool,
    unreadable: &mut Vec<Unreadable>,
) -> Result<Vec<MapRef>, AuditError> {
    let is_dmabuf = |p: &Option<String>| p.as_deref().is_some_and(|p| p.starts_with("/dmabuf"));
    let mut out: Vec<MapRef> = maps_text
        .lines()
        .filter(|l| l.contains("/dmabuf"))
        .filter_map(|l| parse_maps_line(l).ok())
        .filter(|e| is_dmabuf(&e.pathname))
        .map(|e| MapRef {
            start: e.start,
            end: e.end,
            perms: e.perms,
            inode: e.inode,
            name: e
                .pathname
                .as_deref()
                .and_then(|p| p.strip_prefix("/dmabuf:"))
                .filter(|n| !n.is_empty())
                .map(str::to_owned),
            rss: None,
            vmflags: Vec::new(),
            pagemap: None,
        })
        .collect();
    match r.text(Tree::Proc, &format!("{pid}/smaps")) {
        Ok(text) => {
            // Only the /dmabuf: blocks are parsed: a VMA header and its field lines.
            let mut keep = String::new();
            let mut on = false;
            for line in text.lines() {
                let header = line
                    .split_ascii_whitespace()
                    .next()
                    .is_some_and(|f| f.contains('-') && !f.ends_with(':'));
                if header {
                    on = line.contains("/dmabuf");
                }
                if on {
                    keep.push_str(line);
                    keep.push('\n');
                }
            }
            if let Ok(vmas) = parse_smaps(&keep) {
                for m in &mut out {
                    if let Some(v) = vmas.iter().find(|v| v.header.start == m.start) {
                        m.rss = v.rss_kb().map(|k| k * 1024);
                        m.vmflags = v.vmflags.clone();
                    }
                }
            }
        }
        Err(ReadFail::Miss(Miss::Gone)) => {}
        Err(ReadFail::Miss(Miss::Denied(why))) => {
            unreadable.push(denied(pid, comm, "smaps", why));
        }
        Err(ReadFail::Error(e)) => return Err(e),
    }
    if pagemap && !out.is_empty() {
        let ranges: Vec<(u64, usize)> = out
            .iter()
            .map(|m| {
                let pages = ((m.end - m.start) / PAGE_SIZE).min(MAX_PAGEMAP_PAGES);
                (m.start / PAGE_SIZE * 8, (pages * 8) as usize)
            })
            .collect();
        match r.ranges(Tree::Proc, &format!("{pid}/pagemap"), &ranges) {
            Ok(all) => {
                for (m, bytes) in out.iter_mut().zip(all) {
                    let mut s = PagemapSummary::default();
                    for c in bytes.chunks_exact(8) {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(c);
                        s.add(u64::from_le_bytes(b));
                    }
                    m.pagemap = Some(s);
                }
            }
            Err(ReadFail::Miss(Miss::Gone)) => {}
            Err(ReadFail::Miss(Miss::Denied(why))) => {
                unreadable.push(denied(pid, comm, "pagemap", why));
            }
            Err(ReadFail::Error(e)) => return Err(e),
        }
    }
    Ok(out)
}

/// Options of a scan.
#[derive(Debug, Clone, Copy)]
pub struct ScanOptions {
    /// Read pagemap for every mapping.
    pub pagemap: bool,
    /// Worker threads (0: every core).
    pub threads: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            pagemap: true,
            threads: 0,
        }
    }
}

/// Read the system through `r`.
pub fn scan(r: &Reader<'_>, opts: ScanOptions) -> Result<Scan, AuditError> {
    let mut s = Scan::default();
    let names = match r.list(Tree::Proc, "") {
        Ok(n) => n,
        Err(ReadFail::Error(e)) => return Err(e),
        Err(ReadFail::Miss(_)) => return Err(AuditError::NoProc(r.path(Tree::Proc, ""))),
    };
    let mut pids: Vec<u32> = names.iter().filter_map(|n| n.parse().ok()).collect();
    if pids.is_empty() {
        return Err(AuditError::NoProc(r.path(Tree::Proc, "")));
    }
    pids.sort_unstable();
    s.release = r
        .text(Tree::Proc, "sys/kernel/osrelease")
        .ok()
        .map(|t| t.trim().to_owned());
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        opts.threads
    }
    .clamp(1, 64);
    let chunk = pids.len().div_ceil(threads).max(1);
    let results: Vec<Result<Vec<(u32, ProcResult)>, AuditError>> = std::thread::scope(|sc| {
        let handles: Vec<_> = pids
            .chunks(chunk)
            .map(|part| {
                sc.spawn(move || {
                    part.iter()
                        .map(|&pid| scan_pid(r, pid, opts.pagemap).map(|x| (pid, x)))
                        .collect::<Result<Vec<_>, _>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Ok(Vec::new())))
            .collect()
    });
    let mut notes = std::collections::BTreeSet::new();
    for part in results {
        for (pid, res) in part? {
            match res {
                ProcResult::Found(p, u, n) => {
                    s.procs.push(p);
                    s.unreadable.extend(u);
                    notes.extend(n);
                }
                ProcResult::Nothing(u, n) => {
                    s.unreadable.extend(u);
                    notes.extend(n);
                }
                ProcResult::Vanished => {
                    r.keep_dir(Tree::Proc, &pid.to_string());
                    s.vanished.push(pid);
                }
            }
        }
    }
    s.notes.extend(notes);
    match r.text(Tree::Debugfs, "dma_buf/bufinfo") {
        Ok(t) => s.bufinfo = Some(bufinfo::parse_bufinfo(&t)),
        Err(ReadFail::Miss(Miss::Gone)) => s.notes.push(format!(
            "no {} (debugfs not mounted there, or a kernel without CONFIG_DEBUG_FS)",
            r.path(Tree::Debugfs, "dma_buf/bufinfo").display()
        )),
        Err(ReadFail::Miss(Miss::Denied(why))) => s.notes.push(format!(
            "{}: {why} (root reads it)",
            r.path(Tree::Debugfs, "dma_buf/bufinfo").display()
        )),
        Err(ReadFail::Error(e)) => return Err(e),
    }
    match sysfs::read_sysfs_buffers(r) {
        Ok(b) => s.sysfs = b,
        Err(ReadFail::Miss(Miss::Denied(why))) => s.notes.push(format!(
            "{}: {why}",
            r.path(Tree::Sys, "kernel/dmabuf/buffers").display()
        )),
        Err(ReadFail::Miss(Miss::Gone)) => {}
        Err(ReadFail::Error(e)) => return Err(e),
    }
    match drm::read_drm_drivers(r) {
        Ok(d) => s.drm_drivers = d,
        Err(ReadFail::Miss(_)) => {}
        Err(ReadFail::Error(e)) => return Err(e),
    }
    if s.bufinfo.is_none() && s.sysfs.is_none() {
        s.notes.push(
            "buffers no process holds or maps are not counted: neither debugfs dma_buf/bufinfo nor sysfs kernel/dmabuf/buffers could be read".to_owned(),
        );
    }
    if !s.unreadable.is_empty() {
        let n: std::collections::BTreeSet<u32> = s.unreadable.iter().map(|u| u.pid).collect();
        s.notes.push(format!(
            "{} processes could not be read in full (not counted where unreadable; root reads every process)",
            n.len()
        ));
    }
    Ok(s)
}

// ---------------------------------------------------------------------------------------------
// The figures.

/// One mapping in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MappingRow {
    /// First address, hex.
    pub start: String,
    /// One past the last, hex.
    pub end: String,
    /// Length in bytes.
    pub bytes: u64,
    /// maps permissions.
    pub perms: String,
    /// The buffer's inode.
    pub inode: u64,
    /// The buffer's exporter name.
    pub exporter: String,
    /// smaps `Rss:` in bytes.
    pub rss_bytes: Option<u64>,
    /// Every VmFlags mnemonic, as smaps prints them.
    pub vmflags: String,
    /// The contract.
    pub contract: Contract,
}

/// One buffer a process holds or maps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcBuffer {
    /// Inode.
    pub inode: u64,
    /// Buffer name.
    pub name: Option<String>,
    /// Exporter name.
    pub exporter: String,
    /// Buffer size (dmabuf_dump's per-process `Rss`).
    pub size_bytes: u64,
    /// smaps `Rss:` of this process's mappings of it.
    pub rss_bytes: u64,
    /// The buffer's Pss.
    pub pss_bytes: u64,
    /// How many processes hold or map it.
    pub nr_procs: usize,
    /// fds of this process on it.
    pub fds: u32,
    /// mappings of this process of it.
    pub maps: u32,
}

/// One process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProcessRow {
    /// pid.
    pub pid: u32,
    /// comm.
    pub comm: String,
    /// dma-buf fds.
    pub fds: u32,
    /// `/dmabuf:` mappings.
    pub mappings: u32,
    /// Sum of the sizes of the buffers it holds or maps (dmabuf_dump's `Rss`).
    pub size_bytes: u64,
    /// Sum of smaps `Rss:` over its `/dmabuf:` mappings.
    pub rss_bytes: u64,
    /// Sum of the Pss of the buffers it holds or maps.
    pub pss_bytes: u64,
    /// Its buffers.
    pub buffers: Vec<ProcBuffer>,
    /// Its mappings with their contract.
    pub maps: Vec<MappingRow>,
}

/// References per pid (fds or mappings), sorted by pid; serialized as a map `{"pid": n}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Refs(Vec<(u32, u32)>);

impl Refs {
    /// One more reference by `pid`.
    pub fn add(&mut self, pid: u32) {
        match self.0.binary_search_by_key(&pid, |e| e.0) {
            Ok(i) => self.0[i].1 += 1,
            Err(i) => self.0.insert(i, (pid, 1)),
        }
    }
    /// The references of `pid`.
    pub fn get(&self, pid: &u32) -> Option<&u32> {
        self.0
            .binary_search_by_key(pid, |e| e.0)
            .ok()
            .map(|i| &self.0[i].1)
    }
    /// The pids, ascending.
    pub fn keys(&self) -> impl Iterator<Item = &u32> {
        self.0.iter().map(|e| &e.0)
    }
    /// The counts, in pid order.
    pub fn values(&self) -> impl Iterator<Item = &u32> {
        self.0.iter().map(|e| &e.1)
    }
    /// `(pid, count)` pairs, in pid order.
    pub fn iter(&self) -> impl Iterator<Item = (&u32, &u32)> {
        self.0.iter().map(|e| (&e.0, &e.1))
    }
    /// How many pids.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// No pid.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Serialize for Refs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (p, n) in &self.0 {
            m.serialize_entry(p, n)?;
        }
        m.end()
    }
}

/// One buffer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BufferRow {
    /// Inode.
    pub inode: u64,
    /// Size in bytes.
    pub size_bytes: u64,
    /// `exp_name`.
    pub exporter: String,
    /// `name` (DMA_BUF_SET_NAME).
    pub name: Option<String>,
    /// fds per pid.
    pub fd_refs: Refs,
    /// Mappings per pid.
    pub map_refs: Refs,
    /// Pss: size / processes that hold or map it (0 for kernel-only buffers).
    pub pss_bytes: u64,
    /// No process holds or maps it (seen in bufinfo or sysfs only).
    pub kernel_only: bool,
    /// The devices attached (bufinfo).
    pub attached: Vec<String>,
    /// The catalogue exporters `exporter` can be.
    pub modeled_as: Vec<ExporterId>,
    /// The GUP users the model says get its struct pages (`None`: not modeled).
    pub gup_struct_page: Option<Vec<OpKey>>,
}

impl BufferRow {
    /// The processes that hold or map it.
    pub fn pids(&self) -> Vec<u32> {
        let mut p: Vec<u32> = self
            .fd_refs
            .keys()
            .chain(self.map_refs.keys())
            .copied()
            .collect();
        p.sort_unstable();
        p.dedup();
        p
    }
}

/// Per exporter name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExporterRow {
    /// `exp_name`.
    pub exporter: String,
    /// Buffers.
    pub buffers: u64,
    /// Bytes.
    pub bytes: u64,
    /// Of which no process holds.
    pub kernel_only_bytes: u64,
    /// fds.
    pub fds: u64,
    /// Mappings.
    pub mappings: u64,
}

/// System totals, as dmabuf_dump's last line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    /// Every buffer counted (userspace + kernel-only).
    pub dmabuf_bytes: u64,
    /// Buffers no process holds or maps (`None`: neither bufinfo nor sysfs was readable).
    pub kernel_bytes: Option<u64>,
    /// Sum of the sizes of the buffers processes hold or map, each once.
    pub userspace_bytes: u64,
    /// Sum over processes of their size (a shared buffer counts in each).
    pub userspace_rss_bytes: u64,
    /// Sum over processes of Pss.
    pub userspace_pss_bytes: u64,
    /// Sum of smaps Rss over every `/dmabuf:` mapping.
    pub mapped_rss_bytes: u64,
    /// Buffers.
    pub buffers: u64,
    /// dma-buf fds.
    pub fds: u64,
    /// `/dmabuf:` mappings.
    pub mappings: u64,
    /// Mappings that break the contract.
    pub mappings_breaking: u64,
}

/// The kernel the model ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KernelRow {
    /// `osrelease`.
    pub release: Option<String>,
    /// The modeled kernel (`None`: not modeled).
    pub modeled: Option<String>,
    /// Why not, or the resolver's notes.
    pub note: Option<String>,
}

/// The audit of one scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Audit {
    /// The kernel.
    pub kernel: KernelRow,
    /// The processes that hold or map a dma-buf, by pid.
    pub processes: Vec<ProcessRow>,
    /// Every buffer, by inode.
    pub buffers: Vec<BufferRow>,
    /// Per exporter name.
    pub exporters: Vec<ExporterRow>,
    /// Totals.
    pub totals: Totals,
    /// What could not be read.
    pub unreadable: Vec<Unreadable>,
    /// pids that exited during the scan.
    pub vanished: Vec<u32>,
    /// Notes.
    pub notes: Vec<String>,
}

/// Compute the figures of a scan. `kernel`: the release the model runs (default: the scan's
/// `osrelease`).
pub fn audit(scan: &Scan, kernel: Option<&str>) -> Audit {
    let release = kernel.map(str::to_owned).or_else(|| scan.release.clone());
    let (resolved, note) = match release.as_deref() {
        None => (None, Some("no osrelease: kernel unknown".to_owned())),
        Some(r) => match pfnguard_mm::resolve_kernel(r) {
            Ok(k) => {
                let note = (!k.notes.is_empty()).then(|| k.notes.join("; "));
                (Some(k), note)
            }
            Err(e) => (None, Some(format!("not modeled: {e}"))),
        },
    };
    let kernel_row = KernelRow {
        release: release.clone(),
        modeled: resolved.as_ref().map(|k| k.version.to_string()),
        note,
    };
    let kernel_modeled = resolved.is_some();
    let mut predictor = Predictor::new(resolved).with_drm_drivers(scan.drm_drivers.clone());

    // Buffers by inode: what processes show first, then bufinfo and sysfs.
    let mut bufs: BTreeMap<u64, BufferRow> = BTreeMap::new();
    let new_row = |inode, size, exporter: &str, name: Option<String>| BufferRow {
        inode,
        size_bytes: size,
        exporter: exporter.to_owned(),
        name,
        fd_refs: Refs::default(),
        map_refs: Refs::default(),
        pss_bytes: 0,
        kernel_only: false,
        attached: Vec::new(),
        modeled_as: Vec::new(),
        gup_struct_page: None,
    };
    for p in &scan.procs {
        for f in &p.fds {
            let b = bufs
                .entry(f.inode)
                .or_insert_with(|| new_row(f.inode, f.size, &f.exp_name, f.name.clone()));
            b.fd_refs.add(p.pid);
        }
    }
    let mut kernel_side: BTreeMap<u64, (u64, String, Option<String>, Vec<String>)> =
        BTreeMap::new();
    if let Some(s) = &scan.sysfs {
        for b in s {
            kernel_side.insert(b.inode, (b.size, b.exporter_name.clone(), None, Vec::new()));
        }
    }
    if let Some(bi) = &scan.bufinfo {
        for b in &bi.buffers {
            if let Some(ino) = b.inode {
                kernel_side.insert(
                    ino,
                    (
                        b.size,
                        b.exp_name.clone(),
                        b.name.clone(),
                        b.attached.clone(),
                    ),
                );
            }
        }
    }
    for p in &scan.procs {
        for m in &p.maps {
            let b = bufs
                .entry(m.inode)
                .or_insert_with(|| match kernel_side.get(&m.inode) {
                    Some((size, exp, name, _)) => new_row(m.inode, *size, exp, name.clone()),
                    None => new_row(m.inode, m.end - m.start, "<unknown>", m.name.clone()),
                });
            b.map_refs.add(p.pid);
        }
    }
    let kernel_known = scan.bufinfo.is_some() || scan.sysfs.is_some();
    for (ino, (size, exp, name, attached)) in &kernel_side {
        match bufs.get_mut(ino) {
            Some(b) => b.attached.clone_from(attached),
            None => {
                let mut b = new_row(*ino, *size, exp, name.clone());
                b.kernel_only = true;
                b.attached.clone_from(attached);
                bufs.insert(*ino, b);
            }
        }
    }
    for b in bufs.values_mut() {
        // libdmabufinfo/include/dmabufinfo/dmabufinfo.h DmaBuffer::Pss(): size_ / pids_.size(),
        // pids_ being every process with an fd or a mapping of the buffer.
        let n = b.pids().len() as u64;
        b.pss_bytes = b.size_bytes.checked_div(n).unwrap_or(0);
        b.modeled_as = predictor.candidates(&b.exporter);
        b.gup_struct_page = predictor.predict(&b.exporter).map(|p| p.gup_struct_page);
    }

    let mut totals = Totals::default();
    let mut processes = Vec::new();
    for p in &scan.procs {
        let mut per: BTreeMap<u64, (u32, u32, u64)> = BTreeMap::new();
        for f in &p.fds {
            per.entry(f.inode).or_default().0 += 1;
        }
        let mut maps = Vec::new();
        for m in &p.maps {
            let e = per.entry(m.inode).or_default();
            e.1 += 1;
            e.2 += m.rss.unwrap_or(0);
            let exporter = bufs
                .get(&m.inode)
                .map_or_else(|| "<unknown>".to_owned(), |b| b.exporter.clone());
            let pred = predictor.predict(&exporter);
            let contract = contract::judge(
                &m.vmflags,
                m.pagemap,
                pred.as_ref(),
                &exporter,
                kernel_modeled,
            );
            if contract.verdict == "breaks" {
                totals.mappings_breaking += 1;
            }
            maps.push(MappingRow {
                start: format!("{:x}", m.start),
                end: format!("{:x}", m.end),
                bytes: m.end - m.start,
                perms: m.perms.clone(),
                inode: m.inode,
                exporter,
                rss_bytes: m.rss,
                vmflags: m.vmflags.join(" "),
                contract,
            });
        }
        let mut row = ProcessRow {
            pid: p.pid,
            comm: p.comm.clone(),
            fds: p.fds.len() as u32,
            mappings: p.maps.len() as u32,
            size_bytes: 0,
            rss_bytes: 0,
            pss_bytes: 0,
            buffers: Vec::new(),
            maps,
        };
        for (ino, (fds, nmaps, rss)) in per {
            let Some(b) = bufs.get(&ino) else { continue };
            row.size_bytes += b.size_bytes;
            row.pss_bytes += b.pss_bytes;
            row.rss_bytes += rss;
            row.buffers.push(ProcBuffer {
                inode: ino,
                name: b.name.clone(),
                exporter: b.exporter.clone(),
                size_bytes: b.size_bytes,
                rss_bytes: rss,
                pss_bytes: b.pss_bytes,
                nr_procs: b.pids().len(),
                fds,
                maps: nmaps,
            });
        }
        totals.userspace_rss_bytes += row.size_bytes;
        totals.userspace_pss_bytes += row.pss_bytes;
        totals.mapped_rss_bytes += row.rss_bytes;
        totals.fds += u64::from(row.fds);
        totals.mappings += u64::from(row.mappings);
        processes.push(row);
    }
    processes.sort_by_key(|p| p.pid);

    let mut exporters: BTreeMap<String, ExporterRow> = BTreeMap::new();
    let mut kernel_bytes = 0;
    for b in bufs.values() {
        let e = exporters
            .entry(b.exporter.clone())
            .or_insert_with(|| ExporterRow {
                exporter: b.exporter.clone(),
                buffers: 0,
                bytes: 0,
                kernel_only_bytes: 0,
                fds: 0,
                mappings: 0,
            });
        e.buffers += 1;
        e.bytes += b.size_bytes;
        e.fds += b.fd_refs.values().map(|&n| u64::from(n)).sum::<u64>();
        e.mappings += b.map_refs.values().map(|&n| u64::from(n)).sum::<u64>();
        totals.buffers += 1;
        totals.dmabuf_bytes += b.size_bytes;
        if b.kernel_only {
            e.kernel_only_bytes += b.size_bytes;
            kernel_bytes += b.size_bytes;
        } else {
            totals.userspace_bytes += b.size_bytes;
        }
    }
    totals.kernel_bytes = kernel_known.then_some(kernel_bytes);

    Audit {
        kernel: kernel_row,
        processes,
        buffers: bufs.into_values().collect(),
        exporters: exporters.into_values().collect(),
        totals,
        unreadable: scan.unreadable.clone(),
        vanished: scan.vanished.clone(),
        notes: scan.notes.clone(),
    }
}

/// What grew between two audits, per process and per exporter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Growth {
    /// `(what, key)`: `process` with `comm:pid`, or `exporter` with its name.
    pub what: String,
    /// The process (`comm:pid`) or exporter.
    pub key: String,
    /// Change in fds.
    pub fds: i64,
    /// Change in mappings.
    pub mappings: i64,
    /// Change in bytes (process: dmabuf_dump Rss; exporter: buffer bytes).
    pub bytes: i64,
}

/// The processes and exporters whose fds, mappings or bytes changed from `before` to `after`.
pub fn growth(before: &Audit, after: &Audit) -> Vec<Growth> {
    let mut out = Vec::new();
    let procs = |a: &Audit| -> BTreeMap<(u32, String), (i64, i64, i64)> {
        a.processes
            .iter()
            .map(|p| {
                (
                    (p.pid, p.comm.clone()),
                    (i64::from(p.fds), i64::from(p.mappings), p.size_bytes as i64),
                )
            })
            .collect()
    };
    let exps = |a: &Audit| -> BTreeMap<String, (i64, i64, i64)> {
        a.exporters
            .iter()
            .map(|e| {
                (
                    e.exporter.clone(),
                    (e.fds as i64, e.mappings as i64, e.bytes as i64),
                )
            })
            .collect()
    };
    for ((pid, comm), d) in diff(&procs(before), &procs(after)) {
        out.push(Growth {
            what: "process".into(),
            key: format!("{comm}:{pid}"),
            fds: d.0,
            mappings: d.1,
            bytes: d.2,
        });
    }
    for (e, d) in diff(&exps(before), &exps(after)) {
        out.push(Growth {
            what: "exporter".into(),
            key: e,
            fds: d.0,
            mappings: d.1,
            bytes: d.2,
        });
    }
    out
}

type Counts = (i64, i64, i64);

fn diff<K: Ord + Clone>(b: &BTreeMap<K, Counts>, a: &BTreeMap<K, Counts>) -> Vec<(K, Counts)> {
    let mut keys: Vec<K> = b.keys().chain(a.keys()).cloned().collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let x = b.get(&k).copied().unwrap_or_default();
            let y = a.get(&k).copied().unwrap_or_default();
            let d = (y.0 - x.0, y.1 - x.1, y.2 - x.2);
            (d != (0, 0, 0)).then_some((k, d))
        })
        .collect()
}
