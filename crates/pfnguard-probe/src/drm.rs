//! DRM: a dumb buffer on a primary node (`DRM_IOCTL_MODE_CREATE_DUMB`, 64x64
//! at 32 bpp) exported with `DRM_IOCTL_PRIME_HANDLE_TO_FD(DRM_CLOEXEC|DRM_RDWR)`
//! (include/uapi/drm/drm.h, drm_mode.h; drivers/gpu/drm/drm_prime.c).
//!
//! The exporter id comes from the driver name of `DRM_IOCTL_VERSION`.

use std::os::fd::AsFd;

use rustix::fs::{Mode, OFlags};
use serde_json::{json, Map};

use crate::exporter::{
    io_reason, numbered, step, Buffer, Candidate, ExportError, FamilyScan, Source,
};
use crate::{errno, sys, uapi};

/// Where DRM nodes live.
pub(crate) const DIR: &str = "/dev/dri";

/// The exporter id of a DRM driver name.
pub(crate) fn driver_id(name: &str) -> String {
    match name {
        "virtio_gpu" => "virtio-gpu".into(),
        "bochs-drm" | "bochs" => "bochs".into(),
        "cirrus" | "cirrus-qemu" => "cirrus".into(),
        "qxl" => "qxl".into(),
        other => other.into(),
    }
}

/// Open every `/dev/dri/cardN` and ask its driver name.
pub(crate) fn scan() -> FamilyScan {
    let mut scan = FamilyScan::default();
    let entries = match std::fs::read_dir(DIR) {
        Ok(e) => e,
        Err(e) => {
            scan.reason = Some(io_reason(&e));
            return scan;
        }
    };
    let mut cards: Vec<(u32, String)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            numbered(&name, "card").map(|n| (n, name))
        })
        .collect();
    cards.sort();
    if cards.is_empty() {
        scan.reason = Some("ENOENT".into());
    }
    for (_, name) in cards {
        let node = format!("{DIR}/{name}");
        let card = match rustix::fs::open(&node, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(e) => {
                scan.errors
                    .push(format!("{node}: open: {}", errno::errno(e)));
                continue;
            }
        };
        let version = match sys::drm_version(card.as_fd()) {
            Ok(v) => v,
            Err(e) => {
                scan.errors
                    .push(format!("{node}: DRM_IOCTL_VERSION: {}", errno::errno(e)));
                continue;
            }
        };
        let mut detail = Map::new();
        detail.insert("node".into(), json!(node));
        detail.insert("driver".into(), json!(version.name));
        detail.insert("driver_desc".into(), json!(version.desc));
        let (major, minor, patch) = version.version;
        detail.insert(
            "driver_version".into(),
            json!(format!("{major}.{minor}.{patch}")),
        );
        scan.candidates.push(Candidate {
            id: driver_id(&version.name),
            source: Source::Drm { node },
            detail,
        });
    }
    scan
}

/// Create a 64x64x32 dumb buffer on `node` and export it read-write.
pub(crate) fn export(node: &str) -> Result<Buffer, ExportError> {
    let card = rustix::fs::open(node, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(step("open"))?;
    let mut dumb = uapi::DrmModeCreateDumb {
        height: 64,
        width: 64,
        bpp: 32,
        ..Default::default()
    };
    sys::ioctl(card.as_fd(), uapi::DRM_IOCTL_MODE_CREATE_DUMB, &mut dumb)
        .map_err(step("DRM_IOCTL_MODE_CREATE_DUMB"))?;
    let mut prime = uapi::DrmPrimeHandle {
        handle: dumb.handle,
        flags: uapi::DRM_CLOEXEC | uapi::DRM_RDWR,
        fd: -1,
    };
    sys::ioctl(card.as_fd(), uapi::DRM_IOCTL_PRIME_HANDLE_TO_FD, &mut prime)
        .map_err(step("DRM_IOCTL_PRIME_HANDLE_TO_FD"))?;
    let fd = sys::fd_from_ioctl(prime.fd).map_err(step("DRM_IOCTL_PRIME_HANDLE_TO_FD"))?;
    // The dma-buf holds its own reference to the GEM object; the card fd (and
    // with it the handle) is kept open as long as the buffer anyway.
    Buffer::new(fd, vec![card])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(driver_id("vgem"), "vgem");
        assert_eq!(driver_id("virtio_gpu"), "virtio-gpu");
        assert_eq!(driver_id("bochs-drm"), "bochs");
        assert_eq!(driver_id("cirrus"), "cirrus");
        assert_eq!(driver_id("cirrus-qemu"), "cirrus");
        assert_eq!(driver_id("qxl"), "qxl");
        assert_eq!(driver_id("amdgpu"), "amdgpu");
    }
}
