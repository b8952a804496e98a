//! Models of real dma-buf exporters. Each runs the steps of its kernel mmap and fault functions
//! on the MM model, citing them; where the drivers of the modeled kernels differ, a
//! [`Fact`](pfnguard_mm::Fact) of the kernel says how, and whether the driver is built at all is
//! the kernel's [`KernelConfig`].

use std::sync::Arc;

use pfnguard_mm::frames::{AllocSpec, FolioFlags, Mapping};
use pfnguard_mm::shmem::ShmemInode;
use pfnguard_mm::{Errno, Fail, File, KResult, Kconfig, Kernel, KernelConfig, Pfn};
pub use pfnguard_report::ExporterId;

use crate::core::DmaBuf;
use crate::policy::Policy;

pub mod drm;
pub mod heaps;
pub mod memfd;
pub mod udmabuf;
pub mod vb2;

/// What an exporter model is given to allocate and export a buffer.
#[derive(Debug, Clone, Copy)]
pub struct ExportCtx {
    /// The proposal's policy in force.
    pub policy: Policy,
    /// Requested size in pages.
    pub pages: u64,
}

/// An exported buffer: the fd's file, and the dma-buf behind it (none for the memfd control).
///
/// An immutable description: its lifetime ([`Exported::release`], [`Exported::evict`],
/// [`Exported::move_notify`], [`Exported::backing`]) is state of the [`Kernel`] it is used in
/// (whether the dma-buf was released, where a TTM BO's contents are, the page caches of shmem
/// inodes), so a clone of that kernel carries its own copy and the same `Exported` describes
/// the buffer in both.
#[derive(Debug, Clone)]
pub struct Exported {
    /// The file userspace maps.
    pub file: Arc<File>,
    /// The dma-buf, when the file is one.
    pub buf: Option<Arc<DmaBuf>>,
    /// Size in bytes.
    pub size: u64,
    /// The memfd control's shmem inode (none for a dma-buf).
    pub shmem: Option<Arc<ShmemInode>>,
}

impl Exported {
    /// The last reference to the buffer's file goes.
    ///
    /// A dma-buf: drivers/dma-buf/dma-buf.c:dma_buf_file_release → `dma_buf_release()` →
    /// `dmabuf->ops->release()` ([`crate::core::dma_buf_release`]): each exporter gives its
    /// memory back as its kernel code does (see each exporter's `release`): refcounted pages
    /// are put and freed only when nothing else holds them (a pin, a GUP reference, a PTE with
    /// a reference); memory freed whatever holds it (device memory, the tail pages of a
    /// non-compound block) that a PTE or a pin still reaches is reported as
    /// [`Event::UseAfterFree`](pfnguard_mm::Event::UseAfterFree). The memfd control:
    /// the last `fput()` of a shmem file evicts its inode (mm/shmem.c:shmem_evict_inode →
    /// `shmem_truncate_range()`, [`ShmemInode::truncate`]).
    ///
    /// Precondition (the caller's): the kernel would release now — no fd and no VMA's
    /// `vm_file` keeps the file (an importer-forwarded mmap's `vm_file` is the dma-buf file too,
    /// drivers/dma-buf/dma-buf.c:dma_buf_mmap → `vma_set_file()`). A second call does nothing.
    pub fn release(&self, k: &mut Kernel) {
        match (&self.buf, &self.shmem) {
            (Some(b), _) => crate::core::dma_buf_release(k, b),
            (None, Some(inode)) => {
                pfnguard_mm::trace!(
                    k,
                    "mm/shmem.c:shmem_evict_inode",
                    "last reference to the memfd: shmem_truncate_range(0, -1)"
                );
                inode.truncate(k);
            }
            (None, None) => {}
        }
    }

    /// The exporter moves the buffer away from its current memory
    /// ([`DmaBufOps::evict`](crate::core::DmaBufOps::evict)), per exporter:
    ///
    /// - TTM (qxl, amdgpu, bochs before [`Fact::BochsGemShmem`](pfnguard_mm::Fact)): every user
    ///   PTE of the BO is zapped through the DRM device's address space
    ///   (drivers/gpu/drm/ttm/ttm_bo.c:ttm_bo_unmap_virtual → `drm_vma_node_unmap(&bo->base.vma_node,
    ///   bdev->dev_mapping)` → [`unmap_mapping_range`](pfnguard_mm::zap::unmap_mapping_range),
    ///   which reaches the dma-buf fd's mappings because
    ///   drivers/gpu/drm/drm_prime.c:drm_gem_dmabuf_export made the file's `f_mapping` that
    ///   address space); a VRAM BO moves to new TT pages (`ttm_bo_evict()`) and its VRAM is freed,
    ///   a system BO is swapped out (`ttm_bo_swapout_cb()` → `ttm_tt_swapout()`: the pool pages
    ///   are freed, the next fault brings new ones). The old memory is freed when unreferenced:
    ///   a reference taken before keeps its page (stale); later faults map the new backing.
    /// - the GEM shmem helper (vgem, virtio-gpu, cirrus, bochs since 6.15): -EOPNOTSUPP. Its
    ///   only way to drop pages is `drm_gem_shmem_purge_locked()`, and
    ///   include/drm/drm_gem_shmem_helper.h:drm_gem_shmem_is_purgeable is false for an object
    ///   with a `dma_buf` (`!shmem->base.dma_buf`): an exported object is never purged (and
    ///   none of these drivers has a shrinker that purges; panfrost's does).
    /// - the heaps, udmabuf (its memfd is sealed against shrinking, its folios pinned), vb2,
    ///   gem-dma, rockchip, tegra, virtio-gpu blobs: -EOPNOTSUPP, their memory is the buffer's
    ///   from export to release.
    /// - i915: -EOPNOTSUPP, not modeled (`i915_gem_shrink()` may drop the pages of an
    ///   object whose mappings are the shmem file's own, `vm_file = obj->base.filp`).
    /// - the memfd control: -EOPNOTSUPP (shmem pages move only by migration or swap, which a
    ///   mapping never sees).
    ///
    /// A released buffer: -EOPNOTSUPP too (nothing left to move; the caller should not ask).
    pub fn evict(&self, k: &mut Kernel) -> KResult<()> {
        match &self.buf {
            Some(b) if !b.is_released(k) => b.ops.evict(k),
            _ => Err(Errno::EOPNOTSUPP.into()),
        }
    }

    /// drivers/dma-buf/dma-buf.c:dma_buf_move_notify on the buffer
    /// ([`crate::core::dma_buf_move_notify`]): tells each dynamic importer its mapping is about
    /// to be invalid. No importer is ever attached in the model, so nothing observable happens;
    /// nothing for the memfd control (not a dma-buf).
    pub fn move_notify(&self, k: &mut Kernel) {
        if let Some(b) = &self.buf {
            crate::core::dma_buf_move_notify(k, b);
        }
    }

    /// Whether [`Exported::backing`] can ever differ from the frames at export while the
    /// buffer lives ([`DmaBufOps::backing_moves`](crate::core::DmaBufOps::backing_moves)); the
    /// memfd control's page cache changes as its pages are faulted in and punched out.
    pub fn backing_moves(&self) -> bool {
        match (&self.buf, &self.shmem) {
            (Some(b), _) => b.ops.backing_moves(),
            (None, Some(_)) => true,
            (None, None) => false,
        }
    }

    /// The frames backing the buffer now, in buffer order: after [`Exported::evict`] the new
    /// ones (or none while the contents are out of memory), after [`Exported::release`] none.
    /// A frame a PTE or a pin reaches that is not here and is not free is stale; one that is
    /// free ([`Frames::is_freed`](pfnguard_mm::frames::Frames::is_freed)) is a use-after-free.
    /// The memfd control: the pages in its page cache.
    pub fn backing(&self, k: &Kernel) -> Vec<Pfn> {
        match (&self.buf, &self.shmem) {
            (Some(b), _) if b.is_released(k) => Vec::new(),
            (Some(b), _) => b.ops.backing(k),
            (None, Some(inode)) => inode.cached(k),
            (None, None) => Vec::new(),
        }
    }
}

/// A dma-buf exporter (or the memfd control) as userspace allocates from it.
pub trait Exporter: std::fmt::Debug + Send + Sync {
    /// The exporter id (`vgem`, `system-heap`, ...).
    fn id(&self) -> &str;
    /// One line: the kernel path of its mmap.
    fn summary(&self) -> &'static str;
    /// The option the build lacks for this exporter, if it lacks one.
    fn not_built(&self, config: &KernelConfig) -> Option<Kconfig> {
        let id: ExporterId = self.id().parse().ok()?;
        driver_options(id).iter().copied().find(|o| !config.has(*o))
    }
    /// The buffer size this exporter always uses, in pages (user-described exporters).
    fn fixed_pages(&self) -> Option<u64> {
        None
    }
    /// Allocate and export a buffer (`export` op).
    fn export(&self, k: &mut Kernel, cx: &ExportCtx) -> KResult<Exported>;
}

/// The model of a catalogue exporter.
pub fn by_id(id: ExporterId) -> Arc<dyn Exporter> {
    match id {
        ExporterId::SystemHeap => Arc::new(heaps::SystemHeap),
        ExporterId::CmaHeap => Arc::new(heaps::CmaHeap),
        ExporterId::UdmabufShmem => Arc::new(udmabuf::Udmabuf { hugetlb: false }),
        ExporterId::UdmabufHugetlb => Arc::new(udmabuf::Udmabuf { hugetlb: true }),
        ExporterId::Vgem => Arc::new(drm::ShmemHelper::vgem()),
        ExporterId::VirtioGpu => Arc::new(drm::ShmemHelper::virtio_gpu()),
        ExporterId::Cirrus => Arc::new(drm::ShmemHelper::cirrus()),
        ExporterId::Bochs => Arc::new(drm::Bochs),
        ExporterId::Qxl => Arc::new(drm::Ttm::qxl()),
        ExporterId::Amdgpu => Arc::new(drm::Ttm::amdgpu()),
        ExporterId::I915 => Arc::new(drm::I915),
        ExporterId::GemDma => Arc::new(drm::GemDma),
        ExporterId::VividVmalloc => Arc::new(vb2::Vb2Vmalloc),
        ExporterId::VividDmaContig => Arc::new(vb2::Vb2DmaContig),
        ExporterId::Vb2DmaSg => Arc::new(vb2::Vb2DmaSg),
        ExporterId::Rockchip => Arc::new(drm::Rockchip),
        ExporterId::Tegra => Arc::new(drm::Tegra),
        ExporterId::VirtioGpuBlob => Arc::new(drm::VirtioGpuBlob),
        ExporterId::Memfd => Arc::new(memfd::Memfd),
    }
}

/// The Kconfig options that build a catalogue exporter's driver (drivers/*/Kconfig, Makefile).
pub fn driver_options(id: ExporterId) -> &'static [Kconfig] {
    match id {
        ExporterId::SystemHeap => &[Kconfig::DmabufHeaps, Kconfig::DmabufHeapsSystem],
        ExporterId::CmaHeap => &[Kconfig::DmabufHeaps, Kconfig::DmabufHeapsCma],
        ExporterId::UdmabufShmem => &[Kconfig::Udmabuf],
        ExporterId::UdmabufHugetlb => &[Kconfig::Udmabuf, Kconfig::Hugetlbfs],
        ExporterId::Vgem => &[Kconfig::DrmVgem],
        ExporterId::VirtioGpu | ExporterId::VirtioGpuBlob => &[Kconfig::DrmVirtioGpu],
        ExporterId::Cirrus => &[Kconfig::DrmCirrusQemu],
        ExporterId::Bochs => &[Kconfig::DrmBochs],
        ExporterId::Qxl => &[Kconfig::DrmQxl],
        ExporterId::Amdgpu => &[Kconfig::DrmAmdgpu],
        ExporterId::I915 => &[Kconfig::DrmI915],
        ExporterId::GemDma => &[Kconfig::DrmGemDmaHelper],
        ExporterId::Rockchip => &[Kconfig::DrmRockchip],
        ExporterId::Tegra => &[Kconfig::DrmTegra],
        ExporterId::VividVmalloc | ExporterId::VividDmaContig => &[Kconfig::VideoVivid],
        ExporterId::Vb2DmaSg => &[Kconfig::Videobuf2DmaSg],
        ExporterId::Memfd => &[],
    }
}

/// Every catalogue exporter, in table order.
pub fn catalogue() -> Vec<Arc<dyn Exporter>> {
    ExporterId::ALL.iter().map(|&id| by_id(id)).collect()
}

/// `dma_buf_export()` + `dma_buf_fd(O_RDWR)` of a buffer of `pages` pages.
pub fn export_rdwr(
    k: &mut Kernel,
    pages: u64,
    exp_name: &'static str,
    ops: Arc<dyn crate::core::DmaBufOps>,
    policy: Policy,
) -> Exported {
    let size = pages * pfnguard_mm::PAGE_SIZE;
    let buf = DmaBuf::new(k, size, exp_name, ops);
    Exported {
        file: crate::core::export_file(buf.clone(), true, policy),
        buf: Some(buf),
        size,
        shmem: None,
    }
}

/// drivers/gpu/drm/drm_prime.c:drm_gem_dmabuf_export (through `drm_gem_prime_export()`) +
/// `dma_buf_fd(O_RDWR)`: [`export_rdwr`], then `dma_buf->file->f_mapping =
/// obj->dev->anon_inode->i_mapping`: `dev_mapping`, where the object's driver zaps.
pub fn export_drm_rdwr(
    k: &mut Kernel,
    pages: u64,
    exp_name: &'static str,
    ops: Arc<dyn crate::core::DmaBufOps>,
    policy: Policy,
    dev_mapping: u64,
) -> Exported {
    let size = pages * pfnguard_mm::PAGE_SIZE;
    let buf = DmaBuf::with_f_mapping(k, size, exp_name, ops, dev_mapping);
    Exported {
        file: crate::core::export_file(buf.clone(), true, policy),
        buf: Some(buf),
        size,
        shmem: None,
    }
}

/// The `->fault` of exporters that keep a page array and map `pages[vmf->pgoff]`: either
/// `vmf_insert_pfn()` (special PTE) or `vmf->page` with `get_page()` (normal PTE through
/// `finish_fault()`). drivers/dma-buf/heaps/cma_heap.c:`cma_heap_vm_fault` and
/// drivers/dma-buf/udmabuf.c:`udmabuf_vm_fault` are this function.
#[derive(Debug)]
pub struct PageArrayVmOps {
    /// The kernel `vm_operations_struct`.
    pub name: &'static str,
    /// The kernel fault function, for traces.
    pub fault_fn: &'static str,
    /// The buffer's pages.
    pub pages: Vec<Pfn>,
    /// `vmf_insert_pfn()` rather than `vmf->page`.
    pub inserts_pfn: bool,
    /// After the faulting pfn, insert every other PTE of the VMA too (udmabuf's "pre fault"
    /// loop, [`Fact::UdmabufPrefault`](pfnguard_mm::Fact::UdmabufPrefault)): from `vm_start` at
    /// `vm_pgoff`, skipping the faulting address, a pgoff beyond the buffer WARNs and ends it, an
    /// insert that fails ends it silently.
    pub prefault: bool,
}

impl pfnguard_mm::VmOperations for PageArrayVmOps {
    fn name(&self) -> &'static str {
        self.name
    }
    fn has_fault(&self) -> bool {
        true
    }
    fn fault(&self, cx: &mut pfnguard_mm::FaultCtx<'_>) -> KResult<pfnguard_mm::VmFault> {
        let pgoff = cx.vmf.pgoff;
        let Some(&p) = self.pages.get(pgoff as usize) else {
            pfnguard_mm::trace!(
                cx.kernel(),
                self.fault_fn,
                "pgoff {pgoff} beyond the buffer -> SIGBUS"
            );
            return Ok(pfnguard_mm::VmFault::SIGBUS);
        };
        if self.inserts_pfn {
            pfnguard_mm::trace!(cx.kernel(), self.fault_fn, "vmf_insert_pfn(pfn {p})");
            let a = cx.vmf.address;
            let ret = cx.vmf_insert_pfn(a, p)?;
            if self.prefault && !ret.intersects(pfnguard_mm::VmFault::ERROR) {
                self.prefault_vma(cx, a)?;
            }
            Ok(ret)
        } else {
            pfnguard_mm::trace!(
                cx.kernel(),
                self.fault_fn,
                "vmf->page = pages[{pgoff}]; get_page"
            );
            cx.set_page(p);
            Ok(pfnguard_mm::VmFault::NONE)
        }
    }
}

impl PageArrayVmOps {
    /// The "pre fault" loop of drivers/dma-buf/udmabuf.c:`udmabuf_vm_fault` (6.14+).
    fn prefault_vma(
        &self,
        cx: &mut pfnguard_mm::FaultCtx<'_>,
        faulted: pfnguard_mm::VirtAddr,
    ) -> KResult<()> {
        let Some(v) = cx.vma() else {
            return Ok(());
        };
        let (mut addr, mut pgoff) = (v.start, v.pgoff);
        let mut n = 0;
        while addr < v.end {
            if addr != faulted {
                let Some(&p) = self.pages.get(pgoff as usize) else {
                    cx.kernel()
                        .warn(self.fault_fn, "pgoff >= ubuf->pagecount (pre fault)");
                    break;
                };
                if cx
                    .vmf_insert_pfn(addr, p)?
                    .intersects(pfnguard_mm::VmFault::ERROR)
                {
                    break;
                }
                n += 1;
            }
            addr = addr.add_pages(1);
            pgoff += 1;
        }
        pfnguard_mm::trace!(
            cx.kernel(),
            self.fault_fn,
            "pre fault: vmf_insert_pfn for {n} more PTE(s) of the VMA"
        );
        Ok(())
    }
}

/// `n` independent `alloc_page(GFP_KERNEL)` pages (refcount 1, mapping NULL).
pub fn alloc_driver_pages(k: &mut Kernel, n: u64, flags: FolioFlags) -> KResult<Vec<Pfn>> {
    (0..n)
        .map(|_| {
            k.frames
                .alloc(AllocSpec {
                    order: 0,
                    compound: false,
                    mapping: Mapping::None,
                    flags,
                })
                .ok_or(Fail::Errno(Errno::ENOMEM))
        })
        .collect()
}

/// One high-order allocation without `__GFP_COMP` covering `n` pages (dma-direct, TTM pool):
/// only the first page holds a reference.
pub fn alloc_noncompound_block(k: &mut Kernel, n: u64) -> KResult<Vec<Pfn>> {
    let order = n.next_power_of_two().trailing_zeros() as u8;
    let head = k
        .frames
        .alloc(AllocSpec {
            order,
            compound: false,
            mapping: Mapping::None,
            flags: FolioFlags::empty(),
        })
        .ok_or(Fail::Errno(Errno::ENOMEM))?;
    Ok((0..n).map(|i| Pfn(head.0 + i)).collect())
}

/// CMA pages (`cma_alloc()`): order-0, refcount 1, mapping NULL, in a CMA pageblock, not on the
/// LRU.
pub fn alloc_cma_pages(k: &mut Kernel, n: u64) -> KResult<Vec<Pfn>> {
    alloc_driver_pages(k, n, FolioFlags::CMA)
}

/// A device aperture of `n` frames without `struct page` (VRAM, a PCI BAR).
pub fn device_frames(k: &mut Kernel, n: u64) -> Vec<Pfn> {
    let base = k.frames.alloc_device(n);
    (0..n).map(|i| Pfn(base.0 + i)).collect()
}
