//! shmem/tmpfs files (mm/shmem.c): the page cache behind `memfd_create()` and GEM shmem objects.

use std::sync::{Arc, Mutex};

use crate::errno::Errno;
use crate::fault::FaultCtx;
use crate::frames::{AllocSpec, FolioFlags};
use crate::kernel::Kernel;
use crate::mmap::VmaNew;
use crate::outcome::{Fail, KResult, VmFault};
use crate::trace;
use crate::types::Pfn;
use crate::vma::{AddressSpace, File, FileOperations, VmOperations};

/// A shmem inode: its size in pages and its page cache.
#[derive(Debug, Default)]
pub struct ShmemInode {
    /// Page cache, indexed by page offset.
    pages: Mutex<Vec<Option<Pfn>>>,
    /// MFD_HUGETLB: 2 MiB hugetlb folios instead of shmem pages.
    pub hugetlb: bool,
    /// hugetlbfs: the huge-page indices the inode's `resv_map` holds reservations for.
    resv: Mutex<std::collections::BTreeSet<u64>>,
}

impl ShmemInode {
    /// An inode of `pages` pages.
    pub fn new(pages: u64, hugetlb: bool) -> Arc<ShmemInode> {
        Arc::new(ShmemInode {
            pages: Mutex::new(vec![None; pages as usize]),
            hugetlb,
            resv: Mutex::default(),
        })
    }

    /// `i_size` in pages.
    pub fn size_pages(&self) -> u64 {
        self.pages.lock().map_or(0, |p| p.len() as u64)
    }

    /// `shmem_get_folio()`: the page at `index`, allocated on first use (the page cache holds
    /// one reference). Beyond `i_size` → -EINVAL (the fault path turns it into SIGBUS).
    pub fn get_page(&self, k: &mut Kernel, index: u64) -> KResult<Pfn> {
        let mut pages = self.pages.lock().map_err(|_| Fail::Errno(Errno::EIO))?;
        let slot = pages
            .get_mut(index as usize)
            .ok_or(Fail::Errno(Errno::EINVAL))?;
        if let Some(p) = *slot {
            return Ok(p);
        }
        if self.hugetlb {
            // One 2 MiB hugetlb folio covers 512 page indices.
            let base = index & !511;
            let head = k
                .frames
                .alloc(AllocSpec {
                    order: 9,
                    compound: true,
                    mapping: crate::frames::Mapping::File {
                        can_writeback: false,
                    },
                    flags: FolioFlags::HUGETLB,
                })
                .ok_or(Fail::Errno(Errno::ENOMEM))?;
            let n = pages.len() as u64;
            for i in base..(base + 512).min(n) {
                pages[i as usize] = Some(Pfn(head.0 + (i - base)));
            }
            return Ok(Pfn(head.0 + (index - base)));
        }
        let p = k
            .frames
            .alloc(AllocSpec::SHMEM)
            .ok_or(Fail::Errno(Errno::ENOMEM))?;
        *slot = Some(p);
        Ok(p)
    }
}

impl ShmemInode {
    /// The page cached at `index`, if any (`filemap_get_folio()`); no allocation.
    pub fn lookup(&self, index: u64) -> Option<Pfn> {
        let pages = self.pages.lock().ok()?;
        pages.get(index as usize).copied().flatten()
    }

    /// `hugetlb_add_to_page_cache()`: the huge folio at `head` caches the 512 page indices from
    /// `base` (those within `i_size`).
    pub(crate) fn add_huge_folio(&self, base: u64, head: Pfn) {
        if let Ok(mut pages) = self.pages.lock() {
            let n = pages.len() as u64;
            for i in base..(base + crate::hugetlb::HPAGE_PMD_NR).min(n) {
                pages[i as usize] = Some(Pfn(head.0 + (i - base)));
            }
        }
    }

    /// `region_chg()` + `region_add()` on the reserve map: add the huge-page indices of
    /// `[from, to)` not there yet; how many.
    pub(crate) fn resv_add(&self, from: u64, to: u64) -> i64 {
        let Ok(mut r) = self.resv.lock() else {
            return 0;
        };
        (from..to).filter(|i| r.insert(*i)).count() as i64
    }

    /// `region_del()`: drop the indices of `[from, to)`; how many were there.
    pub(crate) fn resv_del(&self, from: u64, to: u64) -> i64 {
        let Ok(mut r) = self.resv.lock() else {
            return 0;
        };
        (from..to).filter(|i| r.remove(i)).count() as i64
    }

    /// `shmem_read_mapping_page()` for every page of the inode: the pages, each with one
    /// reference the caller keeps (GEM `drm_gem_get_pages()`, driver buffers on shmem).
    pub fn read_pages_referenced(&self, k: &mut Kernel) -> KResult<Vec<Pfn>> {
        let n = self.size_pages();
        let mut v = Vec::with_capacity(n as usize);
        for i in 0..n {
            let p = self.get_page(k, i)?;
            if let Some(f) = k.frames.folio_of(p) {
                k.folio_get(f, 1);
            }
            v.push(p);
        }
        Ok(v)
    }
}

impl ShmemInode {
    /// `shmem_truncate_range(inode, 0, -1)` (mm/shmem.c → `shmem_undo_range()` →
    /// `truncate_inode_folio()` → `filemap_remove_folio()`): every folio leaves the page cache
    /// (`folio->mapping = NULL`) and the reference the page cache held is put (`folio_put()`,
    /// once per folio: a hugetlb folio caches 512 indices). A folio somebody else holds (a pin,
    /// a GUP reference, a driver's own `get_page()`) stays allocated, no longer in any file;
    /// the others are freed. Also what `shmem_evict_inode()` does when the last reference to the
    /// inode goes. Returns the frames that were cached.
    ///
    /// The caller has unmapped the folios from user page tables (as `truncate_pagecache()` and
    /// `drm_gem_shmem_purge_locked()` do before it); a folio still mapped is freed only when
    /// its PTEs go.
    pub fn truncate(&self, k: &mut Kernel) -> Vec<Pfn> {
        let Ok(mut pages) = self.pages.lock() else {
            return Vec::new();
        };
        let cached: Vec<Pfn> = pages.iter_mut().filter_map(Option::take).collect();
        drop(pages);
        let mut seen = std::collections::BTreeSet::new();
        for &p in &cached {
            let Some(f) = k.frames.folio_of(p) else {
                continue;
            };
            if !seen.insert(f) {
                continue;
            }
            k.frames.folio_mut(f).mapping = crate::frames::Mapping::None;
            k.folio_put(f, 1);
        }
        if !cached.is_empty() {
            trace!(
                k,
                "mm/shmem.c:shmem_undo_range",
                "{} page(s) removed from the page cache, its reference put",
                cached.len()
            );
        }
        cached
    }

    /// The frames in the page cache now, in index order.
    pub fn cached(&self) -> Vec<Pfn> {
        self.pages
            .lock()
            .map(|p| p.iter().flatten().copied().collect())
            .unwrap_or_default()
    }
}

/// `shmem_file_operations` with `shmem_mmap()`: no VMA flags, `vm_ops = shmem_vm_ops`.
#[derive(Debug)]
pub struct ShmemFops {
    /// The inode.
    pub inode: Arc<ShmemInode>,
}

impl FileOperations for ShmemFops {
    fn name(&self) -> &'static str {
        "shmem_file_operations"
    }
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        trace!(
            vma.kernel(),
            "mm/shmem.c:shmem_mmap",
            "vm_ops = shmem_vm_ops, no VMA flags"
        );
        vma.set_ops(Arc::new(ShmemVmOps {
            inode: self.inode.clone(),
        }));
        Ok(())
    }
}

/// `shmem_vm_ops`: `.fault = shmem_fault`.
#[derive(Debug)]
pub struct ShmemVmOps {
    /// The inode.
    pub inode: Arc<ShmemInode>,
}

impl VmOperations for ShmemVmOps {
    fn name(&self) -> &'static str {
        "shmem_vm_ops"
    }
    fn has_fault(&self) -> bool {
        true
    }
    /// `shmem_fault()`: the page-cache folio at `vmf->pgoff`, referenced and locked
    /// (VM_FAULT_LOCKED); beyond `i_size` → VM_FAULT_SIGBUS.
    fn fault(&self, cx: &mut FaultCtx<'_>) -> KResult<VmFault> {
        let idx = cx.vmf.pgoff;
        match self.inode.get_page(cx.kernel(), idx) {
            Ok(p) => {
                trace!(
                    cx.kernel(),
                    "mm/shmem.c:shmem_fault",
                    "page cache index {idx} -> pfn {p}"
                );
                cx.set_page(p);
                Ok(VmFault::LOCKED)
            }
            Err(Fail::Errno(Errno::ENOMEM)) => Ok(VmFault::OOM),
            Err(Fail::Errno(_)) => {
                trace!(
                    cx.kernel(),
                    "mm/shmem.c:shmem_fault",
                    "index {idx} beyond i_size -> VM_FAULT_SIGBUS"
                );
                Ok(VmFault::SIGBUS)
            }
            Err(e) => Err(e),
        }
    }
}

/// `memfd_create(name, flags)` + `ftruncate(pages * PAGE_SIZE)`: an O_RDWR shmem file.
pub fn memfd_create(name: &str, pages: u64, hugetlb: bool) -> (Arc<File>, Arc<ShmemInode>) {
    let inode = ShmemInode::new(pages, hugetlb);
    let mut mapping = AddressSpace::SHMEM;
    if hugetlb {
        mapping.shmem = false;
        mapping.hugetlb = true;
    }
    let file = Arc::new(File {
        path: format!("/memfd:{name} (deleted)"),
        ino: 1000,
        dev: (0, 1),
        readable: true,
        writable: true,
        noexec: false,
        nlink: 0,
        mapping,
        fops: Arc::new(ShmemFops {
            inode: inode.clone(),
        }),
        is_dma_buf: false,
    });
    (file, inode)
}

/// `shmem_zero_setup()`: the shmem file behind a `MAP_SHARED|MAP_ANONYMOUS` mapping.
pub fn shmem_zero_setup(pages: u64) -> (Arc<File>, Arc<ShmemInode>) {
    let (f, inode) = memfd_create("", pages, false);
    let mut file = (*f).clone();
    file.path = "/dev/zero (deleted)".into();
    (Arc::new(file), inode)
}
