//! The userspace operations, each driving in the model the kernel path it drives for real.
//!
//! Every op runs on a fresh kernel and a fresh buffer: export, `mmap(MAP_SHARED,
//! PROT_READ|PROT_WRITE)`, a write to every page, then the op (except `export`). The steps an op
//! needs are [`OpKey::prerequisite`]'s, shared with the probe: a step that fails makes the op
//! [`Outcome::Skipped`] with that step.

use std::sync::Arc;

use pfnguard_mm::access::{proc_mem_rw, process_vm_rw};
use pfnguard_mm::bio::{bio_iov_iter_get_pages, bio_release_pages};
use pfnguard_mm::fault::{touch_range, user_access};
use pfnguard_mm::fork::{dup_mmap, exit_mmap};
use pfnguard_mm::frames::Mapping;
use pfnguard_mm::futex::get_futex_key;
use pfnguard_mm::io_uring::{io_sqe_buffer_register, io_sqe_buffers_unregister};
use pfnguard_mm::kvm::{hva_to_pfn, kvm_release_pfn, KvmPfn};
use pfnguard_mm::madvise::{madvise, mlock, Advice};
use pfnguard_mm::mmap::do_mmap;
use pfnguard_mm::mremap::{mremap, MremapFlags};
use pfnguard_mm::splice::{pipe_read_all, pipe_write, vmsplice_to_pipe};
use pfnguard_mm::umem::{ib_umem_get, ib_umem_release};
use pfnguard_mm::{
    trace, Fail, KResult, Kernel, MapFlags, MmId, MmapArgs, Prot, Signal, VirtAddr, VmFlags,
    PAGE_SIZE,
};
use pfnguard_report::{Effect, Observation, OpKey, Outcome, Pagemap, Rss, SignalName};

use crate::exporters::{ExportCtx, Exported, Exporter};

/// The report value of a modeled failure: the errno's name, the signal, `BUG`, or `timeout`
/// for a path that never returns.
pub fn outcome_of(f: &Fail) -> Outcome {
    match f {
        Fail::Errno(e) => Outcome::errno(e.name()),
        Fail::Signal(Signal::Bus) => Outcome::Signal(SignalName::bus()),
        Fail::Signal(Signal::Segv) => Outcome::Signal(SignalName::segv()),
        Fail::Bug(_) => Outcome::Bug,
        Fail::Hang(_) => Outcome::Timeout,
    }
}

fn outcome<T>(r: &KResult<T>) -> Outcome {
    match r {
        Ok(_) => Outcome::Ok,
        Err(f) => outcome_of(f),
    }
}

/// A buffer exported, mapped shared and touched.
struct Mapped {
    mm: MmId,
    addr: VirtAddr,
    size: u64,
}

impl Mapped {
    fn pages(&self) -> u64 {
        self.size / PAGE_SIZE
    }
}

fn export(k: &mut Kernel, exp: &dyn Exporter, cx: &ExportCtx) -> KResult<Exported> {
    trace!(
        k,
        "pfnguard:export",
        "allocate and export from {}",
        exp.id()
    );
    k.trace.enter();
    let r = exp.export(k, cx);
    k.trace.leave();
    r
}

fn map_shared(k: &mut Kernel, e: &Exported) -> KResult<Mapped> {
    let mm = Kernel::INIT_MM;
    let addr = do_mmap(
        k,
        mm,
        Some(Arc::clone(&e.file)),
        MmapArgs::new(e.size, Prot::RW, MapFlags::SHARED),
    )?;
    trace!(
        k,
        "pfnguard:touch",
        "write one byte to each of the {} page(s)",
        e.size / PAGE_SIZE
    );
    k.trace.enter();
    let r = touch_range(k, mm, addr, e.size, true);
    k.trace.leave();
    r?;
    Ok(Mapped {
        mm,
        addr,
        size: e.size,
    })
}

/// A step `op` needs failed: the op that is that step reports the failure; any other is
/// skipped, naming the step.
fn failed_step(f: &Fail, step: OpKey, op: OpKey) -> Outcome {
    if op == step {
        outcome_of(f)
    } else {
        Outcome::Skipped(Some(step))
    }
}

/// Run one op against a fresh buffer of `exp` on `k` (which must be fresh): the steps it needs
/// ([`OpKey::prerequisite`]), then the op.
pub fn run_op(k: &mut Kernel, exp: &dyn Exporter, cx: &ExportCtx, op: OpKey) -> Outcome {
    let e = match export(k, exp, cx) {
        Ok(e) => e,
        Err(f) => return failed_step(&f, OpKey::Export, op),
    };
    if op == OpKey::Export {
        return Outcome::Ok;
    }
    let m = match map_shared(k, &e) {
        Ok(m) => m,
        Err(f) => return failed_step(&f, OpKey::MmapShared, op),
    };
    match op {
        OpKey::Export | OpKey::MmapShared => Outcome::Ok,
        OpKey::MmapPrivate => mmap_private(k, &e),
        OpKey::Vmflags | OpKey::Rss | OpKey::Pagemap => observe(k, &m, op),
        OpKey::OdirectRead => odirect(k, &m, true),
        OpKey::OdirectWrite => odirect(k, &m, false),
        OpKey::Vmsplice => vmsplice(k, &m),
        OpKey::IoUringRegister => {
            let r = io_sqe_buffer_register(k, m.mm, m.addr, m.pages());
            io_sqe_buffers_unregister(k);
            outcome(&r)
        }
        OpKey::ProcessVmReadv => outcome(&process_vm_rw(k, m.mm, m.addr, PAGE_SIZE, false)),
        OpKey::ProcessVmWritev => outcome(&process_vm_rw(k, m.mm, m.addr, PAGE_SIZE, true)),
        OpKey::ProcMemRead => outcome(&proc_mem_rw(k, m.mm, m.addr, PAGE_SIZE, false)),
        OpKey::ProcMemWrite => outcome(&proc_mem_rw(k, m.mm, m.addr, PAGE_SIZE, true)),
        OpKey::PipeWrite => outcome(&pipe_write(k, m.mm, m.addr)),
        OpKey::ForkChildRead => fork_child_read(k, m.mm, m.addr, m.pages()),
        OpKey::FutexWakeShared => outcome(&get_futex_key(k, m.mm, m.addr)),
        OpKey::MadvPopulateRead => outcome(&madvise(k, m.mm, m.addr, m.size, Advice::PopulateRead)),
        OpKey::MadvPopulateWrite => {
            outcome(&madvise(k, m.mm, m.addr, m.size, Advice::PopulateWrite))
        }
        OpKey::Mlock => mlock_op(k, &m),
        OpKey::MadvDontneed => madv_dontneed(k, &m),
        OpKey::MremapGrow => {
            let grow = MremapFlags {
                maymove: true,
                ..MremapFlags::default()
            };
            outcome(&mremap(
                k,
                m.mm,
                m.addr,
                m.size,
                m.size + PAGE_SIZE,
                grow,
                None,
            ))
        }
        OpKey::KvmMap => kvm_map(k, m.mm, m.addr),
        OpKey::RdmaRegMr => rdma_reg_mr(k, &m),
    }
}

/// `vmflags`, `rss` and `pagemap`: what /proc/self/smaps and /proc/self/pagemap show of the
/// mapping (fs/proc/task_mmu.c).
fn observe(k: &mut Kernel, m: &Mapped, op: OpKey) -> Outcome {
    let Some(v) = k.mm(m.mm).vma_at(m.addr).cloned() else {
        return Outcome::unavailable(format!("no VMA at {}", m.addr));
    };
    let o = match op {
        OpKey::Vmflags => Observation::VmFlags(
            v.flags
                .mnemonics(&k.facts)
                .into_iter()
                .map(str::to_owned)
                .collect(),
        ),
        OpKey::Rss => Observation::Rss(if pfnguard_mm::proc::smaps_rss_kb(k, m.mm, &v) > 0 {
            Rss::Counted
        } else {
            Rss::Zero
        }),
        _ => {
            let e = pfnguard_mm::proc::pagemap_entry(k, m.mm, m.addr);
            trace!(k, "fs/proc/task_mmu.c:pagemap_read", "entry {e:#018x}");
            Observation::Pagemap(if e & pfnguard_mm::proc::pm::PRESENT != 0 {
                Pagemap::Present
            } else {
                Pagemap::Hole
            })
        }
    };
    Outcome::Observed(o)
}

/// `mmap_private`: `mmap(MAP_PRIVATE)`, a write to page 0, then whether the buffer changed.
fn mmap_private(k: &mut Kernel, e: &Exported) -> Outcome {
    let mm = Kernel::INIT_MM;
    let addr = match do_mmap(
        k,
        mm,
        Some(Arc::clone(&e.file)),
        MmapArgs::new(e.size, Prot::RW, MapFlags::PRIVATE),
    ) {
        Ok(a) => a,
        Err(f) => return outcome_of(&f),
    };
    if let Err(f) = user_access(k, mm, addr, true) {
        return outcome_of(&f);
    }
    let pte = k.mm(mm).pt.get(addr);
    let anon = k
        .frames
        .folio_of(pte.pfn())
        .is_some_and(|f| k.frames.folio(f).mapping == Mapping::Anon);
    trace!(
        k,
        "pfnguard:mmap_private",
        "after the write page 0 maps {} pfn {}",
        if anon {
            "an anon (COW) page at"
        } else {
            "the buffer's"
        },
        pte.pfn()
    );
    Outcome::Effect(if anon { Effect::Cow } else { Effect::Shared })
}

/// O_DIRECT of one page, the device reading from the mapping (`write(2)`) or writing into it
/// (`read(2)`): the bio takes the page ([`bio_iov_iter_get_pages`]) and releases it at
/// completion.
fn odirect(k: &mut Kernel, m: &Mapped, read: bool) -> Outcome {
    match bio_iov_iter_get_pages(k, m.mm, m.addr, 1, read) {
        Ok(b) => {
            bio_release_pages(k, b);
            Outcome::Ok
        }
        Err(f) => outcome_of(&f),
    }
}

/// `vmsplice(2)` of one page into a pipe, then the pipe read to the end.
fn vmsplice(k: &mut Kernel, m: &Mapped) -> Outcome {
    let r = vmsplice_to_pipe(k, m.mm, m.addr, 1);
    pipe_read_all(k);
    outcome(&r)
}

/// `mlock(2)`, then whether VmFlags shows `lo`: VM_SPECIAL VMAs are skipped by
/// mm/mlock.c:`mlock_fixup` and stay unlocked although the call succeeds.
fn mlock_op(k: &mut Kernel, m: &Mapped) -> Outcome {
    if let Err(f) = mlock(k, m.mm, m.addr, m.size) {
        return outcome_of(&f);
    }
    let locked = k
        .mm(m.mm)
        .vma_at(m.addr)
        .is_some_and(|v| v.flags.contains(VmFlags::LOCKED));
    Outcome::Effect(if locked {
        Effect::Locked
    } else {
        Effect::NotLocked
    })
}

/// `madvise(MADV_DONTNEED)`, then a child reads page 0 again.
fn madv_dontneed(k: &mut Kernel, m: &Mapped) -> Outcome {
    if let Err(f) = madvise(k, m.mm, m.addr, m.size, Advice::DontNeed) {
        return outcome_of(&f);
    }
    let read = fork_child_read(k, m.mm, m.addr, 1);
    Outcome::refault(&read).unwrap_or(read)
}

/// RDMA registration of the whole mapping as a writable MR, then its deregistration.
fn rdma_reg_mr(k: &mut Kernel, m: &Mapped) -> Outcome {
    match ib_umem_get(k, m.mm, m.addr, m.pages(), true) {
        Ok(u) => {
            ib_umem_release(k, m.mm, u);
            Outcome::Ok
        }
        Err(f) => outcome_of(&f),
    }
}

/// `fork(2)`, then the child reads `pages` pages (page 0 only, for the refault check).
fn fork_child_read(k: &mut Kernel, mm: MmId, addr: VirtAddr, pages: u64) -> Outcome {
    let child = match dup_mmap(k, mm) {
        Ok(c) => c,
        Err(e) => return outcome_of(&e),
    };
    trace!(k, "pfnguard:child", "the child reads {pages} page(s)");
    k.trace.enter();
    let r = touch_range(k, child, addr, pages * PAGE_SIZE, false);
    k.trace.leave();
    exit_mmap(k, child);
    outcome(&r)
}

/// A KVM memslot over the mapping and a guest write to page 0: `hva_to_pfn()`;
/// KVM_PFN_ERR_FAULT makes KVM_RUN fail with -EFAULT.
fn kvm_map(k: &mut Kernel, mm: MmId, addr: VirtAddr) -> Outcome {
    trace!(
        k,
        "arch/x86/kvm/mmu/mmu.c:kvm_faultin_pfn",
        "guest write fault on the memslot page 0"
    );
    k.trace.enter();
    let r = hva_to_pfn(k, mm, addr, true);
    k.trace.leave();
    match r {
        Ok(p @ KvmPfn::Pfn { .. }) => {
            kvm_release_pfn(k, p);
            Outcome::Ok
        }
        Ok(KvmPfn::ErrFault) | Ok(KvmPfn::ErrRoFault) => Outcome::errno("EFAULT"),
        Ok(KvmPfn::ErrSigpending) => Outcome::errno("EINTR"),
        Err(e) => outcome_of(&e),
    }
}
