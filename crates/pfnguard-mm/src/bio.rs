//! Direct I/O on a block device: how `O_DIRECT` takes the user buffer (block/bio.c).

use crate::facts::Fact;
use crate::gup::{get_user_pages_fast, pin_user_pages_fast, Foll};
use crate::kernel::{Kernel, MmId};
use crate::outcome::KResult;
use crate::types::{Pfn, VirtAddr};
use crate::{trace, Errno};

/// The user pages a bio holds for the duration of the I/O.
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use = "the pages stay held until bio_release_pages()"]
pub struct BioPages {
    /// The frames, in order.
    pub pages: Vec<Pfn>,
    /// Taken with FOLL_PIN (6.12) rather than FOLL_GET (6.1).
    pub pinned: bool,
}

/// block/bio.c:`bio_iov_iter_get_pages` for an `O_DIRECT` transfer of `nr` pages at `addr`:
/// 6.12 `iov_iter_extract_pages()` → `pin_user_pages_fast(FOLL_PIN [|FOLL_WRITE])`, 6.1
/// `iov_iter_get_pages2()` → `get_user_pages_fast(FOLL_GET [|FOLL_WRITE])`, FOLL_WRITE when the
/// device writes into the buffer (a `read(2)`). No page taken → -EFAULT; a short count is a
/// short transfer.
pub fn bio_iov_iter_get_pages(
    k: &mut Kernel,
    mm: MmId,
    addr: VirtAddr,
    nr: u64,
    into_user: bool,
) -> KResult<BioPages> {
    let gup = if into_user {
        Foll::WRITE
    } else {
        Foll::empty()
    };
    let pinned = k.has(Fact::OdirectPin);
    trace!(
        k,
        "block/bio.c:bio_iov_iter_get_pages",
        "{}",
        if pinned {
            "iov_iter_extract_pages -> pin_user_pages_fast"
        } else {
            "iov_iter_get_pages2 -> get_user_pages_fast"
        }
    );
    let mut pages = Vec::new();
    k.trace.enter();
    let r = if pinned {
        pin_user_pages_fast(k, mm, addr, nr, gup, &mut pages)
    } else {
        get_user_pages_fast(k, mm, addr, nr, gup, &mut pages)
    };
    k.trace.leave();
    let taken = BioPages { pages, pinned };
    match r {
        Ok(n) if n > 0 => Ok(taken),
        Ok(_) => {
            bio_release_pages(k, taken);
            Err(Errno::EFAULT.into())
        }
        Err(e) => {
            bio_release_pages(k, taken);
            Err(e)
        }
    }
}

/// block/bio.c:`bio_release_pages`: unpin (6.12, `BIO_PAGE_PINNED`) or put (6.1) every page at
/// I/O completion.
pub fn bio_release_pages(k: &mut Kernel, b: BioPages) {
    if b.pinned {
        k.unpin_user_pages(&b.pages);
    } else {
        k.put_pages(&b.pages);
    }
}
