//! User-described exporters: a TOML file says what the driver's `->mmap` and `->fault` do, and
//! the model runs those steps like any catalogue exporter.
//!
//! ```toml
//! name = "my-exporter"
//! pages = 4
//! requires_shared = true
//! set_flags = ["PFNMAP", "DONTEXPAND", "DONTDUMP"]
//! clear_flags = []
//! insert = "vmf_insert_pfn"
//! at = "fault"
//! memory = "driver-pages"
//! access = "none"
//! honours_pgoff = true
//! ```

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pfnguard_mm::frames::{AllocSpec, FolioFlags, Mapping};
use pfnguard_mm::insert::{PfnT, VmallocArea};
use pfnguard_mm::page_free::{free_device_range, free_pages, report_freed_reachable};
use pfnguard_mm::shmem::ShmemInode;
use pfnguard_mm::{
    trace, Errno, Fact, Fail, FaultCtx, KResult, Kernel, Pfn, VirtAddr, VmFault, VmFlags,
    VmOperations, VmaId, VmaNew, PAGE_SIZE,
};
use serde::Deserialize;
use toml::Spanned;

use crate::core::{export_file, DmaBuf, DmaBufOps};
use crate::exporters::{
    alloc_cma_pages, alloc_driver_pages, device_frames, ExportCtx, Exported, Exporter,
};
use crate::text_file::{key_on_line, line_of, read_bounded};

/// The insert function the driver uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Insert {
    /// `remap_pfn_range()`.
    RemapPfnRange,
    /// `io_remap_pfn_range()`.
    IoRemapPfnRange,
    /// `vmf_insert_pfn()`.
    VmfInsertPfn,
    /// `vmf_insert_pfn_prot()`.
    VmfInsertPfnProt,
    /// `vmf_insert_mixed()`.
    VmfInsertMixed,
    /// `vm_insert_page()` (`vmf_insert_page()` from `->fault`).
    VmInsertPage,
    /// `vm_insert_pages()`.
    VmInsertPages,
    /// `vm_map_pages()`.
    VmMapPages,
    /// `remap_vmalloc_range()`.
    RemapVmallocRange,
    /// `->fault` sets `vmf->page` and returns 0.
    FaultPage,
}

/// When the PTEs are installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum At {
    /// `->mmap` populates the whole range.
    Mmap,
    /// `->fault` maps one page at a time.
    Fault,
}

/// What backs the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Memory {
    /// Order-0 `alloc_page()` pages, mapping NULL.
    DriverPages,
    /// One `__GFP_COMP` allocation.
    Compound,
    /// shmem page cache.
    Shmem,
    /// A hugetlb folio.
    Hugetlb,
    /// CMA pages.
    Cma,
    /// A `vmalloc_user()` area.
    Vmalloc,
    /// Device memory without `struct page`.
    Device,
}

impl Memory {
    fn has_struct_page(self) -> bool {
        self != Memory::Device
    }
}

/// `vm_ops->access`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// No `.access`.
    None,
    /// `generic_access_phys` (needs VM_IO|VM_PFNMAP).
    GenericAccessPhys,
    /// `ttm_bo_vm_access`.
    Ttm,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Spanned<String>,
    pages: Spanned<i64>,
    #[serde(default)]
    requires_shared: Option<Spanned<bool>>,
    #[serde(default)]
    set_flags: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    clear_flags: Option<Spanned<Vec<Spanned<String>>>>,
    insert: Spanned<Insert>,
    at: Spanned<At>,
    memory: Spanned<Memory>,
    #[serde(default)]
    access: Option<Spanned<Access>>,
    #[serde(default)]
    honours_pgoff: Option<Spanned<bool>>,
}

/// A validated exporter description.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Description {
    /// Exporter id.
    pub name: String,
    /// Buffer size in pages.
    pub pages: u64,
    /// `->mmap` returns -EINVAL for MAP_PRIVATE.
    pub requires_shared: bool,
    /// `vm_flags_set()` in `->mmap`.
    pub set_flags: VmFlags,
    /// `vm_flags_clear()` in `->mmap`.
    pub clear_flags: VmFlags,
    /// The insert function.
    pub insert: Insert,
    /// When.
    pub at: At,
    /// Backing memory.
    pub memory: Memory,
    /// `vm_ops->access`.
    pub access: Access,
    /// Offsets into the buffer follow `vm_pgoff`.
    pub honours_pgoff: bool,
}

/// A malformed or impossible exporter description.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomError {
    /// The file could not be read.
    #[error("{path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// TOML syntax, a missing or unknown key, or a value of the wrong type.
    #[error("{path}:{line}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What the parser said.
        message: String,
    },
    /// A value the kernel would refuse, or one outside what the model accepts.
    #[error("{path}:{line}: key `{key}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The key.
        key: &'static str,
        /// Why.
        message: String,
    },
}

/// Parse and validate a description: TOML syntax and types ([`parse_raw`]), then the name and
/// size, the VMA flag names, and whether the insert function fits the memory and the moment.
pub fn parse(path: &Path, text: &str) -> Result<Description, CustomError> {
    let raw = parse_raw(path, text)?;
    let v = Validator { path, text };
    let name = v.name(&raw.name)?;
    let pages = v.pages(&raw.pages)?;
    let set_flags = v.flags(&raw.set_flags, "set_flags")?;
    let clear_flags = v.flags(&raw.clear_flags, "clear_flags")?;
    v.insert_fits(&raw)?;
    Ok(Description {
        name,
        pages,
        requires_shared: raw.requires_shared.map(|s| *s.get_ref()).unwrap_or(false),
        set_flags,
        clear_flags,
        insert: *raw.insert.get_ref(),
        at: *raw.at.get_ref(),
        memory: *raw.memory.get_ref(),
        access: raw.access.map(|s| *s.get_ref()).unwrap_or(Access::None),
        honours_pgoff: raw.honours_pgoff.map(|s| *s.get_ref()).unwrap_or(true),
    })
}

/// The TOML step: syntax, missing or unknown keys, values of the wrong type, each reported at
/// its line with the key it assigns.
fn parse_raw(path: &Path, text: &str) -> Result<Raw, CustomError> {
    toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(text, s));
        let mut message = e.message().trim().to_owned();
        // The parser names the key for missing and unknown keys but not for a value of the wrong
        // type or an unknown variant: name the key the offending line assigns.
        let names_key =
            message.starts_with("missing field") || message.starts_with("unknown field");
        if let Some(key) = e
            .span()
            .and_then(|_| key_on_line(text, line))
            .filter(|_| !names_key)
        {
            message = format!("key `{key}`: {message}");
        }
        CustomError::Syntax {
            path: path.to_owned(),
            line,
            message,
        }
    })
}

/// The checks after the TOML step, reporting [`CustomError::Invalid`] at the offending value.
struct Validator<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Validator<'_> {
    fn invalid(&self, span: Range<usize>, key: &'static str, message: String) -> CustomError {
        CustomError::Invalid {
            path: self.path.to_owned(),
            line: line_of(self.text, span),
            key,
            message,
        }
    }

    /// A non-empty id without spaces or control characters.
    fn name(&self, raw: &Spanned<String>) -> Result<String, CustomError> {
        let name = raw.get_ref().trim().to_owned();
        let ok_char = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
        if name.is_empty() || name.len() > MAX_NAME_LEN || !name.chars().all(ok_char) {
            return Err(self.invalid(
                raw.span(),
                "name",
                format!(
                    "must be 1 to {MAX_NAME_LEN} letters, digits, '-', '_' or '.' (an id for tables)"
                ),
            ));
        }
        if let Ok(id) = name.parse::<pfnguard_report::ExporterId>() {
            return Err(self.invalid(
                raw.span(),
                "name",
                format!("`{id}` is a catalogue exporter; give your exporter a name of its own"),
            ));
        }
        Ok(name)
    }

    /// 1 to [`MAX_PAGES`](crate::MAX_PAGES) pages, the bound `--pages` has too.
    fn pages(&self, raw: &Spanned<i64>) -> Result<u64, CustomError> {
        let pages = *raw.get_ref();
        match u64::try_from(pages) {
            Ok(n) if (1..=crate::MAX_PAGES).contains(&n) => Ok(n),
            _ => Err(self.invalid(
                raw.span(),
                "pages",
                format!("{pages} is out of range (1 to {})", crate::MAX_PAGES),
            )),
        }
    }

    /// A list of kernel VMA flag names ([`VmFlags::from_kernel_name`]).
    fn flags(
        &self,
        list: &Option<Spanned<Vec<Spanned<String>>>>,
        key: &'static str,
    ) -> Result<VmFlags, CustomError> {
        let mut f = VmFlags::empty();
        for item in list.iter().flat_map(|l| l.get_ref()) {
            let n = item.get_ref();
            f |= VmFlags::from_kernel_name(n).ok_or_else(|| {
                self.invalid(item.span(), key, format!("unknown VMA flag {n:?} (kernel names without VM_, e.g. PFNMAP, IO, MIXEDMAP, DONTEXPAND, DONTDUMP)"))
            })?;
        }
        Ok(f)
    }

    /// The insert function must fit the memory (a struct page where it needs one, a vmalloc
    /// area for `remap_vmalloc_range`) and the moment (`->fault` or `->mmap`).
    fn insert_fits(&self, raw: &Raw) -> Result<(), CustomError> {
        let insert = *raw.insert.get_ref();
        let at = *raw.at.get_ref();
        let memory = *raw.memory.get_ref();
        let struct_page_insert = matches!(
            insert,
            Insert::VmInsertPage
                | Insert::VmInsertPages
                | Insert::VmMapPages
                | Insert::RemapVmallocRange
                | Insert::FaultPage
        );
        if struct_page_insert && !memory.has_struct_page() {
            return Err(self.invalid(
                raw.insert.span(),
                "insert",
                format!("{insert:?} needs a struct page, but memory = \"device\" has none (the kernel would dereference pfn_to_page of a frame without memmap)"),
            ));
        }
        if insert == Insert::RemapVmallocRange && memory != Memory::Vmalloc {
            return Err(self.invalid(
                raw.memory.span(),
                "memory",
                "remap_vmalloc_range maps a vmalloc area: use memory = \"vmalloc\"".into(),
            ));
        }
        if insert == Insert::FaultPage && at == At::Mmap {
            return Err(self.invalid(
                raw.at.span(),
                "at",
                "fault_page is what ->fault returns: use at = \"fault\"".into(),
            ));
        }
        if matches!(
            insert,
            Insert::VmMapPages | Insert::RemapVmallocRange | Insert::VmInsertPages
        ) && at == At::Fault
        {
            return Err(self.invalid(
                raw.at.span(),
                "at",
                format!("{insert:?} maps the whole VMA from ->mmap: use at = \"mmap\""),
            ));
        }
        Ok(())
    }
}

/// The longest exporter name: it heads a row of every table.
const MAX_NAME_LEN: usize = 40;

/// The largest exporter file read (a description is a few hundred bytes).
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Read, parse and validate an exporter file.
pub fn load(path: &Path) -> Result<CustomExporter, CustomError> {
    let text = read_bounded(path, MAX_FILE_BYTES, "an exporter description").map_err(|e| {
        CustomError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        }
    })?;
    Ok(CustomExporter {
        desc: parse(path, &text)?,
    })
}

/// A user-described exporter.
#[derive(Debug, Clone)]
pub struct CustomExporter {
    /// The description.
    pub desc: Description,
}

/// `MAX_PAGE_ORDER` (x86-64, both modeled kernels; 6.1 spells it `MAX_ORDER - 1`).
const MAX_PAGE_ORDER: u8 = 10;

#[derive(Debug)]
struct Backing {
    pages: Vec<Pfn>,
    area: Option<VmallocArea>,
}

fn alloc(k: &mut Kernel, m: Memory, n: u64) -> KResult<Backing> {
    let enomem = || Fail::Errno(Errno::ENOMEM);
    let pages = match m {
        Memory::DriverPages => alloc_driver_pages(k, n, FolioFlags::empty())?,
        Memory::Compound => {
            let order = n.next_power_of_two().trailing_zeros() as u8;
            // mm/page_alloc.c:__alloc_pages: an order above MAX_PAGE_ORDER (10 on x86-64)
            // fails with a warning.
            if order > MAX_PAGE_ORDER {
                trace!(
                    k,
                    "mm/page_alloc.c:__alloc_pages",
                    "order {order} > MAX_PAGE_ORDER -> NULL (-ENOMEM)"
                );
                return Err(enomem());
            }
            let head = k
                .frames
                .alloc(AllocSpec::compound(order))
                .ok_or_else(enomem)?;
            (0..n).map(|i| Pfn(head.0 + i)).collect()
        }
        Memory::Shmem => ShmemInode::new(n, false).read_pages_referenced(k)?,
        Memory::Hugetlb => {
            // One 2 MiB folio per huge page of the file (mm/hugetlb.c:alloc_hugetlb_folio, one
            // per hugetlb_no_page); a buffer larger than 512 pages spans several folios.
            let mut v = Vec::with_capacity(n as usize);
            while (v.len() as u64) < n {
                let head = k
                    .frames
                    .alloc(AllocSpec {
                        order: 9,
                        compound: true,
                        mapping: Mapping::File {
                            can_writeback: false,
                        },
                        flags: FolioFlags::HUGETLB,
                    })
                    .ok_or_else(enomem)?;
                let take = (n - v.len() as u64).min(512);
                v.extend((0..take).map(|i| Pfn(head.0 + i)));
            }
            v
        }
        Memory::Cma => alloc_cma_pages(k, n)?,
        Memory::Vmalloc => {
            let a = VmallocArea::vmalloc_user(k, n)?;
            return Ok(Backing {
                pages: a.pages.clone(),
                area: Some(a),
            });
        }
        Memory::Device => device_frames(k, n),
    };
    Ok(Backing { pages, area: None })
}

#[derive(Debug)]
struct CustomOps {
    desc: Description,
    backing: Backing,
}

impl DmaBufOps for CustomOps {
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        let d = &self.desc;
        const F: &str = "user exporter ->mmap";
        if d.requires_shared && !vma.flags().intersects(VmFlags::SHARED | VmFlags::MAYSHARE) {
            trace!(vma.kernel(), F, "requires_shared: MAP_PRIVATE -> -EINVAL");
            return Err(Errno::EINVAL.into());
        }
        if !d.set_flags.is_empty() {
            vma.set_flags(d.set_flags);
        }
        if !d.clear_flags.is_empty() {
            vma.clear_flags(d.clear_flags);
        }
        let ops = Arc::new(CustomVmOps {
            desc: d.clone(),
            pages: self.backing.pages.clone(),
        });
        vma.set_ops(ops);
        if d.at == At::Fault {
            return Ok(());
        }
        let v = vma.vma();
        let off = if d.honours_pgoff { v.pgoff } else { 0 };
        let pages = &self.backing.pages;
        let range = |i: u64| pages.get((off + i) as usize).copied();
        match d.insert {
            Insert::RemapPfnRange | Insert::IoRemapPfnRange => {
                for i in 0..v.pages() {
                    let Some(p) = range(i) else {
                        return Err(Errno::EINVAL.into());
                    };
                    if d.insert == Insert::RemapPfnRange {
                        vma.remap_pfn_range(v.start.add_pages(i), p, PAGE_SIZE)?;
                    } else {
                        vma.io_remap_pfn_range(v.start.add_pages(i), p, PAGE_SIZE)?;
                    }
                }
                Ok(())
            }
            Insert::VmfInsertPfn | Insert::VmfInsertPfnProt | Insert::VmfInsertMixed => {
                let id = vma.id();
                for i in 0..v.pages() {
                    let Some(p) = range(i) else {
                        return Err(Errno::EINVAL.into());
                    };
                    let a = v.start.add_pages(i);
                    let r = match d.insert {
                        Insert::VmfInsertMixed => pfnguard_mm::insert::vmf_insert_mixed(
                            vma.kernel(),
                            id,
                            a,
                            PfnT::plain(p),
                        )?,
                        Insert::VmfInsertPfnProt => pfnguard_mm::insert::vmf_insert_pfn_prot(
                            vma.kernel(),
                            id,
                            a,
                            p,
                            v.page_prot,
                        )?,
                        _ => pfnguard_mm::insert::vmf_insert_pfn(vma.kernel(), id, a, p)?,
                    };
                    if r.intersects(VmFault::ERROR) {
                        return Err(Errno::EFAULT.into());
                    }
                }
                Ok(())
            }
            // The struct-page helpers: the typed path when the description set VM_MIXEDMAP,
            // else the same helpers on the unmarked VMA (which BUG on VM_PFNMAP or mark it).
            Insert::VmInsertPage => {
                for i in 0..v.pages() {
                    let Some(p) = range(i) else {
                        return Err(Errno::EINVAL.into());
                    };
                    let a = v.start.add_pages(i);
                    match vma.as_mixedmap() {
                        Some(mut m) => m.vm_insert_page(a, p)?,
                        None => vma.without_mixedmap().vm_insert_page(a, p)?,
                    }
                }
                Ok(())
            }
            Insert::VmInsertPages => {
                let sel: Vec<Pfn> = (0..v.pages()).filter_map(range).collect();
                match vma.as_mixedmap() {
                    Some(mut m) => m.vm_insert_pages(v.start, &sel).0,
                    None => vma.without_mixedmap().vm_insert_pages(v.start, &sel).0,
                }
            }
            Insert::VmMapPages => match (vma.as_mixedmap(), d.honours_pgoff) {
                (Some(mut m), true) => m.vm_map_pages(pages),
                (Some(mut m), false) => m.vm_map_pages_zero(pages),
                (None, true) => vma.without_mixedmap().vm_map_pages(pages),
                (None, false) => vma.without_mixedmap().vm_map_pages_zero(pages),
            },
            Insert::RemapVmallocRange => match (&self.backing.area, vma.as_mixedmap()) {
                (Some(a), Some(mut m)) => m.remap_vmalloc_range(a, off),
                (Some(a), None) => vma.without_mixedmap().remap_vmalloc_range(a, off),
                (None, _) => Err(Errno::EINVAL.into()),
            },
            Insert::FaultPage => Ok(()),
        }
    }
    fn pages(&self) -> Vec<Pfn> {
        self.backing.pages.clone()
    }
    /// The description's memory given back as its allocator takes it: driver, CMA and vmalloc
    /// pages one `__free_page()` each, the compound allocation one `__free_pages()` of its head
    /// ([`free_pages`]: each freed once its last reference goes), a hugetlb folio its one
    /// reference, shmem pages the driver's reference and the page cache's (`drm_gem_put_pages()`
    /// and the shmem file's eviction: nothing else holds the file), device memory at once
    /// whatever maps it ([`free_device_range`]); a freed frame a PTE or a pin still reaches is
    /// reported.
    fn release(&self, k: &mut Kernel) {
        const F: &str = "drivers/dma-buf/dma-buf.c:dma_buf_release";
        let pages = &self.backing.pages;
        match self.desc.memory {
            Memory::DriverPages | Memory::Cma | Memory::Vmalloc => {
                for &p in pages {
                    free_pages(k, p, 0);
                }
            }
            Memory::Compound => {
                if let Some(&head) = pages.first() {
                    free_pages(k, head, 0);
                }
            }
            Memory::Shmem => {
                for &p in pages {
                    if let Some(f) = k.frames.folio_of(p) {
                        k.folio_put(f, 2);
                    }
                }
            }
            Memory::Hugetlb => {
                let mut seen = std::collections::BTreeSet::new();
                for &p in pages {
                    if let Some(f) = k.frames.folio_of(p).filter(|f| seen.insert(*f)) {
                        k.folio_put(f, 1);
                    }
                }
            }
            Memory::Device => free_device_range(k, pages, F),
        }
        report_freed_reachable(k, pages, F);
    }
}

#[derive(Debug)]
struct CustomVmOps {
    desc: Description,
    pages: Vec<Pfn>,
}

impl VmOperations for CustomVmOps {
    fn name(&self) -> &'static str {
        "user exporter vm_ops"
    }
    fn has_fault(&self) -> bool {
        self.desc.at == At::Fault
    }
    fn fault(&self, cx: &mut FaultCtx<'_>) -> KResult<VmFault> {
        const F: &str = "user exporter ->fault";
        let Some(v) = cx.vma() else {
            return Ok(VmFault::SIGBUS);
        };
        let idx = if self.desc.honours_pgoff {
            cx.vmf.pgoff
        } else {
            (cx.vmf.address.0 - v.start.0) / PAGE_SIZE
        };
        let Some(&p) = self.pages.get(idx as usize) else {
            trace!(cx.kernel(), F, "index {idx} beyond the buffer -> SIGBUS");
            return Ok(VmFault::SIGBUS);
        };
        let a = cx.vmf.address;
        match self.desc.insert {
            Insert::VmfInsertPfn => cx.vmf_insert_pfn(a, p),
            Insert::VmfInsertPfnProt => cx.vmf_insert_pfn_prot(a, p, v.page_prot),
            Insert::VmfInsertMixed => cx.vmf_insert_mixed(a, PfnT::plain(p)),
            Insert::VmInsertPage => match cx.as_mixedmap() {
                Some(mut m) => m.vmf_insert_page(a, p),
                None => cx.vmf_insert_page_without_mixedmap(a, p),
            },
            Insert::FaultPage => {
                cx.set_page(p);
                Ok(VmFault::NONE)
            }
            Insert::RemapPfnRange | Insert::IoRemapPfnRange => {
                let id = cx.vmf.vma;
                match pfnguard_mm::insert::remap_pfn_range(
                    cx.kernel(),
                    id,
                    a,
                    p,
                    PAGE_SIZE,
                    v.page_prot,
                ) {
                    Ok(()) => Ok(VmFault::NOPAGE),
                    Err(Fail::Errno(_)) => Ok(VmFault::SIGBUS),
                    Err(e) => Err(e),
                }
            }
            Insert::VmInsertPages | Insert::VmMapPages | Insert::RemapVmallocRange => {
                Ok(VmFault::SIGBUS)
            }
        }
    }
    fn has_access(&self) -> bool {
        self.desc.access != Access::None
    }
    /// `generic_access_phys()` (mm/memory.c) needs VM_IO|VM_PFNMAP (`follow_pfnmap_start()` /
    /// `follow_phys()`, else -EINVAL). With [`Fact::GenericAccessPhysRejectsRam`] it copies at
    /// most one page per call and refuses, with -EINVAL, a pfn that is online RAM not marked
    /// reserved (`pfn_to_online_page(args.pfn) && !PageReserved(page)`).
    /// `ttm_bo_vm_access()` copies through a kernel mapping.
    fn access(
        &self,
        k: &mut Kernel,
        vma: VmaId,
        addr: VirtAddr,
        len: usize,
        _write: bool,
    ) -> Result<usize, Errno> {
        const F: &str = "mm/memory.c:generic_access_phys";
        match self.desc.access {
            Access::None => Err(Errno::EIO),
            Access::GenericAccessPhys => {
                let ok = k
                    .vma(vma)
                    .is_some_and(|v| v.flags.intersects(VmFlags::IO | VmFlags::PFNMAP));
                if !ok {
                    return Err(Errno::EINVAL);
                }
                if !k.has(Fact::GenericAccessPhysRejectsRam) {
                    return Ok(len);
                }
                let pte = k.mm(vma.mm).pt.get(addr);
                let pfn = pte.pfn();
                let ram = pte.present()
                    && k.frames.pfn_valid(pfn)
                    && k.frames
                        .folio_of(pfn)
                        .is_some_and(|f| !k.frames.folio(f).flags.contains(FolioFlags::RESERVED));
                if ram {
                    pfnguard_mm::trace!(k, F, "pfn {pfn} is online RAM, not reserved -> -EINVAL");
                    return Err(Errno::EINVAL);
                }
                let offset = (addr.0 % pfnguard_mm::PAGE_SIZE) as usize;
                Ok(len.min(pfnguard_mm::PAGE_SIZE as usize - offset))
            }
            Access::Ttm => Ok(len),
        }
    }
}

impl Exporter for CustomExporter {
    fn id(&self) -> &str {
        &self.desc.name
    }
    fn summary(&self) -> &'static str {
        "user-described exporter"
    }
    fn fixed_pages(&self) -> Option<u64> {
        Some(self.desc.pages)
    }
    fn export(&self, k: &mut Kernel, cx: &ExportCtx) -> KResult<Exported> {
        let backing = alloc(k, self.desc.memory, self.desc.pages)?;
        let size = self.desc.pages * PAGE_SIZE;
        let buf = DmaBuf::new(
            k,
            size,
            "user",
            Arc::new(CustomOps {
                desc: self.desc.clone(),
                backing,
            }),
        );
        Ok(Exported {
            file: export_file(buf.clone(), true, cx.policy),
            buf: Some(buf),
            size,
            shmem: None,
        })
    }
}
