//! KVM's host-virtual to pfn translation: virt/kvm/kvm_main.c `hva_to_pfn()`,
//! `hva_to_pfn_remapped()`, `kvm_try_get_pfn()`.

use crate::errno::Errno;
use crate::facts::Fact;
use crate::fault::handle_mm_fault;
use crate::frames::FolioFlags;
use crate::gup::{get_user_page_fast_only, gup_longterm_locked, Foll};
use crate::kernel::{Kernel, MmId, MmapLock};
use crate::outcome::{Fail, KResult, VmFault};
use crate::trace;
use crate::types::{Pfn, VirtAddr};
use crate::vma::{FaultFlags, VmFlags};

/// What `hva_to_pfn()` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KvmPfn {
    /// A pfn; `refcounted` when KVM holds a page reference it must release.
    Pfn {
        /// The frame.
        pfn: Pfn,
        /// A reference was taken.
        refcounted: bool,
        /// Mapped writable.
        writable: bool,
    },
    /// KVM_PFN_ERR_FAULT: KVM_RUN fails with -EFAULT.
    ErrFault,
    /// KVM_PFN_ERR_RO_FAULT: write to a read-only host mapping.
    ErrRoFault,
    /// KVM_PFN_ERR_SIGPENDING.
    ErrSigpending,
}

/// `kvm_pfn_to_refcounted_page()` (virt/kvm/kvm_main.c, 6.1 and 6.12): the page KVM counts
/// references on, or `None`. A pfn without `struct page` (`!pfn_valid`) has none; a PG_reserved
/// page has none unless it is the zero page (`is_zero_pfn`) or a ZONE_DEVICE page
/// (`kvm_is_zone_device_page`). Both the get (`kvm_try_get_pfn`) and the put
/// (`kvm_release_pfn_clean`) ask this function, which keeps them balanced.
fn kvm_pfn_to_refcounted_page(k: &Kernel, pfn: Pfn) -> Option<Pfn> {
    if !k.frames.pfn_valid(pfn) {
        return None;
    }
    let Some(fid) = k.frames.folio_of(pfn) else {
        // A free frame: its struct page is not PG_reserved (and has refcount 0).
        return Some(pfn);
    };
    let f = k.frames.folio(fid);
    if !f.flags.contains(FolioFlags::RESERVED) {
        return Some(pfn);
    }
    if k.frames.is_zero_pfn(pfn) || f.flags.contains(FolioFlags::ZONE_DEVICE) {
        return Some(pfn);
    }
    None
}

/// `kvm_try_get_pfn()` (virt/kvm/kvm_main.c, 6.1 and 6.12): `page =
/// kvm_pfn_to_refcounted_page(pfn); if (!page) return 1; return get_page_unless_zero(page);` —
/// the reference is taken on the **page** itself, so a tail page of a large folio, or a later
/// page of a non-compound block (refcount 0), fails.
fn kvm_try_get_pfn(k: &mut Kernel, pfn: Pfn) -> bool {
    let Some(page) = kvm_pfn_to_refcounted_page(k, pfn) else {
        return true;
    };
    let Some(fid) = k.frames.folio_of(page) else {
        return false;
    };
    let f = k.frames.folio(fid);
    if f.head != page || f.refcount <= 0 {
        return false;
    }
    k.folio_get(fid, 1);
    true
}

/// `hva_to_pfn_fast()` (virt/kvm/kvm_main.c): for a write fault, `get_user_page_fast_only(addr,
/// FOLL_WRITE)`; the page comes back with a reference.
fn hva_to_pfn_fast(k: &mut Kernel, mm: MmId, addr: VirtAddr, write_fault: bool) -> Option<KvmPfn> {
    if !write_fault {
        return None;
    }
    let p = get_user_page_fast_only(k, mm, addr, Foll::WRITE)?;
    trace!(
        k,
        "virt/kvm/kvm_main.c:hva_to_pfn_fast",
        "fast-only GUP -> pfn {p}"
    );
    Some(KvmPfn::Pfn {
        pfn: p,
        refcounted: true,
        writable: true,
    })
}

/// `hva_to_pfn_slow()` (virt/kvm/kvm_main.c): `get_user_pages_unlocked(addr, 1, &page,
/// FOLL_HWPOISON|FOLL_GET[|FOLL_WRITE])`. `Ok(None)` when it returned no page.
fn hva_to_pfn_slow(
    k: &mut Kernel,
    mm: MmId,
    addr: VirtAddr,
    write_fault: bool,
) -> KResult<Option<KvmPfn>> {
    let mut gup = Foll::HWPOISON | Foll::GET | Foll::TOUCH;
    if write_fault {
        gup |= Foll::WRITE;
    }
    let mut pages = Vec::new();
    trace!(
        k,
        "virt/kvm/kvm_main.c:hva_to_pfn_slow",
        "get_user_pages_unlocked({addr}, {gup:?})"
    );
    k.trace.enter();
    let r = gup_longterm_locked(k, mm, addr, 1, gup, Some(&mut pages));
    k.trace.leave();
    match r {
        Ok(1) if !pages.is_empty() => Ok(Some(KvmPfn::Pfn {
            pfn: pages[0],
            refcounted: true,
            writable: write_fault,
        })),
        // hva_to_pfn(): `if (npages == -EINTR) return KVM_PFN_ERR_SIGPENDING;` (6.12).
        Err(Fail::Errno(Errno::EINTR)) if k.has(Fact::KvmSigpending) => {
            Ok(Some(KvmPfn::ErrSigpending))
        }
        Err(Fail::Bug(b)) => Err(Fail::Bug(b)),
        _ => Ok(None),
    }
}

/// `hva_to_pfn()` for a guest fault at `addr` of the memslot's host mapping in `mm`: a fast-only
/// GUP ([`hva_to_pfn_fast`]), then `get_user_pages_unlocked()` ([`hva_to_pfn_slow`]), then for
/// VM_IO|VM_PFNMAP VMAs the page-table lookup of [`hva_to_pfn_remapped`]; any other VMA →
/// KVM_PFN_ERR_FAULT.
pub fn hva_to_pfn(k: &mut Kernel, mm: MmId, addr: VirtAddr, write_fault: bool) -> KResult<KvmPfn> {
    k.alive()?;
    const F: &str = "virt/kvm/kvm_main.c:hva_to_pfn";
    let addr = addr.page_down();
    if let Some(p) = hva_to_pfn_fast(k, mm, addr, write_fault) {
        return Ok(p);
    }
    if let Some(p) = hva_to_pfn_slow(k, mm, addr, write_fault)? {
        return Ok(p);
    }
    let Some(vma) = k.find_vma(mm, addr) else {
        trace!(k, F, "no VMA -> KVM_PFN_ERR_FAULT");
        return Ok(KvmPfn::ErrFault);
    };
    let flags = k.vma_or_fault(vma)?.flags;
    if !flags.intersects(VmFlags::IO | VmFlags::PFNMAP) {
        trace!(
            k,
            F,
            "GUP failed and the VMA is not VM_IO|VM_PFNMAP ({}) -> KVM_PFN_ERR_FAULT",
            flags.names()
        );
        return Ok(KvmPfn::ErrFault);
    }
    hva_to_pfn_remapped(k, vma, addr, write_fault)
}

/// `hva_to_pfn_remapped()` (virt/kvm/kvm_main.c): the PTE lookup (6.1 `follow_pte()`, 6.12
/// `follow_pfnmap_start()`), with `fixup_user_fault()` to run `->fault` when nothing is mapped
/// yet and one more lookup; a read-only PTE for a write fault → KVM_PFN_ERR_RO_FAULT; else
/// [`kvm_try_get_pfn`] (-EFAULT → KVM_PFN_ERR_FAULT), or with [`Fact::KvmPfnmapNoRefs`]
/// `kvm_resolve_pfn()`: the pfn, no reference (the model has no pinned `kfp->pin` lookups, which
/// 7.x refuses with -EINVAL unless `kvm.allow_unsafe_mappings`).
fn hva_to_pfn_remapped(
    k: &mut Kernel,
    vma: crate::vma::VmaId,
    addr: VirtAddr,
    write_fault: bool,
) -> KResult<KvmPfn> {
    const R: &str = "virt/kvm/kvm_main.c:hva_to_pfn_remapped";
    let mm = vma.mm;
    let lookup = if k.has(Fact::KvmFollowPfnmap) {
        "follow_pfnmap_start"
    } else {
        "follow_pte"
    };
    for attempt in 0..2 {
        let pte = k.mm(mm).pt.get(addr);
        if pte.present() {
            if write_fault && !pte.write() {
                trace!(
                    k,
                    R,
                    "{lookup}: PTE read-only for a write fault -> KVM_PFN_ERR_RO_FAULT"
                );
                return Ok(KvmPfn::ErrRoFault);
            }
            let pfn = pte.pfn();
            if k.has(Fact::KvmPfnmapNoRefs) {
                // kvm_resolve_pfn(kfp, NULL, &args, writable): `*kfp->refcounted_page = NULL`.
                trace!(
                    k,
                    "virt/kvm/kvm_main.c:kvm_resolve_pfn",
                    "{lookup} -> pfn {pfn}, writable {}; no page reference (refcounted_page NULL)",
                    pte.write()
                );
                return Ok(KvmPfn::Pfn {
                    pfn,
                    refcounted: false,
                    writable: pte.write(),
                });
            }
            if !kvm_try_get_pfn(k, pfn) {
                trace!(k, R, "{lookup} -> pfn {pfn}; kvm_try_get_pfn: page refcount 0 -> -EFAULT -> KVM_PFN_ERR_FAULT");
                return Ok(KvmPfn::ErrFault);
            }
            let refcounted = kvm_pfn_to_refcounted_page(k, pfn).is_some();
            trace!(
                k,
                R,
                "{lookup} -> pfn {pfn}, writable {}{}",
                pte.write(),
                if refcounted {
                    ", page reference taken"
                } else {
                    ", not a refcounted page: no reference"
                }
            );
            return Ok(KvmPfn::Pfn {
                pfn,
                refcounted,
                writable: pte.write(),
            });
        }
        if attempt == 1 {
            break;
        }
        trace!(k, R, "{lookup} found nothing: fixup_user_fault");
        k.mm_mut(mm).lock = MmapLock::Read;
        k.trace.enter();
        let r = handle_mm_fault(
            k,
            vma,
            addr,
            FaultFlags {
                write: write_fault,
                remote: true,
                unshare: false,
            },
        );
        k.trace.leave();
        k.mm_mut(mm).lock = MmapLock::Unlocked;
        if r?.intersects(VmFault::ERROR) {
            return Ok(KvmPfn::ErrFault);
        }
    }
    Ok(KvmPfn::ErrFault)
}

/// `kvm_release_pfn_clean()` (virt/kvm/kvm_main.c, 6.1 and 6.12): nothing for an error pfn;
/// else `page = kvm_pfn_to_refcounted_page(pfn); if (!page) return;
/// kvm_release_page_clean(page)` (`put_page`). The test is made on the pfn again, not on what the
/// get did, and is the same one [`kvm_try_get_pfn`] made, so a PG_reserved page is neither got
/// nor put.
///
/// With [`Fact::KvmPfnmapNoRefs`], `kvm_release_faultin_page()` puts `kfp->refcounted_page`, the
/// page the lookup said it referenced, and nothing when it took none.
pub fn kvm_release_pfn(k: &mut Kernel, p: KvmPfn) {
    let KvmPfn::Pfn {
        pfn, refcounted, ..
    } = p
    else {
        return;
    };
    if k.has(Fact::KvmPfnmapNoRefs) {
        if refcounted {
            k.put_pages(&[pfn]);
        }
        return;
    }
    if let Some(page) = kvm_pfn_to_refcounted_page(k, pfn) {
        k.put_pages(&[page]);
    }
}

/// Whether a guest mapping (spte) of `pfn` at host address `addr` of `mm` survives the MMU
/// notifiers: virt/kvm/kvm_main.c:kvm_mmu_notifier_invalidate_range_start →
/// `kvm_unmap_gfn_range()` drops the sptes over any host range that is zapped, unmapped, moved
/// or torn down (munmap, `unmap_mapping_range`, an eviction, `exit_mmap`), so a spte stays
/// only while the host PTE at its address still maps its frame. `mm` is `None` once the
/// address space is gone (the VM's `mmu_notifier` `release`: every spte dropped).
pub fn kvm_spte_survives(k: &Kernel, mm: Option<MmId>, addr: VirtAddr, pfn: Pfn) -> bool {
    match mm {
        Some(mm) => {
            let pte = k.mm(mm).pt.get(addr);
            pte.present() && pte.pfn() == pfn
        }
        None => false,
    }
}
