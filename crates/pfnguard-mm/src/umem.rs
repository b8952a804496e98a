//! RDMA memory registration: `ib_umem_get()` pins a user range for the life of the memory
//! region (drivers/infiniband/core/umem.c).

use crate::facts::Fact;
use crate::gup::{pin_user_pages_fast, Foll};
use crate::kernel::{Kernel, MmId};
use crate::outcome::KResult;
use crate::types::{Pfn, VirtAddr};
use crate::{trace, Errno};

/// A registered user memory region.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "the pages stay pinned until ib_umem_release()"]
pub struct Umem {
    /// The pinned frames.
    pub pages: Vec<Pfn>,
}

/// drivers/infiniband/core/umem.c:`ib_umem_get` of `nr` pages at `addr`: `mm->pinned_vm` is
/// raised first (RLIMIT_MEMLOCK), then `pin_user_pages_fast(FOLL_LONGTERM | FOLL_WRITE)` for a
/// writable MR (6.1 always adds FOLL_WRITE, with FOLL_FORCE for a read-only MR; 6.12 only for a
/// writable one). Anything short of every page is unpinned, `pinned_vm` restored, and the
/// GUP error (or -EFAULT) returned.
pub fn ib_umem_get(
    k: &mut Kernel,
    mm: MmId,
    addr: VirtAddr,
    nr: u64,
    writable: bool,
) -> KResult<Umem> {
    let gup = match (!k.has(Fact::UmemNoForce), writable) {
        (true, false) => Foll::LONGTERM | Foll::WRITE | Foll::FORCE,
        (_, true) => Foll::LONGTERM | Foll::WRITE,
        (false, false) => Foll::LONGTERM,
    };
    k.mm_mut(mm).pinned_vm += nr;
    trace!(
        k,
        "drivers/infiniband/core/umem.c:ib_umem_get",
        "pin_user_pages_fast(FOLL_LONGTERM{})",
        if gup.contains(Foll::WRITE) {
            "|FOLL_WRITE"
        } else {
            ""
        }
    );
    let mut pages = Vec::new();
    k.trace.enter();
    let r = pin_user_pages_fast(k, mm, addr, nr, gup, &mut pages);
    k.trace.leave();
    match r {
        Ok(n) if n == nr => Ok(Umem { pages }),
        r => {
            k.unpin_user_pages(&pages);
            let m = k.mm_mut(mm);
            m.pinned_vm = m.pinned_vm.saturating_sub(nr);
            Err(r.err().unwrap_or(Errno::EFAULT.into()))
        }
    }
}

/// drivers/infiniband/core/umem.c:`ib_umem_release`: unpin every page and lower `pinned_vm`.
pub fn ib_umem_release(k: &mut Kernel, mm: MmId, u: Umem) {
    let n = u.pages.len() as u64;
    k.unpin_user_pages(&u.pages);
    let m = k.mm_mut(mm);
    m.pinned_vm = m.pinned_vm.saturating_sub(n);
}
