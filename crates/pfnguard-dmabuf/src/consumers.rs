//! The userspace operations, each driving in the model the kernel path it drives for real.
//!
//! Every op runs on a fresh kernel and a fresh buffer: export, `mmap(MAP_SHARED,
//! PROT_READ|PROT_WRITE)`, a write to every page, then the op (except `export` and
//! `mmap_private`).

use std::sync::Arc;

use pfnguard_mm::access::{proc_mem_rw, process_vm_rw};
use pfnguard_mm::fault::{touch_range, user_access};
use pfnguard_mm::fork::{dup_mmap, exit_mmap};
use pfnguard_mm::frames::Mapping;
use pfnguard_mm::gup::{get_user_pages_fast, pin_user_pages, pin_user_pages_fast, Foll};
use pfnguard_mm::kernel::HeldPages;
use pfnguard_mm::kvm::{hva_to_pfn, kvm_release_pfn, KvmPfn};
use pfnguard_mm::madvise::{madvise, mlock, Advice};
use pfnguard_mm::mmap::do_mmap;
use pfnguard_mm::mremap::{mremap, MremapFlags};
use pfnguard_mm::{
    trace, Errno, Fail, KResult, Kernel, MapFlags, MmId, MmapArgs, Prot, VirtAddr, VmFlags,
    PAGE_SIZE,
};
use pfnguard_report::OpKey;

use crate::exporters::{ExportCtx, Exported, Exporter};

/// What an op produced: the value string of the report vocabulary.
pub type OpValue = String;

fn value_of(r: &KResult<()>) -> OpValue {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => e.value(),
    }
}

/// A buffer exported, mapped shared and touched.
struct Mapped {
    mm: MmId,
    addr: VirtAddr,
    size: u64,
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

/// A common step failed: the op that is that step reports the failure, every other op did not
/// run.
fn failed_step(f: &Fail, step: OpKey, op: OpKey) -> OpValue {
    if op == step {
        f.value()
    } else {
        "skipped".into()
    }
}

/// Run one op against a fresh buffer of `exp` on `k` (which must be fresh).
pub fn run_op(k: &mut Kernel, exp: &dyn Exporter, cx: &ExportCtx, op: OpKey) -> OpValue {
    let e = match export(k, exp, cx) {
        Ok(e) => e,
        Err(f) => return failed_step(&f, OpKey::Export, op),
    };
    match op {
        OpKey::Export => return "ok".into(),
        OpKey::MmapPrivate => return mmap_private(k, &e),
        _ => {}
    }
    let m = match map_shared(k, &e) {
        Ok(m) => m,
        Err(f) => return failed_step(&f, OpKey::MmapShared, op),
    };
    let pages = m.size / PAGE_SIZE;
    let (mm, addr) = (m.mm, m.addr);
    match op {
        OpKey::Export | OpKey::MmapPrivate | OpKey::MmapShared => "ok".into(),
        OpKey::Vmflags => {
            let Some(v) = k.mm(mm).vma_at(addr).cloned() else {
                return "skipped".into();
            };
            v.flags.mnemonics(k.profile).join(" ")
        }
        OpKey::Rss => {
            let Some(v) = k.mm(mm).vma_at(addr).cloned() else {
                return "skipped".into();
            };
            let s = pfnguard_mm::proc::smaps(k, mm, &v);
            trace!(
                k,
                "fs/proc/task_mmu.c:smap_gather_stats",
                "Rss: {} kB",
                s.rss_kb
            );
            if s.rss_kb > 0 {
                "counted".into()
            } else {
                "zero".into()
            }
        }
        OpKey::Pagemap => {
            let e = pfnguard_mm::proc::pagemap_entry(k, mm, addr);
            trace!(k, "fs/proc/task_mmu.c:pagemap_read", "entry {e:#018x}");
            if e & pfnguard_mm::proc::pm::PRESENT != 0 {
                "present".into()
            } else {
                "hole".into()
            }
        }
        OpKey::OdirectRead => odirect(k, mm, addr, true),
        OpKey::OdirectWrite => odirect(k, mm, addr, false),
        OpKey::Vmsplice => vmsplice(k, mm, addr),
        OpKey::IoUringRegister => io_uring_register(k, mm, addr, pages),
        OpKey::ProcessVmReadv => {
            value_of(&process_vm_rw(k, mm, addr, PAGE_SIZE, false).map(|_| ()))
        }
        OpKey::ProcessVmWritev => {
            value_of(&process_vm_rw(k, mm, addr, PAGE_SIZE, true).map(|_| ()))
        }
        OpKey::ProcMemRead => value_of(&proc_mem_rw(k, mm, addr, PAGE_SIZE, false).map(|_| ())),
        OpKey::ProcMemWrite => value_of(&proc_mem_rw(k, mm, addr, PAGE_SIZE, true).map(|_| ())),
        OpKey::PipeWrite => {
            // pipe_write() → copy_page_from_iter(): a plain user read, faults handled normally;
            // a fault that cannot be resolved makes the copy short → -EFAULT.
            trace!(
                k,
                "fs/pipe.c:pipe_write",
                "copy_page_from_iter (copy_from_user, no GUP)"
            );
            match user_access(k, mm, addr, false) {
                Ok(()) => "ok".into(),
                Err(Fail::Signal(_)) => "EFAULT".into(),
                Err(e) => e.value(),
            }
        }
        OpKey::ForkChildRead => fork_child_read(k, mm, addr, pages, None),
        OpKey::FutexWakeShared => futex_wake_shared(k, mm, addr),
        OpKey::MadvPopulateRead => value_of(&madvise(k, mm, addr, m.size, Advice::PopulateRead)),
        OpKey::MadvPopulateWrite => value_of(&madvise(k, mm, addr, m.size, Advice::PopulateWrite)),
        OpKey::Mlock => match mlock(k, mm, addr, m.size) {
            Ok(()) => {
                let locked = k
                    .mm(mm)
                    .vma_at(addr)
                    .is_some_and(|v| v.flags.contains(VmFlags::LOCKED));
                if locked {
                    "ok:locked".into()
                } else {
                    "ok:not-locked".into()
                }
            }
            Err(e) => e.value(),
        },
        OpKey::MadvDontneed => match madvise(k, mm, addr, m.size, Advice::DontNeed) {
            Ok(()) => match fork_child_read(k, mm, addr, 1, Some(())) {
                v if v == "ok" => "ok:refault-ok".into(),
                v if v == "SIGBUS" => "ok:refault-sigbus".into(),
                v => format!("ok:refault-{}", v.to_lowercase()),
            },
            Err(e) => e.value(),
        },
        OpKey::MremapGrow => value_of(
            &mremap(
                k,
                mm,
                addr,
                m.size,
                m.size + PAGE_SIZE,
                MremapFlags {
                    maymove: true,
                    ..MremapFlags::default()
                },
                None,
            )
            .map(|_| ()),
        ),
        OpKey::KvmMap => kvm_map(k, mm, addr),
        OpKey::RdmaRegMr => rdma_reg_mr(k, mm, addr, pages),
    }
}

/// `mmap_private`: `mmap(MAP_PRIVATE)`, a write to page 0, then whether the buffer changed.
fn mmap_private(k: &mut Kernel, e: &Exported) -> OpValue {
    let mm = Kernel::INIT_MM;
    let addr = match do_mmap(
        k,
        mm,
        Some(Arc::clone(&e.file)),
        MmapArgs::new(e.size, Prot::RW, MapFlags::PRIVATE),
    ) {
        Ok(a) => a,
        Err(f) => return f.value(),
    };
    if let Err(f) = user_access(k, mm, addr, true) {
        return f.value();
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
    if anon {
        "ok:cow".into()
    } else {
        "ok:shared".into()
    }
}

/// O_DIRECT on a block device: `bio_iov_iter_get_pages()` takes the user buffer with
/// `iov_iter_extract_pages()` → `pin_user_pages_fast(FOLL_PIN [+FOLL_WRITE when reading into
/// it])` (6.12) or `iov_iter_get_pages2()` → `get_user_pages_fast(FOLL_GET)` (6.1); none taken →
/// -EFAULT.
fn odirect(k: &mut Kernel, mm: MmId, addr: VirtAddr, read: bool) -> OpValue {
    let gup = if read { Foll::WRITE } else { Foll::empty() };
    let mut pages = Vec::new();
    let pin = k.profile.odirect_uses_pin;
    trace!(
        k,
        "block/bio.c:bio_iov_iter_get_pages",
        "{}",
        if pin {
            "iov_iter_extract_pages -> pin_user_pages_fast"
        } else {
            "iov_iter_get_pages2 -> get_user_pages_fast"
        }
    );
    k.trace.enter();
    let r = if pin {
        pin_user_pages_fast(k, mm, addr, 1, gup, &mut pages)
    } else {
        get_user_pages_fast(k, mm, addr, 1, gup, &mut pages)
    };
    k.trace.leave();
    let v = match r {
        Ok(n) if n > 0 => "ok".into(),
        Ok(_) => "EFAULT".into(),
        Err(e) => e.value(),
    };
    if pin {
        k.unpin_user_pages(&pages);
    } else {
        k.put_pages(&pages);
    }
    v
}

/// `vmsplice(2)` to a pipe: `iter_to_pipe()` → `iov_iter_get_pages2()` →
/// `get_user_pages_fast(FOLL_GET)`; the pipe keeps the page references until it is drained.
fn vmsplice(k: &mut Kernel, mm: MmId, addr: VirtAddr) -> OpValue {
    let mut pages = Vec::new();
    trace!(
        k,
        "fs/splice.c:iter_to_pipe",
        "iov_iter_get_pages2 -> get_user_pages_fast(FOLL_GET)"
    );
    k.trace.enter();
    let r = get_user_pages_fast(k, mm, addr, 1, Foll::empty(), &mut pages);
    k.trace.leave();
    match r {
        Ok(n) if n > 0 => {
            k.held.push(HeldPages {
                holder: "pipe",
                pinned: false,
                pages,
            });
            k.release_held("pipe");
            "ok".into()
        }
        Ok(_) => "EFAULT".into(),
        Err(e) => e.value(),
    }
}

/// IORING_REGISTER_BUFFERS. 6.12 `io_pin_pages()`: `pin_user_pages_fast(FOLL_WRITE|
/// FOLL_LONGTERM)`, a short count → unpin and -EFAULT. 6.1 `io_pin_pages()`: `pin_user_pages()`
/// with the VMA array, then file-backed VMAs other than shmem/hugetlb → -EOPNOTSUPP.
fn io_uring_register(k: &mut Kernel, mm: MmId, addr: VirtAddr, nr: u64) -> OpValue {
    const F: &str = "io_uring/rsrc.c:io_sqe_buffer_register";
    let mut pages = Vec::new();
    let gup = Foll::WRITE | Foll::LONGTERM;
    k.trace.enter();
    let r = if k.profile.io_uring_pin_fast {
        trace!(
            k,
            "io_uring/memmap.c:io_pin_pages",
            "pin_user_pages_fast(FOLL_WRITE|FOLL_LONGTERM)"
        );
        pin_user_pages_fast(k, mm, addr, nr, gup, &mut pages)
    } else {
        trace!(
            k,
            "io_uring/rsrc.c:io_pin_pages",
            "pin_user_pages(FOLL_WRITE|FOLL_LONGTERM, vmas)"
        );
        pin_user_pages(k, mm, addr, nr, gup, &mut pages)
    };
    k.trace.leave();
    let v = match r {
        Ok(n) if n == nr => {
            if k.profile.io_uring_rejects_non_shmem_files {
                let bad = k.mm(mm).vma_at(addr).is_some_and(|v| {
                    v.file
                        .as_ref()
                        .is_some_and(|f| !f.mapping.shmem && !f.mapping.hugetlb)
                });
                if bad {
                    trace!(
                        k,
                        "io_uring/rsrc.c:io_pin_pages",
                        "file-backed VMA that is not shmem/hugetlb -> -EOPNOTSUPP"
                    );
                    k.unpin_user_pages(&pages);
                    return "EOPNOTSUPP".into();
                }
            }
            k.held.push(HeldPages {
                holder: "io_uring",
                pinned: true,
                pages: std::mem::take(&mut pages),
            });
            k.release_held("io_uring");
            "ok".into()
        }
        Ok(_) => {
            trace!(k, F, "short pin -> unpin, -EFAULT");
            "EFAULT".into()
        }
        Err(e) => e.value(),
    };
    k.unpin_user_pages(&pages);
    v
}

/// `fork(2)`, then the child reads `pages` pages (or page 0 only for the refault check).
fn fork_child_read(
    k: &mut Kernel,
    mm: MmId,
    addr: VirtAddr,
    pages: u64,
    _refault: Option<()>,
) -> OpValue {
    let child = match dup_mmap(k, mm) {
        Ok(c) => c,
        Err(e) => return e.value(),
    };
    trace!(k, "pfnguard:child", "the child reads {pages} page(s)");
    k.trace.enter();
    let r = touch_range(k, child, addr, pages * PAGE_SIZE, false);
    k.trace.leave();
    exit_mmap(k, child);
    value_of(&r)
}

/// `futex_wake()` on a shared futex: `get_futex_key()` → `get_user_pages_fast(FOLL_WRITE)`
/// (retried read-only on -EFAULT), then the folio decides the key: anon → private key, a
/// page-cache mapping → inode key, a page with no mapping → -EFAULT
/// (kernel/futex/core.c:get_futex_key).
fn futex_wake_shared(k: &mut Kernel, mm: MmId, addr: VirtAddr) -> OpValue {
    const F: &str = "kernel/futex/core.c:get_futex_key";
    let mut pages = Vec::new();
    k.trace.enter();
    let mut r = get_user_pages_fast(k, mm, addr, 1, Foll::WRITE, &mut pages);
    if matches!(r, Err(Fail::Errno(Errno::EFAULT))) {
        r = get_user_pages_fast(k, mm, addr, 1, Foll::empty(), &mut pages);
    }
    k.trace.leave();
    match r {
        Ok(n) if n > 0 => {}
        Ok(_) => return "EFAULT".into(),
        Err(e) => return e.value(),
    }
    let mapping = pages
        .first()
        .and_then(|p| k.frames.folio_of(*p))
        .map(|f| k.frames.folio(f).mapping);
    k.put_pages(&pages);
    match mapping {
        Some(Mapping::None) | None => {
            trace!(
                k,
                F,
                "folio->mapping == NULL (not anon, not page cache) -> -EFAULT"
            );
            "EFAULT".into()
        }
        Some(m) => {
            trace!(k, F, "key from {m:?} mapping");
            "ok".into()
        }
    }
}

/// A KVM memslot over the mapping and a guest write to page 0: `hva_to_pfn()`;
/// KVM_PFN_ERR_FAULT makes KVM_RUN fail with -EFAULT.
fn kvm_map(k: &mut Kernel, mm: MmId, addr: VirtAddr) -> OpValue {
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
            "ok".into()
        }
        Ok(KvmPfn::ErrFault) | Ok(KvmPfn::ErrRoFault) => "EFAULT".into(),
        Ok(KvmPfn::ErrSigpending) => "EINTR".into(),
        Err(e) => e.value(),
    }
}

/// `ib_umem_get()` (drivers/infiniband/core/umem.c) for a writable MR: `pin_user_pages_fast(
/// FOLL_LONGTERM|FOLL_WRITE)` (6.1 always adds FOLL_WRITE); `pinned_vm` accounted.
fn rdma_reg_mr(k: &mut Kernel, mm: MmId, addr: VirtAddr, nr: u64) -> OpValue {
    // The MR is registered with IB_ACCESS_LOCAL_WRITE. 6.1 always pins with FOLL_WRITE (and
    // FOLL_FORCE for read-only MRs); 6.12 adds FOLL_WRITE only for writable ones.
    let writable = true;
    let gup = match (k.profile.umem_always_write, writable) {
        (true, false) => Foll::LONGTERM | Foll::WRITE | Foll::FORCE,
        (_, true) => Foll::LONGTERM | Foll::WRITE,
        (false, false) => Foll::LONGTERM,
    };
    let mut pages = Vec::new();
    k.mm_mut(mm).pinned_vm += nr;
    trace!(
        k,
        "drivers/infiniband/core/umem.c:ib_umem_get",
        "pin_user_pages_fast(FOLL_LONGTERM|FOLL_WRITE)"
    );
    k.trace.enter();
    let r = pin_user_pages_fast(k, mm, addr, nr, gup, &mut pages);
    k.trace.leave();
    let v = match r {
        Ok(n) if n == nr => "ok".into(),
        Ok(_) => "EFAULT".into(),
        Err(e) => e.value(),
    };
    k.unpin_user_pages(&pages);
    let m = k.mm_mut(mm);
    m.pinned_vm = m.pinned_vm.saturating_sub(nr);
    v
}
