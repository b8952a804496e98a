//! The control: a plain shmem memfd (mm/shmem.c), mapped like the dma-bufs.

use pfnguard_mm::shmem::memfd_create;
use pfnguard_mm::{KResult, Kernel, PAGE_SIZE};

use super::{ExportCtx, Exported, Exporter};

/// `memfd_create()` + `ftruncate()`: not a dma-buf; shows what normal memory does.
#[derive(Debug)]
pub struct Memfd;

impl Exporter for Memfd {
    fn id(&self) -> &str {
        "memfd"
    }
    fn summary(&self) -> &'static str {
        "shmem_fault: page-cache pages through finish_fault (the non-dma-buf control)"
    }
    fn export(&self, _k: &mut Kernel, cx: &ExportCtx) -> KResult<Exported> {
        let (file, inode) = memfd_create("pfnguard", cx.pages, false);
        Ok(Exported {
            file,
            buf: None,
            size: cx.pages * PAGE_SIZE,
            shmem: Some(inode),
        })
    }
}
