//! Tearing down user PTEs: mm/memory.c `zap_pte_range()` / `zap_present_ptes()`,
//! `unmap_single_vma()` (with `untrack_pfn()` for VM_PFNMAP) and `zap_page_range_single()`.

use crate::frames::FolioFlags;
use crate::kernel::Kernel;
use crate::normal_page::vm_normal_page;
use crate::trace;
use crate::types::VirtAddr;
use crate::vma::{VmFlags, VmaId};

/// `zap_page_range_single()` / `zap_pte_range()` over `[start, end)` of a VMA.
///
/// Per present PTE: `vm_normal_page()` decides. No page (special PTE): the entry is cleared and
/// nothing else happens. A page: dirty/young are transferred, the RSS counter and mapcount drop
/// (mapcount below zero is a bad page map), and the reference the PTE held is released.
pub fn zap_vma_range(k: &mut Kernel, vma: VmaId, start: VirtAddr, end: VirtAddr) {
    const F: &str = "mm/memory.c:zap_pte_range";
    let Some(v) = k.vma(vma).cloned() else {
        return;
    };
    let entries = k.mm(vma.mm).pt.collect_in(start, end);
    let (mut special, mut normal) = (0u64, 0u64);
    for (addr, pte) in entries {
        k.mm_mut(vma.mm).pt.clear(addr);
        if !pte.present() {
            continue;
        }
        match vm_normal_page(k, &v, addr, pte) {
            None => special += 1,
            Some(pfn) => {
                normal += 1;
                let Some(fid) = k.frames.folio_of(pfn) else {
                    continue;
                };
                // A freed folio is reported, and the PTE is still accounted as every other:
                // zap_present_folio_ptes() (6.12 mm/memory.c; 6.1 zap_pte_range) drops the RSS
                // counter, the rmap and the reference of whatever page the PTE maps.
                if k.frames.folio(fid).is_freed() {
                    k.events.push(crate::Event::UseAfterFree {
                        pfn,
                        holder: format!("a PTE at {addr} still mapped it when it was zapped"),
                    });
                }
                let c = k.mm_counter(fid);
                k.add_rss(vma.mm, c, -1);
                let anon = k.frames.folio(fid).is_anon();
                {
                    let f = k.frames.folio_mut(fid);
                    if pte.dirty() && !anon {
                        f.flags |= FolioFlags::DIRTY;
                    }
                    f.mapcount -= 1;
                }
                if !anon {
                    k.nr_file_mapped -= 1;
                }
                if k.frames.folio(fid).mapcount < 0 {
                    k.bad_pte(addr, F);
                }
                k.folio_put(fid, 1);
            }
        }
    }
    if special + normal > 0 {
        trace!(
            k,
            F,
            "{special} special PTE(s) cleared; {normal} normal PTE(s): rmap, RSS and reference dropped"
        );
    }
}

/// `unmap_single_vma()` (mm/memory.c): `untrack_pfn()` for VM_PFNMAP, then zap the whole VMA.
pub fn unmap_single_vma(k: &mut Kernel, vma: VmaId) {
    let Some(v) = k.vma(vma).cloned() else {
        return;
    };
    if v.flags.contains(VmFlags::PFNMAP) && v.pat_reserved {
        trace!(
            k,
            "arch/x86/mm/pat/memtype.c:untrack_pfn",
            "release the PAT reservation"
        );
        if let Some(v) = k.vma_mut(vma) {
            v.pat_reserved = false;
        }
    }
    zap_vma_range(k, vma, v.start, v.end);
}
