//! Pipes fed from user memory (fs/splice.c, fs/pipe.c): `vmsplice(2)` takes page references
//! the pipe keeps until it is read; `write(2)` copies.

use crate::fault::user_access;
use crate::gup::{get_user_pages_fast, Foll};
use crate::kernel::{HeldPages, Kernel, MmId};
use crate::outcome::{Fail, KResult};
use crate::types::VirtAddr;
use crate::{trace, Errno};

/// The holder name of pages a pipe buffer references.
pub const PIPE: &str = "pipe";

/// fs/splice.c:`iter_to_pipe` for `vmsplice(2)` of `nr` pages at `addr`:
/// `iov_iter_get_pages2()` → `get_user_pages_fast(FOLL_GET)`; the pipe buffers keep the
/// references (held by [`PIPE`]) until the pipe is read ([`pipe_read_all`]). Nothing taken →
/// -EFAULT. Returns the pages spliced.
pub fn vmsplice_to_pipe(k: &mut Kernel, mm: MmId, addr: VirtAddr, nr: u64) -> KResult<u64> {
    let mut pages = Vec::new();
    trace!(
        k,
        "fs/splice.c:iter_to_pipe",
        "iov_iter_get_pages2 -> get_user_pages_fast(FOLL_GET)"
    );
    k.trace.enter();
    let r = get_user_pages_fast(k, mm, addr, nr, Foll::empty(), &mut pages);
    k.trace.leave();
    let n = pages.len() as u64;
    k.held.push(HeldPages {
        holder: PIPE,
        pinned: false,
        pages,
    });
    match r {
        Ok(got) if got > 0 => Ok(got),
        Ok(_) => Err(Errno::EFAULT.into()),
        Err(e) if n == 0 => Err(e),
        Err(_) => Ok(n),
    }
}

/// Reading the pipe to the end: fs/pipe.c:`pipe_read` → `pipe_buf_release()` →
/// `page_cache_pipe_buf_release()`/`user_page_pipe_buf_ops` drop every page reference.
pub fn pipe_read_all(k: &mut Kernel) {
    k.release_held(PIPE);
}

/// fs/pipe.c:`pipe_write` of `len` bytes from `addr`: `copy_page_from_iter()`, a plain user read
/// (no GUP) with faults handled as for any user access; a fault that cannot be resolved makes
/// the copy short, and a write that copied nothing returns -EFAULT.
pub fn pipe_write(k: &mut Kernel, mm: MmId, addr: VirtAddr) -> KResult<()> {
    trace!(
        k,
        "fs/pipe.c:pipe_write",
        "copy_page_from_iter (copy_from_user, no GUP)"
    );
    match user_access(k, mm, addr, false) {
        Err(Fail::Signal(_)) => Err(Errno::EFAULT.into()),
        r => r,
    }
}
