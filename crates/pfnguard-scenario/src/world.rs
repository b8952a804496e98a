//! The modeled system a scenario runs on: one [`Kernel`], the exported buffer, and each actor's
//! fd, mappings and the pages its kernel-side users hold (GUP references and pins, bios in
//! flight, pipe buffers, io_uring registrations, RDMA MRs, KVM memslot pfns).
//!
//! A [`World`] is cloned at every branch of the exploration: what never changes after setup
//! (the exporter, the buffer's file, the actor kinds) sits behind one [`Arc`].

use std::sync::Arc;

use pfnguard_dmabuf::core::{
    dma_buf_detach, dma_buf_dynamic_attach, dma_buf_map_attachment, dma_buf_unmap_attachment,
    Attachment, SgDebug,
};
use pfnguard_dmabuf::exporters::{ExportCtx, Exported, Exporter};
use pfnguard_dmabuf::Policy;
use pfnguard_mm::bio::{bio_iov_iter_get_pages, bio_release_pages, BioPages};
use pfnguard_mm::fault::user_access;
use pfnguard_mm::fork::{copy_mm, exit_mmap};
use pfnguard_mm::gup::{get_user_pages_fast, pin_user_pages_fast, Foll};
use pfnguard_mm::io_uring::{io_sqe_buffer_register, io_sqe_buffers_unregister, IO_URING};
use pfnguard_mm::kernel::HeldPages;
use pfnguard_mm::kvm::{hva_to_pfn, kvm_release_pfn, KvmPfn};
use pfnguard_mm::madvise::{madvise, mlock};
use pfnguard_mm::mmap::{do_mmap, do_munmap};
use pfnguard_mm::mremap::{mprotect, mremap, MremapFlags};
use pfnguard_mm::shared::Shared;
use pfnguard_mm::splice::{pipe_read_all, vmsplice_to_pipe, PIPE};
use pfnguard_mm::umem::{ib_umem_get, ib_umem_release, Umem};
use pfnguard_mm::{
    Errno, Fail, KResult, Kernel, MapFlags, MmId, MmapArgs, Pfn, Prot, ResolvedKernel, VirtAddr,
    PAGE_SIZE,
};

use crate::lifetime;
use crate::property::Property;
use crate::step::{ActorKind, Step};

/// Pages a kernel-side user of an actor holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// `get_user_pages*()` references (`gup_get`).
    Get(Vec<Pfn>),
    /// `pin_user_pages*()` pins (`gup_pin`, `gup_pin_longterm`).
    Pin(Vec<Pfn>),
    /// A bio in flight (O_DIRECT).
    Bio(BioPages),
    /// Pipe buffers (vmsplice).
    Pipe(HeldPages),
    /// io_uring registered buffers.
    Uring(HeldPages),
    /// An RDMA memory region.
    Mr(Umem),
    /// A KVM guest's mapping (spte) of the page at `addr` of the memslot: no reference (the
    /// fault released what `hva_to_pfn()` took); the MMU notifier drops it when the host PTE
    /// changes.
    Kvm {
        /// The host virtual address.
        addr: VirtAddr,
        /// The frame the guest maps.
        pfn: Pfn,
    },
    /// An importing device's mapped attachment (drivers/dma-buf/dma-buf.c:
    /// dma_buf_map_attachment): the frames of its scatterlist, which the device may DMA to
    /// until it unmaps. No page reference: the exporters' `map_dma_buf` take none.
    Import(Vec<Pfn>),
}

impl Hold {
    /// The frames held, and whether each holds a reference or pin (`false` for a KVM pfn
    /// taken without one).
    pub fn frames(&self) -> (&[Pfn], bool) {
        match self {
            Hold::Get(p) | Hold::Pin(p) => (p, true),
            Hold::Bio(b) => (&b.pages, true),
            Hold::Pipe(h) | Hold::Uring(h) => (&h.pages, true),
            Hold::Mr(u) => (&u.pages, true),
            Hold::Kvm { pfn, .. } => (std::slice::from_ref(pfn), false),
            Hold::Import(p) => (p, false),
        }
    }
    /// What this hold is called in a picture of the state: the kernel user and its kind of
    /// reference.
    pub fn holder_name(&self) -> &'static str {
        match self {
            Hold::Get(_) => "GUP reference (FOLL_GET)",
            Hold::Pin(_) => "GUP pin (FOLL_PIN)",
            Hold::Bio(_) => "bio in flight (O_DIRECT)",
            Hold::Pipe(_) => "pipe buffer (vmsplice)",
            Hold::Uring(_) => "io_uring fixed buffer",
            Hold::Mr(_) => "RDMA memory region",
            Hold::Kvm { .. } => "KVM spte (no reference)",
            Hold::Import(_) => "importer's scatterlist (no reference)",
        }
    }
    /// A small tag for fingerprints.
    pub fn tag(&self) -> u64 {
        match self {
            Hold::Get(_) => 1,
            Hold::Pin(_) => 2,
            Hold::Bio(b) => 3 + u64::from(b.pinned) * 16,
            Hold::Pipe(_) => 4,
            Hold::Uring(_) => 5,
            Hold::Mr(_) => 6,
            Hold::Kvm { addr, .. } => 7 | addr.0 << 8,
            Hold::Import(_) => 8,
        }
    }
}

/// What an actor's kernel-side users hold, oldest first. The list and each hold are
/// [`Shared`]: the copy of an actor that a step makes (in a clone of the world) copies neither
/// the list nor the frames each hold names; a change of the list rebuilds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holds(Shared<[Shared<Hold>]>);

impl Holds {
    /// Add `h` (the newest).
    pub fn push(&mut self, h: Hold) {
        self.0.push(Shared::new(h));
    }
    /// The holds, oldest first.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &Hold> + '_ {
        self.0.iter().map(|h| &**h)
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Keep the holds `keep` selects.
    pub fn retain(&mut self, mut keep: impl FnMut(&Hold) -> bool) {
        self.0.retain(|h| keep(h));
    }
    /// Remove the most recent hold `pick` selects.
    pub fn take_last(&mut self, pick: impl Fn(&Hold) -> bool) -> Option<Hold> {
        let i = self.0.iter().rposition(|h| pick(h))?;
        self.0.remove(i).map(Shared::unwrap_or_clone)
    }
    /// Remove the oldest hold `pick` selects.
    pub fn take_first(&mut self, pick: impl Fn(&Hold) -> bool) -> Option<Hold> {
        let i = self.0.iter().position(|h| pick(h))?;
        self.0.remove(i).map(Shared::unwrap_or_clone)
    }
    /// Remove every hold `pick` selects, oldest first.
    pub fn take_all(&mut self, pick: impl Fn(&Hold) -> bool) -> Vec<Hold> {
        let mine: Vec<Hold> = self.iter().filter(|h| pick(h)).cloned().collect();
        self.0.retain(|h| !pick(h));
        mine
    }
}

impl<'a> IntoIterator for &'a Holds {
    type Item = &'a Hold;
    type IntoIter = std::iter::Map<std::slice::Iter<'a, Shared<Hold>>, fn(&Shared<Hold>) -> &Hold>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(|h| &**h)
    }
}

/// One actor's state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActorState {
    /// The next step of its list (scenarios).
    pub pc: u16,
    /// Its address space (processes; a child's once forked).
    pub mm: Option<MmId>,
    /// It holds a dma-buf fd.
    pub has_fd: bool,
    /// It exited.
    pub exited: bool,
    /// Its mappings of the buffer, oldest first: (address, length).
    pub maps: Shared<[(VirtAddr, u64)]>,
    /// What its kernel-side users hold.
    pub holds: Holds,
    /// An importing device's attachment (between `attach` and `detach`); the device also
    /// holds a reference to the dma-buf then (`has_fd`: its `dma_buf_get()`).
    pub attachment: Option<Attachment>,
}

/// What does not change after setup.
#[derive(Debug)]
pub struct Setup {
    /// The exported buffer.
    pub exported: Exported,
    /// The frames backing the buffer at export, in buffer order.
    pub buffer_frames: Vec<Pfn>,
    /// Folio records that existed after export (later ones are the processes' own).
    pub setup_folios: usize,
    /// Each frame's reference count right after export: references above it are someone's.
    pub baseline_refs: Vec<(Pfn, i32)>,
    /// The actors' kinds.
    pub kinds: Vec<ActorKind>,
    /// The actors' names.
    pub names: Vec<String>,
}

/// The modeled system.
#[derive(Debug, Clone)]
pub struct World {
    /// The kernel.
    pub k: Kernel,
    /// The setup.
    pub setup: Arc<Setup>,
    /// The actors ([`Shared`] between clones of the world until a step changes one).
    pub actors: Shared<[ActorState]>,
    /// The last reference to the dma-buf file went (every fd closed, every VMA gone).
    pub file_released: bool,
    /// The exporter freed the backing.
    pub released: bool,
    /// Frames the buffer's backing had and lost to an eviction, move or purge (sorted): the
    /// memory the exporter moved away from, which a PTE or a pin may still reach.
    pub retired: Vec<Pfn>,
    /// The properties that held in some state of the path to this one
    /// ([`Property::bit`](crate::Property::bit)).
    pub seen: u16,
}

/// What a step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    /// It succeeded.
    Ok,
    /// The modeled kernel path failed: errno, signal, BUG or hang.
    Fail(Fail),
    /// The step had nothing to act on (no mapping, nothing held, already closed).
    Skipped(&'static str),
    /// The model cannot run it on this tree.
    Unavailable(&'static str),
    /// What a reading step (`rss`) read: `counted` or `zero`.
    Read(&'static str),
}

impl std::fmt::Display for StepOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepOutcome::Ok => f.write_str("ok"),
            StepOutcome::Fail(e) => write!(f, "{e}"),
            StepOutcome::Skipped(why) => write!(f, "skipped: {why}"),
            StepOutcome::Unavailable(why) => write!(f, "unavailable: {why}"),
            StepOutcome::Read(v) => f.write_str(v),
        }
    }
}

impl StepOutcome {
    /// The outcome as result predicates name it: `ok`, an errno name (`EFAULT`), `SIGBUS`,
    /// `SIGSEGV`, `BUG`, `hang`, `skipped`, `unavailable`, or what `rss` read (`counted`,
    /// `zero`).
    pub fn key(&self) -> &'static str {
        match self {
            StepOutcome::Ok => "ok",
            StepOutcome::Fail(Fail::Errno(e)) => e.name(),
            StepOutcome::Fail(Fail::Signal(s)) => s.name(),
            StepOutcome::Fail(Fail::Bug(_)) => "BUG",
            StepOutcome::Fail(Fail::Hang(_)) => "hang",
            StepOutcome::Skipped(_) => "skipped",
            StepOutcome::Unavailable(_) => "unavailable",
            StepOutcome::Read(v) => v,
        }
    }
}

impl<T> From<KResult<T>> for StepOutcome {
    fn from(r: KResult<T>) -> Self {
        match r {
            Ok(_) => StepOutcome::Ok,
            Err(e) => StepOutcome::Fail(e),
        }
    }
}

/// The holds `do_exit()` releases ([`World::exit`]): the pipe, the io_uring ring, the uverbs
/// context's MRs and the KVM VM go with the process's files.
fn released_at_exit(h: &Hold) -> bool {
    matches!(
        h,
        Hold::Pipe(_) | Hold::Uring(_) | Hold::Mr(_) | Hold::Kvm { .. }
    )
}

/// Why a world could not be set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetupError {
    /// The kernel's build lacks the exporter.
    NotBuilt(String),
    /// The export itself failed in the model.
    ExportFailed(String),
}

impl std::fmt::Display for SetupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SetupError::NotBuilt(m) => write!(f, "unavailable: {m}"),
            SetupError::ExportFailed(m) => write!(f, "export failed: {m}"),
        }
    }
}

const NO_MM: &str = "the actor has no address space (not forked yet, or exited)";
const NO_MAP: &str = "the actor has no mapping of the buffer";
const NO_GET: &str = "no page reference to put";
const NO_PIN: &str = "no pin to release";
const NO_BIO: &str = "no O_DIRECT transfer in flight";
const NO_PIPE: &str = "the pipe is empty";
const NO_URING: &str = "no buffers registered";
const NO_MR: &str = "no memory region registered";
const NO_SPTE: &str = "no memslot pfn to release";
const RELEASED: &str = "the backing was already released";
const ATTACHED: &str = "the device is already attached";
const NOT_ATTACHED: &str = "the device is not attached";
const MAPPED: &str = "the attachment is already mapped";
const NOT_MAPPED: &str = "the attachment is not mapped";
const NOT_DMA_BUF: &str =
    "the exported file is not a dma-buf (the memfd control): nothing to attach";
const MOVED: &str = "the exporter moved the buffer before this map (evict); where its map_dma_buf \
     puts it back for an importer (ttm_bo_validate into GTT/VRAM) is not modeled";
const FREED: &str = "the exporter freed the buffer (release); what its map_dma_buf does after a \
     device removal is exporter-specific and not modeled";

impl World {
    /// Boot `kernel` under `policy`, export a buffer of `pages` pages from `exp` (its own size
    /// for exporter files) in the first process, and give every process a dma-buf fd.
    pub fn new(
        kernel: &ResolvedKernel,
        policy: Policy,
        exp: &dyn Exporter,
        pages: u64,
        kinds: Vec<ActorKind>,
        names: Vec<String>,
    ) -> Result<World, SetupError> {
        if let Some(o) = exp.not_built(&kernel.config) {
            return Err(SetupError::NotBuilt(format!(
                "{o} is not set ({})",
                kernel.config.source
            )));
        }
        let mut k = Kernel::new(
            kernel.facts,
            pfnguard_dmabuf::predict::mm_config(kernel, policy),
        );
        let cx = ExportCtx {
            policy,
            pages: exp.fixed_pages().unwrap_or(pages),
        };
        let exported = exp
            .export(&mut k, &cx)
            .map_err(|e| SetupError::ExportFailed(e.to_string()))?;
        let buffer_frames = exported
            .buf
            .as_ref()
            .map(|b| b.ops.pages())
            .unwrap_or_default();
        let baseline_refs = buffer_frames
            .iter()
            .filter_map(|&p| {
                let f = k.frames.folio_of(p)?;
                Some((p, k.frames.folio(f).refcount))
            })
            .collect();
        let mut actors = Vec::with_capacity(kinds.len());
        let mut first = true;
        for kind in &kinds {
            let mut a = ActorState::default();
            if *kind == ActorKind::Process {
                a.mm = Some(if first { Kernel::INIT_MM } else { k.new_mm() });
                a.has_fd = true;
                first = false;
            }
            actors.push(a);
        }
        let setup = Setup {
            exported,
            buffer_frames,
            setup_folios: k.frames.len(),
            baseline_refs,
            kinds,
            names,
        };
        Ok(World {
            k,
            setup: Arc::new(setup),
            actors: Shared::from(actors),
            file_released: false,
            released: false,
            retired: Vec::new(),
            seen: 0,
        })
    }

    /// Whether `self` is a clone of `before` that no step changed: the same kernel state
    /// ([`Kernel::unchanged_from`]), setup, actors and flags. A cheap check: `false` means the
    /// two may differ.
    pub fn unchanged_from(&self, before: &World) -> bool {
        self.seen == before.seen
            && self.file_released == before.file_released
            && self.released == before.released
            && Arc::ptr_eq(&self.setup, &before.setup)
            && (Shared::ptr_eq(&self.actors, &before.actors) || self.actors == before.actors)
            && self.k.unchanged_from(&before.k)
    }

    /// Whether the kernel oopsed: nothing runs after a BUG.
    pub fn dead(&self) -> bool {
        self.k.oops.is_some()
    }

    fn mm_of(&self, a: usize) -> Result<MmId, StepOutcome> {
        let s = &self.actors[a];
        match s.mm {
            Some(mm) if !s.exited => Ok(mm),
            _ => Err(StepOutcome::Skipped(NO_MM)),
        }
    }

    /// The actor's most recent mapping and its address space.
    fn mapping(&self, a: usize) -> Result<(MmId, VirtAddr, u64), StepOutcome> {
        let mm = self.mm_of(a)?;
        match self.actors[a].maps.last() {
            Some(&(addr, len)) => Ok((mm, addr, len)),
            None => Err(StepOutcome::Skipped(NO_MAP)),
        }
    }

    fn page_addr(&self, a: usize, page: u32) -> Result<(MmId, VirtAddr), StepOutcome> {
        let (mm, addr, _) = self.mapping(a)?;
        Ok((mm, addr.add_pages(u64::from(page))))
    }

    /// Run one step of actor `a`. Scenario order (the actor's `pc`) is the caller's.
    pub fn apply(&mut self, a: usize, step: Step) -> StepOutcome {
        if let Some(b) = &self.k.oops {
            return StepOutcome::Fail(Fail::Bug(b.clone()));
        }
        let r = match self.prerequisite(a, step) {
            Ok(()) => self.apply_inner(a, step),
            Err(o) => Err(o),
        };
        self.kvm_mmu_notifier();
        match r {
            Ok(o) | Err(o) => o,
        }
    }

    /// What step `step` of actor `a` needs before it runs: an address space (`mmap`, `fork`,
    /// `exit`), a mapping of the buffer (the steps on the mapping), the page's mapping (the
    /// page steps), an open fd (`mmap`, `close`: else `EBADF`, as fs/file.c:close_fd and
    /// mm/mmap.c:ksys_mmap_pgoff's `fget` return), something to release (the release steps:
    /// a reference, a pin, a transfer, a registration, a pipe buffer, an spte), and for the
    /// importing device its attachment in the state the step needs. Without it the step does
    /// not reach the kernel, and [`World::apply`] changes nothing (the MMU notifier it runs
    /// after every step has nothing left to drop).
    pub fn prerequisite(&self, a: usize, step: Step) -> Result<(), StepOutcome> {
        let holds = |pick: fn(&Hold) -> bool, why: &'static str| {
            if self.actors[a].holds.iter().any(pick) {
                Ok(())
            } else {
                Err(StepOutcome::Skipped(why))
            }
        };
        let fd = || {
            if self.actors[a].has_fd {
                Ok(())
            } else {
                Err(StepOutcome::Fail(Errno::EBADF.into()))
            }
        };
        let attached = || match self.actors[a].attachment {
            Some(_) => Ok(()),
            None => Err(StepOutcome::Skipped(NOT_ATTACHED)),
        };
        match step {
            Step::Mmap { .. } => self.mm_of(a).and_then(|_| fd()),
            Step::Fork { .. } | Step::Exit => self.mm_of(a).map(drop),
            Step::Close => fd(),
            Step::Access { page, .. }
            | Step::GupGet { page }
            | Step::GupPin { page, .. }
            | Step::OdirectSubmit { page, .. }
            | Step::Vmsplice { page }
            | Step::KvmMap { page } => self.page_addr(a, page).map(drop),
            Step::Munmap
            | Step::IoUringRegister
            | Step::RdmaRegMr
            | Step::Madvise(_)
            | Step::MremapGrow
            | Step::Mprotect(_)
            | Step::Mlock
            | Step::Rss => self.mapping(a).map(drop),
            Step::GupPut => holds(|h| matches!(h, Hold::Get(_)), NO_GET),
            Step::GupUnpin => holds(|h| matches!(h, Hold::Pin(_)), NO_PIN),
            Step::OdirectComplete => holds(|h| matches!(h, Hold::Bio(_)), NO_BIO),
            Step::PipeRead => holds(|h| matches!(h, Hold::Pipe(_)), NO_PIPE),
            Step::IoUringUnregister => holds(|h| matches!(h, Hold::Uring(_)), NO_URING),
            Step::RdmaDeregMr => holds(|h| matches!(h, Hold::Mr(_)), NO_MR),
            Step::KvmUnmap => holds(|h| matches!(h, Hold::Kvm { .. }), NO_SPTE),
            Step::Release if self.released => Err(StepOutcome::Skipped(RELEASED)),
            Step::Attach { .. } if self.actors[a].attachment.is_some() => {
                Err(StepOutcome::Skipped(ATTACHED))
            }
            Step::MapAttachment => attached().and_then(|()| {
                if self.actors[a]
                    .holds
                    .iter()
                    .any(|h| matches!(h, Hold::Import(_)))
                {
                    Err(StepOutcome::Skipped(MAPPED))
                } else {
                    Ok(())
                }
            }),
            Step::UnmapAttachment => holds(|h| matches!(h, Hold::Import(_)), NOT_MAPPED),
            Step::Detach => attached(),
            _ => Ok(()),
        }
    }

    /// The MMU notifiers after each step: every guest mapping that
    /// [`kvm_spte_survives`](pfnguard_mm::kvm::kvm_spte_survives) says KVM dropped goes.
    fn kvm_mmu_notifier(&mut self) {
        // Only a guest mapping KVM drops changes the actors: a world with none to drop keeps
        // sharing its actors with the clone it came from.
        let k = &self.k;
        let drops = |s: &ActorState| {
            let mm = s.mm.filter(|_| !s.exited);
            s.holds.iter().any(|h| match h {
                Hold::Kvm { addr, pfn } => !pfnguard_mm::kvm::kvm_spte_survives(k, mm, *addr, *pfn),
                _ => false,
            })
        };
        if !self.actors.iter().any(drops) {
            return;
        }
        for s in self.actors.iter_mut() {
            if !s.holds.iter().any(|h| matches!(h, Hold::Kvm { .. })) {
                continue;
            }
            let mm = s.mm.filter(|_| !s.exited);
            let k = &self.k;
            s.holds.retain(|h| match h {
                Hold::Kvm { addr, pfn } => pfnguard_mm::kvm::kvm_spte_survives(k, mm, *addr, *pfn),
                _ => true,
            });
        }
    }

    fn apply_inner(&mut self, a: usize, step: Step) -> Result<StepOutcome, StepOutcome> {
        Ok(match step {
            Step::Mmap { private } => {
                let mm = self.mm_of(a)?;
                let size = self.setup.exported.size;
                let flags = if private {
                    MapFlags::PRIVATE
                } else {
                    MapFlags::SHARED
                };
                let file = Arc::clone(&self.setup.exported.file);
                let r = do_mmap(
                    &mut self.k,
                    mm,
                    Some(file),
                    MmapArgs::new(size, Prot::RW, flags),
                );
                if let Ok(addr) = r {
                    self.actors[a].maps.push((addr, size));
                }
                r.into()
            }
            Step::Access { page, write } => {
                let (mm, addr) = self.page_addr(a, page)?;
                user_access(&mut self.k, mm, addr, write).into()
            }
            Step::Munmap => {
                let (mm, addr, len) = self.mapping(a)?;
                self.actors[a].maps.pop();
                let r = do_munmap(&mut self.k, mm, addr, len);
                self.maybe_release_file();
                r.into()
            }
            Step::Close => {
                self.actors[a].has_fd = false;
                self.maybe_release_file();
                StepOutcome::Ok
            }
            Step::Fork { child } => {
                let mm = self.mm_of(a)?;
                let c = usize::from(child);
                if self.actors.get(c).is_none_or(|s| s.mm.is_some()) {
                    return Ok(StepOutcome::Skipped("the child was already forked"));
                }
                let r = copy_mm(&mut self.k, mm);
                if let Ok(cm) = r {
                    let (maps, fd) = (self.actors[a].maps.clone(), self.actors[a].has_fd);
                    let s = &mut self.actors[c];
                    s.mm = Some(cm);
                    s.maps = maps;
                    s.has_fd = fd;
                }
                r.into()
            }
            Step::Exit => {
                let mm = self.mm_of(a)?;
                self.exit(a, mm);
                StepOutcome::Ok
            }
            Step::GupGet { page } => {
                let (mm, addr) = self.page_addr(a, page)?;
                let mut pages = Vec::new();
                let r = get_user_pages_fast(&mut self.k, mm, addr, 1, Foll::empty(), &mut pages);
                if !pages.is_empty() {
                    self.actors[a].holds.push(Hold::Get(pages));
                }
                r.into()
            }
            Step::GupPin { page, longterm } => {
                let (mm, addr) = self.page_addr(a, page)?;
                let gup = if longterm {
                    Foll::LONGTERM | Foll::WRITE
                } else {
                    Foll::empty()
                };
                let mut pages = Vec::new();
                let r = pin_user_pages_fast(&mut self.k, mm, addr, 1, gup, &mut pages);
                if !pages.is_empty() {
                    self.actors[a].holds.push(Hold::Pin(pages));
                }
                r.into()
            }
            Step::GupPut => match self.take_last(a, |h| matches!(h, Hold::Get(_))) {
                Some(Hold::Get(p)) => {
                    self.k.put_pages(&p);
                    StepOutcome::Ok
                }
                _ => StepOutcome::Skipped(NO_GET),
            },
            Step::GupUnpin => match self.take_last(a, |h| matches!(h, Hold::Pin(_))) {
                Some(Hold::Pin(p)) => {
                    self.k.unpin_user_pages(&p);
                    StepOutcome::Ok
                }
                _ => StepOutcome::Skipped(NO_PIN),
            },
            Step::OdirectSubmit { page, read } => {
                let (mm, addr) = self.page_addr(a, page)?;
                let r = bio_iov_iter_get_pages(&mut self.k, mm, addr, 1, read);
                match r {
                    Ok(b) => {
                        self.actors[a].holds.push(Hold::Bio(b));
                        StepOutcome::Ok
                    }
                    Err(e) => StepOutcome::Fail(e),
                }
            }
            Step::OdirectComplete => {
                match self.actors[a]
                    .holds
                    .take_first(|h| matches!(h, Hold::Bio(_)))
                {
                    Some(Hold::Bio(b)) => {
                        bio_release_pages(&mut self.k, b);
                        StepOutcome::Ok
                    }
                    _ => StepOutcome::Skipped(NO_BIO),
                }
            }
            Step::Vmsplice { page } => {
                let (mm, addr) = self.page_addr(a, page)?;
                let r = vmsplice_to_pipe(&mut self.k, mm, addr, 1);
                if let Some(h) = self.take_held(PIPE) {
                    if !h.pages.is_empty() {
                        self.actors[a].holds.push(Hold::Pipe(h));
                    }
                }
                r.into()
            }
            Step::PipeRead => {
                if !self.release_holds(a, |h| matches!(h, Hold::Pipe(_))) {
                    return Ok(StepOutcome::Skipped(NO_PIPE));
                }
                StepOutcome::Ok
            }
            Step::IoUringRegister => {
                let (mm, addr, len) = self.mapping(a)?;
                let r = io_sqe_buffer_register(&mut self.k, mm, addr, len / PAGE_SIZE);
                if r.is_ok() {
                    if let Some(h) = self.take_held(IO_URING) {
                        self.actors[a].holds.push(Hold::Uring(h));
                    }
                }
                r.into()
            }
            Step::IoUringUnregister => {
                if !self.release_holds(a, |h| matches!(h, Hold::Uring(_))) {
                    return Ok(StepOutcome::Skipped(NO_URING));
                }
                StepOutcome::Ok
            }
            Step::RdmaRegMr => {
                let (mm, addr, len) = self.mapping(a)?;
                match ib_umem_get(&mut self.k, mm, addr, len / PAGE_SIZE, true) {
                    Ok(u) => {
                        self.actors[a].holds.push(Hold::Mr(u));
                        StepOutcome::Ok
                    }
                    Err(e) => StepOutcome::Fail(e),
                }
            }
            Step::RdmaDeregMr => {
                if !self.release_holds(a, |h| matches!(h, Hold::Mr(_))) {
                    return Ok(StepOutcome::Skipped(NO_MR));
                }
                StepOutcome::Ok
            }
            Step::KvmMap { page } => {
                let (mm, addr) = self.page_addr(a, page)?;
                match hva_to_pfn(&mut self.k, mm, addr, true) {
                    Ok(
                        p @ KvmPfn::Pfn {
                            pfn, refcounted, ..
                        },
                    ) => {
                        // The lookup took a reference on a struct page of the buffer: a GUP
                        // user held it, if only until the end of the fault.
                        if refcounted
                            && self.is_buffer_frame(pfn)
                            && self.k.frames.folio_of(pfn).is_some()
                        {
                            self.seen |= Property::GupStructPage.bit();
                        }
                        // arch/x86/kvm/mmu/mmu.c:kvm_mmu_finish_page_fault →
                        // kvm_release_faultin_page: the spte is installed and the reference
                        // dropped; the MMU notifier keeps the spte coherent from then on.
                        kvm_release_pfn(&mut self.k, p);
                        self.actors[a].holds.push(Hold::Kvm { addr, pfn });
                        StepOutcome::Ok
                    }
                    Ok(KvmPfn::ErrFault) | Ok(KvmPfn::ErrRoFault) => {
                        StepOutcome::Fail(Errno::EFAULT.into())
                    }
                    Ok(KvmPfn::ErrSigpending) => StepOutcome::Fail(Errno::EINTR.into()),
                    Err(e) => StepOutcome::Fail(e),
                }
            }
            Step::KvmUnmap => {
                if !self.release_holds(a, |h| matches!(h, Hold::Kvm { .. })) {
                    return Ok(StepOutcome::Skipped(NO_SPTE));
                }
                StepOutcome::Ok
            }
            Step::Madvise(adv) => {
                let (mm, addr, len) = self.mapping(a)?;
                madvise(&mut self.k, mm, addr, len, adv).into()
            }
            Step::MremapGrow => {
                let (mm, addr, len) = self.mapping(a)?;
                let flags = MremapFlags {
                    maymove: true,
                    ..MremapFlags::default()
                };
                let r = mremap(&mut self.k, mm, addr, len, len + PAGE_SIZE, flags, None);
                if let Ok(new) = r {
                    if let Some(m) = self.actors[a].maps.last_mut() {
                        *m = (new, len + PAGE_SIZE);
                    }
                }
                r.into()
            }
            Step::Mprotect(prot) => {
                let (mm, addr, len) = self.mapping(a)?;
                mprotect(&mut self.k, mm, addr, len, prot).into()
            }
            Step::Mlock => {
                let (mm, addr, len) = self.mapping(a)?;
                mlock(&mut self.k, mm, addr, len).into()
            }
            Step::Rss => {
                let (mm, addr, _) = self.mapping(a)?;
                let Some(v) = self.k.mm(mm).vma_at(addr).cloned() else {
                    return Ok(StepOutcome::Skipped(NO_MAP));
                };
                let kb = pfnguard_mm::proc::smaps_rss_kb(&mut self.k, mm, &v);
                StepOutcome::Read(if kb > 0 { "counted" } else { "zero" })
            }
            Step::Release => match lifetime::release(&self.setup.exported, &mut self.k) {
                Ok(()) => {
                    self.released = true;
                    StepOutcome::Ok
                }
                Err(lifetime::Unavailable(why)) => StepOutcome::Unavailable(why),
            },
            Step::Evict => {
                if self
                    .actors
                    .iter()
                    .any(|s| s.attachment.is_some_and(|at| at.pinned))
                    && self.exporter_moves()
                {
                    // A pinned BO is off TTM's LRU (drivers/gpu/drm/ttm/ttm_bo.c:ttm_bo_pin
                    // takes it off; ttm_bo_evict_first / ttm_bo_swapout skip `pin_count`).
                    pfnguard_mm::trace!(
                        self.k,
                        "drivers/gpu/drm/ttm/ttm_bo.c:ttm_bo_pin",
                        "an importer's attachment pins the buffer: not evicted -> -EBUSY"
                    );
                    return Ok(StepOutcome::Fail(Errno::EBUSY.into()));
                }
                let before = lifetime::backing(&self.setup.exported, &self.k).unwrap_or_default();
                match lifetime::evict(&self.setup.exported, &mut self.k) {
                    Ok(Ok(())) => {
                        let after =
                            lifetime::backing(&self.setup.exported, &self.k).unwrap_or_default();
                        self.retired
                            .extend(before.into_iter().filter(|p| !after.contains(p)));
                        self.retired.sort_unstable();
                        self.retired.dedup();
                        // The dynamic exporter tells its importers before the move
                        // (amdgpu_bo_move_notify → dma_buf_move_notify); the model does it in
                        // the same step, with no state in between.
                        if self.actors.iter().any(|s| s.attachment.is_some()) {
                            self.move_notify_importers();
                        }
                        StepOutcome::Ok
                    }
                    Ok(Err(e)) => StepOutcome::Fail(e),
                    Err(lifetime::Unavailable(why)) => StepOutcome::Unavailable(why),
                }
            }
            Step::MoveNotify => match lifetime::move_notify(&self.setup.exported, &mut self.k) {
                Ok(()) => {
                    self.drop_dynamic_mappings();
                    StepOutcome::Ok
                }
                Err(lifetime::Unavailable(why)) => StepOutcome::Unavailable(why),
            },
            Step::Attach { dynamic } => {
                let Some(buf) = self.setup.exported.buf.clone() else {
                    return Ok(StepOutcome::Unavailable(NOT_DMA_BUF));
                };
                // drivers/dma-buf/dma-buf.c:dma_buf_get: the importer is handed a process's fd.
                let fd_open = self
                    .actors
                    .iter()
                    .zip(&self.setup.kinds)
                    .any(|(s, k)| *k != ActorKind::Device && s.has_fd);
                if !fd_open || self.file_released {
                    return Ok(StepOutcome::Fail(Errno::EBADF.into()));
                }
                let at = dma_buf_dynamic_attach(&mut self.k, &buf, dynamic);
                let s = &mut self.actors[a];
                s.attachment = Some(at);
                s.has_fd = true;
                StepOutcome::Ok
            }
            Step::MapAttachment => {
                let Some(at) = self.actors[a].attachment else {
                    return Ok(StepOutcome::Skipped(NOT_ATTACHED));
                };
                let Some(buf) = self.setup.exported.buf.clone() else {
                    return Ok(StepOutcome::Unavailable(NOT_DMA_BUF));
                };
                if self.released || buf.is_released(&self.k) {
                    return Ok(StepOutcome::Unavailable(FREED));
                }
                if lifetime::backing(&self.setup.exported, &self.k)
                    .is_some_and(|b| b != self.setup.buffer_frames)
                {
                    return Ok(StepOutcome::Unavailable(MOVED));
                }
                let pages = dma_buf_map_attachment(&mut self.k, &buf, &at, SgDebug::Off);
                self.actors[a].holds.push(Hold::Import(pages));
                StepOutcome::Ok
            }
            Step::UnmapAttachment => match self.take_last(a, |h| matches!(h, Hold::Import(_))) {
                Some(Hold::Import(p)) => {
                    if let Some(buf) = self.setup.exported.buf.clone() {
                        dma_buf_unmap_attachment(&mut self.k, &buf, &p);
                    }
                    StepOutcome::Ok
                }
                _ => StepOutcome::Skipped(NOT_MAPPED),
            },
            Step::Detach => {
                let Some(at) = self.actors[a].attachment.take() else {
                    return Ok(StepOutcome::Skipped(NOT_ATTACHED));
                };
                if let Some(buf) = self.setup.exported.buf.clone() {
                    // dma_buf_detach unmaps what is still mapped (`__unmap_dma_buf()` of
                    // `attach->sgt`), then unpins; dma_buf_put drops the importer's reference.
                    if let Some(Hold::Import(p)) =
                        self.take_last(a, |h| matches!(h, Hold::Import(_)))
                    {
                        dma_buf_unmap_attachment(&mut self.k, &buf, &p);
                    }
                    dma_buf_detach(&mut self.k, &buf, &at);
                }
                self.actors[a].has_fd = false;
                self.maybe_release_file();
                StepOutcome::Ok
            }
        })
    }

    /// Whether the exporter would move the buffer now if nothing pinned it: its eviction,
    /// tried on a copy of the kernel (exporters that never move say -EOPNOTSUPP, and a pin
    /// changes nothing for them).
    fn exporter_moves(&self) -> bool {
        let mut probe = self.k.clone();
        probe.trace = pfnguard_mm::trace::Trace::default();
        matches!(
            lifetime::evict(&self.setup.exported, &mut probe),
            Ok(Ok(()))
        )
    }

    /// drivers/dma-buf/dma-buf.c:dma_buf_move_notify, called by a dynamic exporter that
    /// moves the buffer ([`lifetime::move_notify`]), then each dynamic importer's
    /// `move_notify` drops its mapping.
    fn move_notify_importers(&mut self) {
        if lifetime::move_notify(&self.setup.exported, &mut self.k).is_ok() {
            self.drop_dynamic_mappings();
        }
    }

    /// `attach->importer_ops->move_notify()` of every dynamic attachment: the importer
    /// invalidates its mapping (it maps again on next use); static ones are not told.
    fn drop_dynamic_mappings(&mut self) {
        let dynamic = |s: &ActorState| s.attachment.is_some_and(|at| at.dynamic);
        if !self.actors.iter().any(dynamic) {
            return;
        }
        for s in self.actors.iter_mut() {
            if s.attachment.is_some_and(|at| at.dynamic) {
                s.holds.retain(|h| !matches!(h, Hold::Import(_)));
            }
        }
    }

    /// `do_exit()`: kernel/exit.c `exit_mm` → [`exit_mmap`], then `exit_files` closes the
    /// dma-buf fd and the files whose release drops what their users hold: the pipe
    /// (fs/pipe.c:`free_pipe_info` → `pipe_buf_release`), the io_uring ring
    /// (io_uring/io_uring.c:`io_ring_ctx_free` → `io_sqe_buffers_unregister`), the uverbs
    /// context (`ib_umem_release` of every MR) and the KVM VM (`kvm_destroy_vm` releases the
    /// guest's pfns). References a driver took with `gup_get`/`gup_pin`, and bios in flight,
    /// outlive the process.
    fn exit(&mut self, a: usize, mm: MmId) {
        exit_mmap(&mut self.k, mm);
        let s = &mut self.actors[a];
        s.maps.clear();
        s.exited = true;
        s.has_fd = false;
        self.release_holds(a, released_at_exit);
        self.maybe_release_file();
    }

    /// Whether some hold is still there after [`World::end_all`]: one of an actor that does not
    /// exit (no address space, or exited already), or one its exit does not release. Exits
    /// release only their own actor's holds, so this is read off the holds.
    pub fn holds_outlive_end(&self) -> bool {
        self.actors.iter().any(|s| {
            let exits = s.mm.is_some() && !s.exited;
            s.holds.iter().any(|h| !(exits && released_at_exit(h)))
        })
    }

    /// Remove the most recent hold `pick` selects.
    fn take_last(&mut self, a: usize, pick: impl Fn(&Hold) -> bool) -> Option<Hold> {
        self.actors[a].holds.take_last(pick)
    }

    /// The pages a modeled path just handed to `holder` in the kernel's list: each actor
    /// keeps its own (the kernel's list is global per holder name).
    fn take_held(&mut self, holder: &str) -> Option<HeldPages> {
        let i = self.k.held.iter().rposition(|h| h.holder == holder)?;
        Some(self.k.held.remove(i))
    }

    /// Release every hold of actor `a` that `pick` selects, through the kernel path that
    /// releases it; whether there was one.
    fn release_holds(&mut self, a: usize, pick: impl Fn(&Hold) -> bool) -> bool {
        if !self.actors[a].holds.iter().any(&pick) {
            return false;
        }
        let mine = self.actors[a].holds.take_all(pick);
        let any = !mine.is_empty();
        let mm = self.actors[a].mm.unwrap_or(Kernel::INIT_MM);
        for h in mine {
            match h {
                Hold::Get(p) => self.k.put_pages(&p),
                Hold::Pin(p) => self.k.unpin_user_pages(&p),
                Hold::Bio(b) => bio_release_pages(&mut self.k, b),
                Hold::Pipe(h) => {
                    let others = std::mem::replace(&mut self.k.held, vec![h]);
                    pipe_read_all(&mut self.k);
                    self.k.held = others;
                }
                Hold::Uring(h) => {
                    let others = std::mem::replace(&mut self.k.held, vec![h]);
                    io_sqe_buffers_unregister(&mut self.k);
                    self.k.held = others;
                }
                Hold::Mr(u) => ib_umem_release(&mut self.k, mm, u),
                // kvm_arch_flush_shadow_memslot(): the sptes go; they hold no reference.
                Hold::Kvm { .. } => {}
                // Not released by a process's exit: a device's mapping is its own.
                Hold::Import(_) => {}
            }
        }
        any
    }

    /// The picture of the state now ([`Snapshot`](pfnguard_mm::snapshot::Snapshot)): the
    /// kernel's, with every actor's holds as holders named `ACTOR: what`.
    pub fn snapshot(&self) -> pfnguard_mm::snapshot::Snapshot {
        use pfnguard_mm::snapshot::{HolderPicture, Snapshot};
        let holders = self
            .actors
            .iter()
            .zip(&self.setup.names)
            .flat_map(|(a, name)| {
                a.holds.iter().map(move |h| {
                    let (frames, referenced) = h.frames();
                    let pinned = match h {
                        Hold::Pin(_) | Hold::Mr(_) => Some(true),
                        Hold::Bio(b) => Some(b.pinned),
                        Hold::Pipe(p) | Hold::Uring(p) => Some(p.pinned),
                        _ => referenced.then_some(false),
                    };
                    HolderPicture {
                        holder: format!("{name}: {}", h.holder_name()),
                        pinned,
                        pfns: frames.iter().map(|p| p.0).collect(),
                    }
                })
            })
            .collect();
        Snapshot::of(&self.k).with_holders(&self.k, holders)
    }

    /// Whether a VMA of any actor maps the buffer's file.
    pub fn file_mapped(&self) -> bool {
        let file = &self.setup.exported.file;
        self.actors.iter().filter_map(|s| s.mm).any(|mm| {
            self.k
                .mm(mm)
                .vmas
                .values()
                .any(|v| v.file.as_ref().is_some_and(|f| Arc::ptr_eq(f, file)))
        })
    }

    /// drivers/dma-buf/dma-buf.c:`dma_buf_file_release` → `dma_buf_release`: when the last fd
    /// is closed and the last VMA (each holds `vm_file`) is gone, the exporter releases the
    /// buffer.
    fn maybe_release_file(&mut self) {
        if self.file_released || self.actors.iter().any(|s| s.has_fd) || self.file_mapped() {
            return;
        }
        self.file_released = true;
        if !self.released && lifetime::release(&self.setup.exported, &mut self.k).is_ok() {
            self.released = true;
        }
    }

    /// Every process that has not exited exits (the end of a run, for `leak`).
    pub fn end_all(&mut self) {
        for a in 0..self.actors.len() {
            if let (Some(mm), false) = (self.actors[a].mm, self.actors[a].exited) {
                self.exit(a, mm);
            }
        }
    }

    /// Whether `pfn` is (or was) a frame of the buffer.
    pub fn is_buffer_frame(&self, pfn: Pfn) -> bool {
        self.setup.buffer_frames.contains(&pfn)
            || self.retired.binary_search(&pfn).is_ok()
            || lifetime::backing(&self.setup.exported, &self.k).is_some_and(|b| b.contains(&pfn))
    }
}
