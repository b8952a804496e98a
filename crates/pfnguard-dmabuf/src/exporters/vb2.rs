//! videobuf2 exporters (drivers/media/common/videobuf2): VIDIOC_EXPBUF of an MMAP buffer.

use std::sync::Arc;

use pfnguard_mm::insert::VmallocArea;
use pfnguard_mm::page_free::{free_pages, report_freed_reachable};
use pfnguard_mm::{trace, Errno, Fact, KResult, Kernel, Pfn, VmFlags, VmOperations, VmaNew};

use super::{
    alloc_driver_pages, alloc_noncompound_block, export_rdwr, ExportCtx, Exported, Exporter,
};
use crate::core::DmaBufOps;

/// `vb2_common_vm_ops`: `.open`/`.close` only — no `.fault`, no `.access`.
#[derive(Debug)]
struct Vb2CommonVmOps;

impl VmOperations for Vb2CommonVmOps {
    fn name(&self) -> &'static str {
        "vb2_common_vm_ops"
    }
}

/// vivid with `allocators=0`: videobuf2-vmalloc.
#[derive(Debug)]
pub struct Vb2Vmalloc;

#[derive(Debug)]
struct Vb2VmallocBuf {
    area: VmallocArea,
}

impl DmaBufOps for Vb2VmallocBuf {
    /// `vb2_vmalloc_dmabuf_ops_mmap()` → `vb2_vmalloc_mmap()`: `remap_vmalloc_range(vma, vaddr, 0)`
    /// (ignores `vm_pgoff`; `vm_insert_page()` per page → VM_MIXEDMAP, normal PTEs), then
    /// VM_DONTEXPAND and `vm_ops = &vb2_common_vm_ops`. No VM_SHARED check on this path.
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        trace!(
            vma.kernel(),
            "drivers/media/common/videobuf2/videobuf2-vmalloc.c:vb2_vmalloc_mmap",
            "remap_vmalloc_range(vma, vaddr, 0)"
        );
        vma.set_mixedmap().remap_vmalloc_range(&self.area, 0)?;
        vma.set_flags(VmFlags::DONTEXPAND);
        vma.set_ops(Arc::new(Vb2CommonVmOps));
        Ok(())
    }
    fn pages(&self) -> Vec<Pfn> {
        self.area.pages.clone()
    }
    /// `vb2_vmalloc_dmabuf_ops_release()` →
    /// drivers/media/common/videobuf2/videobuf2-vmalloc.c:vb2_vmalloc_put: the dma-buf's
    /// reference on the vb2 buffer (taken by `vb2_vmalloc_get_dmabuf()`) is the last one — the
    /// modeled program freed the queue's buffers (VIDIOC_REQBUFS with count 0) after
    /// VIDIOC_EXPBUF, and a mapping's `vb2_common_vm_open()` reference is gone with the
    /// mapping — so `vfree(buf->vaddr)` (mm/vmalloc.c:vfree → `vm_area_free_pages()` →
    /// `free_pages_bulk()`; 6.1/6.12 `__free_page()` per page; "that memory is reference
    /// counted, so it will not be freed until the last user goes away"): each page is freed
    /// once its last reference goes, a pin keeps it.
    fn release(&self, k: &mut Kernel) {
        const F: &str = "drivers/media/common/videobuf2/videobuf2-vmalloc.c:vb2_vmalloc_put";
        trace!(
            k,
            F,
            "vfree: __free_page of {} page(s)",
            self.area.pages.len()
        );
        for &p in &self.area.pages {
            free_pages(k, p, 0);
        }
        report_freed_reachable(k, &self.area.pages, F);
    }
}

impl Exporter for Vb2Vmalloc {
    fn id(&self) -> &str {
        "vivid-vmalloc"
    }
    fn summary(&self) -> &'static str {
        "vb2_vmalloc_mmap: remap_vmalloc_range -> vm_insert_page (VM_MIXEDMAP, normal PTEs)"
    }
    fn export(&self, k: &mut Kernel, cx: &ExportCtx) -> KResult<Exported> {
        let area = VmallocArea::vmalloc_user(k, cx.pages)?;
        Ok(export_rdwr(
            k,
            cx.pages,
            "videobuf2_vmalloc",
            Arc::new(Vb2VmallocBuf { area }),
            cx.policy,
        ))
    }
}

/// vivid with `allocators=1`: videobuf2-dma-contig on dma-direct.
#[derive(Debug)]
pub struct Vb2DmaContig;

#[derive(Debug)]
struct Vb2DcBuf {
    pages: Vec<Pfn>,
}

/// x86 `dma_direct_mmap()` (kernel/dma/direct.c): `vm_pgoff >= count` or the VMA longer than
/// the rest → -ENXIO; else one `remap_pfn_range()` of the whole VMA from `pfn + vm_pgoff`.
pub fn dma_direct_mmap(vma: &mut VmaNew<'_>, pages: &[Pfn]) -> KResult<()> {
    const F: &str = "kernel/dma/direct.c:dma_direct_mmap";
    let v = vma.vma();
    let count = pages.len() as u64;
    if v.pgoff >= count || v.pages() > count - v.pgoff {
        trace!(
            vma.kernel(),
            F,
            "vm_pgoff {} / {} pages outside the {count}-page buffer -> -ENXIO",
            v.pgoff,
            v.pages()
        );
        return Err(Errno::ENXIO.into());
    }
    let first = pages.first().copied().unwrap_or_default();
    trace!(
        vma.kernel(),
        F,
        "remap_pfn_range of the whole VMA from pfn {first} + {}",
        v.pgoff
    );
    vma.remap_pfn_range(v.start, Pfn(first.0 + v.pgoff), v.len())
}

impl DmaBufOps for Vb2DcBuf {
    /// `vb2_dc_dmabuf_ops_mmap()` → `vb2_dc_mmap()` → `dma_mmap_attrs()` → `dma_direct_mmap()`,
    /// then `vm_flags_set(VM_DONTEXPAND|VM_DONTDUMP)` and `vb2_common_vm_ops`.
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        trace!(
            vma.kernel(),
            "drivers/media/common/videobuf2/videobuf2-dma-contig.c:vb2_dc_mmap",
            "dma_mmap_attrs"
        );
        dma_direct_mmap(vma, &self.pages)?;
        vma.set_flags(VmFlags::DONTEXPAND | VmFlags::DONTDUMP);
        vma.set_ops(Arc::new(Vb2CommonVmOps));
        Ok(())
    }
    fn pages(&self) -> Vec<Pfn> {
        self.pages.clone()
    }
    /// `vb2_dc_dmabuf_ops_release()` →
    /// drivers/media/common/videobuf2/videobuf2-dma-contig.c:vb2_dc_put (the last reference,
    /// as for vb2-vmalloc) → `dma_free_attrs()` → kernel/dma/direct.c:dma_direct_free →
    /// `__dma_direct_free_pages()` → `dma_free_contiguous()` → `__free_pages(page,
    /// get_order(size))` of the non-compound block ([`free_pages`]): the first page is put, every
    /// other page is freed whatever holds it. The mapping is `remap_pfn_range()` (special PTEs):
    /// one still reaching the block is reported.
    fn release(&self, k: &mut Kernel) {
        const F: &str = "kernel/dma/direct.c:dma_direct_free";
        let Some(&first) = self.pages.first() else {
            return;
        };
        let order = (self.pages.len() as u64)
            .next_power_of_two()
            .trailing_zeros() as u8;
        trace!(k, F, "__free_pages(pfn {first}, order {order})");
        free_pages(k, first, order);
        report_freed_reachable(k, &self.pages, F);
    }
}

impl Exporter for Vb2DmaContig {
    fn id(&self) -> &str {
        "vivid-dma-contig"
    }
    fn summary(&self) -> &'static str {
        "vb2_dc_mmap: dma_direct_mmap -> remap_pfn_range of the whole VMA (VM_IO|VM_PFNMAP|VM_PAT)"
    }
    /// `vb2_dc_alloc()` → `dma_alloc_attrs()` → dma-direct `alloc_pages_node(order)` without
    /// `__GFP_COMP`: only the first page is refcounted.
    fn export(&self, k: &mut Kernel, cx: &ExportCtx) -> KResult<Exported> {
        let pages = alloc_noncompound_block(k, cx.pages)?;
        Ok(export_rdwr(
            k,
            cx.pages,
            "videobuf2_dma_contig",
            Arc::new(Vb2DcBuf { pages }),
            cx.policy,
        ))
    }
}

/// videobuf2-dma-sg.
#[derive(Debug)]
pub struct Vb2DmaSg;

#[derive(Debug)]
struct Vb2SgBuf {
    pages: Vec<Pfn>,
}

impl DmaBufOps for Vb2SgBuf {
    /// `vb2_dma_sg_mmap()`: `vm_map_pages(vma, buf->pages, buf->num_pages)` (honours
    /// `vm_pgoff`; VM_MIXEDMAP, normal PTEs), then VM_DONTEXPAND|VM_DONTDUMP with
    /// [`Fact::Vb2DmaSgDontexpand`]; before it (5.10.262
    /// drivers/media/common/videobuf2/videobuf2-dma-sg.c:vb2_dma_sg_mmap) no flags of its own,
    /// so mremap may grow the VMA and a core dump includes it.
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        const F: &str = "drivers/media/common/videobuf2/videobuf2-dma-sg.c:vb2_dma_sg_mmap";
        trace!(vma.kernel(), F, "vm_map_pages");
        vma.set_mixedmap().vm_map_pages(&self.pages)?;
        if vma.kernel().has(Fact::Vb2DmaSgDontexpand) {
            vma.set_flags(VmFlags::DONTEXPAND | VmFlags::DONTDUMP);
        } else {
            trace!(vma.kernel(), F, "no VM_DONTEXPAND|VM_DONTDUMP");
        }
        vma.set_ops(Arc::new(Vb2CommonVmOps));
        Ok(())
    }
    fn pages(&self) -> Vec<Pfn> {
        self.pages.clone()
    }
    /// `vb2_dma_sg_dmabuf_ops_release()` →
    /// drivers/media/common/videobuf2/videobuf2-dma-sg.c:vb2_dma_sg_put (the last reference, as
    /// for vb2-vmalloc): `__free_page()` of every page, each freed once its last reference goes.
    fn release(&self, k: &mut Kernel) {
        const F: &str = "drivers/media/common/videobuf2/videobuf2-dma-sg.c:vb2_dma_sg_put";
        trace!(k, F, "__free_page of {} page(s)", self.pages.len());
        for &p in &self.pages {
            free_pages(k, p, 0);
        }
        report_freed_reachable(k, &self.pages, F);
    }
}

impl Exporter for Vb2DmaSg {
    fn id(&self) -> &str {
        "vb2-dma-sg"
    }
    fn summary(&self) -> &'static str {
        "vb2_dma_sg_mmap: vm_map_pages (VM_MIXEDMAP, normal PTEs)"
    }
    /// `vb2_dma_sg_alloc_compacted()`: `alloc_pages()` + `split_page()`: order-0 pages, each
    /// refcounted, mapping NULL.
    fn export(&self, k: &mut Kernel, cx: &ExportCtx) -> KResult<Exported> {
        let pages = alloc_driver_pages(k, cx.pages, pfnguard_mm::frames::FolioFlags::empty())?;
        Ok(export_rdwr(
            k,
            cx.pages,
            "videobuf2_dma_sg",
            Arc::new(Vb2SgBuf { pages }),
            cx.policy,
        ))
    }
}
