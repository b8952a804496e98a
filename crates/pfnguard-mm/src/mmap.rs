//! `mmap(2)` and `munmap(2)`: mm/mmap.c `do_mmap()`, `mmap_region()`, `do_vmi_munmap()`, and the
//! typestate handle an exporter's `f_op->mmap` receives.

use std::sync::Arc;

use crate::errno::Errno;
use crate::kernel::{Kernel, MmId, MmapLock};
use crate::outcome::KResult;
use crate::pagetable::PgProt;
use crate::trace;
use crate::types::{pages_for, Pfn, VirtAddr, PAGE_SHIFT, PAGE_SIZE, TASK_SIZE_MAX};
use crate::vma::{vm_get_page_prot, File, VmFlags, VmOperations, Vma, VmaId};

/// `PROT_*` bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct Prot {
    /// PROT_READ.
    pub read: bool,
    /// PROT_WRITE.
    pub write: bool,
    /// PROT_EXEC.
    pub exec: bool,
}

impl Prot {
    /// PROT_READ|PROT_WRITE.
    pub const RW: Prot = Prot {
        read: true,
        write: true,
        exec: false,
    };
    /// PROT_READ.
    pub const R: Prot = Prot {
        read: true,
        write: false,
        exec: false,
    };
    /// `PROT_READ|PROT_WRITE` as the man page writes it.
    pub fn names(self) -> String {
        let v: Vec<&str> = [
            (self.read, "PROT_READ"),
            (self.write, "PROT_WRITE"),
            (self.exec, "PROT_EXEC"),
        ]
        .into_iter()
        .filter(|(on, _)| *on)
        .map(|(_, n)| n)
        .collect();
        if v.is_empty() {
            "PROT_NONE".into()
        } else {
            v.join("|")
        }
    }
    /// `calc_vm_prot_bits()`.
    pub fn vm_bits(self) -> VmFlags {
        let mut f = VmFlags::empty();
        f.set(VmFlags::READ, self.read);
        f.set(VmFlags::WRITE, self.write);
        f.set(VmFlags::EXEC, self.exec);
        f
    }
}

/// The mapping type and `MAP_*` modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct MapFlags {
    /// MAP_SHARED (otherwise MAP_PRIVATE).
    pub shared: bool,
    /// MAP_FIXED at the hint address.
    pub fixed: bool,
    /// MAP_LOCKED.
    pub locked: bool,
    /// MAP_POPULATE.
    pub populate: bool,
}

impl MapFlags {
    /// MAP_SHARED.
    pub const SHARED: MapFlags = MapFlags {
        shared: true,
        fixed: false,
        locked: false,
        populate: false,
    };
    /// MAP_PRIVATE.
    pub const PRIVATE: MapFlags = MapFlags {
        shared: false,
        fixed: false,
        locked: false,
        populate: false,
    };
}

/// Arguments of `mmap(2)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct MmapArgs {
    /// Address hint (or the address for MAP_FIXED).
    pub addr: Option<VirtAddr>,
    /// Length in bytes.
    pub len: u64,
    /// Protection.
    pub prot: Prot,
    /// Flags.
    pub flags: MapFlags,
    /// Offset in pages.
    pub pgoff: u64,
}

impl MmapArgs {
    /// `mmap(NULL, len, prot, flags, fd, 0)`.
    pub fn new(len: u64, prot: Prot, flags: MapFlags) -> MmapArgs {
        MmapArgs {
            addr: None,
            len,
            prot,
            flags,
            pgoff: 0,
        }
    }
}

/// `mmap(2)` of `file` (or anonymous memory) in `mm`: mm/mmap.c:`do_mmap` (flag computation
/// and the file checks, `get_unmapped_area()`), then [`mmap_region`]; MAP_POPULATE or
/// VM_LOCKED then run `mm_populate()` (mm/util.c:vm_mmap_pgoff).
///
/// Flag computation: `calc_vm_prot_bits | calc_vm_flag_bits | VM_MAYREAD|VM_MAYWRITE|VM_MAYEXEC`;
/// MAP_LOCKED runs `mlock_future_ok()` first; MAP_SHARED needs FMODE_WRITE for PROT_WRITE
/// (-EACCES) and drops VM_MAYWRITE|VM_SHARED on a read-only file; a file mapping needs
/// FMODE_READ; a noexec mount drops VM_MAYEXEC.
pub fn do_mmap(
    k: &mut Kernel,
    mm: MmId,
    file: Option<Arc<File>>,
    args: MmapArgs,
) -> KResult<VirtAddr> {
    k.alive()?;
    const F: &str = "mm/mmap.c:do_mmap";
    trace!(
        k,
        F,
        "mmap(len={:#x}, {}, {}, pgoff={})",
        args.len,
        args.prot.names(),
        if args.flags.shared {
            "MAP_SHARED"
        } else {
            "MAP_PRIVATE"
        },
        args.pgoff
    );
    if args.len == 0 {
        return Err(Errno::EINVAL.into());
    }
    let len = pages_for(args.len) * PAGE_SIZE;
    if len > TASK_SIZE_MAX {
        return Err(Errno::ENOMEM.into());
    }
    if args.pgoff.checked_add(len >> PAGE_SHIFT).is_none() {
        return Err(Errno::EOVERFLOW.into());
    }
    let mut vm_flags =
        args.prot.vm_bits() | VmFlags::MAYREAD | VmFlags::MAYWRITE | VmFlags::MAYEXEC;
    if args.flags.locked {
        mlock_future_ok(k, mm, len)?;
        vm_flags |= VmFlags::LOCKED;
    }
    match &file {
        Some(f) => vm_flags = file_mmap_flags(k, f, args, vm_flags)?,
        None if args.flags.shared => vm_flags |= VmFlags::SHARED | VmFlags::MAYSHARE,
        None => {}
    }
    let start = pick_address(k, mm, args.addr, len, args.flags.fixed)?;
    let id = mmap_region(k, mm, file, start, len, vm_flags, args)?;
    let populate =
        args.flags.populate || k.vma(id).is_some_and(|v| v.flags.contains(VmFlags::LOCKED));
    if populate {
        crate::gup::mm_populate(k, mm, start, len);
    }
    Ok(start)
}

/// `can_do_mlock()` and `mlock_future_ok()` (mm/mmap.c) for MAP_LOCKED, run against the
/// requested VM_LOCKED before the exporter's `->mmap` may make the VMA unlockable: no
/// CAP_IPC_LOCK and RLIMIT_MEMLOCK 0 → -EPERM, beyond the limit → -EAGAIN.
fn mlock_future_ok(k: &mut Kernel, mm: MmId, len: u64) -> KResult<()> {
    let m = k.mm(mm);
    if k.config.cap_ipc_lock {
        return Ok(());
    }
    if m.rlimit_memlock == 0 {
        return Err(Errno::EPERM.into());
    }
    if m.locked_vm + (len >> PAGE_SHIFT) > m.rlimit_memlock {
        trace!(
            k,
            "mm/mmap.c:mlock_future_ok",
            "MAP_LOCKED beyond RLIMIT_MEMLOCK -> -EAGAIN"
        );
        return Err(Errno::EAGAIN.into());
    }
    Ok(())
}

/// The file part of mm/mmap.c:do_mmap: `switch (flags & MAP_TYPE)` with the `f_mode` tests.
fn file_mmap_flags(
    k: &mut Kernel,
    f: &File,
    args: MmapArgs,
    mut vm_flags: VmFlags,
) -> KResult<VmFlags> {
    if args.flags.shared {
        if args.prot.write && !f.writable {
            trace!(
                k,
                "mm/mmap.c:do_mmap",
                "MAP_SHARED with PROT_WRITE on a file without FMODE_WRITE -> -EACCES"
            );
            return Err(Errno::EACCES.into());
        }
        vm_flags |= VmFlags::SHARED | VmFlags::MAYSHARE;
        if !f.writable {
            vm_flags.remove(VmFlags::MAYWRITE | VmFlags::SHARED);
        }
    }
    if !f.readable {
        return Err(Errno::EACCES.into());
    }
    if f.noexec {
        if args.prot.exec {
            return Err(Errno::EPERM.into());
        }
        vm_flags.remove(VmFlags::MAYEXEC);
    }
    Ok(vm_flags)
}

/// mm/mmap.c:`mmap_region` (6.12: mm/vma.c:`__mmap_region`): unmap what MAP_FIXED covers, make
/// shared anonymous memory a shmem file (mm/shmem.c:shmem_zero_setup, offset 0), insert the
/// VMA, call the file's `->mmap` ([`mmap_file`]), then finish it ([`mmap_complete`]).
fn mmap_region(
    k: &mut Kernel,
    mm: MmId,
    file: Option<Arc<File>>,
    start: VirtAddr,
    len: u64,
    vm_flags: VmFlags,
    args: MmapArgs,
) -> KResult<VmaId> {
    let end = VirtAddr(start.0 + len);
    if args.flags.fixed {
        do_munmap(k, mm, start, len)?;
    }
    let (file, pgoff) = match file {
        None if args.flags.shared => {
            let (f, _inode) = crate::shmem::shmem_zero_setup(len >> PAGE_SHIFT);
            (Some(f), 0)
        }
        f => (f, args.pgoff),
    };
    let vma = Vma {
        start,
        end,
        flags: vm_flags,
        pgoff,
        page_prot: vm_get_page_prot(vm_flags),
        file: file.clone(),
        ops: None,
        anon_vma: false,
        pat_reserved: false,
    };
    k.mm_mut(mm).vmas.insert(start, vma);
    let id = VmaId { mm, start };
    if let Some(f) = &file {
        mmap_file(k, id, f)?;
    }
    mmap_complete(k, id)
}

/// `mmap_file()` / `call_mmap()` (mm/internal.h, include/linux/fs.h): `file->f_op->mmap` with
/// the mmap lock held for writing; on error the range is zapped and the VMA freed
/// (`unmap_region`), unless the handler oopsed.
fn mmap_file(k: &mut Kernel, id: VmaId, f: &File) -> KResult<()> {
    const F: &str = "mm/mmap.c:mmap_region";
    trace!(k, F, "call_mmap -> {}.mmap", f.fops.name());
    k.mm_mut(id.mm).lock = MmapLock::Write;
    k.trace.enter();
    let r = {
        let mut new = VmaNew { k, id };
        f.fops.mmap(&mut new)
    };
    k.trace.leave();
    k.mm_mut(id.mm).lock = MmapLock::Unlocked;
    if let Err(e) = r {
        trace!(k, F, "f_op->mmap failed ({e}): unmap_region");
        if k.oops.is_none() {
            let end = k.vma(id).map_or(id.start, |v| v.end);
            crate::zap::zap_vma_range(k, id, id.start, end);
            k.mm_mut(id.mm).vmas.remove(&id.start);
        }
        return Err(e);
    }
    Ok(())
}

/// The end of mm/mmap.c:mmap_region (6.12: mm/vma.c:`__mmap_complete`): VM_LOCKED is dropped
/// from a VMA that cannot be mlocked (VM_SPECIAL, hugetlb, DAX), else `mm->locked_vm` grows;
/// VM_SOFTDIRTY is set; `vma_set_page_prot()` recomputes the protection; then the VMA merges
/// with the one before it where it can.
fn mmap_complete(k: &mut Kernel, id: VmaId) -> KResult<VmaId> {
    {
        let Some(vma) = k.vma_mut(id) else {
            return Err(Errno::EFAULT.into());
        };
        let lock_pages = vma.pages();
        let mut locked = false;
        if vma.flags.contains(VmFlags::LOCKED) {
            if !vma.supports_mlock() {
                vma.flags.remove(VmFlags::LOCKED_MASK);
            } else {
                locked = true;
            }
        }
        vma.flags |= VmFlags::SOFTDIRTY;
        vma.set_page_prot();
        if locked {
            k.mm_mut(id.mm).locked_vm += lock_pages;
        }
    }
    if let Some(v) = k.vma(id) {
        trace!(
            k,
            "mm/mmap.c:mmap_region",
            "VMA {}-{} flags {}",
            v.start,
            v.end,
            v.flags.names()
        );
    }
    Ok(vma_merge_prev(k, id))
}

/// `is_mergeable_vma()` + `can_vma_merge_after()` (mm/vma.c; 6.1 mm/mmap.c): two VMAs merge
/// when they touch, have the same flags (VM_SOFTDIRTY ignored), the same file and ops, the file
/// offsets continue, and neither is VM_SPECIAL ("non-mergable").
pub fn can_merge(prev: &Vma, next: &Vma) -> bool {
    const IGNORE: VmFlags = VmFlags::SOFTDIRTY;
    if prev.end != next.start || !(prev.flags ^ next.flags).difference(IGNORE).is_empty() {
        return false;
    }
    if prev.flags.intersects(VmFlags::SPECIAL) || next.flags.intersects(VmFlags::SPECIAL) {
        return false;
    }
    let same_file = match (&prev.file, &next.file) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    };
    let same_ops = match (&prev.ops, &next.ops) {
        (None, None) => true,
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        _ => false,
    };
    let pgoff_ok = prev.file.is_none() || prev.pgoff + prev.pages() == next.pgoff;
    same_file && same_ops && pgoff_ok && prev.anon_vma == next.anon_vma
}

/// `vma_merge_new_range()` for a new VMA: fold it into the VMA ending where it starts.
fn vma_merge_prev(k: &mut Kernel, id: VmaId) -> VmaId {
    let m = k.mm(id.mm);
    let Some(new) = m.vmas.get(&id.start) else {
        return id;
    };
    let Some((_, prev)) = m.vmas.range(..id.start).next_back() else {
        return id;
    };
    if !can_merge(prev, new) {
        return id;
    }
    let (pstart, end) = (prev.start, new.end);
    trace!(
        k,
        "mm/vma.c:vma_merge_new_range",
        "merged into the VMA at {pstart}"
    );
    let m = k.mm_mut(id.mm);
    m.vmas.remove(&id.start);
    if let Some(p) = m.vmas.get_mut(&pstart) {
        p.end = end;
    }
    VmaId {
        mm: id.mm,
        start: pstart,
    }
}

/// `get_unmapped_area()`: the hint when it is free (or MAP_FIXED), else the next free range
/// above the mm's mmap cursor.
pub(crate) fn pick_address(
    k: &mut Kernel,
    mm: MmId,
    hint: Option<VirtAddr>,
    len: u64,
    fixed: bool,
) -> KResult<VirtAddr> {
    if let Some(a) = hint {
        if !a.is_page_aligned() {
            return Err(Errno::EINVAL.into());
        }
        if a.0.checked_add(len).is_none_or(|e| e > TASK_SIZE_MAX) {
            return Err(Errno::ENOMEM.into());
        }
        if fixed || range_free(k, mm, a, len) {
            return Ok(a);
        }
    }
    let m = k.mm_mut(mm);
    loop {
        let a = m.next_addr;
        // Leave a guard page between mappings so that VMAs never touch.
        m.next_addr = VirtAddr(a.0 + len + PAGE_SIZE);
        if m.next_addr.0 > TASK_SIZE_MAX {
            return Err(Errno::ENOMEM.into());
        }
        let free = m
            .vmas
            .values()
            .all(|v| v.end.0 <= a.0 || v.start.0 >= a.0 + len);
        if free {
            return Ok(a);
        }
    }
}

fn range_free(k: &Kernel, mm: MmId, a: VirtAddr, len: u64) -> bool {
    k.mm(mm)
        .vmas
        .values()
        .all(|v| v.end.0 <= a.0 || v.start.0 >= a.0 + len)
}

/// `munmap(2)`: mm/mmap.c:`do_vmi_munmap` → `unmap_region` (`unmap_vmas` → `zap_pte_range`,
/// `untrack_pfn` for VM_PFNMAP) and `remove_vma` (`vm_ops->close`).
///
/// Partial unmaps split the VMA; the model keeps the remaining pieces with their page tables.
pub fn do_munmap(k: &mut Kernel, mm: MmId, start: VirtAddr, len: u64) -> KResult<()> {
    k.alive()?;
    if !start.is_page_aligned() || len == 0 {
        return Err(Errno::EINVAL.into());
    }
    let end = VirtAddr(start.0 + pages_for(len) * PAGE_SIZE);
    let hits: Vec<VirtAddr> = k
        .mm(mm)
        .vmas
        .values()
        .filter(|v| v.start < end && v.end > start)
        .map(|v| v.start)
        .collect();
    for vs in hits {
        let id = split_to(k, mm, vs, start, end);
        trace!(k, "mm/mmap.c:do_vmi_munmap", "unmap VMA at {}", id.start);
        crate::zap::unmap_single_vma(k, id);
        if let Some(v) = k.mm_mut(mm).vmas.remove(&id.start) {
            if v.flags.contains(VmFlags::LOCKED) {
                let m = k.mm_mut(mm);
                m.locked_vm = m.locked_vm.saturating_sub(v.pages());
            }
            if let Some(ops) = &v.ops {
                ops.close(k, id);
            }
        }
    }
    Ok(())
}

/// Split the VMA at `vs` so that exactly `[max(start, vm_start), min(end, vm_end))` is one VMA
/// (mm/mmap.c:`__split_vma`); returns it.
pub(crate) fn split_to(
    k: &mut Kernel,
    mm: MmId,
    vs: VirtAddr,
    start: VirtAddr,
    end: VirtAddr,
) -> VmaId {
    let m = k.mm_mut(mm);
    let Some(mut v) = m.vmas.remove(&vs) else {
        return VmaId { mm, start: vs };
    };
    if v.start < start {
        let mut head = v.clone();
        head.end = start;
        v.pgoff += (start.0 - v.start.0) >> PAGE_SHIFT;
        v.start = start;
        m.vmas.insert(head.start, head);
    }
    if v.end > end {
        let mut tail = v.clone();
        tail.pgoff += (end.0 - v.start.0) >> PAGE_SHIFT;
        tail.start = end;
        v.end = end;
        m.vmas.insert(tail.start, tail);
    }
    let s = v.start;
    m.vmas.insert(s, v);
    VmaId { mm, start: s }
}

/// The VMA under construction inside `f_op->mmap` (Rust-for-Linux `VmaNew`): the mmap lock is
/// held for writing, so flags may change and the whole range may be populated.
#[derive(Debug)]
pub struct VmaNew<'k> {
    pub(crate) k: &'k mut Kernel,
    pub(crate) id: VmaId,
}

impl<'k> VmaNew<'k> {
    /// The kernel (to allocate memory, record warnings).
    pub fn kernel(&mut self) -> &mut Kernel {
        self.k
    }
    /// The VMA's identity.
    pub fn id(&self) -> VmaId {
        self.id
    }
    /// A copy of the VMA as it is now.
    pub fn vma(&self) -> Vma {
        self.k.vma(self.id).cloned().unwrap_or_else(|| Vma {
            start: self.id.start,
            end: self.id.start,
            flags: VmFlags::empty(),
            pgoff: 0,
            page_prot: PgProt::default(),
            file: None,
            ops: None,
            anon_vma: false,
            pat_reserved: false,
        })
    }
    /// `vm_flags`.
    pub fn flags(&self) -> VmFlags {
        self.k.vma(self.id).map(|v| v.flags).unwrap_or_default()
    }
    /// `vm_flags_set()`.
    pub fn set_flags(&mut self, flags: VmFlags) {
        trace!(
            self.k,
            "include/linux/mm.h:vm_flags_set",
            "{}",
            flags.names()
        );
        if let Some(v) = self.k.vma_mut(self.id) {
            v.flags |= flags;
        }
    }
    /// `vm_flags_clear()`.
    pub fn clear_flags(&mut self, flags: VmFlags) {
        trace!(
            self.k,
            "include/linux/mm.h:vm_flags_clear",
            "{}",
            flags.names()
        );
        if let Some(v) = self.k.vma_mut(self.id) {
            v.flags.remove(flags);
        }
    }
    /// `vm_flags_mod(vma, set, clear)`.
    pub fn mod_flags(&mut self, set: VmFlags, clear: VmFlags) {
        trace!(
            self.k,
            "include/linux/mm.h:vm_flags_mod",
            "set {} clear {}",
            set.names(),
            clear.names()
        );
        if let Some(v) = self.k.vma_mut(self.id) {
            v.flags = v.flags.union(set).difference(clear);
        }
    }
    /// `vma->vm_ops = ops`.
    pub fn set_ops(&mut self, ops: Arc<dyn VmOperations>) {
        trace!(self.k, "vma->vm_ops", "= {}", ops.name());
        if let Some(v) = self.k.vma_mut(self.id) {
            v.ops = Some(ops);
        }
    }
    /// `vma->vm_ops->close(vma)`, when the VMA has `vm_ops` with a `close`: what a caller of
    /// `->mmap` that fails the mmap after the handler succeeded must call, because
    /// mm/vma.c:`__mmap_new_file_vma` frees the VMA through `unmap_region()` without it.
    pub fn close(&mut self) {
        let ops = self.k.vma(self.id).and_then(|v| v.ops.clone());
        if let Some(ops) = ops {
            trace!(self.k, "vma->vm_ops->close", "{}", ops.name());
            ops.close(self.k, self.id);
        }
    }
    /// `vma->vm_pgoff = pgoff`.
    pub fn set_pgoff(&mut self, pgoff: u64) {
        if let Some(v) = self.k.vma_mut(self.id) {
            v.pgoff = pgoff;
        }
    }
    /// `vma_set_file()`: replace `vm_file` (i915 maps its shmem file).
    pub fn set_file(&mut self, file: Arc<File>) {
        trace!(self.k, "mm/mmap.c:vma_set_file", "vm_file = {}", file.path);
        if let Some(v) = self.k.vma_mut(self.id) {
            v.file = Some(file);
        }
    }
    /// `pgprot_writecombine(vma->vm_page_prot)`.
    pub fn set_writecombine(&mut self) {
        if let Some(v) = self.k.vma_mut(self.id) {
            v.page_prot = v
                .page_prot
                .without(crate::vma::PAGE_CACHE_MASK)
                .with(crate::pagetable::Pte::PWT);
        }
    }
    /// `vm_flags_set(vma, VM_MIXEDMAP)` and the handle that may take `vm_insert_page()` and the
    /// helpers built on it (Rust-for-Linux rust/kernel/mm/virt.rs `VmaNew::set_mixedmap`).
    ///
    /// A driver that calls `vm_insert_page()` during `->mmap` without marking the VMA gets the
    /// same flag from mm/memory.c:vm_insert_page (`vm_flags_set(vma, VM_MIXEDMAP)` under the
    /// write-held mmap lock); marking it first is the typed form of that path.
    pub fn set_mixedmap(&mut self) -> VmaMixedMap<'_> {
        self.set_flags(VmFlags::MIXEDMAP);
        VmaMixedMap {
            k: self.k,
            id: self.id,
        }
    }
    /// The `vm_insert_page()` capability, if VM_MIXEDMAP is already set (e.g. by the driver's
    /// own `vm_flags_set()`).
    pub fn as_mixedmap(&mut self) -> Option<VmaMixedMap<'_>> {
        if self.flags().contains(VmFlags::MIXEDMAP) {
            Some(VmaMixedMap {
                k: self.k,
                id: self.id,
            })
        } else {
            None
        }
    }
    /// `remap_pfn_range(vma, addr, pfn, size, vma->vm_page_prot)`.
    pub fn remap_pfn_range(&mut self, addr: VirtAddr, pfn: Pfn, size: u64) -> KResult<()> {
        let prot = self.vma().page_prot;
        crate::insert::remap_pfn_range(self.k, self.id, addr, pfn, size, prot)
    }
    /// `io_remap_pfn_range()`.
    pub fn io_remap_pfn_range(&mut self, addr: VirtAddr, pfn: Pfn, size: u64) -> KResult<()> {
        let prot = self.vma().page_prot;
        crate::insert::io_remap_pfn_range(self.k, self.id, addr, pfn, size, prot)
    }
    /// The struct-page insert helpers called on a VMA the driver did not mark VM_MIXEDMAP —
    /// what a driver that skips [`set_mixedmap`](Self::set_mixedmap) does, including on a
    /// VM_PFNMAP VMA. See [`VmaWithoutMixedMap`] for what the kernel then does.
    pub fn without_mixedmap(&mut self) -> VmaWithoutMixedMap<'_> {
        VmaWithoutMixedMap {
            k: self.k,
            id: self.id,
        }
    }
}

/// A driver calling `vm_insert_page()` (or `vm_insert_pages()`, `vm_map_pages()`,
/// `remap_vmalloc_range()`) on a VMA that may lack VM_MIXEDMAP. Rust-for-Linux offers no such
/// handle; the model keeps it because drivers do this, and the kernel's answer is part of what is
/// modeled: mm/memory.c:vm_insert_page (and vm_insert_pages) run
/// `if (!(vma->vm_flags & VM_MIXEDMAP)) { BUG_ON(mmap_read_trylock(vma->vm_mm));
/// BUG_ON(vma->vm_flags & VM_PFNMAP); vm_flags_set(vma, VM_MIXEDMAP); }` — so a VM_PFNMAP VMA
/// oopses, and one without it is marked VM_MIXEDMAP on the first page.
#[derive(Debug)]
pub struct VmaWithoutMixedMap<'a> {
    k: &'a mut Kernel,
    id: VmaId,
}

impl VmaWithoutMixedMap<'_> {
    /// `vm_insert_page()` on a VMA that may lack VM_MIXEDMAP: BUG on VM_PFNMAP (mm/memory.c:
    /// vm_insert_page `BUG_ON(vma->vm_flags & VM_PFNMAP)`), else the flag is set.
    pub fn vm_insert_page(&mut self, addr: VirtAddr, pfn: Pfn) -> KResult<()> {
        crate::insert::vm_insert_page(self.k, self.id, addr, pfn)
    }
    /// `vm_insert_pages()` on a VMA that may lack VM_MIXEDMAP (the same BUG_ONs); returns the
    /// number of pages not inserted together with the result.
    pub fn vm_insert_pages(&mut self, addr: VirtAddr, pages: &[Pfn]) -> (KResult<()>, usize) {
        crate::insert::vm_insert_pages(self.k, self.id, addr, pages)
    }
    /// `vm_map_pages()` on a VMA that may lack VM_MIXEDMAP: `vm_insert_page()` per page, or one
    /// `vm_insert_pages()` once [`Fact::VmMapPagesBatched`](crate::Fact::VmMapPagesBatched) holds.
    pub fn vm_map_pages(&mut self, pages: &[Pfn]) -> KResult<()> {
        crate::insert::vm_map_pages(self.k, self.id, pages)
    }
    /// `vm_map_pages_zero()` on a VMA that may lack VM_MIXEDMAP.
    pub fn vm_map_pages_zero(&mut self, pages: &[Pfn]) -> KResult<()> {
        crate::insert::vm_map_pages_zero(self.k, self.id, pages)
    }
    /// `remap_vmalloc_range()` (`vm_insert_page()` per page) on a VMA that may lack
    /// VM_MIXEDMAP.
    pub fn remap_vmalloc_range(
        &mut self,
        area: &crate::insert::VmallocArea,
        pgoff: u64,
    ) -> KResult<()> {
        crate::insert::remap_vmalloc_range(self.k, self.id, area, pgoff)
    }
}

/// A VMA with VM_MIXEDMAP set (Rust-for-Linux rust/kernel/mm/virt.rs `VmaMixedMap`): the only
/// handle on which `vm_insert_page()` and the helpers built on it are offered, because only such
/// a VMA may hold both struct pages and raw pfns.
///
/// # Invariants
/// VM_MIXEDMAP was set on the VMA when the handle was made ([`VmaNew::set_mixedmap`],
/// [`VmaNew::as_mixedmap`], [`FaultCtx::as_mixedmap`](crate::FaultCtx::as_mixedmap)), so the
/// `!(vma->vm_flags & VM_MIXEDMAP)` block of mm/memory.c:vm_insert_page (its two BUG_ONs) is
/// never reached through it.
#[derive(Debug)]
pub struct VmaMixedMap<'a> {
    pub(crate) k: &'a mut Kernel,
    pub(crate) id: VmaId,
}

impl VmaMixedMap<'_> {
    /// `vm_insert_page()` (mm/memory.c) on a VM_MIXEDMAP VMA.
    pub fn vm_insert_page(&mut self, addr: VirtAddr, pfn: Pfn) -> KResult<()> {
        crate::insert::vm_insert_page(self.k, self.id, addr, pfn)
    }
    /// `vm_insert_pages()` (mm/memory.c): returns the number of pages not inserted together
    /// with the result.
    pub fn vm_insert_pages(&mut self, addr: VirtAddr, pages: &[Pfn]) -> (KResult<()>, usize) {
        crate::insert::vm_insert_pages(self.k, self.id, addr, pages)
    }
    /// `vm_map_pages()` (mm/memory.c).
    pub fn vm_map_pages(&mut self, pages: &[Pfn]) -> KResult<()> {
        crate::insert::vm_map_pages(self.k, self.id, pages)
    }
    /// `vm_map_pages_zero()` (mm/memory.c).
    pub fn vm_map_pages_zero(&mut self, pages: &[Pfn]) -> KResult<()> {
        crate::insert::vm_map_pages_zero(self.k, self.id, pages)
    }
    /// `remap_vmalloc_range(vma, addr, pgoff)` (mm/vmalloc.c) of a `vmalloc_user()` area given by
    /// its pages.
    pub fn remap_vmalloc_range(
        &mut self,
        area: &crate::insert::VmallocArea,
        pgoff: u64,
    ) -> KResult<()> {
        crate::insert::remap_vmalloc_range(self.k, self.id, area, pgoff)
    }
    /// `vmf_insert_page()` (mm/memory.c) from `->fault` on a VM_MIXEDMAP VMA.
    pub fn vmf_insert_page(&mut self, addr: VirtAddr, pfn: Pfn) -> KResult<crate::VmFault> {
        crate::insert::vmf_insert_page(self.k, self.id, addr, pfn)
    }
    /// `vmf_insert_mixed()`.
    pub fn vmf_insert_mixed(
        &mut self,
        addr: VirtAddr,
        pfn: crate::insert::PfnT,
    ) -> KResult<crate::VmFault> {
        crate::insert::vmf_insert_mixed(self.k, self.id, addr, pfn)
    }
    /// `vmf_insert_mixed_prot()` (5.10).
    pub fn vmf_insert_mixed_prot(
        &mut self,
        addr: VirtAddr,
        pfn: crate::insert::PfnT,
        prot: PgProt,
    ) -> KResult<crate::VmFault> {
        crate::insert::vmf_insert_mixed_prot(self.k, self.id, addr, pfn, prot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Fail;
    use crate::{Config, KernelFacts};

    fn anon(k: &mut Kernel, addr: VirtAddr) -> KResult<VirtAddr> {
        let mut a = MmapArgs::new(PAGE_SIZE, Prot::RW, MapFlags::PRIVATE);
        a.addr = Some(addr);
        a.flags.fixed = true;
        do_mmap(k, Kernel::INIT_MM, None, a)
    }

    #[test]
    fn adjacent_anon_vmas_merge_special_ones_do_not() {
        let mut k = Kernel::new(KernelFacts::of("6.12.117"), Config::default());
        let base = VirtAddr(0x7100_0000_0000);
        anon(&mut k, base).unwrap();
        anon(&mut k, base.add_pages(1)).unwrap();
        assert_eq!(k.mm(Kernel::INIT_MM).vmas.len(), 1);
        let v = k.mm(Kernel::INIT_MM).vma_at(base).unwrap().clone();
        assert_eq!(v.end, base.add_pages(2));

        let mut special = v.clone();
        special.start = v.end;
        special.end = v.end.add_pages(1);
        special.flags |= VmFlags::DONTEXPAND;
        assert!(!can_merge(&v, &special));
        let mut plain = special.clone();
        plain.flags = v.flags;
        assert!(can_merge(&v, &plain));
    }

    #[test]
    fn read_only_fd_shared_mapping_drops_maywrite() {
        #[derive(Debug)]
        struct Nop;
        impl crate::FileOperations for Nop {
            fn name(&self) -> &'static str {
                "nop"
            }
            fn mmap(&self, _vma: &mut VmaNew<'_>) -> KResult<()> {
                Ok(())
            }
        }
        let file = Arc::new(File {
            path: "/ro".into(),
            ino: 1,
            dev: (0, 1),
            readable: true,
            writable: false,
            noexec: false,
            nlink: 1,
            mapping: crate::vma::AddressSpace::PSEUDO,
            fops: Arc::new(Nop),
            is_dma_buf: true,
        });
        let mut k = Kernel::new(KernelFacts::of("6.12.117"), Config::default());
        let rw = do_mmap(
            &mut k,
            Kernel::INIT_MM,
            Some(file.clone()),
            MmapArgs::new(PAGE_SIZE, Prot::RW, MapFlags::SHARED),
        );
        assert_eq!(rw, Err(Fail::Errno(Errno::EACCES)));
        let a = do_mmap(
            &mut k,
            Kernel::INIT_MM,
            Some(file),
            MmapArgs::new(PAGE_SIZE, Prot::R, MapFlags::SHARED),
        )
        .unwrap();
        let f = k.mm(Kernel::INIT_MM).vma_at(a).unwrap().flags;
        assert!(
            f.contains(VmFlags::MAYSHARE)
                && !f.contains(VmFlags::SHARED)
                && !f.contains(VmFlags::MAYWRITE)
        );
        assert_eq!(f.mnemonics(&k.facts).join(" "), "rd mr me ms sd");
    }
}
