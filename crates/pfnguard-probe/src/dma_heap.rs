//! dma-heaps: `/dev/dma_heap/NAME` and `DMA_HEAP_IOCTL_ALLOC`
//! (include/uapi/linux/dma-heap.h, drivers/dma-buf/dma-heap.c).

use std::os::fd::AsFd;

use rustix::fs::{Mode, OFlags};
use serde_json::{json, Map};

use crate::exporter::{io_reason, step, Buffer, Candidate, ExportError, FamilyScan, Source};
use crate::{sys, uapi};

/// The directory the dma-heap core creates its nodes in.
pub(crate) const DIR: &str = "/dev/dma_heap";

/// Heap names the default CMA area is registered under (`cma_heap.c`:
/// `cma_get_name(dev_get_cma_area(NULL))`; "reserved" on x86, "linux,cma"
/// from a device tree, "default_cma_region" since the per-region CMA heaps).
const CMA_NAMES: [&str; 3] = ["reserved", "linux,cma", "default_cma_region"];

/// The exporter id of a heap: `system-heap` for "system", `cma-heap` for the
/// default CMA area, otherwise the heap's name.
pub(crate) fn heap_id(name: &str) -> String {
    if name == "system" {
        "system-heap".to_owned()
    } else if CMA_NAMES.contains(&name) {
        "cma-heap".to_owned()
    } else {
        name.to_owned()
    }
}

/// List every heap node.
pub(crate) fn scan() -> FamilyScan {
    let mut scan = FamilyScan::default();
    let entries = match std::fs::read_dir(DIR) {
        Ok(e) => e,
        Err(e) => {
            scan.reason = Some(io_reason(&e));
            return scan;
        }
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for name in names {
        let node = format!("{DIR}/{name}");
        let mut detail = Map::new();
        detail.insert("node".into(), json!(node));
        detail.insert("heap".into(), json!(name));
        scan.candidates.push(Candidate {
            id: heap_id(&name),
            source: Source::DmaHeap { node },
            detail,
        });
    }
    if scan.candidates.is_empty() {
        scan.reason = Some("ENOENT".into());
    }
    scan
}

/// Allocate `len` bytes from the heap at `node` (fd flags `O_RDWR|O_CLOEXEC`).
pub(crate) fn export(node: &str, len: u64) -> Result<Buffer, ExportError> {
    let heap = rustix::fs::open(node, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(step("open"))?;
    let mut data = uapi::DmaHeapAllocationData {
        len,
        fd: 0,
        fd_flags: (OFlags::RDWR | OFlags::CLOEXEC).bits(),
        heap_flags: 0,
    };
    sys::ioctl(heap.as_fd(), uapi::DMA_HEAP_IOCTL_ALLOC, &mut data)
        .map_err(step("DMA_HEAP_IOCTL_ALLOC"))?;
    let fd = sys::fd_from_ioctl(data.fd as i32).map_err(step("DMA_HEAP_IOCTL_ALLOC"))?;
    Buffer::new(fd, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert_eq!(heap_id("system"), "system-heap");
        assert_eq!(heap_id("reserved"), "cma-heap");
        assert_eq!(heap_id("linux,cma"), "cma-heap");
        assert_eq!(heap_id("protected,secure"), "protected,secure");
    }
}
