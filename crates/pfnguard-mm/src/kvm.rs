//! KVM's host-virtual to pfn translation: virt/kvm/kvm_main.c `hva_to_pfn()`,
//! `hva_to_pfn_remapped()`, `kvm_try_get_pfn()`.

use crate::errno::Errno;
use crate::fault::handle_mm_fault;
use crate::frames::FolioFlags;
use crate::gup::{get_user_page_fast_only, gup_longterm_locked, Foll};
use crate::kernel::{Kernel, MmId, MmapLock};
use crate::outcome::{Fail, KResult, VmFault};
use crate::profile::KvmRemapped;
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

/// `kvm_try_get_pfn()` (6.12; 6.1 inline in `hva_to_pfn_remapped()`): a refcounted page
/// (`pfn_valid` and not reserved, or the zero page) takes `get_page_unless_zero()` on the **page**
/// itself — a tail page of a large folio, or a later page of a non-compound block, has refcount
/// 0 and fails.
fn kvm_try_get_pfn(k: &mut Kernel, pfn: Pfn) -> bool {
    if !k.frames.pfn_valid(pfn) {
        return true;
    }
    let Some(fid) = k.frames.folio_of(pfn) else {
        return true;
    };
    let f = k.frames.folio(fid);
    if f.flags.contains(FolioFlags::RESERVED) && !f.flags.contains(FolioFlags::ZERO) {
        return true;
    }
    if f.head != pfn || f.refcount <= 0 {
        return false;
    }
    k.folio_get(fid, 1);
    true
}

/// `hva_to_pfn()` for a guest fault at `addr` of the memslot's host mapping in `mm`: a fast-only
/// GUP (`hva_to_pfn_fast`), then `get_user_pages_unlocked()` (`hva_to_pfn_slow`), then for
/// VM_IO|VM_PFNMAP VMAs the page-table lookup of `hva_to_pfn_remapped()` (6.1 `follow_pte()`,
/// 6.12 `follow_pfnmap_start()`, with `fixup_user_fault()` to run `->fault` when nothing is
/// mapped yet); any other VMA → KVM_PFN_ERR_FAULT.
pub fn hva_to_pfn(k: &mut Kernel, mm: MmId, addr: VirtAddr, write_fault: bool) -> KResult<KvmPfn> {
    k.alive()?;
    const F: &str = "virt/kvm/kvm_main.c:hva_to_pfn";
    let addr = addr.page_down();
    if write_fault {
        if let Some(p) = get_user_page_fast_only(k, mm, addr, Foll::WRITE) {
            trace!(
                k,
                "virt/kvm/kvm_main.c:hva_to_pfn_fast",
                "fast-only GUP -> pfn {p}"
            );
            return Ok(KvmPfn::Pfn {
                pfn: p,
                refcounted: true,
                writable: true,
            });
        }
    }
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
        Ok(1) if !pages.is_empty() => {
            return Ok(KvmPfn::Pfn {
                pfn: pages[0],
                refcounted: true,
                writable: write_fault,
            })
        }
        Err(Fail::Errno(Errno::EINTR)) if k.profile.kvm_eintr_sigpending => {
            return Ok(KvmPfn::ErrSigpending)
        }
        Err(Fail::Bug(b)) => return Err(Fail::Bug(b)),
        _ => {}
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
    const R: &str = "virt/kvm/kvm_main.c:hva_to_pfn_remapped";
    let lookup = match k.profile.kvm_remapped {
        KvmRemapped::FollowPte => "follow_pte",
        KvmRemapped::FollowPfnmapStart => "follow_pfnmap_start",
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
            if !kvm_try_get_pfn(k, pfn) {
                trace!(k, R, "{lookup} -> pfn {pfn}; kvm_try_get_pfn: page refcount 0 -> -EFAULT -> KVM_PFN_ERR_FAULT");
                return Ok(KvmPfn::ErrFault);
            }
            let refcounted = k.frames.pfn_valid(pfn);
            trace!(
                k,
                R,
                "{lookup} -> pfn {pfn}, writable {}{}",
                pte.write(),
                if refcounted {
                    ", page reference taken"
                } else {
                    ""
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

/// Release what `hva_to_pfn()` took (`kvm_release_pfn_clean()`).
pub fn kvm_release_pfn(k: &mut Kernel, p: KvmPfn) {
    if let KvmPfn::Pfn {
        pfn,
        refcounted: true,
        ..
    } = p
    {
        k.put_pages(&[pfn]);
    }
}
