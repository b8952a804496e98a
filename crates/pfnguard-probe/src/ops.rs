//! The op keys of the contract, each run on a fresh buffer in its own worker.
//!
//! Every op but `export` and `mmap_private` starts with the common prefix:
//! export, `mmap(NULL, size, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)` and a
//! one-byte write to every page. `export` failing skips every other op;
//! `mmap_shared` (the prefix itself) failing skips every op that needs a
//! mapping. The value strings are those of `pfnguard_report::value`.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pfnguard_report::{value, ExporterReport, OpKey};
use rustix::fs::{Mode, OFlags};
use rustix::mm::Advice;
use rustix::pipe::PipeFlags;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::errno;
use crate::exporter::{Buffer, Candidate, Source};
use crate::kvm;
use crate::procfs;
use crate::rdma;
use crate::sys::{self, Exit, Mapping};
use crate::worker;

/// Bytes moved by the single-transfer ops (O_DIRECT, vmsplice, pipe, remote access).
const XFER: usize = 4096;

/// What every op needs from the run.
#[derive(Debug)]
pub(crate) struct Env {
    /// `sysconf(_SC_PAGESIZE)`.
    pub page: usize,
    /// Bound of one op.
    pub timeout: Duration,
    /// The O_DIRECT target, or why there is none.
    pub odirect: Result<PathBuf, String>,
    /// The uverbs node for `rdma_reg_mr`, or why there is none (decided once).
    pub rdma: Result<PathBuf, String>,
}

/// The value of one op and the details it recorded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct Outcome {
    /// The cell value.
    pub value: String,
    /// Entries merged into the exporter's `detail`.
    pub detail: Map<String, Value>,
}

impl Outcome {
    /// A bare value.
    pub(crate) fn value(v: impl Into<String>) -> Self {
        Self {
            value: v.into(),
            detail: Map::new(),
        }
    }
    /// `ok`.
    pub(crate) fn ok() -> Self {
        Self::value(value::OK)
    }
    /// The errno name of a failed syscall.
    pub(crate) fn errno(e: rustix::io::Errno) -> Self {
        Self::value(errno::errno(e))
    }
    /// `unavailable: REASON`.
    pub(crate) fn unavailable(reason: impl std::fmt::Display) -> Self {
        Self::value(format!("{}{reason}", value::UNAVAILABLE_PREFIX))
    }
    /// Add a detail entry.
    pub(crate) fn with(mut self, key: &str, v: Value) -> Self {
        self.detail.insert(key.to_owned(), v);
        self
    }
}

/// Probe one exporter: every op key, each in a fresh time-bounded worker.
pub(crate) fn probe_exporter(cand: &Candidate, env: &Env) -> ExporterReport {
    let mut ops = BTreeMap::new();
    let mut detail = cand.detail.clone();
    let run = |op: OpKey, detail: &mut Map<String, Value>| -> String {
        let out = match worker::run(env.timeout, |deadline| {
            perform(op, &cand.source, env, deadline)
        }) {
            Ok(o) => o,
            Err(e) => Outcome::value(e.value()),
        };
        detail.extend(out.detail);
        out.value
    };
    let export = run(OpKey::Export, &mut detail);
    let export_ok = export == value::OK;
    ops.insert(OpKey::Export, export);
    let mut mapped = false;
    if export_ok {
        let mmap = run(OpKey::MmapShared, &mut detail);
        mapped = mmap == value::OK;
        ops.insert(OpKey::MmapShared, mmap);
    }
    for op in OpKey::ALL {
        if ops.contains_key(&op) {
            continue;
        }
        let v = if !mapped {
            value::SKIPPED.to_owned()
        } else if let (OpKey::RdmaRegMr, Err(why)) = (op, &env.rdma) {
            format!("{}{why}", value::UNAVAILABLE_PREFIX)
        } else {
            run(op, &mut detail)
        };
        ops.insert(op, v);
    }
    if mapped {
        if let Ok(p) = &env.odirect {
            detail.insert("odirect_path".into(), json!(p.display().to_string()));
        }
    }
    ExporterReport {
        kernel: None,
        exporter: cand.id.clone(),
        policy: None,
        ops,
        warnings: Vec::new(),
        status: None,
        detail,
    }
}

/// Run `op` on a fresh buffer from `source` (inside a worker).
fn perform(op: OpKey, source: &Source, env: &Env, deadline: Instant) -> Outcome {
    let buf = match source.export(env.page) {
        Ok(b) => b,
        Err(e) => {
            return Outcome::errno(e.errno).with("export_failed_step", json!(e.step));
        }
    };
    match op {
        OpKey::Export => return export_detail(&buf, env.page),
        OpKey::MmapPrivate => return mmap_private(&buf, env.page),
        _ => {}
    }
    let len = buf.map_len(env.page);
    let mut map = match Mapping::shared(buf.fd.as_fd(), len) {
        Ok(m) => m,
        Err(e) => return Outcome::errno(e).with("mmap_len", json!(len)),
    };
    map.touch_pages(env.page);
    // Grandchildren must finish before the worker's own deadline.
    let sub_deadline = deadline
        .checked_sub((env.timeout / 4).min(Duration::from_secs(1)))
        .unwrap_or(deadline);
    let n = XFER.min(map.len());
    match op {
        OpKey::Export | OpKey::MmapPrivate => unreachable_op(op),
        OpKey::MmapShared => Outcome::ok().with("maps", json!(maps_line(map.addr()))),
        OpKey::Vmflags => vmflags(&map),
        OpKey::Rss => rss(&map),
        OpKey::Pagemap => pagemap(&map, env.page),
        OpKey::OdirectRead => odirect(&mut map, n, env, true),
        OpKey::OdirectWrite => odirect(&mut map, n, env, false),
        OpKey::Vmsplice => vmsplice(&map, n),
        OpKey::IoUringRegister => match sys::io_uring_register_buffers(&map) {
            Ok(()) => Outcome::ok(),
            Err((sys::UringStep::Setup, e)) => {
                Outcome::unavailable(format!("io_uring_setup: {}", errno::errno(e)))
            }
            Err((sys::UringStep::Register, e)) => Outcome::errno(e),
        },
        OpKey::ProcessVmReadv => {
            let mut local = vec![0u8; n];
            short_is_efault(
                sys::process_vm_readv(&mut local, &map),
                n,
                "process_vm_readv_bytes",
            )
        }
        OpKey::ProcessVmWritev => {
            let local = vec![0x5au8; n];
            short_is_efault(
                sys::process_vm_writev(&local, &mut map),
                n,
                "process_vm_writev_bytes",
            )
        }
        OpKey::ProcMemRead | OpKey::ProcMemWrite => proc_mem(&map, n, op == OpKey::ProcMemRead),
        OpKey::PipeWrite => pipe_write(&map, n),
        OpKey::ForkChildRead => {
            let page = env.page;
            match sys::fork(false, || {
                let _ = map.read_pages(page);
                0
            }) {
                Ok(mut child) => child_value(child.wait_until(sub_deadline), |e| e),
                Err(e) => Outcome::unavailable(format!("fork: {}", errno::errno(e))),
            }
        }
        OpKey::FutexWakeShared => match map.futex_wake_shared() {
            Ok(woken) => Outcome::ok().with("futex_woken", json!(woken)),
            Err(e) => Outcome::errno(e),
        },
        OpKey::MadvPopulateRead => errno_or_ok(map.madvise(Advice::LinuxPopulateRead)),
        OpKey::MadvPopulateWrite => errno_or_ok(map.madvise(Advice::LinuxPopulateWrite)),
        OpKey::Mlock => mlock(&mut map),
        OpKey::MadvDontneed => madv_dontneed(&mut map, sub_deadline),
        OpKey::MremapGrow => match map.mremap(len + env.page) {
            Ok(moved) => Outcome::ok().with("mremap_moved", json!(moved)),
            Err(e) => Outcome::errno(e),
        },
        OpKey::KvmMap => kvm::probe(&mut map),
        OpKey::RdmaRegMr => match &env.rdma {
            Ok(dev) => rdma::reg_mr(&mut map, &dev.display().to_string()),
            Err(why) => Outcome::unavailable(why),
        },
    }
}

fn unreachable_op(op: OpKey) -> Outcome {
    Outcome::unavailable(format!("{op} has no common prefix"))
}

fn errno_or_ok(r: rustix::io::Result<()>) -> Outcome {
    match r {
        Ok(()) => Outcome::ok(),
        Err(e) => Outcome::errno(e),
    }
}

/// A remote-access count: 0 bytes is reported as `EFAULT` (the contract), a
/// partial count as `ok` with the count in `detail`.
fn short_is_efault(r: rustix::io::Result<usize>, n: usize, key: &str) -> Outcome {
    match r {
        Ok(0) => Outcome::errno(rustix::io::Errno::FAULT).with(key, json!(0)),
        Ok(k) if k < n => Outcome::ok().with(key, json!(k)),
        Ok(_) => Outcome::ok(),
        Err(e) => Outcome::errno(e),
    }
}

/// The value of a grandchild that read the mapping.
fn child_value(r: rustix::io::Result<Option<Exit>>, name: impl Fn(String) -> String) -> Outcome {
    match r {
        Ok(Some(Exit::Code(0))) => Outcome::value(name(value::OK.to_owned())),
        Ok(Some(Exit::Signal(sig))) => Outcome::value(name(errno::signal_name(sig))),
        Ok(Some(Exit::Code(c))) => Outcome::unavailable(format!("child exited with status {c}")),
        Ok(None) => Outcome::value(value::TIMEOUT),
        Err(e) => Outcome::unavailable(format!("waitid: {}", errno::errno(e))),
    }
}

/// `export`: the size and the dma-buf fdinfo.
fn export_detail(buf: &Buffer, page: usize) -> Outcome {
    let mut out = Outcome::ok().with("size", json!(buf.size));
    if buf.map_len(page) as u64 != buf.size {
        out = out.with("map_len", json!(buf.map_len(page)));
    }
    match buf.fdinfo() {
        Ok(info) => {
            if let Some(name) = &info.exp_name {
                out = out.with("exp_name", json!(name));
            }
            let mut f = Map::new();
            for (k, v) in [("size", info.size), ("ino", info.ino)] {
                if let Some(v) = v {
                    f.insert(k.into(), json!(v));
                }
            }
            if let Some(c) = info.count {
                f.insert("count".into(), json!(c));
            }
            if let Some(n) = &info.exp_name {
                f.insert("exp_name".into(), json!(n));
            }
            if let Some(n) = &info.name {
                f.insert("name".into(), json!(n));
            }
            if let Some(fl) = &info.flags {
                f.insert("flags".into(), json!(fl));
            }
            out.with("fdinfo", Value::Object(f))
        }
        Err(e) => out.with(
            "fdinfo",
            json!(format!("unreadable: {}", errno::io_error(&e))),
        ),
    }
}

/// `mmap_private`: a MAP_PRIVATE write, checked through a MAP_SHARED mapping.
fn mmap_private(buf: &Buffer, page: usize) -> Outcome {
    let len = buf.map_len(page);
    let mut private = match Mapping::private(buf.fd.as_fd(), len) {
        Ok(m) => m,
        Err(e) => return Outcome::errno(e),
    };
    let shared = match Mapping::shared(buf.fd.as_fd(), len) {
        Ok(m) => m,
        Err(e) => {
            return Outcome::errno(e).with("mmap_private_check", json!("MAP_SHARED mapping failed"))
        }
    };
    let before = shared.read_byte(0);
    let marker = if before == 0x5a { 0xa5 } else { 0x5a };
    private.write_byte(0, marker);
    let after = shared.read_byte(0);
    let readback = private.read_byte(0);
    let v = if after == before {
        "ok:cow"
    } else {
        "ok:shared"
    };
    Outcome::value(v).with("mmap_private_readback_ok", json!(readback == marker))
}

/// The smaps block of our VMA starting at `addr`.
fn own_vma(addr: usize) -> Result<procfs::SmapsVma, String> {
    let text = std::fs::read_to_string("/proc/self/smaps")
        .map_err(|e| format!("/proc/self/smaps: {}", errno::io_error(&e)))?;
    let vmas = procfs::parse_smaps(&text).map_err(|e| e.to_string())?;
    procfs::find_vma(&vmas, addr as u64)
        .cloned()
        .ok_or_else(|| format!("no VMA at {addr:#x} in /proc/self/smaps"))
}

/// Our VMA's line of `/proc/self/maps`.
fn maps_line(addr: usize) -> String {
    let text = match std::fs::read_to_string("/proc/self/maps") {
        Ok(t) => t,
        Err(e) => return format!("unreadable: {}", errno::io_error(&e)),
    };
    text.lines()
        .find(|l| procfs::parse_maps_line(l).is_ok_and(|e| e.start == addr as u64))
        .map_or_else(|| format!("no VMA at {addr:#x}"), str::to_owned)
}

fn vmflags(map: &Mapping) -> Outcome {
    match own_vma(map.addr()) {
        Ok(vma) => {
            let Some(line) = vma.vmflags_line.clone() else {
                return Outcome::unavailable("no VmFlags line in smaps");
            };
            let mut out = Outcome::value(vma.vmflags_joined())
                .with("vmflags_raw", json!(line))
                .with("maps", json!(vma.header_line));
            for (key, field) in [
                ("smaps_rss_kb", "Rss"),
                ("smaps_pss_kb", "Pss"),
                ("smaps_locked_kb", "Locked"),
            ] {
                if let Some(kb) = vma.kb(field) {
                    out = out.with(key, json!(kb));
                }
            }
            out
        }
        Err(e) => Outcome::unavailable(e),
    }
}

fn rss(map: &Mapping) -> Outcome {
    match own_vma(map.addr()) {
        Ok(vma) => match vma.rss_kb() {
            Some(0) => Outcome::value("zero").with("rss_kb", json!(0)),
            Some(kb) => Outcome::value("counted").with("rss_kb", json!(kb)),
            None => Outcome::unavailable("no Rss line in smaps"),
        },
        Err(e) => Outcome::unavailable(e),
    }
}

fn pagemap(map: &Mapping, page: usize) -> Outcome {
    let mut f = match File::open("/proc/self/pagemap") {
        Ok(f) => f,
        Err(e) => {
            return Outcome::unavailable(format!("/proc/self/pagemap: {}", errno::io_error(&e)))
        }
    };
    match procfs::read_pagemap_entry(&mut f, map.addr() as u64, page as u64) {
        Ok(entry) => Outcome::value(if entry.present() { "present" } else { "hole" })
            .with("pagemap_entry", json!(format!("{:#018x}", entry.0))),
        Err(e) => Outcome::unavailable(format!("/proc/self/pagemap: {}", errno::io_error(&e))),
    }
}

fn odirect(map: &mut Mapping, n: usize, env: &Env, read: bool) -> Outcome {
    let path = match &env.odirect {
        Ok(p) => p,
        Err(why) => return Outcome::unavailable(why),
    };
    let mode = if read { OFlags::RDONLY } else { OFlags::WRONLY };
    let fd = match rustix::fs::open(path, mode | OFlags::DIRECT | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => {
            return Outcome::unavailable(format!(
                "open {} O_DIRECT: {}",
                path.display(),
                errno::errno(e)
            ))
        }
    };
    let (r, key) = if read {
        (
            rustix::io::pread(&fd, map.bytes_mut(n), 0),
            "odirect_read_bytes",
        )
    } else {
        (
            rustix::io::pwrite(&fd, map.bytes(n), 0),
            "odirect_write_bytes",
        )
    };
    match r {
        Ok(k) if k == n => Outcome::ok(),
        Ok(k) => Outcome::ok().with(key, json!(k)),
        Err(e) => Outcome::errno(e),
    }
}

/// Read back whatever a pipe holds (so the references it took are dropped).
fn drain_pipe(rd: &std::os::fd::OwnedFd, mut want: usize) {
    let mut scratch = vec![0u8; XFER];
    while want > 0 {
        match rustix::io::read(rd, &mut scratch) {
            Ok(0) | Err(_) => break,
            Ok(k) => want = want.saturating_sub(k),
        }
    }
}

fn vmsplice(map: &Mapping, n: usize) -> Outcome {
    let (rd, wr) = match rustix::pipe::pipe_with(PipeFlags::CLOEXEC) {
        Ok(p) => p,
        Err(e) => return Outcome::unavailable(format!("pipe2: {}", errno::errno(e))),
    };
    match sys::vmsplice(wr.as_fd(), map.bytes(n)) {
        Ok(k) => {
            drain_pipe(&rd, k);
            if k < n {
                Outcome::ok().with("vmsplice_bytes", json!(k))
            } else {
                Outcome::ok()
            }
        }
        Err(e) => Outcome::errno(e),
    }
}

fn pipe_write(map: &Mapping, n: usize) -> Outcome {
    let (rd, wr) = match rustix::pipe::pipe_with(PipeFlags::CLOEXEC) {
        Ok(p) => p,
        Err(e) => return Outcome::unavailable(format!("pipe2: {}", errno::errno(e))),
    };
    match rustix::io::write(&wr, map.bytes(n)) {
        Ok(k) => {
            drain_pipe(&rd, k);
            Outcome::ok()
        }
        Err(e) => Outcome::errno(e),
    }
}

fn proc_mem(map: &Mapping, n: usize, read: bool) -> Outcome {
    let fd = match rustix::fs::open(
        "/proc/self/mem",
        OFlags::RDWR | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => return Outcome::unavailable(format!("/proc/self/mem: {}", errno::errno(e))),
    };
    let at = map.addr() as u64;
    let r = if read {
        let mut buf = vec![0u8; n];
        rustix::io::pread(&fd, &mut buf, at)
    } else {
        // Write back what the mapping holds, so the op changes nothing.
        let buf = map.bytes(n).to_vec();
        rustix::io::pwrite(&fd, &buf, at)
    };
    match r {
        Ok(0) => Outcome::errno(rustix::io::Errno::IO),
        Ok(_) => Outcome::ok(),
        Err(e) => Outcome::errno(e),
    }
}

fn mlock(map: &mut Mapping) -> Outcome {
    if let Err(e) = map.mlock() {
        return Outcome::errno(e);
    }
    match own_vma(map.addr()) {
        Ok(vma) => {
            let v = if vma.has_flag("lo") {
                "ok:locked"
            } else {
                "ok:not-locked"
            };
            let mut out = Outcome::value(v).with("mlock_vmflags", json!(vma.vmflags_joined()));
            if let Some(kb) = vma.locked_kb() {
                out = out.with("mlock_locked_kb", json!(kb));
            }
            out
        }
        Err(e) => Outcome::unavailable(e),
    }
}

fn madv_dontneed(map: &mut Mapping, deadline: Instant) -> Outcome {
    if let Err(e) = map.madvise(Advice::LinuxDontNeed) {
        return Outcome::errno(e);
    }
    let map = &*map;
    match sys::fork(false, || {
        let _ = map.read_byte(0);
        0
    }) {
        Ok(mut child) => child_value(child.wait_until(deadline), |v| match v.as_str() {
            value::OK => "ok:refault-ok".to_owned(),
            sig => format!("ok:refault-{}", sig.to_ascii_lowercase()),
        }),
        Err(e) => Outcome::unavailable(format!("fork: {}", errno::errno(e))),
    }
}
