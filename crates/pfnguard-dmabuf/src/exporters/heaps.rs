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

/// One scatterlist entry of a system-heap buffer: its first page and how many pages.
type Chunk = (Pfn, u64);

/// `system_heap_buffer` pages, and the scatterlist chunks they came in.
#[derive(Debug)]
struct SystemHeapBuffer {
    pages: Vec<Pfn>,
    chunks: Vec<Chunk>,
    per_chunk: bool,
}

impl DmaBufOps for SystemHeapBuffer {
    /// `system_heap_mmap()`: the whole VMA populated at mmap from `vma->vm_pgoff`, no vm_ops.
    /// Before [`Fact::SystemHeapChunkRemap`], `remap_pfn_range(vma, addr, page_to_pfn(page),
    /// PAGE_SIZE, prot)` for every page (so a MAP_PRIVATE VMA of more than one page fails, and no
    /// VM_PAT for more than one page); since, one `remap_pfn_range()` per scatterlist entry from
    /// the entry holding `vm_pgoff`, cut at `vm_end`.
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        const F: &str = "drivers/dma-buf/heaps/system_heap.c:system_heap_mmap";
        let v = vma.vma();
        if !self.per_chunk {
            trace!(
                vma.kernel(),
                F,
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
            return Ok(());
        }
        trace!(
            vma.kernel(),
            F,
            "remap_pfn_range per sg entry from vm_pgoff {}",
            v.pgoff
        );
        let mut pgoff = v.pgoff;
        let mut first = 0;
        while let Some(&(_, n)) = self.chunks.get(first) {
            if pgoff < n {
                break;
            }
            pgoff -= n;
            first += 1;
        }
        let mut chunks = self.chunks.iter().skip(first);
        let mut addr = v.start;
        while addr < v.end {
            let Some(&(head, n)) = chunks.next() else {
                break;
            };
            let size = ((n - pgoff) * PAGE_SIZE).min(v.end.0 - addr.0);
            vma.remap_pfn_range(addr, Pfn(head.0 + pgoff), size)?;
            addr = pfnguard_mm::VirtAddr(addr.0 + size);
            pgoff = 0;
        }
        Ok(())
    }
    fn pages(&self) -> Vec<Pfn> {
        self.pages.clone()
    }
}

/// `alloc_largest_available()` (system_heap.c): orders 8, 4, 0 (the two high orders with
/// `__GFP_COMP`), the largest that fits the remaining size; the pages, and one (head, pages)
/// scatterlist entry per allocation.
fn system_heap_alloc(k: &mut Kernel, pages: u64) -> KResult<(Vec<Pfn>, Vec<Chunk>)> {
    let mut out = Vec::with_capacity(pages as usize);
    let mut chunks = Vec::new();
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
        chunks.push((head, 1u64 << order));
        left -= 1 << order;
    }
    Ok((out, chunks))
}

impl Exporter for SystemHeap {
    fn id(&self) -> &str {
        "system-heap"
    }
    fn summary(&self) -> &'static str {
        "system_heap_mmap: remap_pfn_range per page at mmap (VM_IO|VM_PFNMAP, special PTEs)"
    }
    fn export(&self, k: &mut Kernel, cx: &ExportCtx) -> KResult<Exported> {
        let (pages, chunks) = system_heap_alloc(k, cx.pages)?;
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
            Arc::new(SystemHeapBuffer {
                pages,
                chunks,
                per_chunk: k.has(Fact::SystemHeapChunkRemap),
            }),
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
            prefault: false,
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
