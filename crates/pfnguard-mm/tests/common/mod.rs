//! Model drivers and small helpers shared by the integration tests: exporters shaped like the
//! ones of `docs/mm-semantics.md` §12/§13 (remap, vm_insert_page, `vmf->page`, vmf_insert_pfn,
//! vmf_insert_mixed), memfds, and thin consumer wrappers that issue the GUP calls the real
//! consumers make.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use pfnguard_mm::frames::{AllocSpec, FolioId, Mapping};
use pfnguard_mm::insert::{PfnT, VmallocArea};
use pfnguard_mm::kernel::Kernel;
use pfnguard_mm::mmap::do_mmap;
use pfnguard_mm::pagetable::Pte;
use pfnguard_mm::vma::{AddressSpace, VmaId};
use pfnguard_mm::{
    Config, Errno, Fail, FaultCtx, File, FileOperations, KResult, KernelFacts, MapFlags, MmId,
    MmapArgs, Pfn, Prot, VirtAddr, VmFault, VmFlags, VmOperations, VmaNew, PAGE_SIZE,
};

/// The process every test works in.
pub const MM: MmId = Kernel::INIT_MM;

/// A booted kernel with the default (Debian) configuration.
pub fn kernel(p: KernelFacts) -> Kernel {
    Kernel::new(p, Config::default())
}

/// `alloc_page(GFP_KERNEL)`: refcount 1, mapping NULL.
pub fn drvpage(k: &mut Kernel) -> Pfn {
    k.frames.alloc(AllocSpec::DRIVER_PAGE).expect("RAM")
}

/// A page of an order-4 `__GFP_COMP` folio (the head).
pub fn bigpage(k: &mut Kernel) -> Pfn {
    k.frames.alloc(AllocSpec::compound(4)).expect("RAM")
}

/// An order-0 shmem page-cache folio holding the page cache's reference.
pub fn shmpage(k: &mut Kernel) -> Pfn {
    k.frames.alloc(AllocSpec::SHMEM).expect("RAM")
}

/// An anon folio (refcount 1).
pub fn anonpage(k: &mut Kernel) -> Pfn {
    k.frames.alloc(AllocSpec::ANON).expect("RAM")
}

/// The folio of a frame.
pub fn fid(k: &Kernel, p: Pfn) -> FolioId {
    k.frames.folio_of(p).expect("frame with struct page")
}

/// `folio_ref_count()`.
pub fn refc(k: &Kernel, p: Pfn) -> i32 {
    k.frames.folio(fid(k, p)).refcount
}

/// `folio_mapcount()`.
pub fn mapc(k: &Kernel, p: Pfn) -> i32 {
    k.frames.folio(fid(k, p)).mapcount
}

/// `folio->_pincount`.
pub fn pinc(k: &Kernel, p: Pfn) -> i32 {
    k.frames.folio(fid(k, p)).pincount
}

/// `folio_maybe_dma_pinned()`.
pub fn pinned(k: &Kernel, p: Pfn) -> bool {
    k.frames.folio(fid(k, p)).maybe_dma_pinned()
}

/// The PTE at `addr` in `mm`.
pub fn pte(k: &Kernel, mm: MmId, addr: VirtAddr) -> Pte {
    k.mm(mm).pt.get(addr)
}

/// The VMA flags at `addr`.
pub fn vflags(k: &Kernel, mm: MmId, addr: VirtAddr) -> VmFlags {
    k.mm(mm).vma_at(addr).expect("VMA").flags
}

/// The VMA id at `addr`.
pub fn vid(k: &Kernel, mm: MmId, addr: VirtAddr) -> VmaId {
    k.find_vma(mm, addr).expect("VMA")
}

/// What an exporter's `->mmap` does after `vm_flags_set(pre_flags)`.
#[derive(Debug, Clone, Default)]
pub enum MmapAction {
    /// Nothing: the VMA is left empty (lazy exporters fault their PTEs in).
    #[default]
    Nothing,
    /// One `remap_pfn_range()` over the whole VMA from `pfn`.
    RemapWhole(Pfn),
    /// One `remap_pfn_range()` per page (6.12 system heap): page `i` from `pfns[i]`.
    RemapPerPage(Vec<Pfn>),
    /// `vm_insert_page()` of `pages[i]` at page `i`.
    InsertPage(Vec<Pfn>),
    /// `vm_insert_pages()` of all pages at `vm_start`; the number not inserted is stored in
    /// [`Driver::not_inserted`].
    InsertPages(Vec<Pfn>),
    /// `vm_map_pages()` (honours `vm_pgoff`).
    MapPages(Vec<Pfn>),
    /// `remap_vmalloc_range(vma, area, 0)`.
    RemapVmalloc(VmallocArea),
}

/// What the exporter's `->fault` does (none: no `vm_ops->fault`).
#[derive(Debug, Clone, Default)]
pub enum FaultAction {
    /// No `->fault`.
    #[default]
    None,
    /// `get_page(p); vmf->page = p; return 0` with `p = pages[vmf->pgoff]` (6.1 cma_heap, udmabuf).
    SetPage(Vec<Pfn>),
    /// Returns 0 without setting `vmf->page`.
    ReturnZeroNoPage,
    /// `vmf_insert_pfn(vma, addr, base + pgoff)`.
    InsertPfn(Pfn),
    /// `vmf_insert_mixed(vma, addr, pfn_to_pfn_t(pfns[pgoff]))`.
    InsertMixed(Vec<Pfn>),
    /// `vmf_insert_mixed()` of a pfn_t with PFN_DEV only.
    InsertMixedDev(Pfn),
    /// `vmf_insert_page(vma, addr, pages[pgoff])`.
    InsertPage(Vec<Pfn>),
}

/// A configurable model exporter.
#[derive(Debug, Default)]
pub struct Driver {
    /// `vm_flags_set()` at the start of `->mmap`.
    pub pre_flags: VmFlags,
    /// The population step of `->mmap`.
    pub action: MmapAction,
    /// `->fault`.
    pub fault: FaultAction,
    /// `.page_mkwrite` is set.
    pub page_mkwrite: bool,
    /// What `.page_mkwrite` returns; `None`: VM_FAULT_LOCKED, as `filemap_page_mkwrite()` does
    /// after locking the folio.
    pub page_mkwrite_ret: Option<VmFault>,
    /// Calls of `.page_mkwrite`.
    pub page_mkwrite_calls: Arc<AtomicU32>,
    /// `.pfn_mkwrite` is set.
    pub pfn_mkwrite: bool,
    /// `.access = generic_access_phys`.
    pub access: bool,
    /// Calls of `.pfn_mkwrite`.
    pub pfn_mkwrite_calls: Arc<AtomicU32>,
    /// `*num` after `vm_insert_pages()`.
    pub not_inserted: Arc<AtomicU32>,
}

impl Driver {
    /// The VM operations this driver installs, if any.
    fn ops(&self) -> Option<Arc<DriverVmOps>> {
        let any = !matches!(self.fault, FaultAction::None)
            || self.page_mkwrite
            || self.pfn_mkwrite
            || self.access;
        any.then(|| {
            Arc::new(DriverVmOps {
                fault: self.fault.clone(),
                page_mkwrite: self.page_mkwrite,
                page_mkwrite_ret: self.page_mkwrite_ret,
                page_mkwrite_calls: self.page_mkwrite_calls.clone(),
                pfn_mkwrite: self.pfn_mkwrite,
                access: self.access,
                pfn_mkwrite_calls: self.pfn_mkwrite_calls.clone(),
            })
        })
    }
}

impl FileOperations for Driver {
    fn name(&self) -> &'static str {
        "test_driver_fops"
    }
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        if !self.pre_flags.is_empty() {
            vma.set_flags(self.pre_flags);
        }
        if let Some(ops) = self.ops() {
            vma.set_ops(ops);
        }
        let v = vma.vma();
        match &self.action {
            MmapAction::Nothing => Ok(()),
            MmapAction::RemapWhole(pfn) => vma.remap_pfn_range(v.start, *pfn, v.len()),
            MmapAction::RemapPerPage(pfns) => {
                for i in 0..v.pages() {
                    vma.remap_pfn_range(v.start.add_pages(i), pfns[i as usize], PAGE_SIZE)?;
                }
                Ok(())
            }
            // A driver that set VM_MIXEDMAP takes the typed path; one that did not calls the
            // same helpers on the unmarked VMA, as `pre_flags` says.
            MmapAction::InsertPage(pages) => {
                for i in 0..v.pages().min(pages.len() as u64) {
                    let (a, p) = (v.start.add_pages(i), pages[i as usize]);
                    match vma.as_mixedmap() {
                        Some(mut m) => m.vm_insert_page(a, p)?,
                        None => vma.without_mixedmap().vm_insert_page(a, p)?,
                    }
                }
                Ok(())
            }
            MmapAction::InsertPages(pages) => {
                let (r, num) = match vma.as_mixedmap() {
                    Some(mut m) => m.vm_insert_pages(v.start, pages),
                    None => vma.without_mixedmap().vm_insert_pages(v.start, pages),
                };
                self.not_inserted.store(num as u32, Ordering::SeqCst);
                r
            }
            MmapAction::MapPages(pages) => match vma.as_mixedmap() {
                Some(mut m) => m.vm_map_pages(pages),
                None => vma.without_mixedmap().vm_map_pages(pages),
            },
            MmapAction::RemapVmalloc(area) => match vma.as_mixedmap() {
                Some(mut m) => m.remap_vmalloc_range(area, 0),
                None => vma.without_mixedmap().remap_vmalloc_range(area, 0),
            },
        }
    }
}

/// The `vm_operations_struct` of [`Driver`].
#[derive(Debug)]
pub struct DriverVmOps {
    fault: FaultAction,
    page_mkwrite: bool,
    page_mkwrite_ret: Option<VmFault>,
    page_mkwrite_calls: Arc<AtomicU32>,
    pfn_mkwrite: bool,
    access: bool,
    pfn_mkwrite_calls: Arc<AtomicU32>,
}

impl VmOperations for DriverVmOps {
    fn name(&self) -> &'static str {
        "test_driver_vm_ops"
    }
    fn has_fault(&self) -> bool {
        !matches!(self.fault, FaultAction::None)
    }
    fn fault(&self, cx: &mut FaultCtx<'_>) -> KResult<VmFault> {
        let (addr, pgoff) = (cx.vmf.address, cx.vmf.pgoff as usize);
        match &self.fault {
            FaultAction::None => Ok(VmFault::SIGBUS),
            FaultAction::SetPage(pages) => match pages.get(pgoff) {
                Some(&p) => {
                    cx.set_page(p);
                    Ok(VmFault::NONE)
                }
                None => Ok(VmFault::SIGBUS),
            },
            FaultAction::ReturnZeroNoPage => Ok(VmFault::NONE),
            FaultAction::InsertPfn(base) => cx.vmf_insert_pfn(addr, Pfn(base.0 + pgoff as u64)),
            FaultAction::InsertMixed(pfns) => match pfns.get(pgoff) {
                Some(&p) => cx.vmf_insert_mixed(addr, PfnT::plain(p)),
                None => Ok(VmFault::SIGBUS),
            },
            FaultAction::InsertMixedDev(p) => cx.vmf_insert_mixed(addr, PfnT::dev(*p)),
            FaultAction::InsertPage(pages) => match pages.get(pgoff) {
                Some(&p) => match cx.as_mixedmap() {
                    Some(mut m) => m.vmf_insert_page(addr, p),
                    None => cx.vmf_insert_page_without_mixedmap(addr, p),
                },
                None => Ok(VmFault::SIGBUS),
            },
        }
    }
    fn has_page_mkwrite(&self) -> bool {
        self.page_mkwrite
    }
    fn page_mkwrite(&self, _cx: &mut FaultCtx<'_>) -> KResult<VmFault> {
        self.page_mkwrite_calls.fetch_add(1, Ordering::SeqCst);
        Ok(self.page_mkwrite_ret.unwrap_or(VmFault::LOCKED))
    }
    fn has_pfn_mkwrite(&self) -> bool {
        self.pfn_mkwrite
    }
    fn pfn_mkwrite(&self, _cx: &mut FaultCtx<'_>) -> KResult<VmFault> {
        self.pfn_mkwrite_calls.fetch_add(1, Ordering::SeqCst);
        Ok(VmFault::NONE)
    }
    fn has_access(&self) -> bool {
        self.access
    }
    /// `generic_access_phys()` (mm/memory.c): needs a present PTE in a VM_IO|VM_PFNMAP VMA;
    /// a write through a read-only PTE is -EINVAL.
    fn access(
        &self,
        k: &mut Kernel,
        vma: VmaId,
        addr: VirtAddr,
        len: usize,
        write: bool,
    ) -> Result<usize, Errno> {
        let Some(v) = k.vma(vma) else {
            return Err(Errno::EINVAL);
        };
        if !v.flags.intersects(VmFlags::IO | VmFlags::PFNMAP) {
            return Err(Errno::EINVAL);
        }
        let p = k.mm(vma.mm).pt.get(addr.page_down());
        if !p.present() || (write && !p.write()) {
            return Err(Errno::EINVAL);
        }
        Ok(len)
    }
}

/// An exporter file (dma-buf pseudo inode: no writeback, i_nlink 1).
pub fn dev_file(drv: Driver, writable: bool) -> Arc<File> {
    Arc::new(File {
        path: "/dmabuf:".into(),
        ino: 77,
        dev: (0, 12),
        readable: true,
        writable,
        noexec: false,
        nlink: 1,
        mapping: AddressSpace::PSEUDO,
        fops: Arc::new(drv),
        is_dma_buf: true,
    })
}

/// `mmap(NULL, pages*4K, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)` of an O_RDWR exporter fd.
pub fn map_shared(k: &mut Kernel, drv: Driver, pages: u64) -> KResult<VirtAddr> {
    map(k, MM, drv, pages, Prot::RW, MapFlags::SHARED, true)
}

/// `mmap()` of an exporter.
pub fn map(
    k: &mut Kernel,
    mm: MmId,
    drv: Driver,
    pages: u64,
    prot: Prot,
    flags: MapFlags,
    writable_fd: bool,
) -> KResult<VirtAddr> {
    do_mmap(
        k,
        mm,
        Some(dev_file(drv, writable_fd)),
        MmapArgs::new(pages * PAGE_SIZE, prot, flags),
    )
}

/// `docs/mm-semantics.md` §13 mapping (1): a one-page VMA covered by `remap_pfn_range(pfn(drvpage))`.
pub fn setup_remap(k: &mut Kernel) -> (VirtAddr, Pfn) {
    let p = drvpage(k);
    let a = map_shared(
        k,
        Driver {
            action: MmapAction::RemapWhole(p),
            ..Driver::default()
        },
        1,
    )
    .expect("mmap");
    (a, p)
}

/// `docs/mm-semantics.md` §13 mapping (6): a one-page VMA filled by `vm_insert_page(page)`.
pub fn setup_insert(k: &mut Kernel, page: Pfn) -> VirtAddr {
    map_shared(
        k,
        Driver {
            action: MmapAction::InsertPage(vec![page]),
            ..Driver::default()
        },
        1,
    )
    .expect("mmap")
}

/// `docs/mm-semantics.md` §13 mapping (21): a one-page VM_MIXEDMAP VMA whose `->fault` calls
/// `vmf_insert_mixed(pfn_to_pfn_t(pfn))`, touched once.
pub fn setup_mixed(k: &mut Kernel, pfn: Pfn) -> VirtAddr {
    let a = map_shared(
        k,
        Driver {
            pre_flags: VmFlags::MIXEDMAP,
            fault: FaultAction::InsertMixed(vec![pfn]),
            ..Driver::default()
        },
        1,
    )
    .expect("mmap");
    pfnguard_mm::fault::user_access(k, MM, a, false).expect("touch");
    a
}

/// A `memfd_create()` + `ftruncate()` + `mmap(MAP_SHARED, PROT_READ|PROT_WRITE)` of `pages`.
pub fn memfd_map(k: &mut Kernel, mm: MmId, pages: u64) -> VirtAddr {
    let (file, _) = pfnguard_mm::shmem::memfd_create("t", pages, false);
    do_mmap(
        k,
        mm,
        Some(file),
        MmapArgs::new(pages * PAGE_SIZE, Prot::RW, MapFlags::SHARED),
    )
    .expect("mmap memfd")
}

/// Anonymous private memory.
pub fn anon_map(k: &mut Kernel, mm: MmId, pages: u64) -> VirtAddr {
    do_mmap(
        k,
        mm,
        None,
        MmapArgs::new(pages * PAGE_SIZE, Prot::RW, MapFlags::PRIVATE),
    )
    .expect("mmap anon")
}

/// Whether a BUG with `assertion` stopped the kernel.
pub fn is_bug(r: &Fail, assertion: &str) -> bool {
    matches!(r, Fail::Bug(b) if b.assertion == assertion)
}

/// Count of WARN events at `site`.
pub fn warns_at(k: &Kernel, site: &str) -> usize {
    k.events
        .iter()
        .filter(|e| matches!(e, pfnguard_mm::Event::Warn { site: s, .. } if *s == site))
        .count()
}

/// Whether a "Bad page map" was reported.
pub fn bad_page_map(k: &Kernel) -> bool {
    k.events
        .iter()
        .any(|e| matches!(e, pfnguard_mm::Event::BadPageMap { .. }))
}

/// io_uring IORING_REGISTER_BUFFERS: the model's `io_sqe_buffer_register()`, the frames it
/// pinned.
pub fn io_uring_register(k: &mut Kernel, mm: MmId, addr: VirtAddr, nr: u64) -> KResult<Vec<Pfn>> {
    pfnguard_mm::io_uring::io_sqe_buffer_register(k, mm, addr, nr)
}

/// Whether `pfn` has an anon, shmem or NULL mapping.
pub fn mapping(k: &Kernel, p: Pfn) -> Mapping {
    k.frames.folio(fid(k, p)).mapping
}
