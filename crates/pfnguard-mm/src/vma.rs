//! Virtual memory areas: `vm_flags` (include/linux/mm.h), `struct vm_area_struct`, files and
//! `vm_operations_struct`.

use std::fmt;
use std::sync::Arc;

use crate::frames::Mapping;
use crate::kernel::{Kernel, MmId};
use crate::outcome::{KResult, VmFault};
use crate::pagetable::Pte;
use crate::profile::KernelProfile;
use crate::types::{VirtAddr, PAGE_SHIFT, PAGE_SIZE};

/// `vm_flags_t` (include/linux/mm.h).
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash, serde::Serialize)]
pub struct VmFlags(pub u64);

#[allow(missing_docs)]
impl VmFlags {
    pub const READ: u64 = 0x1;
    pub const WRITE: u64 = 0x2;
    pub const EXEC: u64 = 0x4;
    pub const SHARED: u64 = 0x8;
    pub const MAYREAD: u64 = 0x10;
    pub const MAYWRITE: u64 = 0x20;
    pub const MAYEXEC: u64 = 0x40;
    pub const MAYSHARE: u64 = 0x80;
    pub const GROWSDOWN: u64 = 0x100;
    pub const UFFD_MISSING: u64 = 0x200;
    /// "Page-ranges managed without `struct page`, just pure PFN".
    pub const PFNMAP: u64 = 0x400;
    pub const UFFD_WP: u64 = 0x1000;
    pub const LOCKED: u64 = 0x2000;
    /// "Memory mapped I/O or similar".
    pub const IO: u64 = 0x4000;
    pub const SEQ_READ: u64 = 0x8000;
    pub const RAND_READ: u64 = 0x10000;
    pub const DONTCOPY: u64 = 0x20000;
    pub const DONTEXPAND: u64 = 0x40000;
    pub const LOCKONFAULT: u64 = 0x80000;
    pub const ACCOUNT: u64 = 0x100000;
    pub const NORESERVE: u64 = 0x200000;
    pub const HUGETLB: u64 = 0x400000;
    pub const SYNC: u64 = 0x800000;
    /// x86 VM_ARCH_1 = VM_PAT.
    pub const PAT: u64 = 0x1000000;
    pub const WIPEONFORK: u64 = 0x2000000;
    pub const DONTDUMP: u64 = 0x4000000;
    pub const SOFTDIRTY: u64 = 0x8000000;
    /// "Can contain `struct page` and pure PFN pages".
    pub const MIXEDMAP: u64 = 0x10000000;
    pub const HUGEPAGE: u64 = 0x20000000;
    pub const NOHUGEPAGE: u64 = 0x40000000;
    pub const MERGEABLE: u64 = 0x80000000;
    pub const SHADOW_STACK: u64 = 1 << 37;
    pub const DROPPABLE: u64 = 1 << 40;
    pub const SEALED: u64 = 1 << 63;

    /// `VM_SPECIAL`: "non-mergable, non-mlock()able".
    pub const SPECIAL: u64 = Self::IO | Self::DONTEXPAND | Self::PFNMAP | Self::MIXEDMAP;
    /// `VM_LOCKED_MASK`.
    pub const LOCKED_MASK: u64 = Self::LOCKED | Self::LOCKONFAULT;

    /// Whether every bit of `mask` is set.
    #[inline]
    pub fn all(self, mask: u64) -> bool {
        self.0 & mask == mask
    }
    /// Whether any bit of `mask` is set.
    #[inline]
    pub fn any(self, mask: u64) -> bool {
        self.0 & mask != 0
    }
    /// Whether the bit is set.
    #[inline]
    pub fn has(self, bit: u64) -> bool {
        self.0 & bit != 0
    }

    /// `is_cow_mapping()` (include/linux/mm.h): private and may be written.
    #[inline]
    pub fn is_cow_mapping(self) -> bool {
        self.0 & (Self::SHARED | Self::MAYWRITE) == Self::MAYWRITE
    }

    /// The mnemonics `show_smap_vma_flags()` (fs/proc/task_mmu.c) prints, in bit order.
    pub fn mnemonics(self, profile: &KernelProfile) -> Vec<&'static str> {
        (0..64)
            .filter(|&i| self.0 & (1u64 << i) != 0)
            .map(|i| profile.smaps_mnemonics[i])
            .filter(|m| !m.is_empty())
            .collect()
    }

    /// Kernel names of the set flags (`PFNMAP|IO|...`), for traces.
    pub fn names(self) -> String {
        let names: Vec<&str> = FLAG_NAMES
            .iter()
            .filter(|(b, _)| self.0 & b != 0)
            .map(|(_, n)| *n)
            .collect();
        if names.is_empty() {
            "0".into()
        } else {
            names.join("|")
        }
    }

    /// Parse a kernel flag name without the `VM_` prefix (`"PFNMAP"`).
    pub fn from_name(name: &str) -> Option<u64> {
        let n = name.strip_prefix("VM_").unwrap_or(name);
        FLAG_NAMES
            .iter()
            .find(|(_, s)| s.eq_ignore_ascii_case(n))
            .map(|(b, _)| *b)
    }
}

/// Flag names without `VM_`, in bit order.
pub const FLAG_NAMES: &[(u64, &str)] = &[
    (VmFlags::READ, "READ"),
    (VmFlags::WRITE, "WRITE"),
    (VmFlags::EXEC, "EXEC"),
    (VmFlags::SHARED, "SHARED"),
    (VmFlags::MAYREAD, "MAYREAD"),
    (VmFlags::MAYWRITE, "MAYWRITE"),
    (VmFlags::MAYEXEC, "MAYEXEC"),
    (VmFlags::MAYSHARE, "MAYSHARE"),
    (VmFlags::GROWSDOWN, "GROWSDOWN"),
    (VmFlags::UFFD_MISSING, "UFFD_MISSING"),
    (VmFlags::PFNMAP, "PFNMAP"),
    (VmFlags::UFFD_WP, "UFFD_WP"),
    (VmFlags::LOCKED, "LOCKED"),
    (VmFlags::IO, "IO"),
    (VmFlags::SEQ_READ, "SEQ_READ"),
    (VmFlags::RAND_READ, "RAND_READ"),
    (VmFlags::DONTCOPY, "DONTCOPY"),
    (VmFlags::DONTEXPAND, "DONTEXPAND"),
    (VmFlags::LOCKONFAULT, "LOCKONFAULT"),
    (VmFlags::ACCOUNT, "ACCOUNT"),
    (VmFlags::NORESERVE, "NORESERVE"),
    (VmFlags::HUGETLB, "HUGETLB"),
    (VmFlags::SYNC, "SYNC"),
    (VmFlags::PAT, "PAT"),
    (VmFlags::WIPEONFORK, "WIPEONFORK"),
    (VmFlags::DONTDUMP, "DONTDUMP"),
    (VmFlags::SOFTDIRTY, "SOFTDIRTY"),
    (VmFlags::MIXEDMAP, "MIXEDMAP"),
    (VmFlags::HUGEPAGE, "HUGEPAGE"),
    (VmFlags::NOHUGEPAGE, "NOHUGEPAGE"),
    (VmFlags::MERGEABLE, "MERGEABLE"),
    (VmFlags::SHADOW_STACK, "SHADOW_STACK"),
    (VmFlags::DROPPABLE, "DROPPABLE"),
    (VmFlags::SEALED, "SEALED"),
];

impl fmt::Debug for VmFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names())
    }
}

/// `vm_get_page_prot()` on x86-64 (arch/x86/mm/pgprot.c, `protection_map`): the PTE bits of a
/// VMA. Private writable mappings get read-only PTEs (COW); no access gives PAGE_NONE.
pub fn vm_get_page_prot(flags: VmFlags) -> u64 {
    let rwx = flags.0 & (VmFlags::READ | VmFlags::WRITE | VmFlags::EXEC);
    if rwx == 0 {
        return Pte::PROTNONE | Pte::ACCESSED;
    }
    let mut prot = Pte::PRESENT | Pte::USER | Pte::ACCESSED;
    if flags.has(VmFlags::WRITE) && flags.has(VmFlags::SHARED) {
        prot |= Pte::RW;
    }
    if !flags.has(VmFlags::EXEC) {
        prot |= Pte::NX;
    }
    prot
}

/// The cache-mode bits `vm_pgprot_modify()` keeps (`_PAGE_CACHE_MASK`).
pub const PAGE_CACHE_MASK: u64 = Pte::PWT | Pte::PCD | Pte::PAT;

/// What backs a file's page cache, as the MM paths test it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct AddressSpace {
    /// Page-cache folios are shmem (`shmem_mapping()`).
    pub shmem: bool,
    /// `mapping_can_writeback()`: BDI_CAP_WRITEBACK of the inode's bdi.
    pub can_writeback: bool,
    /// `vma_is_secretmem()`.
    pub secretmem: bool,
    /// hugetlbfs.
    pub hugetlb: bool,
    /// `vma_is_fsdax()`.
    pub fsdax: bool,
}

impl AddressSpace {
    /// A pseudo file with no page cache of its own (dma-buf, anon inodes, devices):
    /// `noop_backing_dev_info`, no writeback.
    pub const PSEUDO: AddressSpace = AddressSpace {
        shmem: false,
        can_writeback: false,
        secretmem: false,
        hugetlb: false,
        fsdax: false,
    };
    /// shmem/tmpfs (memfd): no writeback (tmpfs uses `noop_backing_dev_info`).
    pub const SHMEM: AddressSpace = AddressSpace {
        shmem: true,
        can_writeback: false,
        secretmem: false,
        hugetlb: false,
        fsdax: false,
    };

    /// The `folio->mapping` kind a page-cache folio of this file has.
    pub fn folio_mapping(self) -> Mapping {
        if self.shmem {
            Mapping::Shmem
        } else if self.secretmem {
            Mapping::Secretmem
        } else {
            Mapping::File {
                can_writeback: self.can_writeback,
            }
        }
    }
}

/// `struct file_operations`, the part the MM paths call.
pub trait FileOperations: fmt::Debug + Send + Sync {
    /// Name of the kernel structure or function (`dma_buf_fops`).
    fn name(&self) -> &'static str;
    /// `f_op->mmap`, called by `mmap_region()` with the mmap lock held for writing.
    fn mmap(&self, vma: &mut crate::VmaNew<'_>) -> KResult<()>;
    /// `dentry->d_op->d_dname`: a name computed when the path is printed (dma-buf's
    /// `dmabuffs_dname()`); `None` uses [`File::path`].
    fn d_dname(&self) -> Option<String> {
        None
    }
}

/// An open file.
#[derive(Debug, Clone)]
pub struct File {
    /// `d_path()` as `/proc/PID/maps` prints it (`/dmabuf:`, `/memfd:x (deleted)`).
    pub path: String,
    /// Inode number.
    pub ino: u64,
    /// Device (major, minor).
    pub dev: (u32, u32),
    /// FMODE_READ.
    pub readable: bool,
    /// FMODE_WRITE.
    pub writable: bool,
    /// `path_noexec()`: the mount is noexec.
    pub noexec: bool,
    /// `i_nlink` of the inode (core dump filter).
    pub nlink: u32,
    /// The page cache behind the file.
    pub mapping: AddressSpace,
    /// File operations.
    pub fops: Arc<dyn FileOperations>,
    /// The file is a dma-buf (`is_dma_buf_file()`).
    pub is_dma_buf: bool,
}

impl File {
    /// `d_path()`: what `/proc/PID/maps` prints.
    pub fn d_path(&self) -> String {
        self.fops.d_dname().unwrap_or_else(|| self.path.clone())
    }
}

/// Flags of a page fault (`enum fault_flag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct FaultFlags {
    /// FAULT_FLAG_WRITE.
    pub write: bool,
    /// FAULT_FLAG_REMOTE (GUP on another mm).
    pub remote: bool,
    /// FAULT_FLAG_UNSHARE.
    pub unshare: bool,
}

/// A VMA identified by its mm and start address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub struct VmaId {
    /// The mm.
    pub mm: MmId,
    /// `vm_start`.
    pub start: VirtAddr,
}

/// `struct vm_fault`: what a `->fault` handler receives.
#[derive(Debug, Clone)]
pub struct Vmf {
    /// The faulting VMA.
    pub vma: VmaId,
    /// Faulting address, page aligned.
    pub address: VirtAddr,
    /// `vmf->pgoff`: file offset in pages (`linear_page_index()`).
    pub pgoff: u64,
    /// Fault flags.
    pub flags: FaultFlags,
    /// `vmf->page`: set by a handler that returns 0 with a referenced page.
    pub page: Option<crate::types::Pfn>,
}

/// `struct vm_operations_struct`: the callbacks an exporter gives its VMAs.
pub trait VmOperations: fmt::Debug + Send + Sync {
    /// Name of the kernel structure (`drm_gem_shmem_vm_ops`).
    fn name(&self) -> &'static str;
    /// Whether `.fault` is set.
    fn has_fault(&self) -> bool {
        false
    }
    /// `.fault`, called with the mmap lock held for reading.
    fn fault(&self, _cx: &mut crate::FaultCtx<'_>) -> KResult<VmFault> {
        Ok(VmFault::SIGBUS)
    }
    /// Whether `.page_mkwrite` is set.
    fn has_page_mkwrite(&self) -> bool {
        false
    }
    /// Whether `.pfn_mkwrite` is set.
    fn has_pfn_mkwrite(&self) -> bool {
        false
    }
    /// `.pfn_mkwrite`.
    fn pfn_mkwrite(&self, _cx: &mut crate::FaultCtx<'_>) -> KResult<VmFault> {
        Ok(VmFault::NONE)
    }
    /// Whether `.access` is set.
    fn has_access(&self) -> bool {
        false
    }
    /// `.access`: copy `len` bytes at `addr` for `access_remote_vm()`; returns bytes copied or
    /// a negative errno.
    fn access(
        &self,
        _k: &mut Kernel,
        _vma: VmaId,
        _addr: VirtAddr,
        _len: u64,
        _write: bool,
    ) -> i64 {
        -(crate::Errno::EIO.number() as i64)
    }
    /// `.open`, called when a VMA is duplicated (fork) or split.
    fn open(&self, _k: &mut Kernel, _vma: VmaId) {}
    /// `.close`, called when a VMA is removed.
    fn close(&self, _k: &mut Kernel, _vma: VmaId) {}
}

/// `struct vm_area_struct`.
#[derive(Debug, Clone)]
pub struct Vma {
    /// `vm_start`.
    pub start: VirtAddr,
    /// `vm_end` (exclusive).
    pub end: VirtAddr,
    /// `vm_flags`.
    pub flags: VmFlags,
    /// `vm_pgoff`.
    pub pgoff: u64,
    /// `vm_page_prot` as PTE bits.
    pub page_prot: u64,
    /// `vm_file`.
    pub file: Option<Arc<File>>,
    /// `vm_ops`; `None` for a file VMA means `vma_dummy_vm_ops`.
    pub ops: Option<Arc<dyn VmOperations>>,
    /// `vma->anon_vma` is set (a COW page was created).
    pub anon_vma: bool,
    /// x86 PAT reservation held for the whole VMA (`track_pfn_remap()`).
    pub pat_reserved: bool,
}

impl Vma {
    /// Number of pages (`vma_pages()`).
    pub fn pages(&self) -> u64 {
        (self.end.0 - self.start.0) >> PAGE_SHIFT
    }
    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.end.0 - self.start.0
    }
    /// Whether the VMA is empty (never for a live VMA).
    pub fn is_empty(&self) -> bool {
        self.end.0 <= self.start.0
    }
    /// Whether `addr` lies inside.
    pub fn contains(&self, addr: VirtAddr) -> bool {
        addr >= self.start && addr < self.end
    }
    /// `vma_is_anonymous()`: no `vm_ops` (the model: no file).
    pub fn is_anonymous(&self) -> bool {
        self.file.is_none()
    }
    /// `linear_page_index()`.
    pub fn linear_page_index(&self, addr: VirtAddr) -> u64 {
        ((addr.0 - self.start.0) >> PAGE_SHIFT) + self.pgoff
    }
    /// `vma_is_secretmem()`.
    pub fn is_secretmem(&self) -> bool {
        self.file.as_ref().is_some_and(|f| f.mapping.secretmem)
    }
    /// `is_vm_hugetlb_page()`.
    pub fn is_hugetlb(&self) -> bool {
        self.flags.has(VmFlags::HUGETLB)
    }
    /// `vma_is_fsdax()`.
    pub fn is_fsdax(&self) -> bool {
        self.file.as_ref().is_some_and(|f| f.mapping.fsdax)
    }
    /// `vma_is_shmem()`.
    pub fn is_shmem(&self) -> bool {
        self.file.as_ref().is_some_and(|f| f.mapping.shmem)
    }
    /// Whether the ops set `.page_mkwrite`.
    pub fn has_page_mkwrite(&self) -> bool {
        self.ops.as_ref().is_some_and(|o| o.has_page_mkwrite())
    }
    /// Whether the ops set `.pfn_mkwrite`.
    pub fn has_pfn_mkwrite(&self) -> bool {
        self.ops.as_ref().is_some_and(|o| o.has_pfn_mkwrite())
    }

    /// `vma_needs_dirty_tracking()` (mm/mmap.c, 6.12 mm/vma.c).
    pub fn needs_dirty_tracking(&self) -> bool {
        if !self.flags.all(VmFlags::SHARED | VmFlags::WRITE) {
            return false;
        }
        if self.has_page_mkwrite() || self.has_pfn_mkwrite() {
            return true;
        }
        !self.flags.has(VmFlags::PFNMAP)
            && self.file.as_ref().is_some_and(|f| f.mapping.can_writeback)
    }

    /// `vma_wants_writenotify()` (mm/mmap.c), with soft-dirty tracking off (VM_SOFTDIRTY set on
    /// every new VMA).
    pub fn wants_writenotify(&self) -> bool {
        if !self.flags.all(VmFlags::SHARED | VmFlags::WRITE) {
            return false;
        }
        if self.has_page_mkwrite() || self.has_pfn_mkwrite() {
            return true;
        }
        if self.flags.has(VmFlags::PFNMAP) {
            return false;
        }
        self.file.as_ref().is_some_and(|f| f.mapping.can_writeback)
    }

    /// `vma_set_page_prot()` (mm/mmap.c): recompute the protection from the flags, keeping the
    /// cache mode the driver chose, and drop write for write-notify VMAs.
    pub fn set_page_prot(&mut self) {
        let cache = self.page_prot & PAGE_CACHE_MASK;
        let mut prot = vm_get_page_prot(self.flags) | cache;
        if self.wants_writenotify() {
            prot &= !Pte::RW;
        }
        self.page_prot = prot;
    }

    /// `vma_supports_mlock()` (mm/internal.h; 6.1 inline in mm/mlock.c:mlock_fixup).
    pub fn supports_mlock(&self) -> bool {
        !(self.flags.any(VmFlags::SPECIAL | VmFlags::DROPPABLE)
            || self.is_hugetlb()
            || self.is_fsdax())
    }

    /// End address of the page at `addr`.
    pub fn page_end(addr: VirtAddr) -> VirtAddr {
        VirtAddr(addr.0 + PAGE_SIZE)
    }
}
