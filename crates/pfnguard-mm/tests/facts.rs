//! Kernel facts, each run on the versions either side of its change ([`either_side`]), and the
//! behaviours every line shares that no oracle covers.

use std::sync::Arc;

use pfnguard_mm::facts::{either_side, every_line};
use pfnguard_mm::insert::remap_pfn_range;
use pfnguard_mm::mmap::do_mmap;
use pfnguard_mm::vma::AddressSpace;
use pfnguard_mm::{
    Config, Errno, Fact, Fail, File, FileOperations, KResult, Kernel, KernelFacts, MapFlags,
    MmapArgs, Pfn, Prot, RssCounter, VirtAddr, VmFlags, VmaId, VmaNew, PAGE_SIZE,
};
mod common;
use common::{
    anon_map, drvpage, io_uring_register, is_bug, map_shared, memfd_map, pinned, pte, refc,
    setup_insert, setup_mixed, shmpage, Driver, FaultAction, MmapAction, MM,
};
use pfnguard_mm::gup::{
    get_user_pages, get_user_pages_fast, pin_user_pages, pin_user_pages_fast,
    populate_vma_page_range, Foll,
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
            assert_eq!(inode.lookup(&k, 0), None);
        } else {
            let page = r.expect("allocated");
            assert_eq!(inode.lookup(&k, 3), Some(page));
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

/// The smaps mnemonic of VMA flag `bit` is printed on one side of a fact's change only
/// (fs/proc/task_mmu.c:show_smap_vma_flags): after it when `shown_after`, else before it.
fn mnemonic_follows(sides: (KernelFacts, KernelFacts), bit: u32, name: &str, shown_after: bool) {
    let flags = VmFlags::from_bits_retain(1u64 << bit);
    for (p, shown) in [(sides.0, !shown_after), (sides.1, shown_after)] {
        assert_eq!(
            flags.mnemonics(&p).contains(&name),
            shown,
            "{name} at {}",
            p.version()
        );
    }
}

#[test]
fn smaps_mnemonics_come_and_go() {
    mnemonic_follows(either_side(Fact::NoVmDenywrite), 11, "dw", false);
    mnemonic_follows(either_side(Fact::SmapsUffdMinor), 38, "ui", true);
    mnemonic_follows(either_side(Fact::SmapsShadowStack), 37, "ss", true);
    mnemonic_follows(either_side(Fact::SmapsLockonfault), 19, "lf", true);
    mnemonic_follows(either_side(Fact::SmapsSealed), 63, "sl", true);
    mnemonic_follows(either_side(Fact::SmapsDroppable), 40, "dp", true);
}

/// A CMA-flagged anon page pinned FOLL_LONGTERM: 5.10 GUP-fast (lockless_pages_from_mm) pins it
/// where it is; from 5.13 GUP-fast refuses it and the slow path migrates it.
#[test]
fn longterm_pin_of_a_cma_page() {
    let (before, after) = either_side(Fact::GupLongtermMovable);
    for (p, migrated) in [(before, false), (after, true)] {
        let mut k = Kernel::new(p, Config::default());
        let a = anon_map(&mut k, MM, 1);
        pfnguard_mm::fault::user_access(&mut k, MM, a, true).expect("touch");
        let old = pte(&k, MM, a).pfn();
        let f = k.frames.folio_of(old).expect("folio");
        k.frames.folio_mut(f).flags |= pfnguard_mm::frames::FolioFlags::CMA;
        let mut v = Vec::new();
        let r = pfnguard_mm::gup::pin_user_pages_fast(&mut k, MM, a, 1, Foll::LONGTERM, &mut v);
        assert_eq!(r, Ok(1), "{}", p.version());
        assert_eq!(v[0] != old, migrated, "{}", p.version());
    }
}

/// MADV_POPULATE_READ on a memfd: unknown advice (-EINVAL) before 5.14.
#[test]
fn madv_populate() {
    let (before, after) = either_side(Fact::MadvPopulate);
    for (p, want) in [(before, Err(Fail::Errno(Errno::EINVAL))), (after, Ok(()))] {
        let mut k = Kernel::new(p, Config::default());
        let a = memfd_map(&mut k, MM, 2);
        let r = pfnguard_mm::madvise::madvise(
            &mut k,
            MM,
            a,
            2 * PAGE_SIZE,
            pfnguard_mm::madvise::Advice::PopulateRead,
        );
        assert_eq!(r, want, "{}", p.version());
    }
}

/// A special PTE in a VM_MIXEDMAP VMA (vmf_insert_mixed): 5.10 follow_pfn_pte refuses FOLL_GET
/// with -EFAULT and counts a FOLL_PIN page it cannot return; 5.18 stops with -EEXIST.
#[test]
fn gup_of_a_pte_without_page() {
    let (before, after) = either_side(Fact::GupPfnPteEexistBails);
    for p in [before, after] {
        let mut k = Kernel::new(p, Config::default());
        let m = drvpage(&mut k);
        let a = setup_mixed(&mut k, m);
        let mut v = Vec::new();
        let get = get_user_pages(&mut k, MM, a, 1, Foll::empty(), &mut v);
        let pin = pin_user_pages(&mut k, MM, a, 1, Foll::empty(), &mut v);
        if p.has(Fact::GupPfnPteEexistBails) {
            assert_eq!(get, Err(Fail::Errno(Errno::EEXIST)));
            assert_eq!(pin, Err(Fail::Errno(Errno::EEXIST)));
        } else {
            assert_eq!(get, Err(Fail::Errno(Errno::EFAULT)));
            assert_eq!(pin, Ok(1), "counted, pages[0] left unset");
        }
        assert!(v.is_empty());
    }
}

/// A read-only RDMA MR on a read-only shared mapping: 6.1 asks FOLL_FORCE|FOLL_WRITE, which a
/// shared mapping refuses (-EFAULT); 6.2 pins it read-only.
#[test]
fn read_only_umem_on_a_shared_mapping() {
    let (before, after) = either_side(Fact::UmemNoForce);
    for (p, ok) in [(before, false), (after, true)] {
        let mut k = Kernel::new(p, Config::default());
        let (file, _) = pfnguard_mm::shmem::memfd_create("ro", 1, false);
        let a = do_mmap(
            &mut k,
            MM,
            Some(file),
            MmapArgs::new(PAGE_SIZE, Prot::R, MapFlags::SHARED),
        )
        .expect("mmap");
        let r = pfnguard_mm::umem::ib_umem_get(&mut k, MM, a, 1, false);
        assert_eq!(r.is_ok(), ok, "{}: {r:?}", p.version());
    }
}

/// `pin_user_pages_fast(FOLL_GET)`: 0 pages from 6.3's is_valid_gup_args() until 6.5 returns
/// -EINVAL again.
#[test]
fn pin_user_pages_fast_with_foll_get() {
    let (before, after) = either_side(Fact::GupPinFastInvalidEinval);
    assert!(before.has(Fact::GupValidArgs));
    for (p, want) in [(before, Ok(0)), (after, Err(Fail::Errno(Errno::EINVAL)))] {
        let mut k = Kernel::new(p, Config::default());
        let a = anon(&mut k, 1, Prot::RW, MapFlags::PRIVATE);
        let mut pages = Vec::new();
        let r = pfnguard_mm::gup::pin_user_pages_fast(&mut k, MM, a, 1, Foll::GET, &mut pages);
        assert_eq!(r, want, "{}", p.version());
    }
}

/// A driver whose `->fault` returns VM_FAULT_NOPAGE without mapping anything: GUP retries the
/// fault until it gives up with -EINTR (a fatal signal ends the livelock).
#[derive(Debug)]
struct NeverMaps;

impl pfnguard_mm::VmOperations for NeverMaps {
    fn name(&self) -> &'static str {
        "never_maps_vm_ops"
    }
    fn has_fault(&self) -> bool {
        true
    }
    fn fault(&self, _cx: &mut pfnguard_mm::FaultCtx<'_>) -> KResult<pfnguard_mm::VmFault> {
        Ok(pfnguard_mm::VmFault::NOPAGE)
    }
}

#[derive(Debug)]
struct NeverMapsFops;

impl FileOperations for NeverMapsFops {
    fn name(&self) -> &'static str {
        "never_maps_fops"
    }
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        vma.set_ops(Arc::new(NeverMaps));
        Ok(())
    }
}

/// hva_to_pfn() on a VMA whose fault never maps anything: the slow GUP gives up with -EINTR,
/// which 6.2 returns as KVM_PFN_ERR_SIGPENDING and 6.1 as KVM_PFN_ERR_FAULT.
#[test]
fn kvm_interrupted_gup() {
    use pfnguard_mm::kvm::{hva_to_pfn, KvmPfn};
    let (before, after) = either_side(Fact::KvmSigpending);
    for (p, want) in [(before, KvmPfn::ErrFault), (after, KvmPfn::ErrSigpending)] {
        let mut k = Kernel::new(p, Config::default());
        let file = Arc::new(File {
            fops: Arc::new(NeverMapsFops),
            ..(*nop_file()).clone()
        });
        let a = do_mmap(
            &mut k,
            MM,
            Some(file),
            MmapArgs::new(PAGE_SIZE, Prot::RW, MapFlags::SHARED),
        )
        .expect("mmap");
        assert_eq!(
            hva_to_pfn(&mut k, MM, a, false),
            Ok(want),
            "{}",
            p.version()
        );
    }
}

/// KVM on a VM_PFNMAP VMA: 6.1 looks the PTE up with follow_pte(), 6.12 with
/// follow_pfnmap_start(); the pfn is the same.
#[test]
fn kvm_remapped_lookup() {
    use pfnguard_mm::kvm::{hva_to_pfn, KvmPfn};
    let (before, after) = either_side(Fact::KvmFollowPfnmap);
    for (p, lookup) in [(before, "follow_pte"), (after, "follow_pfnmap_start")] {
        let mut k = Kernel::new(p, Config::default());
        let (a, page) = common::setup_remap(&mut k);
        k.trace.enable();
        let r = hva_to_pfn(&mut k, MM, a, false).expect("kvm");
        assert!(matches!(r, KvmPfn::Pfn { pfn, .. } if pfn == page), "{r:?}");
        let said = k.trace.steps().iter().any(|s| s.note.contains(lookup));
        assert!(said, "{}: {lookup}", p.version());
    }
}

/// O_DIRECT on a vm_insert_page() mapping: FOLL_GET before 6.4, FOLL_PIN after.
#[test]
fn odirect_takes_or_pins() {
    let (before, after) = either_side(Fact::OdirectPin);
    for (p, pin) in [(before, false), (after, true)] {
        let mut k = Kernel::new(p, Config::default());
        let page = drvpage(&mut k);
        let a = setup_insert(&mut k, page);
        let b = pfnguard_mm::bio::bio_iov_iter_get_pages(&mut k, MM, a, 1, true).expect("bio");
        assert_eq!(b.pinned, pin, "{}", p.version());
        assert_eq!(pinned(&k, page), pin);
    }
}

/// A FOLL_LONGTERM|FOLL_WRITE pin of a mapping whose file needs dirty tracking
/// (`->page_mkwrite`): refused with -EFAULT from 6.5.
#[test]
fn longterm_write_pin_of_a_dirty_tracked_file() {
    let (before, after) = either_side(Fact::GupWritableFileMapping);
    for (p, ok) in [(before, true), (after, false)] {
        let mut k = Kernel::new(p, Config::default());
        let page = drvpage(&mut k);
        let drv = Driver {
            action: MmapAction::InsertPage(vec![page]),
            page_mkwrite: true,
            ..Driver::default()
        };
        let a = map_shared(&mut k, drv, 1).expect("mmap");
        let mut v = Vec::new();
        let r = pin_user_pages(&mut k, MM, a, 1, Foll::LONGTERM | Foll::WRITE, &mut v);
        assert_eq!(r.is_ok(), ok, "{}: {r:?}", p.version());
    }
}

/// GUP-fast FOLL_PIN|FOLL_LONGTERM of a driver page (mapping NULL): 6.1 pins it in the fast
/// path, 6.5's folio_fast_pin_allowed() sends it to the slow path.
#[test]
fn gup_fast_of_a_page_without_mapping() {
    let (before, after) = either_side(Fact::GupFastFolioAllowed);
    for (p, stop) in [
        (before, pfnguard_mm::gup::FastStop::Done),
        (after, pfnguard_mm::gup::FastStop::FolioNotAllowed),
    ] {
        let mut k = Kernel::new(p, Config::default());
        let page = drvpage(&mut k);
        let a = setup_insert(&mut k, page);
        let mut v = Vec::new();
        let (_, s) =
            pfnguard_mm::gup::gup_fast(&mut k, MM, a, 1, Foll::PIN | Foll::LONGTERM, &mut v);
        assert_eq!(s, stop, "{}", p.version());
    }
}

/// io_uring registration of shmem pages in a VM_IO VMA (vm_map_pages): 6.4's pin_user_pages()
/// stops at VM_IO (-EFAULT); 6.5's pin_user_pages_fast() pins them lock-free.
#[test]
fn io_uring_pins_fast() {
    let (before, after) = either_side(Fact::IoUringPinFast);
    for (p, ok) in [(before, false), (after, true)] {
        let mut k = Kernel::new(p, Config::default());
        let shm = vec![shmpage(&mut k), shmpage(&mut k)];
        let drv = Driver {
            pre_flags: VmFlags::IO,
            action: MmapAction::MapPages(shm),
            ..Driver::default()
        };
        let a = map_shared(&mut k, drv, 2).expect("mmap");
        let r = io_uring_register(&mut k, MM, a, 2);
        assert_eq!(r.is_ok(), ok, "{}: {r:?}", p.version());
    }
}

/// io_uring registration of a driver's vm_insert_page() mapping: -EOPNOTSUPP (not shmem or
/// hugetlbfs) before 6.5, registered after.
#[test]
fn io_uring_file_check() {
    let (before, after) = either_side(Fact::IoUringNoFileCheck);
    for (p, want) in [(before, Some(Errno::EOPNOTSUPP)), (after, None)] {
        let mut k = Kernel::new(p, Config::default());
        let page = drvpage(&mut k);
        let a = setup_insert(&mut k, page);
        let r = io_uring_register(&mut k, MM, a, 1);
        assert_eq!(r.err(), want.map(Fail::Errno), "{}", p.version());
    }
}

/// GUP-fast on a NUMA-hinting (PROT_NONE) PTE of an accessible VMA: 6.5 bails at once on
/// pte_protnone().
#[test]
fn gup_fast_on_a_protnone_pte() {
    use pfnguard_mm::gup::FastStop;
    use pfnguard_mm::pagetable::{PgProt, Pte};
    let (before, after) = either_side(Fact::GupFastProtnoneBails);
    for p in [before, after] {
        let mut k = Kernel::new(p, Config::default());
        let a = anon_map(&mut k, MM, 1);
        pfnguard_mm::fault::user_access(&mut k, MM, a, true).expect("touch");
        let pfn = pte(&k, MM, a).pfn();
        k.mm_mut(MM)
            .pt
            .set(a, Pte::new(pfn, PgProt::new(Pte::PROTNONE | Pte::USER)));
        let mut v = Vec::new();
        let (_, s) = pfnguard_mm::gup::gup_fast(&mut k, MM, a, 1, Foll::GET, &mut v);
        assert_eq!(
            s == FastStop::Protnone,
            p.has(Fact::GupFastProtnoneBails),
            "{}: {s:?}",
            p.version()
        );
    }
}

/// A write fault on a read-only PTE of a VM_SHARED VMA without VM_WRITE (what FOLL_FORCE would
/// ask; check_vma_flags refuses it earlier for GUP): before 6.6 do_wp_page() takes the private
/// path and puts an anon copy into the shared mapping; after, the shared path keeps the page.
#[test]
fn write_fault_on_a_read_only_shared_mapping() {
    let (before, after) = either_side(Fact::WpSharedMayshare);
    for (p, copied) in [(before, true), (after, false)] {
        let mut k = Kernel::new(p, Config::default());
        let (file, _) = pfnguard_mm::shmem::memfd_create("ro", 1, false);
        let a = do_mmap(
            &mut k,
            MM,
            Some(file),
            MmapArgs::new(PAGE_SIZE, Prot::R, MapFlags::SHARED),
        )
        .expect("mmap");
        pfnguard_mm::fault::user_access(&mut k, MM, a, false).expect("read fault");
        let page = pte(&k, MM, a).pfn();
        let id = VmaId { mm: MM, start: a };
        let write = pfnguard_mm::vma::FaultFlags {
            write: true,
            ..Default::default()
        };
        let _ = pfnguard_mm::fault::handle_mm_fault(&mut k, id, a, write);
        assert_eq!(pte(&k, MM, a).pfn() != page, copied, "{}", p.version());
    }
}

/// x86 `_PAGE_BIT_DEVMAP`: 58 before 6.6, 57 after.
#[test]
fn devmap_bit() {
    let (before, after) = either_side(Fact::DevmapBit57);
    for (p, bit) in [(before, 58), (after, 57)] {
        let k = Kernel::new(p, Config::default());
        assert_eq!(pfnguard_mm::pagetable::devmap_bit(&k), bit);
    }
}

/// validate_page_before_insert() of a hugetlb folio's head page: accepted before 6.9, refused
/// (-EINVAL) once hugetlb is a page type.
#[test]
fn insert_of_a_hugetlb_page() {
    let (before, after) = either_side(Fact::HugetlbPageType);
    for (p, ok) in [(before, true), (after, false)] {
        let mut k = Kernel::new(p, Config::default());
        let h = k
            .frames
            .alloc(pfnguard_mm::frames::AllocSpec {
                flags: pfnguard_mm::frames::FolioFlags::HUGETLB,
                ..pfnguard_mm::frames::AllocSpec::compound(9)
            })
            .expect("RAM");
        let a = anon(&mut k, 1, Prot::RW, MapFlags::SHARED);
        let id = VmaId { mm: MM, start: a };
        let r = pfnguard_mm::insert::validate_page_before_insert(&mut k, id, h);
        assert_eq!(r.is_ok(), ok, "{}: {r:?}", p.version());
    }
}

/// vm_insert_page() of a refcount-0 tail page into a VM_PFNMAP VMA: 6.1 tests page_count()
/// first (-EINVAL); 6.10 validates after the BUG_ON(VM_PFNMAP).
#[test]
fn insert_of_a_tail_page_into_pfnmap() {
    let (before, after) = either_side(Fact::InsertCountInValidate);
    for p in [before, after] {
        let mut k = Kernel::new(p, Config::default());
        let block = k
            .frames
            .alloc(pfnguard_mm::frames::AllocSpec {
                order: 1,
                compound: false,
                mapping: pfnguard_mm::frames::Mapping::None,
                flags: pfnguard_mm::frames::FolioFlags::empty(),
            })
            .expect("RAM");
        let drv = Driver {
            pre_flags: VmFlags::PFNMAP,
            action: MmapAction::InsertPage(vec![Pfn(block.0 + 1)]),
            ..Driver::default()
        };
        let r = map_shared(&mut k, drv, 1).unwrap_err();
        if p.has(Fact::InsertCountInValidate) {
            assert!(is_bug(&r, "vma->vm_flags & VM_PFNMAP"), "{r:?}");
        } else {
            assert_eq!(r, Fail::Errno(Errno::EINVAL));
        }
    }
}

/// vm_normal_page() of the zero pfn in a VM_MIXEDMAP VMA without PTE_SPECIAL semantics: the
/// zero page before 6.10, none after.
#[test]
fn normal_page_of_the_zero_pfn() {
    use pfnguard_mm::pagetable::{PgProt, Pte};
    let (before, after) = either_side(Fact::InsertZeropageSpecial);
    for p in [before, after] {
        let cfg = Config {
            arch_has_pte_special: false,
            ..Config::default()
        };
        let mut k = Kernel::new(p, cfg);
        let m = drvpage(&mut k);
        let a = setup_mixed(&mut k, m);
        let v = k.mm(MM).vma_at(a).expect("vma").clone();
        let z = k.frames.zero_pfn();
        let r = pfnguard_mm::normal_page::vm_normal_page(
            &mut k,
            &v,
            a,
            Pte::new(z, PgProt::new(Pte::PRESENT | Pte::USER)),
        );
        let want = if p.has(Fact::InsertZeropageSpecial) {
            None
        } else {
            Some(z)
        };
        assert_eq!(r, want, "{}", p.version());
    }
}

/// vmf_insert_mixed() of a device pfn into a VM_PFNMAP VMA (vm_mixed_ok() fails): BUG before
/// 6.10, SIGBUS after.
#[test]
fn vmf_insert_mixed_refused() {
    let (before, after) = either_side(Fact::MixedOkSigbus);
    for p in [before, after] {
        let mut k = Kernel::new(p, Config::default());
        let dev = k.frames.alloc_device(1);
        let drv = Driver {
            pre_flags: VmFlags::PFNMAP,
            fault: FaultAction::InsertMixedDev(dev),
            ..Driver::default()
        };
        let a = map_shared(&mut k, drv, 1).expect("mmap");
        let r = pfnguard_mm::fault::user_access(&mut k, MM, a, false).unwrap_err();
        if p.has(Fact::MixedOkSigbus) {
            assert_eq!(r, Fail::Signal(pfnguard_mm::Signal::Bus));
        } else {
            assert!(is_bug(&r, "!vm_mixed_ok(vma, pfn)"), "{r:?}");
        }
    }
}

/// smaps of a VM_PFNMAP VMA holding a normal PTE (a `->fault` returning `vmf->page`): not walked
/// before 6.2 (Rss 0), walked after (4 kB).
#[test]
fn smaps_of_a_pfnmap_vma_with_a_page() {
    let (before, after) = either_side(Fact::WalkPageVmaNoTest);
    for (p, kb) in [(before, 0), (after, 4)] {
        let mut k = Kernel::new(p, Config::default());
        let page = drvpage(&mut k);
        let drv = Driver {
            pre_flags: VmFlags::PFNMAP,
            fault: FaultAction::SetPage(vec![page]),
            ..Driver::default()
        };
        let a = map_shared(&mut k, drv, 1).expect("mmap");
        pfnguard_mm::fault::user_access(&mut k, MM, a, false).expect("fault");
        let v = k.mm(MM).vma_at(a).expect("vma").clone();
        assert_eq!(
            pfnguard_mm::proc::smaps(&k, MM, &v).rss_kb,
            kb,
            "{}",
            p.version()
        );
        assert_eq!(refc(&k, page), 2);
    }
}

/// `vm_map_pages()` on a VMA the driver already marked VM_PFNMAP: before
/// [`Fact::VmMapPagesBatched`] `__vm_map_pages()` loops over `vm_insert_page()`, whose
/// `BUG_ON(vma->vm_flags & VM_PFNMAP)` fires; after it `vm_insert_pages()` only
/// `VM_WARN_ON_ONCE`s (compiled out without CONFIG_DEBUG_VM), sets VM_MIXEDMAP and installs
/// normal, refcounted PTEs.
#[test]
fn vm_map_pages_on_a_pfnmap_vma() {
    let (before, after) = either_side(Fact::VmMapPagesBatched);
    for (p, debug_vm) in [(before, false), (after, false), (after, true)] {
        let mut k = Kernel::new(
            p,
            Config {
                debug_vm,
                ..Config::default()
            },
        );
        let page = drvpage(&mut k);
        let drv = Driver {
            pre_flags: VmFlags::PFNMAP,
            action: MmapAction::MapPages(vec![page]),
            ..Driver::default()
        };
        let r = map_shared(&mut k, drv, 1);
        if !p.has(Fact::VmMapPagesBatched) {
            let e = r.expect_err("BUG");
            assert!(is_bug(&e, "vma->vm_flags & VM_PFNMAP"), "{e:?}");
            continue;
        }
        let a = r.expect("mapped");
        let v = k.mm(MM).vma_at(a).expect("vma").clone();
        assert!(v.flags.contains(VmFlags::PFNMAP | VmFlags::MIXEDMAP));
        assert!(!pte(&k, MM, a).special());
        assert_eq!(refc(&k, page), 2);
        let warned = k
            .warnings()
            .iter()
            .any(|w| w.contains("vma->vm_flags & VM_PFNMAP"));
        assert_eq!(warned, debug_vm);
    }
}

/// GUP-fast of a driver page (NULL `folio->mapping`) behind a normal PTE in a VM_PFNMAP VMA
/// (what `vm_map_pages()` leaves there from [`Fact::VmMapPagesBatched`] on): before
/// [`Fact::GupFastNullMapping`] `gup_fast_folio_allowed()` sends it to the slow path, which
/// refuses the VMA (-EFAULT); after it GUP-fast takes the page. A long-term writable pin still
/// falls back and fails.
#[test]
fn gup_fast_of_a_null_mapping_page_in_a_pfnmap_vma() {
    let (before, after) = either_side(Fact::GupFastNullMapping);
    assert!(before.has(Fact::VmMapPagesBatched));
    for p in [before, after] {
        let mut k = Kernel::new(p, Config::default());
        let page = drvpage(&mut k);
        let drv = Driver {
            pre_flags: VmFlags::PFNMAP,
            action: MmapAction::MapPages(vec![page]),
            ..Driver::default()
        };
        let a = map_shared(&mut k, drv, 1).expect("mapped");
        let mut v = Vec::new();
        let r = get_user_pages_fast(&mut k, MM, a, 1, Foll::empty(), &mut v);
        if p.has(Fact::GupFastNullMapping) {
            assert_eq!(r, Ok(1), "{}", p.version());
            assert_eq!(v, vec![page]);
            k.put_pages(&v);
        } else {
            assert_eq!(r, Err(Fail::Errno(Errno::EFAULT)), "{}", p.version());
        }
        let mut v = Vec::new();
        let r = pin_user_pages_fast(&mut k, MM, a, 1, Foll::LONGTERM | Foll::WRITE, &mut v);
        assert_eq!(r, Err(Fail::Errno(Errno::EFAULT)), "{}", p.version());
    }
}

/// kernel/fork.c:copy_mm of a MAP_PRIVATE remap_pfn_range()'d VMA (VM_PAT) whose first page
/// was written (COW: an anon page at vm_start): before 04c35ab3bdae track_pfn_copy() took the
/// anon page's address and the fork went ahead; after it get_pat_info() fails and the fork is
/// -ENOMEM; the same without the write forks either side.
#[test]
fn fork_of_a_written_cow_pat_mapping() {
    use pfnguard_mm::fault::user_access;
    use pfnguard_mm::fork::copy_mm;
    let (before, after) = either_side(Fact::PatCowForkRefused);
    for (p, written, refused) in [
        (before, true, false),
        (after, true, true),
        (after, false, false),
    ] {
        let mut k = Kernel::new(p, Config::default());
        let page = k
            .frames
            .alloc(pfnguard_mm::frames::AllocSpec::DRIVER_PAGE)
            .expect("alloc");
        let a = do_mmap(
            &mut k,
            Kernel::INIT_MM,
            Some(nop_file()),
            MmapArgs::new(PAGE_SIZE, Prot::RW, MapFlags::PRIVATE),
        )
        .expect("mmap");
        let id = VmaId {
            mm: Kernel::INIT_MM,
            start: a,
        };
        let prot = k.vma(id).expect("vma").page_prot;
        remap_pfn_range(&mut k, id, a, page, PAGE_SIZE, prot).expect("remap_pfn_range");
        assert!(k.vma(id).expect("vma").flags.contains(VmFlags::PAT));
        if written {
            user_access(&mut k, Kernel::INIT_MM, a, true).expect("COW write");
        }
        let r = copy_mm(&mut k, Kernel::INIT_MM);
        assert_eq!(
            r.as_ref().err().map(|e| e.to_string()),
            refused.then(|| "ENOMEM".to_owned()),
            "{} written {written}",
            p.version()
        );
        // A refused fork leaves no child behind: the parent's page is mapped once.
        if refused {
            assert!(k.warnings().is_empty(), "{:?}", k.warnings());
        }
    }
}
