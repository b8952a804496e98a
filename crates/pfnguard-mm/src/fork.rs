//! `fork(2)`: kernel/fork.c `dup_mmap()` and mm/memory.c `copy_page_range()` /
//! `copy_present_pte(s)()`.

use crate::errno::Errno;
use crate::facts::Fact;
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

/// x86 `track_pfn_copy()` (arch/x86/mm/pat/memtype.c), from mm/memory.c:`copy_page_range()` of
/// a VM_PFNMAP VMA: a VM_PAT VMA's memtype is reserved again for the child, from the PFN and
/// protection of the PTE at `vm_start` (`follow_phys()`). A PTE that is not there: -EINVAL
/// (`WARN_ON_ONCE` unless the mapping is COW, where [`Fact::PatCowForkRefused`]'s
/// `get_pat_info()` fails quietly). A PTE that maps an anon page (a COW mapping written after
/// the remap): with [`Fact::PatCowForkRefused`] `follow_phys()` refuses it ("never return PFNs
/// of anon folios in COW mappings") and `get_pat_info()` cannot recover the cachemode: -EINVAL;
/// before, the anon page's address was reserved (RAM: `reserve_pfn_range()` succeeds) and the
/// fork went ahead. VM_PAT is only set before [`Fact::PfnmapTrackCtx`]; after it `vm_area_dup()`
/// takes a reference on the tracking context and nothing fails.
fn track_pfn_copy(k: &mut Kernel, mm: MmId, v: &crate::vma::Vma) -> KResult<()> {
    const F: &str = "arch/x86/mm/pat/memtype.c:track_pfn_copy";
    if !v.flags.contains(VmFlags::PAT) {
        return Ok(());
    }
    let pte = k.mm(mm).pt.get(v.start);
    let cow = v.flags.is_cow_mapping();
    if !pte.present() {
        if !(cow && k.has(Fact::PatCowForkRefused)) {
            k.warn(F, "follow_phys() found no PTE at vm_start");
        }
        trace!(k, F, "no PTE at vm_start {}: -EINVAL", v.start);
        return Err(Errno::EINVAL.into());
    }
    let anon = crate::normal_page::vm_normal_page_quiet(k, v, v.start, pte)
        .and_then(|p| k.frames.folio_of(p))
        .is_some_and(|f| k.frames.folio(f).is_anon());
    if anon && k.has(Fact::PatCowForkRefused) {
        trace!(
            k,
            "arch/x86/mm/pat/memtype.c:get_pat_info",
            "COW mapping, vm_start maps an anon folio: follow_phys() refuses it, the cachemode \
             cannot be recovered -> -EINVAL (dup_mmap fails)"
        );
        return Err(Errno::EINVAL.into());
    }
    trace!(
        k,
        F,
        "VM_PAT: memtype reserved again from the PTE at vm_start ({})",
        if anon {
            "the anon page's address"
        } else {
            "the remapped PFN"
        }
    );
    Ok(())
}

/// `copy_mm()` (kernel/fork.c): `dup_mm()` returns NULL on any `dup_mmap()` failure, and
/// `fork()` fails with -ENOMEM whatever the cause.
pub fn copy_mm(k: &mut Kernel, parent: MmId) -> KResult<MmId> {
    dup_mmap(k, parent).map_err(|e| match e {
        crate::outcome::Fail::Errno(_) => {
            trace!(k, "kernel/fork.c:copy_mm", "dup_mm() failed -> -ENOMEM");
            Errno::ENOMEM.into()
        }
        other => other,
    })
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
        if v.flags.contains(VmFlags::PFNMAP) {
            if let Err(e) = track_pfn_copy(k, parent, &v) {
                // dup_mmap() fails; dup_mm() drops the half-built mm (mmput → exit_mmap).
                exit_mmap(k, child);
                k.mm_mut(parent).write_protect_seq += 1;
                return Err(e);
            }
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
