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

/// `mapping->i_mmap`: every VMA, of every mm, whose `vm_file->f_mapping` is `host`
/// ([`AddressSpace::host`](crate::vma::AddressSpace::host)), with its mm.
fn i_mmap(
    k: &Kernel,
    host: u64,
) -> impl Iterator<Item = (VmaId, &crate::kernel::Mm, &crate::vma::Vma)> {
    k.mms.iter().enumerate().flat_map(move |(i, mm)| {
        mm.vmas
            .values()
            .filter(move |v| v.file.as_ref().and_then(|f| f.mapping.host) == Some(host))
            .map(move |v| {
                let id = VmaId {
                    mm: crate::kernel::MmId(i as u32),
                    start: v.start,
                };
                (id, mm, v)
            })
    })
}

/// `unmap_mapping_range(mapping, holebegin, holelen, even_cows = 1)` (mm/memory.c) in pages:
/// `unmap_mapping_pages()` → `unmap_mapping_range_tree()`: every VMA in `mapping->i_mmap` — of
/// every mm, the VMAs whose `vm_file->f_mapping` is `host` ([`AddressSpace::host`]) — whose file
/// range `[vm_pgoff, vm_pgoff + pages)` meets `[first, first + nr)` (`nr == 0`: to the end of
/// the file) has that part zapped (`unmap_mapping_range_vma()` → `zap_page_range_single()`),
/// special and normal PTEs alike, private CoW copies included (`even_cows`, what
/// `drm_vma_node_unmap()` passes). A VMA whose file has another `f_mapping` is not in this
/// tree and keeps its PTEs. Returns how many VMAs were zapped.
///
/// [`AddressSpace::host`]: crate::vma::AddressSpace::host
pub fn unmap_mapping_range(k: &mut Kernel, host: u64, first: u64, nr: u64) -> usize {
    const F: &str = "mm/memory.c:unmap_mapping_range_tree";
    let last = if nr == 0 {
        u64::MAX
    } else {
        first.saturating_add(nr - 1)
    };
    let mut hits: Vec<(VmaId, VirtAddr, VirtAddr)> = Vec::new();
    for (id, _, v) in i_mmap(k, host) {
        let vstart = v.pgoff;
        let vlast = v.pgoff + v.pages().saturating_sub(1);
        if v.pages() == 0 || vlast < first || vstart > last {
            continue;
        }
        let from = first.max(vstart) - vstart;
        let to = last.min(vlast) - vstart + 1;
        hits.push((id, v.start.add_pages(from), v.start.add_pages(to)));
    }
    trace!(
        k,
        F,
        "address_space {host}, pages [{first}, {}]: {} VMA(s) in i_mmap",
        if nr == 0 {
            "end".to_owned()
        } else {
            last.to_string()
        },
        hits.len()
    );
    for &(id, s, e) in &hits {
        zap_vma_range(k, id, s, e);
    }
    hits.len()
}

/// `unmap_mapping_folio(folio)` (mm/memory.c), what mm/truncate.c:truncate_cleanup_folio calls
/// for each mapped folio it removes from the page cache: in every VMA of `mapping->i_mmap` (the
/// VMAs whose `vm_file->f_mapping` is `host`), the PTEs that map one of `frames` are zapped
/// (`zap_details.single_folio`, `even_cows = false`: a private CoW copy is an anonymous page of
/// its own and keeps its PTE). Returns how many PTEs were zapped.
pub fn unmap_mapping_folio(k: &mut Kernel, host: u64, frames: &[crate::types::Pfn]) -> usize {
    const F: &str = "mm/memory.c:unmap_mapping_folio";
    let mut hits: Vec<(VmaId, VirtAddr)> = Vec::new();
    for (id, mm, v) in i_mmap(k, host) {
        for p in 0..v.pages() {
            let a = v.start.add_pages(p);
            let pte = mm.pt.get(a);
            if pte.present() && frames.contains(&pte.pfn()) {
                hits.push((id, a));
            }
        }
    }
    trace!(
        k,
        F,
        "address_space {host}: {} PTE(s) of the truncated folio(s) zapped",
        hits.len()
    );
    for &(id, a) in &hits {
        zap_vma_range(k, id, a, a.add_pages(1));
    }
    hits.len()
}
