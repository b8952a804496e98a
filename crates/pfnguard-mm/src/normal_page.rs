//! `vm_normal_page()` (mm/memory.c): which PTEs map a "normal" `struct page` that the rest of
//! mm (GUP, fork, zap, smaps, KSM, migration) may refcount and rmap.

use crate::facts::Fact;
use crate::kernel::Kernel;
use crate::pagetable::Pte;
use crate::types::{Pfn, VirtAddr, PAGE_SHIFT};
use crate::vma::{VmFlags, Vma};

/// `vm_normal_page(vma, addr, pte)`.
///
/// With ARCH_HAS_PTE_SPECIAL (x86) a non-special PTE is a normal page **whatever the VMA flags
/// say**: a normal PTE inside a VM_PFNMAP or VM_IO VMA is refcounted by everybody. A special PTE
/// is never normal; in a VMA without VM_PFNMAP|VM_MIXEDMAP that is not the zero pfn or devmap it
/// is a "Bad page map". Without ARCH_HAS_PTE_SPECIAL the VMA flags and the
/// `remap_pfn_range()` linear rule decide.
pub fn vm_normal_page(k: &mut Kernel, vma: &Vma, addr: VirtAddr, pte: Pte) -> Option<Pfn> {
    const F: &str = "mm/memory.c:vm_normal_page";
    let pfn = pte.pfn();
    let flags = vma.flags;
    if k.config.arch_has_pte_special {
        if !pte.special() {
            return check_pfn(k, addr, pfn);
        }
        if flags.intersects(VmFlags::PFNMAP | VmFlags::MIXEDMAP) {
            return None;
        }
        if k.frames.is_zero_pfn(pfn) {
            return None;
        }
        if pte.devmap(crate::pagetable::devmap_bit(k)) {
            return None;
        }
        k.bad_pte(addr, F);
        return None;
    }
    if flags.intersects(VmFlags::PFNMAP | VmFlags::MIXEDMAP) {
        if flags.contains(VmFlags::MIXEDMAP) {
            if !k.frames.pfn_valid(pfn) {
                return None;
            }
            if k.has(Fact::InsertZeropageSpecial) && k.frames.is_zero_pfn(pfn) {
                return None;
            }
            return Some(pfn);
        }
        let off = (addr.0 - vma.start.0) >> PAGE_SHIFT;
        if pfn.0 == vma.pgoff + off {
            return None;
        }
        if !flags.is_cow_mapping() {
            return None;
        }
    }
    if k.frames.is_zero_pfn(pfn) {
        return None;
    }
    check_pfn(k, addr, pfn)
}

fn check_pfn(k: &mut Kernel, addr: VirtAddr, pfn: Pfn) -> Option<Pfn> {
    if pfn > k.frames.highest_memmap_pfn() {
        k.bad_pte(addr, "mm/memory.c:vm_normal_page");
        return None;
    }
    if k.config.debug_vm && k.frames.is_zero_pfn(pfn) {
        k.warn_once("mm/memory.c:vm_normal_page", "is_zero_pfn(pfn)");
    }
    Some(pfn)
}

/// `vm_normal_page()` without side effects (no bad-PTE report), for /proc rendering and checks
/// that must not change the log.
pub fn vm_normal_page_quiet(k: &Kernel, vma: &Vma, addr: VirtAddr, pte: Pte) -> Option<Pfn> {
    let mut probe = QuietKernel(k);
    probe.normal(vma, addr, pte)
}

struct QuietKernel<'a>(&'a Kernel);

impl QuietKernel<'_> {
    fn normal(&mut self, vma: &Vma, addr: VirtAddr, pte: Pte) -> Option<Pfn> {
        let k = self.0;
        let pfn = pte.pfn();
        let flags = vma.flags;
        if k.config.arch_has_pte_special {
            if !pte.special() {
                return (pfn <= k.frames.highest_memmap_pfn()).then_some(pfn);
            }
            return None;
        }
        if flags.intersects(VmFlags::PFNMAP | VmFlags::MIXEDMAP) {
            if flags.contains(VmFlags::MIXEDMAP) {
                if !k.frames.pfn_valid(pfn)
                    || (k.has(Fact::InsertZeropageSpecial) && k.frames.is_zero_pfn(pfn))
                {
                    return None;
                }
                return Some(pfn);
            }
            let off = (addr.0 - vma.start.0) >> PAGE_SHIFT;
            if pfn.0 == vma.pgoff + off || !flags.is_cow_mapping() {
                return None;
            }
        }
        if k.frames.is_zero_pfn(pfn) {
            return None;
        }
        (pfn <= k.frames.highest_memmap_pfn()).then_some(pfn)
    }
}
