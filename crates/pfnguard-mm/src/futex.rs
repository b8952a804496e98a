//! Shared futexes: how `get_futex_key()` names the futex word (kernel/futex/core.c).

use crate::frames::Mapping;
use crate::gup::{get_user_pages_fast, Foll};
use crate::kernel::{Kernel, MmId};
use crate::outcome::{Fail, KResult};
use crate::types::VirtAddr;
use crate::{trace, Errno};

/// The key of a shared futex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FutexKey {
    /// An anonymous page: keyed by `mm` and address (`FUT_OFF_MMSHARED`).
    Private,
    /// A page-cache page: keyed by the inode and the page offset (`FUT_OFF_INODE`).
    Inode,
}

/// kernel/futex/core.c:`get_futex_key` for a shared futex at `addr`:
/// `get_user_pages_fast(FOLL_WRITE)`, retried read-only on -EFAULT; then the folio decides:
/// anon → private key, a page-cache mapping → inode key, a page with no mapping (a driver
/// page) → -EFAULT. The page reference is dropped before returning.
pub fn get_futex_key(k: &mut Kernel, mm: MmId, addr: VirtAddr) -> KResult<FutexKey> {
    const F: &str = "kernel/futex/core.c:get_futex_key";
    let mut pages = Vec::new();
    k.trace.enter();
    let mut r = get_user_pages_fast(k, mm, addr, 1, Foll::WRITE, &mut pages);
    if matches!(r, Err(Fail::Errno(Errno::EFAULT))) {
        r = get_user_pages_fast(k, mm, addr, 1, Foll::empty(), &mut pages);
    }
    k.trace.leave();
    match r {
        Ok(n) if n > 0 => {}
        Ok(_) => return Err(Errno::EFAULT.into()),
        Err(e) => return Err(e),
    }
    let mapping = pages
        .first()
        .and_then(|p| k.frames.folio_of(*p))
        .map(|f| k.frames.folio(f).mapping);
    k.put_pages(&pages);
    match mapping {
        Some(Mapping::None) | None => {
            trace!(
                k,
                F,
                "folio->mapping == NULL (not anon, not page cache) -> -EFAULT"
            );
            Err(Errno::EFAULT.into())
        }
        Some(Mapping::Anon) => {
            trace!(k, F, "key from the anon mapping (private key)");
            Ok(FutexKey::Private)
        }
        Some(m) => {
            trace!(k, F, "key from {m:?} mapping (inode key)");
            Ok(FutexKey::Inode)
        }
    }
}
