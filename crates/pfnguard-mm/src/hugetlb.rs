//! hugetlb reservations (mm/hugetlb.c) as far as `memfd_pin_folios()` reaches them: the global
//! `h->resv_huge_pages` count of the default (2 MiB) hstate, the per-inode reserve map, and the
//! allocation from reserves that `memfd_alloc_folio()` (mm/memfd.c) uses for a hugetlb memfd
//! folio nobody faulted in.
//!
//! The pool is taken as large enough (the probe checks `HugePages_Free` first); what the model
//! follows is whether a reservation exists when a folio is taken from it.

use crate::errno::Errno;
use crate::facts::Fact;
use crate::frames::{AllocSpec, FolioFlags, Mapping};
use crate::kernel::Kernel;
use crate::outcome::{Fail, KResult};
use crate::shmem::ShmemInode;
use crate::trace;
use crate::types::Pfn;

/// Base pages in a 2 MiB huge page (`pages_per_huge_page(&default_hstate)` on x86-64).
pub const HPAGE_PMD_NR: u64 = 512;

/// `struct hstate` of the default huge page size: the counters the model follows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Hstate {
    /// `h->resv_huge_pages`: huge pages reserved and not yet allocated. An `unsigned long` in the
    /// kernel; kept signed here so that a decrement without a reservation (6.12's
    /// `alloc_hugetlb_folio_reserve()` without CONFIG_DEBUG_VM) shows as the underflow it is.
    pub resv_huge_pages: i64,
}

/// `hugetlb_reserve_pages(inode, from, to, NULL, 0)`: `region_chg()` counts the huge-page
/// indices in `[from, to)` the inode's reserve map lacks, `hugetlb_acct_memory()` adds them to
/// `h->resv_huge_pages` (the pool is taken as large enough), `region_add()` records them. Returns
/// how many were added (`nr_resv`).
pub fn hugetlb_reserve_pages(k: &mut Kernel, inode: &ShmemInode, from: u64, to: u64) -> i64 {
    let added = inode.resv_add(k, from, to);
    k.hugetlb.resv_huge_pages += added;
    trace!(
        k,
        "mm/hugetlb.c:hugetlb_reserve_pages",
        "huge page index {from}..{to}: {added} reserved, resv_huge_pages {}",
        k.hugetlb.resv_huge_pages
    );
    added
}

/// `hugetlb_unreserve_pages(inode, start, end, 0)`: the reservations of `[from, to)` go back.
pub fn hugetlb_unreserve_pages(k: &mut Kernel, inode: &ShmemInode, from: u64, to: u64) {
    let removed = inode.resv_del(k, from, to);
    k.hugetlb.resv_huge_pages -= removed;
}

/// `alloc_hugetlb_folio_reserve(h, nid, NULL, gfp)` (mm/hugetlb.c): dequeue a free huge page
/// and consume one reservation.
///
/// Before [`Fact::HugetlbReserveGuard`] it dequeues first and then `VM_BUG_ON(!h->
/// resv_huge_pages); h->resv_huge_pages--;`: an unreserved page is handed out and the count
/// underflows. (The VM_BUG_ON exists only with CONFIG_DEBUG_VM, which no Debian build sets; the
/// model leaves it out so that "every option" predictions keep the behaviour of the builds that
/// were probed.) Since, `if (!h->resv_huge_pages) return NULL;` before anything is dequeued.
pub fn alloc_hugetlb_folio_reserve(k: &mut Kernel) -> KResult<Option<Pfn>> {
    const F: &str = "mm/hugetlb.c:alloc_hugetlb_folio_reserve";
    let resv = k.hugetlb.resv_huge_pages;
    if resv <= 0 && k.has(Fact::HugetlbReserveGuard) {
        trace!(k, F, "!h->resv_huge_pages -> NULL");
        return Ok(None);
    }
    let Some(head) = k.frames.alloc(AllocSpec {
        order: 9,
        compound: true,
        mapping: Mapping::File {
            can_writeback: false,
        },
        flags: FolioFlags::HUGETLB,
    }) else {
        trace!(k, F, "dequeue_hugetlb_folio_nodemask: none free -> NULL");
        return Ok(None);
    };
    k.hugetlb.resv_huge_pages -= 1;
    trace!(
        k,
        F,
        "dequeued huge page at pfn {head}; resv_huge_pages {} -> {}{}",
        resv,
        resv - 1,
        if resv <= 0 {
            " (no reservation: VM_BUG_ON is compiled out, the count underflows)"
        } else {
            ""
        }
    );
    Ok(Some(head))
}

/// `memfd_alloc_folio(memfd, idx)` (mm/memfd.c) for a page-cache index `idx` of a memfd with no
/// folio there. A shmem memfd reads it in (`shmem_read_folio()`). A hugetlb memfd (`idx >>=
/// huge_page_order(h)`) gets a folio from [`alloc_hugetlb_folio_reserve`] — since
/// [`Fact::MemfdHugetlbReserve`] after `hugetlb_reserve_pages(inode, idx, idx + 1)`, undone when
/// the allocation fails — added to the page cache (`hugetlb_add_to_page_cache()`); no folio →
/// -ENOMEM. Returns the page at `idx`.
pub fn memfd_alloc_folio(k: &mut Kernel, inode: &ShmemInode, idx: u64) -> KResult<Pfn> {
    const F: &str = "mm/memfd.c:memfd_alloc_folio";
    if !inode.hugetlb {
        return inode.get_page(k, idx);
    }
    let hidx = idx / HPAGE_PMD_NR;
    let mut nr_resv = 0;
    if k.has(Fact::MemfdHugetlbReserve) {
        nr_resv = hugetlb_reserve_pages(k, inode, hidx, hidx + 1);
    }
    let Some(head) = alloc_hugetlb_folio_reserve(k)? else {
        if nr_resv > 0 {
            hugetlb_unreserve_pages(k, inode, hidx, hidx + 1);
        }
        trace!(k, F, "no hugetlb folio for index {hidx} -> -ENOMEM");
        return Err(Fail::Errno(Errno::ENOMEM));
    };
    trace!(
        k,
        F,
        "hugetlb_add_to_page_cache: huge page index {hidx} -> pfn {head}"
    );
    inode.add_huge_folio(k, hidx * HPAGE_PMD_NR, head);
    inode.lookup(k, idx).ok_or(Fail::Errno(Errno::ENOMEM))
}

/// The page-cache lookup of `memfd_pin_folios()` (mm/gup.c: `filemap_get_folios_contig()`), and
/// [`memfd_alloc_folio`] for an index it finds empty: the page at `idx` of the memfd, pinned by
/// the caller.
pub fn memfd_get_folio_page(k: &mut Kernel, inode: &ShmemInode, idx: u64) -> KResult<Pfn> {
    if idx >= inode.size_pages() {
        return Err(Fail::Errno(Errno::EINVAL));
    }
    match inode.lookup(k, idx) {
        Some(p) => Ok(p),
        None => memfd_alloc_folio(k, inode, idx),
    }
}
