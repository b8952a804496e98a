//! The audit's workload: a known set of dma-bufs, shared, named, mapped and held, for
//! `pfnguard audit` to find on a real kernel (`pfnguard audit-workload`, which the QEMU guests
//! of harness/realkernel run after the probe).
//!
//! [`Workload::start`] exports one buffer from every exporter the probe reaches (the probe's own
//! discovery and export recipes: dma-heaps, udmabuf, DRM dumb buffers through PRIME, V4L2
//! `VIDIOC_EXPBUF`) and records what it did as a [`Truth`]:
//!
//! - one buffer ([`FORK_SHARED`]: the system heap's, else virtio-gpu's or vivid's dma-contig
//!   one) is shared with a fork child (`pfg-forked`), which closes every other dma-buf fd it
//!   inherited and maps it;
//! - udmabuf's (shmem) and vgem's buffers ([`SCM_SHARED`]) are passed over `SCM_RIGHTS` on a
//!   unix socket to a separately exec'd process (`pfg-receiver`, [`receiver`]), which maps the
//!   first it gets;
//! - the fork-shared, the first SCM-shared and vivid's vmalloc buffer are named with
//!   `DMA_BUF_SET_NAME` ([`NAMES`]);
//! - this process (`pfg-workload`) maps every buffer but the first SCM-shared one, and closes
//!   the fd of bochs' (else cirrus') after mapping it: the mapping alone holds that buffer;
//! - one more buffer (`pfg-kernel-held`, from [`KERNEL_HELD_FROM`]) is imported into a DRM
//!   device of another driver with `DRM_IOCTL_PRIME_FD_TO_HANDLE` (vgem first), whose GEM
//!   handle is kept while every fd of the buffer is closed: only the kernel holds it, through
//!   the importer's attachment (drivers/gpu/drm/drm_prime.c:drm_gem_prime_import_dev →
//!   drivers/dma-buf/dma-buf.c:dma_buf_attach) and the handle's reference
//!   (drm_prime_add_buf_handle).
//!
//! Every mapping's line in `/proc/PID/maps` is recorded ([`TruthMapping`]): an exporter whose
//! mmap swaps the VMA's file for its own backing file (5.10's vgem_prime_mmap: `vma_set_file`
//! to the GEM object's shmem file) leaves a mapping no audit can tie to the dma-buf.
//!
//! An exporter that is missing, or a step an exporter refuses (qxl's mmap is `ENOSYS` on 5.10
//! and 6.1, bochs has no PRIME export on 5.10), is a note of the truth, never a failure: the
//! truth says what was done. Everything
//! is released when the [`Workload`] is dropped (the fork child is killed, the receiver sees its
//! socket close and exits). It changes nothing outside its own processes.

use std::ffi::CString;
use std::io::{IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

use pfnguard_report::ExporterId;
use rustix::fs::{Mode, OFlags};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
};
use rustix::pipe::PipeFlags;
use serde::{Deserialize, Serialize};

use crate::exporter::{Buffer, Source};
use crate::sys::{self, Mapping};
use crate::{errno, uapi};

/// The comm of the workload's own process.
pub const WORKLOAD_COMM: &str = "pfg-workload";
/// The comm of the fork child.
pub const FORKED_COMM: &str = "pfg-forked";
/// The comm of the exec'd process that receives fds over `SCM_RIGHTS`.
pub const RECEIVER_COMM: &str = "pfg-receiver";

/// The names given with `DMA_BUF_SET_NAME`: the fork-shared buffer, the first SCM-shared one,
/// vivid's vmalloc one.
pub const NAMES: [&str; 3] = ["pfg-fork-shared", "pfg-scm-shared", "pfg-vivid"];

/// The name of the buffer only the kernel holds.
pub const KERNEL_HELD_NAME: &str = "pfg-kernel-held";

/// Shared with the fork child, which maps it: the first of these reached.
pub const FORK_SHARED: [ExporterId; 3] = [
    ExporterId::SystemHeap,
    ExporterId::VirtioGpu,
    ExporterId::VividDmaContig,
];
/// Passed to the receiver, which maps the first of them it gets (the workload does not).
pub const SCM_SHARED: [ExporterId; 2] = [ExporterId::UdmabufShmem, ExporterId::Vgem];
/// Mapped by the workload, then its fd closed: the first of these whose mmap works.
pub const FD_CLOSED_AFTER_MAP: [ExporterId; 2] = [ExporterId::Bochs, ExporterId::Cirrus];
/// Where the kernel-held buffer comes from: the first of these reached.
pub const KERNEL_HELD_FROM: [ExporterId; 4] = [
    ExporterId::SystemHeap,
    ExporterId::UdmabufShmem,
    ExporterId::VividDmaContig,
    ExporterId::VirtioGpu,
];
/// DRM drivers tried in turn as the importer of the kernel-held buffer.
const IMPORTERS: [ExporterId; 4] = [
    ExporterId::Vgem,
    ExporterId::VirtioGpu,
    ExporterId::Bochs,
    ExporterId::Qxl,
];

/// What the workload did: its ground truth, which the audit must reproduce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truth {
    /// `uname -r` of the kernel it ran on.
    pub kernel_release: String,
    /// The workload's processes.
    pub processes: Vec<TruthProcess>,
    /// Every buffer it left alive, by inode.
    pub buffers: Vec<TruthBuffer>,
    /// What could not be done (an exporter missing, a step it refused), with the errno.
    pub notes: Vec<String>,
}

/// One process of the workload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthProcess {
    /// Its pid.
    pub pid: u32,
    /// Its comm.
    pub comm: String,
    /// What it does.
    pub role: String,
}

/// One buffer the workload left alive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthBuffer {
    /// The dma-buf's inode (`fstat`).
    pub inode: u64,
    /// Its size (`lseek(SEEK_END)`).
    pub size: u64,
    /// The catalogue exporter it was allocated from.
    pub exporter: ExporterId,
    /// `exp_name:` of the workload's own fdinfo right after the export.
    pub exp_name: String,
    /// The name it was given, if any.
    pub name: Option<String>,
    /// The pids holding an fd on it, ascending.
    pub holders: Vec<u32>,
    /// The pids mapping it, ascending.
    pub mappers: Vec<u32>,
    /// What `/proc/PID/maps` shows for each of those mappings.
    pub mappings: Vec<TruthMapping>,
    /// For the buffer no process holds: the DRM driver whose GEM handle keeps it.
    pub kernel_held_by: Option<String>,
}

impl TruthBuffer {
    /// The pids whose mapping `/proc/PID/maps` shows as the dma-buf, ascending: the mappers an
    /// audit can see.
    pub fn seen_mappers(&self) -> Vec<u32> {
        let mut p: Vec<u32> = self
            .mappings
            .iter()
            .filter(|m| m.is_dmabuf())
            .map(|m| m.pid)
            .collect();
        p.sort_unstable();
        p.dedup();
        p
    }
}

/// One mapping of a buffer, as its process's `/proc/PID/maps` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TruthMapping {
    /// The process.
    pub pid: u32,
    /// Its first address.
    pub start: u64,
    /// The pathname maps shows: `/dmabuf:NAME`, or the file an exporter's mmap put in the
    /// VMA instead (`None`: the line was not found).
    pub pathname: Option<String>,
}

impl TruthMapping {
    /// Whether maps shows the dma-buf itself (drivers/dma-buf/dma-buf.c:dmabuffs_dname), so
    /// that an audit can tie the mapping to the buffer.
    pub fn is_dmabuf(&self) -> bool {
        self.pathname
            .as_deref()
            .is_some_and(|p| p.starts_with("/dmabuf"))
    }
}

/// What `/proc/PID/maps` shows at `start`: the pathname of the VMA that begins there
/// (fs/proc/task_mmu.c:show_map_vma prints the path of `vma->vm_file`, which for a dma-buf is
/// drivers/dma-buf/dma-buf.c:dmabuffs_dname's `/dmabuf:NAME` unless the exporter's mmap replaced
/// the file).
fn maps_pathname(pid: u32, start: u64) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    text.lines()
        .filter_map(|l| crate::procfs::parse_maps_line(l).ok())
        .find(|e| e.start == start)
        .and_then(|e| e.pathname)
}

/// A failed step of the workload.
#[derive(Debug, thiserror::Error)]
#[error("audit workload: {step}: {source}")]
pub struct WorkloadError {
    /// The step.
    pub step: String,
    /// Why.
    pub source: std::io::Error,
}

fn fail(step: impl Into<String>) -> impl FnOnce(std::io::Error) -> WorkloadError {
    let step = step.into();
    move |source| WorkloadError { step, source }
}

/// A buffer the workload keeps: its mappings (unmapped first on drop), its fd, the fds it came
/// from.
#[derive(Debug)]
struct Held {
    id: ExporterId,
    maps: Vec<Mapping>,
    fd: Option<OwnedFd>,
    _keep: Vec<OwnedFd>,
    map_len: usize,
    truth: TruthBuffer,
}

/// The running workload; dropping it releases everything.
#[derive(Debug)]
pub struct Workload {
    truth: Truth,
    held: Vec<Held>,
    /// The importer's card fd (its GEM handle keeps the kernel-held buffer).
    _importer: Option<OwnedFd>,
    /// The write end the fork child waits on: closing it lets the child exit.
    fork_release: Option<OwnedFd>,
    fork_child: Option<sys::Child>,
    receiver: Option<(std::process::Child, OwnedFd)>,
}

impl Drop for Workload {
    fn drop(&mut self) {
        self.fork_release.take();
        if let Some((mut child, sock)) = self.receiver.take() {
            drop(sock);
            let _ = child.wait();
        }
        if let Some(mut c) = self.fork_child.take() {
            let _ = c.wait_until(std::time::Instant::now() + Duration::from_secs(2));
        }
    }
}

fn set_comm(name: &str) {
    if let Ok(c) = CString::new(name) {
        // Only the comm the audit shows; failing leaves the binary's name.
        let _ = rustix::thread::set_name(&c);
    }
}

fn io(e: rustix::io::Errno) -> std::io::Error {
    e.into()
}

impl Workload {
    /// Export, share, name, map and hold the buffers; `receiver` is the command of the process
    /// that receives fds over `SCM_RIGHTS` (its stdin becomes the socket; see [`receiver`]).
    pub fn start(receiver: &mut Command) -> Result<Workload, WorkloadError> {
        set_comm(WORKLOAD_COMM);
        let me = std::process::id();
        let page = rustix::param::page_size();
        let mut notes = Vec::new();
        let (found, _) = crate::discover(Duration::from_secs(10)).candidates();
        let held: Vec<Held> = found
            .iter()
            .filter(|f| f.id != ExporterId::Memfd)
            .filter_map(|f| export_one(f.id, &f.cand.source, page, me, &mut notes))
            .collect();
        let mut w = Workload {
            truth: Truth {
                kernel_release: crate::kernel_release(),
                processes: vec![TruthProcess {
                    pid: me,
                    comm: WORKLOAD_COMM.to_owned(),
                    role: "exports every buffer; holds and maps most".to_owned(),
                }],
                buffers: Vec::new(),
                notes: Vec::new(),
            },
            held,
            _importer: None,
            fork_release: None,
            fork_child: None,
            receiver: None,
        };
        let fork = w.first_of(&FORK_SHARED);
        let scm: Vec<usize> = SCM_SHARED
            .iter()
            .filter_map(|id| w.held.iter().position(|h| h.id == *id))
            .collect();
        let vivid = w.first_of(&[ExporterId::VividVmalloc]);
        for (i, name) in [fork, scm.first().copied(), vivid].into_iter().zip(NAMES) {
            match i {
                Some(i) => w.name(i, name, &mut notes),
                None => notes.push(format!("{name}: its exporter was not reached")),
            }
        }
        match fork {
            Some(i) => w.fork_sharer(i, page)?,
            None => notes.push(format!(
                "none of {} reached: no buffer shared with a fork child",
                ids(&FORK_SHARED)
            )),
        }
        if scm.is_empty() {
            notes.push(format!(
                "none of {} reached: nothing passed over SCM_RIGHTS",
                ids(&SCM_SHARED)
            ));
        } else {
            w.send_to_receiver(receiver, &scm)?;
        }
        w.map_here(scm.first().copied(), &mut notes);
        w.hold_in_kernel(&found, page, me, &mut notes);
        for h in &mut w.held {
            h.truth.holders.sort_unstable();
            h.truth.mappers.sort_unstable();
            for m in &mut h.truth.mappings {
                m.pathname = maps_pathname(m.pid, m.start);
            }
            h.truth.mappings.sort_by_key(|m| m.pid);
        }
        w.truth.buffers = w.held.iter().map(|h| h.truth.clone()).collect();
        w.truth.buffers.sort_by_key(|b| b.inode);
        notes.append(&mut w.truth.notes);
        w.truth.notes = notes;
        Ok(w)
    }

    /// What the workload did.
    pub fn truth(&self) -> &Truth {
        &self.truth
    }

    /// The index of the first held buffer of these exporters, in their order.
    fn first_of(&self, ids: &[ExporterId]) -> Option<usize> {
        ids.iter()
            .find_map(|id| self.held.iter().position(|h| h.id == *id && h.fd.is_some()))
    }

    fn name(&mut self, i: usize, name: &str, notes: &mut Vec<String>) {
        let h = &mut self.held[i];
        if let Some(fd) = h.fd.as_ref() {
            h.truth.name = set_name(fd.as_fd(), name, h.id, notes);
        }
    }

    /// Record that `pid` mapped buffer `i` at `start` (0: it could not).
    fn mapped(&mut self, i: usize, pid: u32, start: u64) {
        if start != 0 {
            let t = &mut self.held[i].truth;
            t.mappers.push(pid);
            t.mappings.push(TruthMapping {
                pid,
                start,
                pathname: None,
            });
        } else {
            self.truth
                .notes
                .push(format!("{}: pid {pid} could not map it", self.held[i].id));
        }
    }

    /// Fork a child that keeps buffer `shared` (closing every other dma-buf fd it inherits)
    /// and maps it.
    fn fork_sharer(&mut self, shared: usize, page: usize) -> Result<(), WorkloadError> {
        let (ready_r, ready_w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)
            .map_err(io)
            .map_err(fail("pipe"))?;
        let (release_r, release_w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)
            .map_err(io)
            .map_err(fail("pipe"))?;
        let others: Vec<i32> = self
            .held
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != shared)
            .filter_map(|(_, h)| h.fd.as_ref().map(|f| f.as_raw_fd()))
            .collect();
        let Some(fd) = self.held[shared].fd.as_ref().map(|f| f.as_fd()) else {
            return Ok(());
        };
        let len = self.held[shared].map_len.max(page);
        let release_w_raw = release_w.as_raw_fd();
        let child = sys::fork(false, || {
            set_comm(FORKED_COMM);
            for raw in &others {
                sys::close_raw(*raw);
            }
            sys::close_raw(release_w_raw);
            let mapped = Mapping::shared(fd, len).ok();
            let start = mapped.as_ref().map_or(0, |m| m.addr() as u64);
            let _ = rustix::io::write(&ready_w, &start.to_ne_bytes());
            // Until the workload closes its end (or dies).
            let mut b = [0u8; 1];
            while matches!(rustix::io::read(&release_r, &mut b), Ok(n) if n > 0) {}
            drop(mapped);
            0
        })
        .map_err(io)
        .map_err(fail("fork"))?;
        drop(ready_w);
        drop(release_r);
        let pid = child.pid();
        self.fork_release = Some(release_w);
        self.fork_child = Some(child);
        let start = read_start(&ready_r, "the fork child")?;
        self.held[shared].truth.holders.push(pid);
        self.mapped(shared, pid, start);
        self.truth.processes.push(TruthProcess {
            pid,
            comm: FORKED_COMM.to_owned(),
            role: format!(
                "fork child: keeps and maps the {} buffer",
                self.held[shared].id
            ),
        });
        Ok(())
    }

    /// Start the receiver and pass it buffers `idx` (it maps the first).
    fn send_to_receiver(&mut self, cmd: &mut Command, idx: &[usize]) -> Result<(), WorkloadError> {
        let (ours, theirs) = rustix::net::socketpair(
            AddressFamily::UNIX,
            SocketType::STREAM,
            SocketFlags::CLOEXEC,
            None,
        )
        .map_err(io)
        .map_err(fail("socketpair"))?;
        let child = cmd
            .stdin(Stdio::from(theirs))
            .stdout(Stdio::null())
            .spawn()
            .map_err(fail(format!(
                "starting the receiver {:?}",
                cmd.get_program()
            )))?;
        let pid = child.id();
        self.receiver = Some((child, ours));
        let Some((_, sock)) = self.receiver.as_ref() else {
            return Ok(());
        };
        let fds: Vec<BorrowedFd<'_>> = idx
            .iter()
            .filter_map(|&i| self.held[i].fd.as_ref().map(|f| f.as_fd()))
            .collect();
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(2))];
        let mut anc = SendAncillaryBuffer::new(&mut space);
        anc.push(SendAncillaryMessage::ScmRights(&fds));
        rustix::net::sendmsg(
            sock,
            &[IoSlice::new(&[fds.len() as u8])],
            &mut anc,
            SendFlags::empty(),
        )
        .map_err(io)
        .map_err(fail("sendmsg SCM_RIGHTS"))?;
        let start = read_start(sock, "the receiver")?;
        for (k, &i) in idx.iter().enumerate() {
            self.held[i].truth.holders.push(pid);
            if k == 0 {
                self.mapped(i, pid, start);
            }
        }
        self.truth.processes.push(TruthProcess {
            pid,
            comm: RECEIVER_COMM.to_owned(),
            role: format!(
                "exec'd; receives {} over SCM_RIGHTS and maps the first",
                idx.iter()
                    .map(|&i| self.held[i].id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
        Ok(())
    }

    /// Map every buffer here but `skip`; close the fd of the first of [`FD_CLOSED_AFTER_MAP`]
    /// that maps.
    fn map_here(&mut self, skip: Option<usize>, notes: &mut Vec<String>) {
        let me = std::process::id();
        let mut closed = false;
        for i in 0..self.held.len() {
            if Some(i) == skip {
                continue;
            }
            let h = &mut self.held[i];
            let Some(fd) = h.fd.as_ref() else { continue };
            match Mapping::shared(fd.as_fd(), h.map_len) {
                Ok(m) => {
                    let start = m.addr() as u64;
                    h.maps.push(m);
                    if !closed && FD_CLOSED_AFTER_MAP.contains(&h.id) {
                        closed = true;
                        h.fd = None;
                        h.truth.holders.retain(|p| *p != me);
                    }
                    self.mapped(i, me, start);
                }
                Err(e) => notes.push(format!("{}: mmap: {}", h.id, errno::errno(e))),
            }
        }
        if !closed {
            notes.push(format!(
                "none of {} mapped: no buffer held by its mapping alone",
                ids(&FD_CLOSED_AFTER_MAP)
            ));
        }
    }

    /// Export one more buffer, import it into a DRM device of another driver and close every
    /// fd of it.
    fn hold_in_kernel(
        &mut self,
        found: &[crate::Found],
        page: usize,
        me: u32,
        notes: &mut Vec<String>,
    ) {
        // The first source that exports (vivid's capture node refuses a second VIDIOC_REQBUFS
        // while the first buffer lives: EBUSY).
        let mut refusals = Vec::new();
        let mut exported = None;
        for src in KERNEL_HELD_FROM
            .iter()
            .filter_map(|id| found.iter().find(|f| f.id == *id))
        {
            if let Some(h) = export_one(src.id, &src.cand.source, page, me, &mut refusals) {
                exported = Some((src, h));
                break;
            }
        }
        let Some((src, mut h)) = exported else {
            notes.push(format!(
                "kernel-held: none of {} exported a buffer{}",
                ids(&KERNEL_HELD_FROM),
                if refusals.is_empty() {
                    String::new()
                } else {
                    format!(": {}", refusals.join("; "))
                }
            ));
            return;
        };
        notes.extend(refusals.into_iter().map(|n| format!("kernel-held: {n}")));
        if let Some(fd) = h.fd.as_ref() {
            h.truth.name = set_name(fd.as_fd(), KERNEL_HELD_NAME, src.id, notes);
        }
        let mut refused = Vec::new();
        // Not the exporter's own driver: importing its own export attaches nothing
        // (drm_gem_prime_import_dev takes a reference on the GEM object instead).
        for id in IMPORTERS.into_iter().filter(|id| *id != src.id) {
            let Some(Source::Drm { node }) =
                found.iter().find(|f| f.id == id).map(|f| &f.cand.source)
            else {
                continue;
            };
            let Some(fd) = h.fd.as_ref() else { return };
            match import(node, fd.as_fd()) {
                Ok(card) => {
                    self._importer = Some(card);
                    h.fd = None;
                    h._keep.clear();
                    h.truth.holders.clear();
                    h.truth.kernel_held_by = Some(id.as_str().to_owned());
                    self.held.push(h);
                    return;
                }
                Err(e) => refused.push(format!("{id} ({node}): {e}")),
            }
        }
        notes.push(format!(
            "kernel-held: no DRM device imported the {} buffer: {}",
            src.id,
            if refused.is_empty() {
                "no other DRM device reached".to_owned()
            } else {
                refused.join("; ")
            }
        ));
    }
}

/// The exporter ids, comma-separated, for notes.
fn ids(list: &[ExporterId]) -> String {
    list.iter()
        .map(|i| i.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Read the start address a helper process mapped its buffer at (0: it could not map it).
fn read_start(fd: impl AsFd, who: &str) -> Result<u64, WorkloadError> {
    let mut b = [0u8; 8];
    let mut got = 0;
    while got < b.len() {
        let n = rustix::io::read(&fd, &mut b[got..])
            .map_err(io)
            .map_err(fail(format!("reading {who}'s readiness")))?;
        if n == 0 {
            return Err(WorkloadError {
                step: who.to_owned(),
                source: std::io::Error::other("exited before it was ready"),
            });
        }
        got += n;
    }
    Ok(u64::from_ne_bytes(b))
}

/// Open `node` and import `dmabuf` with `DRM_IOCTL_PRIME_FD_TO_HANDLE`; the card fd keeps the
/// GEM handle.
fn import(node: &str, dmabuf: BorrowedFd<'_>) -> Result<OwnedFd, String> {
    let card = rustix::fs::open(node, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| format!("open: {}", errno::errno(e)))?;
    let mut prime = uapi::DrmPrimeHandle {
        handle: 0,
        flags: 0,
        fd: dmabuf.as_raw_fd(),
    };
    sys::ioctl(card.as_fd(), uapi::DRM_IOCTL_PRIME_FD_TO_HANDLE, &mut prime)
        .map_err(|e| format!("DRM_IOCTL_PRIME_FD_TO_HANDLE: {}", errno::errno(e)))?;
    Ok(card)
}

/// Name a buffer; the name, or `None` with a note.
fn set_name(
    fd: BorrowedFd<'_>,
    name: &str,
    id: ExporterId,
    notes: &mut Vec<String>,
) -> Option<String> {
    let Ok(c) = CString::new(name) else {
        return None;
    };
    match sys::dma_buf_set_name(fd, &c) {
        Ok(()) => Some(name.to_owned()),
        Err(e) => {
            notes.push(format!("{id}: DMA_BUF_SET_NAME: {}", errno::errno(e)));
            None
        }
    }
}

/// Export one buffer of `id` held by `me`; `None` with a note when the exporter refuses.
fn export_one(
    id: ExporterId,
    source: &Source,
    page: usize,
    me: u32,
    notes: &mut Vec<String>,
) -> Option<Held> {
    let buf: Buffer = match source.export(page) {
        Ok(b) => b,
        Err(e) => {
            notes.push(format!("{id}: {e}"));
            return None;
        }
    };
    let exp_name = match buf.fdinfo() {
        Ok(f) => f.exp_name.unwrap_or_default(),
        Err(e) => {
            notes.push(format!("{id}: fdinfo: {e}"));
            return None;
        }
    };
    let inode = match rustix::fs::fstat(&buf.fd) {
        Ok(st) => st.st_ino,
        Err(e) => {
            notes.push(format!("{id}: fstat: {}", errno::errno(e)));
            return None;
        }
    };
    let size = buf.size;
    let map_len = buf.map_len(page);
    let (fd, keep) = buf.into_parts();
    Some(Held {
        id,
        maps: Vec::new(),
        fd: Some(fd),
        _keep: keep,
        map_len,
        truth: TruthBuffer {
            inode,
            size,
            exporter: id,
            exp_name,
            name: None,
            holders: vec![me],
            mappers: Vec::new(),
            mappings: Vec::new(),
            kernel_held_by: None,
        },
    })
}

/// The receiver's side ([`RECEIVER_COMM`]): stdin is the unix socket; take the fds the
/// workload sends, map the first, send the address it mapped at (8 bytes, 0: it could not),
/// then hold everything until the workload closes the socket.
pub fn receiver() -> Result<(), WorkloadError> {
    set_comm(RECEIVER_COMM);
    let stdin = std::io::stdin();
    let sock = stdin.as_fd();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(8))];
    let mut anc = RecvAncillaryBuffer::new(&mut space);
    let mut n = [0u8; 1];
    rustix::net::recvmsg(
        sock,
        &mut [IoSliceMut::new(&mut n)],
        &mut anc,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(io)
    .map_err(fail("recvmsg SCM_RIGHTS"))?;
    let mut fds: Vec<OwnedFd> = Vec::new();
    for msg in anc.drain() {
        if let RecvAncillaryMessage::ScmRights(it) = msg {
            fds.extend(it);
        }
    }
    let page = rustix::param::page_size();
    let mapped = fds.first().and_then(|fd| {
        let size = rustix::fs::seek(fd, rustix::fs::SeekFrom::End(0)).ok()?;
        let len = usize::try_from(size).ok()?;
        Mapping::shared(fd.as_fd(), len - len % page).ok()
    });
    let start = mapped.as_ref().map_or(0, |m| m.addr() as u64);
    rustix::io::write(sock, &start.to_ne_bytes())
        .map_err(io)
        .map_err(fail("writing readiness"))?;
    let mut b = [0u8; 1];
    while matches!(rustix::io::read(sock, &mut b), Ok(k) if k > 0) {}
    drop(mapped);
    drop(fds);
    Ok(())
}
