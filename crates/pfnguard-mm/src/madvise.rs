//! `madvise(2)` (mm/madvise.c) and `mlock(2)` (mm/mlock.c).

use crate::errno::Errno;
use crate::facts::Fact;
use crate::gup::{faultin_page_range, populate_vma_page_range};
use crate::kernel::{Kernel, MmId};
use crate::outcome::{Fail, KResult};
use crate::trace;
use crate::types::{pages_for, VirtAddr, PAGE_SIZE};
use crate::vma::{VmFlags, VmaId};

/// The advice values the model implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Advice {
    /// MADV_DONTNEED.
    DontNeed,
    /// MADV_DONTFORK.
    DontFork,
    /// MADV_DOFORK.
    DoFork,
    /// MADV_DONTDUMP.
    DontDump,
    /// MADV_DODUMP.
    DoDump,
    /// MADV_WIPEONFORK.
    WipeOnFork,
    /// MADV_POPULATE_READ.
    PopulateRead,
    /// MADV_POPULATE_WRITE.
    PopulateWrite,
}

/// `do_madvise()` (mm/madvise.c) over the VMAs of `[start, start+len)`; a hole → -ENOMEM.
///
/// DONTNEED: `madvise_dontneed_free_valid_vma()` refuses VM_PFNMAP and VM_LOCKED (-EINVAL);
/// VM_MIXEDMAP is zapped. DODUMP on VM_SPECIAL → -EINVAL; DOFORK on VM_IO → -EINVAL;
/// WIPEONFORK on file or shared VMAs → -EINVAL. POPULATE_*: `faultin_page_range()`; -EINVAL for
/// incompatible VMAs, -EFAULT for SIGBUS/SIGSEGV, -ENOMEM for holes; before
/// [`Fact::MadvPopulate`] (5.10.262 mm/madvise.c:madvise_behavior_valid) an unknown advice,
/// -EINVAL whatever the range.
pub fn madvise(k: &mut Kernel, mm: MmId, start: VirtAddr, len: u64, advice: Advice) -> KResult<()> {
    k.alive()?;
    const F: &str = "mm/madvise.c:madvise_vma_behavior";
    if !start.is_page_aligned() {
        return Err(Errno::EINVAL.into());
    }
    let end = VirtAddr(start.0 + pages_for(len) * PAGE_SIZE);
    trace!(k, "mm/madvise.c:do_madvise", "{advice:?} {start}..{end}");
    let populate = matches!(advice, Advice::PopulateRead | Advice::PopulateWrite);
    if populate && !k.has(Fact::MadvPopulate) {
        trace!(
            k,
            "mm/madvise.c:madvise_behavior_valid",
            "unknown advice -> -EINVAL"
        );
        return Err(Errno::EINVAL.into());
    }
    if populate {
        let write = advice == Advice::PopulateWrite;
        let mut a = start;
        while a < end {
            match faultin_page_range(k, mm, a, end, write) {
                Ok(n) => a = a.add_pages(n.max(1)),
                Err(Fail::Errno(e)) => {
                    let e = match e {
                        Errno::EINTR | Errno::EINVAL | Errno::EHWPOISON | Errno::EFAULT => e,
                        _ => Errno::ENOMEM,
                    };
                    trace!(k, "mm/madvise.c:madvise_populate", "-> -{e}");
                    return Err(e.into());
                }
                Err(e) => return Err(e),
            }
        }
        return Ok(());
    }
    let mut a = start;
    while a < end {
        let Some(v) = k.mm(mm).vma_at(a).cloned() else {
            trace!(k, F, "no VMA at {a} -> -ENOMEM");
            return Err(Errno::ENOMEM.into());
        };
        let s = a.max(v.start);
        let e = end.min(v.end);
        let id = VmaId { mm, start: v.start };
        let f = v.flags;
        match advice {
            Advice::DontNeed => {
                let forbidden = VmFlags::PFNMAP | VmFlags::LOCKED;
                if !v.is_hugetlb() && f.intersects(forbidden) {
                    trace!(
                        k,
                        "mm/madvise.c:madvise_dontneed_free_valid_vma",
                        "VMA {}: VM_PFNMAP|VM_LOCKED -> -EINVAL",
                        f.names()
                    );
                    return Err(Errno::EINVAL.into());
                }
                trace!(
                    k,
                    "mm/madvise.c:madvise_dontneed_single_vma",
                    "zap {s}..{e}"
                );
                k.trace.enter();
                crate::zap::zap_vma_range(k, id, s, e);
                k.trace.leave();
            }
            Advice::DontFork => {
                set_flags(k, mm, v.start, s, e, VmFlags::DONTCOPY, VmFlags::empty())
            }
            Advice::DoFork => {
                if f.contains(VmFlags::IO) {
                    trace!(k, F, "MADV_DOFORK on VM_IO -> -EINVAL");
                    return Err(Errno::EINVAL.into());
                }
                set_flags(k, mm, v.start, s, e, VmFlags::empty(), VmFlags::DONTCOPY);
            }
            Advice::DontDump => {
                set_flags(k, mm, v.start, s, e, VmFlags::DONTDUMP, VmFlags::empty())
            }
            Advice::DoDump => {
                if !v.is_hugetlb() && f.intersects(VmFlags::SPECIAL | VmFlags::DROPPABLE) {
                    trace!(k, F, "MADV_DODUMP on VM_SPECIAL ({}) -> -EINVAL", f.names());
                    return Err(Errno::EINVAL.into());
                }
                set_flags(k, mm, v.start, s, e, VmFlags::empty(), VmFlags::DONTDUMP);
            }
            Advice::WipeOnFork => {
                if v.file.is_some() || f.contains(VmFlags::SHARED) {
                    return Err(Errno::EINVAL.into());
                }
                set_flags(k, mm, v.start, s, e, VmFlags::WIPEONFORK, VmFlags::empty());
            }
            Advice::PopulateRead | Advice::PopulateWrite => {}
        }
        a = e;
    }
    Ok(())
}

fn set_flags(
    k: &mut Kernel,
    mm: MmId,
    vs: VirtAddr,
    s: VirtAddr,
    e: VirtAddr,
    set: VmFlags,
    clear: VmFlags,
) {
    let id = crate::mmap::split_to(k, mm, vs, s, e);
    if let Some(v) = k.vma_mut(id) {
        v.flags = v.flags.union(set).difference(clear);
    }
}

/// `mlock(2)`: mm/mlock.c `do_mlock()` → `apply_vma_lock_flags()` → `mlock_fixup()` (a VMA that
/// `!vma_supports_mlock()` — VM_SPECIAL, hugetlb, DAX, secretmem, droppable — keeps its flags and
/// is not counted), then `__mm_populate()` (VM_IO|VM_PFNMAP skipped); a populate error -EFAULT
/// becomes -ENOMEM, -ENOMEM becomes -EAGAIN (`__mlock_posix_error_return()`).
pub fn mlock(k: &mut Kernel, mm: MmId, start: VirtAddr, len: u64) -> KResult<()> {
    k.alive()?;
    const F: &str = "mm/mlock.c:mlock_fixup";
    let start = start.page_down();
    let end = VirtAddr(start.0 + pages_for(len) * PAGE_SIZE);
    let mut a = start;
    while a < end {
        let Some(v) = k.mm(mm).vma_at(a).cloned() else {
            return Err(Errno::ENOMEM.into());
        };
        let s = a.max(v.start);
        let e = end.min(v.end);
        if !v.supports_mlock() || v.is_secretmem() {
            trace!(
                k,
                F,
                "VMA {} ({}): cannot be mlocked, flags unchanged, nothing counted",
                v.start,
                v.flags.names()
            );
        } else if !v.flags.contains(VmFlags::LOCKED) {
            let id = crate::mmap::split_to(k, mm, v.start, s, e);
            if let Some(v) = k.vma_mut(id) {
                v.flags |= VmFlags::LOCKED;
            }
            let n = (e.0 - s.0) / PAGE_SIZE;
            k.mm_mut(mm).locked_vm += n;
            trace!(k, F, "VM_LOCKED set on {s}..{e}, locked_vm += {n}");
        }
        a = e;
    }
    // __mm_populate(start, len, 0): errors are not ignored.
    let mut a = start;
    while a < end {
        let Some(v) = k.mm(mm).vma_at(a).cloned() else {
            break;
        };
        let e = end.min(v.end);
        if v.flags.intersects(VmFlags::IO | VmFlags::PFNMAP) {
            trace!(
                k,
                "mm/gup.c:__mm_populate",
                "VMA {} is VM_IO|VM_PFNMAP: skipped",
                v.start
            );
        } else {
            trace!(k, "mm/gup.c:__mm_populate", "populate {a}..{e}");
            k.trace.enter();
            let r = populate_vma_page_range(k, VmaId { mm, start: v.start }, a, e);
            k.trace.leave();
            match r {
                Ok(_) => {}
                Err(Fail::Errno(Errno::EFAULT)) => return Err(Errno::ENOMEM.into()),
                Err(Fail::Errno(Errno::ENOMEM)) => return Err(Errno::EAGAIN.into()),
                Err(e) => return Err(e),
            }
        }
        a = e;
    }
    Ok(())
}

/// `munlock(2)`: clear VM_LOCKED and uncount.
pub fn munlock(k: &mut Kernel, mm: MmId, start: VirtAddr, len: u64) -> KResult<()> {
    k.alive()?;
    let end = VirtAddr(start.0 + pages_for(len) * PAGE_SIZE);
    let ids: Vec<VirtAddr> = k
        .mm(mm)
        .vmas
        .values()
        .filter(|v| v.start < end && v.end > start && v.flags.contains(VmFlags::LOCKED))
        .map(|v| v.start)
        .collect();
    for vs in ids {
        let id = crate::mmap::split_to(k, mm, vs, start, end);
        if let Some(v) = k.vma_mut(id) {
            v.flags.remove(VmFlags::LOCKED_MASK);
            let n = v.pages();
            let m = k.mm_mut(mm);
            m.locked_vm = m.locked_vm.saturating_sub(n);
        }
    }
    Ok(())
}
