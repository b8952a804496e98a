//! Physical memory: frames with and without `struct page`, and the folios that own them.
//!
//! RAM frames lie in `[RAM_BASE_PFN, highest_memmap_pfn]` and all have a `struct page`
//! (`pfn_valid()`); device apertures lie above and have none. Frames are never reused: a freed
//! folio keeps its record, so a PTE or a pin that still points at it is detected as a
//! use-after-free instead of silently aliasing a new allocation.

use crate::shared::Shared;
use crate::types::Pfn;

/// First RAM frame of the model.
pub const RAM_BASE_PFN: u64 = 0x1000;
/// RAM frames the model may hand out (16 GiB); `highest_memmap_pfn` is the last of them.
pub const RAM_PAGES: u64 = 4 << 20;
/// First frame of device apertures (no `struct page`): 1 TiB physical.
pub const DEVICE_BASE_PFN: u64 = 1 << 28;

/// `GUP_PIN_COUNTING_BIAS` (include/linux/mm.h).
pub const GUP_PIN_COUNTING_BIAS: i32 = 1024;

/// Index of a folio in [`Frames`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FolioId(pub u32);

/// `folio->mapping`: what the folio belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Mapping {
    /// NULL: driver memory from `alloc_pages()`, `vmalloc_user()`, CMA allocations.
    None,
    /// An anon_vma (PAGE_MAPPING_ANON).
    Anon,
    /// A shmem/tmpfs page-cache folio (memfd, GEM shmem objects).
    Shmem,
    /// Page cache of a regular file; `can_writeback` mirrors `mapping_can_writeback()`.
    File {
        /// BDI_CAP_WRITEBACK of the backing device.
        can_writeback: bool,
    },
    /// A secretmem folio (`memfd_secret()`).
    Secretmem,
}

bitflags::bitflags! {
    /// Folio and page flags the modeled paths test (`PG_*`, include/linux/page-flags.h, and the
    /// zone/pageblock facts the pin paths read).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct FolioFlags: u16 {
        #[allow(missing_docs)]
        const LRU = 1 << 0;
        /// In a MIGRATE_CMA (or MIGRATE_ISOLATE) pageblock.
        const CMA = 1 << 1;
        /// In ZONE_MOVABLE.
        const ZONE_MOVABLE = 1 << 2;
        #[allow(missing_docs)]
        const SLAB = 1 << 3;
        /// `page_has_type()` (buddy, offline, table, guard...).
        const HAS_TYPE = 1 << 4;
        /// The shared zero page.
        const ZERO = 1 << 5;
        #[allow(missing_docs)]
        const HUGETLB = 1 << 6;
        /// PG_swapbacked (shmem and anon).
        const SWAPBACKED = 1 << 7;
        /// Returned to the allocator (refcount reached 0).
        const FREED = 1 << 8;
        #[allow(missing_docs)]
        const RESERVED = 1 << 9;
        #[allow(missing_docs)]
        const DIRTY = 1 << 10;
        #[allow(missing_docs)]
        const REFERENCED = 1 << 11;
        /// A ZONE_DEVICE page (has a `struct page` and a dev_pagemap).
        const ZONE_DEVICE = 1 << 12;
    }
}

impl serde::Serialize for FolioFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.bits())
    }
}

/// One folio: a head page and its `2^order - 1` tail pages.
///
/// # Invariants
/// `refcount >= mapcount + pins` while the folio is not freed, where a small folio's pins are
/// counted in `refcount` in units of [`GUP_PIN_COUNTING_BIAS`] and a large folio's in
/// `pincount` (include/linux/mm.h:folio_maybe_dma_pinned).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Folio {
    /// Head frame.
    pub head: Pfn,
    /// `folio_ref_count()`.
    pub refcount: i32,
    /// Number of PTEs mapping any page of the folio (`folio_mapcount()`).
    pub mapcount: i32,
    /// `folio->_pincount` (large folios only).
    pub pincount: i32,
    /// `folio_order()`.
    pub order: u8,
    /// `folio->mapping`.
    pub mapping: Mapping,
    /// Page flags.
    pub flags: FolioFlags,
}

impl Folio {
    /// `folio_test_large()`.
    #[inline]
    pub fn is_large(&self) -> bool {
        self.order > 0
    }
    /// `folio_maybe_dma_pinned()` (include/linux/mm.h).
    pub fn maybe_dma_pinned(&self) -> bool {
        if self.is_large() {
            self.pincount > 0
        } else {
            self.refcount >= GUP_PIN_COUNTING_BIAS
        }
    }
    /// Pins held on the folio.
    pub fn pins(&self) -> i32 {
        if self.is_large() {
            self.pincount
        } else {
            self.refcount / GUP_PIN_COUNTING_BIAS
        }
    }
    /// `folio_is_longterm_pinnable()` (include/linux/mm.h).
    pub fn is_longterm_pinnable(&self) -> bool {
        if self.flags.contains(FolioFlags::CMA) {
            return false;
        }
        if self.flags.contains(FolioFlags::ZERO) {
            return true;
        }
        !self.flags.contains(FolioFlags::ZONE_MOVABLE)
    }
    /// `folio_test_anon()`.
    pub fn is_anon(&self) -> bool {
        self.mapping == Mapping::Anon
    }
    /// `folio_test_swapbacked()`.
    pub fn is_swapbacked(&self) -> bool {
        self.flags.contains(FolioFlags::SWAPBACKED)
    }
    /// Whether the folio went back to the allocator.
    pub fn is_freed(&self) -> bool {
        self.flags.contains(FolioFlags::FREED)
    }
}

/// How to allocate a folio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllocSpec {
    /// `get_order()` of the allocation.
    pub order: u8,
    /// `__GFP_COMP`: one large folio. Without it an order>0 allocation is `2^order` independent
    /// order-0 pages of which only the first holds a reference (mm/page_alloc.c:prep_new_page).
    pub compound: bool,
    /// Initial `folio->mapping`.
    pub mapping: Mapping,
    /// Initial page flags.
    pub flags: FolioFlags,
}

impl AllocSpec {
    /// `alloc_page(GFP_KERNEL)`: order-0, mapping NULL, not on the LRU.
    pub const DRIVER_PAGE: AllocSpec = AllocSpec {
        order: 0,
        compound: false,
        mapping: Mapping::None,
        flags: FolioFlags::empty(),
    };
    /// A shmem page-cache folio (on the LRU, swap-backed).
    pub const SHMEM: AllocSpec = AllocSpec {
        order: 0,
        compound: false,
        mapping: Mapping::Shmem,
        flags: FolioFlags::LRU.union(FolioFlags::SWAPBACKED),
    };
    /// An anonymous folio (on the LRU, swap-backed).
    pub const ANON: AllocSpec = AllocSpec {
        order: 0,
        compound: false,
        mapping: Mapping::Anon,
        flags: FolioFlags::LRU.union(FolioFlags::SWAPBACKED),
    };
    /// A `__GFP_COMP` allocation of `order`, mapping NULL.
    pub const fn compound(order: u8) -> AllocSpec {
        AllocSpec {
            order,
            compound: true,
            mapping: Mapping::None,
            flags: FolioFlags::empty(),
        }
    }
}

/// Make room for `more` elements, growing the capacity by at least an eighth (and by a few
/// elements at least: a clone's copy of the tables is exactly as long as they are, and an
/// explorer keeps many such copies).
fn grow_by_eighth<T>(v: &mut Vec<T>, more: usize) {
    if v.capacity() - v.len() < more {
        v.reserve_exact(more.max(v.capacity() / 8).max(4));
    }
}

/// The physical memory of the modeled machine. The folio records and the frame map are
/// [`Shared`]: a clone copies either only when it changes it.
#[derive(Debug, Clone)]
pub struct Frames {
    folios: Shared<Vec<Folio>>,
    /// `pfn - RAM_BASE_PFN` → folio index; `u32::MAX` for a never-allocated frame.
    page_folio: Shared<Vec<u32>>,
    next_device: u64,
    zero_pfn: Pfn,
    /// Device frames (no `struct page`) their driver gave back to its own allocator, as
    /// `(first, count)` ranges: VRAM, a carve-out, a BAR window.
    device_freed: Vec<(u64, u64)>,
}

impl Default for Frames {
    fn default() -> Self {
        Self::new()
    }
}

impl Frames {
    /// Memory with only the zero page allocated.
    pub fn new() -> Frames {
        let mut f = Frames {
            folios: Shared::default(),
            page_folio: Shared::default(),
            next_device: DEVICE_BASE_PFN,
            zero_pfn: Pfn(0),
            device_freed: Vec::new(),
        };
        if let Some(zero) = f.alloc(AllocSpec {
            order: 0,
            compound: false,
            mapping: Mapping::None,
            flags: FolioFlags::ZERO.union(FolioFlags::RESERVED),
        }) {
            f.zero_pfn = zero;
        }
        f
    }

    /// `highest_memmap_pfn` (mm/memory.c).
    pub fn highest_memmap_pfn(&self) -> Pfn {
        Pfn(RAM_BASE_PFN + RAM_PAGES - 1)
    }

    /// `my_zero_pfn()`: the zero page's frame.
    pub fn zero_pfn(&self) -> Pfn {
        self.zero_pfn
    }

    /// `is_zero_pfn()`.
    #[inline]
    pub fn is_zero_pfn(&self, pfn: Pfn) -> bool {
        pfn == self.zero_pfn
    }

    /// `pfn_valid()`: the frame has a `struct page`.
    #[inline]
    pub fn pfn_valid(&self, pfn: Pfn) -> bool {
        pfn.0 >= RAM_BASE_PFN && pfn.0 <= self.highest_memmap_pfn().0
    }

    /// Allocate a folio (or `2^order` pages without `__GFP_COMP`); returns the first frame, or
    /// `None` when the model's RAM is exhausted (the caller reports -ENOMEM).
    ///
    /// Mirrors mm/page_alloc.c:`__alloc_pages` → `prep_new_page` (refcount 1 on the head,
    /// `prep_compound_page` for `__GFP_COMP`).
    pub fn alloc(&mut self, spec: AllocSpec) -> Option<Pfn> {
        let nr = 1u64 << spec.order;
        let start = RAM_BASE_PFN + self.page_folio.len() as u64;
        // Natural alignment, as the buddy allocator gives.
        let aligned = start.div_ceil(nr) * nr;
        if aligned + nr - 1 > self.highest_memmap_pfn().0 {
            return None;
        }
        // Grow the tables by an eighth instead of doubling: the model's memmap stays within
        // 12.5% of what it holds (the memory budget), at amortized O(1) cost per frame.
        let new_pages = (aligned - RAM_BASE_PFN - self.page_folio.len() as u64 + nr) as usize;
        grow_by_eighth(&mut self.page_folio, new_pages);
        grow_by_eighth(&mut self.folios, nr as usize);
        while RAM_BASE_PFN + (self.page_folio.len() as u64) < aligned {
            self.page_folio.push(u32::MAX);
        }
        if spec.compound || spec.order == 0 {
            let id = self.folios.len() as u32;
            self.folios.push(Folio {
                head: Pfn(aligned),
                refcount: 1,
                mapcount: 0,
                pincount: 0,
                order: spec.order,
                mapping: spec.mapping,
                flags: spec.flags,
            });
            self.page_folio.extend(std::iter::repeat_n(id, nr as usize));
        } else {
            for i in 0..nr {
                let id = self.folios.len() as u32;
                self.folios.push(Folio {
                    head: Pfn(aligned + i),
                    refcount: if i == 0 { 1 } else { 0 },
                    mapcount: 0,
                    pincount: 0,
                    order: 0,
                    mapping: spec.mapping,
                    flags: spec.flags,
                });
                self.page_folio.push(id);
            }
        }
        Some(Pfn(aligned))
    }

    /// Reserve `nr` frames of a device aperture (no `struct page`), e.g. a PCI BAR.
    pub fn alloc_device(&mut self, nr: u64) -> Pfn {
        let p = Pfn(self.next_device);
        self.next_device += nr;
        p
    }

    /// The driver gives `nr` device frames from `first` back to its own allocator (a VRAM
    /// manager, a carve-out): nothing counts references to memory without `struct page`, so the
    /// frames are free whatever still maps them.
    pub fn free_device(&mut self, first: Pfn, nr: u64) {
        if nr > 0 && !self.is_device_freed(first) {
            self.device_freed.push((first.0, nr));
        }
    }

    /// Whether a device frame was given back by [`Frames::free_device`].
    pub fn is_device_freed(&self, pfn: Pfn) -> bool {
        self.device_freed
            .iter()
            .any(|&(a, n)| pfn.0 >= a && pfn.0 - a < n)
    }

    /// Whether the frame went back to an allocator: a freed folio, or freed device memory.
    pub fn is_freed(&self, pfn: Pfn) -> bool {
        match self.folio_of(pfn) {
            Some(f) => self.folio(f).is_freed(),
            None => self.is_device_freed(pfn),
        }
    }

    /// `page_folio(pfn_to_page(pfn))`, or `None` for a frame without a `struct page` or one
    /// never allocated.
    #[inline]
    pub fn folio_of(&self, pfn: Pfn) -> Option<FolioId> {
        let idx = pfn.0.checked_sub(RAM_BASE_PFN)?;
        match self.page_folio.get(idx as usize) {
            Some(&id) if id != u32::MAX => Some(FolioId(id)),
            _ => None,
        }
    }

    /// The folio record.
    #[inline]
    pub fn folio(&self, id: FolioId) -> &Folio {
        &self.folios[id.0 as usize]
    }

    /// The folio record, mutably.
    #[inline]
    pub fn folio_mut(&mut self, id: FolioId) -> &mut Folio {
        &mut self.folios[id.0 as usize]
    }

    /// Every folio ever allocated.
    pub fn folios(&self) -> impl Iterator<Item = (FolioId, &Folio)> {
        self.folios
            .iter()
            .enumerate()
            .map(|(i, f)| (FolioId(i as u32), f))
    }

    /// Whether `self` is a clone of `other` that neither changed since (a cheap check: `false`
    /// means they may differ).
    pub fn unchanged_from(&self, other: &Frames) -> bool {
        Shared::ptr_eq(&self.folios, &other.folios)
            && Shared::ptr_eq(&self.page_folio, &other.page_folio)
            && self.next_device == other.next_device
            && self.zero_pfn == other.zero_pfn
            && self.device_freed == other.device_freed
    }

    /// Number of folio records.
    pub fn len(&self) -> usize {
        self.folios.len()
    }

    /// Whether no folio exists (never: the zero page is allocated at start).
    pub fn is_empty(&self) -> bool {
        self.folios.is_empty()
    }

    /// Move a folio's identity to a new frame range (migration): returns the new head frame.
    /// The old frames keep a freed record.
    pub fn migrate(&mut self, id: FolioId, clear_flags: FolioFlags) -> Option<Pfn> {
        let old = self.folio(id).clone();
        let new = self.alloc(AllocSpec {
            order: old.order,
            compound: old.order > 0,
            mapping: old.mapping,
            flags: old.flags.difference(clear_flags),
        })?;
        let nid = self.folio_of(new)?;
        {
            let nf = self.folio_mut(nid);
            nf.refcount = old.refcount;
            nf.mapcount = old.mapcount;
            nf.pincount = old.pincount;
        }
        let of = self.folio_mut(id);
        of.refcount = 0;
        of.mapcount = 0;
        of.pincount = 0;
        of.flags |= FolioFlags::FREED;
        Some(new)
    }
}
