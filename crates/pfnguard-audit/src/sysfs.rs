//! sysfs DMA-BUF statistics: `/sys/kernel/dmabuf/buffers/<inode>/{size,exporter_name}`.
//!
//! Written by drivers/dma-buf/dma-buf-sysfs-stats.c:size_show and exporter_name_show
//! (`CONFIG_DMABUF_SYSFS_STATS`, 5.13 and later; off in Debian's builds). One directory per
//! exported buffer, named by its inode, whether or not a process holds it.

use crate::root::{Miss, ReadFail, Reader, Tree};

/// One buffer of the sysfs statistics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysfsBuffer {
    /// The dma-buf's inode (the directory name).
    pub inode: u64,
    /// `size`, bytes.
    pub size: u64,
    /// `exporter_name`.
    pub exporter_name: String,
}

/// Read every buffer of `kernel/dmabuf/buffers`. `Ok(None)` when the kernel has no such
/// directory; buffers freed during the walk are skipped.
pub fn read_sysfs_buffers(r: &Reader<'_>) -> Result<Option<Vec<SysfsBuffer>>, ReadFail> {
    let names = match r.list(Tree::Sys, "kernel/dmabuf/buffers") {
        Ok(n) => n,
        Err(ReadFail::Miss(Miss::Gone)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for n in names {
        let Ok(inode) = n.parse::<u64>() else {
            continue;
        };
        let size = r.text(Tree::Sys, &format!("kernel/dmabuf/buffers/{n}/size"));
        let exp = r.text(
            Tree::Sys,
            &format!("kernel/dmabuf/buffers/{n}/exporter_name"),
        );
        match (size, exp) {
            (Ok(s), Ok(e)) => {
                if let Ok(size) = s.trim().parse() {
                    out.push(SysfsBuffer {
                        inode,
                        size,
                        exporter_name: e.trim().to_owned(),
                    });
                }
            }
            (Err(ReadFail::Error(e)), _) | (_, Err(ReadFail::Error(e))) => {
                return Err(ReadFail::Error(e))
            }
            _ => continue,
        }
    }
    out.sort_by_key(|b| b.inode);
    Ok(Some(out))
}
