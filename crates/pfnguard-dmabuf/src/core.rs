//! The dma-buf core (drivers/dma-buf/dma-buf.c): export, the mmap entry points with the
//! proposal's policies, the SYNC and SET_NAME ioctls, attachments with CONFIG_DMABUF_DEBUG, and
//! the fdinfo / debugfs renderings.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use pfnguard_mm::trace;
use pfnguard_mm::vma::AddressSpace;
use pfnguard_mm::{Errno, File, FileOperations, KResult, Kernel, Pfn, VmFlags, VmaNew};

use crate::policy::Policy;

/// `struct dma_buf_ops`, the part the model exercises.
pub trait DmaBufOps: std::fmt::Debug + Send + Sync {
    /// `.mmap`: set up the user VMA (`vma->vm_pgoff` already checked against the size).
    /// `None`-like exporters return `Err(ENOSYS)` from [`DmaBufOps::has_mmap`].
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()>;
    /// Whether `.mmap` is set.
    fn has_mmap(&self) -> bool {
        true
    }
    /// The frames of the buffer, in order (for `map_dma_buf` / attachments).
    fn pages(&self) -> Vec<Pfn>;
    /// `.release`, called once by [`dma_buf_release`] when the dma-buf's file goes: the
    /// exporter gives back what backs the buffer. The default gives back nothing (a model that
    /// does not say what its memory is, e.g. a test's).
    fn release(&self, _k: &mut Kernel) {}
    /// The exporter moves the buffer's contents away from the memory backing it now (not a
    /// `dma_buf_ops` member: TTM eviction or swapout, a purge), zapping the user mappings it
    /// reaches. The default, for an exporter whose memory stays put for the buffer's whole
    /// life: -EOPNOTSUPP.
    fn evict(&self, _k: &mut Kernel) -> KResult<()> {
        Err(Errno::EOPNOTSUPP.into())
    }
    /// The frames backing the buffer now, in order: [`DmaBufOps::pages`] unless the exporter
    /// moves its memory.
    fn backing(&self, _k: &Kernel) -> Vec<Pfn> {
        self.pages()
    }
    /// Whether [`DmaBufOps::backing`] can ever differ from [`DmaBufOps::pages`]: the exporter
    /// moves or drops its memory while the buffer lives (and overrides `backing`). The default:
    /// the buffer's memory is its own from export to release.
    fn backing_moves(&self) -> bool {
        false
    }
    /// drivers/dma-buf/dma-buf.c:dma_buf_is_dynamic: the exporter's `dma_buf_ops` has `.pin`
    /// (it may move the buffer while attached, and tells dynamic importers with
    /// `dma_buf_move_notify()`). The default: a static exporter.
    fn is_dynamic(&self) -> bool {
        false
    }
}

/// `struct dma_buf`.
#[derive(Debug)]
pub struct DmaBuf {
    /// `dmabuf->size` in bytes.
    pub size: u64,
    /// `dmabuf->exp_name` (`KBUILD_MODNAME` of the exporter, or `system`).
    pub exp_name: &'static str,
    /// `dmabuf->name` (DMA_BUF_SET_NAME).
    pub name: Mutex<Option<String>>,
    /// The unique inode number `dma_buf_getfile()` assigns.
    pub ino: u64,
    /// The exporter's ops.
    pub ops: Arc<dyn DmaBufOps>,
    /// `path_noexec()` of the file `dma_buf_getfile()` allocates on `dma_buf_mnt`, the kernel's
    /// mount of the `dmabuf` pseudo filesystem
    /// ([`pseudo_fs_path_noexec`](pfnguard_mm::vma::pseudo_fs_path_noexec)).
    pub noexec: bool,
    /// `dmabuf->file->f_mapping`, the address space every mapping of the fd is linked into
    /// (`vma_link_file()` uses `vm_file->f_mapping`): the dma-buf inode's own `i_mapping`
    /// (`dma_buf_getfile()` → `alloc_anon_inode()`), or the DRM device's
    /// `dev->anon_inode->i_mapping` for a buffer exported through
    /// drivers/gpu/drm/drm_prime.c:drm_gem_dmabuf_export.
    pub f_mapping: u64,
}

impl DmaBuf {
    /// `dma_buf_export()`: a buffer of `size` bytes in kernel `k`. Its inode number comes from
    /// drivers/dma-buf/dma-buf.c:dma_buf_getfile, `inode->i_ino =
    /// atomic64_inc_return(&dmabuf_inode)`: unique within that kernel.
    pub fn new(
        k: &mut Kernel,
        size: u64,
        exp_name: &'static str,
        ops: Arc<dyn DmaBufOps>,
    ) -> Arc<DmaBuf> {
        let own = k.new_address_space();
        DmaBuf::with_f_mapping(k, size, exp_name, ops, own)
    }

    /// `dma_buf_export()` whose file's `f_mapping` is then `f_mapping`
    /// (drivers/gpu/drm/drm_prime.c:drm_gem_dmabuf_export sets `dma_buf->file->f_mapping =
    /// obj->dev->anon_inode->i_mapping`, "drm: share address space for dma bufs", 5.4: the
    /// mappings of the dma-buf fd then sit in the DRM device's address space, with those of the
    /// DRM fd, where `drm_vma_node_unmap()` zaps).
    pub fn with_f_mapping(
        k: &mut Kernel,
        size: u64,
        exp_name: &'static str,
        ops: Arc<dyn DmaBufOps>,
        f_mapping: u64,
    ) -> Arc<DmaBuf> {
        let ino = k.atomic64_inc_return("drivers/dma-buf/dma-buf.c:dmabuf_inode");
        let noexec = pfnguard_mm::vma::pseudo_fs_path_noexec(k);
        Arc::new(DmaBuf {
            size,
            exp_name,
            name: Mutex::new(None),
            ino,
            ops,
            noexec,
            f_mapping,
        })
    }

    /// Whether [`dma_buf_release`] ran in `k` (the dentry's `d_release`: the buffer is gone);
    /// kept by the kernel ([`Objects::released_dma_bufs`](pfnguard_mm::kernel::Objects::released_dma_bufs), by inode number), not the buffer.
    pub fn is_released(&self, k: &Kernel) -> bool {
        k.objects.released_dma_bufs.contains(&self.ino)
    }

    /// Size in pages, rounded down (`dmabuf->size >> PAGE_SHIFT`).
    pub fn pages(&self) -> u64 {
        self.size >> pfnguard_mm::PAGE_SHIFT
    }
}

/// `dma_buf_fops` with the policy of the modeled kernel.
#[derive(Debug)]
pub struct DmaBufFops {
    /// The buffer.
    pub buf: Arc<DmaBuf>,
    /// The proposal's policy in force.
    pub policy: Policy,
}

/// `dma_buf_getfile()` + `dma_buf_fd()`: the file behind a dma-buf fd. `writable` is O_RDWR in
/// the exporter's `exp_info.flags` (FMODE_WRITE); the file lives on the `dmabuf` pseudo
/// filesystem (`noop_backing_dev_info`: no writeback; noexec as [`DmaBuf::noexec`] says).
pub fn export_file(buf: Arc<DmaBuf>, writable: bool, policy: Policy) -> Arc<File> {
    let name = buf
        .name
        .lock()
        .ok()
        .and_then(|n| n.clone())
        .unwrap_or_default();
    Arc::new(File {
        path: format!("/dmabuf:{name}"),
        ino: buf.ino,
        dev: (0, 0x0d),
        readable: true,
        writable,
        noexec: buf.noexec,
        nlink: 1,
        mapping: AddressSpace {
            host: Some(buf.f_mapping),
            ..AddressSpace::PSEUDO
        },
        fops: Arc::new(DmaBufFops { buf, policy }),
        is_dma_buf: true,
    })
}

impl FileOperations for DmaBufFops {
    fn name(&self) -> &'static str {
        "dma_buf_fops"
    }

    /// `dmabuffs_dname()`: `/dmabuf:` followed by the name DMA_BUF_SET_NAME gave, if any.
    fn d_dname(&self) -> Option<String> {
        let name = self
            .buf
            .name
            .lock()
            .ok()
            .and_then(|n| n.clone())
            .unwrap_or_default();
        Some(format!("/dmabuf:{name}"))
    }

    /// `dma_buf_mmap_internal()` (drivers/dma-buf/dma-buf.c): no `.mmap` → -EINVAL;
    /// `vm_pgoff + vma_pages > size >> PAGE_SHIFT` → -EINVAL; then `dmabuf->ops->mmap()`, followed
    /// by the policy's check.
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        const F: &str = "drivers/dma-buf/dma-buf.c:dma_buf_mmap_internal";
        let v = vma.vma();
        if !self.buf.ops.has_mmap() {
            trace!(vma.kernel(), F, "exporter has no mmap -> -EINVAL");
            return Err(Errno::EINVAL.into());
        }
        if v.pgoff + v.pages() > self.buf.pages() {
            trace!(
                vma.kernel(),
                F,
                "vm_pgoff {} + {} pages > {} pages -> -EINVAL",
                v.pgoff,
                v.pages(),
                self.buf.pages()
            );
            return Err(Errno::EINVAL.into());
        }
        trace!(vma.kernel(), F, "dmabuf->ops->mmap ({})", self.buf.exp_name);
        vma.kernel().trace.enter();
        let r = mmap_exporter(vma, &self.buf, self.policy);
        vma.kernel().trace.leave();
        r
    }
}

/// The function the kernel log names for the WARN_ONCEs of [`dma_buf_mmap_check`] and
/// [`dma_buf_mmap_check_ptes`]: both are static with `dma_buf_mmap_exporter()` their only
/// caller, and the compiler inlines them there (the patched 7.3 kernel logs
/// `WARNING: drivers/dma-buf/dma-buf.c:328 at dma_buf_mmap_exporter+0x56/0xd1`,
/// reports/patched/warn/console.log).
const WARNS_LOGGED_AT: &str = "drivers/dma-buf/dma-buf.c:dma_buf_mmap_exporter";

/// `dma_buf_mmap_exporter()` (kernel/dma-buf-mmap-check 0001, drivers/dma-buf/dma-buf.c):
/// `dmabuf->ops->mmap()`, then [`dma_buf_mmap_check`] and, when that passes,
/// [`dma_buf_mmap_check_ptes`]. When a check fails the mmap fails, and the exporter's
/// `vm_ops->close` is called here: the caller, mm/vma.c:`__mmap_new_file_vma`, unmaps what the
/// exporter populated (`unmap_region()`) and frees the VMA without calling it, so it balances
/// the `open` the exporter's mmap did.
fn mmap_exporter(vma: &mut VmaNew<'_>, buf: &DmaBuf, policy: Policy) -> KResult<()> {
    buf.ops.mmap(vma)?;
    let r = dma_buf_mmap_check(vma, buf.exp_name, policy)
        .and_then(|()| dma_buf_mmap_check_ptes(vma, buf.exp_name, policy));
    if r.is_err() {
        vma.close();
    }
    r
}

/// `dma_buf_mmap_check()` (kernel/dma-buf-mmap-check 0001, drivers/dma-buf/dma-buf.c): at
/// every level but `off`, a VMA that is not `VM_PFNMAP` or is `VM_MIXEDMAP`
/// (`(vm_flags & (VM_PFNMAP | VM_MIXEDMAP)) != VM_PFNMAP`) gets a `WARN_ONCE` naming the
/// exporter; `warn` lets the mmap proceed, `require` and `strict` fail it with -EINVAL.
fn dma_buf_mmap_check(vma: &mut VmaNew<'_>, exp_name: &str, policy: Policy) -> KResult<()> {
    const F: &str = "drivers/dma-buf/dma-buf.c:dma_buf_mmap_check";
    if policy == Policy::Off {
        return Ok(());
    }
    let flags = vma.flags();
    if flags.intersection(VmFlags::PFNMAP | VmFlags::MIXEDMAP) == VmFlags::PFNMAP {
        trace!(
            vma.kernel(),
            F,
            "mmap_check={policy}: VM_PFNMAP without VM_MIXEDMAP, accepted"
        );
        return Ok(());
    }
    vma.kernel().warn_once_inlined(
        F,
        WARNS_LOGGED_AT,
        format!(
            "dma-buf: exporter {exp_name} set up a mapping without VM_PFNMAP or with \
             VM_MIXEDMAP ({})",
            flags.names()
        ),
    );
    if policy == Policy::Warn {
        return Ok(());
    }
    trace!(vma.kernel(), F, "mmap_check={policy} -> -EINVAL");
    Err(Errno::EINVAL.into())
}

/// `dma_buf_mmap_check_ptes()` (kernel/dma-buf-mmap-check 0003, drivers/dma-buf/dma-buf.c): at
/// `strict`, `walk_page_vma()` over the new VMA; the first present PTE that is not special
/// (`pte_present() && !pte_special()`) gets a `WARN_ONCE` naming the exporter and the offset, and
/// the mmap fails with -EINVAL: `get_user_pages_fast()` would take its page without looking at
/// the VMA.
fn dma_buf_mmap_check_ptes(vma: &mut VmaNew<'_>, exp_name: &str, policy: Policy) -> KResult<()> {
    const F: &str = "drivers/dma-buf/dma-buf.c:dma_buf_mmap_check_ptes";
    if policy != Policy::Strict {
        return Ok(());
    }
    let v = vma.vma();
    let mm = vma.id().mm;
    let k = vma.kernel();
    let ptes = k.mm(mm).pt.collect_in(v.start, v.end);
    let Some((addr, _)) = ptes.iter().find(|(_, p)| p.present() && !p.special()) else {
        trace!(k, F, "every present PTE of the VMA is special");
        return Ok(());
    };
    let offset = addr.0 - v.start.0;
    k.warn_once_inlined(
        F,
        WARNS_LOGGED_AT,
        format!(
            "dma-buf: exporter {exp_name} installed a normal PTE at offset {offset:#x} of a \
             mapping"
        ),
    );
    Err(Errno::EINVAL.into())
}

/// `dma_buf_mmap(dmabuf, vma, pgoff)` (drivers/dma-buf/dma-buf.c): an importer forwards its
/// own mmap to the exporter: overflow → -EOVERFLOW, bounds → -EINVAL, `vma_set_file()`,
/// `vm_pgoff = pgoff`, `ops->mmap`, then the policy.
pub fn dma_buf_mmap(
    vma: &mut VmaNew<'_>,
    file: Arc<File>,
    buf: &DmaBuf,
    pgoff: u64,
    policy: Policy,
) -> KResult<()> {
    const F: &str = "drivers/dma-buf/dma-buf.c:dma_buf_mmap";
    if !buf.ops.has_mmap() {
        return Err(Errno::EINVAL.into());
    }
    let pages = vma.vma().pages();
    let Some(end) = pgoff.checked_add(pages) else {
        return Err(Errno::EOVERFLOW.into());
    };
    if end > buf.pages() {
        return Err(Errno::EINVAL.into());
    }
    vma.set_file(file);
    vma.set_pgoff(pgoff);
    trace!(
        vma.kernel(),
        F,
        "forwarded to dmabuf->ops->mmap ({})",
        buf.exp_name
    );
    mmap_exporter(vma, buf, policy)
}

/// The end of a dma-buf's life: drivers/dma-buf/dma-buf.c:dma_buf_file_release (the file's
/// last reference: no fd, no VMA's `vm_file`, no importer's `get_dma_buf()` left) takes it off
/// the debugfs list, and `dput()` of its dentry calls `dma_buf_release()` (`d_release` of
/// `dma_buf_dentry_ops`): `BUG_ON(vmapping_counter)`, then `dmabuf->ops->release(dmabuf)`
/// ([`DmaBufOps::release`]), then the `dma_buf` is freed.
///
/// Precondition: called when the kernel would call it, once no fd and no mapping keeps the file
/// (the caller's guarantee). A second call does nothing: the dentry is released once.
pub fn dma_buf_release(k: &mut Kernel, buf: &DmaBuf) {
    const F: &str = "drivers/dma-buf/dma-buf.c:dma_buf_release";
    if !k.objects.released_dma_bufs.insert(buf.ino) {
        return;
    }
    trace!(k, F, "dmabuf->ops->release ({})", buf.exp_name);
    k.trace.enter();
    buf.ops.release(k);
    k.trace.leave();
}

/// drivers/dma-buf/dma-buf.c:dma_buf_move_notify: `list_for_each_entry(attach,
/// &dmabuf->attachments, node) if (attach->importer_ops) attach->importer_ops->move_notify(attach)`
/// — every dynamic importer is told its mapping of the buffer is about to become invalid.
/// The exporter calls it (with the reservation lock held) when it moves the backing; it does
/// not touch CPU mappings (those are the exporter's zap). The buffer itself keeps no list of
/// attachments in the model: the caller that holds them (the scenario explorer's device
/// actors) drops each dynamic importer's mapping, as its `move_notify` does (e.g.
/// drivers/gpu/drm/amd/amdgpu/amdgpu_dma_buf.c:amdgpu_dma_buf_move_notify invalidates the
/// importer's page tables; it maps again on next use).
pub fn dma_buf_move_notify(k: &mut Kernel, buf: &DmaBuf) {
    trace!(
        k,
        "drivers/dma-buf/dma-buf.c:dma_buf_move_notify",
        "{}: importer_ops->move_notify of every dynamic attachment",
        buf.exp_name
    );
}

/// An importer's `struct dma_buf_attachment`, as far as the buffer's lifetime goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Attachment {
    /// `attach->importer_ops` with a `move_notify`: a dynamic importer
    /// (drivers/dma-buf/dma-buf.c:dma_buf_attachment_is_dynamic).
    pub dynamic: bool,
    /// The buffer is pinned in place for this attachment: the exporter may not move it.
    pub pinned: bool,
}

/// drivers/dma-buf/dma-buf.c:dma_buf_dynamic_attach (`dma_buf_attach()` is the same with no
/// `importer_ops`): the attachment goes on `dmabuf->attachments`. When importer and exporter
/// disagree about being dynamic (`dma_buf_attachment_is_dynamic(attach) !=
/// dma_buf_is_dynamic(dmabuf)`) and the exporter is dynamic, `dma_buf_pin()` →
/// `dmabuf->ops->pin()`: the buffer stays where it is until `dma_buf_detach()` unpins it. A
/// static exporter's buffer does not move under an attachment either: the GEM exporters pin
/// the object in `drm_gem_map_attach()` → `drm_gem_pin()`, the others never move their
/// memory. Only a dynamic importer of a dynamic exporter is left unpinned, and is told of a
/// move by [`dma_buf_move_notify`].
pub fn dma_buf_dynamic_attach(k: &mut Kernel, buf: &DmaBuf, dynamic: bool) -> Attachment {
    const F: &str = "drivers/dma-buf/dma-buf.c:dma_buf_dynamic_attach";
    let exporter_dynamic = buf.ops.is_dynamic();
    let pinned = !(dynamic && exporter_dynamic);
    trace!(
        k,
        F,
        "{} importer, {} exporter {}: {}",
        if dynamic { "dynamic" } else { "static" },
        if exporter_dynamic {
            "dynamic"
        } else {
            "static"
        },
        buf.exp_name,
        if !pinned {
            "not pinned, move_notify on a move"
        } else if exporter_dynamic {
            "dma_buf_pin"
        } else {
            "the exporter keeps the buffer in place while attached"
        }
    );
    Attachment { dynamic, pinned }
}

/// drivers/dma-buf/dma-buf.c:dma_buf_map_attachment → `__map_dma_buf()` →
/// `dmabuf->ops->map_dma_buf()`: the importer gets a scatterlist of the frames backing the
/// buffer now ([`DmaBufOps::backing`]), mangled as `debug` says ([`map_attachment`]). The
/// exporters' `map_dma_buf` (udmabuf's `get_sg_table()` over its folios, the system heap's
/// `dma_map_sgtable()` of its pages, TTM's `amdgpu_dma_buf_map()`) take no page reference:
/// the frames stay allocated because the importer holds the dma-buf (its `dma_buf_get()`), so
/// `dma_buf_release()` cannot run under it. Returns the frames the importer may use (as DMA
/// addresses even when the page pointers are mangled).
pub fn dma_buf_map_attachment(
    k: &mut Kernel,
    buf: &DmaBuf,
    attach: &Attachment,
    debug: SgDebug,
) -> Vec<Pfn> {
    const F: &str = "drivers/dma-buf/dma-buf.c:dma_buf_map_attachment";
    let pages = buf.ops.backing(k);
    let sg = map_attachment(&pages, debug);
    trace!(
        k,
        F,
        "{}: map_dma_buf -> {} sg entries ({}), no page references",
        buf.exp_name,
        sg.len(),
        if attach.pinned { "pinned" } else { "dynamic" }
    );
    sg.iter()
        .map(|e| Pfn(e.dma_address >> pfnguard_mm::PAGE_SHIFT))
        .collect()
}

/// drivers/dma-buf/dma-buf.c:dma_buf_unmap_attachment → `__unmap_dma_buf()` →
/// `dmabuf->ops->unmap_dma_buf()`: the importer gives the scatterlist back.
pub fn dma_buf_unmap_attachment(k: &mut Kernel, buf: &DmaBuf, pages: &[Pfn]) {
    trace!(
        k,
        "drivers/dma-buf/dma-buf.c:dma_buf_unmap_attachment",
        "{}: unmap_dma_buf of {} entries",
        buf.exp_name,
        pages.len()
    );
}

/// drivers/dma-buf/dma-buf.c:dma_buf_detach: the attachment leaves `dmabuf->attachments`;
/// a pinned one is unpinned (`dma_buf_unpin()`, or `drm_gem_map_detach()` → `drm_gem_unpin()`).
pub fn dma_buf_detach(k: &mut Kernel, buf: &DmaBuf, attach: &Attachment) {
    trace!(
        k,
        "drivers/dma-buf/dma-buf.c:dma_buf_detach",
        "{}: detach{}",
        buf.exp_name,
        if attach.pinned { ", unpin" } else { "" }
    );
}

/// DMA_BUF_SYNC_* flags (include/uapi/linux/dma-buf.h).
pub mod sync {
    /// DMA_BUF_SYNC_READ.
    pub const READ: u64 = 1;
    /// DMA_BUF_SYNC_WRITE.
    pub const WRITE: u64 = 2;
    /// DMA_BUF_SYNC_RW.
    pub const RW: u64 = 3;
    /// DMA_BUF_SYNC_START.
    pub const START: u64 = 0;
    /// DMA_BUF_SYNC_END.
    pub const END: u64 = 4;
}

/// `dma_buf_ioctl(DMA_BUF_IOCTL_SYNC)` flag validation: unknown bits → -EINVAL; no direction
/// (READ/WRITE) → -EINVAL; otherwise begin/end CPU access (no fences in the model).
pub fn dma_buf_sync(flags: u64) -> Result<(), Errno> {
    if flags & !(sync::RW | sync::END) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & sync::RW == 0 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// `dma_buf_set_name()`: at most `DMA_BUF_NAME_LEN - 1` (31) bytes, else -EINVAL; the maps
/// path becomes `/dmabuf:<name>`.
pub fn dma_buf_set_name(buf: &DmaBuf, name: &str) -> Result<(), Errno> {
    if name.len() >= 32 {
        return Err(Errno::EINVAL);
    }
    let mut n = buf.name.lock().map_err(|_| Errno::EIO)?;
    *n = Some(name.to_owned());
    Ok(())
}

/// `dma_buf_show_fdinfo()` after the generic `pos/flags/mnt_id/ino` lines.
pub fn render_fdinfo(buf: &DmaBuf, f_flags: u32, file_count: i64) -> String {
    let mut s = format!(
        "pos:\t0\nflags:\t{:07o}\nmnt_id:\t15\nino:\t{}\nsize:\t{}\ncount:\t{}\nexp_name:\t{}\n",
        f_flags,
        buf.ino,
        buf.size,
        file_count - 1,
        buf.exp_name
    );
    if let Some(n) = buf.name.lock().ok().and_then(|n| n.clone()) {
        let _ = writeln!(s, "name:\t{n}");
    }
    s
}

/// `dma_buf_debug_show()`: `/sys/kernel/debug/dma_buf/bufinfo`.
pub fn render_bufinfo(bufs: &[(&DmaBuf, u32, u32, i64, Vec<String>)]) -> String {
    let mut s = String::from("\nDma-buf Objects:\n");
    let _ = writeln!(
        s,
        "{:<8}\t{:<8}\t{:<8}\t{:<8}\texp_name\t{:<8}\tname",
        "size", "flags", "mode", "count", "ino"
    );
    let mut total = 0u64;
    for (b, flags, mode, count, devs) in bufs {
        let name = b
            .name
            .lock()
            .ok()
            .and_then(|n| n.clone())
            .unwrap_or_else(|| "<none>".into());
        let _ = writeln!(
            s,
            "{:08}\t{:08x}\t{:08x}\t{:08}\t{}\t{:08}\t{}",
            b.size, flags, mode, count, b.exp_name, b.ino, name
        );
        s.push_str("\tAttached Devices:\n");
        for d in devs {
            let _ = writeln!(s, "\t{d}");
        }
        let _ = writeln!(s, "Total {} devices attached\n", devs.len());
        total += b.size;
    }
    let _ = writeln!(s, "\nTotal {} objects, {} bytes", bufs.len(), total);
    s
}

/// One scatterlist entry as an importer sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SgEntry {
    /// `sg_page()`: `Some(pfn)` when the importer may use it, `None` for a NULL page, or a
    /// garbage value (`Mangled`) after CONFIG_DMABUF_DEBUG's XOR.
    pub page: SgPage,
    /// `sg_dma_address()`.
    pub dma_address: u64,
    /// `sg_dma_len()`.
    pub dma_len: u64,
}

/// What `sg_page()` yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SgPage {
    /// A real page.
    Page(Pfn),
    /// `page_link ^ ~0xff` (6.1/6.12 `mangle_sg_table()`): a pointer the importer must not use.
    Mangled(u64),
    /// NULL (the newer copied table of `dma_buf_mangle_sg_table()`).
    Null,
}

/// CONFIG_DMABUF_DEBUG's treatment of the sg_table a mapped attachment returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum SgDebug {
    /// Off (Debian).
    Off,
    /// 6.1/6.12 `mangle_sg_table()`: XOR of every `page_link` with `~0xff`, undone at unmap.
    XorPageLink,
    /// Newer kernels: a copied table with only DMA addresses and lengths, pages NULL.
    CopiedTable,
}

/// `dma_buf_map_attachment()` → `__map_dma_buf()` → `mangle_sg_table()`: the table an importer
/// receives for a buffer whose pages are `pages` (identity DMA addresses, no IOMMU).
pub fn map_attachment(pages: &[Pfn], debug: SgDebug) -> Vec<SgEntry> {
    pages
        .iter()
        .map(|&p| {
            let page = match debug {
                SgDebug::Off => SgPage::Page(p),
                SgDebug::XorPageLink => {
                    // The struct page pointer (vmemmap base + pfn * 64) with its low bits kept.
                    let link = 0xffff_ea00_0000_0000u64.wrapping_add(p.0 * 64);
                    SgPage::Mangled(link ^ !0xffu64)
                }
                SgDebug::CopiedTable => SgPage::Null,
            };
            SgEntry {
                page,
                dma_address: p.phys(),
                dma_len: pfnguard_mm::PAGE_SIZE,
            }
        })
        .collect()
}

/// `__unmap_dma_buf()`: undo the mangling; returns the original pages.
pub fn unmap_attachment(sg: &[SgEntry], original: &[Pfn]) -> Vec<Pfn> {
    sg.iter()
        .zip(original)
        .map(|(e, &o)| match e.page {
            SgPage::Page(p) => p,
            _ => o,
        })
        .collect()
}
