//! The exporter ids the model and the probe share.

use std::fmt;
use std::str::FromStr;

macro_rules! exporter_ids {
    ($($(#[$doc:meta])* $variant:ident = $id:literal,)*) => {
        /// A catalogue exporter: one the model knows and the probe can look for.
        ///
        /// The order of the variants is the order of the rows in every table.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum ExporterId {
            $($(#[$doc])* $variant,)*
        }

        impl ExporterId {
            /// Every catalogue exporter, in table order.
            pub const ALL: &'static [ExporterId] = &[$(ExporterId::$variant,)*];

            /// The id as it appears in JSON and on the command line.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ExporterId::$variant => $id,)*
                }
            }
        }
    };
}

exporter_ids! {
    /// The dma-heap `system` (drivers/dma-buf/heaps/system_heap.c).
    SystemHeap = "system-heap",
    /// The dma-heap of the default CMA area (drivers/dma-buf/heaps/cma_heap.c).
    CmaHeap = "cma-heap",
    /// udmabuf over a shmem memfd (drivers/dma-buf/udmabuf.c).
    UdmabufShmem = "udmabuf-shmem",
    /// udmabuf over a hugetlb memfd.
    UdmabufHugetlb = "udmabuf-hugetlb",
    /// The virtual GEM driver (drivers/gpu/drm/vgem).
    Vgem = "vgem",
    /// virtio-gpu shmem objects (drivers/gpu/drm/virtio).
    VirtioGpu = "virtio-gpu",
    /// The Cirrus VGA (drivers/gpu/drm/tiny/cirrus.c).
    Cirrus = "cirrus",
    /// The Bochs VGA (drivers/gpu/drm/tiny/bochs.c, TTM VRAM helper).
    Bochs = "bochs",
    /// The QXL paravirtual GPU (drivers/gpu/drm/qxl, TTM).
    Qxl = "qxl",
    /// amdgpu (TTM).
    Amdgpu = "amdgpu",
    /// i915 GEM.
    I915 = "i915",
    /// The GEM DMA helper (drm_gem_dma_helper.c).
    GemDma = "gem-dma",
    /// vivid with videobuf2-vmalloc.
    VividVmalloc = "vivid-vmalloc",
    /// vivid with videobuf2-dma-contig.
    VividDmaContig = "vivid-dma-contig",
    /// videobuf2-dma-sg.
    Vb2DmaSg = "vb2-dma-sg",
    /// rockchip GEM.
    Rockchip = "rockchip",
    /// tegra GEM.
    Tegra = "tegra",
    /// virtio-gpu host-visible blob resources.
    VirtioGpuBlob = "virtio-gpu-blob",
    /// A plain shmem memfd: the control that is not a dma-buf.
    Memfd = "memfd",
}

impl fmt::Display for ExporterId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An exporter id that is not in the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown exporter `{0}` (expected one of: {list})", list = ExporterId::ALL.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", "))]
pub struct UnknownExporterId(pub String);

impl FromStr for ExporterId {
    type Err = UnknownExporterId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ExporterId::ALL
            .iter()
            .copied()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| UnknownExporterId(s.to_owned()))
    }
}

serde_as_string!(ExporterId);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_typos_are_named() {
        for id in ExporterId::ALL {
            assert_eq!(id.as_str().parse::<ExporterId>(), Ok(*id));
        }
        let e = "nosuch".parse::<ExporterId>().unwrap_err().to_string();
        assert!(e.contains("`nosuch`") && e.contains("system-heap"), "{e}");
    }
}
