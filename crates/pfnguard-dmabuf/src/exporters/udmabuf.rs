//! drivers/dma-buf/udmabuf.c: a dma-buf over the pages of a sealed memfd.

use std::sync::Arc;

use pfnguard_mm::frames::GUP_PIN_COUNTING_BIAS;
use pfnguard_mm::hugetlb::{memfd_get_folio_page, HPAGE_PMD_NR};
use pfnguard_mm::page_free::report_freed_reachable;
use pfnguard_mm::shmem::{memfd_create, ShmemInode};
use pfnguard_mm::Fact;
use pfnguard_mm::{trace, Errno, KResult, Kernel, Pfn, VmFlags, VmaNew};

use super::{export_rdwr, ExportCtx, Exported, Exporter, PageArrayVmOps};
use crate::core::DmaBufOps;

/// `/dev/udmabuf` over a shmem (or MFD_HUGETLB) memfd.
#[derive(Debug)]
pub struct Udmabuf {
    /// The memfd is MFD_HUGETLB.
    pub hugetlb: bool,
}

#[derive(Debug)]
struct UdmabufBuffer {
    pages: Vec<Pfn>,
    inserts_pfn: bool,
    prefault: bool,
    /// The pages are long-term pinned (`memfd_pin_folios()`, [`Fact::UdmabufPfnmap`]) rather
    /// than referenced.
    pinned: bool,
    /// The memfd's inode.
    memfd: Arc<ShmemInode>,
}

/// `size_limit_mb`, the module parameter's default: 64 MiB until
/// [`Fact::UdmabufSizeLimitIntMax`], INT_MAX since.
fn size_limit_mb(k: &Kernel) -> u64 {
    if k.has(Fact::UdmabufSizeLimitIntMax) {
        i32::MAX as u64
    } else {
        64
    }
}

impl DmaBufOps for UdmabufBuffer {
    /// `mmap_udmabuf()`: not shared → -EINVAL; `vm_ops = &udmabuf_vm_ops`; since 6.11 also
    /// `vm_flags_set(VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP)` (no VM_IO); since 6.14 the fault
    /// prefaults the whole VMA ([`Fact::UdmabufPrefault`]).
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        const F: &str = "drivers/dma-buf/udmabuf.c:mmap_udmabuf";
        if !vma.flags().intersects(VmFlags::SHARED | VmFlags::MAYSHARE) {
            trace!(vma.kernel(), F, "not VM_SHARED|VM_MAYSHARE -> -EINVAL");
            return Err(Errno::EINVAL.into());
        }
        if self.inserts_pfn {
            vma.set_flags(VmFlags::PFNMAP | VmFlags::DONTEXPAND | VmFlags::DONTDUMP);
        }
        vma.set_ops(Arc::new(PageArrayVmOps {
            name: "udmabuf_vm_ops",
            fault_fn: "drivers/dma-buf/udmabuf.c:udmabuf_vm_fault",
            pages: self.pages.clone(),
            inserts_pfn: self.inserts_pfn,
            prefault: self.prefault,
        }));
        Ok(())
    }
    fn pages(&self) -> Vec<Pfn> {
        self.pages.clone()
    }
    /// drivers/dma-buf/udmabuf.c:release_udmabuf → `deinit_udmabuf()`: with
    /// [`Fact::UdmabufPfnmap`] `unpin_all_folios()` (`unpin_folio()` of every pin
    /// `memfd_pin_folios()` took), before it `put_page()` of every page (6.1
    /// drivers/dma-buf/udmabuf.c:release_udmabuf). The memfd's page cache still holds its own
    /// reference: the model keeps the memfd userspace passed to UDMABUF_CREATE open until the
    /// buffer goes and closes it here — the last `fput()` evicts the inode
    /// (mm/shmem.c:shmem_evict_inode → `shmem_truncate_range()`), and a page nobody else holds
    /// is freed.
    fn release(&self, k: &mut Kernel) {
        const F: &str = "drivers/dma-buf/udmabuf.c:release_udmabuf";
        if self.pinned {
            trace!(k, F, "unpin_all_folios: {} page(s)", self.pages.len());
            k.unpin_user_pages(&self.pages);
        } else {
            trace!(k, F, "put_page of {} page(s)", self.pages.len());
            k.put_pages(&self.pages);
        }
        trace!(
            k,
            "mm/shmem.c:shmem_evict_inode",
            "the memfd's last reference: shmem_truncate_range(0, -1)"
        );
        self.memfd.truncate(k);
        report_freed_reachable(k, &self.pages, F);
    }
}

impl Exporter for Udmabuf {
    fn id(&self) -> &str {
        if self.hugetlb {
            "udmabuf-hugetlb"
        } else {
            "udmabuf-shmem"
        }
    }
    fn summary(&self) -> &'static str {
        "udmabuf_vm_fault: vmf->page (6.1) / vmf_insert_pfn with VM_PFNMAP (6.11+)"
    }
    /// `udmabuf_create()`: the memfd's pages are taken from its page cache; 6.11+
    /// `memfd_pin_folios()` pins them long term, allocating the folios nobody faulted in
    /// (`memfd_alloc_folio()`: for a hugetlb memfd from the hugetlb reserves, which can fail
    /// -ENOMEM), before a reference per page is kept.
    fn export(&self, k: &mut Kernel, cx: &ExportCtx) -> KResult<Exported> {
        const F: &str = "drivers/dma-buf/udmabuf.c:udmabuf_create";
        // pglimit = (size_limit_mb * 1024 * 1024) >> PAGE_SHIFT; more pages -> -EINVAL.
        let pglimit = (size_limit_mb(k) << 20) >> pfnguard_mm::PAGE_SHIFT;
        if cx.pages > pglimit {
            trace!(
                k,
                F,
                "{} pages > size_limit_mb {} -> -EINVAL",
                cx.pages,
                size_limit_mb(k)
            );
            return Err(Errno::EINVAL.into());
        }
        // A hugetlb memfd only takes sizes in whole huge pages (fs/hugetlbfs/inode.c:
        // hugetlbfs_setattr: `newsize & ~huge_page_mask(h)` -> -EINVAL), so userspace sizes it
        // up to the next 2 MiB and hands udmabuf the buffer's own length.
        let memfd_pages = if self.hugetlb {
            cx.pages.div_ceil(HPAGE_PMD_NR) * HPAGE_PMD_NR
        } else {
            cx.pages
        };
        let (_file, inode) = memfd_create("udmabuf", memfd_pages, self.hugetlb);
        let mut pages = Vec::with_capacity(cx.pages as usize);
        for i in 0..cx.pages {
            let p = if k.has(Fact::UdmabufPfnmap) {
                memfd_get_folio_page(k, &inode, i)?
            } else {
                inode.get_page(k, i)?
            };
            if let Some(f) = k.frames.folio_of(p) {
                if k.has(Fact::UdmabufPfnmap) {
                    let large = k.frames.folio(f).is_large();
                    if large {
                        k.frames.folio_mut(f).pincount += 1;
                        k.folio_get(f, 1);
                    } else {
                        k.folio_get(f, GUP_PIN_COUNTING_BIAS);
                    }
                } else {
                    k.folio_get(f, 1);
                }
            }
            pages.push(p);
        }
        trace!(
            k,
            F,
            "{} memfd page(s) {}",
            pages.len(),
            if k.has(Fact::UdmabufPfnmap) {
                "long-term pinned (memfd_pin_folios)"
            } else {
                "referenced (shmem_read_mapping_page)"
            }
        );
        Ok(export_rdwr(
            k,
            cx.pages,
            "udmabuf",
            Arc::new(UdmabufBuffer {
                pages,
                inserts_pfn: k.has(Fact::UdmabufPfnmap),
                prefault: k.has(Fact::UdmabufPrefault),
                pinned: k.has(Fact::UdmabufPfnmap),
                memfd: inode,
            }),
            cx.policy,
        ))
    }
}
