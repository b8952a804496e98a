//! The exporter's lifetime events, as the scenario steps call them: `dma_buf_release` (the
//! exporter frees its backing), eviction or move (every CPU mapping zapped, new backing),
//! `dma_buf_move_notify`, and the current backing frames.
//!
//! The exporter models gain these as methods of
//! [`Exported`](pfnguard_dmabuf::exporters::Exported) (`release`, `evict`, `backing`,
//! `move_notify`); until that API is on this tree, every event is [`Unavailable`] and the
//! properties that need the backing ([`stale_mapping`](crate::Property::StaleMapping)) are
//! never true. This module is the only place the explorer touches them.

use pfnguard_dmabuf::exporters::Exported;
use pfnguard_mm::{KResult, Kernel, Pfn};

/// Why an exporter event cannot run on this tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable(pub &'static str);

/// What the exporter models do not offer yet.
pub const NOT_YET: &str =
    "the exporter lifetime API (Exported::release/evict/backing/move_notify) is not in this tree";

/// Whether the exporter lifetime API is present.
pub const AVAILABLE: bool = false;

/// Whether an exported buffer's lifetime state (released, the backing after an eviction) lives
/// in the buffer, shared by every clone of a [`World`](crate::World), rather than in the
/// [`Kernel`]: then the explorer builds each state from a fresh export
/// ([`Limits::replay`](crate::Limits::replay)) instead of cloning its parent, or a release on
/// one branch would be seen on its siblings.
pub const CLONES_SHARE_STATE: bool = AVAILABLE;

/// drivers/dma-buf/dma-buf.c:`dma_buf_release` → the exporter's `->release`: the backing is
/// freed; frames still referenced stay allocated until their last reference goes.
pub fn release(_e: &Exported, _k: &mut Kernel) -> Result<(), Unavailable> {
    Err(Unavailable(NOT_YET))
}

/// Eviction or move (e.g. drivers/gpu/drm/ttm/ttm_bo.c:`ttm_bo_evict` →
/// `ttm_bo_unmap_virtual`): every CPU mapping zapped, new backing; `EOPNOTSUPP` for exporters
/// that cannot.
pub fn evict(_e: &Exported, _k: &mut Kernel) -> Result<KResult<()>, Unavailable> {
    Err(Unavailable(NOT_YET))
}

/// drivers/dma-buf/dma-buf.c:`dma_buf_move_notify`.
pub fn move_notify(_e: &Exported, _k: &mut Kernel) -> Result<(), Unavailable> {
    Err(Unavailable(NOT_YET))
}

/// The frames backing the buffer now, when the exporter models say.
pub fn backing(_e: &Exported, _k: &Kernel) -> Option<Vec<Pfn>> {
    None
}
