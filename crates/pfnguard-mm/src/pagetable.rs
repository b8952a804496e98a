//! x86-64 page tables: PTE bits (arch/x86/include/asm/pgtable_types.h) and a sparse 4-level
//! table.
//!
//! The upper levels (PGD, P4D folded, PUD, PMD) are addressed by the PMD index `va >> 21`; a
//! PTE table holds 512 entries in 8 lazily allocated chunks of 64, so a 1 TiB aperture costs
//! memory only for the pages touched.

use std::sync::Arc;

use crate::shared::Shared;

use crate::types::{Pfn, VirtAddr, PAGE_SHIFT};

/// `pgprot_t` (arch/x86/include/asm/pgtable_types.h): the protection and cache-mode bits of a
/// mapping (`vma->vm_page_prot`), in PTE layout ([`Pte`] bits), without a frame number.
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash, serde::Serialize)]
pub struct PgProt(u64);

impl PgProt {
    /// `__pgprot(bits)`; frame-number bits are dropped, as `pfn_pte()` masks them.
    #[inline]
    pub const fn new(bits: u64) -> PgProt {
        PgProt(bits & !Pte::PFN_MASK)
    }
    /// `pgprot_val()`.
    #[inline]
    pub const fn val(self) -> u64 {
        self.0
    }
    /// The protection with `bits` added (`__pgprot(pgprot_val(prot) | bits)`).
    #[inline]
    pub const fn with(self, bits: u64) -> PgProt {
        PgProt::new(self.0 | bits)
    }
    /// The protection with `bits` removed (`__pgprot(pgprot_val(prot) & ~bits)`).
    #[inline]
    pub const fn without(self, bits: u64) -> PgProt {
        PgProt(self.0 & !bits)
    }
    /// Whether any of `bits` is set.
    #[inline]
    pub const fn has(self, bits: u64) -> bool {
        self.0 & bits != 0
    }
}

impl std::fmt::Debug for PgProt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pgprot:{:#x}", self.0)
    }
}

/// A page table entry, bit for bit as x86-64 lays it out.
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash, serde::Serialize)]
pub struct Pte(pub u64);

#[allow(missing_docs)]
impl Pte {
    pub const PRESENT: u64 = 1 << 0;
    pub const RW: u64 = 1 << 1;
    pub const USER: u64 = 1 << 2;
    pub const PWT: u64 = 1 << 3;
    pub const PCD: u64 = 1 << 4;
    pub const ACCESSED: u64 = 1 << 5;
    pub const DIRTY: u64 = 1 << 6;
    pub const PAT: u64 = 1 << 7;
    pub const GLOBAL: u64 = 1 << 8;
    /// `_PAGE_PROTNONE` aliases GLOBAL when !PRESENT.
    pub const PROTNONE: u64 = 1 << 8;
    /// `_PAGE_SPECIAL` (_PAGE_BIT_SOFTW1).
    pub const SPECIAL: u64 = 1 << 9;
    pub const UFFD_WP: u64 = 1 << 10;
    pub const SOFT_DIRTY: u64 = 1 << 11;
    pub const NX: u64 = 1 << 63;
    /// `PTE_PFN_MASK` for a 52-bit physical address space.
    pub const PFN_MASK: u64 = ((1u64 << 52) - 1) & !((1u64 << PAGE_SHIFT) - 1);

    /// `pte_none()`.
    #[inline]
    pub fn is_none(self) -> bool {
        self.0 == 0
    }
    /// `pte_present()`: PRESENT or PROTNONE (arch/x86/include/asm/pgtable.h).
    #[inline]
    pub fn present(self) -> bool {
        self.0 & (Self::PRESENT | Self::PROTNONE) != 0
    }
    /// `pte_protnone()`.
    #[inline]
    pub fn protnone(self) -> bool {
        self.0 & (Self::PROTNONE | Self::PRESENT) == Self::PROTNONE
    }
    /// `pte_special()`.
    #[inline]
    pub fn special(self) -> bool {
        self.0 & Self::SPECIAL != 0
    }
    /// `pte_devmap()` with the kernel's `_PAGE_BIT_DEVMAP` ([`devmap_bit`]).
    #[inline]
    pub fn devmap(self, devmap_bit: u8) -> bool {
        self.0 & (1u64 << devmap_bit) != 0
    }
    /// `pte_write()`.
    #[inline]
    pub fn write(self) -> bool {
        self.0 & Self::RW != 0
    }
    /// `pte_dirty()`.
    #[inline]
    pub fn dirty(self) -> bool {
        self.0 & Self::DIRTY != 0
    }
    /// `pte_young()`.
    #[inline]
    pub fn young(self) -> bool {
        self.0 & Self::ACCESSED != 0
    }
    /// `pte_pfn()`.
    #[inline]
    pub fn pfn(self) -> Pfn {
        Pfn((self.0 & Self::PFN_MASK) >> PAGE_SHIFT)
    }
    /// `pte_pgprot()`: the protection bits of the entry, without the frame number.
    #[inline]
    pub fn pgprot(self) -> PgProt {
        PgProt::new(self.0)
    }
    /// `pfn_pte(pfn, prot)`.
    #[inline]
    pub fn new(pfn: Pfn, prot: PgProt) -> Pte {
        Pte(((pfn.0 << PAGE_SHIFT) & Self::PFN_MASK) | prot.val())
    }
    /// `pte_mkspecial()`.
    #[inline]
    pub fn mkspecial(self) -> Pte {
        Pte(self.0 | Self::SPECIAL)
    }
    /// `pte_mkdevmap()`: SPECIAL|DEVMAP.
    #[inline]
    pub fn mkdevmap(self, devmap_bit: u8) -> Pte {
        Pte(self.0 | Self::SPECIAL | (1u64 << devmap_bit))
    }
    /// `pte_mkyoung()`.
    #[inline]
    pub fn mkyoung(self) -> Pte {
        Pte(self.0 | Self::ACCESSED)
    }
    /// `pte_mkold()`.
    #[inline]
    pub fn mkold(self) -> Pte {
        Pte(self.0 & !Self::ACCESSED)
    }
    /// `pte_mkdirty()` (also soft-dirty, as on x86).
    #[inline]
    pub fn mkdirty(self) -> Pte {
        Pte(self.0 | Self::DIRTY | Self::SOFT_DIRTY)
    }
    /// `pte_mkclean()`.
    #[inline]
    pub fn mkclean(self) -> Pte {
        Pte(self.0 & !Self::DIRTY)
    }
    /// `pte_mkwrite()`.
    #[inline]
    pub fn mkwrite(self) -> Pte {
        Pte(self.0 | Self::RW)
    }
    /// `pte_wrprotect()`.
    #[inline]
    pub fn wrprotect(self) -> Pte {
        Pte(self.0 & !Self::RW)
    }
    /// `pte_access_permitted(pte, write)` without protection keys (pgtable.h:__pte_access_permitted).
    #[inline]
    pub fn access_permitted(self, write: bool) -> bool {
        let need = Self::PRESENT | Self::USER | if write { Self::RW } else { 0 };
        self.0 & need == need
    }
}

impl std::fmt::Debug for Pte {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_none() {
            return f.write_str("pte:none");
        }
        let mut bits = Vec::new();
        for (b, n) in [
            (Self::PRESENT, "P"),
            (Self::RW, "RW"),
            (Self::USER, "U"),
            (Self::ACCESSED, "A"),
            (Self::DIRTY, "D"),
            (Self::SPECIAL, "SPECIAL"),
        ] {
            if self.0 & b != 0 {
                bits.push(n);
            }
        }
        write!(f, "pte:{}|{}", self.pfn(), bits.join("|"))
    }
}

const CHUNK: usize = 64;
const CHUNKS: usize = 512 / CHUNK;

/// One PTE table (the 512 entries under one PMD), allocated in chunks of 64 entries. A chunk is
/// shared between clones of the tables until one of them writes it.
#[derive(Debug, Clone, Default)]
struct PteTable {
    chunks: [Option<Arc<[Pte; CHUNK]>>; CHUNKS],
}

/// The page tables of one mm: the PTE tables by PMD index, in address order. A clone shares
/// the tables ([`Shared`]) and their chunks until it writes an entry: then it copies the table
/// list and the one chunk it writes.
#[derive(Debug, Clone, Default)]
pub struct PageTable {
    pmds: Shared<[(u64, PteTable)]>,
}

impl PageTable {
    /// Empty tables.
    pub fn new() -> PageTable {
        PageTable::default()
    }

    /// The PTE table under PMD index `pmd`.
    #[inline]
    fn table(&self, pmd: u64) -> Option<&PteTable> {
        let i = self.pmds.binary_search_by_key(&pmd, |(p, _)| *p).ok()?;
        self.pmds.get(i).map(|(_, t)| t)
    }

    /// The entry for `va` (`pte_none` when no table exists).
    #[inline]
    pub fn get(&self, va: VirtAddr) -> Pte {
        let vpn = va.0 >> PAGE_SHIFT;
        match self.table(vpn >> 9) {
            Some(t) => {
                let i = (vpn & 511) as usize;
                match &t.chunks[i / CHUNK] {
                    Some(c) => c[i % CHUNK],
                    None => Pte(0),
                }
            }
            None => Pte(0),
        }
    }

    /// `get_locked_pte()`: the entry for `va`, allocating the tables on the way.
    pub fn entry(&mut self, va: VirtAddr) -> &mut Pte {
        let vpn = va.0 >> PAGE_SHIFT;
        let pmd = vpn >> 9;
        let at = match self.pmds.binary_search_by_key(&pmd, |(p, _)| *p) {
            Ok(at) => at,
            Err(at) => {
                self.pmds.insert(at, (pmd, PteTable::default()));
                at
            }
        };
        let t = &mut self.pmds[at].1;
        let i = (vpn & 511) as usize;
        let c = t.chunks[i / CHUNK].get_or_insert_with(|| Arc::new([Pte(0); CHUNK]));
        &mut Arc::make_mut(c)[i % CHUNK]
    }

    /// Set the entry for `va`.
    pub fn set(&mut self, va: VirtAddr, pte: Pte) {
        *self.entry(va) = pte;
    }

    /// `ptep_get_and_clear()`: clear the entry for `va`, returning the old one.
    pub fn clear(&mut self, va: VirtAddr) -> Pte {
        // Only a present entry is written: clearing a none entry copies nothing.
        if self.get(va).is_none() {
            return Pte(0);
        }
        std::mem::take(self.entry(va))
    }

    /// Visit every non-none entry in `[start, end)` in address order.
    pub fn for_each_in(&self, start: VirtAddr, end: VirtAddr, mut f: impl FnMut(VirtAddr, Pte)) {
        let first = start.0 >> PAGE_SHIFT;
        let last = end.0 >> PAGE_SHIFT;
        if first >= last {
            return;
        }
        let (first_pmd, last_pmd) = (first >> 9, (last - 1) >> 9);
        let from = self.pmds.partition_point(|(p, _)| *p < first_pmd);
        for (pmd, t) in self.pmds[from..].iter().take_while(|(p, _)| *p <= last_pmd) {
            let mut vpn = first.max(pmd << 9);
            let stop = last.min((pmd + 1) << 9);
            while vpn < stop {
                let i = (vpn & 511) as usize;
                match &t.chunks[i / CHUNK] {
                    Some(c) => {
                        let pte = c[i % CHUNK];
                        if !pte.is_none() {
                            f(VirtAddr(vpn << PAGE_SHIFT), pte);
                        }
                        vpn += 1;
                    }
                    None => vpn = ((vpn >> 6) + 1) << 6,
                }
            }
        }
    }

    /// The non-none entries in `[start, end)`.
    pub fn collect_in(&self, start: VirtAddr, end: VirtAddr) -> Vec<(VirtAddr, Pte)> {
        let mut v = Vec::new();
        self.for_each_in(start, end, |a, p| v.push((a, p)));
        v
    }

    /// The PTE chunk holding `va` and the index of `va` in it, for walks that visit
    /// consecutive entries without a lookup per entry (the fast GUP walk).
    #[inline]
    pub(crate) fn chunk(&self, va: VirtAddr) -> Option<(&[Pte; CHUNK], usize)> {
        let vpn = va.0 >> PAGE_SHIFT;
        let t = self.table(vpn >> 9)?;
        let i = (vpn & 511) as usize;
        t.chunks[i / CHUNK].as_deref().map(|c| (c, i % CHUNK))
    }

    /// Bytes of memory the tables occupy (tables and chunks), for the memory budget checks.
    pub fn footprint_bytes(&self) -> usize {
        let per_table = std::mem::size_of::<(u64, PteTable)>();
        let chunks: usize = self
            .pmds
            .iter()
            .map(|(_, t)| t.chunks.iter().filter(|c| c.is_some()).count())
            .sum();
        let per_chunk = std::mem::size_of::<[Pte; CHUNK]>() + 2 * std::mem::size_of::<usize>();
        self.pmds.len() * per_table + chunks * per_chunk
    }
}

/// x86 `_PAGE_BIT_DEVMAP` (arch/x86/include/asm/pgtable_types.h): `_PAGE_BIT_SOFTW4` (57) once
/// shadow stacks took `_PAGE_BIT_SOFTW5` (58) for `_PAGE_BIT_SAVED_DIRTY`
/// ([`Fact::DevmapBit57`](crate::facts::Fact::DevmapBit57)).
pub fn devmap_bit(k: &crate::kernel::Kernel) -> u8 {
    if k.has(crate::facts::Fact::DevmapBit57) {
        57
    } else {
        58
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pte_bits_roundtrip() {
        let p = Pte::new(Pfn(0x1234), PgProt::new(Pte::PRESENT | Pte::USER | Pte::RW)).mkspecial();
        assert_eq!(p.pfn(), Pfn(0x1234));
        assert!(p.special() && p.present() && p.write());
        assert!(p.access_permitted(true));
        assert!(!p.wrprotect().access_permitted(true));
        assert!(p.mkdevmap(57).devmap(57));
        assert!(!p.mkdevmap(57).devmap(58));
    }

    #[test]
    fn sparse_walk_visits_in_order() {
        let mut t = PageTable::new();
        let a = VirtAddr(0x7f00_0000_0000);
        let b = VirtAddr(0x7f00_4000_1000);
        t.set(b, Pte::new(Pfn(2), PgProt::new(Pte::PRESENT)));
        t.set(a, Pte::new(Pfn(1), PgProt::new(Pte::PRESENT)));
        let seen = t.collect_in(VirtAddr(0x7e00_0000_0000), VirtAddr(0x7fff_0000_0000));
        assert_eq!(
            seen.iter().map(|(_, p)| p.pfn().0).collect::<Vec<_>>(),
            vec![1, 2]
        );
        assert_eq!(t.clear(a).pfn(), Pfn(1));
        assert!(t.get(a).is_none());
    }
}
