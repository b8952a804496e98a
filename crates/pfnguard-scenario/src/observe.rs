//! Scenarios on real kernels, the model's side: which scenarios userspace can run as they are
//! written ([`plan`]), which of their interleavings are run ([`interleavings`]), and what the
//! model gives at every step of one interleaving ([`run_order`]).
//!
//! A scenario is *observable* when every actor is a `process` or a `child`, every step is one a
//! process performs with system calls and memory accesses (the steps of
//! [`UserStep`](pfnguard_report::scenarios::UserStep)), and its exporter is a catalogue
//! exporter (a described exporter, `exporter_file`, has no device to reach). Not observable:
//! the `gup_*` steps (a driver's references), `rdma_*` (the probe's RDMA path keeps no memory
//! region across steps), and the exporter and device actors.
//!
//! The interleavings of a scenario are its actors' programs merged in every order that keeps
//! each actor's steps in program order, a child's steps after its parent's `fork` of it. They
//! are numbered in the lexicographic order of the actor indices (the first runs each actor's
//! program in turn); [`interleavings`] takes all of them up to [`INTERLEAVING_CAP`], else
//! [`INTERLEAVING_CAP`] spread evenly over the numbering (numbers `j * total / cap`), so the
//! choice depends on the scenario alone.

use std::collections::HashMap;

use pfnguard_dmabuf::Policy;
use pfnguard_mm::ResolvedKernel;
use pfnguard_report::scenarios::{PlanActor, PlanActorKind, ScenarioPlan, UserStep, ADVICE, PROT};

use crate::scenario::Scenario;
use crate::step::{ActorKind, Step};
use crate::world::{SetupError, StepOutcome, World};

/// The most interleavings of one scenario run on a real kernel.
pub const INTERLEAVING_CAP: usize = 24;

/// The most schedule states (one per combination of the actors' step counters) the numbering
/// of interleavings visits; a scenario with more is not observable.
pub const MAX_SCHEDULE_STATES: usize = 1_000_000;

/// The step as userspace performs it, or why userspace cannot.
pub fn user_step(step: Step) -> Result<UserStep, &'static str> {
    let word = |s: Step| {
        let text = s.render(&|_| String::new());
        text.split_whitespace().nth(1).unwrap_or("").to_owned()
    };
    Ok(match step {
        Step::Mmap { private } => UserStep::Mmap { private },
        Step::Access { page, write } => UserStep::Access { page, write },
        Step::Munmap => UserStep::Munmap,
        Step::Close => UserStep::Close,
        Step::Fork { child } => UserStep::Fork { child },
        Step::Exit => UserStep::Exit,
        Step::OdirectSubmit { page, read } => UserStep::Odirect { page, read },
        Step::OdirectComplete => UserStep::OdirectComplete,
        Step::Vmsplice { page } => UserStep::Vmsplice { page },
        Step::PipeRead => UserStep::PipeRead,
        Step::IoUringRegister => UserStep::IoUringRegister,
        Step::IoUringUnregister => UserStep::IoUringUnregister,
        Step::Madvise(_) => {
            let w = word(step);
            match ADVICE.iter().find(|a| **a == w) {
                Some(a) => UserStep::Madvise(a),
                None => return Err("an advice the probe does not know"),
            }
        }
        Step::MremapGrow => UserStep::MremapGrow,
        Step::Mprotect(_) => {
            let w = word(step);
            match PROT.iter().find(|p| **p == w) {
                Some(p) => UserStep::Mprotect(p),
                None => return Err("a protection the probe does not know"),
            }
        }
        Step::Mlock => UserStep::Mlock,
        Step::Rss => UserStep::Rss,
        Step::GupGet { .. } | Step::GupPin { .. } | Step::GupPut | Step::GupUnpin => {
            return Err("a driver's get_user_pages reference or pin (gup_*)")
        }
        Step::RdmaRegMr | Step::RdmaDeregMr => {
            return Err("an RDMA memory region kept across steps (rdma_*)")
        }
        Step::KvmMap { page } => UserStep::KvmMap { page },
        Step::KvmUnmap => UserStep::KvmUnmap,
        Step::Release | Step::Evict | Step::MoveNotify => return Err("an exporter event"),
        Step::Attach { .. } | Step::MapAttachment | Step::UnmapAttachment | Step::Detach => {
            return Err("an importing device's step")
        }
    })
}

/// The scenario as a real kernel runs it, or why it cannot (not observable).
pub fn plan(sc: &Scenario) -> Result<ScenarioPlan, String> {
    let Some(exporter) = sc.exporter_id else {
        return Err(format!(
            "not observable: exporter `{}` is described by a file (exporter_file), no device \
             exports it",
            sc.exporter.id()
        ));
    };
    let mut actors = Vec::new();
    for a in &sc.actors {
        let kind = match a.kind {
            ActorKind::Process => PlanActorKind::Process,
            ActorKind::Child => PlanActorKind::Child,
            k => {
                return Err(format!(
                    "not observable: actor `{}` is of kind {} (only processes and children are)",
                    a.name,
                    k.name()
                ))
            }
        };
        let mut steps = Vec::new();
        for (i, s) in a.steps.iter().enumerate() {
            let u = user_step(*s).map_err(|why| {
                let name = |c: u16| {
                    sc.actors
                        .get(usize::from(c))
                        .map(|x| x.name.clone())
                        .unwrap_or_default()
                };
                format!(
                    "not observable: step {} of `{}` (`{}`) is {why}",
                    i + 1,
                    a.name,
                    s.render(&name)
                )
            })?;
            steps.push(u);
        }
        actors.push(PlanActor {
            name: a.name.clone(),
            kind,
            parent: a.parent.and_then(|p| u16::try_from(p).ok()),
            steps,
        });
    }
    let (total, interleavings) = interleavings(sc)?;
    Ok(ScenarioPlan {
        name: sc.name.clone(),
        exporter,
        actors,
        total,
        interleavings,
    })
}

/// The schedule of a scenario: per actor, its number of steps and, for a child, the parent and
/// the parent's step counter after which the child exists.
struct Schedule {
    lengths: Vec<usize>,
    /// For a child: (parent, the parent's step counter that must be passed).
    gate: Vec<Option<(usize, usize)>>,
}

impl Schedule {
    fn of(sc: &Scenario) -> Schedule {
        let lengths = sc.actors.iter().map(|a| a.steps.len()).collect();
        let gate =
            sc.actors
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    if a.kind != ActorKind::Child {
                        return None;
                    }
                    // The child exists once its parent ran the fork that names it; a child no step
                    // forks never runs (as in the explorer).
                    let p = a.parent?;
                    let at = sc.actors[p].steps.iter().position(
                        |s| matches!(s, Step::Fork { child } if usize::from(*child) == i),
                    );
                    Some((p, at.map_or(usize::MAX, |k| k + 1)))
                })
                .collect();
        Schedule { lengths, gate }
    }

    fn enabled(&self, pc: &[u8]) -> impl Iterator<Item = usize> + '_ {
        let pcs: Vec<usize> = pc.iter().map(|&x| usize::from(x)).collect();
        (0..self.lengths.len()).filter(move |&a| {
            pcs[a] < self.lengths[a]
                && self.gate[a].is_none_or(|(p, after)| after != usize::MAX && pcs[p] >= after)
        })
    }

    /// The number of complete schedules from `pc`; `None` past u128 or the state bound.
    fn count(&self, pc: &mut Vec<u8>, memo: &mut HashMap<Vec<u8>, u128>) -> Option<u128> {
        if let Some(&c) = memo.get(pc.as_slice()) {
            return Some(c);
        }
        if memo.len() >= MAX_SCHEDULE_STATES {
            return None;
        }
        let next: Vec<usize> = self.enabled(pc).collect();
        let mut total: u128 = 0;
        if next.is_empty() {
            total = 1;
        }
        for a in next {
            pc[a] += 1;
            let c = self.count(pc, memo);
            pc[a] -= 1;
            total = total.checked_add(c?)?;
        }
        memo.insert(pc.clone(), total);
        Some(total)
    }

    /// The schedule numbered `r` (lexicographic in actor order).
    fn unrank(&self, mut r: u128, memo: &mut HashMap<Vec<u8>, u128>) -> Option<Vec<u16>> {
        let mut pc = vec![0u8; self.lengths.len()];
        let mut order = Vec::new();
        loop {
            let next: Vec<usize> = self.enabled(&pc).collect();
            if next.is_empty() {
                return Some(order);
            }
            let mut chosen = None;
            for a in next {
                pc[a] += 1;
                let c = self.count(&mut pc, memo)?;
                if r < c {
                    chosen = Some(a);
                    break;
                }
                pc[a] -= 1;
                r -= c;
            }
            order.push(u16::try_from(chosen?).ok()?);
        }
    }
}

/// The number of interleavings of a scenario's actors and the ones run on a real kernel: all
/// of them up to [`INTERLEAVING_CAP`], else that many spread evenly over their numbering.
pub fn interleavings(sc: &Scenario) -> Result<(u128, Vec<Vec<u16>>), String> {
    let s = Schedule::of(sc);
    let too_many = || {
        format!(
            "not observable: too many interleavings to number (more than {MAX_SCHEDULE_STATES} \
             schedule states or 2^128 interleavings)"
        )
    };
    let mut memo = HashMap::new();
    let mut pc = vec![0u8; s.lengths.len()];
    let total = s.count(&mut pc, &mut memo).ok_or_else(too_many)?;
    let cap = INTERLEAVING_CAP as u128;
    let ranks: Vec<u128> = if total <= cap {
        (0..total).collect()
    } else {
        (0..cap)
            .map(|j| (total / cap) * j + (total % cap) * j / cap)
            .collect()
    };
    let orders = ranks
        .into_iter()
        .map(|r| s.unrank(r, &mut memo).ok_or_else(too_many))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((total, orders))
}

/// What the model gives at each step of one interleaving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelStep {
    /// The actor.
    pub actor: u16,
    /// The step's number in the actor's list, 1-based.
    pub step: u16,
    /// What the modeled kernel path gave.
    pub outcome: StepOutcome,
}

/// Run one interleaving on the model: a fresh world on `kernel` under `policy`, then
/// [`World::apply`] of each actor's next step in `order`.
pub fn run_order(
    sc: &Scenario,
    kernel: &ResolvedKernel,
    policy: Policy,
    order: &[u16],
) -> Result<Vec<ModelStep>, SetupError> {
    let kinds = sc.actors.iter().map(|a| a.kind).collect();
    let names = sc.actors.iter().map(|a| a.name.clone()).collect();
    let mut w = World::new(kernel, policy, sc.exporter.as_ref(), sc.pages, kinds, names)?;
    let mut out = Vec::new();
    for &a in order {
        let i = usize::from(a);
        let (Some(actor), Some(state)) = (sc.actors.get(i), w.actors.get(i)) else {
            break;
        };
        let pc = state.pc;
        let Some(&step) = actor.steps.get(usize::from(pc)) else {
            break;
        };
        let outcome = w.apply(i, step);
        w.actors[i].pc += 1;
        out.push(ModelStep {
            actor: a,
            step: pc + 1,
            outcome,
        });
    }
    Ok(out)
}

/// The kernel path the model took at step `at` (0-based) of `order`, as `pfnguard explain`
/// prints it: the interleaving is replayed with the trace on for that step.
pub fn trace_step(
    sc: &Scenario,
    kernel: &ResolvedKernel,
    policy: Policy,
    order: &[u16],
    at: usize,
) -> Vec<pfnguard_mm::trace::Step> {
    let kinds = sc.actors.iter().map(|a| a.kind).collect();
    let names = sc.actors.iter().map(|a| a.name.clone()).collect();
    let Ok(mut w) = World::new(kernel, policy, sc.exporter.as_ref(), sc.pages, kinds, names) else {
        return Vec::new();
    };
    for (k, &a) in order.iter().enumerate().take(at + 1) {
        let i = usize::from(a);
        let (Some(actor), Some(state)) = (sc.actors.get(i), w.actors.get(i)) else {
            break;
        };
        let Some(&step) = actor.steps.get(usize::from(state.pc)) else {
            break;
        };
        if k == at {
            w.k.trace.enable();
        }
        w.apply(i, step);
        w.actors[i].pc += 1;
    }
    w.k.trace.steps()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::parse_scenario;
    use std::path::Path;

    fn sc(text: &str) -> Scenario {
        match parse_scenario(Path::new("t.toml"), text) {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    const TWO: &str = r#"
kernel = "6.12"
exporter = "vgem"
[[actor]]
name = "p"
steps = ["mmap", "touch 0", "munmap"]
[[actor]]
name = "q"
steps = ["mmap", "read 0"]
"#;

    #[test]
    fn observable_scenarios_give_a_plan() {
        let p = plan(&sc(TWO)).unwrap();
        assert_eq!(p.actors.len(), 2);
        assert_eq!(
            p.actors[0].steps[1],
            UserStep::Access {
                page: 0,
                write: true
            }
        );
        // C(5, 2) interleavings, all under the cap, the first one sequential.
        assert_eq!(p.total, 10);
        assert_eq!(p.interleavings.len(), 10);
        assert_eq!(p.interleavings[0], vec![0, 0, 0, 1, 1]);
        assert_eq!(p.interleavings[9], vec![1, 1, 0, 0, 0]);
    }

    #[test]
    fn gup_exporter_and_described_exporters_are_not_observable() {
        let gup = TWO.replace("\"touch 0\"", "\"gup_pin 0\"");
        let e = plan(&sc(&gup)).unwrap_err();
        assert!(e.contains("step 2 of `p` (`gup_pin 0`)"), "{e}");
        let ex =
            format!("{TWO}[[actor]]\nname = \"x\"\nkind = \"exporter\"\nsteps = [\"evict\"]\n");
        let e = plan(&sc(&ex)).unwrap_err();
        assert!(e.contains("kind exporter"), "{e}");
        let rdma = TWO.replace("\"read 0\"", "\"rdma_reg_mr\"");
        assert!(plan(&sc(&rdma)).unwrap_err().contains("RDMA"));
        let kvm = TWO.replace("\"read 0\"", "\"kvm_map 0\"");
        assert_eq!(
            plan(&sc(&kvm)).map(|p| p.actors[1].steps[1].clone()),
            Ok(UserStep::KvmMap { page: 0 })
        );
    }

    #[test]
    fn children_run_after_their_fork_and_the_cap_spreads() {
        let text = r#"
kernel = "6.12"
exporter = "vgem"
[[actor]]
name = "p"
steps = ["mmap", "fork c", "touch 0", "exit"]
[[actor]]
name = "c"
kind = "child"
parent = "p"
steps = ["read 0", "exit"]
"#;
        let (total, orders) = interleavings(&sc(text)).unwrap();
        // After the fork: p has 2 steps left, c has 2: C(4, 2).
        assert_eq!(total, 6);
        for o in &orders {
            let fork_at = o
                .iter()
                .enumerate()
                .filter(|(_, a)| **a == 0)
                .nth(1)
                .unwrap()
                .0;
            let first_child = o.iter().position(|a| *a == 1).unwrap();
            assert!(first_child > fork_at, "{o:?}");
        }
        // Many interleavings: exactly the cap, distinct, deterministic.
        let big = r#"
kernel = "6.12"
exporter = "vgem"
[[actor]]
name = "p"
steps = ["mmap", "touch 0", "read 0", "munmap", "close"]
[[actor]]
name = "q"
steps = ["mmap", "touch 0", "read 0", "munmap", "close"]
[[actor]]
name = "r"
steps = ["mmap", "read 0", "close"]
"#;
        let (total, orders) = interleavings(&sc(big)).unwrap();
        // 13! / (5! 5! 3!)
        assert_eq!(total, 72_072);
        assert_eq!(orders.len(), INTERLEAVING_CAP);
        let mut d = orders.clone();
        d.sort();
        d.dedup();
        assert_eq!(d.len(), INTERLEAVING_CAP);
        assert_eq!(interleavings(&sc(big)).unwrap().1, orders);
        assert_eq!(orders[0], vec![0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2]);
    }

    #[test]
    fn the_model_runs_each_step_in_order() {
        let s = sc(TWO);
        let k = pfnguard_mm::resolve_kernel("6.12").unwrap();
        let steps = run_order(&s, &k, Policy::Off, &[1, 0, 0, 1, 0]).unwrap();
        let keys: Vec<(u16, u16, &str)> = steps
            .iter()
            .map(|m| (m.actor, m.step, m.outcome.key()))
            .collect();
        assert_eq!(
            keys,
            vec![
                (1, 1, "ok"),
                (0, 1, "ok"),
                (0, 2, "ok"),
                (1, 2, "ok"),
                (0, 3, "ok")
            ]
        );
        // A touch after munmap has nothing to act on.
        let s2 = sc(&TWO.replace(
            "[\"mmap\", \"touch 0\", \"munmap\"]",
            "[\"munmap\", \"touch 0\", \"mmap\"]",
        ));
        let steps = run_order(&s2, &k, Policy::Off, &[0, 0, 0, 1, 1]).unwrap();
        assert_eq!(steps[0].outcome.key(), "skipped");
        assert_eq!(steps[1].outcome.key(), "skipped");
    }
}
