//! The exporter's lifetime events, as the scenario steps call them: `dma_buf_release` (the
//! exporter frees its backing), eviction or move (every CPU mapping zapped, new backing),
//! `dma_buf_move_notify`, and the current backing frames: the exporter models' lifetime API
//! on [`Exported`] ([`Exported::release`], [`Exported::evict`], [`Exported::move_notify`],
//! [`Exported::backing`]). This module is the only place the explorer touches them.

use pfnguard_dmabuf::exporters::Exported;
use pfnguard_mm::{KResult, Kernel, Pfn};

/// Why an exporter event cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unavailable(pub &'static str);

/// What the exporter models would not offer (unused while [`AVAILABLE`]).
pub const NOT_YET: &str =
    "the exporter lifetime API (Exported::release/evict/backing/move_notify) is not in this tree";

/// Whether the exporter lifetime API is present.
pub const AVAILABLE: bool = true;

/// Whether an exported buffer's lifetime state (released, the backing after an eviction) lives
/// in the buffer, shared by every clone of a [`World`](crate::World), rather than in the
/// [`Kernel`]: then the explorer would have to build each state from a fresh export
/// ([`Build::Replay`](crate::Build::Replay)) instead of cloning its parent, or a release on
/// one branch would be seen on its siblings. The kernel keeps it (`Kernel::objects`: `released_dma_bufs`,
/// `bo_places`, the shmem page caches in `shmem`); the `Exported` is an
/// immutable description, so: no, and the explorer clones.
pub const CLONES_SHARE_STATE: bool = false;

/// drivers/dma-buf/dma-buf.c:`dma_buf_release` → the exporter's `->release`: the backing is
/// freed; frames still referenced stay allocated until their last reference goes
/// ([`Exported::release`]; a second call does nothing).
pub fn release(e: &Exported, k: &mut Kernel) -> Result<(), Unavailable> {
    e.release(k);
    Ok(())
}

/// Eviction or move (e.g. drivers/gpu/drm/ttm/ttm_bo.c:`ttm_bo_evict` →
/// `ttm_bo_unmap_virtual`): every CPU mapping zapped, new backing; `EOPNOTSUPP` for exporters
/// that cannot ([`Exported::evict`]).
pub fn evict(e: &Exported, k: &mut Kernel) -> Result<KResult<()>, Unavailable> {
    Ok(e.evict(k))
}

/// drivers/dma-buf/dma-buf.c:`dma_buf_move_notify` ([`Exported::move_notify`]).
pub fn move_notify(e: &Exported, k: &mut Kernel) -> Result<(), Unavailable> {
    e.move_notify(k);
    Ok(())
}

/// The frames backing the buffer now ([`Exported::backing`]).
pub fn backing(e: &Exported, k: &Kernel) -> Option<Vec<Pfn>> {
    Some(e.backing(k))
}

/// Whether the buffer's backing can ever differ from its frames at export
/// ([`Exported::backing_moves`]): if not, before the release every frame the buffer had is
/// still its backing.
pub fn backing_moves(e: &Exported) -> bool {
    e.backing_moves()
}
