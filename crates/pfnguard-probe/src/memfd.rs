//! The control: a plain shmem memfd (`memfd_create(2)` + `ftruncate(2)`),
//! mapped like the dma-bufs. It is not a dma-buf, so its fdinfo has no
//! `exp_name`.

use rustix::fs::MemfdFlags;

use crate::exporter::{step, Buffer, ExportError};

/// A memfd of `size` bytes.
pub(crate) fn export(size: u64) -> Result<Buffer, ExportError> {
    let fd = rustix::fs::memfd_create("pfnguard-memfd", MemfdFlags::CLOEXEC)
        .map_err(step("memfd_create"))?;
    rustix::fs::ftruncate(&fd, size).map_err(step("ftruncate"))?;
    Buffer::new(fd, Vec::new())
}
