//! Giving memory back at the end of a buffer's life: mm/page_alloc.c `__free_pages()` as drivers
//! call it (refcounted, except the tail pages of a non-compound high-order block), device memory
//! a driver frees whatever still maps it, and the report of a freed frame a PTE or a pin still
//! reaches.

use std::collections::BTreeSet;

use crate::frames::FolioFlags;
use crate::kernel::Kernel;
use crate::outcome::Event;
use crate::trace;
use crate::types::{Pfn, VirtAddr};

/// `__free_pages(page, order)` (mm/page_alloc.c:`___free_pages`) on `order`-allocation at `page`.
///
/// A compound page or an order-0 page is refcounted: `put_page_testzero()` drops the caller's
/// reference and the folio goes back to the buddy allocator only when it was the last
/// ([`Kernel::folio_put`]): a pin or a GUP reference keeps it. A non-compound high-order block
/// (dma-direct, the TTM pool) has a reference on its first page only: that page is put as
/// above, and every other page of the block is freed whatever holds it — when the put freed
/// the whole block (`__free_frozen_pages(page, order)`) and, in the `!head` branch, when it did
/// not ("the tail pages of this non-compound high-order page"). A tail page still mapped or
/// referenced is reported as a use-after-free.
pub fn free_pages(k: &mut Kernel, page: Pfn, order: u8) {
    const F: &str = "mm/page_alloc.c:___free_pages";
    let Some(fid) = k.frames.folio_of(page) else {
        return;
    };
    let compound = k.frames.folio(fid).is_large();
    k.folio_put(fid, 1);
    if compound || order == 0 {
        return;
    }
    let nr = 1u64 << order;
    trace!(
        k,
        F,
        "non-compound order-{order} block at pfn {page}: the {} page(s) after the first freed \
         whatever holds them",
        nr - 1
    );
    for i in 1..nr {
        free_frozen_page(k, Pfn(page.0 + i), F);
    }
}

/// `__free_frozen_pages()` of one page (mm/page_alloc.c): back to the buddy allocator without
/// looking at its refcount. A page that still had a reference or a mapping is reported.
fn free_frozen_page(k: &mut Kernel, pfn: Pfn, site: &'static str) {
    let Some(fid) = k.frames.folio_of(pfn) else {
        return;
    };
    let f = k.frames.folio_mut(fid);
    if f.is_freed() {
        return;
    }
    f.flags |= FolioFlags::FREED;
    let (refcount, mapcount) = (f.refcount, f.mapcount);
    if refcount > 0 || mapcount > 0 {
        k.events.push(Event::UseAfterFree {
            pfn,
            holder: format!(
                "{site} freed it with refcount {refcount} and {mapcount} PTE mapping(s) left"
            ),
        });
    }
}

/// A driver gives device memory without `struct page` back to its own allocator (a VRAM
/// manager through drivers/gpu/drm/ttm/ttm_resource.c:ttm_resource_free, a carve-out): nothing
/// counts references to such memory, so it is free at once ([`Frames::free_device`]), and every
/// PTE still mapping it is reported by [`report_freed_reachable`].
///
/// [`Frames::free_device`]: crate::frames::Frames::free_device
pub fn free_device_range(k: &mut Kernel, frames: &[Pfn], site: &'static str) {
    let Some(&first) = frames.first() else {
        return;
    };
    trace!(
        k,
        site,
        "{} device frame(s) from pfn {first} back to the driver's allocator",
        frames.len()
    );
    for &p in frames {
        k.frames.free_device(p, 1);
    }
    report_freed_reachable(k, frames, site);
}

/// After `site` freed `frames`: every present PTE of every mm and every page a kernel
/// subsystem holds ([`Kernel::held`]) that reaches one of them that is now free is a
/// use-after-free (what KASAN or a corrupted page would show later in the real kernel; the model
/// reports it when the memory goes). A frame already reported since is not reported twice.
pub fn report_freed_reachable(k: &mut Kernel, frames: &[Pfn], site: &'static str) {
    let freed: BTreeSet<Pfn> = frames
        .iter()
        .copied()
        .filter(|&p| k.frames.is_freed(p))
        .collect();
    if freed.is_empty() {
        return;
    }
    let mut reported: BTreeSet<Pfn> = k
        .events
        .iter()
        .filter_map(|e| match e {
            Event::UseAfterFree { pfn, .. } => Some(*pfn),
            _ => None,
        })
        .collect();
    let mut found: Vec<(Pfn, String)> = Vec::new();
    for (i, mm) in k.mms.iter().enumerate() {
        for (addr, pte) in mm.pt.collect_in(VirtAddr(0), VirtAddr(u64::MAX)) {
            let p = pte.pfn();
            if pte.present() && freed.contains(&p) && reported.insert(p) {
                found.push((
                    p,
                    format!("a PTE at {addr} of mm {i} still maps it after {site}"),
                ));
            }
        }
    }
    for h in &k.held {
        for &p in &h.pages {
            if freed.contains(&p) && reported.insert(p) {
                found.push((
                    p,
                    format!(
                        "{} still holds it ({}) after {site}",
                        h.holder,
                        if h.pinned { "FOLL_PIN" } else { "FOLL_GET" }
                    ),
                ));
            }
        }
    }
    for (pfn, holder) in found {
        trace!(k, site, "use-after-free: pfn {pfn}: {holder}");
        k.events.push(Event::UseAfterFree { pfn, holder });
    }
}
