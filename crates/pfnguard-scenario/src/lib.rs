//! Scenario files and an exhaustive explorer of dma-buf lifetime interleavings, in the manner of
//! LKMM's herd7: a scenario names kernels, policies, an exporter and actors with their steps,
//! and the verdict (`never`, `sometimes`, `always`) each asserted property must get; the
//! explorer runs every interleaving of the actors' steps on the MM model, deduplicating states
//! by a canonical fingerprint.
//!
//! Modules, after what they model: [`world`] (the modeled system: the kernel, the exported
//! buffer, every actor's fds, mappings, pins, pipes, memslots and MRs), [`step`] (the step
//! alphabet: each a call into the modeled kernel paths), [`lifetime`] (the exporter's lifetime
//! events: release, eviction, move_notify), [`property`] (what is asserted on a world),
//! [`fingerprint`] (the canonical hash of a world), [`explore`] (breadth-first search over
//! interleavings with the visited set) and [`scenario`] (TOML scenario files).
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod explore;
pub mod fingerprint;
pub mod lifetime;
pub mod observe;
pub mod property;
pub mod scenario;
pub mod step;
pub mod world;

pub use explore::{
    explore_alphabet, explore_alphabet_with, run_scenario, Alphabet, Build, CaseReport,
    ExploreReport, Limits,
};
pub use property::{Property, Verdict};
pub use scenario::{load_scenario, parse_scenario, Scenario, ScenarioError};
pub use step::Step;
pub use world::World;
