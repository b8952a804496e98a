//! The dma-buf side of pfnguard on the MM model ([`pfnguard_mm`]): the dma-buf core
//! ([`core`]), the 2021 VM_PFNMAP proposal as [`policy`]s, models of real [`exporters`] and of
//! user-defined ones ([`custom`]), and the userspace operations that reach GUP ([`consumers`]).
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod consumers;
pub mod core;
pub mod custom;
pub mod exporters;
pub mod policy;
pub mod predict;
pub mod text_file;

pub use exporters::{by_id, catalogue, Exporter};
pub use policy::Policy;
pub use predict::{predict, run_cell, DEFAULT_PAGES, MAX_PAGES};
