//! shmem/tmpfs files (mm/shmem.c): the page cache behind `memfd_create()` and GEM shmem objects.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::errno::Errno;
use crate::fault::FaultCtx;
use crate::frames::{AllocSpec, FolioFlags};
use crate::kernel::Kernel;
use crate::mmap::VmaNew;
use crate::outcome::{Fail, KResult, VmFault};
use crate::trace;
use crate::types::Pfn;
use crate::vma::{AddressSpace, File, FileOperations, VmOperations};

/// The identities [`ShmemInode::new`] hands out: never reused in the process, so that an inode
/// names one page cache in every [`Kernel`] (and every clone of one) it is used in.
static NEXT_INODE: AtomicU64 = AtomicU64::new(1);

/// A shmem inode: its identity, its size in pages and whether it is hugetlb. Its page cache is
/// state of the kernel it is used in ([`ShmemCache`], [`Objects::shmem`](crate::kernel::Objects::shmem)): a clone of the
/// kernel has its own.
#[derive(Debug)]
pub struct ShmemInode {
    /// The key of the inode's [`ShmemCache`] in [`Objects::shmem`](crate::kernel::Objects::shmem).
    pub id: u64,
    /// `i_size` in pages.
    size: u64,
    /// MFD_HUGETLB: 2 MiB hugetlb folios instead of shmem pages.
    pub hugetlb: bool,
}

/// The page cache of a shmem inode (`inode->i_mapping->i_pages`) and, for hugetlbfs, the huge
/// page indices its `resv_map` holds reservations for (mm/hugetlb.c:region_add): kept by the
/// [`Kernel`], by [`ShmemInode::id`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ShmemCache {
    /// Page cache, indexed by page offset.
    pub pages: Vec<Option<Pfn>>,
    /// hugetlbfs: the huge-page indices the inode's `resv_map` holds reservations for.
    pub resv: std::collections::BTreeSet<u64>,
}

impl ShmemInode {
    /// An inode of `pages` pages.
    pub fn new(pages: u64, hugetlb: bool) -> Arc<ShmemInode> {
        Arc::new(ShmemInode {
            id: NEXT_INODE.fetch_add(1, Ordering::Relaxed),
            size: pages,
            hugetlb,
        })
    }

    /// `i_size` in pages.
    pub fn size_pages(&self) -> u64 {
        self.size
    }

    /// The inode's page cache in `k`, created empty on first use.
    fn cache_mut<'k>(&self, k: &'k mut Kernel) -> &'k mut ShmemCache {
        let size = self.size as usize;
        k.objects
            .shmem
            .entry(self.id)
            .or_insert_with(|| ShmemCache {
                pages: vec![None; size],
                resv: std::collections::BTreeSet::new(),
            })
    }

    /// `shmem_get_folio()`: the page at `index`, allocated on first use (the page cache holds
    /// one reference). Beyond `i_size` → -EINVAL (the fault path turns it into SIGBUS).
    pub fn get_page(&self, k: &mut Kernel, index: u64) -> KResult<Pfn> {
        if index >= self.size {
            return Err(Fail::Errno(Errno::EINVAL));
        }
        if let Some(p) = self.lookup(k, index) {
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
            let pages = &mut self.cache_mut(k).pages;
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
        self.cache_mut(k).pages[index as usize] = Some(p);
        Ok(p)
    }
}

impl ShmemInode {
    /// The page cached at `index` in `k`, if any (`filemap_get_folio()`); no allocation.
    pub fn lookup(&self, k: &Kernel, index: u64) -> Option<Pfn> {
        let cache = k.objects.shmem.get(&self.id)?;
        cache.pages.get(index as usize).copied().flatten()
    }

    /// `hugetlb_add_to_page_cache()`: the huge folio at `head` caches the 512 page indices from
    /// `base` (those within `i_size`).
    pub(crate) fn add_huge_folio(&self, k: &mut Kernel, base: u64, head: Pfn) {
        let pages = &mut self.cache_mut(k).pages;
        let n = pages.len() as u64;
        for i in base..(base + crate::hugetlb::HPAGE_PMD_NR).min(n) {
            pages[i as usize] = Some(Pfn(head.0 + (i - base)));
        }
    }

    /// `region_chg()` + `region_add()` on the reserve map: add the huge-page indices of
    /// `[from, to)` not there yet; how many.
    pub(crate) fn resv_add(&self, k: &mut Kernel, from: u64, to: u64) -> i64 {
        let r = &mut self.cache_mut(k).resv;
        (from..to).filter(|i| r.insert(*i)).count() as i64
    }

    /// `region_del()`: drop the indices of `[from, to)`; how many were there.
    pub(crate) fn resv_del(&self, k: &mut Kernel, from: u64, to: u64) -> i64 {
        let r = &mut self.cache_mut(k).resv;
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
        let cached: Vec<Pfn> = match k.objects.shmem.get_mut(&self.id) {
            Some(c) => c.pages.iter_mut().filter_map(Option::take).collect(),
            None => Vec::new(),
        };
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

    /// The frames in `k`'s page cache of the inode now, in index order.
    pub fn cached(&self, k: &Kernel) -> Vec<Pfn> {
        k.objects
            .shmem
            .get(&self.id)
            .map(|c| c.pages.iter().flatten().copied().collect())
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
