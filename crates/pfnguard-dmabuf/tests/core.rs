//! The dma-buf core: importer-forwarded mmap, SYNC and SET_NAME ioctls, attachments with
//! CONFIG_DMABUF_DEBUG, fdinfo and bufinfo.

use std::sync::Arc;

use pfnguard_dmabuf::core::{
    dma_buf_mmap, dma_buf_set_name, dma_buf_sync, map_attachment, render_bufinfo, render_fdinfo,
    sync, unmap_attachment, DmaBuf, SgDebug, SgPage,
};
use pfnguard_dmabuf::exporters::ExportCtx;
use pfnguard_dmabuf::Policy;
use pfnguard_mm::mmap::do_mmap;
use pfnguard_mm::proc::maps_line;
use pfnguard_mm::vma::AddressSpace;
use pfnguard_mm::{
    Config, Errno, Fail, File, FileOperations, KResult, Kernel, MapFlags, MmapArgs, Prot, VmFlags,
    VmaNew, PAGE_SIZE,
};

fn system_heap_buf(k: &mut Kernel) -> (Arc<File>, Arc<DmaBuf>) {
    let e = pfnguard_dmabuf::by_id("system-heap".parse().expect("catalogue id"));
    let cx = ExportCtx {
        policy: Policy::Off,
        pages: 4,
    };
    let x = e.export(k, &cx).expect("export");
    (x.file, x.buf.expect("a dma-buf"))
}

/// A DRM driver mmapping an imported buffer through its own node: `drm_gem_shmem_mmap()` for an
/// imported object calls `dma_buf_mmap(obj->dma_buf, vma, 0)`.
#[derive(Debug)]
struct Importer {
    file: Arc<File>,
    buf: Arc<DmaBuf>,
    pgoff: u64,
}

impl FileOperations for Importer {
    fn name(&self) -> &'static str {
        "importer_fops"
    }
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        dma_buf_mmap(vma, self.file.clone(), &self.buf, self.pgoff, Policy::Off)
    }
}

fn importer_file(file: Arc<File>, buf: Arc<DmaBuf>, pgoff: u64) -> Arc<File> {
    Arc::new(File {
        path: "/dev/dri/card0".into(),
        ino: 7,
        dev: (226, 0),
        readable: true,
        writable: true,
        noexec: false,
        nlink: 1,
        mapping: AddressSpace::PSEUDO,
        fops: Arc::new(Importer { file, buf, pgoff }),
        is_dma_buf: false,
    })
}

#[test]
fn importer_forwarded_mmap_becomes_the_dma_buf_file() {
    let mut k = Kernel::new(pfnguard_mm::KernelFacts::of("6.12.117"), Config::default());
    let (file, buf) = system_heap_buf(&mut k);
    let imp = importer_file(file, buf, 1);
    let a = do_mmap(
        &mut k,
        Kernel::INIT_MM,
        Some(imp),
        MmapArgs::new(2 * PAGE_SIZE, Prot::RW, MapFlags::SHARED),
    )
    .expect("mmap");
    let v = k.mm(Kernel::INIT_MM).vma_at(a).expect("vma").clone();
    // vma_set_file(vma, dmabuf->file); vma->vm_pgoff = pgoff
    assert_eq!(v.pgoff, 1);
    assert!(v.file.as_ref().is_some_and(|f| f.is_dma_buf));
    assert!(maps_line(&v).ends_with("/dmabuf:"), "{}", maps_line(&v));
    assert!(v.flags.contains(VmFlags::PFNMAP | VmFlags::IO));
}

#[test]
fn importer_forwarded_mmap_checks_bounds_and_overflow() {
    let mut k = Kernel::new(pfnguard_mm::KernelFacts::of("6.12.117"), Config::default());
    let (file, buf) = system_heap_buf(&mut k);
    let beyond = importer_file(file.clone(), buf.clone(), 3);
    let r = do_mmap(
        &mut k,
        Kernel::INIT_MM,
        Some(beyond),
        MmapArgs::new(2 * PAGE_SIZE, Prot::RW, MapFlags::SHARED),
    );
    assert_eq!(r, Err(Fail::Errno(Errno::EINVAL)));
    let wrap = importer_file(file, buf, u64::MAX);
    let r = do_mmap(
        &mut k,
        Kernel::INIT_MM,
        Some(wrap),
        MmapArgs::new(2 * PAGE_SIZE, Prot::RW, MapFlags::SHARED),
    );
    assert_eq!(r, Err(Fail::Errno(Errno::EOVERFLOW)));
}

#[test]
fn own_mmap_checks_vm_pgoff_against_the_size() {
    let mut k = Kernel::new(pfnguard_mm::KernelFacts::of("6.12.117"), Config::default());
    let (file, _buf) = system_heap_buf(&mut k);
    let mut args = MmapArgs::new(2 * PAGE_SIZE, Prot::RW, MapFlags::SHARED);
    args.pgoff = 3;
    assert_eq!(
        do_mmap(&mut k, Kernel::INIT_MM, Some(file.clone()), args),
        Err(Fail::Errno(Errno::EINVAL))
    );
    args.pgoff = 2;
    assert!(do_mmap(&mut k, Kernel::INIT_MM, Some(file), args).is_ok());
}

#[test]
fn sync_ioctl_validates_flags() {
    assert_eq!(dma_buf_sync(sync::START | sync::RW), Ok(()));
    assert_eq!(dma_buf_sync(sync::END | sync::READ), Ok(()));
    assert_eq!(dma_buf_sync(sync::START), Err(Errno::EINVAL));
    assert_eq!(dma_buf_sync(sync::END), Err(Errno::EINVAL));
    assert_eq!(dma_buf_sync(8 | sync::RW), Err(Errno::EINVAL));
}

#[test]
fn set_name_renames_the_mapping_and_fdinfo() {
    let mut k = Kernel::new(pfnguard_mm::KernelFacts::of("6.12.117"), Config::default());
    let (file, buf) = system_heap_buf(&mut k);
    let a = do_mmap(
        &mut k,
        Kernel::INIT_MM,
        Some(file),
        MmapArgs::new(4 * PAGE_SIZE, Prot::RW, MapFlags::SHARED),
    )
    .expect("mmap");
    assert_eq!(dma_buf_set_name(&buf, &"x".repeat(32)), Err(Errno::EINVAL));
    assert_eq!(dma_buf_set_name(&buf, "camera0"), Ok(()));
    let v = k.mm(Kernel::INIT_MM).vma_at(a).expect("vma").clone();
    assert!(
        maps_line(&v).ends_with("/dmabuf:camera0"),
        "{}",
        maps_line(&v)
    );
    let fd = render_fdinfo(&buf, 0o2, 2);
    assert!(fd.contains("size:\t16384\n"), "{fd}");
    assert!(fd.contains("count:\t1\n"), "{fd}");
    assert!(fd.contains("exp_name:\tsystem\n"), "{fd}");
    assert!(fd.contains("name:\tcamera0\n"), "{fd}");
    let bi = render_bufinfo(&[(&buf, 2, 0x1f, 2, vec!["0000:00:02.0".into()])]);
    assert!(bi.starts_with("\nDma-buf Objects:\n"), "{bi}");
    assert!(
        bi.contains("00016384\t00000002\t0000001f\t00000002\tsystem\t"),
        "{bi}"
    );
    assert!(
        bi.contains("\tcamera0\n\tAttached Devices:\n\t0000:00:02.0\nTotal 1 devices attached\n"),
        "{bi}"
    );
    assert!(bi.ends_with("\nTotal 1 objects, 16384 bytes\n"), "{bi}");
}

#[test]
fn dmabuf_debug_hides_the_pages_from_importers() {
    let mut k = Kernel::new(pfnguard_mm::KernelFacts::of("6.12.117"), Config::default());
    let (_file, buf) = system_heap_buf(&mut k);
    let pages = buf.ops.pages();
    let plain = map_attachment(&pages, SgDebug::Off);
    assert!(plain
        .iter()
        .zip(&pages)
        .all(|(e, p)| e.page == SgPage::Page(*p) && e.dma_address == p.phys()));
    let xor = map_attachment(&pages, SgDebug::XorPageLink);
    for (e, p) in xor.iter().zip(&pages) {
        let SgPage::Mangled(link) = e.page else {
            panic!("expected a mangled page_link");
        };
        // The low 8 bits (SG_CHAIN/SG_END) survive; everything above is flipped.
        let orig = 0xffff_ea00_0000_0000u64.wrapping_add(p.0 * 64);
        assert_eq!(link & 0xff, orig & 0xff);
        assert_eq!(link ^ orig, !0xffu64);
        assert_eq!(e.dma_address, p.phys());
    }
    assert_eq!(unmap_attachment(&xor, &pages), pages);
    let copied = map_attachment(&pages, SgDebug::CopiedTable);
    assert!(copied
        .iter()
        .all(|e| e.page == SgPage::Null && e.dma_len == 4096));
}

/// `dma_buf_getfile()` numbers inodes from the kernel's own `dmabuf_inode` counter: two models
/// built side by side each start at 1 and count only their own buffers.
#[test]
fn inode_numbers_are_per_kernel() {
    let mut a = Kernel::new(pfnguard_mm::KernelFacts::of("6.12.117"), Config::default());
    let mut b = Kernel::new(pfnguard_mm::KernelFacts::of("6.12.117"), Config::default());
    let (_, a1) = system_heap_buf(&mut a);
    let (_, a2) = system_heap_buf(&mut a);
    let (_, b1) = system_heap_buf(&mut b);
    assert_eq!((a1.ino, a2.ino), (1, 2));
    assert_eq!(b1.ino, 1);
}

/// An exporter whose mmap takes a reference on its object that `vm_ops->close` drops, as
/// drivers/gpu/drm/drm_gem.c:drm_gem_mmap_obj (drm_gem_object_get) and drm_gem_vm_close do;
/// its VMA is neither VM_PFNMAP nor populated.
#[derive(Debug, Default)]
struct Refcounted {
    refs: std::sync::atomic::AtomicI64,
}

#[derive(Debug)]
struct RefcountedVmOps(Arc<Refcounted>);

impl pfnguard_mm::VmOperations for RefcountedVmOps {
    fn name(&self) -> &'static str {
        "refcounted_vm_ops"
    }
    fn close(&self, _k: &mut Kernel, _vma: pfnguard_mm::VmaId) {
        self.0
            .refs
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[derive(Debug)]
struct RefcountedOps(Arc<Refcounted>);

impl pfnguard_dmabuf::core::DmaBufOps for RefcountedOps {
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        self.0
            .refs
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        vma.set_ops(Arc::new(RefcountedVmOps(self.0.clone())));
        Ok(())
    }
    fn pages(&self) -> Vec<pfnguard_mm::Pfn> {
        Vec::new()
    }
}

#[test]
fn a_refused_mmap_closes_what_the_exporter_opened() {
    use std::sync::atomic::Ordering::SeqCst;
    for policy in Policy::ALL {
        let mut k = Kernel::new(pfnguard_mm::KernelFacts::of("7.3.4"), policy.mm_config());
        let obj = Arc::new(Refcounted::default());
        let buf = DmaBuf::new(
            &mut k,
            2 * PAGE_SIZE,
            "refcounted",
            Arc::new(RefcountedOps(obj.clone())),
        );
        let file = pfnguard_dmabuf::core::export_file(buf, true, policy);
        let r = do_mmap(
            &mut k,
            Kernel::INIT_MM,
            Some(file),
            MmapArgs::new(2 * PAGE_SIZE, Prot::RW, MapFlags::SHARED),
        );
        match policy {
            // The mapping stands and holds its reference until munmap closes it.
            Policy::Off | Policy::Warn => {
                let a = r.expect("mmap");
                assert_eq!(obj.refs.load(SeqCst), 1, "{policy}");
                pfnguard_mm::mmap::do_munmap(&mut k, Kernel::INIT_MM, a, 2 * PAGE_SIZE)
                    .expect("munmap");
            }
            // dma_buf_mmap_exporter() refused it and called vm_ops->close itself:
            // __mmap_new_file_vma frees the VMA without.
            Policy::Require | Policy::Strict => {
                assert_eq!(r, Err(Fail::Errno(Errno::EINVAL)), "{policy}");
                assert!(k.mm(Kernel::INIT_MM).vmas.is_empty(), "{policy}");
            }
        }
        assert_eq!(obj.refs.load(SeqCst), 0, "{policy}");
        let warned = k
            .warn_sites()
            .contains(&"drivers/dma-buf/dma-buf.c:dma_buf_mmap_exporter");
        assert_eq!(warned, policy != Policy::Off, "{policy}");
    }
}
