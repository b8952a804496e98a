//! Addresses and frame numbers (x86-64, 4 KiB pages).
//!
//! Newtypes keep user virtual addresses and page frame numbers apart, as the
//! kernel's `unsigned long addr` and `unsigned long pfn` are not.

use std::fmt;

/// `PAGE_SHIFT` on x86-64 (arch/x86/include/asm/page_types.h).
pub const PAGE_SHIFT: u32 = 12;
/// `PAGE_SIZE` on x86-64.
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;
/// `TASK_SIZE_MAX` for 4-level paging (arch/x86/include/asm/page_64_types.h).
pub const TASK_SIZE_MAX: u64 = (1 << 47) - PAGE_SIZE;

/// A user virtual address.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
pub struct VirtAddr(pub u64);

impl VirtAddr {
    /// The address rounded down to its page.
    pub fn page_down(self) -> VirtAddr {
        VirtAddr(self.0 & !(PAGE_SIZE - 1))
    }
    /// Whether the address is page aligned (`PAGE_ALIGNED`).
    pub fn is_page_aligned(self) -> bool {
        self.0 & (PAGE_SIZE - 1) == 0
    }
    /// The address `pages` pages further on.
    pub fn add_pages(self, pages: u64) -> VirtAddr {
        VirtAddr(self.0 + pages * PAGE_SIZE)
    }
    /// Virtual page number.
    pub fn vpn(self) -> u64 {
        self.0 >> PAGE_SHIFT
    }
}

impl fmt::Debug for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}
impl fmt::Display for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A page frame number.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, serde::Serialize)]
pub struct Pfn(pub u64);

impl Pfn {
    /// `PFN_PHYS`: the physical address of the frame.
    pub fn phys(self) -> u64 {
        self.0 << PAGE_SHIFT
    }
}

impl fmt::Debug for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "pfn:{:#x}", self.0)
    }
}
impl fmt::Display for Pfn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// Number of pages covering `len` bytes.
pub fn pages_for(len: u64) -> u64 {
    len.div_ceil(PAGE_SIZE)
}
