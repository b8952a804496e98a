//! dma-buf heaps: drivers/dma-buf/heaps/system_heap.c and cma_heap.c.

use std::sync::Arc;

use pfnguard_mm::frames::AllocSpec;
use pfnguard_mm::Fact;
use pfnguard_mm::{trace, Errno, Fail, KResult, Kernel, Pfn, VmFlags, VmaNew, PAGE_SIZE};

use super::{alloc_cma_pages, export_rdwr, ExportCtx, Exported, Exporter, PageArrayVmOps};
use crate::core::DmaBufOps;

/// `/dev/dma_heap/system`: `system_heap_allocate()` + `system_heap_mmap()`.
#[derive(Debug)]
pub struct SystemHeap;

/// `system_heap_buffer` pages.
#[derive(Debug)]
struct SystemHeapBuffer {
    pages: Vec<Pfn>,
}

impl DmaBufOps for SystemHeapBuffer {
    /// `system_heap_mmap()`: for every page from `vma->vm_pgoff`, `remap_pfn_range(vma, addr,
    /// page_to_pfn(page), PAGE_SIZE, vma->vm_page_prot)` — whole VMA populated at mmap, one call
    /// per page (so no VM_PAT for more than one page); no vm_ops.
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        let v = vma.vma();
        trace!(
            vma.kernel(),
            "drivers/dma-buf/heaps/system_heap.c:system_heap_mmap",
            "remap_pfn_range per page from vm_pgoff {}",
            v.pgoff
        );
        let mut addr = v.start;
        for p in self.pages.iter().skip(v.pgoff as usize) {
            if addr >= v.end {
                break;
            }
            vma.remap_pfn_range(addr, *p, PAGE_SIZE)?;
            addr = addr.add_pages(1);
        }
        Ok(())
    }
    fn pages(&self) -> Vec<Pfn> {
        self.pages.clone()
    }
}

/// `alloc_largest_available()` (system_heap.c): orders 8, 4, 0 (the two high orders with
/// `__GFP_COMP`), the largest that fits the remaining size.
fn system_heap_alloc(k: &mut Kernel, pages: u64) -> KResult<Vec<Pfn>> {
    let mut out = Vec::with_capacity(pages as usize);
    let mut left = pages;
    while left > 0 {
        let order = [8u8, 4, 0]
            .into_iter()
            .find(|o| left >= 1 << o)
            .unwrap_or(0);
        let head = k
            .frames
            .alloc(if order == 0 {
                AllocSpec::DRIVER_PAGE
            } else {
                AllocSpec::compound(order)
            })
            .ok_or(Fail::Errno(Errno::ENOMEM))?;
        for i in 0..(1u64 << order) {
            out.push(Pfn(head.0 + i));
        }
        left -= 1 << order;
    }
    Ok(out)
}

impl Exporter for SystemHeap {
    fn id(&self) -> &str {
        "system-heap"
    }
    fn summary(&self) -> &'static str {
        "system_heap_mmap: remap_pfn_range per page at mmap (VM_IO|VM_PFNMAP, special PTEs)"
    }
    fn export(&self, k: &mut Kernel, cx: &ExportCtx) -> KResult<Exported> {
        let pages = system_heap_alloc(k, cx.pages)?;
        trace!(
            k,
            "drivers/dma-buf/heaps/system_heap.c:system_heap_allocate",
            "{} pages (orders 8/4/0), exp_name \"system\", fd O_RDWR",
            pages.len()
        );
        Ok(export_rdwr(
            k,
            cx.pages,
            "system",
            Arc::new(SystemHeapBuffer { pages }),
            cx.policy,
        ))
    }
}

/// A CMA heap (`/dev/dma_heap/reserved`, `linux,cma`): `cma_heap_allocate()` +
/// `cma_heap_mmap()`.
#[derive(Debug)]
pub struct CmaHeap;

#[derive(Debug)]
struct CmaHeapBuffer {
    pages: Vec<Pfn>,
    inserts_pfn: bool,
}

impl DmaBufOps for CmaHeapBuffer {
    /// `cma_heap_mmap()`: not shared → -EINVAL; `vm_ops = &dma_heap_vm_ops`; since 6.8 also
    /// `vm_flags_set(VM_IO|VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP)`.
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        const F: &str = "drivers/dma-buf/heaps/cma_heap.c:cma_heap_mmap";
        if !vma.flags().intersects(VmFlags::SHARED | VmFlags::MAYSHARE) {
            trace!(vma.kernel(), F, "not VM_SHARED|VM_MAYSHARE -> -EINVAL");
            return Err(Errno::EINVAL.into());
        }
        if self.inserts_pfn {
            vma.set_flags(VmFlags::IO | VmFlags::PFNMAP | VmFlags::DONTEXPAND | VmFlags::DONTDUMP);
        }
        vma.set_ops(Arc::new(PageArrayVmOps {
            name: "dma_heap_vm_ops",
            fault_fn: "drivers/dma-buf/heaps/cma_heap.c:cma_heap_vm_fault",
            pages: self.pages.clone(),
            inserts_pfn: self.inserts_pfn,
        }));
        Ok(())
    }
    fn pages(&self) -> Vec<Pfn> {
        self.pages.clone()
    }
}

impl Exporter for CmaHeap {
    fn id(&self) -> &str {
        "cma-heap"
    }
    fn summary(&self) -> &'static str {
        "cma_heap_vm_fault: vmf->page (6.1) / vmf_insert_pfn with VM_IO|VM_PFNMAP (6.8+)"
    }
    fn export(&self, k: &mut Kernel, cx: &ExportCtx) -> KResult<Exported> {
        let pages = alloc_cma_pages(k, cx.pages)?;
        Ok(export_rdwr(
            k,
            cx.pages,
            "cma",
            Arc::new(CmaHeapBuffer {
                pages,
                inserts_pfn: k.has(Fact::CmaHeapPfnmap),
            }),
            cx.policy,
        ))
    }
}
