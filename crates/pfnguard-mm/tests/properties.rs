//! Property tests: random sequences of mmap (several exporter shapes, memfd, anon), user
//! accesses, munmap, fork, exit, madvise, mremap, mlock, GUP (fast and slow, get and pin, kept
//! and released), KVM `hva_to_pfn`, `/proc/PID/mem` and `process_vm_readv`, run on every line from 5.10 to 7.3.
//! After every step the bookkeeping invariants of the kernel must hold; a BUG must stop the
//! kernel for good.
//!
//! `PROPTEST_CASES` overrides the default of 10,000 cases per property.
//!
//! A failing case's seed is appended to `tests/properties.proptest-regressions`, which is
//! committed: every later run replays the recorded seeds before generating new cases.

mod common;

use std::collections::HashMap;

use common::*;
use pfnguard_mm::access::{proc_mem_rw, process_vm_rw};
use pfnguard_mm::facts::every_line;
use pfnguard_mm::fault::user_access;
use pfnguard_mm::fork::{dup_mmap, exit_mmap};
use pfnguard_mm::frames::{FolioId, GUP_PIN_COUNTING_BIAS};
use pfnguard_mm::gup::{
    get_user_pages, get_user_pages_fast, pin_user_pages, pin_user_pages_fast, Foll,
};
use pfnguard_mm::insert::VmallocArea;
use pfnguard_mm::kvm::{hva_to_pfn, kvm_release_pfn};
use pfnguard_mm::madvise::{madvise, mlock, Advice};
use pfnguard_mm::mmap::do_munmap;
use pfnguard_mm::mremap::{mremap, MremapFlags};
use pfnguard_mm::normal_page::vm_normal_page_quiet;
use pfnguard_mm::proc::smaps;
use pfnguard_mm::types::TASK_SIZE_MAX;
use pfnguard_mm::{
    Event, Fail, KResult, Kernel, KernelFacts, MmId, Pfn, RssCounter, VirtAddr, VmFlags, PAGE_SIZE,
};
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000)
}

/// Exporter shapes and plain memory a sequence may map.
#[derive(Debug, Clone, Copy)]
enum Shape {
    /// remap_pfn_range over the whole VMA (special PTEs).
    Remap,
    /// One remap_pfn_range per page (6.12 system heap).
    RemapPerPage,
    /// vm_insert_page of order-0 driver pages (normal PTEs, VM_MIXEDMAP).
    InsertPage,
    /// vm_insert_page of pages of a compound folio.
    InsertBig,
    /// VM_PFNMAP|VM_MIXEDMAP + vm_insert_page.
    PfnmapMixedInsert,
    /// VM_IO + vm_map_pages of shmem pages.
    IoMapPages,
    /// `->fault` sets vmf->page, no VMA flags.
    FaultPage,
    /// `->fault` sets vmf->page in a VM_PFNMAP VMA.
    FaultPagePfnmap,
    /// VM_PFNMAP|VM_IO, `->fault` = vmf_insert_pfn of device frames.
    LazyPfn,
    /// VM_MIXEDMAP, `->fault` = vmf_insert_mixed of RAM pfns (special PTEs).
    Mixed,
    /// remap_vmalloc_range of a vmalloc_user area.
    Vmalloc,
    /// A shared memfd.
    Memfd,
    /// Private anonymous memory.
    Anon,
    /// VM_PFNMAP + vm_insert_page: BUG.
    BugPfnmapInsert,
    /// `->fault` returns 0 without a page: oops on first touch.
    BugFaultNoPage,
    /// vm_insert_page from `->fault` without VM_MIXEDMAP: BUG on first touch.
    BugInsertFromFault,
}

#[derive(Debug, Clone)]
enum Op {
    Mmap {
        mm: u8,
        shape: Shape,
        pages: u8,
    },
    Touch {
        mm: u8,
        vma: u8,
        page: u8,
        write: bool,
    },
    Munmap {
        mm: u8,
        vma: u8,
        one_page: Option<u8>,
    },
    Fork {
        mm: u8,
    },
    Exit {
        mm: u8,
    },
    Madvise {
        mm: u8,
        vma: u8,
        advice: u8,
    },
    Mremap {
        mm: u8,
        vma: u8,
        grow: bool,
    },
    Mlock {
        mm: u8,
        vma: u8,
    },
    Gup {
        mm: u8,
        vma: u8,
        page: u8,
        n: u8,
        fast: bool,
        pin: bool,
        longterm: bool,
        write: bool,
        keep: bool,
    },
    Release {
        idx: u8,
    },
    DriverRelease {
        idx: u8,
    },
    Kvm {
        mm: u8,
        vma: u8,
        page: u8,
        write: bool,
    },
    ProcMem {
        mm: u8,
        vma: u8,
        page: u8,
        write: bool,
    },
    ProcessVm {
        mm: u8,
        vma: u8,
        page: u8,
        write: bool,
    },
}

fn shape(bugs: bool) -> BoxedStrategy<Shape> {
    use Shape::*;
    let safe = prop_oneof![
        Just(Remap),
        Just(RemapPerPage),
        Just(InsertPage),
        Just(InsertBig),
        Just(PfnmapMixedInsert),
        Just(IoMapPages),
        Just(FaultPage),
        Just(FaultPagePfnmap),
        Just(LazyPfn),
        Just(Mixed),
        Just(Vmalloc),
        Just(Memfd),
        Just(Anon),
    ];
    if bugs {
        prop_oneof![
            4 => safe,
            1 => prop_oneof![Just(BugPfnmapInsert), Just(BugFaultNoPage), Just(BugInsertFromFault)],
        ]
        .boxed()
    } else {
        safe.boxed()
    }
}

fn op(bugs: bool) -> impl Strategy<Value = Op> {
    let mm = 0u8..3;
    let ix = any::<u8>();
    prop_oneof![
        4 => (mm.clone(), shape(bugs), 1u8..=4).prop_map(|(mm, shape, pages)| Op::Mmap { mm, shape, pages }),
        6 => (mm.clone(), ix, ix, any::<bool>())
            .prop_map(|(mm, vma, page, write)| Op::Touch { mm, vma, page, write }),
        1 => (mm.clone(), ix, proptest::option::of(ix))
            .prop_map(|(mm, vma, one_page)| Op::Munmap { mm, vma, one_page }),
        1 => mm.clone().prop_map(|mm| Op::Fork { mm }),
        1 => (1u8..3).prop_map(|mm| Op::Exit { mm }),
        2 => (mm.clone(), ix, 0u8..4).prop_map(|(mm, vma, advice)| Op::Madvise { mm, vma, advice }),
        1 => (mm.clone(), ix, any::<bool>()).prop_map(|(mm, vma, grow)| Op::Mremap { mm, vma, grow }),
        1 => (mm.clone(), ix).prop_map(|(mm, vma)| Op::Mlock { mm, vma }),
        5 => (mm.clone(), ix, ix, 1u8..4, any::<[bool; 5]>()).prop_map(
            |(mm, vma, page, n, [fast, pin, longterm, write, keep])| Op::Gup {
                mm, vma, page, n, fast, pin, longterm, write, keep
            }
        ),
        2 => ix.prop_map(|idx| Op::Release { idx }),
        1 => ix.prop_map(|idx| Op::DriverRelease { idx }),
        1 => (mm.clone(), ix, ix, any::<bool>())
            .prop_map(|(mm, vma, page, write)| Op::Kvm { mm, vma, page, write }),
        1 => (mm.clone(), ix, ix, any::<bool>())
            .prop_map(|(mm, vma, page, write)| Op::ProcMem { mm, vma, page, write }),
        1 => (mm, ix, ix, any::<bool>())
            .prop_map(|(mm, vma, page, write)| Op::ProcessVm { mm, vma, page, write }),
    ]
}

/// Pages a kernel subsystem holds on behalf of the test.
#[derive(Debug)]
struct Held {
    pin: bool,
    pages: Vec<Pfn>,
}

/// The world one op sequence runs in.
struct World {
    k: Kernel,
    /// Driver buffers (their pages hold the driver's reference until released).
    buffers: Vec<(Vec<Pfn>, bool)>,
    /// Shmem page-cache inodes, for the page cache's references.
    inodes: Vec<std::sync::Arc<pfnguard_mm::shmem::ShmemInode>>,
    held: Vec<Held>,
}

impl World {
    fn new(p: KernelFacts) -> World {
        World {
            k: kernel(p),
            buffers: Vec::new(),
            inodes: Vec::new(),
            held: Vec::new(),
        }
    }

    fn mm(&self, i: u8) -> MmId {
        MmId(u32::from(i) % self.k.mms.len() as u32)
    }

    /// The `i`-th VMA of `mm` (modulo the count) and an address `page` pages into it.
    fn addr(&self, mm: MmId, vma: u8, page: u8) -> Option<(VirtAddr, u64)> {
        let vmas = &self.k.mm(mm).vmas;
        if vmas.is_empty() {
            return None;
        }
        let v = vmas.values().nth(usize::from(vma) % vmas.len())?;
        let off = u64::from(page) % v.pages();
        Some((v.start.add_pages(off), v.pages() - off))
    }

    fn buffer(&mut self, pages: Vec<Pfn>) -> Vec<Pfn> {
        self.buffers.push((pages.clone(), false));
        pages
    }

    /// Run one op; `None` for ops that are not syscalls (they cannot fail).
    fn step(&mut self, op: &Op) -> Option<KResult<()>> {
        match *op {
            Op::Mmap { mm, shape, pages } => {
                let mm = self.mm(mm);
                let n = u64::from(pages);
                let k = &mut self.k;
                let drv = match shape {
                    Shape::Memfd => {
                        let (file, inode) = pfnguard_mm::shmem::memfd_create("p", n, false);
                        self.inodes.push(inode);
                        let r = pfnguard_mm::mmap::do_mmap(
                            &mut self.k,
                            mm,
                            Some(file),
                            pfnguard_mm::MmapArgs::new(
                                n * PAGE_SIZE,
                                pfnguard_mm::Prot::RW,
                                pfnguard_mm::MapFlags::SHARED,
                            ),
                        );
                        return Some(r.map(|_| ()));
                    }
                    Shape::Anon => {
                        let r = pfnguard_mm::mmap::do_mmap(
                            &mut self.k,
                            mm,
                            None,
                            pfnguard_mm::MmapArgs::new(
                                n * PAGE_SIZE,
                                pfnguard_mm::Prot::RW,
                                pfnguard_mm::MapFlags::PRIVATE,
                            ),
                        );
                        return Some(r.map(|_| ()));
                    }
                    Shape::Remap => {
                        let first = k.frames.alloc(pfnguard_mm::frames::AllocSpec {
                            order: 2,
                            compound: false,
                            mapping: pfnguard_mm::frames::Mapping::None,
                            flags: pfnguard_mm::frames::FolioFlags::empty(),
                        })?;
                        // Without __GFP_COMP only the first page holds the reference.
                        self.buffers.push((vec![first], false));
                        Driver {
                            action: MmapAction::RemapWhole(first),
                            ..Driver::default()
                        }
                    }
                    Shape::RemapPerPage => {
                        let p: Vec<Pfn> = (0..n).map(|_| drvpage(k)).collect();
                        Driver {
                            action: MmapAction::RemapPerPage(self.buffer(p)),
                            ..Driver::default()
                        }
                    }
                    Shape::InsertPage | Shape::PfnmapMixedInsert | Shape::BugPfnmapInsert => {
                        let p: Vec<Pfn> = (0..n).map(|_| drvpage(k)).collect();
                        let pre_flags = match shape {
                            Shape::PfnmapMixedInsert => VmFlags::PFNMAP | VmFlags::MIXEDMAP,
                            Shape::BugPfnmapInsert => VmFlags::PFNMAP,
                            _ => VmFlags::empty(),
                        };
                        Driver {
                            pre_flags,
                            action: MmapAction::InsertPage(self.buffer(p)),
                            ..Driver::default()
                        }
                    }
                    Shape::InsertBig => {
                        let head = bigpage(k);
                        Driver {
                            action: MmapAction::InsertPage(
                                self.buffer((0..n).map(|i| Pfn(head.0 + i)).collect()),
                            ),
                            ..Driver::default()
                        }
                    }
                    Shape::IoMapPages => {
                        let p: Vec<Pfn> = (0..n).map(|_| shmpage(k)).collect();
                        Driver {
                            pre_flags: VmFlags::IO,
                            action: MmapAction::MapPages(self.buffer(p)),
                            ..Driver::default()
                        }
                    }
                    Shape::FaultPage | Shape::FaultPagePfnmap => {
                        let p: Vec<Pfn> = (0..n).map(|_| drvpage(k)).collect();
                        Driver {
                            pre_flags: if matches!(shape, Shape::FaultPagePfnmap) {
                                VmFlags::PFNMAP
                            } else {
                                VmFlags::empty()
                            },
                            fault: FaultAction::SetPage(self.buffer(p)),
                            ..Driver::default()
                        }
                    }
                    Shape::LazyPfn => Driver {
                        pre_flags: VmFlags::PFNMAP | VmFlags::IO | VmFlags::DONTEXPAND,
                        fault: FaultAction::InsertPfn(k.frames.alloc_device(n)),
                        ..Driver::default()
                    },
                    Shape::Mixed => {
                        let p: Vec<Pfn> = (0..n).map(|_| drvpage(k)).collect();
                        Driver {
                            pre_flags: VmFlags::MIXEDMAP,
                            fault: FaultAction::InsertMixed(self.buffer(p)),
                            ..Driver::default()
                        }
                    }
                    Shape::Vmalloc => {
                        let area = VmallocArea::vmalloc_user(k, n).ok()?;
                        self.buffer(area.pages.clone());
                        Driver {
                            action: MmapAction::RemapVmalloc(area),
                            ..Driver::default()
                        }
                    }
                    Shape::BugFaultNoPage => Driver {
                        fault: FaultAction::ReturnZeroNoPage,
                        ..Driver::default()
                    },
                    Shape::BugInsertFromFault => {
                        let p: Vec<Pfn> = (0..n).map(|_| drvpage(k)).collect();
                        Driver {
                            fault: FaultAction::InsertPage(self.buffer(p)),
                            ..Driver::default()
                        }
                    }
                };
                let r = map(
                    &mut self.k,
                    mm,
                    drv,
                    n,
                    pfnguard_mm::Prot::RW,
                    pfnguard_mm::MapFlags::SHARED,
                    true,
                );
                Some(r.map(|_| ()))
            }
            Op::Touch {
                mm,
                vma,
                page,
                write,
            } => {
                let mm = self.mm(mm);
                let (a, _) = self.addr(mm, vma, page)?;
                Some(user_access(&mut self.k, mm, a, write))
            }
            Op::Munmap { mm, vma, one_page } => {
                let mm = self.mm(mm);
                let (a, rest) = self.addr(mm, vma, one_page.unwrap_or(0))?;
                let len = if one_page.is_some() {
                    PAGE_SIZE
                } else {
                    rest * PAGE_SIZE
                };
                Some(do_munmap(&mut self.k, mm, a, len))
            }
            Op::Fork { mm } => {
                if self.k.mms.len() >= 3 {
                    return None;
                }
                let mm = self.mm(mm);
                Some(dup_mmap(&mut self.k, mm).map(|_| ()))
            }
            Op::Exit { mm } => {
                let mm = self.mm(mm);
                if mm.0 == 0 || self.k.oops.is_some() {
                    return None;
                }
                exit_mmap(&mut self.k, mm);
                None
            }
            Op::Madvise { mm, vma, advice } => {
                let mm = self.mm(mm);
                let (a, rest) = self.addr(mm, vma, 0)?;
                let adv = [
                    Advice::DontNeed,
                    Advice::DontFork,
                    Advice::PopulateRead,
                    Advice::PopulateWrite,
                ][usize::from(advice) % 4];
                Some(madvise(&mut self.k, mm, a, rest * PAGE_SIZE, adv))
            }
            Op::Mremap { mm, vma, grow } => {
                let mm = self.mm(mm);
                let (a, rest) = self.addr(mm, vma, 0)?;
                let old = rest * PAGE_SIZE;
                let flags = MremapFlags {
                    maymove: true,
                    ..MremapFlags::default()
                };
                let new = if grow { old + PAGE_SIZE } else { old };
                let dest = if grow {
                    None
                } else {
                    Some(VirtAddr(0x6000_0000_0000 + u64::from(vma) * 0x10_0000))
                };
                let flags = MremapFlags {
                    fixed: dest.is_some(),
                    ..flags
                };
                Some(mremap(&mut self.k, mm, a, old, new, flags, dest).map(|_| ()))
            }
            Op::Mlock { mm, vma } => {
                let mm = self.mm(mm);
                let (a, rest) = self.addr(mm, vma, 0)?;
                Some(mlock(&mut self.k, mm, a, rest * PAGE_SIZE))
            }
            Op::Gup {
                mm,
                vma,
                page,
                n,
                fast,
                pin,
                longterm,
                write,
                keep,
            } => {
                let mm = self.mm(mm);
                let (a, _) = self.addr(mm, vma, page)?;
                let mut flags = Foll::empty();
                if longterm {
                    flags |= Foll::LONGTERM;
                }
                if write {
                    flags |= Foll::WRITE;
                }
                let n = u64::from(n);
                let mut pages = Vec::new();
                let r = match (fast, pin) {
                    (true, true) => pin_user_pages_fast(&mut self.k, mm, a, n, flags, &mut pages),
                    (true, false) => get_user_pages_fast(&mut self.k, mm, a, n, flags, &mut pages),
                    (false, true) => pin_user_pages(&mut self.k, mm, a, n, flags, &mut pages),
                    (false, false) => get_user_pages(&mut self.k, mm, a, n, flags, &mut pages),
                };
                match &r {
                    // Before Fact::GupPfnPteEexistBails (5.10 mm/gup.c:__get_user_pages) a PTE
                    // without page is counted with pages[i] left unset.
                    Ok(got) if !self.k.has(pfnguard_mm::Fact::GupPfnPteEexistBails) => {
                        assert!(*got >= pages.len() as u64, "{op:?}: at most count pages")
                    }
                    Ok(got) => {
                        assert_eq!(*got, pages.len() as u64, "{op:?}: count and pages agree")
                    }
                    // After an oops nothing returns to the caller; the pages vector is moot.
                    Err(Fail::Bug(_)) => {}
                    Err(_) => assert!(pages.is_empty(), "{op:?}: an error holds no page"),
                }
                if keep {
                    self.held.push(Held { pin, pages });
                } else if pin {
                    self.k.unpin_user_pages(&pages);
                } else {
                    self.k.put_pages(&pages);
                }
                Some(r.map(|_| ()))
            }
            Op::Release { idx } => {
                if !self.held.is_empty() {
                    let h = self.held.remove(usize::from(idx) % self.held.len());
                    if h.pin {
                        self.k.unpin_user_pages(&h.pages);
                    } else {
                        self.k.put_pages(&h.pages);
                    }
                }
                None
            }
            Op::DriverRelease { idx } => {
                let live: Vec<usize> = (0..self.buffers.len())
                    .filter(|&i| !self.buffers[i].1)
                    .collect();
                if !live.is_empty() {
                    let i = live[usize::from(idx) % live.len()];
                    self.buffers[i].1 = true;
                    let pages = self.buffers[i].0.clone();
                    // A compound buffer holds one reference on its head.
                    let mut seen = Vec::new();
                    for p in pages {
                        if let Some(f) = self.k.frames.folio_of(p) {
                            if !seen.contains(&f) {
                                seen.push(f);
                                self.k.folio_put(f, 1);
                            }
                        }
                    }
                }
                None
            }
            Op::Kvm {
                mm,
                vma,
                page,
                write,
            } => {
                let mm = self.mm(mm);
                let (a, _) = self.addr(mm, vma, page)?;
                let r = hva_to_pfn(&mut self.k, mm, a, write);
                if let Ok(p) = r {
                    kvm_release_pfn(&mut self.k, p);
                }
                Some(r.map(|_| ()))
            }
            Op::ProcMem {
                mm,
                vma,
                page,
                write,
            } => {
                let mm = self.mm(mm);
                let (a, _) = self.addr(mm, vma, page)?;
                Some(proc_mem_rw(&mut self.k, mm, a, 64, write).map(|_| ()))
            }
            Op::ProcessVm {
                mm,
                vma,
                page,
                write,
            } => {
                let mm = self.mm(mm);
                let (a, _) = self.addr(mm, vma, page)?;
                Some(process_vm_rw(&mut self.k, mm, a, 2 * PAGE_SIZE, write).map(|_| ()))
            }
        }
    }

    /// The references the test knows of besides PTEs and held pages: the driver's own
    /// reference (until released), the page cache's, the zero page's.
    fn owner_refs(&self) -> HashMap<FolioId, i32> {
        let k = &self.k;
        let mut m: HashMap<FolioId, i32> = HashMap::new();
        let mut add = |p: Pfn, refs: i32| {
            if let Some(f) = k.frames.folio_of(p) {
                m.insert(f, refs);
            }
        };
        add(k.frames.zero_pfn(), 1);
        for (pages, released) in &self.buffers {
            for &p in pages {
                add(p, if *released { 0 } else { 1 });
            }
        }
        m
    }

    /// Check every invariant; panics with a description on the first violation.
    fn check(&self, step: usize, op: &Op) {
        let k = &self.k;
        let ctx = || format!("Linux {} after step {step} ({op:?})", k.facts.version());
        let uaf = k.use_after_free_reported();
        assert!(
            !k.events
                .iter()
                .any(|e| matches!(e, Event::BadPageMap { .. } | Event::Livelock { .. })),
            "{}: unexpected event {:?}",
            ctx(),
            k.events
        );
        // Walk every PTE of every mm.
        let mut mapped: HashMap<FolioId, i32> = HashMap::new();
        let mut file_mapped = 0i64;
        for (mi, m) in k.mms.iter().enumerate() {
            let mm = MmId(mi as u32);
            for (a, _) in m.pt.collect_in(VirtAddr(0), VirtAddr(TASK_SIZE_MAX)) {
                assert!(
                    m.vma_at(a).is_some(),
                    "{}: PTE at {a} of mm {mi} outside every VMA",
                    ctx()
                );
            }
            let mut rss = [0i64; 4];
            for v in m.vmas.values() {
                let mut vma_pages = 0u64;
                for (a, pte) in m.pt.collect_in(v.start, v.end) {
                    if !pte.present() {
                        continue;
                    }
                    let Some(pfn) = vm_normal_page_quiet(k, v, a, pte) else {
                        continue;
                    };
                    let Some(f) = k.frames.folio_of(pfn) else {
                        continue;
                    };
                    let folio = k.frames.folio(f);
                    assert!(
                        !folio.is_freed() || uaf,
                        "{}: freed frame {pfn} mapped by a normal PTE at {a} without a use-after-free report",
                        ctx()
                    );
                    *mapped.entry(f).or_default() += 1;
                    if !folio.is_anon() {
                        file_mapped += 1;
                    }
                    rss[k.mm_counter(f) as usize] += 1;
                    vma_pages += 1;
                }
                let s = smaps(k, mm, v);
                let walks = k.has(pfnguard_mm::Fact::WalkPageVmaNoTest)
                    || !v.flags.contains(VmFlags::PFNMAP);
                assert_eq!(
                    s.rss_kb,
                    if walks { vma_pages * 4 } else { 0 },
                    "{}: smaps Rss of VMA {} ({})",
                    ctx(),
                    v.start,
                    v.flags.names()
                );
            }
            for c in [
                RssCounter::File,
                RssCounter::Anon,
                RssCounter::SwapEnts,
                RssCounter::Shmem,
            ] {
                assert_eq!(m.counter(c), rss[c as usize], "{}: mm {mi} {c:?}", ctx());
            }
        }
        assert_eq!(k.nr_file_mapped, file_mapped, "{}: NR_FILE_MAPPED", ctx());

        // Held pages.
        let mut gets: HashMap<FolioId, i32> = HashMap::new();
        let mut pins: HashMap<FolioId, i32> = HashMap::new();
        for h in &self.held {
            for &p in &h.pages {
                let Some(f) = k.frames.folio_of(p) else {
                    continue;
                };
                assert!(
                    !k.frames.folio(f).is_freed() || uaf,
                    "{}: held frame {p} freed",
                    ctx()
                );
                if h.pin {
                    if !k
                        .frames
                        .folio(f)
                        .flags
                        .contains(pfnguard_mm::frames::FolioFlags::ZERO)
                    {
                        *pins.entry(f).or_default() += 1;
                    }
                } else {
                    *gets.entry(f).or_default() += 1;
                }
            }
        }
        let owners = self.owner_refs();
        let cache: i32 = 1;
        for (f, folio) in k.frames.folios() {
            if folio.is_freed() {
                continue;
            }
            let maps = mapped.get(&f).copied().unwrap_or(0);
            assert_eq!(
                folio.mapcount,
                maps,
                "{}: mapcount of {:?}",
                ctx(),
                folio.head
            );
            let p = pins.get(&f).copied().unwrap_or(0);
            let pin_refs = if folio.is_large() {
                assert_eq!(folio.pincount, p, "{}: pincount of {:?}", ctx(), folio.head);
                p
            } else {
                p * GUP_PIN_COUNTING_BIAS
            };
            // A shmem folio outside every driver buffer belongs to a memfd's page cache.
            let owner = match owners.get(&f) {
                Some(&o) => o,
                None if folio.mapping == pfnguard_mm::frames::Mapping::Shmem => cache,
                None => 0,
            };
            let need = folio.mapcount + gets.get(&f).copied().unwrap_or(0) + pin_refs;
            assert!(
                folio.refcount >= need,
                "{}: refcount {} of {:?} < mapcount {} + gets + pins",
                ctx(),
                folio.refcount,
                folio.head,
                folio.mapcount
            );
            assert_eq!(
                folio.refcount,
                need + owner,
                "{}: refcount of {:?} ({:?}) is not mapcount + gets + pins + owner",
                ctx(),
                folio.head,
                folio.mapping
            );
        }
    }
}

/// Where failing seeds go: the source file's name with this extension, next to it.
const REGRESSIONS: FileFailurePersistence =
    FileFailurePersistence::WithSource("proptest-regressions");

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: cases(),
        failure_persistence: Some(Box::new(REGRESSIONS)),
        ..ProptestConfig::default()
    }
}

/// The properties persist their failures to the committed regressions file, and proptest reads
/// every seed recorded there.
#[test]
fn failures_persist_to_the_committed_regressions_file() {
    let cfg = config();
    let persistence = cfg.failure_persistence.as_deref();
    let file = persistence.and_then(|p| p.as_any().downcast_ref::<FileFailurePersistence>());
    assert_eq!(file, Some(&REGRESSIONS));

    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("properties.proptest-regressions");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        text.starts_with("# Seeds for failure cases proptest has generated in the past."),
        "{} lacks proptest's header",
        path.display()
    );
    let seeds = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .inspect(|l| assert!(l.starts_with("cc "), "not a seed line: {l}"))
        .count();
    let loaded = persistence
        .map(|p| p.load_persisted_failures2(Some(file!())).len())
        .unwrap_or_default();
    assert_eq!(loaded, seeds, "proptest reads every recorded seed");
}

proptest! {
    #![proptest_config(config())]

    /// Refcounts, mapcounts, pins, RSS counters, smaps, NR_FILE_MAPPED and PTE placement stay
    /// consistent through any sequence of the modeled syscalls.
    #[test]
    fn bookkeeping_invariants_hold(ops in prop::collection::vec(op(false), 1..64)) {
        for p in every_line() {
            let mut w = World::new(p);
            for (i, op) in ops.iter().enumerate() {
                let r = w.step(op);
                if let Some(Err(Fail::Bug(b))) = &r {
                    panic!("profile {}: step {i} ({op:?}) oopsed: {b}", p.version());
                }
                w.check(i, op);
            }
            // Tearing everything down leaves only owner references.
            let held = std::mem::take(&mut w.held);
            for h in held {
                if h.pin { w.k.unpin_user_pages(&h.pages) } else { w.k.put_pages(&h.pages) }
            }
            for mi in 0..w.k.mms.len() {
                exit_mmap(&mut w.k, MmId(mi as u32));
            }
            let last = Op::Release { idx: 0 };
            w.check(ops.len(), &last);
            prop_assert!(w.k.mms.iter().all(|m| m.rss == [0; 4]));
            prop_assert_eq!(w.k.nr_file_mapped, 0);
        }
    }

    /// A BUG stops the kernel: every later syscall fails with the same `Fail::Bug`.
    #[test]
    fn bug_stops_the_kernel(ops in prop::collection::vec(op(true), 1..32)) {
        for p in every_line() {
            let mut w = World::new(p);
            let mut bug: Option<Fail> = None;
            for op in &ops {
                let r = w.step(op);
                match (&bug, r) {
                    (None, Some(Err(f @ Fail::Bug(_)))) => {
                        prop_assert_eq!(w.k.oops.clone().map(Fail::Bug), Some(f.clone()));
                        bug = Some(f);
                    }
                    (None, _) => prop_assert!(w.k.oops.is_none()),
                    (Some(b), Some(r)) => prop_assert_eq!(r, Err(b.clone()), "{:?}", op),
                    (Some(_), None) => {}
                }
            }
        }
    }
}
