//! Access to another process's memory through GUP: mm/memory.c `__access_remote_vm()` (behind
//! `/proc/PID/mem` and ptrace) and mm/process_vm_access.c (`process_vm_readv/writev`).

use crate::errno::Errno;
use crate::gup::{get_user_pages_remote, pin_user_pages_remote, Foll};
use crate::kernel::{Kernel, MmId};
use crate::outcome::{Fail, KResult};
use crate::trace;
use crate::types::{VirtAddr, PAGE_SIZE};
use crate::vma::VmaId;

/// `__access_remote_vm()` (mm/memory.c): page by page `get_user_pages_remote()`; where that
/// fails, the VMA's `vm_ops->access` (e.g. `generic_access_phys`, `ttm_bo_vm_access`) is tried;
/// returns the bytes transferred.
pub fn access_remote_vm(
    k: &mut Kernel,
    mm: MmId,
    addr: VirtAddr,
    len: u64,
    write: bool,
    force: bool,
) -> KResult<u64> {
    const F: &str = "mm/memory.c:__access_remote_vm";
    let mut gup = Foll::empty();
    if write {
        gup |= Foll::WRITE;
    }
    if force {
        gup |= Foll::FORCE;
    }
    let mut done = 0u64;
    let mut a = addr;
    while done < len {
        let chunk = (PAGE_SIZE - (a.0 & (PAGE_SIZE - 1))).min(len - done);
        let mut pages = Vec::new();
        match get_user_pages_remote(k, mm, a, 1, gup, &mut pages) {
            Ok(n) if n > 0 => {
                k.put_pages(&pages);
                done += chunk;
            }
            Ok(_) | Err(Fail::Errno(_)) => {
                let Some(vma) = k.find_vma(mm, a) else {
                    break;
                };
                let ops = k.vma(vma).and_then(|v| v.ops.clone());
                let Some(ops) = ops.filter(|o| o.has_access()) else {
                    trace!(
                        k,
                        F,
                        "GUP failed and the VMA has no vm_ops->access: stop after {done} byte(s)"
                    );
                    break;
                };
                trace!(k, F, "GUP failed: {}.access", ops.name());
                let id = VmaId {
                    mm,
                    start: vma.start,
                };
                // `bytes = vma->vm_ops->access(...); if (bytes <= 0) break;`: a chunk never
                // exceeds PAGE_SIZE, so it fits the callback's `int len`.
                match ops.access(k, id, a, chunk as usize, write) {
                    Ok(n) if n > 0 => done += n as u64,
                    Ok(_) => break,
                    Err(e) => {
                        trace!(
                            k,
                            F,
                            "{}.access -> -{}: stop after {done} byte(s)",
                            ops.name(),
                            e.name()
                        );
                        break;
                    }
                }
            }
            Err(e) => return Err(e),
        }
        a = VirtAddr(addr.0 + done);
    }
    Ok(done)
}

/// `mem_rw()` (fs/proc/base.c): `/proc/PID/mem` read or write, always FOLL_FORCE on Debian
/// (CONFIG_PROC_MEM_ALWAYS_FORCE); 0 bytes → -EIO.
pub fn proc_mem_rw(
    k: &mut Kernel,
    mm: MmId,
    addr: VirtAddr,
    len: u64,
    write: bool,
) -> KResult<u64> {
    let n = access_remote_vm(k, mm, addr, len, write, true)?;
    if n == 0 {
        trace!(
            k,
            "fs/proc/base.c:mem_rw",
            "access_remote_vm moved 0 bytes -> -EIO"
        );
        return Err(Errno::EIO.into());
    }
    Ok(n)
}

/// `process_vm_rw_single_vec()` (mm/process_vm_access.c): `pin_user_pages_remote()` of the
/// remote range (FOLL_WRITE for writev); no page pinned → -EFAULT; pins are dropped after the
/// copy.
pub fn process_vm_rw(
    k: &mut Kernel,
    mm: MmId,
    addr: VirtAddr,
    len: u64,
    write: bool,
) -> KResult<u64> {
    const F: &str = "mm/process_vm_access.c:process_vm_rw_single_vec";
    let first = addr.page_down();
    let nr = (addr.0 + len).div_ceil(PAGE_SIZE) - first.0 / PAGE_SIZE;
    let gup = if write { Foll::WRITE } else { Foll::empty() };
    let mut pages = Vec::new();
    let r = pin_user_pages_remote(k, mm, first, nr, gup, &mut pages);
    match r {
        Ok(n) if n > 0 => {
            k.unpin_user_pages(&pages);
            trace!(k, F, "{n} page(s) pinned, copied, unpinned");
            Ok(len.min(n * PAGE_SIZE))
        }
        Ok(_) | Err(Fail::Errno(_)) => {
            trace!(k, F, "pin_user_pages_remote pinned nothing -> -EFAULT");
            Err(Errno::EFAULT.into())
        }
        Err(e) => Err(e),
    }
}
