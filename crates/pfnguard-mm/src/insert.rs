//! The paths that install user PTEs on behalf of a driver: mm/memory.c `vm_insert_page()` and
//! friends (struct-page PTEs), `vmf_insert_pfn()` / `vmf_insert_mixed()` / `remap_pfn_range()`
//! (special PTEs), and mm/vmalloc.c `remap_vmalloc_range()`.
//!
//! Each function states the kernel function it mirrors; the assertions (`BUG_ON`), errnos and
//! effects (refcount, mapcount, RSS counter, NR_FILE_MAPPED, PTE bits, VMA flags) follow the
//! source of the facts in force.

use crate::errno::Errno;
use crate::facts::Fact;
use crate::frames::FolioFlags;
use crate::kernel::{Kernel, MmapLock};
use crate::outcome::{Fail, KResult, VmFault};
use crate::pagetable::{PgProt, Pte};
use crate::trace;
use crate::types::{Pfn, VirtAddr, PAGE_SHIFT, PAGE_SIZE};
use crate::vma::{VmFlags, VmaId};

/// Which struct-page insert path is asking (for the proposed VM debug check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StructPagePath {
    /// `vm_insert_page()` (also via `vm_map_pages()`, `remap_vmalloc_range()`, `vmf_insert_page()`).
    VmInsertPage,
    /// `vm_insert_pages()`.
    VmInsertPages,
    /// `finish_fault()` installing `vmf->page`.
    FinishFault,
}

impl StructPagePath {
    fn name(self) -> &'static str {
        match self {
            StructPagePath::VmInsertPage => "vm_insert_page",
            StructPagePath::VmInsertPages => "vm_insert_pages",
            StructPagePath::FinishFault => "finish_fault",
        }
    }
}

/// `vm_pfnmap_insert_refused()` (kernel/dma-buf-mmap-check 0002, mm/memory.c; the VM debug
/// check asked for in the 2021 dri-devel thread, in no upstream tree): once
/// `vm_pfnmap_insert_check_enable()` ran (dma_buf_init at `dma_buf.mmap_check=strict`, the
/// model's [`Config::pfnmap_insert_check`](crate::Config)), a `struct page` bound for a
/// VM_PFNMAP or VM_IO VMA gets `WARN_ONCE` and the caller fails: -EINVAL from
/// `vm_insert_page()` and `vm_insert_pages()` (so `vm_map_pages(_zero)` and
/// `remap_vmalloc_range(_partial)`), VM_FAULT_SIGBUS from `vmf_insert_page_mkwrite()` and
/// `finish_fault()`.
pub fn vm_pfnmap_insert_refused(k: &mut Kernel, vma: VmaId, path: StructPagePath) -> KResult<()> {
    const F: &str = "mm/memory.c:vm_pfnmap_insert_refused";
    if !k.config.pfnmap_insert_check {
        return Ok(());
    }
    let flags = k.vma_or_fault(vma)?.flags;
    if flags.intersects(VmFlags::PFNMAP | VmFlags::IO) {
        let bad = flags.intersection(VmFlags::PFNMAP | VmFlags::IO).names();
        k.warn_once(
            F,
            format!(
                "{}: struct page inserted into a VM_PFNMAP or VM_IO mapping ({bad})",
                path.name()
            ),
        );
        trace!(k, F, "{} refused: VMA has {bad} -> -EINVAL", path.name());
        return Err(Errno::EINVAL.into());
    }
    Ok(())
}

/// `vm_mixed_zeropage_allowed()` (6.12 mm/memory.c): may the shared zero page be mapped here?
pub fn vm_mixed_zeropage_allowed(k: &mut Kernel, vma: VmaId) -> KResult<bool> {
    let v = k.vma_or_fault(vma)?;
    let flags = v.flags;
    let pfn_mkwrite = v.has_pfn_mkwrite();
    let fsdax = v.is_fsdax();
    if k.config.debug_vm && flags.contains(VmFlags::PFNMAP) {
        k.warn_once(
            "mm/memory.c:vm_mixed_zeropage_allowed",
            "vma->vm_flags & VM_PFNMAP",
        );
    }
    if flags.is_cow_mapping() {
        return Ok(true);
    }
    if !flags.intersects(VmFlags::WRITE | VmFlags::MAYWRITE) {
        return Ok(true);
    }
    Ok(pfn_mkwrite && (fsdax || flags.contains(VmFlags::IO)))
}

/// `validate_page_before_insert()` (mm/memory.c).
///
/// 6.12: refcount 0 → -EINVAL; the zero page only where `vm_mixed_zeropage_allowed()`; anon,
/// slab and typed pages → -EINVAL. 6.1: anon, slab and typed pages → -EINVAL (the refcount test
/// is in the callers and the zero page is an ordinary page).
pub fn validate_page_before_insert(k: &mut Kernel, vma: VmaId, pfn: Pfn) -> KResult<()> {
    const F: &str = "mm/memory.c:validate_page_before_insert";
    let Some(fid) = k.frames.folio_of(pfn) else {
        // pfn_to_page() of a frame without a memmap: the kernel would dereference garbage.
        return Err(k.bug("!pfn_valid(page_to_pfn(page))", F));
    };
    let f = k.frames.folio(fid).clone();
    if f.is_freed() {
        k.events.push(crate::Event::UseAfterFree {
            pfn,
            holder: "a driver inserted it into a user page table".into(),
        });
    }
    if k.has(Fact::InsertCountInValidate) && f.refcount == 0 {
        trace!(k, F, "folio_ref_count == 0 -> -EINVAL");
        return Err(Errno::EINVAL.into());
    }
    if k.has(Fact::InsertZeropageSpecial) && f.flags.contains(FolioFlags::ZERO) {
        return if vm_mixed_zeropage_allowed(k, vma)? {
            trace!(k, F, "zero page allowed here (vm_mixed_zeropage_allowed)");
            Ok(())
        } else {
            trace!(k, F, "zero page in a writable shared VMA -> -EINVAL");
            Err(Errno::EINVAL.into())
        };
    }
    let typed = f.flags.contains(FolioFlags::HAS_TYPE)
        || (k.has(Fact::HugetlbPageType) && f.flags.contains(FolioFlags::HUGETLB) && f.head == pfn);
    if f.is_anon() || f.flags.contains(FolioFlags::SLAB) || typed {
        trace!(k, F, "anon/slab/typed page -> -EINVAL");
        return Err(Errno::EINVAL.into());
    }
    Ok(())
}

/// `insert_page_into_pte_locked()` (6.12; 6.1 inline in `insert_page()`): install a normal PTE
/// for `pfn`, taking a reference, a file rmap (mapcount) and an RSS count; the zero page gets a
/// special PTE and nothing else (6.12 only).
fn insert_page_into_pte(
    k: &mut Kernel,
    vma: VmaId,
    addr: VirtAddr,
    pfn: Pfn,
    prot: PgProt,
) -> KResult<()> {
    const F: &str = "mm/memory.c:insert_page_into_pte_locked";
    let mm = vma.mm;
    if !k.mm(mm).pt.get(addr).is_none() {
        trace!(k, F, "PTE at {addr} already populated -> -EBUSY");
        return Err(Errno::EBUSY.into());
    }
    let Some(fid) = k.frames.folio_of(pfn) else {
        return Err(Errno::EINVAL.into());
    };
    let zero = k.frames.folio(fid).flags.contains(FolioFlags::ZERO);
    let mut pte = Pte::new(pfn, prot);
    if zero && k.has(Fact::InsertZeropageSpecial) {
        pte = pte.mkspecial();
        trace!(
            k,
            F,
            "zero page at {addr}: special PTE, no reference, no rmap, no RSS"
        );
    } else {
        k.folio_get(fid, 1);
        let c = k.mm_counter(fid);
        k.add_rss(mm, c, 1);
        k.frames.folio_mut(fid).mapcount += 1;
        k.nr_file_mapped += 1;
        trace!(
            k,
            F,
            "normal PTE at {addr} -> pfn {pfn} (no _PAGE_SPECIAL): refcount {}, mapcount {}, {:?} +1",
            k.frames.folio(fid).refcount,
            k.frames.folio(fid).mapcount,
            c
        );
    }
    k.mm_mut(mm).pt.set(addr, pte);
    Ok(())
}

/// `insert_page()` (mm/memory.c): validate, then install.
pub fn insert_page(
    k: &mut Kernel,
    vma: VmaId,
    addr: VirtAddr,
    pfn: Pfn,
    prot: PgProt,
) -> KResult<()> {
    validate_page_before_insert(k, vma, pfn)?;
    insert_page_into_pte(k, vma, addr, pfn, prot)
}

/// How the `!VM_MIXEDMAP` block of `vm_insert_page()` and `vm_insert_pages()` checks the VMA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MixedmapChecks {
    /// `BUG_ON(mmap_read_trylock(vma->vm_mm))`, `BUG_ON(vma->vm_flags & VM_PFNMAP)`.
    Bug,
    /// `VM_WARN_ON_ONCE()` of the same conditions: a warning with CONFIG_DEBUG_VM, nothing
    /// without, and VM_MIXEDMAP is set whatever they found (7.3 mm/memory.c:vm_insert_pages once
    /// [`Fact::VmMapPagesBatched`] holds).
    WarnOnce,
}

/// The `!VM_MIXEDMAP` block of `vm_insert_page()` and `vm_insert_pages()`: the checks, then
/// `vm_flags_set(vma, VM_MIXEDMAP)`. With VM_MIXEDMAP already set nothing is checked.
fn set_mixedmap(
    k: &mut Kernel,
    vma: VmaId,
    func: &'static str,
    checks: MixedmapChecks,
) -> KResult<()> {
    let flags = k.vma_or_fault(vma)?.flags;
    if flags.contains(VmFlags::MIXEDMAP) {
        trace!(
            k,
            func,
            "VM_MIXEDMAP already set: no flag checks (VM_PFNMAP/VM_IO not tested)"
        );
        return Ok(());
    }
    let unlocked = k.mm(vma.mm).lock != MmapLock::Write;
    let pfnmap = flags.contains(VmFlags::PFNMAP);
    match checks {
        MixedmapChecks::Bug => {
            if unlocked {
                trace!(
                    k,
                    func,
                    "VM_MIXEDMAP not set and the mmap lock is not held for writing: mmap_read_trylock() succeeds"
                );
                return Err(k.bug("mmap_read_trylock(vma->vm_mm)", func));
            }
            if pfnmap {
                return Err(k.bug("vma->vm_flags & VM_PFNMAP", func));
            }
        }
        MixedmapChecks::WarnOnce if k.config.debug_vm => {
            if unlocked {
                k.warn_once(func, "mmap_read_trylock(vma->vm_mm)");
            }
            if pfnmap {
                k.warn_once(func, "vma->vm_flags & VM_PFNMAP");
            }
        }
        MixedmapChecks::WarnOnce => {
            if pfnmap {
                trace!(
                    k,
                    func,
                    "VM_PFNMAP: VM_WARN_ON_ONCE is compiled out without CONFIG_DEBUG_VM"
                );
            }
        }
    }
    trace!(
        k,
        func,
        "VM_MIXEDMAP not set: vm_flags_set(vma, VM_MIXEDMAP)"
    );
    if let Some(v) = k.vma_mut(vma) {
        v.flags |= VmFlags::MIXEDMAP;
    }
    Ok(())
}

/// `vm_insert_page()` (mm/memory.c): insert a single `struct page` into a user VMA.
///
/// Address outside the VMA → -EFAULT; (6.1) `page_count == 0` → -EINVAL; without VM_MIXEDMAP:
/// BUG unless the mmap lock is write-held, BUG on VM_PFNMAP, then VM_MIXEDMAP is set. With
/// VM_MIXEDMAP already set nothing else is checked: VM_PFNMAP|VM_MIXEDMAP or VM_IO VMAs get a
/// normal, refcounted PTE.
pub fn vm_insert_page(k: &mut Kernel, vma: VmaId, addr: VirtAddr, pfn: Pfn) -> KResult<()> {
    k.alive()?;
    const F: &str = "mm/memory.c:vm_insert_page";
    let (start, end, prot) = {
        let v = k.vma_or_fault(vma)?;
        (v.start, v.end, v.page_prot)
    };
    trace!(k, F, "addr {addr}, pfn {pfn}");
    k.trace.enter();
    let r = (|| {
        if addr < start || addr >= end {
            trace!(k, F, "addr outside the VMA -> -EFAULT");
            return Err(Errno::EFAULT.into());
        }
        vm_pfnmap_insert_refused(k, vma, StructPagePath::VmInsertPage)?;
        if !k.has(Fact::InsertCountInValidate) {
            let zero_count = k
                .frames
                .folio_of(pfn)
                .is_some_and(|f| k.frames.folio(f).refcount == 0);
            if zero_count {
                trace!(k, F, "page_count(page) == 0 -> -EINVAL");
                return Err(Errno::EINVAL.into());
            }
        }
        set_mixedmap(k, vma, F, MixedmapChecks::Bug)?;
        let prot = k.vma(vma).map_or(prot, |v| v.page_prot);
        insert_page(k, vma, addr, pfn, prot)
    })();
    k.trace.leave();
    r
}

/// `vm_insert_pages()` (mm/memory.c): insert several pages under one page-table lock. Returns
/// the result and `*num`, the number of pages **not** inserted; pages before the failing one stay
/// mapped.
pub fn vm_insert_pages(
    k: &mut Kernel,
    vma: VmaId,
    addr: VirtAddr,
    pages: &[Pfn],
) -> (KResult<()>, usize) {
    const F: &str = "mm/memory.c:vm_insert_pages";
    let num = pages.len();
    if let Err(e) = k.alive() {
        return (Err(e), num);
    }
    let (start, end) = match k.vma_or_fault(vma) {
        Ok(v) => (v.start, v.end),
        Err(e) => return (Err(e), num),
    };
    let end_addr = addr.0 + (num as u64) * PAGE_SIZE - 1;
    if addr < start || end_addr >= end.0 {
        trace!(k, F, "range outside the VMA -> -EFAULT");
        return (Err(Errno::EFAULT.into()), num);
    }
    if let Err(e) = vm_pfnmap_insert_refused(k, vma, StructPagePath::VmInsertPages) {
        return (Err(e), num);
    }
    let checks = if k.has(Fact::VmMapPagesBatched) {
        MixedmapChecks::WarnOnce
    } else {
        MixedmapChecks::Bug
    };
    if let Err(e) = set_mixedmap(k, vma, F, checks) {
        return (Err(e), num);
    }
    let prot = k.vma(vma).map_or(PgProt::default(), |v| v.page_prot);
    for (i, &p) in pages.iter().enumerate() {
        let a = addr.add_pages(i as u64);
        // insert_page_in_batch_locked(): (6.1) page_count check, validate, install.
        let zero_count = !k.has(Fact::InsertCountInValidate)
            && k.frames
                .folio_of(p)
                .is_some_and(|f| k.frames.folio(f).refcount == 0);
        let r = if zero_count {
            Err(Fail::Errno(Errno::EINVAL))
        } else {
            insert_page(k, vma, a, p, prot)
        };
        if let Err(e) = r {
            trace!(
                k,
                F,
                "page {i} failed ({e}): {} pages not inserted",
                num - i
            );
            return (Err(e), num - i);
        }
    }
    (Ok(()), 0)
}

/// `__vm_map_pages()` (mm/memory.c): map `pages[offset..]` over the whole VMA with
/// `vm_insert_page()` (one at a time), or with one `vm_insert_pages()` once
/// [`Fact::VmMapPagesBatched`] holds; -ENXIO when the array is too short for the VMA.
fn vm_map_pages_offset(k: &mut Kernel, vma: VmaId, pages: &[Pfn], offset: u64) -> KResult<()> {
    const F: &str = "mm/memory.c:__vm_map_pages";
    let (count, start) = {
        let v = k.vma_or_fault(vma)?;
        (v.pages(), v.start)
    };
    let num = pages.len() as u64;
    if offset >= num {
        trace!(k, F, "offset {offset} >= num {num} -> -ENXIO");
        return Err(Errno::ENXIO.into());
    }
    if count > num - offset {
        trace!(
            k,
            F,
            "vma_pages {count} > num - offset {} -> -ENXIO",
            num - offset
        );
        return Err(Errno::ENXIO.into());
    }
    if k.has(Fact::VmMapPagesBatched) {
        let range = &pages[offset as usize..(offset + count) as usize];
        return vm_insert_pages(k, vma, start, range).0;
    }
    for i in 0..count {
        vm_insert_page(k, vma, start.add_pages(i), pages[(offset + i) as usize])?;
    }
    Ok(())
}

/// `vm_map_pages()` (mm/memory.c): honours `vma->vm_pgoff` as an offset into `pages`.
pub fn vm_map_pages(k: &mut Kernel, vma: VmaId, pages: &[Pfn]) -> KResult<()> {
    k.alive()?;
    let off = k.vma_or_fault(vma)?.pgoff;
    trace!(
        k,
        "mm/memory.c:vm_map_pages",
        "{} pages, offset vm_pgoff={off}",
        pages.len()
    );
    vm_map_pages_offset(k, vma, pages, off)
}

/// `vm_map_pages_zero()` (mm/memory.c): ignores `vm_pgoff`.
pub fn vm_map_pages_zero(k: &mut Kernel, vma: VmaId, pages: &[Pfn]) -> KResult<()> {
    k.alive()?;
    vm_map_pages_offset(k, vma, pages, 0)
}

/// `vmf_insert_page()` (mm/memory.c, 6.12; include/linux/mm.h inline in 6.1):
/// `vm_insert_page()` with -ENOMEM → VM_FAULT_OOM, other errors except -EBUSY → VM_FAULT_SIGBUS,
/// else VM_FAULT_NOPAGE.
pub fn vmf_insert_page(k: &mut Kernel, vma: VmaId, addr: VirtAddr, pfn: Pfn) -> KResult<VmFault> {
    match vm_insert_page(k, vma, addr, pfn) {
        Ok(()) => Ok(VmFault::NOPAGE),
        Err(Fail::Errno(Errno::ENOMEM)) => Ok(VmFault::OOM),
        Err(Fail::Errno(Errno::EBUSY)) => Ok(VmFault::NOPAGE),
        Err(Fail::Errno(_)) => Ok(VmFault::SIGBUS),
        Err(e) => Err(e),
    }
}

/// x86 `pfn_modify_allowed()` (arch/x86/mm/mmap.c): the L1TF rule refuses PROT_NONE PTEs to
/// high non-RAM pfns without CAP_SYS_ADMIN.
pub fn pfn_modify_allowed(k: &Kernel, pfn: Pfn, prot: PgProt) -> bool {
    let needs_invert = !prot.has(Pte::PRESENT) && prot != PgProt::default();
    if !needs_invert || k.frames.pfn_valid(pfn) {
        return true;
    }
    const L1TF_PFN_LIMIT: u64 = 1 << (46 - PAGE_SHIFT - 1);
    pfn.0 < L1TF_PFN_LIMIT || k.config.cap_sys_admin
}

/// `pfn_t` flags (include/linux/pfn_t.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PfnT {
    /// The frame.
    pub pfn: Pfn,
    /// PFN_DEV.
    pub dev: bool,
    /// PFN_MAP (with PFN_DEV: a ZONE_DEVICE page, `pfn_t_devmap()`).
    pub map: bool,
    /// PFN_SPECIAL.
    pub special: bool,
}

impl PfnT {
    /// `pfn_to_pfn_t()`: no flags.
    pub fn plain(pfn: Pfn) -> PfnT {
        PfnT {
            pfn,
            dev: false,
            map: false,
            special: false,
        }
    }
    /// `__pfn_to_pfn_t(pfn, PFN_DEV)`.
    pub fn dev(pfn: Pfn) -> PfnT {
        PfnT {
            pfn,
            dev: true,
            map: false,
            special: false,
        }
    }
    /// `pfn_t_devmap()`.
    pub fn devmap(self) -> bool {
        self.dev && self.map
    }
}

/// `insert_pfn()` (mm/memory.c): install a special PTE (or SPECIAL|DEVMAP for a devmap
/// `pfn_t`). An existing entry wins (VM_FAULT_NOPAGE, no change) unless `mkwrite` upgrades the
/// same pfn. No reference, no mapcount, no RSS.
pub fn insert_pfn(
    k: &mut Kernel,
    vma: VmaId,
    addr: VirtAddr,
    pfn: PfnT,
    prot: PgProt,
    mkwrite: bool,
) -> KResult<VmFault> {
    const F: &str = "mm/memory.c:insert_pfn";
    let mm = vma.mm;
    let vma_write = k.vma_or_fault(vma)?.flags.contains(VmFlags::WRITE);
    let old = k.mm(mm).pt.get(addr);
    if !old.is_none() {
        if mkwrite {
            if old.pfn() != pfn.pfn {
                let zero = k.frames.is_zero_pfn(old.pfn());
                if !zero {
                    k.warn_once(F, "!is_zero_pfn(pte_pfn(entry))");
                }
            } else {
                let mut e = old.mkyoung().mkdirty();
                if vma_write {
                    e = e.mkwrite();
                }
                k.mm_mut(mm).pt.set(addr, e);
            }
        }
        trace!(
            k,
            F,
            "PTE at {addr} already present -> VM_FAULT_NOPAGE, unchanged"
        );
        return Ok(VmFault::NOPAGE);
    }
    let devmap_bit = crate::pagetable::devmap_bit(k);
    let mut e = Pte::new(pfn.pfn, prot);
    e = if pfn.devmap() {
        e.mkdevmap(devmap_bit)
    } else {
        e.mkspecial()
    };
    if mkwrite {
        e = e.mkyoung().mkdirty();
        if vma_write {
            e = e.mkwrite();
        }
    }
    trace!(
        k,
        F,
        "{} PTE at {addr} -> pfn {}: no reference, no rmap, no RSS",
        if pfn.devmap() {
            "SPECIAL|DEVMAP"
        } else {
            "SPECIAL"
        },
        pfn.pfn
    );
    k.mm_mut(mm).pt.set(addr, e);
    Ok(VmFault::NOPAGE)
}

/// `vmf_insert_pfn_prot()` (mm/memory.c). BUG unless exactly one of VM_PFNMAP/VM_MIXEDMAP is
/// set, BUG on a COW VM_PFNMAP VMA, BUG on VM_MIXEDMAP with a `pfn_valid()` pfn; address outside
/// the VMA or an L1TF-refused pfn → VM_FAULT_SIGBUS; then `insert_pfn()` with PFN_DEV.
pub fn vmf_insert_pfn_prot(
    k: &mut Kernel,
    vma: VmaId,
    addr: VirtAddr,
    pfn: Pfn,
    prot: PgProt,
) -> KResult<VmFault> {
    k.alive()?;
    const F: &str = "mm/memory.c:vmf_insert_pfn_prot";
    let v = k.vma_or_fault(vma)?;
    let (flags, start, end) = (v.flags, v.start, v.end);
    trace!(k, F, "addr {addr}, pfn {pfn}, VMA flags {}", flags.names());
    if !flags.intersects(VmFlags::PFNMAP | VmFlags::MIXEDMAP) {
        return Err(k.bug("!(vma->vm_flags & (VM_PFNMAP|VM_MIXEDMAP))", F));
    }
    if flags.contains(VmFlags::PFNMAP | VmFlags::MIXEDMAP) {
        return Err(k.bug(
            "(vma->vm_flags & (VM_PFNMAP|VM_MIXEDMAP)) == (VM_PFNMAP|VM_MIXEDMAP)",
            F,
        ));
    }
    if flags.contains(VmFlags::PFNMAP) && flags.is_cow_mapping() {
        return Err(k.bug(
            "(vma->vm_flags & VM_PFNMAP) && is_cow_mapping(vma->vm_flags)",
            F,
        ));
    }
    if flags.contains(VmFlags::MIXEDMAP) && k.frames.pfn_valid(pfn) {
        return Err(k.bug("(vma->vm_flags & VM_MIXEDMAP) && pfn_valid(pfn)", F));
    }
    if addr < start || addr >= end {
        trace!(k, F, "addr outside the VMA -> VM_FAULT_SIGBUS");
        return Ok(VmFault::SIGBUS);
    }
    if !pfn_modify_allowed(k, pfn, prot) {
        return Ok(VmFault::SIGBUS);
    }
    k.trace.enter();
    let r = insert_pfn(k, vma, addr, PfnT::dev(pfn), prot, false);
    k.trace.leave();
    r
}

/// `vmf_insert_pfn()` (mm/memory.c): `vmf_insert_pfn_prot()` with `vma->vm_page_prot`.
pub fn vmf_insert_pfn(k: &mut Kernel, vma: VmaId, addr: VirtAddr, pfn: Pfn) -> KResult<VmFault> {
    let prot = k.vma_or_fault(vma)?.page_prot;
    vmf_insert_pfn_prot(k, vma, addr, pfn, prot)
}

/// `vm_mixed_ok()` (mm/memory.c): mirrors the abort conditions of `vm_normal_page()`. 6.12 adds
/// the zero-page rule.
pub fn vm_mixed_ok(k: &mut Kernel, vma: VmaId, pfn: PfnT, mkwrite: bool) -> KResult<bool> {
    let zero = k.frames.is_zero_pfn(pfn.pfn);
    if k.has(Fact::InsertZeropageSpecial)
        && zero
        && (mkwrite || !vm_mixed_zeropage_allowed(k, vma)?)
    {
        return Ok(false);
    }
    let flags = k.vma_or_fault(vma)?.flags;
    Ok(flags.contains(VmFlags::MIXEDMAP) || pfn.devmap() || pfn.special || zero)
}

/// `__vm_insert_mixed()` (mm/memory.c): on x86 (ARCH_HAS_PTE_SPECIAL) always a special PTE,
/// even for `pfn_valid()` RAM; without ARCH_HAS_PTE_SPECIAL a valid non-devmap pfn goes through
/// `insert_page()` and is refcounted.
pub fn vm_insert_mixed(
    k: &mut Kernel,
    vma: VmaId,
    addr: VirtAddr,
    pfn: PfnT,
    mkwrite: bool,
) -> KResult<VmFault> {
    let prot = k.vma_or_fault(vma)?.page_prot;
    vm_insert_mixed_prot(k, vma, addr, pfn, prot, mkwrite)
}

/// `__vm_insert_mixed(vma, addr, pfn, pgprot, mkwrite)` with the caller's protection
/// ([`vm_insert_mixed`] passes `vma->vm_page_prot`).
fn vm_insert_mixed_prot(
    k: &mut Kernel,
    vma: VmaId,
    addr: VirtAddr,
    pfn: PfnT,
    prot: PgProt,
    mkwrite: bool,
) -> KResult<VmFault> {
    k.alive()?;
    const F: &str = "mm/memory.c:__vm_insert_mixed";
    trace!(k, F, "addr {addr}, pfn {}", pfn.pfn);
    if !vm_mixed_ok(k, vma, pfn, mkwrite)? {
        return match k.has(Fact::MixedOkSigbus) {
            false => Err(k.bug("!vm_mixed_ok(vma, pfn)", F)),
            true => {
                trace!(k, F, "!vm_mixed_ok -> VM_FAULT_SIGBUS");
                Ok(VmFault::SIGBUS)
            }
        };
    }
    let v = k.vma_or_fault(vma)?;
    let (start, end) = (v.start, v.end);
    if addr < start || addr >= end {
        return Ok(VmFault::SIGBUS);
    }
    if !pfn_modify_allowed(k, pfn.pfn, prot) {
        return Ok(VmFault::SIGBUS);
    }
    k.trace.enter();
    let r = if !k.config.arch_has_pte_special && !pfn.devmap() && k.frames.pfn_valid(pfn.pfn) {
        trace!(
            k,
            F,
            "!ARCH_HAS_PTE_SPECIAL and pfn_valid: insert_page (refcounted)"
        );
        match insert_page(k, vma, addr, pfn.pfn, prot) {
            Ok(()) | Err(Fail::Errno(Errno::EBUSY)) => Ok(VmFault::NOPAGE),
            Err(Fail::Errno(Errno::ENOMEM)) => Ok(VmFault::OOM),
            Err(Fail::Errno(_)) => Ok(VmFault::SIGBUS),
            Err(e) => Err(e),
        }
    } else {
        insert_pfn(k, vma, addr, pfn, prot, mkwrite)
    };
    k.trace.leave();
    r
}

/// `vmf_insert_mixed()` (mm/memory.c).
pub fn vmf_insert_mixed(k: &mut Kernel, vma: VmaId, addr: VirtAddr, pfn: PfnT) -> KResult<VmFault> {
    vm_insert_mixed(k, vma, addr, pfn, false)
}

/// `vmf_insert_mixed_prot()` (5.10 mm/memory.c; TTM's VM_MIXEDMAP fault path,
/// drivers/gpu/drm/ttm/ttm_bo_vm.c:ttm_bo_vm_fault_reserved): `__vm_insert_mixed()` with the
/// caller's protection instead of `vma->vm_page_prot`.
pub fn vmf_insert_mixed_prot(
    k: &mut Kernel,
    vma: VmaId,
    addr: VirtAddr,
    pfn: PfnT,
    prot: PgProt,
) -> KResult<VmFault> {
    vm_insert_mixed_prot(k, vma, addr, pfn, prot, false)
}

/// `vmf_insert_mixed_mkwrite()` (mm/memory.c).
pub fn vmf_insert_mixed_mkwrite(
    k: &mut Kernel,
    vma: VmaId,
    addr: VirtAddr,
    pfn: PfnT,
) -> KResult<VmFault> {
    vm_insert_mixed(k, vma, addr, pfn, true)
}

/// x86 `track_pfn_remap()` (arch/x86/mm/pat/memtype.c): a remap covering the whole VMA reserves
/// the memtype and sets VM_PAT.
///
/// With [`Fact::PfnmapTrackCtx`], mm/memory.c:`remap_pfn_range_track()` instead: a whole-VMA
/// remap of a VMA that already has a `vma->pfnmap_track_ctx` → -EINVAL; otherwise
/// `pfnmap_track_ctx_alloc()` reserves the memtype (`pfnmap_track()`) into a kref'd context the
/// VMA keeps. No VM flag records it (VM_PAT is gone), so smaps shows no `ar`.
fn track_pfn_remap(k: &mut Kernel, vma: VmaId, addr: VirtAddr, size: u64) -> KResult<()> {
    let v = k.vma_or_fault(vma)?;
    let whole = addr == v.start && size == v.len();
    if !(whole && k.config.x86_pat) {
        return Ok(());
    }
    if k.has(Fact::PfnmapTrackCtx) {
        const F: &str = "mm/memory.c:remap_pfn_range_track";
        if v.pat_reserved {
            trace!(k, F, "whole VMA already has a pfnmap_track_ctx -> -EINVAL");
            return Err(Errno::EINVAL.into());
        }
        trace!(
            k,
            F,
            "whole VMA: pfnmap_track_ctx_alloc reserves the memtype; vma->pfnmap_track_ctx set, no VM flag"
        );
        if let Some(v) = k.vma_mut(vma) {
            v.pat_reserved = true;
        }
        return Ok(());
    }
    trace!(
        k,
        "arch/x86/mm/pat/memtype.c:track_pfn_remap",
        "whole VMA: reserve memtype, set VM_PAT"
    );
    if let Some(v) = k.vma_mut(vma) {
        v.flags |= VmFlags::PAT;
        v.pat_reserved = true;
    }
    Ok(())
}

/// `remap_pfn_range()` (mm/memory.c): `track_pfn_remap()`, then `remap_pfn_range_notrack()`;
/// on failure the range is zapped and the PAT reservation dropped.
///
/// `remap_pfn_range_internal()`: unaligned address → WARN_ON_ONCE, -EINVAL; a COW mapping must
/// be remapped whole (else -EINVAL) and gets `vm_pgoff = pfn`; sets
/// VM_IO|VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP (VM_MIXEDMAP is not tested); `remap_pte_range()`
/// BUGs on a populated PTE and installs special PTEs.
pub fn remap_pfn_range(
    k: &mut Kernel,
    vma: VmaId,
    addr: VirtAddr,
    pfn: Pfn,
    size: u64,
    prot: PgProt,
) -> KResult<()> {
    k.alive()?;
    const F: &str = "mm/memory.c:remap_pfn_range_internal";
    let size = crate::types::pages_for(size) * PAGE_SIZE;
    trace!(
        k,
        "mm/memory.c:remap_pfn_range",
        "addr {addr}, pfn {pfn}, size {size:#x}"
    );
    k.trace.enter();
    let tracked_before = k.vma(vma).is_some_and(|v| v.pat_reserved);
    let r = (|| {
        track_pfn_remap(k, vma, addr, size)?;
        if !addr.is_page_aligned() {
            k.warn_once(F, "!PAGE_ALIGNED(addr)");
            return Err(Errno::EINVAL.into());
        }
        let v = k.vma_or_fault(vma)?;
        let (flags, start, end) = (v.flags, v.start, v.end);
        let range_end = VirtAddr(addr.0 + size);
        if flags.is_cow_mapping() {
            if addr != start || range_end != end {
                trace!(
                    k,
                    F,
                    "COW mapping and the range is not the whole VMA -> -EINVAL"
                );
                return Err(Errno::EINVAL.into());
            }
            trace!(k, F, "COW mapping: vm_pgoff = pfn {pfn}");
            if let Some(v) = k.vma_mut(vma) {
                v.pgoff = pfn.0;
            }
        }
        trace!(
            k,
            F,
            "vm_flags_set(VM_IO|VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP)"
        );
        if let Some(v) = k.vma_mut(vma) {
            v.flags |= VmFlags::IO | VmFlags::PFNMAP | VmFlags::DONTEXPAND | VmFlags::DONTDUMP;
        }
        if addr >= range_end {
            return Err(k.bug("addr >= end", F));
        }
        for i in 0..(size / PAGE_SIZE) {
            let a = addr.add_pages(i);
            let p = Pfn(pfn.0 + i);
            if !k.mm(vma.mm).pt.get(a).is_none() {
                return Err(k.bug("!pte_none(ptep_get(pte))", "mm/memory.c:remap_pte_range"));
            }
            if !pfn_modify_allowed(k, p, prot) {
                return Err(Errno::EACCES.into());
            }
            k.mm_mut(vma.mm).pt.set(a, Pte::new(p, prot).mkspecial());
        }
        trace!(
            k,
            "mm/memory.c:remap_pte_range",
            "{} special PTEs installed",
            size / PAGE_SIZE
        );
        Ok(())
    })();
    k.trace.leave();
    if let Err(Fail::Errno(e)) = &r {
        trace!(
            k,
            "mm/memory.c:remap_pfn_range_notrack",
            "error {e}: zap_page_range_single"
        );
        crate::zap::zap_vma_range(k, vma, addr, VirtAddr(addr.0 + size));
        // untrack_pfn() (with PfnmapTrackCtx: kref_put of the context this call allocated):
        // drop the reservation this call took and clear VM_PAT.
        if let Some(v) = k.vma_mut(vma) {
            if v.pat_reserved && !tracked_before {
                v.pat_reserved = false;
                v.flags.remove(VmFlags::PAT);
            }
        }
    }
    r
}

/// `io_remap_pfn_range()` (include/linux/mm.h): `remap_pfn_range()` with
/// `pgprot_decrypted(prot)` (no difference in the model).
pub fn io_remap_pfn_range(
    k: &mut Kernel,
    vma: VmaId,
    addr: VirtAddr,
    pfn: Pfn,
    size: u64,
    prot: PgProt,
) -> KResult<()> {
    remap_pfn_range(k, vma, addr, pfn, size, prot)
}

/// A `vmalloc_user()` / `vmalloc()` area: its pages (order-0, mapping NULL) and whether it may
/// be mapped to userspace (VM_USERMAP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmallocArea {
    /// The pages backing the area, in order.
    pub pages: Vec<Pfn>,
    /// VM_USERMAP (set by `vmalloc_user()`).
    pub usermap: bool,
}

impl VmallocArea {
    /// `vmalloc_user(pages * PAGE_SIZE)`: order-0 pages, mapping NULL, VM_USERMAP.
    pub fn vmalloc_user(k: &mut Kernel, pages: u64) -> KResult<VmallocArea> {
        let mut v = Vec::with_capacity(pages as usize);
        for _ in 0..pages {
            let p = k
                .frames
                .alloc(crate::frames::AllocSpec::DRIVER_PAGE)
                .ok_or(Fail::Errno(Errno::ENOMEM))?;
            v.push(p);
        }
        Ok(VmallocArea {
            pages: v,
            usermap: true,
        })
    }
}

/// `remap_vmalloc_range()` (mm/vmalloc.c) → `remap_vmalloc_range_partial(vma, vma->vm_start,
/// addr, pgoff, vma_size)`: the area must be VM_USERMAP (else -EINVAL) and large enough (else
/// -EINVAL); every page goes through `vm_insert_page()`; then VM_DONTEXPAND|VM_DONTDUMP.
pub fn remap_vmalloc_range(
    k: &mut Kernel,
    vma: VmaId,
    area: &VmallocArea,
    pgoff: u64,
) -> KResult<()> {
    k.alive()?;
    const F: &str = "mm/vmalloc.c:remap_vmalloc_range_partial";
    let v = k.vma_or_fault(vma)?;
    let (start, pages) = (v.start, v.pages());
    trace!(k, F, "{} pages from area offset {pgoff}", pages);
    if !area.usermap {
        trace!(k, F, "area lacks VM_USERMAP -> -EINVAL");
        return Err(Errno::EINVAL.into());
    }
    if pgoff
        .checked_add(pages)
        .is_none_or(|e| e > area.pages.len() as u64)
    {
        trace!(k, F, "range beyond the area -> -EINVAL");
        return Err(Errno::EINVAL.into());
    }
    k.trace.enter();
    for i in 0..pages {
        if let Err(e) = vm_insert_page(k, vma, start.add_pages(i), area.pages[(pgoff + i) as usize])
        {
            k.trace.leave();
            return Err(e);
        }
    }
    k.trace.leave();
    trace!(k, F, "vm_flags_set(VM_DONTEXPAND|VM_DONTDUMP)");
    if let Some(v) = k.vma_mut(vma) {
        v.flags |= VmFlags::DONTEXPAND | VmFlags::DONTDUMP;
    }
    Ok(())
}
