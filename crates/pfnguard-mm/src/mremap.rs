//! `mremap(2)` (mm/mremap.c) and `mprotect(2)` (mm/mprotect.c).

use crate::errno::Errno;
use crate::kernel::{Kernel, MmId};
use crate::outcome::KResult;
use crate::trace;
use crate::types::{pages_for, VirtAddr, PAGE_SIZE};
use crate::vma::{VmFlags, VmaId};

/// `mremap()` flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct MremapFlags {
    /// MREMAP_MAYMOVE.
    pub maymove: bool,
    /// MREMAP_FIXED (with `new_addr`).
    pub fixed: bool,
    /// MREMAP_DONTUNMAP.
    pub dontunmap: bool,
}

/// `mremap(2)`: `vma_to_resize()` refuses MREMAP_DONTUNMAP on VM_DONTEXPAND|VM_PFNMAP
/// (-EINVAL) and growth of such VMAs (-EFAULT); a range crossing the VMA end is -EFAULT. Growth
/// happens in place when the following range is free, else by moving (MREMAP_MAYMOVE, else
/// -ENOMEM); a move carries the PTEs as they are (`move_page_tables()`).
pub fn mremap(
    k: &mut Kernel,
    mm: MmId,
    addr: VirtAddr,
    old_len: u64,
    new_len: u64,
    flags: MremapFlags,
    new_addr: Option<VirtAddr>,
) -> KResult<VirtAddr> {
    k.alive()?;
    const F: &str = "mm/mremap.c:vma_to_resize";
    if !addr.is_page_aligned() || new_len == 0 {
        return Err(Errno::EINVAL.into());
    }
    let old_len = pages_for(old_len) * PAGE_SIZE;
    let new_len = pages_for(new_len) * PAGE_SIZE;
    let Some(v) = k.mm(mm).vma_at(addr).cloned() else {
        return Err(Errno::EFAULT.into());
    };
    if flags.dontunmap && v.flags.intersects(VmFlags::DONTEXPAND | VmFlags::PFNMAP) {
        trace!(k, F, "MREMAP_DONTUNMAP on {} -> -EINVAL", v.flags.names());
        return Err(Errno::EINVAL.into());
    }
    if old_len > v.end.0 - addr.0 {
        return Err(Errno::EFAULT.into());
    }
    if new_len > old_len && v.flags.intersects(VmFlags::DONTEXPAND | VmFlags::PFNMAP) {
        trace!(k, F, "growing a {} VMA -> -EFAULT", v.flags.names());
        return Err(Errno::EFAULT.into());
    }
    if new_len <= old_len && !flags.fixed {
        if new_len < old_len {
            crate::mmap::do_munmap(k, mm, VirtAddr(addr.0 + new_len), old_len - new_len)?;
        }
        return Ok(addr);
    }
    let whole = addr == v.start && old_len == v.len();
    let grow_free = k.mm(mm).vmas.values().all(|o| {
        o.start == v.start || o.end.0 <= addr.0 + old_len || o.start.0 >= addr.0 + new_len
    });
    if !flags.fixed && whole && grow_free {
        trace!(k, "mm/mremap.c:mremap", "grow in place to {new_len:#x}");
        if let Some(vm) = k.vma_mut(VmaId { mm, start: v.start }) {
            vm.end = VirtAddr(v.start.0 + new_len);
        }
        return Ok(addr);
    }
    if !flags.maymove {
        return Err(Errno::ENOMEM.into());
    }
    // move_vma(): a new VMA elsewhere, the page tables moved with it.
    let id = crate::mmap::split_to(k, mm, v.start, addr, VirtAddr(addr.0 + old_len));
    let Some(mut moved) = k.mm_mut(mm).vmas.remove(&id.start) else {
        return Err(Errno::EFAULT.into());
    };
    let dest = match new_addr.filter(|_| flags.fixed) {
        Some(d) => {
            crate::mmap::do_munmap(k, mm, d, new_len)?;
            d
        }
        // get_unmapped_area(): a free range, as for mmap (mm/mremap.c:mremap_to/move_vma).
        None => crate::mmap::pick_address(k, mm, None, new_len, false)?,
    };
    let entries = k.mm(mm).pt.collect_in(moved.start, moved.end);
    for (a, pte) in entries {
        k.mm_mut(mm).pt.clear(a);
        k.mm_mut(mm)
            .pt
            .set(VirtAddr(dest.0 + (a.0 - moved.start.0)), pte);
    }
    moved.start = dest;
    moved.end = VirtAddr(dest.0 + new_len);
    // mm/mremap.c:move_vma calls untrack_pfn_clear() on the *old* VMA (it drops VM_PAT there so
    // that unmapping the old range does not free the memtype); the new VMA from copy_vma()
    // keeps VM_PAT and the reservation, so `moved` keeps both.
    trace!(
        k,
        "mm/mremap.c:move_vma",
        "moved to {dest}, PTEs carried over"
    );
    k.mm_mut(mm).vmas.insert(dest, moved);
    Ok(dest)
}

/// `mprotect(2)` (mm/mprotect.c `mprotect_fixup()` → `change_protection()`): new VM_READ/WRITE/
/// EXEC within VM_MAY*, PTEs rewritten with the new protection keeping PFN, special and devmap
/// bits (`pte_modify()`).
pub fn mprotect(
    k: &mut Kernel,
    mm: MmId,
    start: VirtAddr,
    len: u64,
    prot: crate::mmap::Prot,
) -> KResult<()> {
    k.alive()?;
    let end = VirtAddr(start.0 + pages_for(len) * PAGE_SIZE);
    let Some(v) = k.mm(mm).vma_at(start).cloned() else {
        return Err(Errno::ENOMEM.into());
    };
    let want = prot.vm_bits();
    const RWX: VmFlags = VmFlags::READ.union(VmFlags::WRITE).union(VmFlags::EXEC);
    // VM_MAY{READ,WRITE,EXEC} are VM_{READ,WRITE,EXEC} << 4 (mm/mprotect.c:do_mprotect_pkey).
    let may = VmFlags::from_bits_retain(v.flags.bits() >> 4);
    if !want.difference(may).intersection(RWX).is_empty() {
        return Err(Errno::EACCES.into());
    }
    let id = crate::mmap::split_to(k, mm, v.start, start, end.min(v.end));
    let (s, e, prot_bits) = {
        let Some(vm) = k.vma_mut(id) else {
            return Err(Errno::ENOMEM.into());
        };
        vm.flags = vm.flags.difference(RWX).union(want);
        vm.set_page_prot();
        (vm.start, vm.end, vm.page_prot)
    };
    const KEEP: u64 = crate::pagetable::Pte::PFN_MASK
        | crate::pagetable::Pte::SPECIAL
        | crate::pagetable::Pte::ACCESSED
        | crate::pagetable::Pte::DIRTY
        | crate::pagetable::Pte::SOFT_DIRTY
        | crate::vma::PAGE_CACHE_MASK;
    let devmap = 1u64 << crate::pagetable::devmap_bit(k);
    for (a, pte) in k.mm(mm).pt.collect_in(s, e) {
        let np = crate::pagetable::Pte((pte.0 & (KEEP | devmap)) | (prot_bits.val() & !KEEP));
        let np = if pte.write() || !np.write() {
            np
        } else if v.flags.is_cow_mapping() {
            np.wrprotect()
        } else {
            np
        };
        k.mm_mut(mm).pt.set(a, np);
    }
    Ok(())
}
