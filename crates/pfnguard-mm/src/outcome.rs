//! How a modeled kernel path ends: success, an errno, a signal to the task, or an oops.
//!
//! A `BUG_ON()` stops the scenario: the model records the assertion and the function and
//! every later operation on the same [`Kernel`](crate::Kernel) fails with the same [`Bug`].
//! A `WARN_ON()` is recorded as a [`Event::Warn`] and execution continues.

use std::fmt;

use crate::errno::Errno;
use crate::types::{Pfn, VirtAddr};

/// A fired `BUG_ON()` (or a NULL dereference the kernel would oops on).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Bug {
    /// The asserted condition, as written in the source.
    pub assertion: &'static str,
    /// The kernel function, `file:function`.
    pub function: &'static str,
}

impl fmt::Display for Bug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BUG: {} in {}", self.assertion, self.function)
    }
}

/// A signal the task receives from a user access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Signal {
    /// `SIGBUS` (VM_FAULT_SIGBUS, VM_FAULT_HWPOISON).
    Bus,
    /// `SIGSEGV` (no VMA, access not permitted, VM_FAULT_SIGSEGV).
    Segv,
}

impl Signal {
    /// `"SIGBUS"` / `"SIGSEGV"`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Bus => "SIGBUS",
            Signal::Segv => "SIGSEGV",
        }
    }
}

/// Why a modeled path did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Fail {
    /// The path returned `-errno`.
    Errno(Errno),
    /// A user access ended in a signal.
    Signal(Signal),
    /// The kernel oopsed.
    Bug(Bug),
    /// The path never returns (a fault or retry loop that makes no progress); a real task
    /// hangs until it is killed.
    Hang(&'static str),
}

impl From<Errno> for Fail {
    fn from(e: Errno) -> Self {
        Fail::Errno(e)
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fail::Errno(e) => write!(f, "{e}"),
            Fail::Signal(s) => f.write_str(s.name()),
            Fail::Bug(b) => write!(f, "{b}"),
            Fail::Hang(site) => write!(f, "hang in {site}"),
        }
    }
}

impl Fail {
    /// The errno, if this is one.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Fail::Errno(e) => Some(*e),
            _ => None,
        }
    }
}

/// Result of a modeled kernel path.
pub type KResult<T> = Result<T, Fail>;

bitflags::bitflags! {
    /// `vm_fault_t` bits (include/linux/mm_types.h `enum vm_fault_reason`).
    #[derive(Clone, Copy, PartialEq, Eq, Default)]
    pub struct VmFault: u32 {
        #[allow(missing_docs)]
        const OOM = 0x1;
        #[allow(missing_docs)]
        const SIGBUS = 0x2;
        #[allow(missing_docs)]
        const MAJOR = 0x4;
        #[allow(missing_docs)]
        const HWPOISON = 0x10;
        #[allow(missing_docs)]
        const HWPOISON_LARGE = 0x20;
        #[allow(missing_docs)]
        const SIGSEGV = 0x40;
        #[allow(missing_docs)]
        const NOPAGE = 0x100;
        #[allow(missing_docs)]
        const LOCKED = 0x200;
        #[allow(missing_docs)]
        const RETRY = 0x400;
        #[allow(missing_docs)]
        const FALLBACK = 0x800;
        #[allow(missing_docs)]
        const DONE_COW = 0x1000;
    }
}

impl VmFault {
    /// `VM_FAULT_ERROR`.
    pub const ERROR: VmFault = VmFault::OOM
        .union(VmFault::SIGBUS)
        .union(VmFault::SIGSEGV)
        .union(VmFault::HWPOISON)
        .union(VmFault::HWPOISON_LARGE)
        .union(VmFault::FALLBACK);
    /// A `vm_fault_t` of 0: the handler set `vmf->page` (or installed the PTE).
    pub const NONE: VmFault = VmFault::empty();
}

impl serde::Serialize for VmFault {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u32(self.bits())
    }
}

impl fmt::Debug for VmFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Self::OOM, "OOM"),
            (Self::SIGBUS, "SIGBUS"),
            (Self::MAJOR, "MAJOR"),
            (Self::HWPOISON, "HWPOISON"),
            (Self::SIGSEGV, "SIGSEGV"),
            (Self::NOPAGE, "NOPAGE"),
            (Self::LOCKED, "LOCKED"),
            (Self::RETRY, "RETRY"),
            (Self::DONE_COW, "DONE_COW"),
        ];
        let set: Vec<&str> = names
            .iter()
            .filter(|(b, _)| self.intersects(*b))
            .map(|(_, n)| *n)
            .collect();
        if set.is_empty() {
            f.write_str("VM_FAULT_0")
        } else {
            write!(f, "VM_FAULT_{}", set.join("|VM_FAULT_"))
        }
    }
}

/// Something the kernel printed or a checker found, recorded while execution continues.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Event {
    /// A `WARN_ON()` / `WARN_ON_ONCE()` splat.
    Warn {
        /// The warning site, `file:function`, as the kernel log's `WARNING:` line names it: for
        /// a WARN in a function inlined into its caller, the caller.
        site: &'static str,
        /// The condition that fired.
        condition: String,
    },
    /// `print_bad_pte()`: "BUG: Bad page map", TAINT_BAD_PAGE.
    BadPageMap {
        /// The user address.
        addr: VirtAddr,
        /// The reporting function.
        site: &'static str,
    },
    /// A frame was freed while a PTE or a pin still referred to it, or a freed frame was
    /// reached through a PTE or a pin.
    UseAfterFree {
        /// The frame.
        pfn: Pfn,
        /// What still referred to it.
        holder: String,
    },
    /// A path that never returns in the real kernel (e.g. the long-term pin migration loop on a
    /// folio that cannot be migrated); the model stops it as a fatal signal would.
    Livelock {
        /// The looping function.
        site: &'static str,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Warn { site, condition } => write!(f, "WARN: {condition} at {site}"),
            Event::BadPageMap { addr, site } => write!(f, "BUG: Bad page map at {addr} ({site})"),
            Event::UseAfterFree { pfn, holder } => {
                write!(f, "use-after-free: frame {pfn} freed while {holder}")
            }
            Event::Livelock { site } => write!(f, "livelock in {site} (ended by a fatal signal)"),
        }
    }
}
