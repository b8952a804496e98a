//! The page-fault path: mm/memory.c `handle_mm_fault()` → `handle_pte_fault()` → `do_fault()`
//! / `do_anonymous_page()` / `do_wp_page()`, `__do_fault()` and `finish_fault()`; and the user
//! access that triggers it (arch/x86/mm/fault.c `do_user_addr_fault()`).

use crate::errno::Errno;
use crate::facts::Fact;
use crate::frames::AllocSpec;
use crate::insert::{self, PfnT, StructPagePath};
use crate::kernel::{Kernel, MmId, MmapLock, RssCounter};
use crate::normal_page::vm_normal_page;
use crate::outcome::{Fail, KResult, Signal, VmFault};
use crate::pagetable::{PgProt, Pte};
use crate::trace;
use crate::types::{Pfn, VirtAddr};
use crate::vma::{FaultFlags, VmFlags, Vma, VmaId, Vmf};

/// What a `->fault` handler works with: the `struct vm_fault` and the kernel, with the mmap lock
/// held for reading (Rust-for-Linux `VmaRef`): flags may not change here.
#[derive(Debug)]
pub struct FaultCtx<'k> {
    pub(crate) k: &'k mut Kernel,
    /// The fault.
    pub vmf: Vmf,
}

impl FaultCtx<'_> {
    /// The kernel.
    pub fn kernel(&mut self) -> &mut Kernel {
        self.k
    }
    /// A copy of the faulting VMA.
    pub fn vma(&self) -> Option<Vma> {
        self.k.vma(self.vmf.vma).cloned()
    }
    /// `vmf_insert_pfn(vmf->vma, addr, pfn)`.
    pub fn vmf_insert_pfn(&mut self, addr: VirtAddr, pfn: Pfn) -> KResult<VmFault> {
        insert::vmf_insert_pfn(self.k, self.vmf.vma, addr, pfn)
    }
    /// `vmf_insert_pfn_prot(vmf->vma, addr, pfn, prot)`.
    pub fn vmf_insert_pfn_prot(
        &mut self,
        addr: VirtAddr,
        pfn: Pfn,
        prot: PgProt,
    ) -> KResult<VmFault> {
        insert::vmf_insert_pfn_prot(self.k, self.vmf.vma, addr, pfn, prot)
    }
    /// `vmf_insert_mixed(vmf->vma, addr, pfn)`.
    pub fn vmf_insert_mixed(&mut self, addr: VirtAddr, pfn: PfnT) -> KResult<VmFault> {
        insert::vmf_insert_mixed(self.k, self.vmf.vma, addr, pfn)
    }
    /// `vmf_insert_page(vmf->vma, addr, page)` from `->fault` on a VMA that may lack
    /// VM_MIXEDMAP — a driver getting it wrong: mm/memory.c:vm_insert_page then runs
    /// `BUG_ON(mmap_read_trylock(vma->vm_mm))`, which fires because the fault path holds the
    /// mmap lock only for reading. The typed path is [`as_mixedmap`](Self::as_mixedmap).
    pub fn vmf_insert_page_without_mixedmap(
        &mut self,
        addr: VirtAddr,
        pfn: Pfn,
    ) -> KResult<VmFault> {
        insert::vmf_insert_page(self.k, self.vmf.vma, addr, pfn)
    }
    /// The `vm_insert_page()` capability, if the VMA has VM_MIXEDMAP.
    pub fn as_mixedmap(&mut self) -> Option<crate::VmaMixedMap<'_>> {
        let mixed = self
            .k
            .vma(self.vmf.vma)
            .is_some_and(|v| v.flags.contains(VmFlags::MIXEDMAP));
        mixed.then_some(crate::VmaMixedMap {
            k: self.k,
            id: self.vmf.vma,
        })
    }
    /// `get_page(page); vmf->page = page;` — return 0 afterwards and `finish_fault()` maps it.
    pub fn set_page(&mut self, pfn: Pfn) {
        if let Some(f) = self.k.frames.folio_of(pfn) {
            self.k.folio_get(f, 1);
        }
        trace!(self.k, "vmf->page", "= pfn {pfn} (get_page)");
        self.vmf.page = Some(pfn);
    }
    /// `vmf->page = page` for a page whose reference the handler already holds for the caller
    /// (shmem_fault's `shmem_get_folio()` reference).
    pub fn set_page_referenced(&mut self, pfn: Pfn) {
        self.vmf.page = Some(pfn);
    }
}

/// `handle_mm_fault()` (mm/memory.c) on a VMA, with the mmap lock held for reading.
pub fn handle_mm_fault(
    k: &mut Kernel,
    vma: VmaId,
    addr: VirtAddr,
    flags: FaultFlags,
) -> KResult<VmFault> {
    k.alive()?;
    const F: &str = "mm/memory.c:handle_pte_fault";
    let addr = addr.page_down();
    let v = k.vma_or_fault(vma)?.clone();
    let pte = k.mm(vma.mm).pt.get(addr);
    let r = if pte.is_none() {
        if v.is_anonymous() {
            trace!(k, F, "PTE none, anonymous VMA: do_anonymous_page");
            do_anonymous_page(k, &v, vma, addr, flags)
        } else {
            trace!(k, F, "PTE none, file VMA: do_fault");
            do_fault(k, &v, vma, addr, flags)
        }
    } else if !pte.present() {
        // Swap and migration entries are not modeled.
        Ok(VmFault::SIGBUS)
    } else if pte.protnone() {
        Ok(VmFault::NONE)
    } else if (flags.write || flags.unshare) && !pte.write() {
        trace!(k, F, "write fault on a read-only PTE: do_wp_page");
        do_wp_page(k, &v, vma, addr, pte, flags)
    } else {
        let mut e = pte.mkyoung();
        if flags.write {
            e = e.mkdirty();
        }
        k.mm_mut(vma.mm).pt.set(addr, e);
        Ok(VmFault::NONE)
    };
    if let Ok(f) = &r {
        trace!(k, "mm/memory.c:handle_mm_fault", "-> {f:?}");
    }
    r
}

/// `do_anonymous_page()` (mm/memory.c): a read maps the zero page with a special PTE; a write
/// allocates an anon folio.
fn do_anonymous_page(
    k: &mut Kernel,
    v: &Vma,
    vma: VmaId,
    addr: VirtAddr,
    flags: FaultFlags,
) -> KResult<VmFault> {
    if v.flags.contains(VmFlags::SHARED) {
        return Ok(VmFault::SIGBUS);
    }
    if !flags.write {
        let e = Pte::new(k.frames.zero_pfn(), v.page_prot.without(Pte::RW)).mkspecial();
        k.mm_mut(vma.mm).pt.set(addr, e);
        return Ok(VmFault::NONE);
    }
    let Some(pfn) = k.frames.alloc(AllocSpec::ANON) else {
        return Ok(VmFault::OOM);
    };
    map_new_anon(
        k,
        vma,
        addr,
        pfn,
        v.page_prot,
        v.flags.contains(VmFlags::WRITE),
    );
    Ok(VmFault::NONE)
}

fn map_new_anon(
    k: &mut Kernel,
    vma: VmaId,
    addr: VirtAddr,
    pfn: Pfn,
    prot: PgProt,
    writable: bool,
) {
    if let Some(f) = k.frames.folio_of(pfn) {
        k.frames.folio_mut(f).mapcount += 1;
    }
    let mut e = Pte::new(pfn, prot).mkyoung().mkdirty();
    if writable {
        e = e.mkwrite();
    }
    k.mm_mut(vma.mm).pt.set(addr, e);
    k.add_rss(vma.mm, RssCounter::Anon, 1);
    if let Some(v) = k.vma_mut(vma) {
        v.anon_vma = true;
    }
}

/// `do_fault()` (mm/memory.c): no `->fault` → SIGBUS if the PTE is still none ("not fully
/// populated at mmap time"); read → `do_read_fault`; private write → `do_cow_fault`; shared
/// write → `do_shared_fault`.
fn do_fault(
    k: &mut Kernel,
    v: &Vma,
    vma: VmaId,
    addr: VirtAddr,
    flags: FaultFlags,
) -> KResult<VmFault> {
    const F: &str = "mm/memory.c:do_fault";
    let has_fault = v.ops.as_ref().is_some_and(|o| o.has_fault());
    if !has_fault {
        let none = k.mm(vma.mm).pt.get(addr).is_none();
        trace!(
            k,
            F,
            "vm_ops has no ->fault ({}): PTE {} -> {}",
            v.ops.as_ref().map_or("vma_dummy_vm_ops", |o| o.name()),
            if none { "none" } else { "present" },
            if none {
                "VM_FAULT_SIGBUS"
            } else {
                "VM_FAULT_NOPAGE"
            }
        );
        return Ok(if none {
            VmFault::SIGBUS
        } else {
            VmFault::NOPAGE
        });
    }
    if !flags.write {
        do_read_or_shared_fault(k, v, vma, addr, flags)
    } else if !v.flags.contains(VmFlags::SHARED) {
        do_cow_fault(k, v, vma, addr, flags)
    } else {
        do_read_or_shared_fault(k, v, vma, addr, flags)
    }
}

/// `__do_fault()` (mm/memory.c): call `->fault`. VM_FAULT_ERROR|NOPAGE|RETRY|DONE_COW are
/// returned as they are (the handler installed the PTE itself); otherwise `vmf->page` must be
/// set — a NULL page oopses in `lock_page()`.
fn do_fault_call(
    k: &mut Kernel,
    v: &Vma,
    vma: VmaId,
    addr: VirtAddr,
    flags: FaultFlags,
) -> KResult<(VmFault, Option<Pfn>)> {
    const F: &str = "mm/memory.c:__do_fault";
    let Some(ops) = v.ops.clone() else {
        return Ok((VmFault::SIGBUS, None));
    };
    trace!(k, F, "vma->vm_ops->fault = {}.fault at {addr}", ops.name());
    let vmf = Vmf {
        vma,
        address: addr,
        pgoff: v.linear_page_index(addr),
        flags,
        page: None,
    };
    k.trace.enter();
    let (r, page) = {
        let mut cx = FaultCtx { k, vmf };
        let r = ops.fault(&mut cx);
        (r, cx.vmf.page)
    };
    k.trace.leave();
    let ret = r?;
    if ret.intersects(VmFault::ERROR | VmFault::NOPAGE | VmFault::RETRY | VmFault::DONE_COW) {
        trace!(k, F, "->fault returned {ret:?}");
        return Ok((ret, None));
    }
    match page {
        Some(p) => {
            trace!(k, F, "->fault returned {ret:?} with vmf->page = pfn {p}");
            Ok((ret, Some(p)))
        }
        None => Err(k.bug(
            "->fault returned 0 with vmf->page == NULL (lock_page(NULL))",
            F,
        )),
    }
}

/// `do_read_fault()` / `do_shared_fault()` (mm/memory.c): `__do_fault()`, then `finish_fault()`
/// maps `vmf->page`; on failure the page reference is dropped. A write fault on a shared VMA
/// (`do_shared_fault()`) first lets the backing store know the page becomes writable: `if
/// (vma->vm_ops->page_mkwrite) { tmp = do_page_mkwrite(vmf, folio); if (unlikely(!tmp || (tmp
/// & (VM_FAULT_ERROR | VM_FAULT_NOPAGE)))) { folio_put(folio); return tmp; } }`.
fn do_read_or_shared_fault(
    k: &mut Kernel,
    v: &Vma,
    vma: VmaId,
    addr: VirtAddr,
    flags: FaultFlags,
) -> KResult<VmFault> {
    let (ret, page) = do_fault_call(k, v, vma, addr, flags)?;
    let Some(page) = page else {
        return Ok(ret);
    };
    if flags.write && v.has_page_mkwrite() {
        let tmp = do_page_mkwrite(k, v, vma, addr, page, flags)?;
        if tmp.is_empty() || tmp.intersects(VmFault::ERROR | VmFault::NOPAGE) {
            trace!(
                k,
                "mm/memory.c:do_shared_fault",
                "->page_mkwrite returned {tmp:?}: folio_put, no PTE"
            );
            if let Some(f) = k.frames.folio_of(page) {
                k.folio_put(f, 1);
            }
            return Ok(tmp);
        }
    }
    let fin = finish_fault(k, vma, addr, page, false, flags)?;
    if fin.intersects(VmFault::ERROR | VmFault::NOPAGE | VmFault::RETRY) {
        if let Some(f) = k.frames.folio_of(page) {
            k.folio_put(f, 1);
        }
    }
    Ok(ret | fin)
}

/// `do_cow_fault()` (mm/memory.c), in the kernel's order: first the anon_vma
/// (6.12 `vmf_anon_prepare()`, 6.1 `anon_vma_prepare()`) and the COW page (6.12
/// `folio_prealloc()`, 6.1 `alloc_page_vma()`) — `if (!folio) return VM_FAULT_OOM;` before
/// `__do_fault()` is reached, so `->fault` never runs when the COW page cannot be had. Then
/// `->fault` provides the source: VM_FAULT_ERROR|NOPAGE|RETRY put the COW page (`uncharge_out`),
/// VM_FAULT_DONE_COW returns as it is (the handler filled `vmf->cow_page`); otherwise the source
/// is copied, `finish_fault()` maps the copy, the source reference is dropped, and a failed
/// `finish_fault()` puts the COW page too.
fn do_cow_fault(
    k: &mut Kernel,
    v: &Vma,
    vma: VmaId,
    addr: VirtAddr,
    flags: FaultFlags,
) -> KResult<VmFault> {
    const F: &str = "mm/memory.c:do_cow_fault";
    if let Some(vm) = k.vma_mut(vma) {
        vm.anon_vma = true;
    }
    let Some(cow) = k.frames.alloc(AllocSpec::ANON) else {
        trace!(k, F, "no COW page -> VM_FAULT_OOM (->fault not called)");
        return Ok(VmFault::OOM);
    };
    let put_cow = |k: &mut Kernel| {
        if let Some(f) = k.frames.folio_of(cow) {
            k.folio_put(f, 1);
        }
    };
    let (ret, page) = do_fault_call(k, v, vma, addr, flags)?;
    if ret.intersects(VmFault::ERROR | VmFault::NOPAGE | VmFault::RETRY) {
        trace!(k, F, "->fault returned {ret:?}: COW page put");
        put_cow(k);
        return Ok(ret);
    }
    if ret.intersects(VmFault::DONE_COW) {
        return Ok(ret);
    }
    let Some(page) = page else {
        put_cow(k);
        return Ok(ret);
    };
    trace!(k, F, "copy pfn {page} to anon pfn {cow}");
    let fin = finish_fault(k, vma, addr, cow, true, flags)?;
    if let Some(f) = k.frames.folio_of(page) {
        k.folio_put(f, 1);
    }
    let ret = ret | fin;
    if ret.intersects(VmFault::ERROR | VmFault::NOPAGE | VmFault::RETRY) {
        put_cow(k);
    }
    Ok(ret)
}

/// `finish_fault()` (6.12 mm/memory.c; 6.1 `do_set_pte()`): map the page `->fault` returned.
///
/// **No VMA flag is consulted**: a driver that returns `vmf->page` gets a normal, refcounted
/// (the handler's reference passes to the PTE), rmapped, RSS-counted PTE even in a VM_PFNMAP or
/// VM_IO VMA. A COW page is mapped anon. The PTE already populated → VM_FAULT_NOPAGE.
fn finish_fault(
    k: &mut Kernel,
    vma: VmaId,
    addr: VirtAddr,
    page: Pfn,
    cow: bool,
    flags: FaultFlags,
) -> KResult<VmFault> {
    const F: &str = "mm/memory.c:finish_fault";
    if !cow {
        if let Err(e) = insert::vm_pfnmap_insert_refused(k, vma, StructPagePath::FinishFault) {
            return match e {
                Fail::Errno(_) => Ok(VmFault::SIGBUS),
                other => Err(other),
            };
        }
    }
    if !k.mm(vma.mm).pt.get(addr).is_none() {
        trace!(k, F, "PTE populated meanwhile -> VM_FAULT_NOPAGE");
        return Ok(VmFault::NOPAGE);
    }
    let v = k.vma_or_fault(vma)?;
    let prot = v.page_prot;
    let vflags = v.flags;
    let Some(fid) = k.frames.folio_of(page) else {
        return Err(k.bug("pfn_to_page() of a frame without struct page", F));
    };
    if k.frames.folio(fid).is_freed() {
        k.events.push(crate::Event::UseAfterFree {
            pfn: page,
            holder: "finish_fault() mapped it".into(),
        });
    }
    if cow {
        map_new_anon(k, vma, addr, page, prot, vflags.contains(VmFlags::WRITE));
        trace!(k, F, "anon COW page mapped, MM_ANONPAGES +1");
        return Ok(VmFault::NONE);
    }
    let mut e = Pte::new(page, prot).mkyoung();
    if flags.write {
        e = e.mkdirty();
        if vflags.contains(VmFlags::WRITE) {
            e = e.mkwrite();
        }
    }
    k.frames.folio_mut(fid).mapcount += 1;
    k.nr_file_mapped += 1;
    let c = k.mm_counter(fid);
    k.add_rss(vma.mm, c, 1);
    k.mm_mut(vma.mm).pt.set(addr, e);
    trace!(
        k,
        F,
        "normal PTE at {addr} -> pfn {page} in a {} VMA (no VMA flag check): refcount {}, mapcount {}, {c:?} +1",
        vflags.names(),
        k.frames.folio(fid).refcount,
        k.frames.folio(fid).mapcount
    );
    Ok(VmFault::NONE)
}

/// `do_wp_page()` (mm/memory.c): shared VMAs make the PTE writable (`wp_pfn_shared()` calls
/// `->pfn_mkwrite` when there is no page; `wp_page_shared()` otherwise); private VMAs reuse an
/// exclusive anon page or copy (`wp_page_copy()`, also from a raw pfn).
fn do_wp_page(
    k: &mut Kernel,
    v: &Vma,
    vma: VmaId,
    addr: VirtAddr,
    pte: Pte,
    flags: FaultFlags,
) -> KResult<VmFault> {
    const F: &str = "mm/memory.c:do_wp_page";
    let page = vm_normal_page(k, v, addr, pte);
    let shared = if !k.has(Fact::WpSharedMayshare) {
        v.flags.contains(VmFlags::WRITE | VmFlags::SHARED)
    } else {
        v.flags.intersects(VmFlags::SHARED | VmFlags::MAYSHARE)
    };
    if shared {
        return match page {
            None => wp_pfn_shared(k, v, vma, addr, pte, flags),
            Some(p) => wp_page_shared(k, v, vma, addr, pte, p, flags),
        };
    }
    if let Some(p) = page {
        if let Some(f) = k.frames.folio_of(p) {
            let fo = k.frames.folio(f);
            if fo.is_anon() && fo.mapcount == 1 && fo.refcount == 1 {
                trace!(k, F, "exclusive anon page: wp_page_reuse");
                let e = pte.mkyoung().mkdirty().mkwrite();
                k.mm_mut(vma.mm).pt.set(addr, e);
                return Ok(VmFault::NONE);
            }
        }
    }
    // wp_page_copy()
    let Some(new) = k.frames.alloc(AllocSpec::ANON) else {
        return Ok(VmFault::OOM);
    };
    trace!(
        k,
        "mm/memory.c:wp_page_copy",
        "copy {} to a new anon page {new}",
        match page {
            Some(p) => format!("page {p}"),
            None => format!("pfn {}", pte.pfn()),
        }
    );
    k.mm_mut(vma.mm).pt.clear(addr);
    if let Some(old) = page.and_then(|p| k.frames.folio_of(p)) {
        let c = k.mm_counter(old);
        k.add_rss(vma.mm, c, -1);
        k.frames.folio_mut(old).mapcount -= 1;
        if !k.frames.folio(old).is_anon() {
            k.nr_file_mapped -= 1;
        }
        k.folio_put(old, 1);
    }
    map_new_anon(k, vma, addr, new, v.page_prot, true);
    Ok(VmFault::NONE)
}

/// `wp_page_reuse()` (mm/memory.c): make the PTE young, dirty and writable in place.
fn wp_page_reuse(k: &mut Kernel, vma: VmaId, addr: VirtAddr, pte: Pte) {
    let e = pte.mkyoung().mkdirty().mkwrite();
    k.mm_mut(vma.mm).pt.set(addr, e);
}

/// `finish_mkwrite_fault()` (mm/memory.c): `WARN_ON_ONCE(!(vma->vm_flags & VM_SHARED))`; retake
/// the PTE and, `if (!pte_same(ptep_get(vmf->pte), vmf->orig_pte))` (the `->*_mkwrite` handler or
/// a racing zap changed it), return VM_FAULT_NOPAGE; else `wp_page_reuse()`.
fn finish_mkwrite_fault(k: &mut Kernel, v: &Vma, vma: VmaId, addr: VirtAddr, orig: Pte) -> VmFault {
    const F: &str = "mm/memory.c:finish_mkwrite_fault";
    if !v.flags.contains(VmFlags::SHARED) {
        k.warn_once(F, "!(vmf->vma->vm_flags & VM_SHARED)");
    }
    if k.mm(vma.mm).pt.get(addr) != orig {
        trace!(k, F, "PTE changed under the handler -> VM_FAULT_NOPAGE");
        return VmFault::NOPAGE;
    }
    wp_page_reuse(k, vma, addr, orig);
    VmFault::NONE
}

/// The `struct vm_fault` of a write-protect fault, for the `->*_mkwrite` handlers.
fn wp_vmf(v: &Vma, vma: VmaId, addr: VirtAddr, flags: FaultFlags, page: Option<Pfn>) -> Vmf {
    Vmf {
        vma,
        address: addr,
        pgoff: v.linear_page_index(addr),
        flags,
        page,
    }
}

/// `wp_pfn_shared()` (mm/memory.c): a shared mapping's PTE without a page. With
/// `->pfn_mkwrite`: call it; VM_FAULT_ERROR|NOPAGE are returned as they are, else
/// `finish_mkwrite_fault()`. Without: `wp_page_reuse()`.
fn wp_pfn_shared(
    k: &mut Kernel,
    v: &Vma,
    vma: VmaId,
    addr: VirtAddr,
    pte: Pte,
    flags: FaultFlags,
) -> KResult<VmFault> {
    const F: &str = "mm/memory.c:wp_pfn_shared";
    let Some(ops) = v.ops.clone().filter(|o| o.has_pfn_mkwrite()) else {
        trace!(k, F, "no page, no ->pfn_mkwrite: wp_page_reuse");
        wp_page_reuse(k, vma, addr, pte);
        return Ok(VmFault::NONE);
    };
    trace!(k, F, "->pfn_mkwrite, then finish_mkwrite_fault");
    let vmf = wp_vmf(v, vma, addr, flags, None);
    let r = {
        let mut cx = FaultCtx { k, vmf };
        ops.pfn_mkwrite(&mut cx)?
    };
    if r.intersects(VmFault::ERROR | VmFault::NOPAGE) {
        return Ok(r);
    }
    Ok(finish_mkwrite_fault(k, v, vma, addr, pte))
}

/// `do_page_mkwrite()` (mm/memory.c): call `->page_mkwrite` with FAULT_FLAG_WRITE|MKWRITE;
/// VM_FAULT_ERROR|NOPAGE are returned as they are. Without VM_FAULT_LOCKED the folio is locked
/// here and, `if (!folio->mapping)` (truncated, or a driver page that never had one),
/// `return 0; /* retry */`; otherwise VM_FAULT_LOCKED is added.
fn do_page_mkwrite(
    k: &mut Kernel,
    v: &Vma,
    vma: VmaId,
    addr: VirtAddr,
    page: Pfn,
    flags: FaultFlags,
) -> KResult<VmFault> {
    const F: &str = "mm/memory.c:do_page_mkwrite";
    let Some(ops) = v.ops.clone() else {
        return Ok(VmFault::SIGBUS);
    };
    trace!(
        k,
        F,
        "vma->vm_ops->page_mkwrite = {}.page_mkwrite",
        ops.name()
    );
    let flags = FaultFlags {
        write: true,
        ..flags
    };
    let vmf = wp_vmf(v, vma, addr, flags, Some(page));
    k.trace.enter();
    let r = {
        let mut cx = FaultCtx { k, vmf };
        ops.page_mkwrite(&mut cx)
    };
    k.trace.leave();
    let ret = r?;
    if ret.intersects(VmFault::ERROR | VmFault::NOPAGE) {
        return Ok(ret);
    }
    if !ret.contains(VmFault::LOCKED) {
        let no_mapping = k
            .frames
            .folio_of(page)
            .is_none_or(|f| k.frames.folio(f).mapping == crate::frames::Mapping::None);
        if no_mapping {
            trace!(
                k,
                F,
                "folio->mapping == NULL after folio_lock: return 0 (retry)"
            );
            return Ok(VmFault::NONE);
        }
        return Ok(ret | VmFault::LOCKED);
    }
    Ok(ret)
}

/// `wp_page_shared()` (mm/memory.c): a shared mapping's PTE with a page. With
/// `vma->vm_ops->page_mkwrite`: `tmp = do_page_mkwrite(vmf, folio); if (unlikely(!tmp || (tmp &
/// (VM_FAULT_ERROR | VM_FAULT_NOPAGE)))) return tmp;` then `finish_mkwrite_fault()`, whose
/// VM_FAULT_ERROR|NOPAGE are returned. Without: `wp_page_reuse()`. Then
/// `fault_dirty_shared_page()` (no writeback to throttle in the model) and 0. The folio
/// reference taken at entry (`folio_get`) is dropped on every path, so it is not modeled.
fn wp_page_shared(
    k: &mut Kernel,
    v: &Vma,
    vma: VmaId,
    addr: VirtAddr,
    pte: Pte,
    page: Pfn,
    flags: FaultFlags,
) -> KResult<VmFault> {
    const F: &str = "mm/memory.c:wp_page_shared";
    if !v.has_page_mkwrite() {
        trace!(k, F, "no ->page_mkwrite: wp_page_reuse");
        wp_page_reuse(k, vma, addr, pte);
        return Ok(VmFault::NONE);
    }
    let tmp = do_page_mkwrite(k, v, vma, addr, page, flags)?;
    if tmp.is_empty() || tmp.intersects(VmFault::ERROR | VmFault::NOPAGE) {
        trace!(k, F, "do_page_mkwrite -> {tmp:?}: PTE left read-only");
        return Ok(tmp);
    }
    let tmp = finish_mkwrite_fault(k, v, vma, addr, pte);
    if tmp.intersects(VmFault::ERROR | VmFault::NOPAGE) {
        return Ok(tmp);
    }
    trace!(k, F, "->page_mkwrite allowed the write: PTE writable");
    Ok(VmFault::NONE)
}

/// `vm_fault_to_errno()` (include/linux/mm.h) as GUP uses it (no FOLL_HWPOISON).
pub fn vm_fault_to_errno(f: VmFault) -> Option<Errno> {
    if f.intersects(VmFault::OOM) {
        Some(Errno::ENOMEM)
    } else if f.intersects(VmFault::HWPOISON | VmFault::SIGBUS | VmFault::SIGSEGV) {
        Some(Errno::EFAULT)
    } else {
        None
    }
}

/// A user-mode load or store at `addr` (arch/x86/mm/fault.c:`do_user_addr_fault`): the MMU
/// checks the PTE; on a fault the VMA is looked up (none → SIGSEGV; `access_error()` → SIGSEGV),
/// `handle_mm_fault()` runs with the mmap lock read-held, VM_FAULT_SIGBUS → SIGBUS, then the
/// access is retried. A handler that never installs a usable PTE makes the task spin forever.
pub fn user_access(k: &mut Kernel, mm: MmId, addr: VirtAddr, write: bool) -> KResult<()> {
    k.alive()?;
    const F: &str = "arch/x86/mm/fault.c:do_user_addr_fault";
    let addr_pg = addr.page_down();
    for _ in 0..k.livelock_limit.max(2) {
        let pte = k.mm(mm).pt.get(addr_pg);
        if pte.access_permitted(write) {
            if let Some(f) = k.frames.folio_of(pte.pfn()) {
                if k.frames.folio(f).is_freed() && !pte.special() {
                    k.events.push(crate::Event::UseAfterFree {
                        pfn: pte.pfn(),
                        holder: format!("a user access at {addr} went through a PTE to it"),
                    });
                }
            }
            let mut e = pte.mkyoung();
            if write {
                e = e.mkdirty();
            }
            k.mm_mut(mm).pt.set(addr_pg, e);
            return Ok(());
        }
        let Some(vma) = k.find_vma(mm, addr_pg) else {
            trace!(k, F, "no VMA at {addr} -> SIGSEGV");
            return Err(Fail::Signal(Signal::Segv));
        };
        let vflags = k.vma_or_fault(vma)?.flags;
        let denied = if write {
            !vflags.contains(VmFlags::WRITE)
        } else {
            !vflags.intersects(VmFlags::READ | VmFlags::WRITE | VmFlags::EXEC)
        };
        if denied {
            trace!(
                k,
                F,
                "access_error: VMA flags {} -> SIGSEGV",
                vflags.names()
            );
            return Err(Fail::Signal(Signal::Segv));
        }
        trace!(
            k,
            F,
            "{} fault at {addr}",
            if write { "write" } else { "read" }
        );
        k.mm_mut(mm).lock = MmapLock::Read;
        k.trace.enter();
        let r = handle_mm_fault(
            k,
            vma,
            addr_pg,
            FaultFlags {
                write,
                ..FaultFlags::default()
            },
        );
        k.trace.leave();
        k.mm_mut(mm).lock = MmapLock::Unlocked;
        let r = r?;
        if r.intersects(VmFault::SIGBUS | VmFault::HWPOISON) {
            trace!(k, F, "{r:?} -> SIGBUS");
            return Err(Fail::Signal(Signal::Bus));
        }
        if r.intersects(VmFault::SIGSEGV) {
            return Err(Fail::Signal(Signal::Segv));
        }
        if r.intersects(VmFault::OOM) {
            return Err(Errno::ENOMEM.into());
        }
    }
    k.events.push(crate::Event::Livelock { site: F });
    Err(Fail::Hang(F))
}

/// A user write of one byte to every page of `[start, start + len)` ("touch").
pub fn touch_range(
    k: &mut Kernel,
    mm: MmId,
    start: VirtAddr,
    len: u64,
    write: bool,
) -> KResult<()> {
    let pages = crate::types::pages_for(len);
    for i in 0..pages {
        user_access(k, mm, start.add_pages(i), write)?;
    }
    Ok(())
}
