//! The DRM drivers bound on the system, from debugfs `dri/<minor>/name`
//! (drivers/gpu/drm/drm_debugfs.c:drm_name_info: `NAME dev=DEV unique=UNIQUE`, NAME being
//! `drm_driver.name`).
//!
//! A dma-buf whose `exp_name` is `drm` was exported by one of these drivers through
//! drivers/gpu/drm/drm_prime.c:drm_gem_prime_export, which names every export `KBUILD_MODNAME`;
//! nothing the kernel prints ties the buffer to its driver, but the driver must be bound here
//! (short of a device removed while its buffers live), so the GEM-PRIME exporters of the
//! catalogue whose driver is absent are no candidates.

use crate::root::{Miss, ReadFail, Reader, Tree};

/// Every DRM driver name of `dri/*/name`, sorted and deduplicated; `Ok(None)` when debugfs has
/// no `dri` directory (not mounted, or no DRM device).
pub fn read_drm_drivers(r: &Reader<'_>) -> Result<Option<Vec<String>>, ReadFail> {
    let minors = match r.list(Tree::Debugfs, "dri") {
        Ok(m) => m,
        Err(ReadFail::Miss(Miss::Gone)) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for m in minors.iter().filter(|m| m.parse::<u32>().is_ok()) {
        match r.text(Tree::Debugfs, &format!("dri/{m}/name")) {
            Ok(t) => {
                if let Some(name) = t.split_whitespace().next() {
                    out.push(name.to_owned());
                }
            }
            Err(ReadFail::Miss(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    out.sort();
    out.dedup();
    Ok(Some(out))
}
