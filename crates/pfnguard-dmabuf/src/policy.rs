//! The 2021 proposal "dma-buf: Require VM_SPECIAL vma for mmap" and Jason Gunthorpe's reply, as
//! selectable policies of the modeled kernel.

use std::fmt;
use std::str::FromStr;

/// How strictly the modeled kernel holds dma-buf mmaps to the VM_PFNMAP contract: the levels of
/// `dma_buf.mmap_check` in kernel/dma-buf-mmap-check (drivers/dma-buf/dma-buf.c:
/// dma_buf_mmap_exporter, run after the exporter's mmap in `dma_buf_mmap_internal()` and
/// `dma_buf_mmap()`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Policy {
    /// The stock kernels: no check.
    Off,
    /// `dma_buf_mmap_check()`: a `WARN_ONCE` naming the exporter unless the VMA is VM_PFNMAP
    /// without VM_MIXEDMAP; the mmap proceeds.
    Warn,
    /// The same `WARN_ONCE`, and the mmap fails with -EINVAL (after the exporter's
    /// `vm_ops->close`).
    Require,
    /// `Require`, plus `vm_pfnmap_insert_refused()` on every struct-page insert path into a
    /// VM_PFNMAP or VM_IO VMA (WARN and -EINVAL; SIGBUS on fault paths), plus
    /// `dma_buf_mmap_check_ptes()`: every present PTE of the new VMA must be special.
    Strict,
}

impl Policy {
    /// Every policy, weakest first.
    pub const ALL: [Policy; 4] = [Policy::Off, Policy::Warn, Policy::Require, Policy::Strict];

    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Off => "off",
            Policy::Warn => "warn",
            Policy::Require => "require",
            Policy::Strict => "strict",
        }
    }

    /// The MM configuration this policy needs (`strict` turns on the insert-path check).
    pub fn mm_config(self) -> pfnguard_mm::Config {
        pfnguard_mm::Config {
            pfnmap_insert_check: self == Policy::Strict,
            ..pfnguard_mm::Config::default()
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A policy name that is not one of `off`, `warn`, `require`, `strict`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown policy `{0}` (expected off, warn, require or strict)")]
pub struct UnknownPolicy(pub String);

impl FromStr for Policy {
    type Err = UnknownPolicy;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Policy::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| UnknownPolicy(s.to_owned()))
    }
}
