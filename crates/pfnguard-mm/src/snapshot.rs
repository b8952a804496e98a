//! A read-only picture of the modeled state at one moment: each address space's VMAs with
//! their `vm_flags`, the PTEs in them, the frames behind those PTEs (a `struct page` or not,
//! with its reference, map and pin counts) and the kernel users holding frames.
//!
//! It is what `pfnguard report` draws at the end of an op or after a scenario step; taking it
//! changes nothing ([`Snapshot::of`] borrows the kernel immutably).

use serde::Serialize;

use crate::kernel::{HeldPages, Kernel};
use crate::pagetable::{devmap_bit, Pte};
use crate::types::Pfn;
use crate::vma::Vma;

/// PTEs drawn per VMA, and frames per holder, at most: the report's pictures stay small on
/// large buffers.
pub const MAX_PTES_PER_VMA: usize = 8;

/// The state of a modeled kernel, as `pfnguard report` draws it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// Every address space with at least one VMA (`struct mm_struct`).
    pub mms: Vec<MmPicture>,
    /// The frames the drawn PTEs and holders reach, each once, by PFN.
    pub frames: Vec<FramePicture>,
    /// Kernel-side users holding frames: GUP references and pins, bios, pipe buffers,
    /// io_uring fixed buffers, RDMA regions, importers' attachments.
    pub holders: Vec<HolderPicture>,
}

/// One `struct mm_struct`: its VMAs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MmPicture {
    /// The model's index of the address space (0 is the process that mapped the buffer).
    pub mm: u32,
    /// Its VMAs, by start address.
    pub vmas: Vec<VmaPicture>,
}

/// One `struct vm_area_struct`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VmaPicture {
    /// `vm_start`.
    pub start: u64,
    /// `vm_end`.
    pub end: u64,
    /// `vm_flags` by kernel name without `VM_` (`PFNMAP|IO|...`, [`crate::VmFlags::names`]).
    pub flags: String,
    /// The mapped file's path (`/dmabuf:` for a dma-buf), if any.
    pub file: Option<String>,
    /// The first [`MAX_PTES_PER_VMA`] present or non-none PTEs.
    pub ptes: Vec<PtePicture>,
    /// PTEs beyond those drawn.
    pub more_ptes: usize,
}

/// One page table entry (arch/x86/include/asm/pgtable_types.h bits).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PtePicture {
    /// The virtual address it maps.
    pub addr: u64,
    /// The frame it points to.
    pub pfn: u64,
    /// `_PAGE_PRESENT`.
    pub present: bool,
    /// `_PAGE_SPECIAL`: inserted as a raw PFN (`vmf_insert_pfn`, `remap_pfn_range`);
    /// `vm_normal_page()` returns NULL for it, so GUP finds no `struct page`.
    pub special: bool,
    /// `_PAGE_DEVMAP`: a ZONE_DEVICE page (GUP takes the dev_pagemap path).
    pub devmap: bool,
    /// `_PAGE_RW`: clear means write-protected (a write faults).
    pub writable: bool,
    /// `_PAGE_DIRTY`.
    pub dirty: bool,
}

impl PtePicture {
    /// What kind of entry it is, in the words of mm/memory.c: `special`, `devmap`, `normal`
    /// (`vm_normal_page()` finds a `struct page`) or `not present`.
    pub fn kind(&self) -> &'static str {
        if !self.present {
            "not present"
        } else if self.special {
            "special"
        } else if self.devmap {
            "devmap"
        } else {
            "normal"
        }
    }
}

/// One physical frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FramePicture {
    /// The page frame number.
    pub pfn: u64,
    /// Whether a `struct page` (a folio of the memmap) describes it; device memory inserted by
    /// PFN has none.
    pub struct_page: Option<PageCounts>,
}

/// The counts of a `struct folio` (include/linux/mm_types.h).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PageCounts {
    /// `folio_ref_count()`.
    pub refcount: i32,
    /// `folio_mapcount()`: PTEs mapping it that rmap knows of.
    pub mapcount: i32,
    /// FOLL_PIN pins (`folio_maybe_dma_pinned()`).
    pub pins: i32,
    /// Returned to the allocator while something still pointed at it.
    pub freed: bool,
}

/// A kernel-side user holding frames ([`HeldPages`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HolderPicture {
    /// Who holds them (`bio`, `pipe_buffer`, `io_uring`, an actor's `gup_pin`...).
    pub holder: String,
    /// FOLL_PIN (unpin to release) rather than FOLL_GET (put_page); `None` for a hold that
    /// takes no reference at all (a KVM spte, an importer's scatterlist).
    pub pinned: Option<bool>,
    /// The frames held.
    pub pfns: Vec<u64>,
}

impl Snapshot {
    /// The picture of `k` now: every VMA of every address space, the frames their PTEs and
    /// `k.held` reach, and `k.held`.
    pub fn of(k: &Kernel) -> Snapshot {
        let devmap = devmap_bit(k);
        let mms = k
            .mms
            .iter()
            .enumerate()
            .filter(|(_, mm)| !mm.vmas.is_empty())
            .map(|(i, mm)| MmPicture {
                mm: i as u32,
                vmas: mm
                    .vmas
                    .values()
                    .map(|v| vma_picture(v, &mm.pt, devmap))
                    .collect(),
            })
            .collect();
        let holders = k.held.iter().map(HolderPicture::of).collect();
        let mut s = Snapshot {
            mms,
            frames: Vec::new(),
            holders,
        };
        s.add_frames(k);
        s
    }

    /// Add holders (a scenario's actors' holds), then the frames they reach.
    pub fn with_holders(mut self, k: &Kernel, holders: Vec<HolderPicture>) -> Snapshot {
        self.holders.extend(holders);
        self.add_frames(k);
        self
    }

    /// Every frame a drawn PTE or a holder reaches (a holder's first [`MAX_PTES_PER_VMA`]),
    /// once, sorted by PFN.
    fn add_frames(&mut self, k: &Kernel) {
        let mut pfns: Vec<u64> = self
            .mms
            .iter()
            .flat_map(|m| m.vmas.iter())
            .flat_map(|v| v.ptes.iter().filter(|p| p.present).map(|p| p.pfn))
            .chain(
                self.holders
                    .iter()
                    .flat_map(|h| h.pfns.iter().take(MAX_PTES_PER_VMA).copied()),
            )
            .collect();
        pfns.sort_unstable();
        pfns.dedup();
        self.frames = pfns.into_iter().map(|p| frame_picture(k, Pfn(p))).collect();
    }
}

impl HolderPicture {
    /// From the kernel's record of pages a subsystem holds.
    pub fn of(h: &HeldPages) -> HolderPicture {
        HolderPicture {
            holder: h.holder.to_owned(),
            pinned: Some(h.pinned),
            pfns: h.pages.iter().map(|p| p.0).collect(),
        }
    }
}

fn vma_picture(v: &Vma, pt: &crate::pagetable::PageTable, devmap: u8) -> VmaPicture {
    let entries: Vec<(crate::types::VirtAddr, Pte)> = pt.collect_in(v.start, v.end);
    let live: Vec<&(crate::types::VirtAddr, Pte)> =
        entries.iter().filter(|(_, p)| !p.is_none()).collect();
    let ptes = live
        .iter()
        .take(MAX_PTES_PER_VMA)
        .map(|(a, p)| PtePicture {
            addr: a.0,
            pfn: p.pfn().0,
            present: p.present(),
            special: p.special(),
            devmap: p.devmap(devmap),
            writable: p.write(),
            dirty: p.dirty(),
        })
        .collect();
    VmaPicture {
        start: v.start.0,
        end: v.end.0,
        flags: v.flags.names(),
        file: v.file.as_ref().map(|f| f.d_path()),
        ptes,
        more_ptes: live.len().saturating_sub(MAX_PTES_PER_VMA),
    }
}

fn frame_picture(k: &Kernel, pfn: Pfn) -> FramePicture {
    let struct_page = k.frames.folio_of(pfn).map(|id| {
        let f = k.frames.folio(id);
        PageCounts {
            refcount: f.refcount,
            mapcount: f.mapcount,
            pins: f.pins(),
            freed: f.is_freed(),
        }
    });
    FramePicture {
        pfn: pfn.0,
        struct_page,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::AllocSpec;
    use crate::kernel::Config;
    use crate::KernelFacts;

    #[test]
    fn an_empty_kernel_draws_nothing_and_a_held_frame_is_drawn_with_its_counts() {
        let mut k = Kernel::new(KernelFacts::of("6.12.117"), Config::default());
        assert!(Snapshot::of(&k).mms.is_empty());
        let pfn = k.frames.alloc(AllocSpec::DRIVER_PAGE).expect("a frame");
        k.held.push(HeldPages {
            holder: "bio",
            pinned: true,
            pages: vec![pfn],
        });
        let s = Snapshot::of(&k);
        assert_eq!(s.holders.len(), 1);
        assert_eq!(s.frames.len(), 1);
        let counts = s.frames[0].struct_page.as_ref().expect("a struct page");
        assert!(counts.refcount >= 1, "{counts:?}");
    }
}
