//! Introspection rendered as the kernel renders it: fs/proc/task_mmu.c (`/proc/PID/smaps`,
//! `/proc/PID/maps`, `/proc/PID/pagemap`, the RSS lines of `/proc/PID/status`).

use std::fmt::Write as _;

use crate::facts::Fact;
use crate::kernel::{Kernel, MmId, RssCounter};
use crate::normal_page::vm_normal_page_quiet;
use crate::types::{VirtAddr, PAGE_SHIFT, PAGE_SIZE};
use crate::vma::{VmFlags, Vma};

/// `PSS_SHIFT` (fs/proc/task_mmu.c): fixed-point shift of the proportional set size.
const PSS_SHIFT: u32 = 12;

/// What `smap_gather_stats()` sums for one VMA (kB unless stated).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Smaps {
    /// `Size:`.
    pub size_kb: u64,
    /// `Rss:`.
    pub rss_kb: u64,
    /// `Pss:` (rounded down to kB).
    pub pss_kb: u64,
    /// `Shared_Clean:`.
    pub shared_clean_kb: u64,
    /// `Shared_Dirty:`.
    pub shared_dirty_kb: u64,
    /// `Private_Clean:`.
    pub private_clean_kb: u64,
    /// `Private_Dirty:`.
    pub private_dirty_kb: u64,
    /// `Referenced:`.
    pub referenced_kb: u64,
    /// `Anonymous:`.
    pub anonymous_kb: u64,
    /// `Locked:`.
    pub locked_kb: u64,
    /// The `VmFlags:` mnemonics in bit order.
    pub vmflags: Vec<&'static str>,
}

/// The `Rss:` line of the VMA's smaps entry ([`smaps`]), with the step traced: what the `rss`
/// op and the scenarios' `rss` step read.
pub fn smaps_rss_kb(k: &mut Kernel, mm: MmId, vma: &Vma) -> u64 {
    let kb = smaps(k, mm, vma).rss_kb;
    crate::trace!(k, "fs/proc/task_mmu.c:smap_gather_stats", "Rss: {kb} kB");
    kb
}

/// `smap_gather_stats()` → `smaps_pte_entry()` → `smaps_account()`: only pages that
/// `vm_normal_page()` returns count. 6.1's `walk_page_vma()` skips VM_PFNMAP VMAs
/// (`walk_page_test()`); 6.12 walks them, so normal PTEs inside a VM_PFNMAP VMA count there.
pub fn smaps(k: &Kernel, mm: MmId, vma: &Vma) -> Smaps {
    let mut s = Smaps {
        size_kb: vma.len() / 1024,
        vmflags: vma.flags.mnemonics(&k.facts),
        ..Smaps::default()
    };
    let skip = !k.has(Fact::WalkPageVmaNoTest) && vma.flags.contains(VmFlags::PFNMAP);
    if skip {
        return s;
    }
    let locked = vma.flags.contains(VmFlags::LOCKED);
    let mut pss_x: u64 = 0; // Pss in bytes << PSS_SHIFT
    for (addr, pte) in k.mm(mm).pt.collect_in(vma.start, vma.end) {
        if !pte.present() {
            continue;
        }
        let Some(pfn) = vm_normal_page_quiet(k, vma, addr, pte) else {
            continue;
        };
        let Some(fid) = k.frames.folio_of(pfn) else {
            continue;
        };
        let f = k.frames.folio(fid);
        let kb = PAGE_SIZE / 1024;
        s.rss_kb += kb;
        let dirty = pte.dirty() || f.flags.contains(crate::frames::FolioFlags::DIRTY);
        if pte.young() || f.flags.contains(crate::frames::FolioFlags::REFERENCED) {
            s.referenced_kb += kb;
        }
        if f.is_anon() {
            s.anonymous_kb += kb;
        }
        let mapcount = f.mapcount.max(1) as u64;
        let (pss, private) = if f.refcount == 1 || mapcount < 2 {
            (PAGE_SIZE << PSS_SHIFT, true)
        } else {
            ((PAGE_SIZE << PSS_SHIFT) / mapcount, false)
        };
        pss_x += pss;
        match (private, dirty) {
            (true, true) => s.private_dirty_kb += kb,
            (true, false) => s.private_clean_kb += kb,
            (false, true) => s.shared_dirty_kb += kb,
            (false, false) => s.shared_clean_kb += kb,
        }
        if locked {
            s.locked_kb += (pss >> PSS_SHIFT) / 1024;
        }
    }
    s.pss_kb = (pss_x >> PSS_SHIFT) / 1024;
    s
}

/// `show_map_vma()`: one `/proc/PID/maps` line.
pub fn maps_line(vma: &Vma) -> String {
    let f = vma.flags;
    let mut line = format!(
        "{:08x}-{:08x} {}{}{}{} {:08x} ",
        vma.start.0,
        vma.end.0,
        if f.contains(VmFlags::READ) { 'r' } else { '-' },
        if f.contains(VmFlags::WRITE) { 'w' } else { '-' },
        if f.contains(VmFlags::EXEC) { 'x' } else { '-' },
        if f.contains(VmFlags::MAYSHARE) {
            's'
        } else {
            'p'
        },
        if vma.file.is_some() {
            vma.pgoff << PAGE_SHIFT
        } else {
            0
        },
    );
    match &vma.file {
        Some(file) => {
            let _ = write!(line, "{:02x}:{:02x} {} ", file.dev.0, file.dev.1, file.ino);
            while line.len() < 73 {
                line.push(' ');
            }
            line.push_str(&file.d_path());
        }
        None => line.push_str("00:00 0 "),
    }
    line
}

/// `show_smap()`: the smaps block of one VMA, as the kernel prints it (the lines the model
/// computes; THP, hugetlb and swap lines are zero).
pub fn render_smaps(k: &Kernel, mm: MmId, vma: &Vma) -> String {
    let s = smaps(k, mm, vma);
    let mut out = maps_line(vma);
    out.push('\n');
    let rows: [(&str, u64); 23] = [
        ("Size", s.size_kb),
        ("KernelPageSize", 4),
        ("MMUPageSize", 4),
        ("Rss", s.rss_kb),
        ("Pss", s.pss_kb),
        ("Pss_Dirty", s.private_dirty_kb + s.shared_dirty_kb),
        ("Shared_Clean", s.shared_clean_kb),
        ("Shared_Dirty", s.shared_dirty_kb),
        ("Private_Clean", s.private_clean_kb),
        ("Private_Dirty", s.private_dirty_kb),
        ("Referenced", s.referenced_kb),
        ("Anonymous", s.anonymous_kb),
        ("KSM", 0),
        ("LazyFree", 0),
        ("AnonHugePages", 0),
        ("ShmemPmdMapped", 0),
        ("FilePmdMapped", 0),
        ("Shared_Hugetlb", 0),
        ("Private_Hugetlb", 0),
        ("Swap", 0),
        ("SwapPss", 0),
        ("Locked", s.locked_kb),
        ("THPeligible", 0),
    ];
    for (name, v) in rows {
        if name == "THPeligible" {
            let _ = writeln!(out, "THPeligible:    {v}");
        } else {
            let _ = writeln!(out, "{:<16}{:>8} kB", format!("{name}:"), v);
        }
    }
    out.push_str("VmFlags: ");
    for m in &s.vmflags {
        out.push_str(m);
        out.push(' ');
    }
    out.push('\n');
    out
}

/// Bits of a `/proc/PID/pagemap` entry (fs/proc/task_mmu.c).
pub mod pm {
    /// PM_PRESENT.
    pub const PRESENT: u64 = 1 << 63;
    /// PM_SWAP.
    pub const SWAP: u64 = 1 << 62;
    /// PM_FILE (file-page or shared-anon).
    pub const FILE: u64 = 1 << 61;
    /// PM_UFFD_WP.
    pub const UFFD_WP: u64 = 1 << 57;
    /// PM_MMAP_EXCLUSIVE.
    pub const MMAP_EXCLUSIVE: u64 = 1 << 56;
    /// PM_SOFT_DIRTY.
    pub const SOFT_DIRTY: u64 = 1 << 55;
    /// PM_PFRAME_MASK.
    pub const PFN_MASK: u64 = (1 << 55) - 1;
}

/// `pagemap_read()` entry for `addr`: `walk_page_range()` skips VM_PFNMAP VMAs
/// (`walk_page_test()` → `pagemap_pte_hole()`), so every page there is a hole (PM_SOFT_DIRTY
/// only) even when mapped; elsewhere `pte_to_pagemap_entry()`.
pub fn pagemap_entry(k: &Kernel, mm: MmId, addr: VirtAddr) -> u64 {
    let m = k.mm(mm);
    let Some(vma) = m.vma_at(addr) else {
        return 0;
    };
    let sd_vma = if vma.flags.contains(VmFlags::SOFTDIRTY) {
        pm::SOFT_DIRTY
    } else {
        0
    };
    if vma.flags.contains(VmFlags::PFNMAP) {
        return sd_vma;
    }
    let pte = m.pt.get(addr.page_down());
    if !pte.present() {
        return sd_vma;
    }
    let mut e = pm::PRESENT | sd_vma;
    if k.config.cap_sys_admin {
        e |= pte.pfn().0 & pm::PFN_MASK;
    }
    if pte.0 & crate::pagetable::Pte::SOFT_DIRTY != 0 {
        e |= pm::SOFT_DIRTY;
    }
    if let Some(p) = vm_normal_page_quiet(k, vma, addr, pte) {
        if let Some(fid) = k.frames.folio_of(p) {
            let f = k.frames.folio(fid);
            if !f.is_anon() {
                e |= pm::FILE;
            }
            if f.mapcount == 1 {
                e |= pm::MMAP_EXCLUSIVE;
            }
        }
    }
    e
}

/// The memory lines of `/proc/PID/status` (`task_mem()`), in kB.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    /// VmLck.
    pub vm_lck: u64,
    /// VmPin.
    pub vm_pin: u64,
    /// VmRSS.
    pub vm_rss: u64,
    /// RssAnon.
    pub rss_anon: u64,
    /// RssFile.
    pub rss_file: u64,
    /// RssShmem.
    pub rss_shmem: u64,
}

/// `task_mem()` (fs/proc/task_mmu.c).
pub fn status(k: &Kernel, mm: MmId) -> Status {
    let m = k.mm(mm);
    let kb = |p: i64| (p.max(0) as u64) * (PAGE_SIZE / 1024);
    Status {
        vm_lck: m.locked_vm * 4,
        vm_pin: m.pinned_vm * 4,
        vm_rss: kb(m.total_rss()),
        rss_anon: kb(m.counter(RssCounter::Anon)),
        rss_file: kb(m.counter(RssCounter::File)),
        rss_shmem: kb(m.counter(RssCounter::Shmem)),
    }
}

/// Render the status lines as the kernel prints them.
pub fn render_status(s: &Status) -> String {
    format!(
        "VmLck:\t{:>8} kB\nVmPin:\t{:>8} kB\nVmRSS:\t{:>8} kB\nRssAnon:\t{:>8} kB\nRssFile:\t{:>8} kB\nRssShmem:\t{:>8} kB\n",
        s.vm_lck, s.vm_pin, s.vm_rss, s.rss_anon, s.rss_file, s.rss_shmem
    )
}
