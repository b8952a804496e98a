//! `fork(2)`: kernel/fork.c `dup_mmap()` and mm/memory.c `copy_page_range()` /
//! `copy_present_pte(s)()`.

use crate::frames::AllocSpec;
use crate::kernel::{Kernel, MmId, RssCounter};
use crate::normal_page::vm_normal_page;
use crate::outcome::KResult;
use crate::pagetable::Pte;
use crate::trace;
use crate::vma::{VmFlags, VmaId};

/// `vma_needs_copy()` (mm/memory.c): page tables are copied only for VM_PFNMAP|VM_MIXEDMAP
/// VMAs and VMAs with an anon_vma; other file VMAs refault in the child.
pub fn vma_needs_copy(flags: VmFlags, anon_vma: bool) -> bool {
    flags.intersects(VmFlags::PFNMAP | VmFlags::MIXEDMAP) || anon_vma
}

/// `dup_mmap()` (kernel/fork.c): the child's address space. VM_DONTCOPY VMAs are skipped,
/// VM_WIPEONFORK VMAs get no page tables, VM_LOCKED is not inherited, `vm_ops->open` runs.
/// `mm->write_protect_seq` is odd while the page tables are copied.
pub fn dup_mmap(k: &mut Kernel, parent: MmId) -> KResult<MmId> {
    k.alive()?;
    const F: &str = "kernel/fork.c:dup_mmap";
    let child = k.new_mm();
    // dup_mm() copies the parent's mm_struct: the child's free-area layout is the parent's.
    let next = k.mm(parent).next_addr;
    k.mm_mut(child).next_addr = next;
    k.mm_mut(parent).write_protect_seq += 1;
    let vmas: Vec<_> = k.mm(parent).vmas.values().cloned().collect();
    for v in vmas {
        if v.flags.contains(VmFlags::DONTCOPY) {
            trace!(k, F, "VMA {} is VM_DONTCOPY: not in the child", v.start);
            continue;
        }
        let mut c = v.clone();
        c.flags.remove(VmFlags::LOCKED_MASK);
        k.mm_mut(child).vmas.insert(c.start, c);
        let cid = VmaId {
            mm: child,
            start: v.start,
        };
        if let Some(ops) = &v.ops {
            ops.open(k, cid);
        }
        if v.flags.contains(VmFlags::WIPEONFORK) {
            continue;
        }
        if !vma_needs_copy(v.flags, v.anon_vma) {
            trace!(
                k,
                "mm/memory.c:copy_page_range",
                "VMA {} ({}): no PFNMAP/MIXEDMAP/anon_vma, PTEs not copied (the child refaults)",
                v.start,
                v.flags.names()
            );
            continue;
        }
        let entries = k.mm(parent).pt.collect_in(v.start, v.end);
        let (mut raw, mut refd) = (0, 0);
        for (addr, pte) in entries {
            if !pte.present() {
                continue;
            }
            let page = vm_normal_page(k, &v, addr, pte);
            let mut cpte = pte;
            match page.and_then(|p| k.frames.folio_of(p)) {
                None => raw += 1,
                Some(fid) => {
                    refd += 1;
                    let anon = k.frames.folio(fid).is_anon();
                    if anon && k.frames.folio(fid).maybe_dma_pinned() {
                        // copy_present_page(): a pinned anon page is copied for the child now.
                        if let Some(new) = k.frames.alloc(AllocSpec::ANON) {
                            if let Some(nf) = k.frames.folio_of(new) {
                                k.frames.folio_mut(nf).mapcount += 1;
                            }
                            cpte = Pte::new(new, pte.pgprot());
                            k.add_rss(child, RssCounter::Anon, 1);
                            k.mm_mut(child).pt.set(addr, cpte.mkold());
                            continue;
                        }
                    }
                    k.folio_get(fid, 1);
                    k.frames.folio_mut(fid).mapcount += 1;
                    if !anon {
                        k.nr_file_mapped += 1;
                    }
                    let c = k.mm_counter(fid);
                    k.add_rss(child, c, 1);
                }
            }
            if v.flags.is_cow_mapping() && pte.write() {
                cpte = cpte.wrprotect();
                k.mm_mut(parent).pt.set(addr, pte.wrprotect());
            }
            if v.flags.contains(VmFlags::SHARED) {
                cpte = cpte.mkclean();
            }
            k.mm_mut(child).pt.set(addr, cpte.mkold());
        }
        trace!(
            k,
            "mm/memory.c:copy_present_ptes",
            "VMA {} ({}): {raw} PTE(s) copied raw (no page), {refd} with reference+rmap+RSS",
            v.start,
            v.flags.names()
        );
    }
    k.mm_mut(parent).write_protect_seq += 1;
    Ok(child)
}

/// Tear down a whole address space (`exit_mmap()`).
pub fn exit_mmap(k: &mut Kernel, mm: MmId) {
    let starts: Vec<_> = k.mm(mm).vmas.keys().copied().collect();
    for s in starts {
        let id = VmaId { mm, start: s };
        crate::zap::unmap_single_vma(k, id);
        if let Some(v) = k.mm_mut(mm).vmas.remove(&s) {
            if let Some(ops) = &v.ops {
                ops.close(k, id);
            }
        }
    }
}
