//! Core dumps: fs/coredump.c `vma_dump_size()` and the per-page `get_dump_page()` (mm/gup.c).

use crate::gup::{get_user_pages_slow, Foll};
use crate::kernel::{Kernel, MmId};
use crate::outcome::Fail;
use crate::types::PAGE_SIZE;
use crate::vma::VmFlags;

/// `/proc/PID/coredump_filter` bits.
pub mod filter {
    /// MMF_DUMP_ANON_PRIVATE.
    pub const ANON_PRIVATE: u32 = 1 << 0;
    /// MMF_DUMP_ANON_SHARED.
    pub const ANON_SHARED: u32 = 1 << 1;
    /// MMF_DUMP_MAPPED_PRIVATE.
    pub const MAPPED_PRIVATE: u32 = 1 << 2;
    /// MMF_DUMP_MAPPED_SHARED.
    pub const MAPPED_SHARED: u32 = 1 << 3;
    /// The default filter, 0x33.
    pub const DEFAULT: u32 = 0x33;
}

/// How one VMA appears in a core dump.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum DumpedVma {
    /// `vma_dump_size()` returned 0.
    Skipped(&'static str),
    /// Written page by page: pages with data, and holes where `get_dump_page()` found no page.
    Dumped {
        /// Pages written.
        pages: u64,
        /// Pages skipped (`dump_skip()`).
        holes: u64,
    },
}

/// `vma_dump_size()` + the page loop of `dump_user_range()`.
pub fn core_dump(
    k: &mut Kernel,
    mm: MmId,
    coredump_filter: u32,
) -> Vec<(crate::VirtAddr, DumpedVma)> {
    let vmas: Vec<_> = k.mm(mm).vmas.values().cloned().collect();
    let mut out = Vec::new();
    for v in vmas {
        let d = if v.flags.contains(VmFlags::DONTDUMP) {
            DumpedVma::Skipped("VM_DONTDUMP")
        } else if v.flags.contains(VmFlags::IO) {
            DumpedVma::Skipped("VM_IO")
        } else {
            let wanted = if v.flags.contains(VmFlags::SHARED) {
                let nlink = v.file.as_ref().map_or(0, |f| f.nlink);
                let bit = if nlink == 0 {
                    filter::ANON_SHARED
                } else {
                    filter::MAPPED_SHARED
                };
                coredump_filter & bit != 0
            } else if v.file.is_none() || v.anon_vma {
                coredump_filter & filter::ANON_PRIVATE != 0
            } else {
                coredump_filter & filter::MAPPED_PRIVATE != 0
            };
            if !wanted {
                DumpedVma::Skipped("coredump_filter")
            } else {
                let (mut pages, mut holes) = (0, 0);
                for i in 0..v.pages() {
                    let a = v.start.add_pages(i);
                    let mut pg = Vec::new();
                    match get_user_pages_slow(
                        k,
                        mm,
                        a,
                        1,
                        Foll::FORCE | Foll::DUMP | Foll::GET,
                        Some(&mut pg),
                    ) {
                        Ok(1) => {
                            k.put_pages(&pg);
                            pages += 1;
                        }
                        Err(Fail::Bug(_)) => break,
                        _ => holes += 1,
                    }
                }
                let _ = PAGE_SIZE;
                DumpedVma::Dumped { pages, holes }
            }
        };
        out.push((v.start, d));
    }
    out
}
