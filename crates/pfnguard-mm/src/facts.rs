//! Kernel facts: every behaviour of the modeled paths that changed between Linux 5.10 and 7.3,
//! keyed by the upstream release that changed it.
//!
//! A [`Fact`] is data ([`FactInfo`]: the mainline release, the commit, the stable point releases
//! that carry a backport, and the `file:function` before and after). The model reads facts
//! ([`Kernel::has`](crate::Kernel::has)), never versions: [`KernelFacts::at`] is the one place a
//! version is turned into the set of facts in force.

use std::fmt;

use crate::version::{KernelVersion, Line};

/// The part of the kernel a fact is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Area {
    /// mm/memory.c insert, fault and zap paths; page-table bits.
    Memory,
    /// mm/gup.c.
    Gup,
    /// mm/madvise.c, mm/mremap.c, mm/mlock.c.
    Madvise,
    /// fs/proc.
    Proc,
    /// Users of GUP: block, io_uring, RDMA, splice, futex.
    Consumers,
    /// virt/kvm.
    Kvm,
    /// drivers/dma-buf.
    DmaBuf,
    /// drivers/gpu/drm.
    Drm,
    /// drivers/media (videobuf2).
    Media,
}

macro_rules! facts {
    ($($(#[doc = $doc:literal])* $name:ident = $id:literal,)*) => {
        /// A behaviour change in the modeled paths. [`FactInfo`] (through [`Fact::info`]) says
        /// when and where it happened.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum Fact {
            $($(#[doc = $doc])* $name,)*
        }

        impl Fact {
            /// Every fact, in declaration order.
            pub const ALL: &'static [Fact] = &[$(Fact::$name,)*];

            /// The fact's stable id (`udmabuf-pfnmap`).
            pub const fn id(self) -> &'static str {
                match self {
                    $(Fact::$name => $id,)*
                }
            }
        }
    };
}

facts! {
    // --- 5.10 → 6.1 -----------------------------------------------------------------------------
    /// TTM maps buffer objects VM_PFNMAP with `vmf_insert_pfn_prot()` and refuses CoW mappings.
    TtmPfnmap = "ttm-pfnmap",
    /// The GEM shmem helper maps VM_PFNMAP with `vmf_insert_pfn()`.
    DrmShmemPfnmap = "drm-shmem-pfnmap",
    /// vgem uses the GEM shmem helper; before, its dma-buf mmap mapped the shmem file itself.
    VgemShmemHelper = "vgem-shmem-helper",
    /// videobuf2-dma-sg sets VM_DONTEXPAND|VM_DONTDUMP.
    Vb2DmaSgDontexpand = "vb2-dma-sg-dontexpand",
    /// VM_DENYWRITE is gone, and with it the smaps `dw` mnemonic.
    NoVmDenywrite = "no-vm-denywrite",
    /// VM_UFFD_MINOR and its smaps mnemonic `ui`.
    SmapsUffdMinor = "smaps-uffd-minor",
    /// FOLL_LONGTERM pins refuse ZONE_MOVABLE as well as CMA pages: GUP-fast falls back, the
    /// slow path migrates them (and retries on pages it cannot isolate).
    GupLongtermMovable = "gup-longterm-movable",
    /// MADV_POPULATE_READ and MADV_POPULATE_WRITE.
    MadvPopulate = "madv-populate",
    /// `__get_user_pages()` stops with -EEXIST at a PTE without page when pages were asked
    /// for; `follow_pfn_pte()` no longer refuses FOLL_GET with -EFAULT.
    GupPfnPteEexistBails = "gup-pfn-pte-eexist-bails",
    /// RDMA `ib_umem_get()` adds FOLL_WRITE only for writable registrations, never FOLL_FORCE.
    UmemNoForce = "umem-no-force",

    // --- 6.1 → 6.12 -----------------------------------------------------------------------------
    /// `is_valid_gup_args()`: the pin_user_pages family returns 0 on invalid flags.
    GupValidArgs = "gup-valid-args",
    /// `gup_fast_fallback()` returns -EOVERFLOW on a wrapping range and checks TASK_SIZE_MAX.
    GupFastOverflowChecked = "gup-fast-overflow-checked",
    /// KVM turns -EINTR from the slow GUP into KVM_PFN_ERR_SIGPENDING.
    KvmSigpending = "kvm-sigpending",
    /// O_DIRECT bios take user pages with FOLL_PIN (`iov_iter_extract_pages()`).
    OdirectPin = "odirect-pin",
    /// `check_vma_flags()` refuses FOLL_LONGTERM|FOLL_WRITE on file mappings that need dirty
    /// tracking (`writable_file_mapping_allowed()`).
    GupWritableFileMapping = "gup-writable-file-mapping",
    /// GUP-fast checks `gup_fast_folio_allowed()` instead of only `page_is_secretmem()`.
    GupFastFolioAllowed = "gup-fast-folio-allowed",
    /// `pin_user_pages_fast()` returns -EINVAL again on invalid flags (the slow pin entry
    /// points keep returning 0).
    GupPinFastInvalidEinval = "gup-pin-fast-invalid-einval",
    /// io_uring buffer registration pins with `pin_user_pages_fast()`.
    IoUringPinFast = "io-uring-pin-fast",
    /// io_uring leaves the file-backed check to GUP: no -EOPNOTSUPP for non-shmem files.
    IoUringNoFileCheck = "io-uring-no-file-check",
    /// GUP-fast bails on every PROT_NONE PTE.
    GupFastProtnoneBails = "gup-fast-protnone-bails",
    /// `populate_vma_page_range()` refuses inaccessible VMAs and forces only private writable
    /// ones.
    PopulateRefusesInaccessible = "populate-refuses-inaccessible",
    /// `do_wp_page()` takes the shared path for VM_SHARED|VM_MAYSHARE.
    WpSharedMayshare = "wp-shared-mayshare",
    /// x86 `_PAGE_BIT_DEVMAP` moves from bit 58 to bit 57 (shadow stacks take 58).
    DevmapBit57 = "devmap-bit-57",
    /// smaps mnemonic `ss` (VM_SHADOW_STACK).
    SmapsShadowStack = "smaps-shadow-stack",
    /// smaps mnemonic `lf` (VM_LOCKONFAULT).
    SmapsLockonfault = "smaps-lockonfault",
    /// `drm_gem_prime_handle_to_fd()` is used when a driver has no `prime_handle_to_fd`, and
    /// `drm_gem_dmabuf_mmap()` no longer needs `gem_prime_mmap`.
    DrmGenericPrime = "drm-generic-prime",
    /// The CMA heap maps VM_IO|VM_PFNMAP with `vmf_insert_pfn()`.
    CmaHeapPfnmap = "cma-heap-pfnmap",
    /// hugetlb folios are a page type, refused by `validate_page_before_insert()`.
    HugetlbPageType = "hugetlb-page-type",
    /// `validate_page_before_insert()` checks the page count (moved from `vm_insert_page()`).
    InsertCountInValidate = "insert-count-in-validate",
    /// The zero page is inserted as a special PTE (`vm_mixed_zeropage_allowed()`), and
    /// `vm_normal_page()` returns no page for it in VM_MIXEDMAP VMAs.
    InsertZeropageSpecial = "insert-zeropage-special",
    /// `__vm_insert_mixed()` returns VM_FAULT_SIGBUS instead of BUG_ON when `vm_mixed_ok()`
    /// fails.
    MixedOkSigbus = "mixed-ok-sigbus",
    /// `drm_gem_shmem_mmap()` refuses COW (MAP_PRIVATE) mappings with -EINVAL.
    DrmShmemRefusesCow = "drm-shmem-refuses-cow",
    /// smaps mnemonic `sl` (VM_SEALED).
    SmapsSealed = "smaps-sealed",
    /// smaps mnemonic `dp` (VM_DROPPABLE).
    SmapsDroppable = "smaps-droppable",
    /// udmabuf maps VM_PFNMAP with `vmf_insert_pfn()`.
    UdmabufPfnmap = "udmabuf-pfnmap",
    /// KVM resolves VM_IO|VM_PFNMAP addresses with `follow_pfnmap_start()`.
    KvmFollowPfnmap = "kvm-follow-pfnmap",
    /// `walk_page_vma()` no longer applies `walk_page_test()`: smaps walks VM_PFNMAP VMAs.
    WalkPageVmaNoTest = "walk-page-vma-no-test",

    // --- 6.12 → 7.3 -----------------------------------------------------------------------------
    /// KVM takes no page reference for pfns it finds in VM_IO|VM_PFNMAP page tables
    /// (`kvm_resolve_pfn()`), so refcount-0 pages no longer fail.
    KvmPfnmapNoRefs = "kvm-pfnmap-no-refs",
    /// udmabuf's `->fault` inserts every PTE of the VMA on the first fault.
    UdmabufPrefault = "udmabuf-prefault",
    /// bochs manages its buffers with the GEM shmem helper instead of drm_gem_vram (TTM).
    BochsGemShmem = "bochs-gem-shmem",
    /// x86 `track_pfn_copy()` at fork: in a COW VM_PAT mapping whose first page is an anon
    /// folio (written after `remap_pfn_range()`), `follow_phys()` no longer returns the anon
    /// page: `get_pat_info()` fails, `dup_mmap()` fails and `fork()` is -ENOMEM.
    PatCowForkRefused = "pat-cow-fork-refused",
    /// x86 PAT tracking of whole-VMA `remap_pfn_range()` lives in `vma->pfnmap_track_ctx`:
    /// VM_PAT (smaps `ar`) is gone.
    PfnmapTrackCtx = "pfnmap-track-ctx",
    /// `alloc_hugetlb_folio_reserve()` returns NULL when no huge page is reserved.
    HugetlbReserveGuard = "hugetlb-reserve-guard",
    /// `memfd_alloc_folio()` reserves the huge page (`hugetlb_reserve_pages()`) before it
    /// allocates one.
    MemfdHugetlbReserve = "memfd-hugetlb-reserve",
    /// The system heap maps one `remap_pfn_range()` per scatterlist chunk (was one per page).
    SystemHeapChunkRemap = "system-heap-chunk-remap",
    /// The GEM shmem helper's `vm_ops` have `.pfn_mkwrite`: write-notify, read-only PTEs first.
    DrmShmemPfnMkwrite = "drm-shmem-pfn-mkwrite",
    /// `__vm_map_pages()` inserts through `vm_insert_pages()`, whose checks on a VMA without
    /// VM_MIXEDMAP are `VM_WARN_ON_ONCE` (CONFIG_DEBUG_VM only) instead of `BUG_ON`.
    VmMapPagesBatched = "vm-map-pages-batched",
    /// `init_pseudo()` sets SB_I_NOEXEC|SB_I_NODEV: mappings of pseudo-filesystem files (dma-buf)
    /// lose VM_MAYEXEC.
    PseudoFsNoexec = "pseudo-fs-noexec",
    /// udmabuf's `size_limit_mb` defaults to INT_MAX (was 64): UDMABUF_CREATE beyond 64 MiB works.
    UdmabufSizeLimitIntMax = "udmabuf-size-limit-int-max",
    /// `gup_fast_folio_allowed()` lets folios with a NULL mapping through GUP-fast unless the
    /// pin is FOLL_PIN|FOLL_LONGTERM|FOLL_WRITE.
    GupFastNullMapping = "gup-fast-null-mapping",
    /// `generic_access_phys()` refuses online RAM that is not reserved, one page at a time.
    GenericAccessPhysRejectsRam = "generic-access-phys-rejects-ram",
}

/// When and where a fact happened.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct FactInfo {
    /// The fact.
    #[serde(serialize_with = "ser_fact")]
    pub fact: Fact,
    /// One line: what changed.
    pub summary: &'static str,
    /// The part of the kernel.
    pub area: Area,
    /// The first mainline release that has it.
    #[serde(serialize_with = "ser_version")]
    pub since: KernelVersion,
    /// The mainline commit (12 hex digits and subject), when known.
    pub commit: Option<&'static str>,
    /// Stable point releases of older lines that carry a backport.
    #[serde(serialize_with = "ser_versions")]
    pub backports: &'static [KernelVersion],
    /// `file:function` before the change.
    pub before: &'static str,
    /// `file:function` after it.
    pub after: &'static str,
    /// How the version was established.
    pub evidence: &'static str,
}

fn ser_fact<S: serde::Serializer>(f: &Fact, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(f.id())
}
fn ser_version<S: serde::Serializer>(v: &KernelVersion, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}
fn ser_versions<S: serde::Serializer>(v: &[KernelVersion], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|v| v.to_string()))
}

impl fmt::Display for Fact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for Fact {
    type Err = String;
    fn from_str(s: &str) -> Result<Fact, String> {
        Fact::ALL
            .iter()
            .copied()
            .find(|f| f.id() == s)
            .ok_or_else(|| format!("unknown kernel fact `{s}`"))
    }
}

impl Fact {
    /// When and where it happened.
    pub fn info(self) -> &'static FactInfo {
        // The table is checked to hold every fact once, in declaration order (tests below).
        &crate::fact_table::FACTS[self as usize]
    }

    /// Whether the fact is in force at `v`: `v` is at or after the mainline release, or a point
    /// release of a line that carries a backport.
    pub fn in_force_at(self, v: KernelVersion) -> bool {
        let info = self.info();
        v >= info.since
            || info
                .backports
                .iter()
                .any(|b| b.line() == v.line() && v.patch >= b.patch)
    }
}

/// The facts in force at one kernel version. Two are equal when the same facts are in force,
/// whatever versions they were resolved at.
#[derive(Clone, Copy)]
pub struct KernelFacts {
    version: KernelVersion,
    bits: u128,
}

const _: () = assert!(
    Fact::ALL.len() <= 128,
    "KernelFacts holds at most 128 facts"
);

impl KernelFacts {
    /// The facts in force at `v`.
    pub fn at(v: KernelVersion) -> KernelFacts {
        let bits = Fact::ALL
            .iter()
            .filter(|f| f.in_force_at(v))
            .fold(0u128, |b, f| b | 1u128 << (*f as u8));
        KernelFacts { version: v, bits }
    }

    /// The facts in force at a version written `6.1.192` (or `6.1` for the newest 6.1.y).
    /// Panics on anything else: for fixed versions in tests and examples.
    pub fn of(version: &str) -> KernelFacts {
        match version.parse() {
            Ok(v) => Self::at(v),
            Err(e) => panic!("KernelFacts::of({version:?}): {e}"),
        }
    }

    /// The facts in force at the newest point release of `line`.
    pub fn line(line: Line) -> KernelFacts {
        Self::at(line.newest())
    }

    /// Whether `fact` is in force.
    #[inline]
    pub fn has(&self, fact: Fact) -> bool {
        self.bits & (1u128 << (fact as u8)) != 0
    }

    /// The same facts with `fact` set or cleared: to ask what one fact changes.
    pub fn with(mut self, fact: Fact, on: bool) -> KernelFacts {
        if on {
            self.bits |= 1u128 << (fact as u8);
        } else {
            self.bits &= !(1u128 << (fact as u8));
        }
        self
    }

    /// The version these facts were resolved for.
    pub fn version(&self) -> KernelVersion {
        self.version
    }

    /// The facts in force, in declaration order.
    pub fn iter(&self) -> impl Iterator<Item = Fact> + '_ {
        Fact::ALL.iter().copied().filter(|f| self.has(*f))
    }

    /// Facts in force in exactly one of `self` and `other`.
    pub fn differences(&self, other: &KernelFacts) -> Vec<Fact> {
        Fact::ALL
            .iter()
            .copied()
            .filter(|f| self.has(*f) != other.has(*f))
            .collect()
    }
}

impl PartialEq for KernelFacts {
    fn eq(&self, other: &Self) -> bool {
        self.bits == other.bits
    }
}
impl Eq for KernelFacts {}
impl std::hash::Hash for KernelFacts {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.bits.hash(h);
    }
}

impl fmt::Debug for KernelFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelFacts")
            .field("version", &self.version.to_string())
            .field("facts", &self.iter().map(Fact::id).collect::<Vec<_>>())
            .finish()
    }
}

/// The facts of every modeled line at its newest point release, oldest first.
pub fn every_line() -> impl Iterator<Item = KernelFacts> {
    crate::version::LINES.iter().map(|l| KernelFacts::line(*l))
}

/// The facts either side of a fact's mainline change: the mainline release of the line before,
/// and the mainline release that has it.
pub fn either_side(fact: Fact) -> (KernelFacts, KernelFacts) {
    let since = fact.info().since;
    let before = crate::version::previous_line(since.line())
        .map(|l| KernelVersion::new(l.major, l.minor, 0))
        .unwrap_or(since);
    (KernelFacts::at(before), KernelFacts::at(since))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fact_table::FACTS;
    use crate::version::{FIRST_LINE, LINES};

    #[test]
    fn the_table_holds_every_fact_once_in_order() {
        assert_eq!(FACTS.len(), Fact::ALL.len());
        for (i, f) in Fact::ALL.iter().enumerate() {
            assert_eq!(FACTS[i].fact, *f, "FACTS[{i}]");
            assert_eq!(f.id().parse::<Fact>(), Ok(*f));
        }
    }

    #[test]
    fn every_fact_changed_inside_the_modeled_range_and_cites_both_sides() {
        for info in FACTS.iter() {
            let f = info.fact;
            assert!(
                info.since > FIRST_LINE.newest(),
                "{f} is not a change after 5.10"
            );
            assert!(LINES.contains(&info.since.line()), "{f}: {}", info.since);
            assert_eq!(info.since.patch, 0, "{f}: mainline releases are .0");
            assert!(info.before.contains(':') && info.after.contains(':'), "{f}");
            assert!(!info.summary.is_empty() && !info.evidence.is_empty(), "{f}");
            for b in info.backports {
                assert!(b.line() < info.since.line() && b.patch > 0, "{f}: {b}");
            }
            let (before, after) = either_side(f);
            assert!(!before.has(f) && after.has(f), "{f}");
        }
    }

    #[test]
    fn backports_apply_from_their_point_release() {
        let Some(info) = FACTS.iter().find(|i| !i.backports.is_empty()) else {
            return;
        };
        let b = info.backports[0];
        assert!(KernelFacts::at(b).has(info.fact));
        assert!(!KernelFacts::at(KernelVersion::new(b.major, b.minor, b.patch - 1)).has(info.fact));
        assert!(KernelFacts::line(b.line()).has(info.fact));
    }
}
