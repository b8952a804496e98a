//! DRM PRIME exporters: drivers/gpu/drm/drm_prime.c glue and the GEM backends behind it
//! (shmem helper, TTM, i915, DMA helper, rockchip, tegra, virtio-gpu host-visible blobs).

use std::sync::Arc;

use pfnguard_mm::kernel::BoPlace;

use pfnguard_mm::insert::PfnT;
use pfnguard_mm::shmem::memfd_create;
use pfnguard_mm::Fact;
use pfnguard_mm::{
    trace, Errno, Fail, FaultCtx, File, KResult, Kernel, Pfn, VirtAddr, VmFault, VmFlags,
    VmOperations, VmaId, VmaNew, PAGE_SIZE,
};

use pfnguard_mm::page_free::{free_device_range, free_pages, report_freed_reachable};
use pfnguard_mm::shmem::ShmemInode;

use super::{
    alloc_noncompound_block, device_frames, export_drm_rdwr, export_rdwr, ExportCtx, Exported,
    Exporter,
};
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

fn shmem_object_pages(k: &mut Kernel, pages: u64) -> KResult<(Arc<ShmemInode>, Vec<Pfn>)> {
    let (_file, inode) = memfd_create("drm", pages, false);
    // drm_gem_get_pages() → shmem_read_folio_gfp(): one reference per page, held until
    // drm_gem_put_pages().
    let v = inode.read_pages_referenced(k)?;
    Ok((inode, v))
}

/// The end of a GEM object on shmem whose pages the driver holds: the dma-buf's reference
/// (drivers/gpu/drm/drm_prime.c:drm_gem_dmabuf_release → `drm_gem_object_put()`) is the
/// object's last — the modeled program closed its GEM handle after the PRIME export, and a
/// mapping's `drm_gem_vm_open()` reference is gone with the mapping — so the driver's free
/// callback `drm_gem_put_pages()` (drivers/gpu/drm/drm_gem.c: `folio_put()` of the reference
/// `drm_gem_get_pages()` took on each page), then `drm_gem_object_release()` → `fput(obj->filp)`:
/// the shmem inode is evicted (mm/shmem.c:shmem_evict_inode → `shmem_truncate_range()`). A
/// page nobody else holds is freed; one a pin or a GUP reference holds stays.
fn gem_shmem_release(k: &mut Kernel, site: &'static str, pages: &[Pfn], inode: &ShmemInode) {
    trace!(
        k,
        site,
        "drm_gem_put_pages: {} page reference(s); fput(obj->filp)",
        pages.len()
    );
    k.put_pages(pages);
    inode.truncate(k);
    report_freed_reachable(k, pages, site);
}

/// Whether a VMA of any mm has `file` as its `vm_file` (it holds a reference to it).
fn file_mapped(k: &Kernel, file: &Arc<File>) -> bool {
    k.mms.iter().any(|m| {
        m.vmas
            .values()
            .any(|v| v.file.as_ref().is_some_and(|f| Arc::ptr_eq(f, file)))
    })
}

/// The end of a GEM object whose mmap hands userspace its shmem file (`vm_file =
/// obj->filp`): `drm_gem_object_release()` → `fput(obj->filp)` (see [`gem_shmem_release`] for
/// whose reference goes). The inode is evicted only if no VMA holds the file: such a VMA keeps
/// the page cache, and its pages, alive.
fn gem_filp_release(k: &mut Kernel, site: &'static str, filp: &Arc<File>, inode: &ShmemInode) {
    if file_mapped(k, filp) {
        trace!(
            k,
            site,
            "fput(obj->filp): a VMA still holds the shmem file, its page cache stays"
        );
        return;
    }
    trace!(k, site, "fput(obj->filp): the shmem inode is evicted");
    let cached = inode.truncate(k);
    report_freed_reachable(k, &cached, site);
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
    /// The dma-buf is exported through drivers/gpu/drm/drm_prime.c:drm_gem_dmabuf_export (its
    /// file's `f_mapping` becomes the DRM device's); virtio-gpu's
    /// drivers/gpu/drm/virtio/virtgpu_prime.c:virtgpu_gem_prime_export calls
    /// `virtio_dma_buf_export()` → `dma_buf_export()` instead, and the file keeps the dma-buf
    /// inode's own mapping: a zap through the DRM device's address space does not reach its
    /// mappings.
    drm_f_mapping: bool,
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
            drm_f_mapping: true,
        }
    }
    /// virtio-gpu without blobs (`virtio_gpu_shmem_funcs`).
    pub fn virtio_gpu() -> ShmemHelper {
        ShmemHelper {
            id: "virtio-gpu",
            exp_name: "virtio_gpu",
            map_wc: false,
            own_filp_mmap_until: None,
            drm_f_mapping: false,
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
            drm_f_mapping: true,
        }
    }
    /// cirrus (`DRM_GEM_SHMEM_DRIVER_OPS`).
    pub fn cirrus() -> ShmemHelper {
        ShmemHelper {
            id: "cirrus",
            exp_name: "drm",
            map_wc: false,
            own_filp_mmap_until: None,
            drm_f_mapping: true,
        }
    }
}

#[derive(Debug)]
struct ShmemObject {
    pages: Vec<Pfn>,
    map_wc: bool,
    /// `obj->filp`'s inode.
    inode: Arc<ShmemInode>,
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
    /// drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_free →
    /// `drm_gem_shmem_put_pages_locked()` → `drm_gem_put_pages()`, and the shmem file
    /// ([`gem_shmem_release`]).
    fn release(&self, k: &mut Kernel) {
        gem_shmem_release(
            k,
            "drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_free",
            &self.pages,
            &self.inode,
        );
    }
}

/// vgem's dma-buf mmap before [`Fact::VgemShmemHelper`]: 5.10.262
/// drivers/gpu/drm/vgem/vgem_drv.c:vgem_prime_mmap, the driver's `gem_prime_mmap` called by
/// `drm_gem_dmabuf_mmap()` without `drm_gem_prime_mmap()` (no fake offset).
#[derive(Debug)]
struct ShmemFilpObject {
    filp: Arc<File>,
    pages: u64,
    inode: Arc<ShmemInode>,
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
    /// Its memory moves (a purge, an eviction, a swapout).
    fn backing_moves(&self) -> bool {
        true
    }
    /// The page cache of `obj->filp`, in index order.
    fn backing(&self, k: &Kernel) -> Vec<Pfn> {
        self.inode.cached(k)
    }
    /// 5.10.262 drivers/gpu/drm/vgem/vgem_drv.c:vgem_gem_free_object →
    /// `drm_gem_object_release()`: no pages held by the driver, `fput(obj->filp)`
    /// ([`gem_filp_release`]: the mappings hold the shmem file, not the dma-buf).
    fn release(&self, k: &mut Kernel) {
        gem_filp_release(
            k,
            "drivers/gpu/drm/vgem/vgem_drv.c:vgem_gem_free_object",
            &self.filp,
            &self.inode,
        );
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
                let (filp, inode) = memfd_create("drm mm object", cx.pages, false);
                Arc::new(ShmemFilpObject {
                    filp,
                    pages: cx.pages,
                    inode,
                })
            }
            _ => {
                let (inode, pages) = shmem_object_pages(k, cx.pages)?;
                Arc::new(ShmemObject {
                    pages,
                    map_wc: self.map_wc,
                    inode,
                })
            }
        };
        if self.drm_f_mapping {
            let dev = k.new_address_space();
            Ok(export_drm_rdwr(
                k,
                cx.pages,
                self.exp_name,
                ops,
                cx.policy,
                dev,
            ))
        } else {
            trace!(
                k,
                "drivers/gpu/drm/virtio/virtgpu_prime.c:virtgpu_gem_prime_export",
                "virtio_dma_buf_export -> dma_buf_export: the file keeps its own f_mapping"
            );
            Ok(export_rdwr(k, cx.pages, self.exp_name, ops, cx.policy))
        }
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

/// Where a TTM BO's contents are: `bo->resource->mem_type` and `bo->ttm`, kept by the kernel
/// ([`Objects::bo_places`](pfnguard_mm::kernel::Objects::bo_places), by the BO's `dev_mapping`).
type TtmPlace = BoPlace;

/// A TTM buffer object, as its `dma_buf_ops` and its `ttm_bo_vm_ops` know it; its placement is
/// state of the kernel ([`TtmState::place`]).
#[derive(Debug)]
struct TtmState {
    /// `bo->base.size` in pages.
    nr: u64,
    /// `bdev->dev_mapping`: the DRM device's `anon_inode->i_mapping`
    /// (drivers/gpu/drm/ttm/ttm_device.c:ttm_device_init), where the dma-buf's file also maps
    /// (drivers/gpu/drm/drm_prime.c:drm_gem_dmabuf_export). One per BO in the model: the key
    /// of its placement in [`Objects::bo_places`](pfnguard_mm::kernel::Objects::bo_places).
    dev_mapping: u64,
    /// The frames the BO had at export (`ttm_pool_alloc()` or VRAM), for
    /// [`DmaBufOps::pages`]; where it is now is [`TtmState::place`].
    exported: Vec<Pfn>,
}

impl TtmState {
    /// Where the BO's contents are in `k` (gone when `k` has no record of it).
    fn place<'k>(&self, k: &'k Kernel) -> &'k TtmPlace {
        k.objects
            .bo_places
            .get(&self.dev_mapping)
            .unwrap_or(&TtmPlace::Gone)
    }

    /// Set where the BO's contents are in `k`; the previous placement.
    fn set_place(&self, k: &mut Kernel, place: TtmPlace) -> TtmPlace {
        k.objects
            .bo_places
            .insert(self.dev_mapping, place)
            .unwrap_or(TtmPlace::Gone)
    }

    /// The frames a fault or an attachment maps now (none when swapped out or gone).
    fn resident(&self, k: &Kernel) -> Vec<Pfn> {
        match self.place(k) {
            TtmPlace::Vram(p) | TtmPlace::Tt(p) => p.clone(),
            _ => Vec::new(),
        }
    }

    /// The frames holding the contents now: resident pages, or the swap storage's.
    fn backing(&self, k: &Kernel) -> Vec<Pfn> {
        match self.place(k) {
            TtmPlace::Vram(p) | TtmPlace::Tt(p) => p.clone(),
            TtmPlace::Swapped(swap) => swap.cached(k),
            TtmPlace::Gone => Vec::new(),
        }
    }

    /// drivers/gpu/drm/ttm/ttm_bo_vm.c:ttm_bo_vm_fault_reserved → `ttm_bo_populate()` →
    /// drivers/gpu/drm/ttm/ttm_tt.c:ttm_tt_populate: a swapped-out BO gets new pool pages
    /// (`ttm_pool_alloc()`), then `ttm_tt_swapin()` copies each page back from the swap storage
    /// (`copy_highpage()`, `put_page()` of the shmem page) and `fput(swap_storage)` evicts it.
    /// Returns the resident frames (none once the BO is gone).
    fn populate(&self, k: &mut Kernel) -> KResult<Vec<Pfn>> {
        const F: &str = "drivers/gpu/drm/ttm/ttm_tt.c:ttm_tt_populate";
        let TtmPlace::Swapped(swap) = self.place(k) else {
            return Ok(self.resident(k));
        };
        let swap = swap.clone();
        let pages = alloc_noncompound_block(k, self.nr)?;
        trace!(
            k,
            F,
            "ttm_pool_alloc: {} new page(s); ttm_tt_swapin: copied back, fput(swap_storage)",
            pages.len()
        );
        swap.truncate(k);
        self.set_place(k, TtmPlace::Tt(pages.clone()));
        Ok(pages)
    }

    /// drivers/gpu/drm/ttm/ttm_bo.c:ttm_bo_unmap_virtual → `drm_vma_node_unmap(&bo->base.vma_node,
    /// bdev->dev_mapping)` (include/drm/drm_vma_manager.h) → `unmap_mapping_range(dev_mapping,
    /// node offset, node size, 1)`: every user PTE of the BO in the device's address space —
    /// the DRM fd's mappings and, through `drm_gem_dmabuf_export()`'s `f_mapping`, the
    /// dma-buf fd's (whose `vm_pgoff` carries the fake offset `drm_gem_prime_mmap()` added).
    fn unmap_virtual(&self, k: &mut Kernel) {
        let n = pfnguard_mm::zap::unmap_mapping_range(
            k,
            self.dev_mapping,
            DRM_FILE_PAGE_OFFSET_START,
            self.nr,
        );
        trace!(
            k,
            "drivers/gpu/drm/ttm/ttm_bo.c:ttm_bo_unmap_virtual",
            "drm_vma_node_unmap(bdev->dev_mapping): {n} VMA(s) zapped"
        );
    }

    /// drivers/gpu/drm/ttm/ttm_pool.c:ttm_pool_free of a populated `ttm_tt`: `__free_pages()`
    /// of the non-compound pool block (the TTM pool gives cached pages of a device without
    /// `use_dma_alloc` straight back: `ttm_pool_select_type()` has no pool for them).
    fn free_tt(k: &mut Kernel, pages: &[Pfn], site: &'static str) {
        if let Some(&first) = pages.first() {
            let order = (pages.len() as u64).next_power_of_two().trailing_zeros() as u8;
            trace!(
                k,
                site,
                "ttm_pool_free: __free_pages(pfn {first}, order {order})"
            );
            free_pages(k, first, order);
        }
        report_freed_reachable(k, pages, site);
    }
}

#[derive(Debug)]
struct TtmBo {
    bo: Arc<TtmState>,
    /// `drm_gem_dmabuf_mmap()` reaches `drm_gem_prime_mmap()` (the driver's `.gem_prime_mmap`,
    /// or the generic call of 6.6+); otherwise it returns -ENOSYS.
    prime_mmap: bool,
    /// A dynamic exporter: drivers/gpu/drm/amd/amdgpu/amdgpu_dma_buf.c:amdgpu_dmabuf_ops sets
    /// `.pin`/`.unpin` (and amdgpu_bo_move_notify calls `dma_buf_move_notify()` before a move);
    /// qxl and bochs export through `drm_gem_prime_export()` (`drm_gem_prime_dmabuf_ops`, no
    /// `.pin`: `drm_gem_map_attach()` pins the object for the attachment's lifetime).
    dynamic: bool,
}

impl DmaBufOps for TtmBo {
    fn is_dynamic(&self) -> bool {
        self.dynamic
    }
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
            bo: self.bo.clone(),
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
    /// The frames the BO had at export; [`DmaBufOps::backing`] says where it is now.
    fn pages(&self) -> Vec<Pfn> {
        self.bo.exported.clone()
    }
    /// Its memory moves (a purge, an eviction, a swapout).
    fn backing_moves(&self) -> bool {
        true
    }
    fn backing(&self, k: &Kernel) -> Vec<Pfn> {
        self.bo.backing(k)
    }

    /// The BO's last reference goes (drivers/gpu/drm/drm_prime.c:drm_gem_dmabuf_release →
    /// `drm_gem_object_put()`; the modeled program closed its GEM handle, a mapping's
    /// `ttm_bo_vm_open()` reference is gone with the mapping) →
    /// drivers/gpu/drm/ttm/ttm_bo.c:ttm_bo_release → `ttm_bo_cleanup_memtype_use()`:
    /// `ttm_bo_tt_destroy()` (a populated `ttm_tt`: `ttm_pool_free()`, [`TtmState::free_tt`]; a
    /// swapped one: `fput(swap_storage)`) and `ttm_resource_free()` (VRAM goes back to the
    /// driver's manager whatever still maps it: [`free_device_range`]).
    fn release(&self, k: &mut Kernel) {
        const F: &str = "drivers/gpu/drm/ttm/ttm_bo.c:ttm_bo_release";
        let old = self.bo.set_place(k, TtmPlace::Gone);
        match old {
            TtmPlace::Vram(p) => free_device_range(k, &p, F),
            TtmPlace::Tt(p) => TtmState::free_tt(k, &p, F),
            TtmPlace::Swapped(swap) => {
                trace!(k, F, "ttm_tt_destroy: fput(swap_storage)");
                let cached = swap.truncate(k);
                report_freed_reachable(k, &cached, F);
            }
            TtmPlace::Gone => {}
        }
    }

    /// The BO leaves its memory, by the TTM path its placement takes:
    ///
    /// - in VRAM (amdgpu): drivers/gpu/drm/ttm/ttm_bo.c:ttm_bo_evict →
    ///   `ttm_bo_handle_move_mem()`: [`ttm_bo_unmap_virtual`](TtmState::unmap_virtual) first,
    ///   then `ttm_tt_create()` + `ttm_bo_populate()` of the new TT placement (new pool pages),
    ///   the driver's `move` copies, and `ttm_resource_free()` gives the VRAM back
    ///   ([`free_device_range`]): the BO now lives in the pool pages;
    /// - in system memory (qxl's and bochs' dumb BOs, amdgpu's after a VRAM eviction): a
    ///   TTM_PL_SYSTEM BO is not evicted but swapped out, drivers/gpu/drm/ttm/ttm_bo.c:
    ///   ttm_bo_swapout_cb → `ttm_bo_unmap_virtual()`, then
    ///   drivers/gpu/drm/ttm/ttm_tt.c:ttm_tt_swapout: a "ttm swap" shmem file gets a copy of
    ///   every page and `ttm_tt_unpopulate()` → `ttm_pool_free()` frees the pool block
    ///   ([`free_pages`]: the first page put, the rest freed whatever holds them). The next
    ///   fault swaps in ([`TtmState::populate`]): new pool pages.
    /// - already swapped out: `ttm_bo_swapout_cb()` skips a BO whose `ttm_tt` is not
    ///   populated: Ok, nothing changes.
    ///
    /// The BO's memory never moves under a PTE the zap reached; a GUP reference or a pin taken
    /// before keeps its page (refcounted pool pages stay allocated, no longer the BO's).
    fn evict(&self, k: &mut Kernel) -> KResult<()> {
        const EVICT: &str = "drivers/gpu/drm/ttm/ttm_bo.c:ttm_bo_evict";
        const SWAPOUT: &str = "drivers/gpu/drm/ttm/ttm_tt.c:ttm_tt_swapout";
        match self.bo.place(k) {
            TtmPlace::Vram(old) => {
                let old = old.clone();
                trace!(k, EVICT, "VRAM -> TT: ttm_bo_handle_move_mem");
                self.bo.unmap_virtual(k);
                let new = alloc_noncompound_block(k, self.bo.nr)?;
                self.bo.set_place(k, TtmPlace::Tt(new));
                free_device_range(
                    k,
                    &old,
                    "drivers/gpu/drm/ttm/ttm_resource.c:ttm_resource_free",
                );
                Ok(())
            }
            TtmPlace::Tt(old) => {
                let old = old.clone();
                trace!(
                    k,
                    "drivers/gpu/drm/ttm/ttm_bo.c:ttm_bo_swapout_cb",
                    "system BO: swapped out, not evicted"
                );
                self.bo.unmap_virtual(k);
                let (_file, swap) = memfd_create("ttm swap", self.bo.nr, false);
                for i in 0..self.bo.nr {
                    swap.get_page(k, i)?;
                }
                trace!(
                    k,
                    SWAPOUT,
                    "{} page(s) copied to shmem; ttm_tt_unpopulate",
                    self.bo.nr
                );
                self.bo.set_place(k, TtmPlace::Swapped(swap));
                TtmState::free_tt(k, &old, SWAPOUT);
                Ok(())
            }
            TtmPlace::Swapped(_) => {
                trace!(
                    k,
                    "drivers/gpu/drm/ttm/ttm_bo.c:ttm_bo_swapout_cb",
                    "ttm_tt not populated: skipped"
                );
                Ok(())
            }
            TtmPlace::Gone => Err(Errno::EOPNOTSUPP.into()),
        }
    }
}

/// `ttm_bo_vm_ops`: `.fault`, `.open`, `.close`, `.access = ttm_bo_vm_access`.
#[derive(Debug)]
struct TtmBoVmOps {
    bo: Arc<TtmState>,
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
    /// offset; beyond the BO → SIGBUS; `ttm_bo_populate()` ([`TtmState::populate`]: a
    /// swapped-out BO comes back in new pages); then up to 16 `vmf_insert_pfn_prot()`s of the
    /// pages backing the BO now — on a VM_MIXEDMAP VMA (before [`Fact::TtmPfnmap`])
    /// `vmf_insert_mixed_prot(vma, address, __pfn_to_pfn_t(pfn, PFN_DEV), prot)`, a special PTE
    /// too (5.10.262 drivers/gpu/drm/ttm/ttm_bo_vm.c:ttm_bo_vm_fault_reserved); an error on the
    /// first one returns VM_FAULT_NOPAGE, later ones end the prefault.
    fn fault(&self, cx: &mut FaultCtx<'_>) -> KResult<VmFault> {
        const F: &str = "drivers/gpu/drm/ttm/ttm_bo_vm.c:ttm_bo_vm_fault_reserved";
        let Some(v) = cx.vma() else {
            return Ok(VmFault::SIGBUS);
        };
        let mut off =
            (cx.vmf.address.0 - v.start.0) / PAGE_SIZE + v.pgoff - DRM_FILE_PAGE_OFFSET_START;
        let last = v.pages() + v.pgoff - DRM_FILE_PAGE_OFFSET_START;
        let n = self.bo.nr;
        if off >= n {
            trace!(cx.kernel(), F, "page offset {off} beyond the BO -> SIGBUS");
            return Ok(VmFault::SIGBUS);
        }
        let pages = self.bo.populate(cx.kernel())?;
        if pages.len() as u64 != n {
            trace!(cx.kernel(), F, "the BO has no backing -> SIGBUS");
            return Ok(VmFault::SIGBUS);
        }
        let mut addr = cx.vmf.address;
        let mut ret = VmFault::NOPAGE;
        for i in 0..TTM_PREFAULT {
            let pfn = pages[off as usize];
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
        if len64 < 1 || off + len64 > self.bo.nr * PAGE_SIZE {
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
    /// TTM pool pages (`ttm_pool_alloc()`: high-order allocations without `__GFP_COMP`) or VRAM;
    /// exported through `drm_gem_prime_export()` → `drm_gem_dmabuf_export()` (the file's
    /// `f_mapping` is the device's, `bdev->dev_mapping`).
    fn export(&self, k: &mut Kernel, cx: &ExportCtx) -> KResult<Exported> {
        let hook = self.own_prime_export;
        prime_export_allowed(k, hook)?;
        let place = if self.vram {
            TtmPlace::Vram(device_frames(k, cx.pages))
        } else {
            TtmPlace::Tt(alloc_noncompound_block(k, cx.pages)?)
        };
        let prime_mmap = self.own_prime_mmap || k.has(Fact::DrmGenericPrime);
        let dev_mapping = k.new_address_space();
        let exported = match &place {
            TtmPlace::Vram(p) | TtmPlace::Tt(p) => p.clone(),
            _ => Vec::new(),
        };
        k.objects.bo_places.insert(dev_mapping, place);
        let bo = Arc::new(TtmState {
            nr: cx.pages,
            dev_mapping,
            exported,
        });
        Ok(export_drm_rdwr(
            k,
            cx.pages,
            self.exp_name,
            Arc::new(TtmBo {
                bo,
                prime_mmap,
                dynamic: self.id == "amdgpu",
            }),
            cx.policy,
            dev_mapping,
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
    inode: Arc<ShmemInode>,
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
    /// Its memory moves (a purge, an eviction, a swapout).
    fn backing_moves(&self) -> bool {
        true
    }
    /// The page cache of `obj->base.filp`, in index order.
    fn backing(&self, k: &Kernel) -> Vec<Pfn> {
        self.inode.cached(k)
    }
    /// The shrinker purges the object: drivers/gpu/drm/i915/gem/i915_gem_shrinker.c:
    /// i915_gem_shrink → `__i915_gem_object_put_pages()` → i915_gem_shmem.c:shmem_shrink of an
    /// object its owner marked `I915_MADV_DONTNEED` (`i915_gem_madvise_ioctl`; the CPU
    /// mappings of the shmem file pin nothing of i915's) → `i915_gem_object_truncate()` →
    /// i915_gem_shmem.c:shmem_truncate → `shmem_truncate_range(file_inode(obj->base.filp), 0,
    /// -1)`. mm/truncate.c:truncate_cleanup_folio unmaps each mapped folio from every VMA of the
    /// file ([`unmap_mapping_folio`](pfnguard_mm::zap::unmap_mapping_folio)), the dma-buf's
    /// mappings included (their `vm_file` is `obj->base.filp`); a folio a pin or a GUP
    /// reference holds stays allocated outside the file, and the next fault of a mapping finds
    /// a hole that shmem fills with a new page.
    fn evict(&self, k: &mut Kernel) -> KResult<()> {
        const F: &str = "drivers/gpu/drm/i915/gem/i915_gem_shmem.c:shmem_truncate";
        let cached = self.inode.cached(k);
        trace!(
            k,
            F,
            "purge (I915_MADV_DONTNEED): shmem_truncate_range of {} cached page(s)",
            cached.len()
        );
        if let Some(host) = self.filp.mapping.host {
            pfnguard_mm::zap::unmap_mapping_folio(k, host, &cached);
        }
        self.inode.truncate(k);
        Ok(())
    }
    /// drivers/gpu/drm/i915/gem/i915_gem_dmabuf.c:i915_gem_dmabuf_release →
    /// `drm_gem_dmabuf_release()` → the object's last reference → `drm_gem_object_release()`:
    /// `fput(obj->base.filp)` ([`gem_filp_release`]: a mapping's `vm_file` is the shmem file,
    /// which keeps the page cache alive).
    fn release(&self, k: &mut Kernel) {
        gem_filp_release(
            k,
            "drivers/gpu/drm/drm_gem.c:drm_gem_object_release",
            &self.filp,
            &self.inode,
        );
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
        let (filp, inode) = memfd_create("i915", cx.pages, false);
        // `obj->base.filp->f_mapping`: the address space truncation unmaps through.
        let mut f = (*filp).clone();
        f.mapping.host = Some(k.new_address_space());
        let filp = Arc::new(f);
        // i915_gem_prime_export → drm_gem_dmabuf_export: f_mapping is the device's.
        let dev = k.new_address_space();
        Ok(export_drm_rdwr(
            k,
            cx.pages,
            "i915",
            Arc::new(I915Object {
                filp,
                pages: cx.pages,
                inode,
            }),
            cx.policy,
            dev,
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
    /// drivers/gpu/drm/drm_gem_dma_helper.c:drm_gem_dma_free (the object's last reference, see
    /// [`gem_shmem_release`]) → `dma_free_wc()` → kernel/dma/direct.c:dma_direct_free →
    /// `__free_pages()` of the non-compound block: the first page put, the others freed
    /// whatever holds them ([`free_pages`]).
    fn release(&self, k: &mut Kernel) {
        const F: &str = "drivers/gpu/drm/drm_gem_dma_helper.c:drm_gem_dma_free";
        if let Some(&first) = self.pages.first() {
            let order = (self.pages.len() as u64)
                .next_power_of_two()
                .trailing_zeros() as u8;
            free_pages(k, first, order);
        }
        report_freed_reachable(k, &self.pages, F);
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
        let dev = k.new_address_space();
        Ok(export_drm_rdwr(
            k,
            cx.pages,
            "drm",
            Arc::new(GemDmaObject { pages }),
            cx.policy,
            dev,
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
    inode: Arc<ShmemInode>,
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
    /// drivers/gpu/drm/rockchip/rockchip_drm_gem.c:rockchip_gem_free_iommu →
    /// `drm_gem_put_pages()`, and the shmem file ([`gem_shmem_release`]).
    fn release(&self, k: &mut Kernel) {
        gem_shmem_release(
            k,
            "drivers/gpu/drm/rockchip/rockchip_drm_gem.c:rockchip_gem_free_iommu",
            &self.pages,
            &self.inode,
        );
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
        let (inode, pages) = shmem_object_pages(k, cx.pages)?;
        let dev = k.new_address_space();
        Ok(export_drm_rdwr(
            k,
            cx.pages,
            "rockchip",
            Arc::new(RockchipObject { pages, inode }),
            cx.policy,
            dev,
        ))
    }
}

/// tegra GEM with pages (`tegra_bo_get_pages()` → `drm_gem_get_pages()`).
#[derive(Debug)]
pub struct Tegra;

#[derive(Debug)]
struct TegraObject {
    pages: Vec<Pfn>,
    inode: Arc<ShmemInode>,
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
    /// drivers/gpu/drm/tegra/gem.c:tegra_bo_free_object → `tegra_bo_free()` →
    /// `drm_gem_put_pages()`, and the shmem file ([`gem_shmem_release`]).
    fn release(&self, k: &mut Kernel) {
        gem_shmem_release(
            k,
            "drivers/gpu/drm/tegra/gem.c:tegra_bo_free",
            &self.pages,
            &self.inode,
        );
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
        let (inode, pages) = shmem_object_pages(k, cx.pages)?;
        let dev = k.new_address_space();
        Ok(export_drm_rdwr(
            k,
            cx.pages,
            "tegra",
            Arc::new(TegraObject { pages, inode }),
            cx.policy,
            dev,
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
    /// drivers/gpu/drm/virtio/virtgpu_vram.c:virtio_gpu_vram_free (the object's last
    /// reference): `virtio_gpu_cmd_unmap()` (the host takes its memory out of the host-visible
    /// window; the guest's `drm_mm` node goes when the reply comes) and
    /// `virtio_gpu_cmd_unref_resource()` — memory without `struct page`, free whatever still
    /// maps it ([`free_device_range`]).
    fn release(&self, k: &mut Kernel) {
        free_device_range(
            k,
            &self.pages,
            "drivers/gpu/drm/virtio/virtgpu_vram.c:virtio_gpu_vram_free",
        );
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
