//! A process's dma-buf fds: `/proc/PID/fd/N` links and `/proc/PID/fdinfo/N`.
//!
//! The link of a dma-buf fd reads `/dmabuf:NAME` (drivers/dma-buf/dma-buf.c:dmabuffs_dname,
//! the name empty until `DMA_BUF_SET_NAME`); only those fds have their fdinfo read, as
//! libdmabufinfo's `ReadDmaBufFdRefs` does. fdinfo is fs/proc/fd.c:seq_show (`pos`, `flags`,
//! `mnt_id`, `ino`) followed by drivers/dma-buf/dma-buf.c:dma_buf_show_fdinfo (`size`, `count`,
//! `exp_name`, and `name` when set). The parser is pfnguard-probe's `parse_fdinfo`. Kernels
//! before 5.12 print no `ino:`; the inode is then `stat()` of the fd link ([`Reader::inode`]).

use crate::root::{Miss, ReadFail, Reader, Tree};
use crate::FdRef;

/// Whether an fd link names a dma-buf.
pub fn is_dmabuf_link(target: &str) -> bool {
    target.starts_with("/dmabuf:") || target == "anon_inode:dmabuf"
}

/// Every dma-buf fd of `pid`, and notes about fdinfo lines the kernel lacks. An fd closed
/// during the walk is skipped; the process gone, or its fd directory refused, is the error.
pub fn read_dmabuf_fds(r: &Reader<'_>, pid: u32) -> Result<(Vec<FdRef>, Vec<String>), ReadFail> {
    let mut names = r.list(Tree::Proc, &format!("{pid}/fd"))?;
    names.sort_by_key(|n| n.parse::<u32>().unwrap_or(u32::MAX));
    let mut out = Vec::new();
    let mut notes = Vec::new();
    for n in names {
        let Ok(fd) = n.parse::<u32>() else { continue };
        let target = match r.link(Tree::Proc, &format!("{pid}/fd/{fd}")) {
            Ok(t) => t,
            Err(ReadFail::Miss(Miss::Gone)) => continue,
            Err(e) => return Err(e),
        };
        if !is_dmabuf_link(&target) {
            continue;
        }
        let text = match r.text(Tree::Proc, &format!("{pid}/fdinfo/{fd}")) {
            Ok(t) => t,
            Err(ReadFail::Miss(Miss::Gone)) => continue,
            Err(e) => return Err(e),
        };
        let info = pfnguard_probe::procfs::parse_fdinfo(&text);
        let (Some(size), Some(exp_name)) = (info.size, info.exp_name.clone()) else {
            notes.push(
                "dma-buf fdinfo without size:/exp_name: (kernel before 4.13?): such fds are not counted"
                    .to_owned(),
            );
            continue;
        };
        // fdinfo's ino: came with 5.12 (fs/proc/fd.c:seq_show); before, stat the fd.
        let inode = match info.ino {
            Some(i) => i,
            None => match r.inode(Tree::Proc, &format!("{pid}/fd/{fd}")) {
                Ok(i) => i,
                Err(ReadFail::Miss(Miss::Gone)) => continue,
                Err(e) => return Err(e),
            },
        };
        out.push(FdRef {
            fd,
            inode,
            size,
            exp_name,
            name: info.name.filter(|n| !n.is_empty()),
        });
    }
    Ok((out, notes))
}
