//! Scenarios on real kernels: the steps userspace can perform ([`UserStep`]), what the model
//! hands the probe to run ([`ScenarioPlan`]: the actors and the chosen interleavings), and the
//! section of the probe report that records what each step did ([`ScenarioSection`]).
//!
//! A step's value is a key in the model's vocabulary
//! (`pfnguard_scenario::world::StepOutcome::key`): `ok`, an errno name (`EFAULT`), a signal
//! name (`SIGBUS`, `SIGSEGV`), `BUG`, `hang`, `skipped` (nothing to act on) or `unavailable`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ExporterId;

/// `madvise()` advice a scenario step can give, by its scenario-file name.
pub const ADVICE: [&str; 8] = [
    "dontneed",
    "dontfork",
    "dofork",
    "dontdump",
    "dodump",
    "wipeonfork",
    "populate_read",
    "populate_write",
];

/// `mprotect()` protections a scenario step can give, by their scenario-file names.
pub const PROT: [&str; 3] = ["none", "r", "rw"];

/// A scenario step that userspace performs with system calls and memory accesses alone, as a
/// scenario file writes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UserStep {
    /// `mmap(NULL, size, PROT_READ|PROT_WRITE, MAP_SHARED or MAP_PRIVATE, fd, 0)`.
    Mmap {
        /// MAP_PRIVATE.
        private: bool,
    },
    /// A one-byte write (`touch`) or read (`read`) of a page of the most recent mapping.
    Access {
        /// The page.
        page: u32,
        /// A write.
        write: bool,
    },
    /// `munmap()` of the most recent mapping.
    Munmap,
    /// `close()` of the dma-buf fd.
    Close,
    /// `fork()`; the child is the actor of this index.
    Fork {
        /// The child actor.
        child: u16,
    },
    /// `_exit(0)`.
    Exit,
    /// An O_DIRECT `read(2)` (into the page) or `write(2)` (from it) of one page.
    Odirect {
        /// The page.
        page: u32,
        /// `read(2)`.
        read: bool,
    },
    /// The oldest O_DIRECT transfer completes.
    OdirectComplete,
    /// `vmsplice()` of one page into the actor's pipe.
    Vmsplice {
        /// The page.
        page: u32,
    },
    /// The actor's pipe is read to the end.
    PipeRead,
    /// `IORING_REGISTER_BUFFERS` of the whole most recent mapping.
    IoUringRegister,
    /// `IORING_UNREGISTER_BUFFERS` of every ring the actor registered.
    IoUringUnregister,
    /// `madvise()` of the whole mapping (an entry of [`ADVICE`]).
    Madvise(&'static str),
    /// `mremap()` growing the mapping by one page, MREMAP_MAYMOVE.
    MremapGrow,
    /// `mprotect()` of the whole mapping (an entry of [`PROT`]).
    Mprotect(&'static str),
    /// `mlock()` of the whole mapping.
    Mlock,
    /// The `Rss:` of the most recent mapping in `/proc/self/smaps`: `counted` or `zero`.
    Rss,
    /// A KVM VM with a memslot over the most recent mapping whose vCPU writes one byte to the
    /// page; the VM is kept.
    KvmMap {
        /// The page.
        page: u32,
    },
    /// Every VM the actor kept is destroyed (its memslots with it).
    KvmUnmap,
}

impl UserStep {
    /// The step as a scenario file writes it; `fork` names its child by `child_name`.
    pub fn render(&self, child_name: &dyn Fn(u16) -> String) -> String {
        match self {
            UserStep::Mmap { private: false } => "mmap".into(),
            UserStep::Mmap { private: true } => "mmap_private".into(),
            UserStep::Access { page, write: true } => format!("touch {page}"),
            UserStep::Access { page, write: false } => format!("read {page}"),
            UserStep::Munmap => "munmap".into(),
            UserStep::Close => "close".into(),
            UserStep::Fork { child } => format!("fork {}", child_name(*child)),
            UserStep::Exit => "exit".into(),
            UserStep::Odirect { page, read: true } => format!("odirect_read {page}"),
            UserStep::Odirect { page, read: false } => format!("odirect_write {page}"),
            UserStep::OdirectComplete => "odirect_complete".into(),
            UserStep::Vmsplice { page } => format!("vmsplice {page}"),
            UserStep::PipeRead => "pipe_read".into(),
            UserStep::IoUringRegister => "io_uring_register".into(),
            UserStep::IoUringUnregister => "io_uring_unregister".into(),
            UserStep::Madvise(a) => format!("madvise {a}"),
            UserStep::MremapGrow => "mremap_grow".into(),
            UserStep::Mprotect(p) => format!("mprotect {p}"),
            UserStep::Mlock => "mlock".into(),
            UserStep::Rss => "rss".into(),
            UserStep::KvmMap { page } => format!("kvm_map {page}"),
            UserStep::KvmUnmap => "kvm_unmap".into(),
        }
    }
}

/// What kind of process an actor of a plan is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanActorKind {
    /// A process that starts holding the dma-buf fd.
    Process,
    /// The child its parent's `fork` step creates.
    Child,
}

/// One actor of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanActor {
    /// Its name in the scenario.
    pub name: String,
    /// Process or child.
    pub kind: PlanActorKind,
    /// A child's parent actor.
    pub parent: Option<u16>,
    /// Its steps, in program order.
    pub steps: Vec<UserStep>,
}

/// A scenario as the probe runs it: the exporter, the actors and the interleavings to drive,
/// each the sequence of actors that take their next step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioPlan {
    /// The scenario's name.
    pub name: String,
    /// The exporter the buffer comes from.
    pub exporter: ExporterId,
    /// The actors.
    pub actors: Vec<PlanActor>,
    /// How many interleavings the scenario has in all.
    pub total: u128,
    /// The interleavings chosen (all of them, or a spread of them).
    pub interleavings: Vec<Vec<u16>>,
}

impl ScenarioPlan {
    /// The interleaving as text: `p:mmap q:mmap p:touch 0 ...`, one `ACTOR:STEP` per step.
    pub fn describe(&self, order: &[u16]) -> Vec<String> {
        let mut pc = vec![0usize; self.actors.len()];
        let name = |c: u16| {
            self.actors
                .get(usize::from(c))
                .map_or_else(|| format!("actor{c}"), |a| a.name.clone())
        };
        order
            .iter()
            .map(|&a| {
                let i = usize::from(a);
                let text = match self.actors.get(i).and_then(|x| x.steps.get(pc[i])) {
                    Some(s) => s.render(&name),
                    None => "?".into(),
                };
                if let Some(p) = pc.get_mut(i) {
                    *p += 1;
                }
                format!("{}:{text}", name(a))
            })
            .collect()
    }
}

/// The value of one step: an outcome key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StepValue(String);

/// A step value that is not one of the vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a step value (ok, an errno name such as EFAULT, a signal name such as SIGBUS, \
     BUG, hang, skipped, unavailable, or what `rss` reads: counted or zero)"
)]
pub struct BadStepValue(pub String);

impl StepValue {
    /// `ok`.
    pub fn ok() -> Self {
        Self("ok".into())
    }
    /// `skipped`: the step had nothing to act on.
    pub fn skipped() -> Self {
        Self("skipped".into())
    }
    /// `unavailable`: the step could not be run.
    pub fn unavailable() -> Self {
        Self("unavailable".into())
    }
    /// What `rss` read: `counted` (the mapping's smaps `Rss:` is not zero) or `zero`.
    pub fn rss(counted: bool) -> Self {
        Self(if counted { "counted" } else { "zero" }.into())
    }
    /// `hang`: the step never returned.
    pub fn hang() -> Self {
        Self("hang".into())
    }
    /// The key.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Whether the step ran and gave a value to compare (not `skipped`, not `unavailable`).
    pub fn measured(&self) -> bool {
        !matches!(self.0.as_str(), "skipped" | "unavailable")
    }
}

impl FromStr for StepValue {
    type Err = BadStepValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let symbol = |prefix: &str| {
            s.strip_prefix(prefix).is_some_and(|r| {
                !r.is_empty()
                    && r.bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            })
        };
        let numbered = s
            .strip_prefix("errno ")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        match s {
            "ok" | "BUG" | "hang" | "skipped" | "unavailable" | "counted" | "zero" => {
                Ok(Self(s.into()))
            }
            _ if symbol("SIG") || symbol("E") || numbered => Ok(Self(s.into())),
            _ => Err(BadStepValue(s.into())),
        }
    }
}

impl fmt::Display for StepValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

serde_as_string!(StepValue);

/// One step of an interleaving as the kernel ran it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepCell {
    /// The actor.
    pub actor: String,
    /// The step's number in the actor's list, 1-based.
    pub step: u16,
    /// The step as the scenario writes it.
    pub text: String,
    /// What it gave.
    pub value: StepValue,
    /// Why it was skipped or unavailable, or what else the probe saw.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One interleaving as the kernel ran it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterleavingRun {
    /// The order, `ACTOR:STEP` per step ([`ScenarioPlan::describe`]).
    pub order: Vec<String>,
    /// Each step that ran, in order; a run cut short (a step that hung, an actor that died)
    /// has fewer steps than its order.
    pub steps: Vec<StepCell>,
    /// Why the run was cut short.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cut: Option<String>,
    /// The size of the buffer the run exported, in bytes (the model runs a buffer of as many
    /// whole pages).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// One scenario on the probed kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioRun {
    /// The scenario's name.
    pub scenario: String,
    /// Its exporter.
    pub exporter: String,
    /// The scenario file's text, for `check` to run the model on (absent when not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub definition: Option<String>,
    /// `skipped: REASON` when it was not run (not observable, exporter unreachable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// How many interleavings the scenario has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<String>,
    /// The interleavings run.
    #[serde(default)]
    pub interleavings: Vec<InterleavingRun>,
}

/// The `scenarios` section of a probe report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioSection {
    /// The most interleavings run per scenario.
    pub cap: usize,
    /// One entry per scenario file the probe was given.
    pub runs: Vec<ScenarioRun>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_values_parse_and_refuse() {
        for ok in [
            "ok", "EFAULT", "SIGBUS", "BUG", "hang", "skipped", "errno 77",
        ] {
            assert_eq!(
                ok.parse::<StepValue>().map(|v| v.to_string()),
                Ok(ok.into())
            );
        }
        for bad in ["", "Ok", "efault", "SIG", "E", "errno x", "ok:cow"] {
            assert!(bad.parse::<StepValue>().is_err(), "{bad}");
        }
        assert!(!StepValue::skipped().measured());
        assert!(!StepValue::unavailable().measured());
        assert!(StepValue::ok().measured());
    }

    #[test]
    fn section_round_trips_and_refuses_bad_values() {
        let s = ScenarioSection {
            cap: 24,
            runs: vec![ScenarioRun {
                scenario: "x".into(),
                exporter: "vgem".into(),
                definition: None,
                status: None,
                total: Some("2".into()),
                interleavings: vec![InterleavingRun {
                    order: vec!["p:mmap".into()],
                    steps: vec![StepCell {
                        actor: "p".into(),
                        step: 1,
                        text: "mmap".into(),
                        value: StepValue::ok(),
                        detail: None,
                    }],
                    cut: None,
                    size: Some(16384),
                }],
            }],
        };
        let j = serde_json::to_string(&s).unwrap();
        let back: ScenarioSection = serde_json::from_str(&j).unwrap();
        assert_eq!(back, s);
        let bad = j.replace("\"value\":\"ok\"", "\"value\":\"fine\"");
        let e = serde_json::from_str::<ScenarioSection>(&bad).unwrap_err();
        assert!(e.to_string().contains("`fine` is not a step value"), "{e}");
    }

    #[test]
    fn describe_names_each_step() {
        let plan = ScenarioPlan {
            name: "x".into(),
            exporter: ExporterId::Vgem,
            actors: vec![
                PlanActor {
                    name: "p".into(),
                    kind: PlanActorKind::Process,
                    parent: None,
                    steps: vec![
                        UserStep::Mmap { private: false },
                        UserStep::Fork { child: 1 },
                    ],
                },
                PlanActor {
                    name: "c".into(),
                    kind: PlanActorKind::Child,
                    parent: Some(0),
                    steps: vec![UserStep::Access {
                        page: 0,
                        write: false,
                    }],
                },
            ],
            total: 1,
            interleavings: vec![vec![0, 0, 1]],
        };
        assert_eq!(
            plan.describe(&[0, 0, 1]),
            vec!["p:mmap", "p:fork c", "c:read 0"]
        );
    }
}
