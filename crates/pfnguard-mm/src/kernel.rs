//! The modeled machine: physical memory, processes (`struct mm_struct`), the kernel log.

use std::collections::{BTreeMap, HashSet};

use crate::errno::Errno;
use crate::facts::{Fact, KernelFacts};
use crate::frames::{FolioId, Frames, GUP_PIN_COUNTING_BIAS};
use crate::outcome::{Bug, Event, Fail, KResult};
use crate::pagetable::PageTable;
use crate::shared::Shared;
use crate::trace::Trace;
use crate::types::{Pfn, VirtAddr, PAGE_SHIFT};
use crate::vma::{Vma, VmaId};
use crate::vma_tree::VmaTree;

/// Index of an mm (a process address space) in the [`Kernel`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct MmId(pub u32);

/// `mm->rss_stat` counters (include/linux/mm_types_task.h `enum { MM_FILEPAGES, ... }`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum RssCounter {
    /// MM_FILEPAGES: file-backed, not swap-backed.
    File = 0,
    /// MM_ANONPAGES.
    Anon = 1,
    /// MM_SWAPENTS.
    SwapEnts = 2,
    /// MM_SHMEMPAGES.
    Shmem = 3,
}

/// State of `mm->mmap_lock` during a modeled call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub enum MmapLock {
    /// Not held.
    #[default]
    Unlocked,
    /// Held for reading (page faults, GUP).
    Read,
    /// Held for writing (mmap, munmap, mprotect, mremap).
    Write,
}

/// `struct mm_struct`: one address space.
#[derive(Debug, Clone)]
pub struct Mm {
    /// VMAs by start address ([`Shared`] between clones of the kernel until one changes them).
    pub vmas: Shared<VmaTree>,
    /// Page tables.
    pub pt: PageTable,
    /// RSS counters, indexed by [`RssCounter`].
    pub rss: [i64; 4],
    /// `mm->locked_vm` in pages.
    pub locked_vm: u64,
    /// `mm->pinned_vm` in pages.
    pub pinned_vm: u64,
    /// MMF_HAS_PINNED.
    pub has_pinned: bool,
    /// `mm->write_protect_seq` (odd while fork copies page tables).
    pub write_protect_seq: u32,
    /// `mm->mmap_lock`.
    pub lock: MmapLock,
    /// RLIMIT_MEMLOCK in pages.
    pub rlimit_memlock: u64,
    /// Where the next mmap without a hint goes.
    pub(crate) next_addr: VirtAddr,
}

/// Base of the model's mmap area.
pub const MMAP_BASE: u64 = 0x7f00_0000_0000;

impl Default for Mm {
    fn default() -> Self {
        Mm {
            vmas: Shared::default(),
            pt: PageTable::new(),
            rss: [0; 4],
            locked_vm: 0,
            pinned_vm: 0,
            has_pinned: false,
            write_protect_seq: 0,
            lock: MmapLock::Unlocked,
            rlimit_memlock: (8 << 20) >> PAGE_SHIFT,
            next_addr: VirtAddr(MMAP_BASE),
        }
    }
}

impl Mm {
    /// Where the next mmap without a hint goes (`get_unmapped_area()` of the model).
    pub fn next_addr(&self) -> VirtAddr {
        self.next_addr
    }
    /// `vma_lookup()`: the VMA containing `addr`.
    pub fn vma_at(&self, addr: VirtAddr) -> Option<&Vma> {
        self.vmas
            .range(..=addr)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| v.contains(addr))
    }
    /// The VMA containing `addr`, mutably.
    pub fn vma_at_mut(&mut self, addr: VirtAddr) -> Option<&mut Vma> {
        self.vmas
            .range_mut(..=addr)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| v.contains(addr))
    }
    /// `get_mm_counter()`.
    pub fn counter(&self, c: RssCounter) -> i64 {
        self.rss[c as usize]
    }
    /// `get_mm_rss()`: FILE + ANON + SHMEM.
    pub fn total_rss(&self) -> i64 {
        self.rss[RssCounter::File as usize]
            + self.rss[RssCounter::Anon as usize]
            + self.rss[RssCounter::Shmem as usize]
    }
}

/// A set of pages a kernel subsystem keeps pinned or referenced after the syscall returned
/// (io_uring registered buffers, an RDMA MR, a pipe buffer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldPages {
    /// Who holds them.
    pub holder: &'static str,
    /// FOLL_PIN (unpin to release) rather than FOLL_GET (put_page).
    pub pinned: bool,
    /// The frames.
    pub pages: Vec<Pfn>,
}

/// The modeled kernel: the facts of one version, one physical memory, any number of address
/// spaces.
///
/// A clone shares its components with the original ([`Shared`]) until either writes one: an
/// explorer's clone-and-step copies only what the step touches.
#[derive(Debug, Clone)]
pub struct Kernel {
    /// The facts in force: what this kernel version does where versions differ.
    pub facts: KernelFacts,
    /// Build options.
    pub config: Config,
    /// Physical memory.
    pub frames: Frames,
    /// Address spaces (each one's VMA tree and page tables are [`Shared`] in turn).
    pub mms: Shared<[Mm]>,
    /// Kernel log: warnings, bad page maps, use-after-free reports.
    pub events: Shared<Vec<Event>>,
    /// Trace of the modeled steps (off unless enabled).
    pub trace: Trace,
    /// The BUG that stopped this kernel, if any.
    pub oops: Option<Bug>,
    /// Node counter NR_FILE_MAPPED (pages).
    pub nr_file_mapped: i64,
    /// Pages held by kernel subsystems.
    pub held: Vec<HeldPages>,
    /// The default hugetlb hstate's reservation count.
    pub hugetlb: crate::hugetlb::Hstate,
    /// How many `struct page`s GUP has handed to its callers, with a reference or a pin
    /// (`get_user_pages*()`, `pin_user_pages*()`, KVM's lookups): what the contract says must
    /// never happen for a dma-buf mapping.
    pub gup_returned: u64,
    /// Number of times a modeled retry loop may spin before the model treats it as a livelock
    /// ended by a fatal signal.
    pub livelock_limit: u32,
    /// The last `struct address_space` identity handed out ([`Kernel::new_address_space`]).
    address_spaces: u64,
    /// The kernel's objects few steps change (WARN_ONCE flags, static atomics, shmem page
    /// caches, released dma-bufs, TTM placements), shared between clones as one.
    pub objects: Shared<Objects>,
}

/// The kernel's objects few steps change, kept together so that a clone of the [`Kernel`]
/// shares them with one reference count.
#[derive(Debug, Clone, Default)]
pub struct Objects {
    /// The `WARN_ON_ONCE()` sites that fired (each one's `__warned` flag).
    warned: HashSet<&'static str>,
    /// The `static atomic64_t` counters of kernel code (e.g. drivers/dma-buf/dma-buf.c
    /// `dmabuf_inode`), by `file:name`: state of this kernel, never shared between models.
    atomics: BTreeMap<&'static str, u64>,
    /// The page cache (and hugetlbfs reserve map) of every shmem inode this kernel has used,
    /// by [`ShmemInode::id`](crate::shmem::ShmemInode::id): mm/shmem.c keeps it in the inode's
    /// `i_mapping->i_pages`, state of this kernel; the `ShmemInode` is only its description.
    pub shmem: BTreeMap<u64, crate::shmem::ShmemCache>,
    /// The inode numbers of the dma-bufs whose drivers/dma-buf/dma-buf.c:dma_buf_release ran
    /// (the dentry's `d_release`): those buffers are gone.
    pub released_dma_bufs: std::collections::BTreeSet<u64>,
    /// Where each TTM buffer object's contents are (`bo->resource->mem_type` and `bo->ttm`,
    /// drivers/gpu/drm/ttm/ttm_bo.c), by the BO's identity (its device's `dev_mapping`).
    pub bo_places: BTreeMap<u64, BoPlace>,
}

/// Where a TTM buffer object's contents are: `bo->resource->mem_type` and `bo->ttm`
/// (drivers/gpu/drm/ttm/ttm_bo.c, drivers/gpu/drm/ttm/ttm_tt.c).
#[derive(Debug, Clone)]
pub enum BoPlace {
    /// In VRAM: device frames without `struct page` (amdgpu).
    Vram(Vec<Pfn>),
    /// In a populated `ttm_tt` (TTM_PL_SYSTEM or TT): pool pages, one non-compound block
    /// (`ttm_pool_alloc()`).
    Tt(Vec<Pfn>),
    /// Swapped out: the contents are in `ttm->swap_storage`, a shmem file
    /// (drivers/gpu/drm/ttm/ttm_tt.c:ttm_tt_swapout), and nothing is populated.
    Swapped(std::sync::Arc<crate::shmem::ShmemInode>),
    /// The BO is gone (`ttm_bo_release()`).
    Gone,
}

impl Kernel {
    /// A booted kernel with one empty process (`MmId(0)`).
    pub fn new(facts: KernelFacts, config: Config) -> Kernel {
        Kernel {
            facts,
            config,
            frames: Frames::new(),
            mms: Shared::from(vec![Mm::default()]),
            events: Shared::default(),
            trace: Trace::default(),
            oops: None,
            nr_file_mapped: 0,
            held: Vec::new(),
            hugetlb: crate::hugetlb::Hstate::default(),
            gup_returned: 0,
            livelock_limit: 8,
            address_spaces: 0,
            objects: Shared::default(),
        }
    }

    /// A new `struct address_space`: the `i_data` every inode embeds and `i_mapping` points at
    /// (fs/inode.c:inode_init_always → `mapping->host = inode`), as the identity a file's
    /// [`AddressSpace::host`](crate::vma::AddressSpace::host) carries. Unique within this
    /// kernel, never reused.
    pub fn new_address_space(&mut self) -> u64 {
        self.address_spaces += 1;
        self.address_spaces
    }

    /// The first process.
    pub const INIT_MM: MmId = MmId(0);

    /// Whether `fact` is in force in this kernel.
    #[inline]
    pub fn has(&self, fact: Fact) -> bool {
        self.facts.has(fact)
    }

    /// `atomic64_inc_return(&var)` (include/linux/atomic/atomic-instrumented.h) on one of this
    /// kernel's `static atomic64_t` counters, named `file:variable`; every counter starts at 0.
    pub fn atomic64_inc_return(&mut self, var: &'static str) -> u64 {
        let v = self.objects.atomics.entry(var).or_insert(0);
        *v += 1;
        *v
    }

    /// The mm.
    pub fn mm(&self, id: MmId) -> &Mm {
        &self.mms[id.0 as usize]
    }
    /// The mm, mutably.
    pub fn mm_mut(&mut self, id: MmId) -> &mut Mm {
        &mut self.mms[id.0 as usize]
    }

    /// The VMA, if it still exists.
    pub fn vma(&self, id: VmaId) -> Option<&Vma> {
        self.mm(id.mm).vmas.get(&id.start)
    }
    /// The VMA, mutably.
    pub fn vma_mut(&mut self, id: VmaId) -> Option<&mut Vma> {
        self.mm_mut(id.mm).vmas.get_mut(&id.start)
    }
    /// The VMA, or -EFAULT when it vanished.
    pub(crate) fn vma_or_fault(&self, id: VmaId) -> KResult<&Vma> {
        self.vma(id).ok_or(Fail::Errno(Errno::EFAULT))
    }
    /// The VMA containing `addr` in `mm`, as an id.
    pub fn find_vma(&self, mm: MmId, addr: VirtAddr) -> Option<VmaId> {
        self.mm(mm)
            .vma_at(addr)
            .map(|v| VmaId { mm, start: v.start })
    }

    /// Fail if the kernel already oopsed.
    #[inline]
    pub fn alive(&self) -> KResult<()> {
        match &self.oops {
            Some(b) => Err(Fail::Bug(b.clone())),
            None => Ok(()),
        }
    }

    /// `BUG_ON(cond)`: stop the kernel.
    pub fn bug(&mut self, assertion: &'static str, function: &'static str) -> Fail {
        let b = Bug {
            assertion,
            function,
        };
        crate::trace!(self, function, "BUG_ON({assertion}) fires: kernel oops");
        self.oops = Some(b.clone());
        Fail::Bug(b)
    }

    /// `WARN_ON_ONCE(cond)` at `site`: recorded the first time only.
    pub fn warn_once(&mut self, site: &'static str, condition: impl Into<String>) {
        if !self.objects.warned.contains(site) && self.objects.warned.insert(site) {
            let condition = condition.into();
            crate::trace!(self, site, "WARN_ON_ONCE({condition})");
            self.events.push(Event::Warn { site, condition });
        }
    }

    /// `WARN_ONCE(cond, ...)` at `site` in a static function the compiler inlines into its
    /// caller `logged_as`: the once-flag is the site's own, but the kernel log's `WARNING:` line
    /// names the function the code ended up in (lib/bug.c:`__report_bug` → kernel/panic.c:`__warn`
    /// prints the bug address with `%pS`), so the recorded event carries `logged_as`.
    pub fn warn_once_inlined(
        &mut self,
        site: &'static str,
        logged_as: &'static str,
        condition: impl Into<String>,
    ) {
        if !self.objects.warned.contains(site) && self.objects.warned.insert(site) {
            let condition = condition.into();
            crate::trace!(
                self,
                site,
                "WARN_ONCE({condition}), logged at {logged_as} (inlined)"
            );
            self.events.push(Event::Warn {
                site: logged_as,
                condition,
            });
        }
    }

    /// `WARN_ON(cond)` at `site`: recorded every time.
    pub fn warn(&mut self, site: &'static str, condition: impl Into<String>) {
        let condition = condition.into();
        crate::trace!(self, site, "WARN_ON({condition})");
        self.events.push(Event::Warn { site, condition });
    }

    /// `print_bad_pte()`: "BUG: Bad page map", TAINT_BAD_PAGE.
    pub fn bad_pte(&mut self, addr: VirtAddr, site: &'static str) {
        crate::trace!(
            self,
            "mm/memory.c:print_bad_pte",
            "BUG: Bad page map at {addr}"
        );
        self.events.push(Event::BadPageMap { addr, site });
    }

    /// The warnings recorded so far, as strings.
    pub fn warnings(&self) -> Vec<String> {
        self.events.iter().map(|e| e.to_string()).collect()
    }

    /// The `file:function` of every WARN recorded, in order: what the kernel log's `WARNING:`
    /// lines name (lib/bug.c:`__warn`).
    pub fn warn_sites(&self) -> Vec<&'static str> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Warn { site, .. } => Some(*site),
                _ => None,
            })
            .collect()
    }

    /// Whether a use-after-free was reported.
    pub fn use_after_free_reported(&self) -> bool {
        self.events
            .iter()
            .any(|e| matches!(e, Event::UseAfterFree { .. }))
    }

    /// Add to an mm's RSS counter (`add_mm_counter()`).
    #[inline]
    pub(crate) fn add_rss(&mut self, mm: MmId, c: RssCounter, n: i64) {
        self.mms[mm.0 as usize].rss[c as usize] += n;
    }

    /// `mm_counter_file()` / `mm_counter()` of a folio.
    pub fn mm_counter(&self, f: FolioId) -> RssCounter {
        let folio = self.frames.folio(f);
        if folio.is_anon() {
            RssCounter::Anon
        } else if folio.is_swapbacked() {
            RssCounter::Shmem
        } else {
            RssCounter::File
        }
    }

    /// `folio_get()` / `get_page()`.
    #[inline]
    pub fn folio_get(&mut self, f: FolioId, refs: i32) {
        self.frames.folio_mut(f).refcount += refs;
    }

    /// `folio_put_refs()`: drop references; at zero the folio goes back to the allocator. A
    /// folio freed while still mapped by a PTE or pinned is reported as a use-after-free.
    pub fn folio_put(&mut self, f: FolioId, refs: i32) {
        let folio = self.frames.folio_mut(f);
        folio.refcount -= refs;
        if folio.refcount <= 0 && !folio.is_freed() {
            folio.flags |= crate::frames::FolioFlags::FREED;
            let (head, mapcount, pins) = (folio.head, folio.mapcount, folio.pincount);
            if mapcount > 0 || pins > 0 {
                self.events.push(Event::UseAfterFree {
                    pfn: head,
                    holder: format!("{mapcount} PTE mapping(s) and {pins} pin(s) remain"),
                });
            }
        }
    }

    /// `unpin_user_page()` for one frame (mm/gup.c:gup_put_folio with FOLL_PIN).
    pub fn unpin_page(&mut self, pfn: Pfn) {
        let Some(f) = self.frames.folio_of(pfn) else {
            return;
        };
        let folio = self.frames.folio(f);
        if folio.flags.contains(crate::frames::FolioFlags::ZERO) {
            return;
        }
        if folio.is_large() {
            self.frames.folio_mut(f).pincount -= 1;
            self.folio_put(f, 1);
        } else {
            self.folio_put(f, GUP_PIN_COUNTING_BIAS);
        }
    }

    /// `unpin_user_pages()`.
    pub fn unpin_user_pages(&mut self, pages: &[Pfn]) {
        for &p in pages {
            self.unpin_page(p);
        }
    }

    /// `put_page()` for frames taken with FOLL_GET.
    pub fn put_pages(&mut self, pages: &[Pfn]) {
        for &p in pages {
            if let Some(f) = self.frames.folio_of(p) {
                self.folio_put(f, 1);
            }
        }
    }

    /// Release everything a holder keeps (io_uring unregister, ib_dereg_mr, pipe drain).
    pub fn release_held(&mut self, holder: &str) {
        let (drop, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
            .into_iter()
            .partition(|h| h.holder == holder);
        self.held = keep;
        for h in drop {
            if h.pinned {
                self.unpin_user_pages(&h.pages);
            } else {
                self.put_pages(&h.pages);
            }
        }
    }

    /// Create a new empty address space.
    pub fn new_mm(&mut self) -> MmId {
        self.mms.push(Mm::default());
        MmId(self.mms.len() as u32 - 1)
    }

    /// Whether `self` is a clone of `before` that no path changed since: every component is
    /// still the copy it shares with `before` ([`Shared::ptr_eq`]) and every plain field is
    /// equal. The trace (a record of the path, not state) is not compared. A cheap check:
    /// `false` means the two may differ.
    pub fn unchanged_from(&self, before: &Kernel) -> bool {
        self.frames.unchanged_from(&before.frames)
            && Shared::ptr_eq(&self.mms, &before.mms)
            && Shared::ptr_eq(&self.events, &before.events)
            && Shared::ptr_eq(&self.objects, &before.objects)
            && self.facts == before.facts
            && self.facts.version() == before.facts.version()
            && self.config == before.config
            && self.oops == before.oops
            && self.nr_file_mapped == before.nr_file_mapped
            && self.held == before.held
            && self.hugetlb == before.hugetlb
            && self.gup_returned == before.gup_returned
            && self.livelock_limit == before.livelock_limit
            && self.address_spaces == before.address_spaces
    }

    /// Model memory in use: page tables and frame records, in bytes (an estimate for the
    /// memory budget; the benchmarks measure real allocations).
    pub fn footprint_bytes(&self) -> usize {
        let pt: usize = self.mms.iter().map(|m| m.pt.footprint_bytes()).sum();
        pt + self.frames.len() * (std::mem::size_of::<crate::frames::Folio>() + 4)
    }
}

/// Build-time options of the modeled kernel that are not version differences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Config {
    /// CONFIG_DEBUG_VM: turns on the `VM_WARN_ON*` / `VM_BUG_ON*` checks.
    pub debug_vm: bool,
    /// CONFIG_ARCH_HAS_PTE_SPECIAL (x86: y). Off selects the generic `vm_normal_page()` rules
    /// and the refcounted `vmf_insert_mixed()` path.
    pub arch_has_pte_special: bool,
    /// CONFIG_SECRETMEM (Debian: y).
    pub secretmem: bool,
    /// CONFIG_X86_PAT (Debian: y): whole-VMA `remap_pfn_range()` sets VM_PAT.
    pub x86_pat: bool,
    /// The task has CAP_SYS_ADMIN (pagemap shows pfns; L1TF `pfn_modify_allowed()`).
    pub cap_sys_admin: bool,
    /// The task has CAP_IPC_LOCK (RLIMIT_MEMLOCK does not apply to mlock and MAP_LOCKED).
    pub cap_ipc_lock: bool,
    /// The VM debug check Jason Gunthorpe proposed (in no tree): every path that installs a
    /// `struct page` PTE refuses a VM_PFNMAP or VM_IO VMA with WARN_ON_ONCE and -EINVAL
    /// (VM_FAULT_SIGBUS on fault paths).
    pub pfnmap_insert_check: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            debug_vm: false,
            arch_has_pte_special: true,
            secretmem: true,
            x86_pat: true,
            cap_sys_admin: true,
            cap_ipc_lock: true,
            pfnmap_insert_check: false,
        }
    }
}
