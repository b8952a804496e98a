//! get_user_pages: mm/gup.c. The slow path walks VMAs (`check_vma_flags()` is the only place
//! VMA flags gate GUP) and page tables (`follow_page_pte()` → `vm_normal_page()`); the fast path
//! walks page tables locklessly and **never sees a VMA**: on x86 only `pte_special` (or devmap,
//! PROT_NONE, missing USER/RW, the folio checks) keeps it from returning a `struct page`.

use crate::errno::Errno;
use crate::facts::Fact;
use crate::fault::{handle_mm_fault, vm_fault_to_errno};
use crate::frames::{FolioFlags, FolioId, Mapping, GUP_PIN_COUNTING_BIAS};
use crate::kernel::{Kernel, MmId, MmapLock};
use crate::normal_page::vm_normal_page;
use crate::outcome::{Event, Fail, KResult, VmFault};
use crate::trace;
use crate::types::{Pfn, VirtAddr, PAGE_SHIFT, PAGE_SIZE, TASK_SIZE_MAX};
use crate::vma::{FaultFlags, VmFlags, Vma, VmaId};

bitflags::bitflags! {
    /// `FOLL_*` flags (include/linux/mm_types.h, mm/internal.h).
    #[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
    pub struct Foll: u32 {
        #[allow(missing_docs)]
        const WRITE = 1 << 0;
        #[allow(missing_docs)]
        const GET = 1 << 1;
        #[allow(missing_docs)]
        const DUMP = 1 << 2;
        #[allow(missing_docs)]
        const FORCE = 1 << 3;
        #[allow(missing_docs)]
        const NOWAIT = 1 << 4;
        #[allow(missing_docs)]
        const NOFAULT = 1 << 5;
        #[allow(missing_docs)]
        const HWPOISON = 1 << 6;
        #[allow(missing_docs)]
        const ANON = 1 << 7;
        #[allow(missing_docs)]
        const LONGTERM = 1 << 8;
        #[allow(missing_docs)]
        const SPLIT_PMD = 1 << 9;
        #[allow(missing_docs)]
        const PCI_P2PDMA = 1 << 10;
        #[allow(missing_docs)]
        const INTERRUPTIBLE = 1 << 11;
        #[allow(missing_docs)]
        const HONOR_NUMA_FAULT = 1 << 12;
        #[allow(missing_docs)]
        const TOUCH = 1 << 16;
        #[allow(missing_docs)]
        const TRIED = 1 << 17;
        #[allow(missing_docs)]
        const REMOTE = 1 << 18;
        #[allow(missing_docs)]
        const PIN = 1 << 19;
        #[allow(missing_docs)]
        const FAST_ONLY = 1 << 20;
        #[allow(missing_docs)]
        const UNLOCKABLE = 1 << 21;
        #[allow(missing_docs)]
        const MADV_POPULATE = 1 << 22;
    }
}

impl serde::Serialize for Foll {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.bits())
    }
}

impl std::fmt::Debug for Foll {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names = [
            (Foll::WRITE, "WRITE"),
            (Foll::GET, "GET"),
            (Foll::DUMP, "DUMP"),
            (Foll::FORCE, "FORCE"),
            (Foll::NOFAULT, "NOFAULT"),
            (Foll::LONGTERM, "LONGTERM"),
            (Foll::TOUCH, "TOUCH"),
            (Foll::REMOTE, "REMOTE"),
            (Foll::PIN, "PIN"),
            (Foll::FAST_ONLY, "FAST_ONLY"),
            (Foll::MADV_POPULATE, "MADV_POPULATE"),
            (Foll::HWPOISON, "HWPOISON"),
        ];
        let v: Vec<&str> = names
            .iter()
            .filter(|(b, _)| self.contains(*b))
            .map(|(_, n)| *n)
            .collect();
        write!(
            f,
            "FOLL_{}",
            if v.is_empty() {
                "0".into()
            } else {
                v.join("|FOLL_")
            }
        )
    }
}

/// `check_vma_flags()` (mm/gup.c): the only place where VMA flags gate GUP. VM_IO|VM_PFNMAP →
/// -EFAULT (VM_MIXEDMAP alone is **not** refused); LONGTERM on fsdax → -EOPNOTSUPP; secretmem →
/// -EFAULT; writes need VM_WRITE (or FOLL_FORCE on a COW mapping) and, in 6.12, a file mapping
/// that does not need dirty tracking for PIN|LONGTERM; reads need VM_READ (or FORCE+MAYREAD).
pub fn check_vma_flags(k: &mut Kernel, vma: &Vma, gup: Foll) -> Result<(), Errno> {
    const F: &str = "mm/gup.c:check_vma_flags";
    let f = vma.flags;
    let write = gup.contains(Foll::WRITE);
    let r = (|| {
        if f.intersects(VmFlags::IO | VmFlags::PFNMAP) {
            return Err((Errno::EFAULT, "VM_IO|VM_PFNMAP"));
        }
        if gup.contains(Foll::ANON) && !vma.is_anonymous() {
            return Err((Errno::EFAULT, "FOLL_ANON on a file VMA"));
        }
        if gup.contains(Foll::LONGTERM) && vma.is_fsdax() {
            return Err((Errno::EOPNOTSUPP, "FOLL_LONGTERM on fsdax"));
        }
        if gup.contains(Foll::SPLIT_PMD) && vma.is_hugetlb() {
            return Err((Errno::EOPNOTSUPP, "FOLL_SPLIT_PMD on hugetlb"));
        }
        if vma.is_secretmem() {
            return Err((Errno::EFAULT, "secretmem"));
        }
        if write {
            if k.has(Fact::GupWritableFileMapping)
                && !vma.is_anonymous()
                && gup.contains(Foll::PIN | Foll::LONGTERM)
                && vma.needs_dirty_tracking()
            {
                return Err((
                    Errno::EFAULT,
                    "writable_file_mapping_allowed: FOLL_PIN|FOLL_LONGTERM on a VMA that needs dirty tracking",
                ));
            }
            if (!f.contains(VmFlags::WRITE) || f.contains(VmFlags::SHADOW_STACK))
                && (!gup.contains(Foll::FORCE) || vma.is_hugetlb() || !f.is_cow_mapping())
            {
                return Err((Errno::EFAULT, "write to a VMA without VM_WRITE"));
            }
        } else if !f.contains(VmFlags::READ)
            && (!gup.contains(Foll::FORCE) || !f.contains(VmFlags::MAYREAD))
        {
            return Err((Errno::EFAULT, "read of a VMA without VM_READ"));
        }
        Ok(())
    })();
    match r {
        Ok(()) => {
            trace!(k, F, "VMA {} passes for {gup:?}", f.names());
            Ok(())
        }
        Err((e, why)) => {
            trace!(k, F, "VMA {}: {why} -> -{e}", f.names());
            Err(e)
        }
    }
}

/// `try_grab_folio()` (mm/gup.c, slow path; 6.1 `try_grab_page()`): FOLL_GET adds a reference;
/// FOLL_PIN adds `GUP_PIN_COUNTING_BIAS` to a small folio, or 1 reference plus 1 `_pincount` to a
/// large one; the zero page is never pinned.
pub fn try_grab_folio(k: &mut Kernel, fid: FolioId, gup: Foll) -> Result<(), Errno> {
    let f = k.frames.folio(fid);
    if f.refcount <= 0 {
        k.warn_once("mm/gup.c:try_grab_folio", "folio_ref_count(folio) <= 0");
        return Err(Errno::ENOMEM);
    }
    if gup.contains(Foll::GET) {
        k.folio_get(fid, 1);
    } else if gup.contains(Foll::PIN) {
        if f.flags.contains(FolioFlags::ZERO) {
            return Ok(());
        }
        if f.is_large() {
            k.frames.folio_mut(fid).pincount += 1;
            k.folio_get(fid, 1);
        } else {
            k.folio_get(fid, GUP_PIN_COUNTING_BIAS);
        }
    }
    Ok(())
}

/// What `follow_page_pte()` found.
enum Follow {
    /// A grabbed page.
    Page(Pfn),
    /// Nothing usable: fault it in.
    NoPage,
    /// An error (`-EEXIST` for a pfn without page, `-EFAULT` for FOLL_DUMP holes, ...).
    Err(Errno),
}

/// `follow_page_pte()` (mm/gup.c).
fn follow_page_pte(k: &mut Kernel, mmid: MmId, vma: &Vma, addr: VirtAddr, gup: Foll) -> Follow {
    const F: &str = "mm/gup.c:follow_page_pte";
    let pte = k.mm(mmid).pt.get(addr);
    if !pte.present() {
        if gup.contains(Foll::DUMP)
            && (vma.is_anonymous() || !vma.ops.as_ref().is_some_and(|o| o.has_fault()))
            && pte.is_none()
        {
            return Follow::Err(Errno::EFAULT);
        }
        trace!(k, F, "PTE at {addr} not present: fault it in");
        return Follow::NoPage;
    }
    if pte.protnone() {
        return Follow::NoPage;
    }
    let page = vm_normal_page(k, vma, addr, pte);
    if gup.contains(Foll::WRITE) && !pte.write() {
        let can = gup.contains(Foll::FORCE)
            && !vma.flags.intersects(VmFlags::SHARED | VmFlags::MAYSHARE)
            && vma.flags.contains(VmFlags::MAYWRITE)
            && !vma.flags.contains(VmFlags::WRITE)
            && page.is_some_and(|p| {
                k.frames
                    .folio_of(p)
                    .is_some_and(|f| k.frames.folio(f).is_anon())
            });
        if !can {
            trace!(k, F, "FOLL_WRITE on a read-only PTE: write fault first");
            return Follow::NoPage;
        }
    }
    let devmap = pte.devmap(crate::pagetable::devmap_bit(k));
    let page = match page {
        Some(p) => p,
        None if devmap && gup.intersects(Foll::GET | Foll::PIN) => {
            if k.frames.folio_of(pte.pfn()).is_some() {
                pte.pfn()
            } else {
                return Follow::NoPage;
            }
        }
        None => {
            if gup.contains(Foll::DUMP) {
                trace!(
                    k,
                    F,
                    "no struct page and FOLL_DUMP -> -EFAULT (a hole in the dump)"
                );
                return Follow::Err(Errno::EFAULT);
            }
            if k.frames.is_zero_pfn(pte.pfn()) {
                pte.pfn()
            } else {
                // follow_pfn_pte(): before Fact::GupPfnPteEexistBails (5.10.262 mm/gup.c:
                // follow_pfn_pte) FOLL_GET has no page to take a reference on: -EFAULT.
                if gup.contains(Foll::GET) && !k.has(Fact::GupPfnPteEexistBails) {
                    trace!(
                        k,
                        "mm/gup.c:follow_pfn_pte",
                        "special PTE at {addr} and FOLL_GET: no page to get a reference on -> -EFAULT"
                    );
                    return Follow::Err(Errno::EFAULT);
                }
                // follow_pfn_pte(): touch the PTE, no page to return.
                if gup.contains(Foll::TOUCH) {
                    let mut e = pte.mkyoung();
                    if gup.contains(Foll::WRITE) {
                        e = e.mkdirty();
                    }
                    k.mm_mut(mmid).pt.set(addr, e);
                }
                trace!(
                    k,
                    "mm/gup.c:follow_pfn_pte",
                    "special PTE at {addr}, vm_normal_page() = NULL: no struct page -> -EEXIST"
                );
                return Follow::Err(Errno::EEXIST);
            }
        }
    };
    let Some(fid) = k.frames.folio_of(page) else {
        return Follow::Err(Errno::EFAULT);
    };
    if k.frames.folio(fid).is_freed() {
        k.events.push(Event::UseAfterFree {
            pfn: page,
            holder: format!("GUP reached it through the PTE at {addr}"),
        });
    }
    if let Err(e) = try_grab_folio(k, fid, gup) {
        return Follow::Err(e);
    }
    if gup.contains(Foll::TOUCH) {
        let f = k.frames.folio_mut(fid);
        if gup.contains(Foll::WRITE) {
            f.flags |= FolioFlags::DIRTY;
        }
        f.flags |= FolioFlags::REFERENCED;
    }
    trace!(
        k,
        F,
        "normal PTE at {addr}: vm_normal_page() = pfn {page}; {} -> refcount {}",
        if gup.contains(Foll::PIN) {
            "pinned"
        } else {
            "referenced"
        },
        k.frames.folio(fid).refcount
    );
    Follow::Page(page)
}

/// `faultin_page()` (mm/gup.c): FOLL_NOFAULT → -EFAULT; else `handle_mm_fault()` with
/// FAULT_FLAG_WRITE for FOLL_WRITE; VM_FAULT_ERROR → `vm_fault_to_errno()`.
fn faultin_page(k: &mut Kernel, vma: VmaId, addr: VirtAddr, gup: Foll) -> KResult<()> {
    if gup.contains(Foll::NOFAULT) {
        return Err(Errno::EFAULT.into());
    }
    trace!(
        k,
        "mm/gup.c:faultin_page",
        "handle_mm_fault({addr}, {})",
        if gup.contains(Foll::WRITE) {
            "FAULT_FLAG_WRITE"
        } else {
            "read"
        }
    );
    k.trace.enter();
    let r = handle_mm_fault(
        k,
        vma,
        addr,
        FaultFlags {
            write: gup.contains(Foll::WRITE),
            remote: gup.contains(Foll::REMOTE),
            unshare: false,
        },
    );
    k.trace.leave();
    let r = r?;
    if r.intersects(VmFault::ERROR) {
        let e = vm_fault_to_errno(r).unwrap_or(Errno::EFAULT);
        let e = if r.intersects(VmFault::HWPOISON) && gup.contains(Foll::HWPOISON) {
            Errno::EHWPOISON
        } else {
            e
        };
        trace!(k, "mm/gup.c:faultin_page", "{r:?} -> -{e}");
        return Err(e.into());
    }
    Ok(())
}

/// `__get_user_pages()` (mm/gup.c): walk `[start, start + nr pages)` VMA by VMA. Returns the
/// number of pages done, or the error if none was. With `pages == None` (populate) a pfn without
/// page (-EEXIST) is skipped; with pages it ends the walk with -EEXIST
/// ([`Fact::GupPfnPteEexistBails`]); before that fact (5.10.262 mm/gup.c:__get_user_pages
/// `goto next_page`) it is skipped and counted even when pages were asked for, `pages[i]` left
/// unset: the page count the caller gets is larger than the pages it holds.
pub fn get_user_pages_slow(
    k: &mut Kernel,
    mm: MmId,
    start: VirtAddr,
    nr: u64,
    gup: Foll,
    mut pages: Option<&mut Vec<Pfn>>,
) -> KResult<u64> {
    k.alive()?;
    const F: &str = "mm/gup.c:__get_user_pages";
    trace!(k, F, "{start}, {nr} page(s), {gup:?}");
    let mut done = 0u64;
    let mut addr = start.page_down();
    let mut cur: Option<Vma> = None;
    let mut ret: Option<Fail> = None;
    let prev_lock = k.mm(mm).lock;
    if prev_lock == MmapLock::Unlocked {
        k.mm_mut(mm).lock = MmapLock::Read;
    }
    let mut spins = 0u32;
    'walk: while done < nr {
        if cur.as_ref().is_none_or(|v| addr >= v.end) {
            let found = k.mm(mm).vma_at(addr).cloned();
            if gup.contains(Foll::MADV_POPULATE) {
                let Some(v) = found else {
                    trace!(k, F, "no VMA at {addr} -> -ENOMEM");
                    ret = Some(Errno::ENOMEM.into());
                    break;
                };
                if check_vma_flags(k, &v, gup).is_err() {
                    ret = Some(Errno::EINVAL.into());
                    break;
                }
                cur = Some(v);
            } else {
                let Some(v) = found else {
                    trace!(k, F, "no VMA at {addr} -> -EFAULT");
                    ret = Some(Errno::EFAULT.into());
                    break;
                };
                if let Err(e) = check_vma_flags(k, &v, gup) {
                    ret = Some(e.into());
                    break;
                }
                cur = Some(v);
            }
        }
        let Some(mut v) = cur.clone() else {
            break;
        };
        loop {
            match follow_page_pte(k, mm, &v, addr, gup) {
                Follow::Page(p) => {
                    if let Some(pg) = pages.as_deref_mut() {
                        pg.push(p);
                    }
                    break;
                }
                Follow::Err(Errno::EEXIST) if pages.is_none() => break,
                Follow::Err(Errno::EEXIST) if !k.has(Fact::GupPfnPteEexistBails) => {
                    trace!(
                        k,
                        F,
                        "-EEXIST at {addr}: goto next_page, pages[i] left unset, counted"
                    );
                    break;
                }
                Follow::Err(e) => {
                    ret = Some(e.into());
                    break 'walk;
                }
                Follow::NoPage => {
                    spins += 1;
                    if spins > k.livelock_limit * 4 {
                        k.events.push(Event::Livelock { site: F });
                        ret = Some(Errno::EINTR.into());
                        break 'walk;
                    }
                    let id = VmaId { mm, start: v.start };
                    if let Err(e) = faultin_page(k, id, addr, gup) {
                        if let Fail::Bug(_) = e {
                            k.mm_mut(mm).lock = prev_lock;
                            return Err(e);
                        }
                        ret = Some(e);
                        break 'walk;
                    }
                    // `goto retry` → follow_page_mask(vma, ...) reads the same `struct
                    // vm_area_struct`, so flags ->fault set (a driver calling
                    // remap_pfn_range() from its fault handler sets VM_IO|VM_PFNMAP) are seen
                    // by the next follow_page_pte()'s vm_normal_page().
                    if let Some(nv) = k.mm(mm).vma_at(addr).cloned() {
                        v = nv.clone();
                        cur = Some(nv);
                    }
                }
            }
        }
        done += 1;
        addr = addr.add_pages(1);
    }
    k.mm_mut(mm).lock = prev_lock;
    if done > 0 {
        trace!(k, F, "-> {done} page(s)");
        Ok(done)
    } else {
        let e = ret.unwrap_or(Fail::Errno(Errno::EFAULT));
        trace!(k, F, "-> {e}");
        Err(e)
    }
}

/// `check_and_migrate_movable_pages()` (mm/gup.c): if any pinned folio may not be pinned long
/// term (CMA or ISOLATE pageblock, ZONE_MOVABLE), unpin everything, migrate the folios that are on
/// the LRU and return -EAGAIN so the caller pins again. A folio that is not on the LRU is
/// counted but never migrated, so the caller loops (6.1 and 6.12 have this form,
/// [`Fact::GupLongtermMovable`]). Before that fact, 5.10.262
/// mm/gup.c:check_and_migrate_cma_pages: only CMA pages are looked at, and one that cannot be
/// isolated from the LRU stays pinned.
fn check_and_migrate_movable_pages(k: &mut Kernel, pages: &mut Vec<Pfn>) -> Result<(), Errno> {
    let movable_zone = k.has(Fact::GupLongtermMovable);
    let site: &str = if movable_zone {
        "mm/gup.c:check_and_migrate_movable_pages"
    } else {
        "mm/gup.c:check_and_migrate_cma_pages"
    };
    let mut collected = 0;
    let mut movable: Vec<FolioId> = Vec::new();
    for &p in pages.iter() {
        let Some(fid) = k.frames.folio_of(p) else {
            continue;
        };
        let f = k.frames.folio(fid);
        let pinnable = if movable_zone {
            f.is_longterm_pinnable()
        } else {
            !f.flags.contains(FolioFlags::CMA)
        };
        if pinnable {
            continue;
        }
        collected += 1;
        if f.flags.contains(FolioFlags::LRU) && !movable.contains(&fid) {
            movable.push(fid);
        }
    }
    if collected == 0 || (!movable_zone && movable.is_empty()) {
        if collected > 0 {
            trace!(
                k,
                site,
                "{collected} CMA page(s) not on the LRU: isolation fails, pinned where they are"
            );
        }
        return Ok(());
    }
    trace!(
        k,
        site,
        "{collected} folio(s) not long-term pinnable ({} on the LRU): unpin all, migrate, -EAGAIN",
        movable.len()
    );
    let all = std::mem::take(pages);
    k.unpin_user_pages(&all);
    for fid in movable {
        let old = k.frames.folio(fid).head;
        if let Some(new) = k
            .frames
            .migrate(fid, FolioFlags::CMA | FolioFlags::ZONE_MOVABLE)
        {
            rmap_move(k, old, new);
            trace!(
                k,
                "mm/migrate.c:migrate_pages",
                "folio {old} moved to {new}"
            );
        } else {
            return Err(Errno::ENOMEM);
        }
    }
    Err(Errno::EAGAIN)
}

/// Re-point every PTE that maps `old` at `new` (the rmap walk of migration).
fn rmap_move(k: &mut Kernel, old: Pfn, new: Pfn) {
    for m in k.mms.iter_mut() {
        let ranges: Vec<(VirtAddr, VirtAddr)> = m.vmas.values().map(|v| (v.start, v.end)).collect();
        for (s, e) in ranges {
            for (a, pte) in m.pt.collect_in(s, e) {
                if pte.present() && pte.pfn() == old {
                    m.pt.set(a, crate::pagetable::Pte::new(new, pte.pgprot()));
                }
            }
        }
    }
}

/// `__gup_longterm_locked()` (mm/gup.c): without FOLL_LONGTERM a plain `__get_user_pages()`;
/// with it, pin and `check_and_migrate_movable_pages()` until it stops returning -EAGAIN.
pub fn gup_longterm_locked(
    k: &mut Kernel,
    mm: MmId,
    start: VirtAddr,
    nr: u64,
    gup: Foll,
    pages: Option<&mut Vec<Pfn>>,
) -> KResult<u64> {
    let Some(out) = pages else {
        return longterm_locked(k, mm, start, nr, gup, None);
    };
    let before = out.len();
    let r = longterm_locked(k, mm, start, nr, gup, Some(&mut *out));
    k.gup_returned += (out.len() - before) as u64;
    r
}

fn longterm_locked(
    k: &mut Kernel,
    mm: MmId,
    start: VirtAddr,
    nr: u64,
    gup: Foll,
    pages: Option<&mut Vec<Pfn>>,
) -> KResult<u64> {
    if !gup.contains(Foll::LONGTERM) {
        return get_user_pages_slow(k, mm, start, nr, gup, pages);
    }
    let Some(out) = pages else {
        return get_user_pages_slow(k, mm, start, nr, gup, None);
    };
    const F: &str = "mm/gup.c:__gup_longterm_locked";
    for _ in 0..k.livelock_limit {
        let mut got = Vec::new();
        let n = get_user_pages_slow(k, mm, start, nr, gup, Some(&mut got))?;
        match check_and_migrate_movable_pages(k, &mut got) {
            Ok(()) => {
                out.extend(got);
                return Ok(n);
            }
            Err(Errno::EAGAIN) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    trace!(k, F, "check_and_migrate_movable_pages keeps returning -EAGAIN: livelock until a fatal signal -> -EINTR");
    k.events.push(Event::Livelock { site: F });
    Err(Errno::EINTR.into())
}

/// `gup_fast_folio_allowed()` (6.12 mm/gup.c); 6.1 `gup_pte_range()` only tests
/// `page_is_secretmem()`.
pub fn gup_fast_folio_allowed(k: &Kernel, fid: FolioId, gup: Foll) -> bool {
    let f = k.frames.folio(fid);
    match k.has(Fact::GupFastFolioAllowed) {
        false => f.mapping != Mapping::Secretmem,
        true => {
            let reject_file = gup.contains(Foll::PIN | Foll::LONGTERM | Foll::WRITE);
            let check_secretmem = k.config.secretmem && !f.is_large();
            if !reject_file && !check_secretmem {
                return true;
            }
            if f.flags.contains(FolioFlags::SLAB) {
                return false;
            }
            if f.flags.contains(FolioFlags::HUGETLB) {
                return true;
            }
            match f.mapping {
                // 7.3: a NULL mapping proves the folio is not secretmem, so only a long-term
                // writable pin falls back ([`Fact::GupFastNullMapping`]); before, any does.
                Mapping::None => k.has(Fact::GupFastNullMapping) && !reject_file,
                Mapping::Anon => true,
                Mapping::Secretmem => !check_secretmem && !reject_file,
                Mapping::Shmem => true,
                Mapping::File { .. } => !reject_file,
            }
        }
    }
}

/// `try_grab_folio_fast()` (6.12; 6.1 `try_grab_folio()`): FOLL_GET adds a reference (fails
/// on refcount 0); FOLL_PIN also refuses unpinnable folios for LONGTERM, then counts the pin.
fn try_grab_folio_fast(k: &mut Kernel, fid: FolioId, gup: Foll) -> bool {
    let f = k.frames.folio(fid);
    if f.refcount <= 0 {
        return false;
    }
    if gup.contains(Foll::GET) {
        k.frames.folio_mut(fid).refcount += 1;
        return true;
    }
    if f.flags.contains(FolioFlags::ZERO) {
        return true;
    }
    if gup.contains(Foll::LONGTERM) && k.has(Fact::GupLongtermMovable) && !f.is_longterm_pinnable()
    {
        return false;
    }
    let f = k.frames.folio_mut(fid);
    if f.is_large() {
        f.refcount += 1;
        f.pincount += 1;
    } else {
        f.refcount += GUP_PIN_COUNTING_BIAS;
    }
    true
}

fn gup_put_folio(k: &mut Kernel, fid: FolioId, gup: Foll) {
    if gup.contains(Foll::PIN) {
        let pfn = k.frames.folio(fid).head;
        k.unpin_page(pfn);
    } else {
        k.folio_put(fid, 1);
    }
}

/// Why the fast walk stopped (for traces).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastStop {
    /// Every page was taken.
    Done,
    /// No page table / PTE not present.
    NotPresent,
    /// PROT_NONE.
    Protnone,
    /// `pte_access_permitted()` failed.
    NotPermitted,
    /// devmap PTE with FOLL_LONGTERM.
    DevmapLongterm,
    /// `pte_special()`.
    Special,
    /// The grab failed (refcount 0, LONGTERM on an unpinnable folio).
    Grab,
    /// `gup_fast_folio_allowed()` refused the folio.
    FolioNotAllowed,
    /// `write_protect_seq` odd (fork in progress) with FOLL_PIN.
    ForkInProgress,
}

/// `gup_fast()` (6.12; 6.1 `lockless_pages_from_mm()`): the lockless walk. Stops at the first
/// entry it cannot take and returns how many it took.
pub fn gup_fast(
    k: &mut Kernel,
    mm: MmId,
    start: VirtAddr,
    nr: u64,
    gup: Foll,
    pages: &mut Vec<Pfn>,
) -> (u64, FastStop) {
    let m = &k.mms[mm.0 as usize];
    if gup.contains(Foll::PIN) && m.write_protect_seq & 1 == 1 {
        return (0, FastStop::ForkInProgress);
    }
    let devmap_bit = crate::pagetable::devmap_bit(k);
    let protnone_bails = k.has(Fact::GupFastProtnoneBails);
    let write = gup.contains(Foll::WRITE);
    let end = start.0 + nr * PAGE_SIZE;
    let mut addr = start.0;
    let mut got = 0u64;
    let mut stop = FastStop::Done;
    pages.reserve(nr as usize);
    'outer: while addr < end {
        let pt = &k.mms[mm.0 as usize].pt;
        let Some((chunk, idx)) = pt.chunk(VirtAddr(addr)) else {
            stop = FastStop::NotPresent;
            break;
        };
        let chunk = *chunk;
        for pte in chunk.iter().skip(idx) {
            if addr >= end {
                break 'outer;
            }
            let pte = *pte;
            if pte.protnone() && (protnone_bails || !pte.present()) {
                stop = FastStop::Protnone;
                break 'outer;
            }
            if !pte.access_permitted(write) {
                stop = if pte.present() {
                    FastStop::NotPermitted
                } else {
                    FastStop::NotPresent
                };
                break 'outer;
            }
            if pte.devmap(devmap_bit) {
                if gup.contains(Foll::LONGTERM) {
                    stop = FastStop::DevmapLongterm;
                    break 'outer;
                }
            } else if pte.special() {
                stop = FastStop::Special;
                break 'outer;
            }
            let Some(fid) = k.frames.folio_of(pte.pfn()) else {
                stop = FastStop::Grab;
                break 'outer;
            };
            if !try_grab_folio_fast(k, fid, gup) {
                stop = FastStop::Grab;
                break 'outer;
            }
            if !gup_fast_folio_allowed(k, fid, gup) {
                gup_put_folio(k, fid, gup);
                stop = FastStop::FolioNotAllowed;
                break 'outer;
            }
            let f = k.frames.folio_mut(fid);
            f.flags |= FolioFlags::REFERENCED;
            let freed = f.is_freed();
            if freed {
                k.events.push(Event::UseAfterFree {
                    pfn: pte.pfn(),
                    holder: "fast GUP reached it through a PTE".into(),
                });
            }
            pages.push(pte.pfn());
            got += 1;
            addr += PAGE_SIZE;
        }
    }
    (got, stop)
}

fn explain_stop(s: FastStop) -> &'static str {
    match s {
        FastStop::Done => "all pages taken locklessly",
        FastStop::NotPresent => "PTE not present",
        FastStop::Protnone => "pte_protnone",
        FastStop::NotPermitted => "!pte_access_permitted",
        FastStop::DevmapLongterm => "pte_devmap with FOLL_LONGTERM",
        FastStop::Special => "pte_special: no struct page behind this PTE",
        FastStop::Grab => "folio could not be grabbed (refcount 0, or not long-term pinnable)",
        FastStop::FolioNotAllowed => "gup_fast_folio_allowed() refused the folio (mapping NULL under SECRETMEM, or file-backed LONGTERM|WRITE pin)",
        FastStop::ForkInProgress => "mm->write_protect_seq odd (fork in progress)",
    }
}

/// `gup_fast_fallback()` (6.12; 6.1 `internal_get_user_pages_fast()`): flag validation, the
/// lockless walk, then the slow path (`__gup_longterm_locked()` with FOLL_TOUCH) for the rest.
/// A slow-path error after a partial fast success returns the partial count.
pub fn gup_fast_fallback(
    k: &mut Kernel,
    mm: MmId,
    start: VirtAddr,
    nr: u64,
    gup: Foll,
    pages: &mut Vec<Pfn>,
) -> KResult<u64> {
    k.alive()?;
    const F: &str = "mm/gup.c:gup_fast_fallback";
    let allowed = Foll::WRITE
        | Foll::LONGTERM
        | Foll::FORCE
        | Foll::PIN
        | Foll::GET
        | Foll::FAST_ONLY
        | Foll::NOFAULT
        | Foll::PCI_P2PDMA
        | Foll::HONOR_NUMA_FAULT;
    if !gup.difference(allowed).is_empty() {
        k.warn_once(F, "gup_flags & ~(allowed fast-GUP flags)");
        return Err(Errno::EINVAL.into());
    }
    if gup.contains(Foll::PIN) {
        k.mm_mut(mm).has_pinned = true;
    }
    let start = start.page_down();
    let len = nr << PAGE_SHIFT;
    let Some(end) = start.0.checked_add(len) else {
        return if !k.has(Fact::GupFastOverflowChecked) {
            Ok(0)
        } else {
            Err(Errno::EOVERFLOW.into())
        };
    };
    if end > TASK_SIZE_MAX {
        return Err(Errno::EFAULT.into());
    }
    let (got, stop) = gup_fast(k, mm, start, nr, gup, pages);
    k.gup_returned += got;
    trace!(
        k,
        "mm/gup.c:gup_fast_pte_range",
        "lockless walk (no VMA consulted): {got}/{nr} page(s){}",
        if got == nr {
            String::new()
        } else {
            format!(
                "; stopped at {}: {}",
                start.add_pages(got),
                explain_stop(stop)
            )
        }
    );
    if got == nr || gup.contains(Foll::FAST_ONLY) {
        return Ok(got);
    }
    trace!(
        k,
        F,
        "fall back to the slow path for the remaining {} page(s)",
        nr - got
    );
    k.trace.enter();
    let r = gup_longterm_locked(
        k,
        mm,
        start.add_pages(got),
        nr - got,
        Foll(gup.0 | Foll::TOUCH.0 | Foll::UNLOCKABLE.0),
        Some(pages),
    );
    k.trace.leave();
    match r {
        Ok(n) => Ok(got + n),
        Err(Fail::Bug(b)) => Err(Fail::Bug(b)),
        Err(e) if got > 0 => {
            trace!(
                k,
                F,
                "slow path failed ({e}) after {got} fast page(s): return {got}"
            );
            Ok(got)
        }
        Err(e) => Err(e),
    }
}

/// `is_valid_gup_args()` (mm/gup.c): FOLL_LONGTERM needs FOLL_PIN, GET and PIN exclude each
/// other, GET/PIN need a pages array.
fn valid_gup_args(gup: Foll, have_pages: bool) -> bool {
    if gup.contains(Foll::LONGTERM) && !gup.contains(Foll::PIN) {
        return false;
    }
    if gup.contains(Foll::GET) && gup.contains(Foll::PIN) {
        return false;
    }
    if gup.intersects(Foll::GET | Foll::PIN) && !have_pages {
        return false;
    }
    true
}

/// One of the exported GUP entry points: the flags it adds and the path it takes.
struct Entry {
    /// `mm/gup.c:<name>`, for traces.
    name: &'static str,
    /// Flags the wrapper adds to the caller's.
    adds: Foll,
    /// Fast path first (`gup_fast_fallback()`), or straight to `__gup_longterm_locked()`.
    fast: bool,
}

/// The common body of the wrappers: `is_valid_gup_args()` (-EINVAL, or 0 pages for the
/// `pin_user_pages*()` family from [`Fact::GupValidArgs`] — for `pin_user_pages_fast()` only
/// until [`Fact::GupPinFastInvalidEinval`]), then the walk.
fn gup_entry(
    k: &mut Kernel,
    e: Entry,
    mm: MmId,
    start: VirtAddr,
    nr: u64,
    gup: Foll,
    pages: &mut Vec<Pfn>,
) -> KResult<u64> {
    k.alive()?;
    let gup = gup | e.adds;
    if !valid_gup_args(gup, true) {
        let zero = gup.contains(Foll::PIN)
            && k.has(Fact::GupValidArgs)
            && (!e.fast || !k.has(Fact::GupPinFastInvalidEinval));
        return if zero {
            Ok(0)
        } else {
            Err(Errno::EINVAL.into())
        };
    }
    trace!(k, e.name, "{start}, {nr} page(s), {gup:?}");
    k.trace.enter();
    let r = if e.fast {
        gup_fast_fallback(k, mm, start, nr, gup, pages)
    } else {
        gup_longterm_locked(k, mm, start, nr, gup, Some(pages))
    };
    k.trace.leave();
    r
}

/// `get_user_pages()` (mm/gup.c): FOLL_GET|FOLL_TOUCH on the current mm, slow path.
pub fn get_user_pages(
    k: &mut Kernel,
    mm: MmId,
    start: VirtAddr,
    nr: u64,
    gup: Foll,
    pages: &mut Vec<Pfn>,
) -> KResult<u64> {
    let e = Entry {
        name: "mm/gup.c:get_user_pages",
        adds: Foll::GET | Foll::TOUCH,
        fast: false,
    };
    gup_entry(k, e, mm, start, nr, gup, pages)
}

/// `pin_user_pages()` (mm/gup.c): FOLL_PIN|FOLL_TOUCH, slow path; invalid arguments return 0
/// pages (6.12) or -EINVAL (6.1).
pub fn pin_user_pages(
    k: &mut Kernel,
    mm: MmId,
    start: VirtAddr,
    nr: u64,
    gup: Foll,
    pages: &mut Vec<Pfn>,
) -> KResult<u64> {
    let e = Entry {
        name: "mm/gup.c:pin_user_pages",
        adds: Foll::PIN | Foll::TOUCH,
        fast: false,
    };
    gup_entry(k, e, mm, start, nr, gup, pages)
}

/// `get_user_pages_fast()` (mm/gup.c): FOLL_GET, fast then slow.
pub fn get_user_pages_fast(
    k: &mut Kernel,
    mm: MmId,
    start: VirtAddr,
    nr: u64,
    gup: Foll,
    pages: &mut Vec<Pfn>,
) -> KResult<u64> {
    let e = Entry {
        name: "mm/gup.c:get_user_pages_fast",
        adds: Foll::GET,
        fast: true,
    };
    gup_entry(k, e, mm, start, nr, gup, pages)
}

/// `pin_user_pages_fast()` (mm/gup.c): FOLL_PIN, fast then slow.
pub fn pin_user_pages_fast(
    k: &mut Kernel,
    mm: MmId,
    start: VirtAddr,
    nr: u64,
    gup: Foll,
    pages: &mut Vec<Pfn>,
) -> KResult<u64> {
    let e = Entry {
        name: "mm/gup.c:pin_user_pages_fast",
        adds: Foll::PIN,
        fast: true,
    };
    gup_entry(k, e, mm, start, nr, gup, pages)
}

/// `get_user_page_fast_only()` (include/linux/mm.h): FOLL_GET|FOLL_FAST_ONLY, one page.
pub fn get_user_page_fast_only(k: &mut Kernel, mm: MmId, addr: VirtAddr, gup: Foll) -> Option<Pfn> {
    let mut pages = Vec::new();
    match gup_fast_fallback(
        k,
        mm,
        addr,
        1,
        gup | Foll::GET | Foll::FAST_ONLY,
        &mut pages,
    ) {
        Ok(1) => pages.first().copied(),
        _ => None,
    }
}

/// `get_user_pages_remote()` (mm/gup.c): FOLL_GET|FOLL_TOUCH|FOLL_REMOTE on another mm.
pub fn get_user_pages_remote(
    k: &mut Kernel,
    mm: MmId,
    start: VirtAddr,
    nr: u64,
    gup: Foll,
    pages: &mut Vec<Pfn>,
) -> KResult<u64> {
    let e = Entry {
        name: "mm/gup.c:get_user_pages_remote",
        adds: Foll::GET | Foll::TOUCH | Foll::REMOTE,
        fast: false,
    };
    gup_entry(k, e, mm, start, nr, gup, pages)
}

/// `pin_user_pages_remote()` (mm/gup.c): FOLL_PIN|FOLL_TOUCH|FOLL_REMOTE; invalid arguments
/// return 0 pages (6.12) or -EINVAL (6.1).
pub fn pin_user_pages_remote(
    k: &mut Kernel,
    mm: MmId,
    start: VirtAddr,
    nr: u64,
    gup: Foll,
    pages: &mut Vec<Pfn>,
) -> KResult<u64> {
    let e = Entry {
        name: "mm/gup.c:pin_user_pages_remote",
        adds: Foll::PIN | Foll::TOUCH | Foll::REMOTE,
        fast: false,
    };
    gup_entry(k, e, mm, start, nr, gup, pages)
}

/// `populate_vma_page_range()` (mm/gup.c): `__get_user_pages()` without a pages array,
/// FOLL_TOUCH, FOLL_WRITE for private writable VMAs; FOLL_FORCE and the PROT_NONE rule per
/// [`KernelProfile::populate_refuses_inaccessible`](crate::KernelProfile).
pub fn populate_vma_page_range(
    k: &mut Kernel,
    vma: VmaId,
    start: VirtAddr,
    end: VirtAddr,
) -> KResult<u64> {
    let f = k.vma_or_fault(vma)?.flags;
    let accessible = f.intersects(VmFlags::READ | VmFlags::WRITE | VmFlags::EXEC);
    let private_writable = f.intersection(VmFlags::WRITE | VmFlags::SHARED) == VmFlags::WRITE;
    let mut gup = Foll::TOUCH;
    if private_writable {
        gup |= Foll::WRITE;
    }
    if k.has(Fact::PopulateRefusesInaccessible) {
        if !accessible {
            return Err(Errno::EFAULT.into());
        }
        if !private_writable {
            gup |= Foll::FORCE;
        }
    } else if accessible {
        gup |= Foll::FORCE;
    }
    let nr = (end.0 - start.0) >> PAGE_SHIFT;
    get_user_pages_slow(k, vma.mm, start, nr, gup, None)
}

/// `__mm_populate()` (mm/gup.c) as `mm_populate()` calls it (errors ignored): VM_IO|VM_PFNMAP
/// VMAs are skipped.
pub fn mm_populate(k: &mut Kernel, mm: MmId, start: VirtAddr, len: u64) {
    let end = VirtAddr(start.0 + len);
    let vmas: Vec<(VirtAddr, VirtAddr, VmFlags)> = k
        .mm(mm)
        .vmas
        .values()
        .filter(|v| v.start < end && v.end > start)
        .map(|v| (v.start, v.end, v.flags))
        .collect();
    for (s, e, f) in vmas {
        if f.intersects(VmFlags::IO | VmFlags::PFNMAP) {
            trace!(
                k,
                "mm/gup.c:__mm_populate",
                "VMA {s} is VM_IO|VM_PFNMAP: skipped"
            );
            continue;
        }
        let _ = populate_vma_page_range(k, VmaId { mm, start: s }, s.max(start), e.min(end));
    }
}

/// `faultin_page_range()` (6.12 mm/gup.c; 6.1 `faultin_vma_page_range()`): MADV_POPULATE_*:
/// no VMA → -ENOMEM, incompatible VMA → -EINVAL, SIGBUS/SIGSEGV → -EFAULT.
pub fn faultin_page_range(
    k: &mut Kernel,
    mm: MmId,
    start: VirtAddr,
    end: VirtAddr,
    write: bool,
) -> KResult<u64> {
    let mut gup = Foll::TOUCH | Foll::MADV_POPULATE;
    if write {
        gup |= Foll::WRITE;
    }
    let nr = (end.0 - start.0) >> PAGE_SHIFT;
    trace!(k, "mm/gup.c:faultin_page_range", "{start}..{end}, {gup:?}");
    k.trace.enter();
    let r = get_user_pages_slow(k, mm, start, nr, gup, None);
    k.trace.leave();
    r
}
