//! Breadth-first search over every interleaving of the actors' steps, with the visited set of
//! [`fingerprint`]s: each distinct state is expanded once, and the first state found with a
//! property is one at the fewest steps (the shortest witness).
//!
//! Each level is expanded on every core (cloning and stepping worlds, fingerprinting them),
//! then merged in frontier order on one: the result does not depend on the thread count. Each
//! worker owns a lineage of states built on its own thread from its own export, so that the
//! copy-on-write state the clones share is never shared between cores.

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{mpsc, RwLock};
use std::time::{Duration, Instant};

use pfnguard_dmabuf::Policy;
use pfnguard_mm::ResolvedKernel;

use crate::fingerprint::fingerprint;
use crate::lifetime;
use crate::property::{new_state_bits, state_bits, Property, Verdict};
use crate::scenario::Scenario;
use crate::step::{ActorKind, Step};
use crate::world::{SetupError, StepOutcome, World};

fn policy_name<S: serde::Serializer>(p: &Policy, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(p.name())
}

/// Bounds of one search.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Stop after this many distinct states (the verdicts are then incomplete).
    pub max_states: usize,
    /// Worker threads (0: every core).
    pub threads: usize,
    /// How states are built.
    pub build: Build,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_states: 1_000_000,
            threads: 0,
            build: Build::Auto,
        }
    }
}

/// How the explorer builds a state from its parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Build {
    /// [`Build::Replay`] when the exporter models share lifetime state between clones
    /// ([`lifetime::CLONES_SHARE_STATE`]), else [`Build::Clone`].
    #[default]
    Auto,
    /// Clone the parent and run one step: fast, right when a clone shares nothing.
    Clone,
    /// A fresh export and the whole path replayed: slower by the depth; needed only if the buffer
    /// kept state every clone shares (a release on one branch would then be seen on another).
    /// The buffer's lifetime is the kernel's, so this is a cross-check of [`Build::Clone`].
    Replay,
}

impl Build {
    fn replays(self) -> bool {
        match self {
            Build::Auto => lifetime::CLONES_SHARE_STATE,
            Build::Clone => false,
            Build::Replay => true,
        }
    }
}

/// The fingerprints are already well mixed: the set uses their low bits as they are.
#[derive(Default)]
struct FpHasher(u64);

impl Hasher for FpHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(b) ^ (self.0 >> 56);
        }
    }
    fn write_u128(&mut self, n: u128) {
        self.0 = n as u64;
    }
}

type Visited = HashSet<u128, BuildHasherDefault<FpHasher>>;

/// What the search records of a state it will not expand (the last level of a bounded
/// search, a dead kernel), computed when the state is built so that its world is not kept.
#[derive(Debug, Clone, Copy)]
struct Summary {
    /// The properties seen on the way ([`World::seen`]).
    seen: u16,
    /// Whether it ends a run.
    is_final: bool,
    /// Whether `leak` holds.
    leak: bool,
}

/// A state of the frontier: its world, or only what the search records of it.
enum Entry {
    World(Box<World>),
    Done(Summary),
}

/// How a state was reached: its parent and the move.
#[derive(Debug, Clone, Copy)]
struct Node {
    parent: u32,
    actor: u16,
    step: Step,
}

/// One step of a witness.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct WitnessStep {
    /// The actor.
    pub actor: String,
    /// The step, as scenario files write it.
    pub step: String,
    /// What the model did.
    pub outcome: String,
    /// The state after the step (what `pfnguard report` draws; not in JSON, which stays as
    /// `explore` prints it).
    #[serde(skip)]
    pub state: pfnguard_mm::snapshot::Snapshot,
}

/// The shortest run that shows a verdict.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Witness {
    /// `reaches`: a run in which the property happens (its last step makes it true);
    /// `avoids`: a complete run in which it never does.
    pub kind: &'static str,
    /// The steps.
    pub steps: Vec<WitnessStep>,
    /// The kernel path of the last step (`explain`'s trace).
    pub trace: Vec<pfnguard_mm::trace::Step>,
    /// The kernel log at the end of the witness.
    pub events: Vec<String>,
}

/// One property's result.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PropertyResult {
    /// The property's name, or `result:ACTOR#STEP=OUTCOME` for a predicate on a step's result.
    pub property: String,
    /// Its verdict over the complete runs.
    pub verdict: Verdict,
    /// What the scenario expects, if it asserts it.
    pub expected: Option<Verdict>,
    /// Why the model cannot make it true on this tree, if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<&'static str>,
    /// The witness: for `sometimes` and for a verdict that differs from the expected one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness: Option<Witness>,
}

impl PropertyResult {
    /// Whether the verdict is the expected one (or nothing is expected).
    pub fn ok(&self) -> bool {
        self.expected.is_none_or(|e| e == self.verdict)
    }
}

/// One scenario on one kernel under one policy.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CaseReport {
    /// The scenario's name.
    pub scenario: String,
    /// Its file.
    pub file: String,
    /// The kernel, as the scenario writes it.
    pub kernel: String,
    /// The policy.
    #[serde(serialize_with = "policy_name")]
    pub policy: Policy,
    /// Distinct states visited.
    pub states: usize,
    /// Complete runs' end states (distinct).
    pub final_states: usize,
    /// Interleavings of the actors' programs (without deduplication; saturates).
    pub interleavings: u64,
    /// Whether the whole space was visited (else `max_states` stopped it).
    pub complete: bool,
    /// Why it could not run (the build lacks the exporter, the export failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<String>,
    /// Every property's result, asserted ones with their expectation.
    pub properties: Vec<PropertyResult>,
    /// Wall time (not in JSON: the output is the same on every run).
    #[serde(skip)]
    pub elapsed: Duration,
}

impl CaseReport {
    /// Whether every asserted verdict is the expected one and the search was complete.
    pub fn ok(&self) -> bool {
        self.unavailable.is_some() || (self.complete && self.properties.iter().all(|p| p.ok()))
    }
}

/// What a search found.
struct Found {
    nodes: Vec<Node>,
    /// First node (BFS order) where each property (by bit) held.
    first: [Option<u32>; 16],
    /// Final states: count, with each property, and the first without it.
    finals: usize,
    finals_with: [usize; 16],
    first_final_without: [Option<u32>; 16],
    complete: bool,
}

impl Found {
    /// Record a state of the level being merged, in node order: the properties seen on its
    /// path (and `leak`), and whether it ends a run.
    fn record(&mut self, idx: u32, seen: u16, is_final: bool, leak: bool) {
        let mut bits = seen;
        if leak {
            bits |= Property::Leak.bit();
        }
        for i in 0..16 {
            if bits & (1 << i) != 0 && self.first[i].is_none() {
                self.first[i] = Some(idx);
            }
        }
        if is_final {
            self.finals += 1;
            for i in 0..16 {
                if bits & (1 << i) != 0 {
                    self.finals_with[i] += 1;
                } else if self.first_final_without[i].is_none() {
                    self.first_final_without[i] = Some(idx);
                }
            }
        }
    }
}

fn prop_index(p: Property) -> usize {
    p as usize
}

/// A user predicate on a step's result: actor, step counter, outcome key; its bit is
/// `8 + index`.
pub type ResultPred = (u16, u16, String);

/// One search's parameters.
struct Search<'a> {
    /// The enabled moves of a world.
    moves: &'a (dyn Fn(&World) -> Vec<(u16, Step)> + Sync),
    /// A move advances the actor's step counter (scenarios) or not (the alphabet).
    advance: bool,
    /// The longest run.
    max_depth: usize,
    limits: Limits,
    /// `leak` is judged on every state (the alphabet) rather than on final ones.
    leak_everywhere: bool,
    /// The caller reads only the first state where `leak` holds (the alphabet), not its
    /// counts over final states: once a level has one, deeper states are not judged.
    first_leak_only: bool,
    preds: &'a [ResultPred],
    /// A world with a fresh export: each worker's own root, from which it rebuilds the
    /// states it takes over, and with [`Build::Replay`] the start of every state.
    fresh: &'a (dyn Fn() -> World + Sync),
    /// [`Build::Replay`]: every state is built from a fresh export by replaying its path.
    replay: bool,
}

/// Run one move on `w`: the step, the step counter, the result predicates, the properties.
fn do_step(w: &mut World, a: u16, step: Step, advance: bool, preds: &[ResultPred]) {
    let (pc, o) = run_move(w, a, step, advance);
    note_move(w, a, pc, &o, preds);
}

/// The step of a move and the step counter: the actor's counter before, and the outcome.
fn run_move(w: &mut World, a: u16, step: Step, advance: bool) -> (u16, StepOutcome) {
    let pc = w.actors[usize::from(a)].pc;
    let o = w.apply(usize::from(a), step);
    if advance {
        w.actors[usize::from(a)].pc += 1;
    }
    (pc, o)
}

/// What a move makes true: the result predicates on its outcome, and the properties of the
/// state it reached.
fn note_move(w: &mut World, a: u16, pc: u16, o: &StepOutcome, preds: &[ResultPred]) {
    for (i, (pa, ppc, want)) in preds.iter().enumerate() {
        if *pa == a && *ppc == pc && o.key() == *want {
            w.seen |= 1 << (8 + i);
        }
    }
    w.seen |= new_state_bits(w, w.seen);
}

impl Search<'_> {
    /// The world at the end of `path` from a fresh export.
    fn rebuild(&self, path: &[(u16, Step)]) -> World {
        let mut w = (self.fresh)();
        w.seen = state_bits(&w);
        for &(a, step) in path {
            do_step(&mut w, a, step, self.advance, self.preds);
        }
        w
    }

    /// The moves from the root to `node`.
    fn path(f: &Found, node: u32) -> Vec<(u16, Step)> {
        let mut path = Vec::new();
        let mut n = node;
        while n != 0 && n != u32::MAX {
            let nd = f.nodes[n as usize];
            path.push((nd.actor, nd.step));
            n = nd.parent;
        }
        path.reverse();
        path
    }

    /// Breadth-first search from `root`, level by level. With more than one thread, each
    /// worker owns a lineage: from the first level large enough to share, every state a worker
    /// expands was built on its thread from its own export (that level's states are rebuilt
    /// from their paths), and a state's successors stay with the worker that built them, so no
    /// two workers touch the same reference counts or free each other's memory.
    fn run(&self, root: &World) -> Found {
        let threads = match self.limits.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let visited = RwLock::new(Visited::default());
        if threads <= 1 {
            return self.levels(root, &visited, None);
        }
        std::thread::scope(|s| {
            let (done_tx, done_rx) = mpsc::channel::<Vec<Done>>();
            let mut jobs = Vec::with_capacity(threads);
            for _ in 0..threads {
                let (tx, rx) = mpsc::channel::<Job>();
                let done = done_tx.clone();
                let visited = &visited;
                s.spawn(move || {
                    for job in rx {
                        if done.send(self.work(job, visited)).is_err() {
                            break;
                        }
                    }
                });
                jobs.push(tx);
            }
            drop(done_tx);
            // The workers end when `jobs` is dropped, at the end of the search.
            self.levels(root, &visited, Some((&jobs, &done_rx)))
        })
    }

    /// The levels of the search; `pool`: the workers' job queues and their results.
    fn levels(&self, root: &World, visited: &RwLock<Visited>, pool: Option<Pool<'_>>) -> Found {
        let mut f = Found {
            nodes: Vec::new(),
            first: [None; 16],
            finals: 0,
            finals_with: [0; 16],
            first_final_without: [None; 16],
            complete: true,
        };
        let mut w0 = if self.replay {
            (self.fresh)()
        } else {
            root.clone()
        };
        w0.seen = state_bits(&w0);
        write(visited).insert(fingerprint(&w0, self.advance));
        f.nodes.push(Node {
            parent: u32::MAX,
            actor: 0,
            step: Step::Close,
        });
        let mut frontier = vec![Pending {
            idx: 0,
            owner: 0,
            entry: Entry::World(Box::new(w0)),
        }];
        // Whether the frontier's worlds are each their worker's own.
        let mut owned = false;
        let mut depth = 0;
        while !frontier.is_empty() {
            let need_leak =
                !(self.first_leak_only && f.first[prop_index(Property::Leak)].is_some());
            let mut level = Level {
                depth,
                need_leak,
                rebuild: false,
            };
            let expanded = match pool {
                Some((jobs, done)) if frontier.len() >= 64 => {
                    level.rebuild = !owned && !self.replay;
                    owned = true;
                    self.expand_shared(frontier, &f, level, jobs, done)
                }
                _ => {
                    let part = frontier
                        .into_iter()
                        .enumerate()
                        .map(|(k, p)| self.job_entry(&f, k, p.owner, p, false))
                        .collect();
                    self.work(Job { level, part }, visited)
                }
            };
            // Record this level's states: properties, and whether each is final.
            for d in &expanded {
                let x = &d.expanded;
                f.record(x.idx, x.seen, x.is_final, x.leak);
            }
            let new: usize = expanded.iter().map(|d| d.expanded.succs.len()).sum();
            let mut visited = write(visited);
            visited.reserve(new);
            f.nodes
                .reserve(new.min(self.limits.max_states.saturating_sub(f.nodes.len())));
            // Successors no one will expand (the next level is the last, and the builds clone)
            // come summarised: they are recorded here, in node order, not carried to a level of
            // their own.
            let last = depth + 1 >= self.max_depth;
            let mut summaries: Vec<(u32, Summary)> = Vec::new();
            let mut next = Vec::with_capacity(if last { 0 } else { new });
            'merge: for d in expanded {
                let (owner, parent) = (d.owner, d.expanded.idx);
                for (actor, step, fp, entry) in d.expanded.succs {
                    if visited.insert(fp) {
                        if f.nodes.len() >= self.limits.max_states {
                            f.complete = false;
                            break 'merge;
                        }
                        let idx = f.nodes.len() as u32;
                        f.nodes.push(Node {
                            parent,
                            actor,
                            step,
                        });
                        match entry {
                            Entry::Done(s) if last => summaries.push((idx, s)),
                            entry => next.push(Pending { idx, owner, entry }),
                        }
                    }
                }
            }
            if !f.complete {
                break;
            }
            for (idx, s) in summaries {
                f.record(idx, s.seen, s.is_final, s.leak);
            }
            frontier = next;
            depth += 1;
        }
        f
    }

    /// A frontier state as a job takes it, with its path when its world is rebuilt.
    fn job_entry(&self, f: &Found, k: usize, owner: u32, p: Pending, rebuild: bool) -> JobEntry {
        let path = (rebuild || self.replay).then(|| Self::path(f, p.idx));
        JobEntry {
            k,
            owner,
            idx: p.idx,
            entry: p.entry,
            path,
        }
    }

    /// One level on the workers: each expands the worlds it owns in frontier order (on the
    /// level that first shares, every `threads`-th one, rebuilt on it); states with only a
    /// summary are recorded here. The results come back in frontier order.
    fn expand_shared(
        &self,
        frontier: Vec<Pending>,
        f: &Found,
        level: Level,
        jobs: &[mpsc::Sender<Job>],
        done: &mpsc::Receiver<Vec<Done>>,
    ) -> Vec<Done> {
        let n = frontier.len();
        let threads = jobs.len();
        let mut parts: Vec<Vec<JobEntry>> = (0..threads).map(|_| Vec::new()).collect();
        let worlds = frontier
            .iter()
            .filter(|p| matches!(p.entry, Entry::World(_)))
            .count();
        let mut summaries = Vec::with_capacity(n - worlds);
        for (k, p) in frontier.into_iter().enumerate() {
            if let Entry::Done(s) = p.entry {
                summaries.push(Done {
                    k,
                    owner: p.owner,
                    expanded: Expanded::summary(p.idx, s),
                });
                continue;
            }
            let t = if level.rebuild {
                k % threads
            } else {
                p.owner as usize % threads
            };
            parts[t].push(self.job_entry(f, k, t as u32, p, level.rebuild));
        }
        let mut runs = vec![summaries];
        let mut sent = 0;
        for (t, part) in parts.into_iter().enumerate() {
            if part.is_empty() {
                continue;
            }
            if jobs[t].send(Job { level, part }).is_ok() {
                sent += 1;
            }
        }
        for _ in 0..sent {
            let Ok(out) = done.recv() else { break };
            runs.push(out);
        }
        merge_by_k(runs, n)
    }

    /// Expand a job's states in order. Successors already visited on an earlier level, or met
    /// before in this job, are dropped here: only new states are kept until the merge.
    fn work(&self, job: Job, visited: &RwLock<Visited>) -> Vec<Done> {
        let visited = read(visited);
        // Room for a few new states per state expanded (each level has grown so), so that the
        // set is not rehashed as it fills.
        let mut local = Visited::with_capacity_and_hasher(
            (job.part.len() * 4).min(1 << 22),
            Default::default(),
        );
        job.part
            .into_iter()
            .map(|e| Done {
                k: e.k,
                owner: e.owner,
                expanded: self.expand_one(job.level, e, &visited, &mut local),
            })
            .collect()
    }

    /// Whether a state is final, and whether `leak` holds in it (judged where it is needed).
    fn judge(
        &self,
        w: &World,
        may_move: bool,
        no_moves: bool,
        need_leak: bool,
        path: Option<&[(u16, Step)]>,
    ) -> (bool, bool) {
        let is_final = no_moves && (!self.leak_everywhere || !may_move || w.dead());
        let judge_leak = need_leak && (is_final || self.leak_everywhere);
        let leak = judge_leak
            && match path.filter(|_| self.replay) {
                Some(p) => Property::Leak.holds(&self.rebuild(p)),
                None => Property::Leak.holds(w),
            };
        (is_final, leak)
    }

    /// One state's successors. A successor on the last level (or with a dead kernel) will not
    /// be expanded: what the merge records of it is computed now, and its world dropped (clone
    /// builds only: a replay judges `leak` on a rebuild from its path).
    fn expand_one(
        &self,
        level: Level,
        e: JobEntry,
        visited: &Visited,
        local: &mut Visited,
    ) -> Expanded {
        let may_move = level.depth < self.max_depth;
        let next_may_move = level.depth + 1 < self.max_depth;
        let summarise = !self.replay;
        let path = e.path.as_deref();
        let w: Box<World> = match e.entry {
            Entry::World(w) => match (level.rebuild, path) {
                (true, Some(p)) => Box::new(self.rebuild(p)),
                _ => w,
            },
            Entry::Done(s) => return Expanded::summary(e.idx, s),
        };
        let ms = if may_move && !w.dead() {
            (self.moves)(&w)
        } else {
            Vec::new()
        };
        let (is_final, leak) = self.judge(&w, may_move, ms.is_empty(), level.need_leak, path);
        let mut out = Vec::with_capacity(ms.len());
        for (a, step) in ms {
            // A move its actor cannot make (no address space, no mapping, nothing to release)
            // changes nothing: without a step counter, it leads back to this state.
            if !self.advance && w.prerequisite(usize::from(a), step).is_err() {
                continue;
            }
            let mut w2 = match path.filter(|_| self.replay) {
                Some(p) => self.rebuild(p),
                None => World::clone(&w),
            };
            let (pc, o) = run_move(&mut w2, a, step, self.advance);
            // A step that changed nothing leads back to this state, already visited (the
            // properties of a state are in its `seen`, and a changed counter is a change).
            if w2.unchanged_from(&w) {
                continue;
            }
            note_move(&mut w2, a, pc, &o, self.preds);
            let fp = fingerprint(&w2, self.advance);
            if visited.contains(&fp) || !local.insert(fp) {
                continue;
            }
            let entry = if summarise && (!next_may_move || w2.dead()) {
                // No moves from it: final, and `leak` judged (as the next level would).
                let (is_final, leak) = self.judge(&w2, next_may_move, true, level.need_leak, path);
                Entry::Done(Summary {
                    seen: w2.seen,
                    is_final,
                    leak,
                })
            } else {
                Entry::World(Box::new(w2))
            };
            out.push((a, step, fp, entry));
        }
        Expanded {
            idx: e.idx,
            seen: w.seen,
            is_final,
            leak,
            succs: out,
        }
    }
}

/// The workers' job queues, and the queue of their results.
type Pool<'a> = (&'a [mpsc::Sender<Job>], &'a mpsc::Receiver<Vec<Done>>);

/// The shared visited set, read by the workers during a level.
fn read(v: &RwLock<Visited>) -> std::sync::RwLockReadGuard<'_, Visited> {
    v.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The shared visited set, written by the merge between levels.
fn write(v: &RwLock<Visited>) -> std::sync::RwLockWriteGuard<'_, Visited> {
    v.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What every state of a level is expanded with.
#[derive(Debug, Clone, Copy)]
struct Level {
    depth: usize,
    need_leak: bool,
    /// Rebuild each world from its path on the worker that owns it from now on.
    rebuild: bool,
}

/// A state of the frontier: its node, the worker that owns its world, and the world or its
/// summary.
struct Pending {
    idx: u32,
    owner: u32,
    entry: Entry,
}

/// Some states of a level, for one worker.
struct Job {
    level: Level,
    part: Vec<JobEntry>,
}

/// A state of a [`Job`]: its place in the frontier, its owner, and its path from the root
/// when its world is rebuilt.
struct JobEntry {
    k: usize,
    owner: u32,
    idx: u32,
    entry: Entry,
    path: Option<Vec<(u16, Step)>>,
}

/// A state of a [`Job`] once expanded.
struct Done {
    k: usize,
    owner: u32,
    expanded: Expanded,
}

/// A state of the level once expanded: what the merge records of it, and its successors not
/// visited before (with their fingerprints).
struct Expanded {
    idx: u32,
    seen: u16,
    is_final: bool,
    leak: bool,
    succs: Vec<(u16, Step, u128, Entry)>,
}

impl Expanded {
    /// A state recorded when it was built, with no successors.
    fn summary(idx: u32, s: Summary) -> Expanded {
        Expanded {
            idx,
            seen: s.seen,
            is_final: s.is_final,
            leak: s.leak,
            succs: Vec::new(),
        }
    }
}

/// Runs each in frontier order, merged into one in frontier order.
fn merge_by_k(runs: Vec<Vec<Done>>, n: usize) -> Vec<Done> {
    let mut out = Vec::with_capacity(n);
    let mut runs: Vec<std::iter::Peekable<std::vec::IntoIter<Done>>> =
        runs.into_iter().map(|r| r.into_iter().peekable()).collect();
    loop {
        let next = runs
            .iter_mut()
            .enumerate()
            .filter_map(|(i, r)| r.peek().map(|d| (d.k, i)))
            .min();
        let Some((_, i)) = next else { break };
        if let Some(d) = runs[i].next() {
            out.push(d);
        }
    }
    out
}

/// The moves of a scenario: each actor's next step, if it can run (a child once forked).
fn scenario_moves(sc: &Scenario) -> impl Fn(&World) -> Vec<(u16, Step)> + Sync + '_ {
    move |w: &World| {
        let mut v = Vec::new();
        for (i, a) in sc.actors.iter().enumerate() {
            let s = &w.actors[i];
            if a.kind == ActorKind::Child && s.mm.is_none() {
                continue;
            }
            if let Some(step) = a.steps.get(usize::from(s.pc)) {
                v.push((i as u16, *step));
            }
        }
        v
    }
}

/// The moves from the root to `node`, replayed from `start` with the trace on for the last
/// one.
fn replay(start: World, f: &Found, node: u32, names: &[String]) -> Witness {
    let mut path = Vec::new();
    let mut n = node;
    while n != 0 && n != u32::MAX {
        let nd = f.nodes[n as usize];
        path.push(nd);
        n = nd.parent;
    }
    path.reverse();
    let mut w = start;
    let mut steps = Vec::new();
    let mut trace = Vec::new();
    let child_name = |c: u16| names.get(usize::from(c)).cloned().unwrap_or_default();
    for (i, nd) in path.iter().enumerate() {
        let last = i + 1 == path.len();
        if last {
            w.k.trace.enable();
        }
        let o = w.apply(usize::from(nd.actor), nd.step);
        if last {
            trace = w.k.trace.steps();
        }
        steps.push(WitnessStep {
            actor: names
                .get(usize::from(nd.actor))
                .cloned()
                .unwrap_or_default(),
            step: nd.step.render(&child_name),
            outcome: o.to_string(),
            state: w.snapshot(),
        });
    }
    Witness {
        kind: "reaches",
        steps,
        trace,
        events: w.k.warnings(),
    }
}

fn verdict_of(f: &Found, i: usize) -> Verdict {
    if f.finals_with[i] == 0 {
        Verdict::Never
    } else if f.finals_with[i] == f.finals {
        Verdict::Always
    } else {
        Verdict::Sometimes
    }
}

fn result(
    start: &dyn Fn() -> World,
    f: &Found,
    i: usize,
    name: String,
    exp: Option<Verdict>,
    unavailable: Option<&'static str>,
    names: &[String],
) -> PropertyResult {
    let verdict = verdict_of(f, i);
    let differs = exp.is_some_and(|e| e != verdict);
    let witness = if verdict == Verdict::Sometimes || differs {
        let avoid =
            verdict == Verdict::Never || exp == Some(Verdict::Always) && verdict != Verdict::Always;
        if avoid {
            // The shortest complete run without it.
            f.first_final_without[i].map(|n| Witness {
                kind: "avoids",
                ..replay(start(), f, n, names)
            })
        } else {
            f.first[i].map(|n| replay(start(), f, n, names))
        }
    } else {
        None
    };
    PropertyResult {
        property: name,
        verdict,
        expected: exp,
        unavailable,
        witness,
    }
}

/// The number of interleavings of programs of these lengths (a multinomial), saturating.
fn interleavings(lengths: &[usize]) -> u64 {
    let mut total: u64 = 1;
    let mut n: u64 = 0;
    for &l in lengths {
        for i in 1..=l as u64 {
            n += 1;
            total = total.saturating_mul(n) / i;
        }
    }
    total
}

/// Run every kernel × policy case of a scenario.
pub fn run_scenario(sc: &Scenario, limits: Limits) -> Vec<CaseReport> {
    let mut out = Vec::new();
    let kinds: Vec<ActorKind> = sc.actors.iter().map(|a| a.kind).collect();
    let names: Vec<String> = sc.actors.iter().map(|a| a.name.clone()).collect();
    let lengths: Vec<usize> = sc.actors.iter().map(|a| a.steps.len()).collect();
    for (kname, kernel) in &sc.kernels {
        for &policy in &sc.policies {
            let t = Instant::now();
            let expected = sc.expected(kname, policy);
            let mut case = CaseReport {
                scenario: sc.name.clone(),
                file: sc.path.display().to_string(),
                kernel: kname.clone(),
                policy,
                states: 0,
                final_states: 0,
                interleavings: interleavings(&lengths),
                complete: true,
                unavailable: None,
                properties: Vec::new(),
                elapsed: Duration::ZERO,
            };
            match World::new(
                kernel,
                policy,
                sc.exporter.as_ref(),
                sc.pages,
                kinds.clone(),
                names.clone(),
            ) {
                Err(e) => case.unavailable = Some(e.to_string()),
                Ok(root) => {
                    let moves = scenario_moves(sc);
                    let preds: Vec<ResultPred> = sc
                        .results
                        .iter()
                        .map(|r| (r.actor, r.step, r.outcome.clone()))
                        .collect();
                    // A fresh export (for replay): the same setup as `root`.
                    let fresh = || match World::new(
                        kernel,
                        policy,
                        sc.exporter.as_ref(),
                        sc.pages,
                        kinds.clone(),
                        names.clone(),
                    ) {
                        Ok(w) => w,
                        Err(_) => root.clone(),
                    };
                    let rebuild = limits.build.replays();
                    let search = Search {
                        moves: &moves,
                        advance: true,
                        max_depth: usize::MAX,
                        limits,
                        leak_everywhere: false,
                        first_leak_only: false,
                        preds: &preds,
                        fresh: &fresh,
                        replay: rebuild,
                    };
                    let f = search.run(&root);
                    let start = || if rebuild { fresh() } else { root.clone() };
                    case.states = f.nodes.len();
                    case.final_states = f.finals;
                    case.complete = f.complete;
                    for p in Property::ALL {
                        let exp = expected.get(&p).copied();
                        let i = prop_index(p);
                        case.properties.push(result(
                            &start,
                            &f,
                            i,
                            p.name().to_owned(),
                            exp,
                            p.unavailable(),
                            &names,
                        ));
                    }
                    for (i, r) in sc.results.iter().enumerate() {
                        case.properties.push(result(
                            &start,
                            &f,
                            8 + i,
                            r.name.clone(),
                            Some(sc.expected_result(i, kname, policy)),
                            None,
                            &names,
                        ));
                    }
                }
            }
            case.elapsed = t.elapsed();
            out.push(case);
        }
    }
    out
}

/// `pfnguard explore`: what every sequence of up to `depth` steps over the whole alphabet
/// reaches.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExploreReport {
    /// The exporter.
    pub exporter: String,
    /// The kernel, as given.
    pub kernel: String,
    /// The policy.
    #[serde(serialize_with = "policy_name")]
    pub policy: Policy,
    /// The depth bound.
    pub depth: usize,
    /// Distinct states visited.
    pub states: usize,
    /// Whether `max_states` stopped the search first.
    pub complete: bool,
    /// The alphabet: the process's steps, then the exporter's.
    pub alphabet: Vec<String>,
    /// Every property, reachable or not, with one shortest witness when reachable.
    pub properties: Vec<ExploredProperty>,
    /// Wall time (not in JSON).
    #[serde(skip)]
    pub elapsed: Duration,
}

/// One property of an exploration.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExploredProperty {
    /// The property.
    pub property: Property,
    /// Whether some sequence reaches it.
    pub reachable: bool,
    /// Why the model cannot make it true on this tree, if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable: Option<&'static str>,
    /// A shortest sequence that reaches it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub witness: Option<Witness>,
}

/// The letters of `explore`: the default alphabet is one process (page 0), an importing
/// device and the exporter; `fork` and `second_page` add letters, `importer: false` leaves the
/// device out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alphabet {
    /// `fork c`: a second actor, the child `c` (kernel/fork.c:dup_mmap of p's address space,
    /// p's fd shared), with the process steps of its own over the inherited mapping once it
    /// exists.
    pub fork: bool,
    /// The page steps (`touch`, `read`, `gup_get`, `gup_pin`, `gup_pin_longterm`,
    /// `odirect_read`, `vmsplice`, `kvm_map`) on page 1 too; the buffer then has at least two
    /// pages.
    pub second_page: bool,
    /// An importing device `dev` (drivers/dma-buf/dma-buf.c: `dma_buf_get` of p's fd, then
    /// `attach` static or `attach_dynamic`, `map`, `unmap`, `detach`).
    pub importer: bool,
}

impl Default for Alphabet {
    /// The whole step alphabet of one process, one importing device and the exporter.
    fn default() -> Self {
        Alphabet {
            fork: false,
            second_page: false,
            importer: true,
        }
    }
}

/// Explore every sequence of up to `depth` steps of one process (`p`, which exported the
/// buffer and holds its fd), an importing device (`dev`) and the exporter (`exporter`) over
/// the whole alphabet.
pub fn explore_alphabet(
    kernel_name: &str,
    kernel: &ResolvedKernel,
    exporter: &dyn pfnguard_dmabuf::Exporter,
    policy: Policy,
    pages: u64,
    depth: usize,
    limits: Limits,
) -> Result<ExploreReport, SetupError> {
    explore_alphabet_with(
        kernel_name,
        kernel,
        exporter,
        policy,
        pages,
        depth,
        limits,
        Alphabet::default(),
    )
}

/// [`explore_alphabet`] with the letters `alphabet` asks for: the actors are `p`, with `fork`
/// its child `c` (its steps enabled once `p: fork c` ran), with `importer` the device `dev`,
/// and `exporter`.
#[allow(clippy::too_many_arguments)]
pub fn explore_alphabet_with(
    kernel_name: &str,
    kernel: &ResolvedKernel,
    exporter: &dyn pfnguard_dmabuf::Exporter,
    policy: Policy,
    pages: u64,
    depth: usize,
    limits: Limits,
    alphabet: Alphabet,
) -> Result<ExploreReport, SetupError> {
    let t = Instant::now();
    let pages = if alphabet.second_page {
        pages.max(2)
    } else {
        pages
    };
    let mut names = vec!["p".to_owned()];
    let mut kinds = vec![ActorKind::Process];
    if alphabet.fork {
        names.push("c".to_owned());
        kinds.push(ActorKind::Child);
    }
    if alphabet.importer {
        names.push("dev".to_owned());
        kinds.push(ActorKind::Device);
    }
    names.push("exporter".to_owned());
    kinds.push(ActorKind::Exporter);
    let exp_actor = (kinds.len() - 1) as u16;
    let dev_actor = exp_actor.saturating_sub(1);
    let dev_steps = if alphabet.importer {
        Step::device_alphabet()
    } else {
        Vec::new()
    };
    let root = World::new(
        kernel,
        policy,
        exporter,
        pages,
        kinds.clone(),
        names.clone(),
    )?;
    let mut proc_steps = Step::process_alphabet();
    if alphabet.second_page {
        proc_steps.extend(Step::second_page_alphabet());
    }
    let child_steps = proc_steps.clone();
    if alphabet.fork {
        proc_steps.push(Step::Fork { child: 1 });
    }
    let exp_steps = Step::exporter_alphabet();
    let fork = alphabet.fork;
    let moves = |w: &World| -> Vec<(u16, Step)> {
        let mut v: Vec<(u16, Step)> = Vec::with_capacity(
            proc_steps.len() + child_steps.len() + dev_steps.len() + exp_steps.len(),
        );
        v.extend(
            proc_steps
                .iter()
                .filter(|s| !matches!(s, Step::Fork { .. }) || w.actors[1].mm.is_none())
                .map(|s| (0u16, *s)),
        );
        if fork && w.actors[1].mm.is_some() && !w.actors[1].exited {
            v.extend(child_steps.iter().map(|s| (1u16, *s)));
        }
        v.extend(dev_steps.iter().map(|s| (dev_actor, *s)));
        v.extend(exp_steps.iter().map(|s| (exp_actor, *s)));
        v
    };
    let fresh = || match World::new(
        kernel,
        policy,
        exporter,
        pages,
        kinds.clone(),
        names.clone(),
    ) {
        Ok(w) => w,
        Err(_) => root.clone(),
    };
    let rebuild = limits.build.replays();
    let search = Search {
        moves: &moves,
        advance: false,
        max_depth: depth,
        limits,
        leak_everywhere: true,
        first_leak_only: true,
        preds: &[],
        fresh: &fresh,
        replay: rebuild,
    };
    let f = search.run(&root);
    let start = || if rebuild { fresh() } else { root.clone() };
    let properties = Property::ALL
        .iter()
        .map(|&p| {
            let first = f.first[prop_index(p)];
            ExploredProperty {
                property: p,
                reachable: first.is_some(),
                unavailable: p.unavailable(),
                witness: first.map(|n| replay(start(), &f, n, &names)),
            }
        })
        .collect();
    let child_name = |c: u16| names.get(usize::from(c)).cloned().unwrap_or_default();
    let mut letters: Vec<String> = proc_steps
        .iter()
        .map(|s| format!("p: {}", s.render(&child_name)))
        .collect();
    if fork {
        letters.extend(
            child_steps
                .iter()
                .map(|s| format!("c: {}", s.render(&child_name))),
        );
    }
    letters.extend(
        dev_steps
            .iter()
            .map(|s| format!("dev: {}", s.render(&child_name))),
    );
    letters.extend(
        exp_steps
            .iter()
            .map(|s| format!("exporter: {}", s.render(&child_name))),
    );
    Ok(ExploreReport {
        exporter: exporter.id().to_owned(),
        kernel: kernel_name.to_owned(),
        policy,
        depth,
        states: f.nodes.len(),
        complete: f.complete,
        alphabet: letters,
        properties,
        elapsed: t.elapsed(),
    })
}
