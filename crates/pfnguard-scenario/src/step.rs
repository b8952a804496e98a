//! The step alphabet: what an actor does, one system call or kernel event at a time.
//!
//! Every step is the part of one of the 24 userspace ops (or an exporter or importer event) that
//! changes the lifetime of the buffer's memory, and [`World::apply`](crate::World::apply) runs
//! it by calling the modeled kernel path (`do_mmap`, `user_access`, `bio_iov_iter_get_pages`,
//! `vmsplice_to_pipe`, `io_sqe_buffer_register`, `ib_umem_get`, `hva_to_pfn`, `dup_mmap`,
//! `exit_mmap`, `do_munmap`, `madvise`, `mremap`, `mprotect`, `mlock`, ...): the outcome is what
//! the model computes, never a table.

use std::fmt;

use pfnguard_mm::madvise::Advice;
use pfnguard_mm::Prot;

/// Who performs a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A process with its own address space that starts holding the dma-buf fd (the first one
    /// is the exporting process).
    Process,
    /// A child a process creates with its `fork CHILD` step; its steps run after the fork.
    Child,
    /// The exporting driver (release, eviction, move_notify).
    Exporter,
    /// An importing device (attach, map, unmap).
    Device,
}

impl ActorKind {
    /// The name in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            ActorKind::Process => "process",
            ActorKind::Child => "child",
            ActorKind::Exporter => "exporter",
            ActorKind::Device => "device",
        }
    }
}

/// One step. Page numbers index the actor's most recent mapping of the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `mmap(NULL, size, PROT_READ|PROT_WRITE, MAP_SHARED or MAP_PRIVATE, fd, 0)`.
    Mmap {
        /// MAP_PRIVATE.
        private: bool,
    },
    /// A user write (`touch`) or read (`read`) of one page: the page fault path.
    Access {
        /// The page.
        page: u32,
        /// A write.
        write: bool,
    },
    /// `munmap()` of the most recent mapping.
    Munmap,
    /// `close()` of the process's dma-buf fd.
    Close,
    /// `fork()`: the child actor (its index) gets a copy of the address space and of the fd.
    Fork {
        /// The child actor.
        child: u16,
    },
    /// `exit()`: the address space is torn down and the files closed (the dma-buf fd, pipes,
    /// the io_uring ring, the RDMA context, the KVM VM).
    Exit,
    /// A kernel user takes one page with `get_user_pages_fast()` (FOLL_GET).
    GupGet {
        /// The page.
        page: u32,
    },
    /// `pin_user_pages_fast()` (FOLL_PIN), optionally FOLL_LONGTERM|FOLL_WRITE.
    GupPin {
        /// The page.
        page: u32,
        /// FOLL_LONGTERM.
        longterm: bool,
    },
    /// `put_page()` of the most recent `gup_get`.
    GupPut,
    /// `unpin_user_page()` of the most recent `gup_pin`.
    GupUnpin,
    /// An O_DIRECT transfer of one page is submitted (`bio_iov_iter_get_pages`) and stays in
    /// flight: `read(2)` (the device writes into the page) or `write(2)`.
    OdirectSubmit {
        /// The page.
        page: u32,
        /// `read(2)`: FOLL_WRITE.
        read: bool,
    },
    /// The oldest O_DIRECT transfer in flight completes (`bio_release_pages`).
    OdirectComplete,
    /// `vmsplice()` of one page into a pipe: the pipe buffer keeps the page reference.
    Vmsplice {
        /// The page.
        page: u32,
    },
    /// The pipe is read to the end (`pipe_read` → `pipe_buf_release`).
    PipeRead,
    /// `IORING_REGISTER_BUFFERS` of the whole mapping.
    IoUringRegister,
    /// `IORING_UNREGISTER_BUFFERS`.
    IoUringUnregister,
    /// `ibv_reg_mr()` of the whole mapping (`ib_umem_get`, writable).
    RdmaRegMr,
    /// `ibv_dereg_mr()` (`ib_umem_release`).
    RdmaDeregMr,
    /// A KVM memslot over the mapping and a guest write fault on one page (`hva_to_pfn`); the
    /// pfn stays in the guest's page tables.
    KvmMap {
        /// The page.
        page: u32,
    },
    /// The memslot is removed (`kvm_release_pfn` of what the fault took).
    KvmUnmap,
    /// `madvise()` of the whole mapping.
    Madvise(Advice),
    /// `mremap()` growing the mapping by one page (MREMAP_MAYMOVE).
    MremapGrow,
    /// `mprotect()` of the whole mapping.
    Mprotect(Prot),
    /// `mlock()` of the whole mapping.
    Mlock,
    /// Read the `Rss:` line of the most recent mapping in `/proc/self/smaps`
    /// (fs/proc/task_mmu.c:smap_gather_stats): `counted` or `zero`. Changes nothing.
    Rss,
    /// The exporter frees the buffer's backing memory now, whoever still uses it (what
    /// `dma_buf_release` does at the last reference, which the explorer runs by itself; as a
    /// step: a driver freeing a buffer still in use, e.g. on device removal).
    Release,
    /// The exporter evicts or moves the buffer: every CPU mapping is zapped, new backing.
    Evict,
    /// `dma_buf_move_notify()` to the importers.
    MoveNotify,
    /// The importer's `dma_buf_get()` of a process's fd and drivers/dma-buf/dma-buf.c:
    /// dma_buf_dynamic_attach: static (`dma_buf_attach()`, no `importer_ops`) or dynamic (with
    /// a `move_notify`).
    Attach {
        /// `importer_ops->move_notify` set.
        dynamic: bool,
    },
    /// The importer's `dma_buf_map_attachment()`.
    MapAttachment,
    /// The importer's `dma_buf_unmap_attachment()`.
    UnmapAttachment,
    /// The importer's `dma_buf_detach()` and `dma_buf_put()`.
    Detach,
}

/// Advice names in scenario files.
const ADVICE: [(&str, Advice); 8] = [
    ("dontneed", Advice::DontNeed),
    ("dontfork", Advice::DontFork),
    ("dofork", Advice::DoFork),
    ("dontdump", Advice::DontDump),
    ("dodump", Advice::DoDump),
    ("wipeonfork", Advice::WipeOnFork),
    ("populate_read", Advice::PopulateRead),
    ("populate_write", Advice::PopulateWrite),
];

/// Protection names in scenario files.
const PROT: [(&str, Prot); 3] = [
    (
        "none",
        Prot {
            read: false,
            write: false,
            exec: false,
        },
    ),
    ("r", Prot::R),
    ("rw", Prot::RW),
];

/// Every step keyword, with its argument and who may perform it: the documentation's table.
pub const KEYWORDS: &[(&str, &str, &[ActorKind])] = &[
    ("mmap", "", PROC),
    ("mmap_private", "", PROC),
    ("touch", "PAGE", PROC),
    ("read", "PAGE", PROC),
    ("munmap", "", PROC),
    ("close", "", PROC),
    ("fork", "CHILD", PROC),
    ("exit", "", PROC),
    ("gup_get", "PAGE", PROC),
    ("gup_pin", "PAGE", PROC),
    ("gup_pin_longterm", "PAGE", PROC),
    ("gup_put", "", PROC),
    ("gup_unpin", "", PROC),
    ("odirect_read", "PAGE", PROC),
    ("odirect_write", "PAGE", PROC),
    ("odirect_complete", "", PROC),
    ("vmsplice", "PAGE", PROC),
    ("pipe_read", "", PROC),
    ("io_uring_register", "", PROC),
    ("io_uring_unregister", "", PROC),
    ("rdma_reg_mr", "", PROC),
    ("rdma_dereg_mr", "", PROC),
    ("kvm_map", "PAGE", PROC),
    ("kvm_unmap", "", PROC),
    (
        "madvise",
        "dontneed|dontfork|dofork|dontdump|dodump|wipeonfork|populate_read|populate_write",
        PROC,
    ),
    ("mremap_grow", "", PROC),
    ("mprotect", "none|r|rw", PROC),
    ("mlock", "", PROC),
    ("rss", "", PROC),
    ("release", "", &[ActorKind::Exporter]),
    ("evict", "", &[ActorKind::Exporter]),
    ("move_notify", "", &[ActorKind::Exporter]),
    ("attach", "", &[ActorKind::Device]),
    ("attach_dynamic", "", &[ActorKind::Device]),
    ("map", "", &[ActorKind::Device]),
    ("unmap", "", &[ActorKind::Device]),
    ("detach", "", &[ActorKind::Device]),
];

const PROC: &[ActorKind] = &[ActorKind::Process, ActorKind::Child];

/// The largest page number a step may name (buffers are at most 65,536 pages).
pub const MAX_PAGE: u32 = 65_535;

/// Why a step text is not a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepParseError {
    /// Not a keyword.
    Unknown(String),
    /// The keyword needs an argument, takes none, or the argument is not one it accepts.
    BadArgument(String),
    /// The actor kind may not perform it.
    WrongActor(String),
}

impl fmt::Display for StepParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepParseError::Unknown(m)
            | StepParseError::BadArgument(m)
            | StepParseError::WrongActor(m) => f.write_str(m),
        }
    }
}

impl Step {
    /// Parse a step of an actor of `kind`; `child` resolves a `fork CHILD` argument to the
    /// child's actor index.
    pub fn parse(
        text: &str,
        kind: ActorKind,
        child: &dyn Fn(&str) -> Option<u16>,
    ) -> Result<Step, StepParseError> {
        let mut words = text.split_whitespace();
        let kw = words.next().unwrap_or("");
        let arg = words.next();
        if words.next().is_some() {
            return Err(StepParseError::BadArgument(format!(
                "`{text}`: a step is a keyword and at most one argument"
            )));
        }
        let Some((_, argname, kinds)) = KEYWORDS.iter().find(|(k, _, _)| *k == kw) else {
            let known: Vec<&str> = KEYWORDS.iter().map(|(k, _, _)| *k).collect();
            return Err(StepParseError::Unknown(format!(
                "unknown step `{kw}` (known: {})",
                known.join(", ")
            )));
        };
        if !kinds.contains(&kind) {
            let who: Vec<&str> = kinds.iter().map(|k| k.name()).collect();
            return Err(StepParseError::WrongActor(format!(
                "`{kw}` is a step of actors of kind {}, and this actor's kind is {}",
                who.join(" or "),
                kind.name()
            )));
        }
        let bad = |why: &str| StepParseError::BadArgument(format!("`{text}`: {why}"));
        let page = || -> Result<u32, StepParseError> {
            let a = arg.ok_or_else(|| bad("needs a page number"))?;
            match a.parse::<u32>() {
                Ok(p) if p <= MAX_PAGE => Ok(p),
                _ => Err(bad(&format!(
                    "`{a}` is not a page number from 0 to {MAX_PAGE}"
                ))),
            }
        };
        if argname.is_empty() && arg.is_some() {
            return Err(bad("takes no argument"));
        }
        Ok(match kw {
            "mmap" => Step::Mmap { private: false },
            "mmap_private" => Step::Mmap { private: true },
            "touch" => Step::Access {
                page: page()?,
                write: true,
            },
            "read" => Step::Access {
                page: page()?,
                write: false,
            },
            "munmap" => Step::Munmap,
            "close" => Step::Close,
            "fork" => {
                let name = arg.ok_or_else(|| bad("needs the name of a child actor"))?;
                let child = child(name).ok_or_else(|| {
                    bad(&format!(
                        "`{name}` is not an actor of kind \"child\" whose parent is this actor"
                    ))
                })?;
                Step::Fork { child }
            }
            "exit" => Step::Exit,
            "gup_get" => Step::GupGet { page: page()? },
            "gup_pin" => Step::GupPin {
                page: page()?,
                longterm: false,
            },
            "gup_pin_longterm" => Step::GupPin {
                page: page()?,
                longterm: true,
            },
            "gup_put" => Step::GupPut,
            "gup_unpin" => Step::GupUnpin,
            "odirect_read" => Step::OdirectSubmit {
                page: page()?,
                read: true,
            },
            "odirect_write" => Step::OdirectSubmit {
                page: page()?,
                read: false,
            },
            "odirect_complete" => Step::OdirectComplete,
            "vmsplice" => Step::Vmsplice { page: page()? },
            "pipe_read" => Step::PipeRead,
            "io_uring_register" => Step::IoUringRegister,
            "io_uring_unregister" => Step::IoUringUnregister,
            "rdma_reg_mr" => Step::RdmaRegMr,
            "rdma_dereg_mr" => Step::RdmaDeregMr,
            "kvm_map" => Step::KvmMap { page: page()? },
            "kvm_unmap" => Step::KvmUnmap,
            "madvise" => {
                let a = arg.ok_or_else(|| bad("needs an advice"))?;
                let (_, adv) = ADVICE
                    .iter()
                    .find(|(n, _)| *n == a)
                    .ok_or_else(|| bad(&format!("unknown advice `{a}` (expected {argname})")))?;
                Step::Madvise(*adv)
            }
            "mremap_grow" => Step::MremapGrow,
            "mprotect" => {
                let a = arg.ok_or_else(|| bad("needs a protection"))?;
                let (_, p) = PROT.iter().find(|(n, _)| *n == a).ok_or_else(|| {
                    bad(&format!("unknown protection `{a}` (expected {argname})"))
                })?;
                Step::Mprotect(*p)
            }
            "mlock" => Step::Mlock,
            "rss" => Step::Rss,
            "release" => Step::Release,
            "evict" => Step::Evict,
            "move_notify" => Step::MoveNotify,
            "attach" => Step::Attach { dynamic: false },
            "attach_dynamic" => Step::Attach { dynamic: true },
            "map" => Step::MapAttachment,
            "unmap" => Step::UnmapAttachment,
            _ => Step::Detach,
        })
    }

    /// The step as a scenario file writes it (`fork` names the child by `child_name`).
    pub fn render(&self, child_name: &dyn Fn(u16) -> String) -> String {
        let name = |a: Advice| ADVICE.iter().find(|(_, x)| *x == a).map_or("?", |(n, _)| n);
        let prot = |p: Prot| PROT.iter().find(|(_, x)| *x == p).map_or("?", |(n, _)| n);
        match *self {
            Step::Mmap { private: false } => "mmap".into(),
            Step::Mmap { private: true } => "mmap_private".into(),
            Step::Access { page, write: true } => format!("touch {page}"),
            Step::Access { page, write: false } => format!("read {page}"),
            Step::Munmap => "munmap".into(),
            Step::Close => "close".into(),
            Step::Fork { child } => format!("fork {}", child_name(child)),
            Step::Exit => "exit".into(),
            Step::GupGet { page } => format!("gup_get {page}"),
            Step::GupPin {
                page,
                longterm: false,
            } => format!("gup_pin {page}"),
            Step::GupPin {
                page,
                longterm: true,
            } => format!("gup_pin_longterm {page}"),
            Step::GupPut => "gup_put".into(),
            Step::GupUnpin => "gup_unpin".into(),
            Step::OdirectSubmit { page, read: true } => format!("odirect_read {page}"),
            Step::OdirectSubmit { page, read: false } => format!("odirect_write {page}"),
            Step::OdirectComplete => "odirect_complete".into(),
            Step::Vmsplice { page } => format!("vmsplice {page}"),
            Step::PipeRead => "pipe_read".into(),
            Step::IoUringRegister => "io_uring_register".into(),
            Step::IoUringUnregister => "io_uring_unregister".into(),
            Step::RdmaRegMr => "rdma_reg_mr".into(),
            Step::RdmaDeregMr => "rdma_dereg_mr".into(),
            Step::KvmMap { page } => format!("kvm_map {page}"),
            Step::KvmUnmap => "kvm_unmap".into(),
            Step::Madvise(a) => format!("madvise {}", name(a)),
            Step::MremapGrow => "mremap_grow".into(),
            Step::Mprotect(p) => format!("mprotect {}", prot(p)),
            Step::Mlock => "mlock".into(),
            Step::Rss => "rss".into(),
            Step::Release => "release".into(),
            Step::Evict => "evict".into(),
            Step::MoveNotify => "move_notify".into(),
            Step::Attach { dynamic: false } => "attach".into(),
            Step::Attach { dynamic: true } => "attach_dynamic".into(),
            Step::MapAttachment => "map".into(),
            Step::UnmapAttachment => "unmap".into(),
            Step::Detach => "detach".into(),
        }
    }

    /// The process-step alphabet of `pfnguard explore` (page 0 where a page is named; no fork).
    pub fn process_alphabet() -> Vec<Step> {
        vec![
            Step::Mmap { private: false },
            Step::Mmap { private: true },
            Step::Access {
                page: 0,
                write: true,
            },
            Step::Access {
                page: 0,
                write: false,
            },
            Step::Munmap,
            Step::Close,
            Step::Exit,
            Step::GupGet { page: 0 },
            Step::GupPin {
                page: 0,
                longterm: false,
            },
            Step::GupPin {
                page: 0,
                longterm: true,
            },
            Step::GupPut,
            Step::GupUnpin,
            Step::OdirectSubmit {
                page: 0,
                read: true,
            },
            Step::OdirectComplete,
            Step::Vmsplice { page: 0 },
            Step::PipeRead,
            Step::IoUringRegister,
            Step::IoUringUnregister,
            Step::RdmaRegMr,
            Step::RdmaDeregMr,
            Step::KvmMap { page: 0 },
            Step::KvmUnmap,
            Step::Madvise(Advice::DontNeed),
            Step::MremapGrow,
            Step::Mprotect(Prot::R),
            Step::Mlock,
        ]
    }

    /// The page steps of [`Step::process_alphabet`] on page 1 (`pfnguard explore
    /// --second-page`).
    pub fn second_page_alphabet() -> Vec<Step> {
        Step::process_alphabet()
            .into_iter()
            .filter_map(|s| match s {
                Step::Access { page: 0, write } => Some(Step::Access { page: 1, write }),
                Step::GupGet { page: 0 } => Some(Step::GupGet { page: 1 }),
                Step::GupPin { page: 0, longterm } => Some(Step::GupPin { page: 1, longterm }),
                Step::OdirectSubmit { page: 0, read } => {
                    Some(Step::OdirectSubmit { page: 1, read })
                }
                Step::Vmsplice { page: 0 } => Some(Step::Vmsplice { page: 1 }),
                Step::KvmMap { page: 0 } => Some(Step::KvmMap { page: 1 }),
                _ => None,
            })
            .collect()
    }

    /// The importing device's alphabet of `pfnguard explore --importer`: static and dynamic
    /// attach, map, unmap, detach.
    pub fn device_alphabet() -> Vec<Step> {
        vec![
            Step::Attach { dynamic: false },
            Step::Attach { dynamic: true },
            Step::MapAttachment,
            Step::UnmapAttachment,
            Step::Detach,
        ]
    }

    /// The exporter-step alphabet of `pfnguard explore`: eviction and move_notify. The release
    /// comes with the last close or munmap, as `dma_buf_release` does; the forced `release`
    /// step (the driver freeing a buffer still in use) is for scenarios that ask for it.
    pub fn exporter_alphabet() -> Vec<Step> {
        vec![Step::Evict, Step::MoveNotify]
    }
}
