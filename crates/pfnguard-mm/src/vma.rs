//! Virtual memory areas: `vm_flags` (include/linux/mm.h), `struct vm_area_struct`, files and
//! `vm_operations_struct`.

use std::fmt;
use std::sync::Arc;

use crate::facts::{Fact, KernelFacts};
use crate::frames::Mapping;
use crate::kernel::{Kernel, MmId};
use crate::outcome::{KResult, VmFault};
use crate::pagetable::{PgProt, Pte};
use crate::types::{VirtAddr, PAGE_SHIFT, PAGE_SIZE};

bitflags::bitflags! {
    /// `vm_flags_t` (include/linux/mm.h), one constant per `VM_*` flag, in bit order.
    #[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
    pub struct VmFlags: u64 {
        #[allow(missing_docs)]
        const READ = 0x1;
        #[allow(missing_docs)]
        const WRITE = 0x2;
        #[allow(missing_docs)]
        const EXEC = 0x4;
        #[allow(missing_docs)]
        const SHARED = 0x8;
        #[allow(missing_docs)]
        const MAYREAD = 0x10;
        #[allow(missing_docs)]
        const MAYWRITE = 0x20;
        #[allow(missing_docs)]
        const MAYEXEC = 0x40;
        #[allow(missing_docs)]
        const MAYSHARE = 0x80;
        #[allow(missing_docs)]
        const GROWSDOWN = 0x100;
        #[allow(missing_docs)]
        const UFFD_MISSING = 0x200;
        /// "Page-ranges managed without `struct page`, just pure PFN".
        const PFNMAP = 0x400;
        #[allow(missing_docs)]
        const UFFD_WP = 0x1000;
        #[allow(missing_docs)]
        const LOCKED = 0x2000;
        /// "Memory mapped I/O or similar".
        const IO = 0x4000;
        #[allow(missing_docs)]
        const SEQ_READ = 0x8000;
        #[allow(missing_docs)]
        const RAND_READ = 0x10000;
        #[allow(missing_docs)]
        const DONTCOPY = 0x20000;
        #[allow(missing_docs)]
        const DONTEXPAND = 0x40000;
        #[allow(missing_docs)]
        const LOCKONFAULT = 0x80000;
        #[allow(missing_docs)]
        const ACCOUNT = 0x100000;
        #[allow(missing_docs)]
        const NORESERVE = 0x200000;
        #[allow(missing_docs)]
        const HUGETLB = 0x400000;
        #[allow(missing_docs)]
        const SYNC = 0x800000;
        /// x86 VM_ARCH_1 = VM_PAT.
        const PAT = 0x1000000;
        #[allow(missing_docs)]
        const WIPEONFORK = 0x2000000;
        #[allow(missing_docs)]
        const DONTDUMP = 0x4000000;
        #[allow(missing_docs)]
        const SOFTDIRTY = 0x8000000;
        /// "Can contain `struct page` and pure PFN pages".
        const MIXEDMAP = 0x10000000;
        #[allow(missing_docs)]
        const HUGEPAGE = 0x20000000;
        #[allow(missing_docs)]
        const NOHUGEPAGE = 0x40000000;
        #[allow(missing_docs)]
        const MERGEABLE = 0x80000000;
        #[allow(missing_docs)]
        const SHADOW_STACK = 1 << 37;
        #[allow(missing_docs)]
        const DROPPABLE = 1 << 40;
        #[allow(missing_docs)]
        const SEALED = 1 << 63;
    }
}

impl VmFlags {
    /// `VM_SPECIAL`: "non-mergable, non-mlock()able".
    pub const SPECIAL: VmFlags = VmFlags::IO
        .union(VmFlags::DONTEXPAND)
        .union(VmFlags::PFNMAP)
        .union(VmFlags::MIXEDMAP);
    /// `VM_LOCKED_MASK`.
    pub const LOCKED_MASK: VmFlags = VmFlags::LOCKED.union(VmFlags::LOCKONFAULT);

    /// `is_cow_mapping()` (include/linux/mm.h): private and may be written.
    #[inline]
    pub fn is_cow_mapping(self) -> bool {
        self.intersection(Self::SHARED | Self::MAYWRITE) == Self::MAYWRITE
    }

    /// The mnemonics `show_smap_vma_flags()` (fs/proc/task_mmu.c) prints, in bit order.
    pub fn mnemonics(self, facts: &KernelFacts) -> Vec<&'static str> {
        (0..64)
            .filter(|&i| self.bits() & (1u64 << i) != 0)
            .map(|i| smaps_mnemonic(i, facts))
            .filter(|m| !m.is_empty())
            .collect()
    }

    /// Kernel names of the set flags without `VM_` (`PFNMAP|IO|...`), in bit order, for traces.
    pub fn names(self) -> String {
        let names: Vec<&str> = self.iter_names().map(|(n, _)| n).collect();
        if names.is_empty() {
            "0".into()
        } else {
            names.join("|")
        }
    }

    /// Parse a kernel flag name, with or without the `VM_` prefix, in any case (`"VM_PFNMAP"`,
    /// `"pfnmap"`).
    pub fn from_kernel_name(name: &str) -> Option<VmFlags> {
        let n = name.strip_prefix("VM_").unwrap_or(name);
        VmFlags::all()
            .iter_names()
            .find(|(s, _)| s.eq_ignore_ascii_case(n))
            .map(|(_, f)| f)
    }
}

impl serde::Serialize for VmFlags {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.bits())
    }
}

impl fmt::Debug for VmFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names())
    }
}

/// `vm_get_page_prot()` on x86-64 (arch/x86/mm/pgprot.c, `protection_map`): the PTE bits of a
/// VMA. Private writable mappings get read-only PTEs (COW); no access gives PAGE_NONE.
pub fn vm_get_page_prot(flags: VmFlags) -> PgProt {
    if !flags.intersects(VmFlags::READ | VmFlags::WRITE | VmFlags::EXEC) {
        return PgProt::new(Pte::PROTNONE | Pte::ACCESSED);
    }
    let mut prot = Pte::PRESENT | Pte::USER | Pte::ACCESSED;
    if flags.contains(VmFlags::WRITE) && flags.contains(VmFlags::SHARED) {
        prot |= Pte::RW;
    }
    if !flags.contains(VmFlags::EXEC) {
        prot |= Pte::NX;
    }
    PgProt::new(prot)
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
    /// Which `struct address_space` this is (the model's identity of a file's `f_mapping`, from
    /// [`Kernel::new_address_space`]), for the i_mmap walk of
    /// [`unmap_mapping_range`](crate::zap::unmap_mapping_range); `None` for one the model never
    /// zaps through (every VMA of such a file is out of its reach).
    #[serde(skip)]
    pub host: Option<u64>,
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
        host: None,
    };
    /// shmem/tmpfs (memfd): no writeback (tmpfs uses `noop_backing_dev_info`).
    pub const SHMEM: AddressSpace = AddressSpace {
        shmem: true,
        can_writeback: false,
        secretmem: false,
        hugetlb: false,
        fsdax: false,
        host: None,
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

/// `path_noexec()` (fs/exec.c: `mnt_flags & MNT_NOEXEC || mnt_sb->s_iflags & SB_I_NOEXEC`) of a
/// file on a pseudo filesystem mounted by `kern_mount()` of an `init_pseudo()` context
/// (fs/libfs.c: the `dmabuf` fs of drivers/dma-buf/dma-buf.c:dma_buf_fs_init_context, DRM's and
/// others'). Before [`Fact::PseudoFsNoexec`] `init_pseudo()` set only SB_NOUSER, so nothing made
/// such a mount noexec; since, it sets `fc->s_iflags |= SB_I_NOEXEC | SB_I_NODEV`. tmpfs (memfd,
/// shmem) is not an `init_pseudo()` filesystem.
pub fn pseudo_fs_path_noexec(k: &mut Kernel) -> bool {
    let noexec = k.has(Fact::PseudoFsNoexec);
    crate::trace!(
        k,
        "fs/libfs.c:init_pseudo",
        "pseudo filesystem s_iflags: {}",
        if noexec {
            "SB_I_NOEXEC|SB_I_NODEV (path_noexec() true)"
        } else {
            "no SB_I_NOEXEC (path_noexec() false)"
        }
    );
    noexec
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
    /// `.page_mkwrite`, called by mm/memory.c:do_page_mkwrite before a read-only PTE of a
    /// shared mapping becomes writable; `vmf.page` is the page. Only called when
    /// [`has_page_mkwrite`](Self::has_page_mkwrite) is true; the default refuses the write.
    fn page_mkwrite(&self, _cx: &mut crate::FaultCtx<'_>) -> KResult<VmFault> {
        Ok(VmFault::SIGBUS)
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
    /// `.access` (include/linux/mm.h `int (*access)(vma, addr, buf, len, write)`): copy `len`
    /// bytes at `addr` for `__access_remote_vm()`; the bytes copied, or the errno the kernel
    /// callback returns negated.
    fn access(
        &self,
        _k: &mut Kernel,
        _vma: VmaId,
        _addr: VirtAddr,
        _len: usize,
        _write: bool,
    ) -> Result<usize, crate::Errno> {
        Err(crate::Errno::EIO)
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
    /// `vm_page_prot`.
    pub page_prot: PgProt,
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
        self.flags.contains(VmFlags::HUGETLB)
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
        if !self.flags.contains(VmFlags::SHARED | VmFlags::WRITE) {
            return false;
        }
        if self.has_page_mkwrite() || self.has_pfn_mkwrite() {
            return true;
        }
        !self.flags.contains(VmFlags::PFNMAP)
            && self.file.as_ref().is_some_and(|f| f.mapping.can_writeback)
    }

    /// `vma_wants_writenotify()` (mm/mmap.c), with soft-dirty tracking off (VM_SOFTDIRTY set on
    /// every new VMA).
    pub fn wants_writenotify(&self) -> bool {
        if !self.flags.contains(VmFlags::SHARED | VmFlags::WRITE) {
            return false;
        }
        if self.has_page_mkwrite() || self.has_pfn_mkwrite() {
            return true;
        }
        if self.flags.contains(VmFlags::PFNMAP) {
            return false;
        }
        self.file.as_ref().is_some_and(|f| f.mapping.can_writeback)
    }

    /// `vma_set_page_prot()` (mm/mmap.c): recompute the protection from the flags, keeping the
    /// cache mode the driver chose, and drop write for write-notify VMAs.
    pub fn set_page_prot(&mut self) {
        let cache = self.page_prot.val() & PAGE_CACHE_MASK;
        let mut prot = vm_get_page_prot(self.flags).with(cache);
        if self.wants_writenotify() {
            prot = prot.without(Pte::RW);
        }
        self.page_prot = prot;
    }

    /// `vma_supports_mlock()` (mm/internal.h; 6.1 inline in mm/mlock.c:mlock_fixup).
    pub fn supports_mlock(&self) -> bool {
        !(self.flags.intersects(VmFlags::SPECIAL | VmFlags::DROPPABLE)
            || self.is_hugetlb()
            || self.is_fsdax())
    }

    /// End address of the page at `addr`.
    pub fn page_end(addr: VirtAddr) -> VirtAddr {
        VirtAddr(addr.0 + PAGE_SIZE)
    }
}

/// `show_smap_vma_flags()` (fs/proc/task_mmu.c): the mnemonic of `VM_*` bit `bit`; `""` for
/// bits it does not print (x86 protection keys, shown on the `ProtectionKey:` line), `"??"` for
/// bits without a name.
pub fn smaps_mnemonic(bit: u32, facts: &KernelFacts) -> &'static str {
    match bit {
        0 => "rd",
        1 => "wr",
        2 => "ex",
        3 => "sh",
        4 => "mr",
        5 => "mw",
        6 => "me",
        7 => "ms",
        8 => "gd",
        9 => "um",
        10 => "pf",
        11 if !facts.has(Fact::NoVmDenywrite) => "dw",
        12 => "uw",
        13 => "lo",
        14 => "io",
        15 => "sr",
        16 => "rr",
        17 => "dc",
        18 => "de",
        19 if facts.has(Fact::SmapsLockonfault) => "lf",
        20 => "ac",
        21 => "nr",
        22 => "ht",
        23 => "sf",
        24 => "ar",
        25 => "wf",
        26 => "dd",
        27 => "sd",
        28 => "mm",
        29 => "hg",
        30 => "nh",
        31 => "mg",
        32..=35 => "",
        37 if facts.has(Fact::SmapsShadowStack) => "ss",
        38 if facts.has(Fact::SmapsUffdMinor) => "ui",
        40 if facts.has(Fact::SmapsDroppable) => "dp",
        63 if facts.has(Fact::SmapsSealed) => "sl",
        _ => "??",
    }
}
