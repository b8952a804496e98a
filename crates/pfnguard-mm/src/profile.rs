//! Kernel profiles: every behaviour that differs between the modeled kernels, as data.
//!
//! Functions never compare version numbers; they read a named field of the
//! [`KernelProfile`] in force. Adding a kernel means adding a profile value.

/// What `__vm_insert_mixed()` does when `vm_mixed_ok()` fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum MixedNotOk {
    /// 6.1: `BUG_ON(!vm_mixed_ok(vma, pfn))` (mm/memory.c:__vm_insert_mixed).
    Bug,
    /// 6.12: `return VM_FAULT_SIGBUS`.
    Sigbus,
}

/// The folio test the GUP fast path applies after grabbing a folio.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum GupFastFolioCheck {
    /// 6.1 `gup_pte_range()`: only `page_is_secretmem()` (a NULL mapping is not secretmem).
    PageIsSecretmem,
    /// 6.12 `gup_fast_folio_allowed()`: with SECRETMEM, any order-0 folio whose mapping is
    /// NULL falls back to the slow path; LONGTERM|WRITE pins of non-shmem files are refused.
    FolioAllowed,
}

/// How KVM resolves a host virtual address in a VM_IO|VM_PFNMAP VMA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum KvmRemapped {
    /// 6.1 `hva_to_pfn_remapped()` → `follow_pte()` (no VMA flag test), `kvm_try_get_pfn()`.
    FollowPte,
    /// 6.12 `hva_to_pfn_remapped()` → `follow_pfnmap_start()`, `kvm_try_get_pfn()`.
    FollowPfnmapStart,
}

/// A modeled kernel: named behaviours and the facts of its Debian amd64 build.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KernelProfile {
    /// Short name used on the command line (`6.1`, `6.12`).
    pub name: &'static str,
    /// The source release the profile was read from.
    pub release: &'static str,

    // --- page tables -------------------------------------------------------------------------
    /// Bit of `_PAGE_DEVMAP` (arch/x86/include/asm/pgtable_types.h: 58 in 6.1, 57 in 6.12).
    pub pte_devmap_bit: u8,

    // --- insert paths ------------------------------------------------------------------------
    /// `vm_insert_page()` itself rejects `page_count(page) == 0` with -EINVAL (6.1); 6.12 does
    /// it in `validate_page_before_insert()`. The outcome is the same; the trace differs.
    pub insert_page_count_check_in_caller: bool,
    /// `validate_page_before_insert()` treats the zero page specially
    /// (`vm_mixed_zeropage_allowed()`, special PTE, no refcount): 6.12. In 6.1 the zero page is
    /// inserted as a normal, refcounted, rmapped, RSS-counted page.
    pub insert_zero_page_special: bool,
    /// hugetlb folios are a page type (`PGTY_hugetlb`, 6.10+), so `validate_page_before_insert()`
    /// refuses their head page through `page_has_type()`; 6.1 marks them with a compound dtor.
    pub hugetlb_is_page_type: bool,
    /// Failure mode of `vm_mixed_ok()` in `__vm_insert_mixed()`.
    pub mixed_not_ok: MixedNotOk,
    /// `vm_mixed_ok()` applies the zero-page rule of `vm_mixed_zeropage_allowed()` (6.12).
    pub mixed_ok_zero_page_rule: bool,
    /// `vm_normal_page()` on !ARCH_HAS_PTE_SPECIAL returns None for the zero pfn in a
    /// VM_MIXEDMAP VMA (6.12); 6.1 returns the zero page.
    pub normal_page_mixed_zero_none: bool,

    // --- GUP ---------------------------------------------------------------------------------
    /// `check_vma_flags()` refuses FOLL_PIN|FOLL_LONGTERM|FOLL_WRITE on VMAs that need dirty
    /// tracking (`writable_file_mapping_allowed()`, 6.5+).
    pub gup_writable_file_mapping_check: bool,
    /// `pin_user_pages()`, `pin_user_pages_remote()` and friends return -EINVAL on invalid flag
    /// combinations (6.1 WARN + -EINVAL); 6.12's `is_valid_gup_args()` makes them return 0.
    pub pin_invalid_args_einval: bool,
    /// The fast path returns 0 pages (not -EOVERFLOW) when `start + len` wraps, and has no
    /// TASK_SIZE_MAX test (6.1 `internal_get_user_pages_fast()`).
    pub gup_fast_overflow_returns_zero: bool,
    /// `populate_vma_page_range()` refuses a VMA that is not accessible with -EFAULT and adds
    /// FOLL_FORCE unless the VMA is private-writable (6.12); 6.1 adds FOLL_FORCE only for
    /// accessible VMAs.
    pub populate_refuses_inaccessible: bool,
    /// Folio test of the fast path.
    pub gup_fast_folio_check: GupFastFolioCheck,
    /// The fast path bails on PROT_NONE PTEs only when `!gup_can_follow_protnone()` (6.1), or
    /// always (6.12).
    pub gup_fast_protnone_always_bails: bool,

    // --- /proc -------------------------------------------------------------------------------
    /// `show_smap_vma_flags()` mnemonic table, indexed by bit; `""` suppresses the bit, `"??"`
    /// is printed for bits without a name.
    #[serde(skip)]
    pub smaps_mnemonics: [&'static str; 64],
    /// `walk_page_vma()` applies `walk_page_test()` and so skips VM_PFNMAP VMAs (6.1); 6.12's
    /// `walk_page_vma()` walks them (smaps then counts normal PTEs inside VM_PFNMAP VMAs).
    pub smaps_walk_skips_pfnmap: bool,

    // --- consumers ---------------------------------------------------------------------------
    /// O_DIRECT bios take user pages with FOLL_PIN (`iov_iter_extract_pages()`, 6.12) instead
    /// of FOLL_GET (`iov_iter_get_pages2()`, 6.1).
    pub odirect_uses_pin: bool,
    /// io_uring buffer registration pins with the fast path (`io_pin_pages()` →
    /// `pin_user_pages_fast()`, 6.12) instead of `pin_user_pages()` with a VMA array (6.1).
    pub io_uring_pin_fast: bool,
    /// io_uring buffer registration rejects file-backed VMAs other than shmem and hugetlb with
    /// -EOPNOTSUPP (6.1 io_uring/rsrc.c:io_pin_pages).
    pub io_uring_rejects_non_shmem_files: bool,
    /// RDMA `ib_umem_get()` always adds FOLL_WRITE (and FOLL_FORCE for read-only) (6.1);
    /// 6.12 adds FOLL_WRITE only for writable registrations.
    pub umem_always_write: bool,
    /// KVM's lookup in VM_IO|VM_PFNMAP VMAs.
    pub kvm_remapped: KvmRemapped,
    /// `hva_to_pfn()` turns -EINTR from the slow GUP into KVM_PFN_ERR_SIGPENDING (6.12); 6.1
    /// goes on to the VMA lookup.
    pub kvm_eintr_sigpending: bool,

    // --- faults ------------------------------------------------------------------------------
    /// `do_wp_page()` takes the shared path when `(VM_WRITE|VM_SHARED)` are both set (6.1) rather
    /// than when VM_SHARED or VM_MAYSHARE is (6.12).
    pub wp_shared_needs_vm_write: bool,
}

const fn smaps_table(v612: bool) -> [&'static str; 64] {
    let mut t = ["??"; 64];
    t[0] = "rd";
    t[1] = "wr";
    t[2] = "ex";
    t[3] = "sh";
    t[4] = "mr";
    t[5] = "mw";
    t[6] = "me";
    t[7] = "ms";
    t[8] = "gd";
    t[9] = "um";
    t[10] = "pf";
    t[12] = "uw";
    t[13] = "lo";
    t[14] = "io";
    t[15] = "sr";
    t[16] = "rr";
    t[17] = "dc";
    t[18] = "de";
    t[20] = "ac";
    t[21] = "nr";
    t[22] = "ht";
    t[23] = "sf";
    t[24] = "ar";
    t[25] = "wf";
    t[26] = "dd";
    t[27] = "sd";
    t[28] = "mm";
    t[29] = "hg";
    t[30] = "nh";
    t[31] = "mg";
    // x86 protection keys are shown on the ProtectionKey: line instead.
    t[32] = "";
    t[33] = "";
    t[34] = "";
    t[35] = "";
    t[38] = "ui";
    if v612 {
        t[19] = "lf";
        t[37] = "ss";
        t[40] = "dp";
        t[63] = "sl";
    }
    t
}

/// Debian 6.1 (linux-source-6.1, 6.1.192).
pub static LINUX_6_1: KernelProfile = KernelProfile {
    name: "6.1",
    release: "6.1.192",
    pte_devmap_bit: 58,
    insert_page_count_check_in_caller: true,
    insert_zero_page_special: false,
    hugetlb_is_page_type: false,
    mixed_not_ok: MixedNotOk::Bug,
    mixed_ok_zero_page_rule: false,
    normal_page_mixed_zero_none: false,
    gup_writable_file_mapping_check: false,
    pin_invalid_args_einval: true,
    gup_fast_overflow_returns_zero: true,
    populate_refuses_inaccessible: false,
    gup_fast_folio_check: GupFastFolioCheck::PageIsSecretmem,
    gup_fast_protnone_always_bails: false,
    smaps_mnemonics: smaps_table(false),
    smaps_walk_skips_pfnmap: true,
    odirect_uses_pin: false,
    io_uring_pin_fast: false,
    io_uring_rejects_non_shmem_files: true,
    umem_always_write: true,
    kvm_remapped: KvmRemapped::FollowPte,
    kvm_eintr_sigpending: false,
    wp_shared_needs_vm_write: true,
};

/// Debian 6.12 (linux-source-6.12, 6.12.117).
pub static LINUX_6_12: KernelProfile = KernelProfile {
    name: "6.12",
    release: "6.12.117",
    pte_devmap_bit: 57,
    insert_page_count_check_in_caller: false,
    insert_zero_page_special: true,
    hugetlb_is_page_type: true,
    mixed_not_ok: MixedNotOk::Sigbus,
    mixed_ok_zero_page_rule: true,
    normal_page_mixed_zero_none: true,
    gup_writable_file_mapping_check: true,
    pin_invalid_args_einval: false,
    gup_fast_overflow_returns_zero: false,
    populate_refuses_inaccessible: true,
    gup_fast_folio_check: GupFastFolioCheck::FolioAllowed,
    gup_fast_protnone_always_bails: true,
    smaps_mnemonics: smaps_table(true),
    smaps_walk_skips_pfnmap: false,
    odirect_uses_pin: true,
    io_uring_pin_fast: true,
    io_uring_rejects_non_shmem_files: false,
    umem_always_write: false,
    kvm_remapped: KvmRemapped::FollowPfnmapStart,
    kvm_eintr_sigpending: true,
    wp_shared_needs_vm_write: false,
};

/// Every built-in profile.
pub static PROFILES: [&KernelProfile; 2] = [&LINUX_6_1, &LINUX_6_12];

/// Look a profile up by its line (`6.1`, `6.12`).
pub fn profile_for(line: &str) -> Option<&'static KernelProfile> {
    PROFILES.iter().copied().find(|p| p.name == line)
}

/// A kernel named by a line (`6.12`), an upstream version (`6.12.117`) or a `uname -r`
/// release (`6.12.117+deb12-amd64`, `6.1.0-56-amd64`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelName {
    /// Major and minor: the line.
    pub line: (u32, u32),
    /// The patch level, when the name has one.
    pub patch: Option<u32>,
    /// Whether a local suffix followed the version (`-56-amd64`, `+deb12-amd64`).
    pub release: bool,
}

/// Why a kernel name does not resolve to a model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelNameError {
    /// Not a line, a version or a release.
    #[error("`{0}` is not a kernel (expected a line such as 6.12, a version such as 6.12.117, or a `uname -r` release such as 6.12.117+deb12-amd64)")]
    Malformed(String),
    /// A well-formed kernel of a line the model does not cover.
    #[error("Linux {0} is not modeled (modeled lines: {list})", list = PROFILES.iter().map(|p| p.name).collect::<Vec<_>>().join(", "))]
    NotModeled(String),
}

/// A version number as the kernel's Makefile writes it: digits, no leading zero.
fn number(s: &str) -> Option<u32> {
    let digits = !s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit());
    (digits && (s == "0" || !s.starts_with('0')))
        .then(|| s.parse().ok())
        .flatten()
}

/// Debian kernel flavours of architectures other than x86-64, the one the model covers.
const OTHER_ARCH_FLAVOURS: [&str; 12] = [
    "arm64",
    "armmp",
    "686",
    "686-pae",
    "i386",
    "ppc64",
    "ppc64el",
    "powerpc64le",
    "s390x",
    "riscv64",
    "loong64",
    "mips",
];

impl std::str::FromStr for KernelName {
    type Err = KernelNameError;
    fn from_str(s: &str) -> Result<Self, KernelNameError> {
        let bad = || KernelNameError::Malformed(s.to_owned());
        let (version, suffix) = match s.find(['-', '+', '~']) {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        if let Some(sfx) = suffix {
            let ok = !sfx.is_empty()
                && sfx
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._+~-".contains(&b));
            if !ok {
                return Err(bad());
            }
            let arch = sfx
                .split(['-', '+', '.', '~'])
                .find(|w| OTHER_ARCH_FLAVOURS.contains(w) || w.starts_with("rpi"));
            if let Some(a) = arch {
                return Err(KernelNameError::NotModeled(format!(
                    "{} for {a} (the model is of x86-64)",
                    version
                )));
            }
        }
        let parts: Vec<&str> = version.split('.').collect();
        let nums: Vec<u32> = parts
            .iter()
            .map(|p| number(p))
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        match (nums.as_slice(), suffix) {
            ([major, minor], None) => Ok(KernelName {
                line: (*major, *minor),
                patch: None,
                release: false,
            }),
            ([major, minor, patch], sfx) => Ok(KernelName {
                line: (*major, *minor),
                patch: Some(*patch),
                release: sfx.is_some(),
            }),
            _ => Err(bad()),
        }
    }
}

/// A kernel name resolved to the model of its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The model.
    pub profile: &'static KernelProfile,
    /// When the name is not exactly the modeled kernel: what the model stands in for.
    pub note: Option<String>,
}

/// Resolve a kernel name to the model of its line, saying so when the named kernel is not
/// exactly the modeled one (another patch level, or a release whose upstream version the name
/// does not carry, such as Debian's `6.1.0-56-amd64`).
pub fn resolve_kernel(name: &str) -> Result<Resolved, KernelNameError> {
    let k: KernelName = name.parse()?;
    let line = format!("{}.{}", k.line.0, k.line.1);
    let profile = profile_for(&line).ok_or(KernelNameError::NotModeled(line.clone()))?;
    let version = k.patch.map(|p| format!("{line}.{p}"));
    let note = match (version, k.release) {
        (None, _) => None,
        (Some(v), false) if v == profile.release => None,
        (Some(v), true) if v == profile.release => None,
        (Some(v), _) => Some(format!(
            "{name} (Linux {v}) is modeled by the {line} line's model of Linux {}; \
             differences within the line are not modeled",
            profile.release
        )),
    };
    Ok(Resolved { profile, note })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_names_resolve_to_their_line_and_say_so() {
        let line = |s: &str| resolve_kernel(s).map(|r| (r.profile.name, r.note.is_some()));
        assert_eq!(line("6.1"), Ok(("6.1", false)));
        assert_eq!(line("6.12"), Ok(("6.12", false)));
        assert_eq!(line("6.12.117"), Ok(("6.12", false)));
        assert_eq!(line("6.12.117+deb12-amd64"), Ok(("6.12", false)));
        // Another patch level, or an ABI name without one, is modeled by the line, with a note.
        assert_eq!(line("6.12.57+deb12-amd64"), Ok(("6.12", true)));
        assert_eq!(line("6.1.0-56-amd64"), Ok(("6.1", true)));
        assert_eq!(line("6.1.0-0.deb11.13-amd64"), Ok(("6.1", true)));
        assert_eq!(line("6.12.0-trunk-amd64"), Ok(("6.12", true)));
        for bad in [
            "6.1foo", "6.1x", "6.1 ", " 6.1", "6.1.", "6", "", "6.1.0-", "garbage", "6..1",
        ] {
            assert!(
                matches!(resolve_kernel(bad), Err(KernelNameError::Malformed(_))),
                "{bad:?}"
            );
        }
        for other in [
            "6.18.4",
            "6.12.117+deb12-arm64",
            "6.1.0-56-686-pae",
            "6.1.0-56-armmp",
        ] {
            assert!(
                matches!(resolve_kernel(other), Err(KernelNameError::NotModeled(_))),
                "{other}"
            );
        }
        assert_eq!(profile_for("6.1.0-41-amd64"), None);
    }

    #[test]
    fn lockonfault_mnemonic_differs() {
        assert_eq!(LINUX_6_1.smaps_mnemonics[19], "??");
        assert_eq!(LINUX_6_12.smaps_mnemonics[19], "lf");
    }
}
