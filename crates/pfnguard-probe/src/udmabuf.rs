//! udmabuf: a sealed memfd turned into a dma-buf with `UDMABUF_CREATE`
//! (include/uapi/linux/udmabuf.h, drivers/dma-buf/udmabuf.c).
//!
//! `udmabuf_create` requires `F_SEAL_SHRINK` and refuses `F_SEAL_WRITE`; the
//! memfd must be shmem or hugetlbfs, and offset and size page aligned.

use std::os::fd::{AsFd, AsRawFd};

use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags};
use serde_json::{json, Map};

use crate::exporter::{io_reason, step, Buffer, Candidate, ExportError, FamilyScan, Source};
use crate::{procfs, sys, uapi};

/// The udmabuf misc device.
pub(crate) const NODE: &str = "/dev/udmabuf";
/// Exporter id of the shmem-backed udmabuf.
pub(crate) const SHMEM_ID: &str = "udmabuf-shmem";
/// Exporter id of the hugetlb-backed udmabuf.
pub(crate) const HUGETLB_ID: &str = "udmabuf-hugetlb";

/// Check the device and the hugetlb pool.
pub(crate) fn scan(page: usize) -> FamilyScan {
    let mut scan = FamilyScan::default();
    if let Err(e) = rustix::fs::open(NODE, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()) {
        scan.reason = Some(crate::errno::errno(e));
        return scan;
    }
    let mut detail = Map::new();
    detail.insert("node".into(), json!(NODE));
    let size = 4 * page as u64;
    let mut shmem = detail.clone();
    shmem.insert("memfd".into(), json!("shmem"));
    scan.candidates.push(Candidate {
        id: SHMEM_ID.into(),
        source: Source::Udmabuf {
            hugetlb: false,
            size,
        },
        detail: shmem,
    });
    match std::fs::read_to_string("/proc/meminfo") {
        Ok(text) => match procfs::meminfo_hugepages(&text) {
            (Some(free), Some(kb)) if free > 0 => {
                let mut huge = detail;
                huge.insert("memfd".into(), json!("hugetlb"));
                huge.insert("hugepage_kb".into(), json!(kb));
                scan.candidates.push(Candidate {
                    id: HUGETLB_ID.into(),
                    source: Source::Udmabuf {
                        hugetlb: true,
                        size: kb * 1024,
                    },
                    detail: huge,
                });
            }
            (free, _) => scan.unavailable.push((
                HUGETLB_ID.into(),
                format!(
                    "no free hugetlb pages (HugePages_Free: {})",
                    free.unwrap_or(0)
                ),
            )),
        },
        Err(e) => scan.unavailable.push((
            HUGETLB_ID.into(),
            format!("/proc/meminfo: {}", io_reason(&e)),
        )),
    }
    scan
}

/// memfd (shmem or hugetlb) of `size` bytes, sealed against shrinking, then
/// `UDMABUF_CREATE` with `UDMABUF_FLAGS_CLOEXEC`.
pub(crate) fn export(hugetlb: bool, size: u64) -> Result<Buffer, ExportError> {
    let mut flags = MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING;
    if hugetlb {
        flags |= MemfdFlags::HUGETLB;
    }
    let memfd =
        rustix::fs::memfd_create("pfnguard-udmabuf", flags).map_err(step("memfd_create"))?;
    rustix::fs::ftruncate(&memfd, size).map_err(step("ftruncate"))?;
    rustix::fs::fcntl_add_seals(&memfd, SealFlags::SHRINK).map_err(step("F_ADD_SEALS"))?;
    let dev = rustix::fs::open(NODE, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(step("open"))?;
    let mut create = uapi::UdmabufCreate {
        memfd: memfd.as_raw_fd() as u32,
        flags: uapi::UDMABUF_FLAGS_CLOEXEC,
        offset: 0,
        size,
    };
    let raw = sys::ioctl(dev.as_fd(), uapi::UDMABUF_CREATE, &mut create)
        .map_err(step("UDMABUF_CREATE"))?;
    let fd = sys::fd_from_ioctl(raw).map_err(step("UDMABUF_CREATE"))?;
    Buffer::new(fd, vec![memfd, dev])
}
