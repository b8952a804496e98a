//! What the modeled kernels' drivers do differently, as data: one [`DriverProfile`] per kernel
//! profile, found by the MM profile's name.

/// Driver-side facts of one kernel release (Debian's source tree).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DriverProfile {
    /// The MM profile this goes with.
    pub kernel: &'static str,
    /// drivers/dma-buf/heaps/cma_heap.c maps with `vmf_insert_pfn` and VM_IO|VM_PFNMAP (6.8+);
    /// before, `cma_heap_vm_fault` returns `vmf->page`.
    pub cma_heap_inserts_pfn: bool,
    /// drivers/dma-buf/udmabuf.c maps with `vmf_insert_pfn` and VM_PFNMAP (6.11+), its folios
    /// long-term pinned by `memfd_pin_folios()`; before, `udmabuf_vm_fault` returns `vmf->page`.
    pub udmabuf_inserts_pfn: bool,
    /// drm_prime.c `drm_prime_handle_to_fd_ioctl` falls back to the generic
    /// `drm_gem_prime_handle_to_fd` (6.6+); before, a driver without `prime_handle_to_fd` gets
    /// -ENOSYS.
    pub drm_generic_prime_export: bool,
    /// `DRM_GEM_VRAM_DRIVER` (bochs) sets `.prime_handle_to_fd`.
    pub vram_helper_prime_export: bool,
    /// drm_prime.c `drm_gem_dmabuf_mmap` calls `drm_gem_prime_mmap` itself (6.6+); before, it
    /// calls the driver's `.gem_prime_mmap` and a driver without one (qxl) gets -ENOSYS.
    pub drm_generic_prime_mmap: bool,
    /// CONFIG_DMABUF_HEAPS in Debian's amd64 config.
    pub built_dmabuf_heaps: bool,
    /// CONFIG_UDMABUF in Debian's amd64 config.
    pub built_udmabuf: bool,
}

/// Debian 6.1.
pub static DRIVERS_6_1: DriverProfile = DriverProfile {
    kernel: "6.1",
    cma_heap_inserts_pfn: false,
    udmabuf_inserts_pfn: false,
    drm_generic_prime_export: false,
    vram_helper_prime_export: false,
    drm_generic_prime_mmap: false,
    built_dmabuf_heaps: false,
    built_udmabuf: false,
};

/// Debian 6.12.
pub static DRIVERS_6_12: DriverProfile = DriverProfile {
    kernel: "6.12",
    cma_heap_inserts_pfn: true,
    udmabuf_inserts_pfn: true,
    drm_generic_prime_export: true,
    vram_helper_prime_export: false,
    drm_generic_prime_mmap: true,
    built_dmabuf_heaps: true,
    built_udmabuf: true,
};

/// The driver profile for an MM profile name.
pub fn drivers_for(kernel: &str) -> Option<&'static DriverProfile> {
    [&DRIVERS_6_1, &DRIVERS_6_12]
        .into_iter()
        .find(|d| d.kernel == kernel)
}
