//! What every exporter recipe shares: the candidate found on the system, the
//! exported buffer, and how a recipe fails.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use rustix::io::Errno;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::errno;
use crate::procfs;
use crate::{dma_heap, drm, memfd, udmabuf, v4l2};

/// Where a buffer comes from, and everything needed to export a fresh one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Source {
    /// `DMA_HEAP_IOCTL_ALLOC` on a `/dev/dma_heap/NAME` node.
    DmaHeap {
        /// The heap's device node.
        node: String,
    },
    /// A sealed memfd turned into a dma-buf by `UDMABUF_CREATE`.
    Udmabuf {
        /// `MFD_HUGETLB` instead of shmem.
        hugetlb: bool,
        /// Buffer size in bytes.
        size: u64,
    },
    /// A DRM dumb buffer exported with `DRM_IOCTL_PRIME_HANDLE_TO_FD`.
    Drm {
        /// The primary node (`/dev/dri/cardN`).
        node: String,
    },
    /// A V4L2 `MMAP` buffer exported with `VIDIOC_EXPBUF`.
    V4l2 {
        /// The capture node (`/dev/videoN`).
        node: String,
        /// `V4L2_BUF_TYPE_VIDEO_CAPTURE` or `_MPLANE`.
        buf_type: u32,
    },
    /// A plain memfd, the non-dma-buf control.
    Memfd,
}

impl Source {
    /// Allocate and export one fresh buffer.
    pub(crate) fn export(&self, page: usize) -> Result<Buffer, ExportError> {
        match self {
            Source::DmaHeap { node } => dma_heap::export(node, 4 * page as u64),
            Source::Udmabuf { hugetlb, size } => udmabuf::export(*hugetlb, *size),
            Source::Drm { node } => drm::export(node),
            Source::V4l2 { node, buf_type } => v4l2::export(node, *buf_type),
            Source::Memfd => memfd::export(4 * page as u64),
        }
    }
}

/// An exporter found on the running system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Candidate {
    /// Exporter id (`system-heap`, `vgem`, `vivid-vmalloc`, ...).
    pub id: String,
    /// How to export a buffer from it.
    pub source: Source,
    /// What discovery learnt (device node, driver, bus info, evidence).
    pub detail: Map<String, Value>,
}

/// What scanning one family of devices found.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct FamilyScan {
    /// Reachable exporters.
    pub candidates: Vec<Candidate>,
    /// Exporters of the family known to exist but unusable: `(id, reason)`.
    pub unavailable: Vec<(String, String)>,
    /// Why nothing of the family is reachable (`ENOENT` for a missing node).
    pub reason: Option<String>,
    /// Per-device errors met while scanning (`/dev/dri/card1: EACCES`).
    pub errors: Vec<String>,
}

/// A failed step of an export recipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{step}: {}", errno::errno(*.errno))]
pub(crate) struct ExportError {
    /// The syscall or ioctl that failed (`DMA_HEAP_IOCTL_ALLOC`).
    pub step: &'static str,
    /// Its errno.
    pub errno: Errno,
}

/// Attach the failed step's name to an errno.
pub(crate) fn step(step: &'static str) -> impl FnOnce(Errno) -> ExportError {
    move |errno| ExportError { step, errno }
}

/// An exported buffer: the fd to map, plus the fds it came from (device,
/// memfd), all closed on drop.
#[derive(Debug)]
pub(crate) struct Buffer {
    /// The dma-buf (or, for the control, the memfd).
    pub fd: OwnedFd,
    /// Size in bytes (`lseek(fd, 0, SEEK_END)`, which a dma-buf answers with its size).
    pub size: u64,
    /// Fds the buffer was made from, kept open as long as the buffer.
    _keep: Vec<OwnedFd>,
}

impl Buffer {
    /// Wrap an exported fd; its size is read with `lseek(SEEK_END)`.
    pub(crate) fn new(fd: OwnedFd, keep: Vec<OwnedFd>) -> Result<Self, ExportError> {
        let size = rustix::fs::seek(&fd, rustix::fs::SeekFrom::End(0)).map_err(step("lseek"))?;
        Ok(Self {
            fd,
            size,
            _keep: keep,
        })
    }

    /// The dma-buf fd apart from the fds it came from (a device node, a memfd), so that the
    /// fd can be closed, or passed on, while they stay open.
    pub(crate) fn into_parts(self) -> (OwnedFd, Vec<OwnedFd>) {
        (self.fd, self._keep)
    }

    /// `/proc/self/fdinfo/N` of the buffer fd, parsed.
    pub(crate) fn fdinfo(&self) -> std::io::Result<procfs::Fdinfo> {
        let path = format!("/proc/self/fdinfo/{}", self.fd.as_fd().as_raw_fd());
        Ok(procfs::parse_fdinfo(&std::fs::read_to_string(path)?))
    }

    /// The length the ops map: the size rounded down to whole pages
    /// (`dma_buf_mmap_internal` refuses a mapping past `size >> PAGE_SHIFT`).
    pub(crate) fn map_len(&self, page: usize) -> usize {
        let size = usize::try_from(self.size).unwrap_or(usize::MAX);
        size - size % page
    }
}

/// A device node path inside a directory, if the name matches `prefix` + digits;
/// returns the number for sorting.
pub(crate) fn numbered(name: &str, prefix: &str) -> Option<u32> {
    name.strip_prefix(prefix)
        .filter(|n| !n.is_empty())
        .and_then(|n| n.parse().ok())
}

/// The errno name of an `std::io::Error` from reading a directory or file.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    errno::io_error(e)
}

/// A NUL-terminated C string field, as text.
pub(crate) fn c_str(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_nodes() {
        assert_eq!(numbered("card0", "card"), Some(0));
        assert_eq!(numbered("card12", "card"), Some(12));
        assert_eq!(numbered("card", "card"), None);
        assert_eq!(numbered("renderD128", "card"), None);
        assert_eq!(numbered("video3", "video"), Some(3));
    }

    #[test]
    fn c_strings() {
        assert_eq!(c_str(b"vivid\0\0\0"), "vivid");
        assert_eq!(c_str(b"abc"), "abc");
    }
}
