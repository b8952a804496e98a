//! The op keys of the contract, each run on a fresh buffer in its own worker.
//!
//! Every op but `export` starts with the common prefix: export,
//! `mmap(NULL, size, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)` and a one-byte
//! write to every page. Which ops run after a step failed is the skip rule the
//! model uses too ([`pfnguard_report::run_row`]).

use std::fs::File;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use pfnguard_report::{
    run_row, Effect, ExporterId, ExporterReport, Observation, OpKey, Outcome, Pagemap, Rss,
};
use rustix::fs::{Mode, OFlags};
use rustix::mm::Advice;
use rustix::pipe::PipeFlags;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::errno;
use crate::exporter::{Buffer, Candidate, Source};
use crate::kmsg_watch::{KmsgWatch, RowLog};
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
    /// The kernel log reader, with `probe --kmsg`.
    pub kmsg: Option<KmsgWatch>,
}

/// The outcome of one op and the details it recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Measured {
    /// The cell.
    pub outcome: Outcome,
    /// Entries merged into the exporter's `detail`.
    pub detail: Map<String, Value>,
}

impl Measured {
    /// A bare outcome.
    pub(crate) fn of(outcome: Outcome) -> Self {
        Self {
            outcome,
            detail: Map::new(),
        }
    }
    /// `ok`.
    pub(crate) fn ok() -> Self {
        Self::of(Outcome::Ok)
    }
    /// The errno of a failed syscall.
    pub(crate) fn errno(e: rustix::io::Errno) -> Self {
        Self::of(errno::errno_outcome(e))
    }
    /// `unavailable: REASON`.
    pub(crate) fn unavailable(reason: impl std::fmt::Display) -> Self {
        Self::of(Outcome::unavailable(reason))
    }
    /// Add a detail entry.
    pub(crate) fn with(mut self, key: &str, v: Value) -> Self {
        self.detail.insert(key.to_owned(), v);
        self
    }
}

/// Probe one exporter: every op key, each in a fresh time-bounded worker, skipped as the skip
/// rule says. With a kernel log reader, the log is read around each worker's whole life and
/// the row gets `warned_at` (and `detail.kmsg`, `detail.kmsg_notes`).
pub(crate) fn probe_exporter(id: ExporterId, cand: &Candidate, env: &Env) -> ExporterReport {
    let mut detail = cand.detail.clone();
    let mut log = env.kmsg.as_ref().map(|k| RowLog::new(&k.notes));
    let ops = run_row(|op| {
        if let (OpKey::RdmaRegMr, Err(why)) = (op, &env.rdma) {
            return Outcome::unavailable(why);
        }
        let work = || match worker::run(env.timeout, |deadline| {
            perform(op, &cand.source, env, deadline)
        }) {
            Ok(o) => o,
            Err(e) => Measured::of(e.outcome()),
        };
        let out = match (&env.kmsg, log.as_mut()) {
            (Some(k), Some(row)) => {
                let (out, op_log) = k.around(id.as_str(), op, work);
                row.record(op, op_log);
                out
            }
            _ => work(),
        };
        detail.extend(out.detail);
        out.outcome
    });
    let warned_at = log.map(|l| l.finish(&mut detail));
    if ops.get(&OpKey::MmapShared).is_some_and(Outcome::is_success) {
        if let Ok(p) = &env.odirect {
            detail.insert("odirect_path".into(), json!(p.display().to_string()));
        }
    }
    ExporterReport {
        kernel: None,
        exporter: id.to_string(),
        policy: None,
        ops,
        warnings: Vec::new(),
        gup_struct_pages: None,
        warned: None,
        warned_at,
        status: None,
        detail,
    }
}

/// Run `op` on a fresh buffer from `source` (inside a worker).
fn perform(op: OpKey, source: &Source, env: &Env, deadline: Instant) -> Measured {
    let buf = match source.export(env.page) {
        Ok(b) => b,
        Err(e) => {
            return Measured::errno(e.errno).with("export_failed_step", json!(e.step));
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
        Err(e) => return Measured::errno(e).with("mmap_len", json!(len)),
    };
    map.touch_pages(env.page);
    // Grandchildren must finish before the worker's own deadline.
    let sub_deadline = deadline
        .checked_sub((env.timeout / 4).min(Duration::from_secs(1)))
        .unwrap_or(deadline);
    let n = XFER.min(map.len());
    match op {
        OpKey::Export | OpKey::MmapPrivate => unreachable_op(op),
        OpKey::MmapShared => Measured::ok().with("maps", json!(maps_line(map.addr()))),
        OpKey::Vmflags => vmflags(&map),
        OpKey::Rss => rss(&map),
        OpKey::Pagemap => pagemap(&map, env.page),
        OpKey::OdirectRead => odirect(&mut map, n, env, true),
        OpKey::OdirectWrite => odirect(&mut map, n, env, false),
        OpKey::Vmsplice => vmsplice(&map, n),
        OpKey::IoUringRegister => match sys::io_uring_register_buffers(&map) {
            Ok(()) => Measured::ok(),
            Err((sys::UringStep::Setup, e)) => {
                Measured::unavailable(format!("io_uring_setup: {}", errno::errno(e)))
            }
            Err((sys::UringStep::Register, e)) => Measured::errno(e),
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
                Ok(mut child) => child_outcome(child.wait_until(sub_deadline)),
                Err(e) => Measured::unavailable(format!("fork: {}", errno::errno(e))),
            }
        }
        OpKey::FutexWakeShared => match map.futex_wake_shared() {
            Ok(woken) => Measured::ok().with("futex_woken", json!(woken)),
            Err(e) => Measured::errno(e),
        },
        OpKey::MadvPopulateRead => errno_or_ok(map.madvise(Advice::LinuxPopulateRead)),
        OpKey::MadvPopulateWrite => errno_or_ok(map.madvise(Advice::LinuxPopulateWrite)),
        OpKey::Mlock => mlock(&mut map),
        OpKey::MadvDontneed => madv_dontneed(&mut map, sub_deadline),
        OpKey::MremapGrow => match map.mremap(len + env.page) {
            Ok(moved) => Measured::ok().with("mremap_moved", json!(moved)),
            Err(e) => Measured::errno(e),
        },
        OpKey::KvmMap => kvm::probe(&mut map),
        OpKey::RdmaRegMr => match &env.rdma {
            Ok(dev) => rdma::reg_mr(&mut map, &dev.display().to_string()),
            Err(why) => Measured::unavailable(why),
        },
    }
}

fn unreachable_op(op: OpKey) -> Measured {
    Measured::unavailable(format!("{op} has no common prefix"))
}

fn errno_or_ok(r: rustix::io::Result<()>) -> Measured {
    match r {
        Ok(()) => Measured::ok(),
        Err(e) => Measured::errno(e),
    }
}

/// A remote-access count: 0 bytes is reported as `EFAULT` (the contract), a
/// partial count as `ok` with the count in `detail`.
fn short_is_efault(r: rustix::io::Result<usize>, n: usize, key: &str) -> Measured {
    match r {
        Ok(0) => Measured::errno(rustix::io::Errno::FAULT).with(key, json!(0)),
        Ok(k) if k < n => Measured::ok().with(key, json!(k)),
        Ok(_) => Measured::ok(),
        Err(e) => Measured::errno(e),
    }
}

/// The outcome of a grandchild that read the mapping.
fn child_outcome(r: rustix::io::Result<Option<Exit>>) -> Measured {
    match r {
        Ok(Some(Exit::Code(0))) => Measured::ok(),
        Ok(Some(Exit::Signal(sig))) => Measured::of(errno::signal_outcome(sig)),
        Ok(Some(Exit::Code(c))) => Measured::unavailable(format!("child exited with status {c}")),
        Ok(None) => Measured::of(Outcome::Timeout),
        Err(e) => Measured::unavailable(format!("waitid: {}", errno::errno(e))),
    }
}

/// `export`: the size and the dma-buf fdinfo.
fn export_detail(buf: &Buffer, page: usize) -> Measured {
    let mut out = Measured::ok().with("size", json!(buf.size));
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
fn mmap_private(buf: &Buffer, page: usize) -> Measured {
    let len = buf.map_len(page);
    let mut private = match Mapping::private(buf.fd.as_fd(), len) {
        Ok(m) => m,
        Err(e) => return Measured::errno(e),
    };
    let shared = match Mapping::shared(buf.fd.as_fd(), len) {
        Ok(m) => m,
        Err(e) => {
            return Measured::errno(e)
                .with("mmap_private_check", json!("MAP_SHARED mapping failed"))
        }
    };
    let before = shared.read_byte(0);
    let marker = if before == 0x5a { 0xa5 } else { 0x5a };
    private.write_byte(0, marker);
    let after = shared.read_byte(0);
    let readback = private.read_byte(0);
    let v = if after == before {
        Effect::Cow
    } else {
        Effect::Shared
    };
    Measured::of(Outcome::Effect(v)).with("mmap_private_readback_ok", json!(readback == marker))
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

fn vmflags(map: &Mapping) -> Measured {
    match own_vma(map.addr()) {
        Ok(vma) => {
            let Some(line) = vma.vmflags_line.clone() else {
                return Measured::unavailable("no VmFlags line in smaps");
            };
            let mut out =
                Measured::of(Outcome::Observed(Observation::VmFlags(vma.vmflags.clone())))
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
        Err(e) => Measured::unavailable(e),
    }
}

fn rss(map: &Mapping) -> Measured {
    match own_rss_kb(map.addr()) {
        Ok(0) => {
            Measured::of(Outcome::Observed(Observation::Rss(Rss::Zero))).with("rss_kb", json!(0))
        }
        Ok(kb) => Measured::of(Outcome::Observed(Observation::Rss(Rss::Counted)))
            .with("rss_kb", json!(kb)),
        Err(e) => Measured::unavailable(e),
    }
}

/// The `Rss:` (kB) of our VMA at `addr` in `/proc/self/smaps`: the `rss` op and the scenarios'
/// `rss` step.
pub(crate) fn own_rss_kb(addr: usize) -> Result<u64, String> {
    own_vma(addr)?
        .rss_kb()
        .ok_or_else(|| "no Rss line in smaps".to_owned())
}

fn pagemap(map: &Mapping, page: usize) -> Measured {
    let mut f = match File::open("/proc/self/pagemap") {
        Ok(f) => f,
        Err(e) => {
            return Measured::unavailable(format!("/proc/self/pagemap: {}", errno::io_error(&e)))
        }
    };
    match procfs::read_pagemap_entry(&mut f, map.addr() as u64, page as u64) {
        Ok(entry) => Measured::of(Outcome::Observed(Observation::Pagemap(
            if entry.present() {
                Pagemap::Present
            } else {
                Pagemap::Hole
            },
        )))
        .with("pagemap_entry", json!(format!("{:#018x}", entry.0))),
        Err(e) => Measured::unavailable(format!("/proc/self/pagemap: {}", errno::io_error(&e))),
    }
}

fn odirect(map: &mut Mapping, n: usize, env: &Env, read: bool) -> Measured {
    let path = match &env.odirect {
        Ok(p) => p,
        Err(why) => return Measured::unavailable(why),
    };
    let mode = if read { OFlags::RDONLY } else { OFlags::WRONLY };
    let fd = match rustix::fs::open(path, mode | OFlags::DIRECT | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => {
            return Measured::unavailable(format!(
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
        // The write goes from the mapping, so the mapping first gets the target's own bytes:
        // the op leaves the file or device as it found it.
        if let Err(why) = copy_block_into(path, map, n) {
            return Measured::unavailable(why);
        }
        (
            rustix::io::pwrite(&fd, map.bytes(n), 0),
            "odirect_write_bytes",
        )
    };
    match r {
        Ok(k) if k == n => Measured::ok(),
        Ok(k) => Measured::ok().with(key, json!(k)),
        Err(e) => Measured::errno(e),
    }
}

/// Read the first `n` bytes of `path` (buffered) into the mapping, so that an O_DIRECT write of
/// the mapping puts back what was there.
fn copy_block_into(path: &std::path::Path, map: &mut Mapping, n: usize) -> Result<(), String> {
    let what = |e: rustix::io::Errno| {
        format!(
            "reading {} to write it back: {}",
            path.display(),
            errno::errno(e)
        )
    };
    let fd =
        rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).map_err(what)?;
    let mut block = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match rustix::io::pread(&fd, &mut block[got..], got as u64) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) => return Err(what(e)),
        }
    }
    if got < n {
        return Err(format!(
            "{} is shorter than {n} bytes: writing would grow it",
            path.display()
        ));
    }
    map.bytes_mut(n).copy_from_slice(&block);
    Ok(())
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

fn vmsplice(map: &Mapping, n: usize) -> Measured {
    let (rd, wr) = match rustix::pipe::pipe_with(PipeFlags::CLOEXEC) {
        Ok(p) => p,
        Err(e) => return Measured::unavailable(format!("pipe2: {}", errno::errno(e))),
    };
    match sys::vmsplice(wr.as_fd(), map.bytes(n)) {
        Ok(k) => {
            drain_pipe(&rd, k);
            if k < n {
                Measured::ok().with("vmsplice_bytes", json!(k))
            } else {
                Measured::ok()
            }
        }
        Err(e) => Measured::errno(e),
    }
}

fn pipe_write(map: &Mapping, n: usize) -> Measured {
    let (rd, wr) = match rustix::pipe::pipe_with(PipeFlags::CLOEXEC) {
        Ok(p) => p,
        Err(e) => return Measured::unavailable(format!("pipe2: {}", errno::errno(e))),
    };
    match rustix::io::write(&wr, map.bytes(n)) {
        Ok(k) => {
            drain_pipe(&rd, k);
            Measured::ok()
        }
        Err(e) => Measured::errno(e),
    }
}

fn proc_mem(map: &Mapping, n: usize, read: bool) -> Measured {
    let fd = match rustix::fs::open(
        "/proc/self/mem",
        OFlags::RDWR | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(e) => return Measured::unavailable(format!("/proc/self/mem: {}", errno::errno(e))),
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
        Ok(0) => Measured::errno(rustix::io::Errno::IO),
        Ok(_) => Measured::ok(),
        Err(e) => Measured::errno(e),
    }
}

fn mlock(map: &mut Mapping) -> Measured {
    if let Err(e) = map.mlock() {
        return Measured::errno(e);
    }
    match own_vma(map.addr()) {
        Ok(vma) => {
            let v = if vma.has_flag("lo") {
                Effect::Locked
            } else {
                Effect::NotLocked
            };
            let mut out =
                Measured::of(Outcome::Effect(v)).with("mlock_vmflags", json!(vma.vmflags_joined()));
            if let Some(kb) = vma.locked_kb() {
                out = out.with("mlock_locked_kb", json!(kb));
            }
            out
        }
        Err(e) => Measured::unavailable(e),
    }
}

fn madv_dontneed(map: &mut Mapping, deadline: Instant) -> Measured {
    if let Err(e) = map.madvise(Advice::LinuxDontNeed) {
        return Measured::errno(e);
    }
    let map = &*map;
    match sys::fork(false, || {
        let _ = map.read_byte(0);
        0
    }) {
        Ok(mut child) => {
            let read = child_outcome(child.wait_until(deadline));
            match Outcome::refault(&read.outcome) {
                Some(o) => Measured { outcome: o, ..read },
                None => read,
            }
        }
        Err(e) => Measured::unavailable(format!("fork: {}", errno::errno(e))),
    }
}
