//! io_uring fixed buffers: `IORING_REGISTER_BUFFERS` pins the user pages for as long as they
//! stay registered (io_uring/rsrc.c).

use crate::facts::Fact;
use crate::gup::{pin_user_pages, pin_user_pages_fast, Foll};
use crate::kernel::{HeldPages, Kernel, MmId};
use crate::outcome::KResult;
use crate::types::{Pfn, VirtAddr, PAGE_SIZE};
use crate::{trace, Errno};

/// The holder name of registered buffers' pins.
pub const IO_URING: &str = "io_uring";

/// io_uring/rsrc.c:`io_sqe_buffer_register` of `nr` pages at `addr` through `io_pin_pages()`:
/// 6.12 (io_uring/memmap.c) `pin_user_pages_fast(FOLL_WRITE|FOLL_LONGTERM)`, the GUP errno
/// passed through; 6.1 (io_uring/rsrc.c) `pin_user_pages()` under the mmap lock with the VMA
/// array, then -EOPNOTSUPP if any VMA is file-backed and neither shmem nor hugetlb. A short
/// pin is unpinned and -EFAULT. The pins are held by [`IO_URING`] until
/// [`io_sqe_buffers_unregister`]; the frames registered are returned.
pub fn io_sqe_buffer_register(
    k: &mut Kernel,
    mm: MmId,
    addr: VirtAddr,
    nr: u64,
) -> KResult<Vec<Pfn>> {
    const F: &str = "io_uring/rsrc.c:io_sqe_buffer_register";
    let mut pages = Vec::new();
    let gup = Foll::WRITE | Foll::LONGTERM;
    k.trace.enter();
    let r = if k.has(Fact::IoUringPinFast) {
        trace!(
            k,
            "io_uring/memmap.c:io_pin_pages",
            "pin_user_pages_fast(FOLL_WRITE|FOLL_LONGTERM)"
        );
        pin_user_pages_fast(k, mm, addr, nr, gup, &mut pages)
    } else {
        trace!(
            k,
            "io_uring/rsrc.c:io_pin_pages",
            "pin_user_pages(FOLL_WRITE|FOLL_LONGTERM, vmas)"
        );
        pin_user_pages(k, mm, addr, nr, gup, &mut pages)
    };
    k.trace.leave();
    match r {
        Ok(n) if n == nr => {}
        Ok(_) => {
            trace!(k, F, "short pin -> unpin, -EFAULT");
            k.unpin_user_pages(&pages);
            return Err(Errno::EFAULT.into());
        }
        Err(e) => {
            k.unpin_user_pages(&pages);
            return Err(e);
        }
    }
    if !k.has(Fact::IoUringNoFileCheck) {
        let end = addr.0 + nr * PAGE_SIZE;
        let bad = k
            .mm(mm)
            .vmas
            .values()
            .filter(|v| v.start.0 < end && v.end > addr)
            .any(|v| v.file.is_some() && !v.is_shmem() && !v.is_hugetlb());
        if bad {
            trace!(
                k,
                "io_uring/rsrc.c:io_pin_pages",
                "file-backed VMA that is not shmem/hugetlb -> -EOPNOTSUPP"
            );
            k.unpin_user_pages(&pages);
            return Err(Errno::EOPNOTSUPP.into());
        }
    }
    k.held.push(HeldPages {
        holder: IO_URING,
        pinned: true,
        pages: pages.clone(),
    });
    Ok(pages)
}

/// io_uring/rsrc.c:`io_sqe_buffers_unregister` (or the ring's release): every registered
/// buffer's pages are unpinned.
pub fn io_sqe_buffers_unregister(k: &mut Kernel) {
    k.release_held(IO_URING);
}
