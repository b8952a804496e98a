//! DRM PRIME exporters: drivers/gpu/drm/drm_prime.c glue and the GEM backends behind it
//! (shmem helper, TTM, i915, DMA helper, rockchip, tegra, virtio-gpu host-visible blobs).

use std::sync::Arc;

use pfnguard_mm::insert::PfnT;
use pfnguard_mm::shmem::memfd_create;
use pfnguard_mm::Fact;
use pfnguard_mm::{
    trace, Errno, Fail, FaultCtx, File, KResult, Kernel, Pfn, VirtAddr, VmFault, VmFlags,
    VmOperations, VmaId, VmaNew, PAGE_SIZE,
};

use super::{alloc_noncompound_block, device_frames, export_rdwr, ExportCtx, Exported, Exporter};
use crate::core::DmaBufOps;

/// `DRM_FILE_PAGE_OFFSET_START`: where the fake mmap offsets of GEM objects begin (64-bit).
pub const DRM_FILE_PAGE_OFFSET_START: u64 = 0x10_0000;

/// `drm_prime_handle_to_fd_ioctl()`: a driver without `.prime_handle_to_fd` gets -ENOSYS unless
/// the kernel has the generic fallback.
fn prime_export_allowed(k: &mut Kernel, driver_hook: bool) -> KResult<()> {
    const F: &str = "drivers/gpu/drm/drm_prime.c:drm_prime_handle_to_fd_ioctl";
    if driver_hook || k.has(Fact::DrmGenericPrime) {
        trace!(k, F, "DRM_IOCTL_PRIME_HANDLE_TO_FD(DRM_CLOEXEC|DRM_RDWR): exported, exp_name from the driver");
        Ok(())
    } else {
        trace!(k, F, "driver has no prime_handle_to_fd -> -ENOSYS");
        Err(Errno::ENOSYS.into())
    }
}

/// `drm_gem_prime_mmap()`: add the fake offset to `vm_pgoff`, install `obj->funcs->vm_ops`, call
/// `obj->funcs->mmap`.
fn drm_gem_prime_mmap(vma: &mut VmaNew<'_>, vm_ops: Option<Arc<dyn VmOperations>>) {
    let v = vma.vma();
    trace!(
        vma.kernel(),
        "drivers/gpu/drm/drm_prime.c:drm_gem_prime_mmap",
        "vm_pgoff += drm_vma_node_start; vm_ops = obj->funcs->vm_ops"
    );
    vma.set_pgoff(v.pgoff + DRM_FILE_PAGE_OFFSET_START);
    if let Some(o) = vm_ops {
        vma.set_ops(o);
    }
}

/// `drm_gem_mmap_obj()` (drivers/gpu/drm/drm_gem.c) for an object without `funcs->mmap`: a VMA
/// larger than the object → -EINVAL; `vm_ops = obj->funcs->vm_ops`;
/// `vm_flags_set(VM_IO|VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP)`; write-combined protection.
fn drm_gem_mmap_obj(
    vma: &mut VmaNew<'_>,
    obj_pages: u64,
    vm_ops: Arc<dyn VmOperations>,
) -> KResult<()> {
    const F: &str = "drivers/gpu/drm/drm_gem.c:drm_gem_mmap_obj";
    if obj_pages < vma.vma().pages() {
        trace!(vma.kernel(), F, "object smaller than the VMA -> -EINVAL");
        return Err(Errno::EINVAL.into());
    }
    trace!(
        vma.kernel(),
        F,
        "vm_ops = obj->funcs->vm_ops; vm_flags_set(VM_IO|VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP)"
    );
    vma.set_ops(vm_ops);
    vma.set_flags(VmFlags::IO | VmFlags::PFNMAP | VmFlags::DONTEXPAND | VmFlags::DONTDUMP);
    vma.set_writecombine();
    Ok(())
}

fn shmem_object_pages(k: &mut Kernel, pages: u64) -> KResult<(Arc<File>, Vec<Pfn>)> {
    let (file, inode) = memfd_create("drm", pages, false);
    // drm_gem_get_pages() → shmem_read_folio_gfp(): one reference per page, held until
    // drm_gem_put_pages().
    let v = inode.read_pages_referenced(k)?;
    Ok((file, v))
}

// ---------------------------------------------------------------------------------------------
// drm_gem_shmem_helper: vgem, virtio-gpu, cirrus

/// A driver on drm_gem_shmem_helper.
#[derive(Debug)]
pub struct ShmemHelper {
    id: &'static str,
    exp_name: &'static str,
    /// `shmem->map_wc` (vgem: write-combined).
    map_wc: bool,
    /// The driver's own `gem_prime_mmap` mapped the object's shmem file until the kernel fact
    /// that moved it onto the helper (vgem: [`Fact::VgemShmemHelper`]).
    own_filp_mmap_until: Option<Fact>,
}

impl ShmemHelper {
    /// vgem (`vgem_gem_create_object` sets `map_wc`); before [`Fact::VgemShmemHelper`]
    /// drivers/gpu/drm/vgem/vgem_drv.c:vgem_prime_mmap maps the object's shmem file.
    pub fn vgem() -> ShmemHelper {
        ShmemHelper {
            id: "vgem",
            exp_name: "drm",
            map_wc: true,
            own_filp_mmap_until: Some(Fact::VgemShmemHelper),
        }
    }
    /// virtio-gpu without blobs (`virtio_gpu_shmem_funcs`).
    pub fn virtio_gpu() -> ShmemHelper {
        ShmemHelper {
            id: "virtio-gpu",
            exp_name: "virtio_gpu",
            map_wc: false,
            own_filp_mmap_until: None,
        }
    }
    /// bochs once on the GEM shmem helper ([`Fact::BochsGemShmem`];
    /// drivers/gpu/drm/tiny/bochs.c: `DRM_GEM_SHMEM_DRIVER_OPS`, no `map_wc`).
    pub fn bochs() -> ShmemHelper {
        ShmemHelper {
            id: "bochs",
            exp_name: "drm",
            map_wc: false,
            own_filp_mmap_until: None,
        }
    }
    /// cirrus (`DRM_GEM_SHMEM_DRIVER_OPS`).
    pub fn cirrus() -> ShmemHelper {
        ShmemHelper {
            id: "cirrus",
            exp_name: "drm",
            map_wc: false,
            own_filp_mmap_until: None,
        }
    }
}

#[derive(Debug)]
struct ShmemObject {
    pages: Vec<Pfn>,
    map_wc: bool,
}

impl DmaBufOps for ShmemObject {
    /// `drm_gem_dmabuf_mmap()` → `drm_gem_prime_mmap()` → `drm_gem_shmem_object_mmap()` →
    /// `drm_gem_shmem_mmap()`: a COW mapping → -EINVAL ([`Fact::DrmShmemRefusesCow`]; before it
    /// a MAP_PRIVATE mapping is set up like a shared one, and its first fault in a VM_PFNMAP VMA
    /// hits the BUG_ON of mm/memory.c:vmf_insert_pfn_prot); `drm_gem_shmem_get_pages()`; then, with
    /// [`Fact::DrmShmemPfnmap`], `vm_flags_set(VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP)`, and before
    /// it `vma->vm_flags |= VM_MIXEDMAP | VM_DONTEXPAND` (5.10.262
    /// drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_mmap: no VM_DONTDUMP); protection
    /// from the flags, write-combined when `map_wc`.
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        const F: &str = "drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_mmap";
        let pfn_mkwrite = vma.kernel().has(Fact::DrmShmemPfnMkwrite);
        drm_gem_prime_mmap(
            vma,
            Some(Arc::new(ShmemHelperVmOps {
                pages: self.pages.clone(),
                pfn_mkwrite,
            })),
        );
        if vma.flags().is_cow_mapping() && vma.kernel().has(Fact::DrmShmemRefusesCow) {
            trace!(vma.kernel(), F, "is_cow_mapping (MAP_PRIVATE) -> -EINVAL");
            return Err(Errno::EINVAL.into());
        }
        if vma.kernel().has(Fact::DrmShmemPfnmap) {
            vma.set_flags(VmFlags::PFNMAP | VmFlags::DONTEXPAND | VmFlags::DONTDUMP);
        } else {
            trace!(
                vma.kernel(),
                F,
                "vma->vm_flags |= VM_MIXEDMAP | VM_DONTEXPAND (faults vmf_insert_page)"
            );
            vma.set_flags(VmFlags::MIXEDMAP | VmFlags::DONTEXPAND);
        }
        if self.map_wc {
            vma.set_writecombine();
        }
        Ok(())
    }
    fn pages(&self) -> Vec<Pfn> {
        self.pages.clone()
    }
}

/// vgem's dma-buf mmap before [`Fact::VgemShmemHelper`]: 5.10.262
/// drivers/gpu/drm/vgem/vgem_drv.c:vgem_prime_mmap, the driver's `gem_prime_mmap` called by
/// `drm_gem_dmabuf_mmap()` without `drm_gem_prime_mmap()` (no fake offset).
#[derive(Debug)]
struct ShmemFilpObject {
    filp: Arc<File>,
    pages: u64,
}

impl DmaBufOps for ShmemFilpObject {
    /// `vgem_prime_mmap()`: object smaller than the VMA → -EINVAL; `call_mmap(obj->filp, vma)`
    /// (shmem_mmap: `shmem_vm_ops`, private mappings CoW as on any shmem file); `vm_file =
    /// obj->filp`; `vm_flags |= VM_DONTEXPAND | VM_DONTDUMP`; write-combined protection. A plain
    /// shmem VMA: normal page-cache PTEs.
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        const F: &str = "drivers/gpu/drm/vgem/vgem_drv.c:vgem_prime_mmap";
        if self.pages < vma.vma().pages() {
            trace!(vma.kernel(), F, "object smaller than the VMA -> -EINVAL");
            return Err(Errno::EINVAL.into());
        }
        trace!(
            vma.kernel(),
            F,
            "call_mmap(obj->filp) + vm_file = obj->filp; VM_DONTEXPAND|VM_DONTDUMP"
        );
        self.filp.fops.mmap(vma)?;
        vma.set_file(self.filp.clone());
        vma.set_flags(VmFlags::DONTEXPAND | VmFlags::DONTDUMP);
        vma.set_writecombine();
        Ok(())
    }
    fn pages(&self) -> Vec<Pfn> {
        Vec::new()
    }
}

/// `drm_gem_shmem_vm_ops`: `.fault`, `.open`, `.close` (no `.access`), and with
/// [`Fact::DrmShmemPfnMkwrite`] `.pfn_mkwrite` (so `vma_wants_writenotify()` holds: PTEs go in
/// read-only and the first write takes a second fault).
#[derive(Debug)]
struct ShmemHelperVmOps {
    pages: Vec<Pfn>,
    pfn_mkwrite: bool,
}

impl VmOperations for ShmemHelperVmOps {
    fn name(&self) -> &'static str {
        "drm_gem_shmem_vm_ops"
    }
    fn has_pfn_mkwrite(&self) -> bool {
        self.pfn_mkwrite
    }
    /// `drm_gem_shmem_pfn_mkwrite()` (7.3 drivers/gpu/drm/drm_gem_shmem_helper.c):
    /// `drm_gem_shmem_record_mkwrite()` marks the object's folio dirty, then 0 (the PTE is made
    /// writable by mm/memory.c:finish_mkwrite_fault).
    fn pfn_mkwrite(&self, cx: &mut FaultCtx<'_>) -> KResult<VmFault> {
        const F: &str = "drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_pfn_mkwrite";
        let start = cx.vma().map_or(cx.vmf.address, |v| v.start);
        let off = (cx.vmf.address.0 - start.0) / PAGE_SIZE;
        if let Some(&p) = self.pages.get(off as usize) {
            let k = cx.kernel();
            if let Some(f) = k.frames.folio_of(p) {
                k.frames.folio_mut(f).flags |= pfnguard_mm::frames::FolioFlags::DIRTY;
            }
            trace!(
                k,
                F,
                "drm_gem_shmem_record_mkwrite: folio of pages[{off}] dirty -> 0"
            );
        }
        Ok(VmFault::NONE)
    }
    fn has_fault(&self) -> bool {
        true
    }
    /// `drm_gem_shmem_fault()`: page offset from `address - vm_start` (ignores `vm_pgoff`),
    /// beyond the object → SIGBUS, else `vmf_insert_pfn(page_to_pfn(pages[offset]))` with
    /// [`Fact::DrmShmemPfnmap`], `vmf_insert_page(vma, address, pages[offset])` before it (a
    /// normal, refcounted PTE to the shmem page).
    fn fault(&self, cx: &mut FaultCtx<'_>) -> KResult<VmFault> {
        const F: &str = "drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_fault";
        let start = cx.vma().map_or(cx.vmf.address, |v| v.start);
        let off = (cx.vmf.address.0 - start.0) / PAGE_SIZE;
        let Some(&p) = self.pages.get(off as usize) else {
            trace!(cx.kernel(), F, "offset {off} beyond the object -> SIGBUS");
            return Ok(VmFault::SIGBUS);
        };
        let a = cx.vmf.address;
        if cx.kernel().has(Fact::DrmShmemPfnmap) {
            trace!(cx.kernel(), F, "vmf_insert_pfn(pages[{off}] = pfn {p})");
            return cx.vmf_insert_pfn(a, p);
        }
        trace!(cx.kernel(), F, "vmf_insert_page(pages[{off}] = pfn {p})");
        // drm_gem_shmem_mmap() set VM_MIXEDMAP; should it be gone, vm_insert_page() BUGs.
        match cx.as_mixedmap() {
            Some(mut m) => m.vmf_insert_page(a, p),
            None => cx.vmf_insert_page_without_mixedmap(a, p),
        }
    }
}

impl Exporter for ShmemHelper {
    fn id(&self) -> &str {
        self.id
    }
    fn summary(&self) -> &'static str {
        "drm_gem_shmem_mmap/fault: vmf_insert_pfn at fault (VM_PFNMAP, special PTEs)"
    }
    fn export(&self, k: &mut Kernel, cx: &ExportCtx) -> KResult<Exported> {
        // DRM_IOCTL_MODE_CREATE_DUMB → drm_gem_shmem_dumb_create; the shmem helper drivers of
        // 6.1 set .prime_handle_to_fd through DRM_GEM_SHMEM_DRIVER_OPS (5.10 vgem sets
        // drm_gem_prime_handle_to_fd itself).
        prime_export_allowed(k, true)?;
        let ops: Arc<dyn DmaBufOps> = match self.own_filp_mmap_until {
            Some(f) if !k.has(f) => {
                // vgem_gem_dumb_create → drm_gem_object_init: a shmem file, no pages pinned.
                let (filp, _inode) = memfd_create("drm mm object", cx.pages, false);
                Arc::new(ShmemFilpObject {
                    filp,
                    pages: cx.pages,
                })
            }
            _ => {
                let (_f, pages) = shmem_object_pages(k, cx.pages)?;
                Arc::new(ShmemObject {
                    pages,
                    map_wc: self.map_wc,
                })
            }
        };
        Ok(export_rdwr(k, cx.pages, self.exp_name, ops, cx.policy))
    }
}

// ---------------------------------------------------------------------------------------------
// TTM: bochs (drm_gem_vram_helper), qxl, amdgpu

/// A TTM driver.
#[derive(Debug)]
pub struct Ttm {
    id: &'static str,
    exp_name: &'static str,
    /// The driver sets `.prime_handle_to_fd` itself (amdgpu, 6.1 qxl); bochs relies on the
    /// helper.
    own_prime_export: bool,
    /// The buffer lives in VRAM (no `struct page`) rather than TTM_PL_SYSTEM.
    vram: bool,
    /// The driver sets a working `.gem_prime_mmap` (bochs through `DRM_GEM_VRAM_DRIVER`,
    /// amdgpu): what `drm_gem_dmabuf_mmap()` needs without [`Fact::DrmGenericPrime`].
    own_prime_mmap: bool,
}

impl Ttm {
    /// bochs (`DRM_GEM_VRAM_DRIVER`; dumb buffers start in TTM_PL_SYSTEM).
    pub fn bochs() -> Ttm {
        Ttm {
            id: "bochs",
            exp_name: "drm",
            own_prime_export: false,
            vram: false,
            own_prime_mmap: true,
        }
    }
    /// qxl (drivers/gpu/drm/qxl). `qxl_dumb.c:qxl_mode_dumb_create` creates the BO in
    /// `QXL_GEM_DOMAIN_CPU`, which `qxl_object.c:qxl_ttm_placement_from_domain` places in
    /// TTM_PL_SYSTEM (pool pages); `qxl_object.c:qxl_object_funcs` maps it with
    /// `.mmap = drm_gem_ttm_mmap` and no `vm_ops`, so `ttm_bo_mmap_obj()` installs
    /// `ttm_bo_vm_ops` as for bochs. The 6.1 `qxl_drv.c:qxl_driver` sets `.prime_handle_to_fd =
    /// drm_gem_prime_handle_to_fd` (6.12 drops it for the generic fallback: the same export) but
    /// no `.gem_prime_mmap`, so 6.1's `drm_prime.c:drm_gem_dmabuf_mmap` refuses the mmap with
    /// -ENOSYS; 6.12's calls `drm_gem_prime_mmap()`.
    pub fn qxl() -> Ttm {
        Ttm {
            id: "qxl",
            exp_name: "drm",
            own_prime_export: true,
            vram: false,
            own_prime_mmap: false,
        }
    }
    /// amdgpu (dumb buffers in VRAM; `amdgpu_ttm_access_memory`).
    pub fn amdgpu() -> Ttm {
        Ttm {
            id: "amdgpu",
            exp_name: "amdgpu",
            own_prime_export: true,
            vram: true,
            own_prime_mmap: true,
        }
    }
}

#[derive(Debug)]
struct TtmBo {
    pages: Vec<Pfn>,
    /// `drm_gem_dmabuf_mmap()` reaches `drm_gem_prime_mmap()` (the driver's `.gem_prime_mmap`,
    /// or the generic call of 6.6+); otherwise it returns -ENOSYS.
    prime_mmap: bool,
}

impl DmaBufOps for TtmBo {
    /// `drm_gem_dmabuf_mmap()` (-ENOSYS without a `.gem_prime_mmap` before 6.6) →
    /// `drm_gem_prime_mmap()` → `drm_gem_ttm_mmap()` → `ttm_bo_mmap_obj()`. With
    /// [`Fact::TtmPfnmap`]: COW → -EINVAL; `vm_ops = &ttm_bo_vm_ops`;
    /// `vm_flags_set(VM_PFNMAP|VM_IO|VM_DONTEXPAND|VM_DONTDUMP)`. Before it (5.10.262
    /// drivers/gpu/drm/ttm/ttm_bo_vm.c:ttm_bo_mmap_vma_setup): no COW check, `vm_ops =
    /// &ttm_bo_vm_ops`, `vma->vm_flags |= VM_MIXEDMAP` and `VM_IO|VM_DONTEXPAND|VM_DONTDUMP`.
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        const F: &str = "drivers/gpu/drm/ttm/ttm_bo_vm.c:ttm_bo_mmap_obj";
        if !self.prime_mmap {
            trace!(
                vma.kernel(),
                "drivers/gpu/drm/drm_prime.c:drm_gem_dmabuf_mmap",
                "no working gem_prime_mmap in the driver -> -ENOSYS"
            );
            return Err(Errno::ENOSYS.into());
        }
        drm_gem_prime_mmap(vma, None);
        let pfnmap = vma.kernel().has(Fact::TtmPfnmap);
        if pfnmap && vma.flags().is_cow_mapping() {
            trace!(vma.kernel(), F, "is_cow_mapping (MAP_PRIVATE) -> -EINVAL");
            return Err(Errno::EINVAL.into());
        }
        vma.set_ops(Arc::new(TtmBoVmOps {
            pages: self.pages.clone(),
        }));
        if pfnmap {
            vma.set_flags(VmFlags::PFNMAP | VmFlags::IO | VmFlags::DONTEXPAND | VmFlags::DONTDUMP);
        } else {
            trace!(
                vma.kernel(),
                "drivers/gpu/drm/ttm/ttm_bo_vm.c:ttm_bo_mmap_vma_setup",
                "VM_MIXEDMAP on all mappings; VM_IO|VM_DONTEXPAND|VM_DONTDUMP; no COW check"
            );
            vma.set_flags(
                VmFlags::MIXEDMAP | VmFlags::IO | VmFlags::DONTEXPAND | VmFlags::DONTDUMP,
            );
        }
        Ok(())
    }
    fn pages(&self) -> Vec<Pfn> {
        self.pages.clone()
    }
}

/// `ttm_bo_vm_ops`: `.fault`, `.open`, `.close`, `.access = ttm_bo_vm_access`.
#[derive(Debug)]
struct TtmBoVmOps {
    pages: Vec<Pfn>,
}

/// `TTM_BO_VM_NUM_PREFAULT`.
const TTM_PREFAULT: u64 = 16;

impl VmOperations for TtmBoVmOps {
    fn name(&self) -> &'static str {
        "ttm_bo_vm_ops"
    }
    fn has_fault(&self) -> bool {
        true
    }
    /// `ttm_bo_vm_fault_reserved()`: offset from the fault address and `vm_pgoff` minus the fake
    /// offset; beyond the BO → SIGBUS; then up to 16 `vmf_insert_pfn_prot()`s — on a
    /// VM_MIXEDMAP VMA (before [`Fact::TtmPfnmap`]) `vmf_insert_mixed_prot(vma, address,
    /// __pfn_to_pfn_t(pfn, PFN_DEV), prot)`, a special PTE too (5.10.262
    /// drivers/gpu/drm/ttm/ttm_bo_vm.c:ttm_bo_vm_fault_reserved); an error on the first one
    /// returns VM_FAULT_NOPAGE, later ones end the prefault.
    fn fault(&self, cx: &mut FaultCtx<'_>) -> KResult<VmFault> {
        const F: &str = "drivers/gpu/drm/ttm/ttm_bo_vm.c:ttm_bo_vm_fault_reserved";
        let Some(v) = cx.vma() else {
            return Ok(VmFault::SIGBUS);
        };
        let mut off =
            (cx.vmf.address.0 - v.start.0) / PAGE_SIZE + v.pgoff - DRM_FILE_PAGE_OFFSET_START;
        let last = v.pages() + v.pgoff - DRM_FILE_PAGE_OFFSET_START;
        let n = self.pages.len() as u64;
        if off >= n {
            trace!(cx.kernel(), F, "page offset {off} beyond the BO -> SIGBUS");
            return Ok(VmFault::SIGBUS);
        }
        let mut addr = cx.vmf.address;
        let mut ret = VmFault::NOPAGE;
        for i in 0..TTM_PREFAULT {
            let pfn = self.pages[off as usize];
            let prot = v.page_prot;
            let r = match cx.as_mixedmap() {
                Some(mut m) => m.vmf_insert_mixed_prot(addr, PfnT::dev(pfn), prot)?,
                None => cx.vmf_insert_pfn_prot(addr, pfn, prot)?,
            };
            if r.intersects(VmFault::ERROR) {
                if i == 0 {
                    return Ok(VmFault::NOPAGE);
                }
                break;
            }
            ret = r;
            addr = addr.add_pages(1);
            off += 1;
            if off >= last.min(n) || addr >= v.end {
                break;
            }
        }
        let fa = cx.vmf.address;
        trace!(cx.kernel(), F, "vmf_insert_pfn_prot from {fa} (prefault)");
        Ok(ret)
    }
    fn has_access(&self) -> bool {
        true
    }
    /// `ttm_bo_vm_access()`: offset within the BO checked (-EIO), then a kmap copy for
    /// TTM_PL_SYSTEM/TT or the driver's `access_memory` for VRAM.
    fn access(
        &self,
        k: &mut Kernel,
        vma: VmaId,
        addr: VirtAddr,
        len: usize,
        _write: bool,
    ) -> Result<usize, Errno> {
        let Some(v) = k.vma(vma).cloned() else {
            return Err(Errno::EIO);
        };
        let len64 = len as u64;
        let off = addr.0 - v.start.0
            + ((v.pgoff - DRM_FILE_PAGE_OFFSET_START) << pfnguard_mm::PAGE_SHIFT);
        if len64 < 1 || off + len64 > self.pages.len() as u64 * PAGE_SIZE {
            return Err(Errno::EIO);
        }
        trace!(
            k,
            "drivers/gpu/drm/ttm/ttm_bo_vm.c:ttm_bo_vm_access",
            "{len} byte(s) at BO offset {off:#x} copied"
        );
        Ok(len)
    }
}

impl Exporter for Ttm {
    fn id(&self) -> &str {
        self.id
    }
    fn summary(&self) -> &'static str {
        "ttm_bo_mmap_obj/ttm_bo_vm_fault: vmf_insert_pfn_prot (VM_PFNMAP|VM_IO), .access = ttm_bo_vm_access"
    }
    /// TTM pool pages (`ttm_pool_alloc()`: high-order allocations without `__GFP_COMP`) or VRAM.
    fn export(&self, k: &mut Kernel, cx: &ExportCtx) -> KResult<Exported> {
        let hook = self.own_prime_export;
        prime_export_allowed(k, hook)?;
        let pages = if self.vram {
            device_frames(k, cx.pages)
        } else {
            alloc_noncompound_block(k, cx.pages)?
        };
        let prime_mmap = self.own_prime_mmap || k.has(Fact::DrmGenericPrime);
        Ok(export_rdwr(
            k,
            cx.pages,
            self.exp_name,
            Arc::new(TtmBo { pages, prime_mmap }),
            cx.policy,
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// bochs: TTM through drm_gem_vram, then the GEM shmem helper

/// bochs (drivers/gpu/drm/tiny/bochs.c): its `drm_driver` names the GEM backend its dumb
/// buffers get. Before [`Fact::BochsGemShmem`] it is `DRM_GEM_VRAM_DRIVER` (drm_gem_vram_helper
/// on TTM: [`Ttm::bochs`]: VM_PFNMAP|VM_IO, `.access = ttm_bo_vm_access`); since, it is
/// `DRM_GEM_SHMEM_DRIVER_OPS` ([`ShmemHelper::bochs`]: shmem pages, VM_PFNMAP without VM_IO,
/// `drm_gem_shmem_vm_ops` without `.access`).
#[derive(Debug)]
pub struct Bochs;

impl Exporter for Bochs {
    fn id(&self) -> &str {
        "bochs"
    }
    fn summary(&self) -> &'static str {
        "bochs: drm_gem_vram/TTM (VM_PFNMAP|VM_IO, ttm_bo_vm_access), the GEM shmem helper (VM_PFNMAP, no ->access) since 6.15"
    }
    fn export(&self, k: &mut Kernel, cx: &ExportCtx) -> KResult<Exported> {
        const F: &str = "drivers/gpu/drm/tiny/bochs.c:bochs_driver";
        if k.has(Fact::BochsGemShmem) {
            trace!(
                k,
                F,
                "DRM_GEM_SHMEM_DRIVER_OPS: dumb buffers are GEM shmem objects"
            );
            ShmemHelper::bochs().export(k, cx)
        } else {
            trace!(
                k,
                F,
                "DRM_GEM_VRAM_DRIVER: dumb buffers are drm_gem_vram (TTM) objects"
            );
            Ttm::bochs().export(k, cx)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// i915 (integrated: shmem objects)

/// i915 on an integrated GPU.
#[derive(Debug)]
pub struct I915;

#[derive(Debug)]
struct I915Object {
    filp: Arc<File>,
    pages: u64,
}

impl DmaBufOps for I915Object {
    /// `i915_gem_dmabuf_mmap()`: object smaller than the VMA → -EINVAL; without LMEM
    /// `call_mmap(obj->base.filp, vma)` (shmem: no flags, `shmem_vm_ops`) and
    /// `vma_set_file(vma, obj->base.filp)`.
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        const F: &str = "drivers/gpu/drm/i915/gem/i915_gem_dmabuf.c:i915_gem_dmabuf_mmap";
        if self.pages < vma.vma().pages() {
            return Err(Errno::EINVAL.into());
        }
        trace!(
            vma.kernel(),
            F,
            "call_mmap(shmem filp) + vma_set_file: a shmem VMA, no VM flags"
        );
        self.filp.fops.mmap(vma)?;
        vma.set_file(self.filp.clone());
        Ok(())
    }
    fn pages(&self) -> Vec<Pfn> {
        Vec::new()
    }
}

impl Exporter for I915 {
    fn id(&self) -> &str {
        "i915"
    }
    fn summary(&self) -> &'static str {
        "i915_gem_dmabuf_mmap: call_mmap of the shmem file (normal page-cache PTEs)"
    }
    fn export(&self, k: &mut Kernel, cx: &ExportCtx) -> KResult<Exported> {
        prime_export_allowed(k, true)?;
        let (filp, _inode) = memfd_create("i915", cx.pages, false);
        Ok(export_rdwr(
            k,
            cx.pages,
            "i915",
            Arc::new(I915Object {
                filp,
                pages: cx.pages,
            }),
            cx.policy,
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// drm_gem_dma_helper

/// A driver on drm_gem_dma_helper (CMA-style contiguous buffers).
#[derive(Debug)]
pub struct GemDma;

#[derive(Debug)]
struct GemDmaObject {
    pages: Vec<Pfn>,
}

impl DmaBufOps for GemDmaObject {
    /// `drm_gem_dma_mmap()`: `vm_pgoff -= drm_vma_node_start`; `vm_flags_mod(VM_DONTEXPAND,
    /// VM_PFNMAP)`; `dma_mmap_wc()` → `dma_direct_mmap()` (whole-VMA `remap_pfn_range()`).
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        drm_gem_prime_mmap(vma, None);
        let pg = vma.vma().pgoff;
        vma.set_pgoff(pg - DRM_FILE_PAGE_OFFSET_START);
        vma.mod_flags(VmFlags::DONTEXPAND, VmFlags::PFNMAP);
        vma.set_writecombine();
        super::vb2::dma_direct_mmap(vma, &self.pages)
    }
    fn pages(&self) -> Vec<Pfn> {
        self.pages.clone()
    }
}

impl Exporter for GemDma {
    fn id(&self) -> &str {
        "gem-dma"
    }
    fn summary(&self) -> &'static str {
        "drm_gem_dma_mmap: clear VM_PFNMAP, dma_mmap_wc -> remap_pfn_range of the whole VMA"
    }
    fn export(&self, k: &mut Kernel, cx: &ExportCtx) -> KResult<Exported> {
        prime_export_allowed(k, true)?;
        let pages = alloc_noncompound_block(k, cx.pages)?;
        Ok(export_rdwr(
            k,
            cx.pages,
            "drm",
            Arc::new(GemDmaObject { pages }),
            cx.policy,
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// rockchip, tegra

/// rockchip GEM with an IOMMU (pages from `drm_gem_get_pages()`).
#[derive(Debug)]
pub struct Rockchip;

#[derive(Debug)]
struct RockchipObject {
    pages: Vec<Pfn>,
}

impl DmaBufOps for RockchipObject {
    /// `rockchip_drm_gem_object_mmap()`: `vm_pgoff = 0`; `vm_flags_mod(VM_IO|VM_DONTEXPAND|
    /// VM_DONTDUMP, VM_PFNMAP)`; write-combined; `rockchip_drm_gem_object_mmap_iommu()` →
    /// `vm_map_pages()` — normal PTEs to shmem pages in a VM_IO|VM_MIXEDMAP VMA (VM_MIXEDMAP set
    /// by mm/memory.c:vm_insert_page on the first page; the model marks it first, the typed
    /// path).
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        drm_gem_prime_mmap(vma, None);
        vma.set_pgoff(0);
        vma.mod_flags(
            VmFlags::IO | VmFlags::DONTEXPAND | VmFlags::DONTDUMP,
            VmFlags::PFNMAP,
        );
        vma.set_writecombine();
        if vma.vma().pages() == 0 {
            return Err(Errno::ENXIO.into());
        }
        trace!(
            vma.kernel(),
            "drivers/gpu/drm/rockchip/rockchip_drm_gem.c:rockchip_drm_gem_object_mmap_iommu",
            "vm_map_pages"
        );
        vma.set_mixedmap().vm_map_pages(&self.pages)
    }
    fn pages(&self) -> Vec<Pfn> {
        self.pages.clone()
    }
}

impl Exporter for Rockchip {
    fn id(&self) -> &str {
        "rockchip"
    }
    fn summary(&self) -> &'static str {
        "rockchip_drm_gem_object_mmap: VM_IO + vm_map_pages (VM_IO|VM_MIXEDMAP, normal PTEs)"
    }
    fn export(&self, k: &mut Kernel, cx: &ExportCtx) -> KResult<Exported> {
        prime_export_allowed(k, true)?;
        let (_f, pages) = shmem_object_pages(k, cx.pages)?;
        Ok(export_rdwr(
            k,
            cx.pages,
            "rockchip",
            Arc::new(RockchipObject { pages }),
            cx.policy,
        ))
    }
}

/// tegra GEM with pages (`tegra_bo_get_pages()` → `drm_gem_get_pages()`).
#[derive(Debug)]
pub struct Tegra;

#[derive(Debug)]
struct TegraObject {
    pages: Vec<Pfn>,
}

impl DmaBufOps for TegraObject {
    /// `tegra_gem_prime_mmap()` (drivers/gpu/drm/tegra/gem.c): `drm_gem_mmap_obj()` — the
    /// object has no `funcs->mmap`, so it installs `tegra_bo_vm_ops` and sets
    /// `VM_IO|VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP` — then `__tegra_gem_mmap()` for a BO with
    /// pages: `vm_flags_mod(VM_MIXEDMAP, VM_PFNMAP)`, write-combined. The VMA ends up
    /// VM_IO|VM_MIXEDMAP|VM_DONTEXPAND|VM_DONTDUMP.
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        drm_gem_mmap_obj(
            vma,
            self.pages.len() as u64,
            Arc::new(TegraVmOps {
                pages: self.pages.clone(),
            }),
        )?;
        trace!(
            vma.kernel(),
            "drivers/gpu/drm/tegra/gem.c:__tegra_gem_mmap",
            "vm_flags_mod(VM_MIXEDMAP, VM_PFNMAP); write-combined"
        );
        vma.mod_flags(VmFlags::MIXEDMAP, VmFlags::PFNMAP);
        vma.set_writecombine();
        Ok(())
    }
    fn pages(&self) -> Vec<Pfn> {
        self.pages.clone()
    }
}

/// `tegra_bo_vm_ops`.
#[derive(Debug)]
struct TegraVmOps {
    pages: Vec<Pfn>,
}

impl VmOperations for TegraVmOps {
    fn name(&self) -> &'static str {
        "tegra_bo_vm_ops"
    }
    fn has_fault(&self) -> bool {
        true
    }
    /// `tegra_bo_fault()`: `vmf_insert_page(vma, address, bo->pages[offset])`.
    fn fault(&self, cx: &mut FaultCtx<'_>) -> KResult<VmFault> {
        let start = cx.vma().map_or(cx.vmf.address, |v| v.start);
        let off = (cx.vmf.address.0 - start.0) / PAGE_SIZE;
        let Some(&p) = self.pages.get(off as usize) else {
            return Ok(VmFault::SIGBUS);
        };
        trace!(
            cx.kernel(),
            "drivers/gpu/drm/tegra/gem.c:tegra_bo_fault",
            "vmf_insert_page(pages[{off}])"
        );
        let a = cx.vmf.address;
        // tegra_bo_mmap() set VM_MIXEDMAP; should it be gone, vm_insert_page() BUGs.
        match cx.as_mixedmap() {
            Some(mut m) => m.vmf_insert_page(a, p),
            None => cx.vmf_insert_page_without_mixedmap(a, p),
        }
    }
}

impl Exporter for Tegra {
    fn id(&self) -> &str {
        "tegra"
    }
    fn summary(&self) -> &'static str {
        "tegra_gem_prime_mmap/tegra_bo_fault: vmf_insert_page in a VM_IO|VM_MIXEDMAP VMA (normal PTEs)"
    }
    fn export(&self, k: &mut Kernel, cx: &ExportCtx) -> KResult<Exported> {
        prime_export_allowed(k, true)?;
        let (_f, pages) = shmem_object_pages(k, cx.pages)?;
        Ok(export_rdwr(
            k,
            cx.pages,
            "tegra",
            Arc::new(TegraObject { pages }),
            cx.policy,
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// virtio-gpu host-visible blobs

/// virtio-gpu blob resources in host memory (`VIRTGPU_BLOB_FLAG_USE_MAPPABLE`).
#[derive(Debug)]
pub struct VirtioGpuBlob;

#[derive(Debug)]
struct VramObject {
    pages: Vec<Pfn>,
}

impl DmaBufOps for VramObject {
    /// `virtio_gpu_vram_mmap()`: `vm_pgoff -= node start`; `vm_flags_set(VM_MIXEDMAP|
    /// VM_DONTEXPAND)`; a VMA not exactly the object's size → -EINVAL; `io_remap_pfn_range()` of
    /// the whole VMA — the VMA ends up both VM_PFNMAP and VM_MIXEDMAP.
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        const F: &str = "drivers/gpu/drm/virtio/virtgpu_vram.c:virtio_gpu_vram_mmap";
        drm_gem_prime_mmap(vma, None);
        let pg = vma.vma().pgoff;
        vma.set_pgoff(pg - DRM_FILE_PAGE_OFFSET_START);
        vma.set_flags(VmFlags::MIXEDMAP | VmFlags::DONTEXPAND);
        let v = vma.vma();
        if v.pages() != self.pages.len() as u64 {
            trace!(vma.kernel(), F, "VMA size differs from the blob -> -EINVAL");
            return Err(Errno::EINVAL.into());
        }
        let first = self
            .pages
            .first()
            .copied()
            .ok_or(Fail::Errno(Errno::EINVAL))?;
        vma.io_remap_pfn_range(v.start, first, v.len())
    }
    fn pages(&self) -> Vec<Pfn> {
        self.pages.clone()
    }
}

impl Exporter for VirtioGpuBlob {
    fn id(&self) -> &str {
        "virtio-gpu-blob"
    }
    fn summary(&self) -> &'static str {
        "virtio_gpu_vram_mmap: VM_MIXEDMAP then io_remap_pfn_range of host memory (VM_PFNMAP|VM_MIXEDMAP)"
    }
    fn export(&self, k: &mut Kernel, cx: &ExportCtx) -> KResult<Exported> {
        prime_export_allowed(k, true)?;
        let pages = device_frames(k, cx.pages);
        Ok(export_rdwr(
            k,
            cx.pages,
            "virtio_gpu",
            Arc::new(VramObject { pages }),
            cx.policy,
        ))
    }
}
