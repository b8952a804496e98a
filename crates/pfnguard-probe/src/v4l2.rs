//! V4L2: an `MMAP` buffer of a capture node (`VIDIOC_REQBUFS`) exported with
//! `VIDIOC_EXPBUF` (include/uapi/linux/videodev2.h;
//! drivers/media/common/videobuf2/videobuf2-core.c `vb2_core_expbuf`).
//!
//! vivid instances are told apart by what they report, not by node number:
//! `vivid_create_queue` (drivers/media/test-drivers/vivid/vivid-core.c) leaves
//! `VB2_USERPTR` out of the io modes exactly when the instance uses
//! `vb2_dma_contig` (`allocators=1`), so the `capabilities` that `VIDIOC_REQBUFS`
//! reports lack `V4L2_BUF_CAP_SUPPORTS_USERPTR`. The dma-buf's `exp_name`
//! (`videobuf2_vmalloc` / `videobuf2_dma_contig`) is recorded as a second
//! witness. One capture node is probed per instance (`bus_info`).

use std::collections::BTreeSet;
use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{Mode, OFlags};
use serde_json::{json, Map};

use crate::exporter::{
    c_str, io_reason, numbered, step, Buffer, Candidate, ExportError, FamilyScan, Source,
};
use crate::{errno, sys, uapi};

fn reqbufs(
    video: &OwnedFd,
    buf_type: u32,
    count: u32,
) -> rustix::io::Result<uapi::V4l2Requestbuffers> {
    let mut req = uapi::V4l2Requestbuffers {
        count,
        type_: buf_type,
        memory: uapi::V4L2_MEMORY_MMAP,
        ..Default::default()
    };
    sys::ioctl(video.as_fd(), uapi::VIDIOC_REQBUFS, &mut req)?;
    Ok(req)
}

fn expbuf(video: &OwnedFd, buf_type: u32) -> Result<OwnedFd, ExportError> {
    reqbufs(video, buf_type, 1).map_err(step("VIDIOC_REQBUFS"))?;
    let mut exp = uapi::V4l2Exportbuffer {
        type_: buf_type,
        index: 0,
        plane: 0,
        flags: (OFlags::RDWR | OFlags::CLOEXEC).bits(),
        fd: -1,
        ..Default::default()
    };
    sys::ioctl(video.as_fd(), uapi::VIDIOC_EXPBUF, &mut exp).map_err(step("VIDIOC_EXPBUF"))?;
    sys::fd_from_ioctl(exp.fd).map_err(step("VIDIOC_EXPBUF"))
}

/// The exporter id of a capture queue, and the evidence for it.
pub(crate) fn classify(
    driver: &str,
    reqbufs_caps: Option<u32>,
    exp_name: Option<&str>,
) -> (String, String) {
    let caps = reqbufs_caps.filter(|c| c & uapi::V4L2_BUF_CAP_SUPPORTS_MMAP != 0);
    if driver == "vivid" {
        if let Some(c) = caps {
            return if c & uapi::V4L2_BUF_CAP_SUPPORTS_USERPTR != 0 {
                (
                    "vivid-vmalloc".into(),
                    format!("VIDIOC_REQBUFS capabilities {c:#x} include V4L2_BUF_CAP_SUPPORTS_USERPTR (vb2_vmalloc)"),
                )
            } else {
                (
                    "vivid-dma-contig".into(),
                    format!(
                        "VIDIOC_REQBUFS capabilities {c:#x} lack V4L2_BUF_CAP_SUPPORTS_USERPTR (allocators=1, vb2_dma_contig)"
                    ),
                )
            };
        }
        return match exp_name {
            Some("videobuf2_vmalloc") => (
                "vivid-vmalloc".into(),
                "dma-buf exp_name videobuf2_vmalloc".into(),
            ),
            Some("videobuf2_dma_contig") => (
                "vivid-dma-contig".into(),
                "dma-buf exp_name videobuf2_dma_contig".into(),
            ),
            _ => ("vivid".into(), "allocator not observable".into()),
        };
    }
    match exp_name {
        Some("videobuf2_dma_sg") => (
            "vb2-dma-sg".into(),
            "dma-buf exp_name videobuf2_dma_sg".into(),
        ),
        Some("videobuf2_vmalloc") => (
            "vb2-vmalloc".into(),
            "dma-buf exp_name videobuf2_vmalloc".into(),
        ),
        Some("videobuf2_dma_contig") => (
            "vb2-dma-contig".into(),
            "dma-buf exp_name videobuf2_dma_contig".into(),
        ),
        _ => (driver.into(), "driver name".into()),
    }
}

/// Find one streaming capture node per V4L2 device instance.
pub(crate) fn scan() -> FamilyScan {
    let mut scan = FamilyScan::default();
    let nodes = match video_nodes() {
        Ok(n) => n,
        Err(reason) => {
            scan.reason = Some(reason);
            return scan;
        }
    };
    if nodes.is_empty() {
        scan.reason = Some("ENOENT".into());
    }
    let mut instances = BTreeSet::new();
    for node in nodes {
        let dev = match open_capture_node(&node) {
            Ok(Some(d)) => d,
            Ok(None) => continue,
            Err(e) => {
                scan.errors.push(e);
                continue;
            }
        };
        if !instances.insert((dev.driver.clone(), dev.bus_info.clone())) {
            continue;
        }
        scan.candidates.push(candidate(node, &dev));
    }
    scan
}

/// The `/dev/videoN` nodes, in number order; the errno name when `/dev` cannot be read.
fn video_nodes() -> Result<Vec<String>, String> {
    let entries = std::fs::read_dir("/dev").map_err(|e| io_reason(&e))?;
    let mut nodes: Vec<(u32, String)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            numbered(&name, "video").map(|n| (n, format!("/dev/{name}")))
        })
        .collect();
    nodes.sort();
    Ok(nodes.into_iter().map(|(_, n)| n).collect())
}

/// An open streaming capture node and what `VIDIOC_QUERYCAP` said about it.
struct CaptureNode {
    video: OwnedFd,
    cap: uapi::V4l2Capability,
    /// `device_caps` when V4L2_CAP_DEVICE_CAPS is set, else `capabilities`.
    caps: u32,
    buf_type: u32,
    driver: String,
    bus_info: String,
}

/// Open `node` and `VIDIOC_QUERYCAP` it: `Ok(None)` for a node that is not a streaming
/// (single- or multi-planar) capture device; `Err` with the failing step otherwise.
fn open_capture_node(node: &str) -> Result<Option<CaptureNode>, String> {
    let video = rustix::fs::open(node, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| format!("{node}: open: {}", errno::errno(e)))?;
    let mut cap = uapi::V4l2Capability::default();
    sys::ioctl(video.as_fd(), uapi::VIDIOC_QUERYCAP, &mut cap)
        .map_err(|e| format!("{node}: VIDIOC_QUERYCAP: {}", errno::errno(e)))?;
    let caps = if cap.capabilities & uapi::V4L2_CAP_DEVICE_CAPS != 0 {
        cap.device_caps
    } else {
        cap.capabilities
    };
    let buf_type = if caps & uapi::V4L2_CAP_VIDEO_CAPTURE != 0 {
        uapi::V4L2_BUF_TYPE_VIDEO_CAPTURE
    } else if caps & uapi::V4L2_CAP_VIDEO_CAPTURE_MPLANE != 0 {
        uapi::V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE
    } else {
        return Ok(None);
    };
    if caps & uapi::V4L2_CAP_STREAMING == 0 {
        return Ok(None);
    }
    let driver = c_str(&cap.driver);
    let bus_info = c_str(&cap.bus_info);
    Ok(Some(CaptureNode {
        video,
        cap,
        caps,
        buf_type,
        driver,
        bus_info,
    }))
}

/// The candidate of one instance: its capabilities, the `VIDIOC_REQBUFS` capabilities, the
/// `exp_name` of a discovery export, and the allocator [`classify`] infers from them.
fn candidate(node: String, dev: &CaptureNode) -> Candidate {
    let (video, buf_type, caps) = (&dev.video, dev.buf_type, dev.caps);
    let mut detail = Map::new();
    detail.insert("node".into(), json!(node));
    detail.insert("driver".into(), json!(dev.driver));
    detail.insert("card".into(), json!(c_str(&dev.cap.card)));
    detail.insert("bus_info".into(), json!(dev.bus_info));
    detail.insert("device_caps".into(), json!(format!("{caps:#010x}")));
    detail.insert("buf_type".into(), json!(buf_type));
    let reqbufs_caps = match reqbufs(video, buf_type, 0) {
        Ok(r) => {
            detail.insert(
                "reqbufs_capabilities".into(),
                json!(format!("{:#x}", r.capabilities)),
            );
            Some(r.capabilities)
        }
        Err(e) => {
            detail.insert(
                "reqbufs_capabilities".into(),
                json!(format!("VIDIOC_REQBUFS: {}", errno::errno(e))),
            );
            None
        }
    };
    let exp_name = match expbuf(video, buf_type) {
        Ok(fd) => {
            let name = Buffer::new(fd, Vec::new())
                .ok()
                .and_then(|b| b.fdinfo().ok())
                .and_then(|f| f.exp_name);
            let _ = reqbufs(video, buf_type, 0);
            name
        }
        Err(e) => {
            detail.insert("discovery_export".into(), json!(e.to_string()));
            None
        }
    };
    if let Some(n) = &exp_name {
        detail.insert("discovery_exp_name".into(), json!(n));
    }
    let (id, evidence) = classify(&dev.driver, reqbufs_caps, exp_name.as_deref());
    detail.insert("allocator_evidence".into(), json!(evidence));
    Candidate {
        id,
        source: Source::V4l2 { node, buf_type },
        detail,
    }
}

/// `VIDIOC_REQBUFS(MMAP, count 1)` then `VIDIOC_EXPBUF(index 0, O_RDWR|O_CLOEXEC)`.
pub(crate) fn export(node: &str, buf_type: u32) -> Result<Buffer, ExportError> {
    let video = rustix::fs::open(node, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(step("open"))?;
    let fd = expbuf(&video, buf_type)?;
    Buffer::new(fd, vec![video])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vivid_by_userptr_bit() {
        let vmalloc = uapi::V4L2_BUF_CAP_SUPPORTS_MMAP
            | uapi::V4L2_BUF_CAP_SUPPORTS_USERPTR
            | uapi::V4L2_BUF_CAP_SUPPORTS_DMABUF;
        let contig = uapi::V4L2_BUF_CAP_SUPPORTS_MMAP | uapi::V4L2_BUF_CAP_SUPPORTS_DMABUF;
        assert_eq!(classify("vivid", Some(vmalloc), None).0, "vivid-vmalloc");
        assert_eq!(classify("vivid", Some(contig), None).0, "vivid-dma-contig");
        // Without capabilities the exp_name decides.
        assert_eq!(
            classify("vivid", Some(0), Some("videobuf2_dma_contig")).0,
            "vivid-dma-contig"
        );
        assert_eq!(
            classify("vivid", None, Some("videobuf2_vmalloc")).0,
            "vivid-vmalloc"
        );
        assert_eq!(
            classify("uvcvideo", Some(vmalloc), Some("videobuf2_dma_sg")).0,
            "vb2-dma-sg"
        );
        assert_eq!(classify("foo", None, None).0, "foo");
    }
}
