//! dma-buf heaps: drivers/dma-buf/heaps/system_heap.c and cma_heap.c.

use std::sync::Arc;

use pfnguard_mm::frames::AllocSpec;
use pfnguard_mm::page_free::{free_pages, report_freed_reachable};
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
    /// drivers/dma-buf/heaps/system_heap.c:system_heap_dma_buf_release: `__free_pages(page,
    /// compound_order(page))` for every scatterlist entry ([`free_pages`]: the order-8 and
    /// order-4 entries are compound, the order-0 ones single pages: each is freed once its last
    /// reference goes). The pages are mapped with `remap_pfn_range()`, special PTEs that hold no
    /// reference: one still reaching a freed page is reported.
    fn release(&self, k: &mut Kernel) {
        const F: &str = "drivers/dma-buf/heaps/system_heap.c:system_heap_dma_buf_release";
        trace!(
            k,
            F,
            "__free_pages of {} scatterlist entries",
            self.chunks.len()
        );
        for &(head, n) in &self.chunks {
            free_pages(k, head, n.trailing_zeros() as u8);
        }
        report_freed_reachable(k, &self.pages, F);
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
    /// drivers/dma-buf/heaps/cma_heap.c:cma_heap_dma_buf_release → mm/cma.c:cma_release:
    /// `put_page_testzero()` on every page, and `WARN(ret, "%lu pages are still in use!\n")`
    /// for those that kept a reference; a page nobody else holds is freed. Not modeled: what
    /// cma_release does after the WARN differs between the modeled kernels — 6.1/6.12
    /// (`free_contig_range()` → `__free_page()`) leave a still-referenced page allocated, 7.3
    /// (`__cma_release_frozen()` → `free_contig_frozen_range()`) frees the whole range whatever
    /// holds it — and the release that changed it is not pinned down as a
    /// [`Fact`](pfnguard_mm::Fact) yet; the model keeps the still-referenced page (6.1/6.12).
    /// Since [`Fact::CmaHeapPfnmap`] no user mapping can take such a reference.
    fn release(&self, k: &mut Kernel) {
        const F: &str = "mm/cma.c:cma_release";
        let mut in_use = 0;
        for &p in &self.pages {
            if let Some(f) = k.frames.folio_of(p) {
                k.folio_put(f, 1);
                if !k.frames.folio(f).is_freed() {
                    in_use += 1;
                }
            }
        }
        if in_use > 0 {
            k.warn(F, format!("{in_use} pages are still in use!"));
        }
        report_freed_reachable(k, &self.pages, F);
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
