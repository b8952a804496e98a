//! Kernel facts, each run on the versions either side of its change ([`either_side`]), and the
//! behaviours every line shares that no oracle covers.

use std::sync::Arc;

use pfnguard_mm::facts::{either_side, every_line};
use pfnguard_mm::gup::{get_user_pages_fast, pin_user_pages, populate_vma_page_range, Foll};
use pfnguard_mm::insert::remap_pfn_range;
use pfnguard_mm::mmap::do_mmap;
use pfnguard_mm::vma::AddressSpace;
use pfnguard_mm::{
    Config, Errno, Fact, Fail, File, FileOperations, KResult, Kernel, KernelFacts, MapFlags,
    MmapArgs, Pfn, Prot, RssCounter, VirtAddr, VmFlags, VmaId, VmaNew, PAGE_SIZE,
};

#[derive(Debug)]
struct Nop;

impl FileOperations for Nop {
    fn name(&self) -> &'static str {
        "nop_fops"
    }
    fn mmap(&self, _vma: &mut VmaNew<'_>) -> KResult<()> {
        Ok(())
    }
}

fn nop_file() -> Arc<File> {
    Arc::new(File {
        path: "/dev/nop".into(),
        ino: 3,
        dev: (0, 5),
        readable: true,
        writable: true,
        noexec: false,
        nlink: 1,
        mapping: AddressSpace::PSEUDO,
        fops: Arc::new(Nop),
        is_dma_buf: false,
    })
}

fn anon(k: &mut Kernel, pages: u64, prot: Prot, flags: MapFlags) -> VirtAddr {
    do_mmap(
        k,
        Kernel::INIT_MM,
        None,
        MmapArgs::new(pages * PAGE_SIZE, prot, flags),
    )
    .expect("mmap")
}

/// mm/gup.c: 6.1 `pin_user_pages()` WARNs and returns -EINVAL for FOLL_GET; 6.12's
/// `is_valid_gup_args()` makes it return 0.
#[test]
fn pin_user_pages_with_foll_get() {
    for (p, want) in [
        (
            either_side(Fact::GupValidArgs).0,
            Err(Fail::Errno(Errno::EINVAL)),
        ),
        (either_side(Fact::GupValidArgs).1, Ok(0)),
    ] {
        let mut k = Kernel::new(p, Config::default());
        let a = anon(&mut k, 1, Prot::RW, MapFlags::PRIVATE);
        let mut pages = Vec::new();
        assert_eq!(
            pin_user_pages(&mut k, Kernel::INIT_MM, a, 1, Foll::GET, &mut pages),
            want,
            "{}",
            p.version()
        );
        assert!(pages.is_empty());
    }
}

/// 6.1 `internal_get_user_pages_fast()` returns 0 when `start + len` wraps; 6.12
/// `gup_fast_fallback()` returns -EOVERFLOW.
#[test]
fn fast_gup_range_overflow() {
    for (p, want) in [
        (either_side(Fact::GupFastOverflowChecked).0, Ok(0)),
        (
            either_side(Fact::GupFastOverflowChecked).1,
            Err(Fail::Errno(Errno::EOVERFLOW)),
        ),
    ] {
        let mut k = Kernel::new(p, Config::default());
        let mut pages = Vec::new();
        let r = get_user_pages_fast(
            &mut k,
            Kernel::INIT_MM,
            VirtAddr(0x7fff_0000_0000),
            u64::MAX >> 12,
            Foll::empty(),
            &mut pages,
        );
        assert_eq!(r, want, "{}", p.version());
    }
}

/// `populate_vma_page_range()` on a PROT_NONE VMA: 6.12 refuses it up front
/// (`!vma_is_accessible()` → -EFAULT); 6.1 passes no FOLL_FORCE and `check_vma_flags()` refuses
/// the read (-EFAULT too, one step later).
#[test]
fn populate_of_an_inaccessible_vma() {
    let (before, after) = either_side(Fact::PopulateRefusesInaccessible);
    for (p, walks) in [(before, true), (after, false)] {
        let mut k = Kernel::new(p, Config::default());
        k.trace.enable();
        let a = anon(&mut k, 2, Prot::default(), MapFlags::PRIVATE);
        let id = VmaId {
            mm: Kernel::INIT_MM,
            start: a,
        };
        let r = populate_vma_page_range(&mut k, id, a, a.add_pages(2));
        assert_eq!(r, Err(Fail::Errno(Errno::EFAULT)), "{}", p.version());
        let checked = k
            .trace
            .steps()
            .iter()
            .any(|s| s.function == "mm/gup.c:check_vma_flags");
        assert_eq!(checked, walks, "{}", p.version());
    }
}

/// `MAP_SHARED|MAP_ANONYMOUS` is backed by shmem (`shmem_zero_setup()`): a write fault maps a
/// shmem page counted in MM_SHMEMPAGES, and maps shows `/dev/zero (deleted)`.
#[test]
fn shared_anonymous_memory_is_shmem() {
    for p in every_line() {
        let mut k = Kernel::new(p, Config::default());
        let a = anon(&mut k, 2, Prot::RW, MapFlags::SHARED);
        pfnguard_mm::fault::touch_range(&mut k, Kernel::INIT_MM, a, 2 * PAGE_SIZE, true)
            .expect("touch");
        assert_eq!(k.mm(Kernel::INIT_MM).counter(RssCounter::Shmem), 2);
        let v = k.mm(Kernel::INIT_MM).vma_at(a).expect("vma").clone();
        assert!(pfnguard_mm::proc::maps_line(&v).ends_with("/dev/zero (deleted)"));
        assert_eq!(
            v.flags.mnemonics(&k.facts).join(" "),
            "rd wr sh mr mw me ms sd"
        );
    }
}

/// `do_mmap()` checks MAP_LOCKED against RLIMIT_MEMLOCK (`mlock_future_ok()`) before the
/// driver's ->mmap runs, unless the task has CAP_IPC_LOCK.
#[test]
fn map_locked_beyond_the_rlimit() {
    let cfg = Config {
        cap_ipc_lock: false,
        ..Config::default()
    };
    let mut k = Kernel::new(KernelFacts::of("6.12.117"), cfg);
    k.mm_mut(Kernel::INIT_MM).rlimit_memlock = 1;
    let locked = MapFlags {
        locked: true,
        ..MapFlags::SHARED
    };
    let r = do_mmap(
        &mut k,
        Kernel::INIT_MM,
        Some(nop_file()),
        MmapArgs::new(2 * PAGE_SIZE, Prot::RW, locked),
    );
    assert_eq!(r, Err(Fail::Errno(Errno::EAGAIN)));
    let mut k = Kernel::new(KernelFacts::of("6.12.117"), Config::default());
    k.mm_mut(Kernel::INIT_MM).rlimit_memlock = 1;
    assert!(do_mmap(
        &mut k,
        Kernel::INIT_MM,
        Some(nop_file()),
        MmapArgs::new(2 * PAGE_SIZE, Prot::RW, locked)
    )
    .is_ok());
}

/// `remap_pfn_range()` failing in `remap_pte_range()` (-EACCES from the L1TF rule: a PROT_NONE
/// PTE to a high non-RAM pfn without CAP_SYS_ADMIN) zaps the range and `untrack_pfn()` clears
/// VM_PAT; the VM_IO|VM_PFNMAP|VM_DONTEXPAND|VM_DONTDUMP set before the walk stay.
#[test]
fn failed_remap_drops_vm_pat_and_keeps_the_flags() {
    for p in every_line() {
        let cfg = Config {
            cap_sys_admin: false,
            ..Config::default()
        };
        let mut k = Kernel::new(p, cfg);
        let a = do_mmap(
            &mut k,
            Kernel::INIT_MM,
            Some(nop_file()),
            MmapArgs::new(PAGE_SIZE, Prot::default(), MapFlags::SHARED),
        )
        .expect("mmap");
        let id = VmaId {
            mm: Kernel::INIT_MM,
            start: a,
        };
        let prot = k.vma(id).expect("vma").page_prot;
        let r = remap_pfn_range(&mut k, id, a, Pfn(1 << 34), PAGE_SIZE, prot);
        assert_eq!(r, Err(Fail::Errno(Errno::EACCES)), "{}", p.version());
        let v = k.vma(id).expect("vma");
        assert!(!v.flags.contains(VmFlags::PAT) && !v.pat_reserved);
        assert!(v
            .flags
            .contains(VmFlags::IO | VmFlags::PFNMAP | VmFlags::DONTEXPAND | VmFlags::DONTDUMP));
        assert!(k.mm(Kernel::INIT_MM).pt.get(a).is_none());
    }
}

// --- facts from 6.13 on ---------------------------------------------------------------------

/// A one-page MAP_SHARED mapping of `nop_file()` with `pfn` remapped into it (VM_PFNMAP).
fn remapped_page(k: &mut Kernel, pfn: Pfn) -> VmaId {
    let a = do_mmap(
        k,
        Kernel::INIT_MM,
        Some(nop_file()),
        MmapArgs::new(PAGE_SIZE, Prot::RW, MapFlags::SHARED),
    )
    .expect("mmap");
    let id = VmaId {
        mm: Kernel::INIT_MM,
        start: a,
    };
    let prot = k.vma(id).expect("vma").page_prot;
    remap_pfn_range(k, id, a, pfn, PAGE_SIZE, prot).expect("remap_pfn_range");
    id
}

/// virt/kvm/kvm_main.c:hva_to_pfn_remapped on a VM_PFNMAP PTE to the second page of a
/// non-compound block (refcount 0): 6.12 `kvm_try_get_pfn()` fails (KVM_PFN_ERR_FAULT); 6.13
/// `kvm_resolve_pfn()` hands the pfn back without a reference, and releasing it puts nothing.
#[test]
fn kvm_remapped_pfn_of_a_refcount_zero_page() {
    use pfnguard_mm::frames::{AllocSpec, FolioFlags, Mapping};
    use pfnguard_mm::kvm::{hva_to_pfn, kvm_release_pfn, KvmPfn};
    let (before, after) = either_side(Fact::KvmPfnmapNoRefs);
    for p in [before, after] {
        let mut k = Kernel::new(p, Config::default());
        let head = k
            .frames
            .alloc(AllocSpec {
                order: 2,
                compound: false,
                mapping: Mapping::None,
                flags: FolioFlags::empty(),
            })
            .expect("alloc");
        let tail = Pfn(head.0 + 1);
        let id = remapped_page(&mut k, tail);
        let refs = |k: &Kernel| {
            let f = k.frames.folio_of(head).expect("folio");
            k.frames.folio(f).refcount
        };
        let r0 = refs(&k);
        let r = hva_to_pfn(&mut k, Kernel::INIT_MM, id.start, false).expect("hva_to_pfn");
        if p.has(Fact::KvmPfnmapNoRefs) {
            assert_eq!(
                r,
                KvmPfn::Pfn {
                    pfn: tail,
                    refcounted: false,
                    writable: true
                }
            );
            kvm_release_pfn(&mut k, r);
            assert_eq!(refs(&k), r0, "no reference taken or put");
        } else {
            assert_eq!(r, KvmPfn::ErrFault, "{}", p.version());
        }
    }
}

/// mm/memory.c:remap_pfn_range of a whole VMA: before 6.16 x86 `track_pfn_remap()` sets VM_PAT
/// (smaps `ar`); from 6.16 the reservation is `vma->pfnmap_track_ctx`, no flag, and a second
/// whole-VMA remap is refused with -EINVAL.
#[test]
fn whole_vma_remap_tracks_pat_without_vm_pat() {
    let (before, after) = either_side(Fact::PfnmapTrackCtx);
    for (p, ar) in [(before, true), (after, false)] {
        let mut k = Kernel::new(p, Config::default());
        let page = k
            .frames
            .alloc(pfnguard_mm::frames::AllocSpec::DRIVER_PAGE)
            .expect("alloc");
        let id = remapped_page(&mut k, page);
        let v = k.vma(id).expect("vma").clone();
        assert!(v.pat_reserved, "{}", p.version());
        assert_eq!(v.flags.contains(VmFlags::PAT), ar, "{}", p.version());
        assert_eq!(
            v.flags.mnemonics(&k.facts).contains(&"ar"),
            ar,
            "{}",
            p.version()
        );
        if !ar {
            let r = remap_pfn_range(&mut k, id, id.start, page, PAGE_SIZE, v.page_prot);
            assert_eq!(r, Err(Fail::Errno(Errno::EINVAL)));
            assert!(
                k.vma(id).expect("vma").pat_reserved,
                "the first context stays"
            );
        }
    }
}

/// mm/memfd.c:memfd_alloc_folio for an unfaulted hugetlb memfd index (what memfd_pin_folios()
/// does for udmabuf): 6.15 `alloc_hugetlb_folio_reserve()` dequeues without a reservation and
/// `resv_huge_pages` underflows; 6.16 it returns NULL (-ENOMEM).
#[test]
fn hugetlb_allocation_from_reserves_without_a_reservation() {
    use pfnguard_mm::hugetlb::memfd_alloc_folio;
    use pfnguard_mm::shmem::ShmemInode;
    let (before, after) = either_side(Fact::HugetlbReserveGuard);
    for p in [before, after] {
        let mut k = Kernel::new(p, Config::default());
        let inode = ShmemInode::new(512, true);
        let r = memfd_alloc_folio(&mut k, &inode, 3);
        if p.has(Fact::HugetlbReserveGuard) {
            assert_eq!(r, Err(Fail::Errno(Errno::ENOMEM)), "{}", p.version());
            assert_eq!(k.hugetlb.resv_huge_pages, 0);
            assert_eq!(inode.lookup(0), None);
        } else {
            let page = r.expect("allocated");
            assert_eq!(inode.lookup(3), Some(page));
            assert_eq!(k.hugetlb.resv_huge_pages, -1, "the count underflows");
        }
    }
}

/// mm/memfd.c:memfd_alloc_folio: from 6.17 it reserves the huge page first
/// (`hugetlb_reserve_pages()`), so the allocation that 6.16 refuses succeeds and consumes exactly
/// that reservation; a second index of the same huge page is found in the page cache.
#[test]
fn memfd_reserves_the_huge_page_before_allocating_it() {
    use pfnguard_mm::hugetlb::{memfd_alloc_folio, memfd_get_folio_page};
    use pfnguard_mm::shmem::ShmemInode;
    let (before, after) = either_side(Fact::MemfdHugetlbReserve);
    for p in [before, after] {
        let mut k = Kernel::new(p, Config::default());
        let inode = ShmemInode::new(1024, true);
        let r = memfd_alloc_folio(&mut k, &inode, 0);
        if p.has(Fact::MemfdHugetlbReserve) {
            let page = r.expect("allocated");
            assert_eq!(k.hugetlb.resv_huge_pages, 0, "reserved, then consumed");
            assert_eq!(memfd_get_folio_page(&mut k, &inode, 1), Ok(Pfn(page.0 + 1)));
            assert_eq!(k.hugetlb.resv_huge_pages, 0, "no second allocation");
        } else {
            assert_eq!(r, Err(Fail::Errno(Errno::ENOMEM)), "{}", p.version());
        }
    }
}

/// fs/libfs.c:init_pseudo: from 7.0 pseudo filesystems are SB_I_NOEXEC, so do_mmap() of one of
/// their files drops VM_MAYEXEC (no `me` in smaps) and refuses PROT_EXEC with -EPERM.
#[test]
fn pseudo_filesystem_files_are_noexec() {
    use pfnguard_mm::vma::pseudo_fs_path_noexec;
    let (before, after) = either_side(Fact::PseudoFsNoexec);
    for p in [before, after] {
        let mut k = Kernel::new(p, Config::default());
        let noexec = pseudo_fs_path_noexec(&mut k);
        assert_eq!(noexec, p.has(Fact::PseudoFsNoexec));
        let file = Arc::new(File {
            noexec,
            ..(*nop_file()).clone()
        });
        let a = do_mmap(
            &mut k,
            Kernel::INIT_MM,
            Some(file.clone()),
            MmapArgs::new(PAGE_SIZE, Prot::RW, MapFlags::SHARED),
        )
        .expect("mmap");
        let v = k.mm(Kernel::INIT_MM).vma_at(a).expect("vma").clone();
        assert_eq!(
            v.flags.contains(VmFlags::MAYEXEC),
            !noexec,
            "{}",
            p.version()
        );
        assert_eq!(
            v.flags.mnemonics(&k.facts).contains(&"me"),
            !noexec,
            "{}",
            p.version()
        );
        let exec = Prot {
            exec: true,
            ..Prot::RW
        };
        let r = do_mmap(
            &mut k,
            Kernel::INIT_MM,
            Some(file),
            MmapArgs::new(PAGE_SIZE, exec, MapFlags::SHARED),
        );
        assert_eq!(r.is_err(), noexec, "{}", p.version());
        if noexec {
            assert_eq!(r, Err(Fail::Errno(Errno::EPERM)));
        }
    }
}
