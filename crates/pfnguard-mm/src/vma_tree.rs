//! An address space's VMAs in address order: the model of `mm->mm_mt`, the maple tree
//! (include/linux/mm_types.h, lib/maple_tree.c) that `find_vma()`, `vma_lookup()` and the VMA
//! iterators walk.
//!
//! A process has a handful of VMAs, and an explorer keeps a copy of the tree in every state
//! whose step changed it: the tree is a sorted list of exactly its entries, so a copy costs
//! what the VMAs take and no more. The interface is `BTreeMap`'s, keyed by the start address.

use std::ops::{Bound, RangeBounds};

use crate::types::VirtAddr;
use crate::vma::Vma;

/// The VMAs of an mm by start address.
#[derive(Debug, Clone, Default)]
pub struct VmaTree {
    entries: Vec<(VirtAddr, Vma)>,
}

impl VmaTree {
    /// No VMAs.
    pub fn new() -> VmaTree {
        VmaTree::default()
    }

    /// The index of `key`, or where it would go.
    fn find(&self, key: VirtAddr) -> Result<usize, usize> {
        self.entries.binary_search_by_key(&key, |(k, _)| *k)
    }

    /// The indices of the entries whose key is in `range`.
    fn span(&self, range: impl RangeBounds<VirtAddr>) -> std::ops::Range<usize> {
        let lo = match range.start_bound() {
            Bound::Included(&s) => self.entries.partition_point(|(k, _)| *k < s),
            Bound::Excluded(&s) => self.entries.partition_point(|(k, _)| *k <= s),
            Bound::Unbounded => 0,
        };
        let hi = match range.end_bound() {
            Bound::Included(&e) => self.entries.partition_point(|(k, _)| *k <= e),
            Bound::Excluded(&e) => self.entries.partition_point(|(k, _)| *k < e),
            Bound::Unbounded => self.entries.len(),
        };
        lo..hi.max(lo)
    }

    /// Number of VMAs (`mm->map_count`).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The VMA starting at `start`.
    pub fn get(&self, start: &VirtAddr) -> Option<&Vma> {
        self.find(*start).ok().map(|i| &self.entries[i].1)
    }

    /// The VMA starting at `start`, mutably.
    pub fn get_mut(&mut self, start: &VirtAddr) -> Option<&mut Vma> {
        let i = self.find(*start).ok()?;
        Some(&mut self.entries[i].1)
    }

    /// Add `vma` at `start`; the VMA it replaces, if one started there.
    pub fn insert(&mut self, start: VirtAddr, vma: Vma) -> Option<Vma> {
        match self.find(start) {
            Ok(i) => Some(std::mem::replace(&mut self.entries[i].1, vma)),
            Err(i) => {
                self.entries.insert(i, (start, vma));
                None
            }
        }
    }

    /// Remove the VMA starting at `start`.
    pub fn remove(&mut self, start: &VirtAddr) -> Option<Vma> {
        let i = self.find(*start).ok()?;
        Some(self.entries.remove(i).1)
    }

    /// The VMAs in address order, with their start.
    pub fn iter(&self) -> impl DoubleEndedIterator<Item = (&VirtAddr, &Vma)> + '_ {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The start addresses in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = &VirtAddr> + '_ {
        self.entries.iter().map(|(k, _)| k)
    }

    /// The VMAs in address order.
    pub fn values(&self) -> impl DoubleEndedIterator<Item = &Vma> + '_ {
        self.entries.iter().map(|(_, v)| v)
    }

    /// The VMAs whose start is in `range`, in address order.
    pub fn range(
        &self,
        range: impl RangeBounds<VirtAddr>,
    ) -> impl DoubleEndedIterator<Item = (&VirtAddr, &Vma)> + '_ {
        self.entries[self.span(range)].iter().map(|(k, v)| (k, v))
    }

    /// The VMAs whose start is in `range`, mutably.
    pub fn range_mut(
        &mut self,
        range: impl RangeBounds<VirtAddr>,
    ) -> impl DoubleEndedIterator<Item = (&VirtAddr, &mut Vma)> + '_ {
        let span = self.span(range);
        self.entries[span].iter_mut().map(|(k, v)| (&*k, v))
    }
}

impl<'a> IntoIterator for &'a VmaTree {
    type Item = (&'a VirtAddr, &'a Vma);
    type IntoIter = std::iter::Map<
        std::slice::Iter<'a, (VirtAddr, Vma)>,
        fn(&'a (VirtAddr, Vma)) -> (&'a VirtAddr, &'a Vma),
    >;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter().map(|(k, v)| (k, v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pagetable::PgProt;
    use crate::vma::VmFlags;

    fn vma(start: u64, end: u64) -> Vma {
        Vma {
            start: VirtAddr(start),
            end: VirtAddr(end),
            flags: VmFlags::READ,
            pgoff: 0,
            page_prot: PgProt::new(0),
            file: None,
            ops: None,
            anon_vma: false,
            pat_reserved: false,
        }
    }

    #[test]
    fn keeps_address_order_and_answers_ranges_as_a_btreemap() {
        let mut t = VmaTree::new();
        let mut b = std::collections::BTreeMap::new();
        for (s, e) in [
            (0x5000, 0x6000),
            (0x1000, 0x2000),
            (0x3000, 0x4000),
            (0x9000, 0xa000),
        ] {
            assert!(t.insert(VirtAddr(s), vma(s, e)).is_none());
            b.insert(VirtAddr(s), vma(s, e));
        }
        assert!(t.insert(VirtAddr(0x3000), vma(0x3000, 0x3800)).is_some());
        b.insert(VirtAddr(0x3000), vma(0x3000, 0x3800));
        let starts = |it: Vec<&VirtAddr>| it.into_iter().map(|a| a.0).collect::<Vec<_>>();
        assert_eq!(starts(t.keys().collect()), starts(b.keys().collect()));
        for probe in [0u64, 0x1000, 0x2fff, 0x3000, 0x5800, 0x9000, 0xffff] {
            let p = VirtAddr(probe);
            let want = |r: Vec<(&VirtAddr, &Vma)>| {
                r.iter().map(|(k, v)| (k.0, v.end.0)).collect::<Vec<_>>()
            };
            assert_eq!(
                want(t.range(..=p).collect()),
                want(b.range(..=p).collect()),
                "..={probe:#x}"
            );
            assert_eq!(
                want(t.range(..p).collect()),
                want(b.range(..p).collect()),
                "..{probe:#x}"
            );
            assert_eq!(
                want(t.range(p..).collect()),
                want(b.range(p..).collect()),
                "{probe:#x}.."
            );
        }
        assert_eq!(t.remove(&VirtAddr(0x5000)).map(|v| v.end.0), Some(0x6000));
        assert!(t.remove(&VirtAddr(0x5000)).is_none());
        assert_eq!(t.len(), 3);
        if let Some(v) = t.get_mut(&VirtAddr(0x1000)) {
            v.end = VirtAddr(0x1800);
        }
        assert_eq!(t.get(&VirtAddr(0x1000)).map(|v| v.end.0), Some(0x1800));
    }
}
