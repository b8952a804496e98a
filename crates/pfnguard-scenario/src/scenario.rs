//! Scenario files (TOML, docs/scenarios.md): the kernels, the policies, the exporter, the
//! actors with their steps, and the verdict each asserted property must get.
//!
//! ```toml
//! name = "odirect-in-flight-close"
//! source = "the 2021 thread: O_DIRECT in flight while the buffer is closed"
//! kernel = ["6.1", "6.12"]
//! policy = ["off", "strict"]
//! exporter = "udmabuf-shmem"
//! pages = 1
//!
//! [[actor]]
//! name = "p"
//! steps = ["mmap", "touch 0", "odirect_read 0", "munmap", "close", "odirect_complete"]
//!
//! [expect]
//! gup_struct_page = "always"
//! use_after_free = "never"
//!
//! [[when]]
//! policy = "strict"
//! expect = { gup_struct_page = "never" }
//! ```
//!
//! Every error names the file, the line and the key.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pfnguard_dmabuf::text_file::{key_on_line, line_of, read_bounded};
use pfnguard_dmabuf::{Exporter, Policy};
use pfnguard_mm::{resolve_kernel, ResolvedKernel};
use pfnguard_report::ExporterId;
use serde::Deserialize;
use toml::Spanned;

use crate::property::{Property, Verdict};
use crate::step::{ActorKind, Step};

/// The largest scenario file read.
const MAX_FILE_BYTES: u64 = 1 << 20;
/// The most actors a scenario may have.
pub const MAX_ACTORS: usize = 8;
/// The most steps an actor may have.
pub const MAX_STEPS: usize = 32;

/// A malformed scenario.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// TOML syntax, a missing or unknown key, or a value of the wrong type.
    #[error("{path}:{line}: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What the parser said (naming the key).
        message: String,
    },
    /// A value the scenario cannot have.
    #[error("{path}:{line}: key `{key}`: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// The key.
        key: String,
        /// Why.
        message: String,
    },
}

impl ScenarioError {
    /// The file, line and key (or `-`) of the error, for tests and tools.
    pub fn location(&self) -> (PathBuf, usize, String) {
        match self {
            ScenarioError::Read { path, .. } => (path.clone(), 0, "-".into()),
            ScenarioError::Syntax {
                path,
                line,
                message,
            } => {
                let key = message.split('`').nth(1).unwrap_or("-").to_owned();
                (path.clone(), *line, key)
            }
            ScenarioError::Invalid {
                path, line, key, ..
            } => (path.clone(), *line, key.clone()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// The strings of a string-or-array key, each with the key's span.
fn items(v: &Spanned<OneOrMany>) -> Vec<Spanned<String>> {
    let span = v.span();
    let one = |s: &String| Spanned::new(span.clone(), s.clone());
    match v.get_ref() {
        OneOrMany::One(s) => vec![one(s)],
        OneOrMany::Many(v) => v.iter().map(one).collect(),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawActor {
    name: Spanned<String>,
    #[serde(default)]
    kind: Option<Spanned<String>>,
    #[serde(default)]
    parent: Option<Spanned<String>>,
    steps: Spanned<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResult {
    actor: Spanned<String>,
    step: Spanned<i64>,
    outcome: Spanned<String>,
    expect: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    #[serde(default)]
    kernel: Option<Spanned<String>>,
    #[serde(default)]
    policy: Option<Spanned<String>>,
    expect: BTreeMap<Spanned<String>, Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    name: Option<Spanned<String>>,
    #[serde(default)]
    source: Option<Spanned<String>>,
    kernel: Spanned<OneOrMany>,
    #[serde(default)]
    policy: Option<Spanned<OneOrMany>>,
    #[serde(default)]
    exporter: Option<Spanned<String>>,
    #[serde(default)]
    exporter_file: Option<Spanned<String>>,
    #[serde(default)]
    pages: Option<Spanned<i64>>,
    actor: Spanned<Vec<RawActor>>,
    #[serde(default)]
    expect: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    result: Vec<RawResult>,
    #[serde(default)]
    when: Vec<RawWhen>,
}

/// A predicate on one step's result: the step of `actor` at `step` (0-based) gave `outcome`.
#[derive(Debug, Clone)]
pub struct ResultPredicate {
    /// `result:ACTOR#STEP=OUTCOME` (STEP 1-based, as written).
    pub name: String,
    /// The actor.
    pub actor: u16,
    /// The step index, 0-based.
    pub step: u16,
    /// The outcome key ([`StepOutcome::key`](crate::world::StepOutcome::key)).
    pub outcome: String,
    /// The verdict for every kernel and policy.
    pub expect: Verdict,
}

/// The most result predicates a scenario may have.
pub const MAX_RESULTS: usize = 8;

const OUTCOME_KEYS: &str =
    "ok, an errno name (EFAULT, EINVAL, ...), SIGBUS, SIGSEGV, BUG, hang, skipped, unavailable, \
     or what an `rss` step reads: counted or zero";

/// One actor and its steps.
#[derive(Debug, Clone)]
pub struct Actor {
    /// Its name.
    pub name: String,
    /// What it is.
    pub kind: ActorKind,
    /// For a child: the actor that forks it.
    pub parent: Option<usize>,
    /// Its steps, in program order.
    pub steps: Vec<Step>,
}

/// Expectations that apply to one kernel and/or policy only.
#[derive(Debug, Clone)]
pub struct When {
    /// The kernel, as the `kernel` key writes it.
    pub kernel: Option<String>,
    /// The policy.
    pub policy: Option<Policy>,
    /// The verdicts.
    pub expect: BTreeMap<Property, Verdict>,
    /// The verdicts of result predicates, by index.
    pub results: BTreeMap<usize, Verdict>,
}

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Its file.
    pub path: PathBuf,
    /// Its name (the file stem unless `name` says).
    pub name: String,
    /// Where the behaviour comes from.
    pub source: Option<String>,
    /// The kernels, as written, and resolved.
    pub kernels: Vec<(String, ResolvedKernel)>,
    /// The policies (default `off`).
    pub policies: Vec<Policy>,
    /// The exporter.
    pub exporter: Arc<dyn Exporter>,
    /// The catalogue id of the exporter, when the scenario names one (`exporter`), not a
    /// described exporter (`exporter_file`).
    pub exporter_id: Option<ExporterId>,
    /// Buffer size in pages.
    pub pages: u64,
    /// The actors.
    pub actors: Vec<Actor>,
    /// The verdicts for every kernel and policy.
    pub expect: BTreeMap<Property, Verdict>,
    /// Predicates on steps' results.
    pub results: Vec<ResultPredicate>,
    /// Overrides, later ones winning.
    pub when: Vec<When>,
}

impl Scenario {
    /// The verdicts expected on `kernel` (as written) under `policy`.
    pub fn expected(&self, kernel: &str, policy: Policy) -> BTreeMap<Property, Verdict> {
        let mut e = self.expect.clone();
        for w in &self.when {
            if w.kernel.as_deref().is_none_or(|k| k == kernel)
                && w.policy.is_none_or(|p| p == policy)
            {
                e.extend(w.expect.iter().map(|(p, v)| (*p, *v)));
            }
        }
        e
    }

    /// The verdict expected of result predicate `i` on `kernel` under `policy`.
    pub fn expected_result(&self, i: usize, kernel: &str, policy: Policy) -> Verdict {
        let mut v = self.results.get(i).map_or(Verdict::Never, |r| r.expect);
        for w in &self.when {
            if w.kernel.as_deref().is_none_or(|k| k == kernel)
                && w.policy.is_none_or(|p| p == policy)
            {
                if let Some(x) = w.results.get(&i) {
                    v = *x;
                }
            }
        }
        v
    }
}

/// Verdicts of built-in properties, and of result predicates by index.
type Expectations = (BTreeMap<Property, Verdict>, BTreeMap<usize, Verdict>);

struct V<'a> {
    path: &'a Path,
    text: &'a str,
}

impl V<'_> {
    fn err(&self, span: Range<usize>, key: &str, message: impl Into<String>) -> ScenarioError {
        ScenarioError::Invalid {
            path: self.path.to_owned(),
            line: line_of(self.text, span),
            key: key.to_owned(),
            message: message.into(),
        }
    }

    fn expect(
        &self,
        raw: &BTreeMap<Spanned<String>, Spanned<String>>,
        key: &str,
        results: &[ResultPredicate],
    ) -> Result<Expectations, ScenarioError> {
        let mut out = BTreeMap::new();
        let mut res = BTreeMap::new();
        for (p, v) in raw {
            if p.get_ref().starts_with("result:") {
                let i = results
                    .iter()
                    .position(|r| r.name == *p.get_ref())
                    .ok_or_else(|| {
                        self.err(
                            p.span(),
                            key,
                            format!(
                                "`{}` is not one of the scenario's [[result]] predicates",
                                p.get_ref()
                            ),
                        )
                    })?;
                let verdict: Verdict = v.get_ref().parse().map_err(|m: String| {
                    self.err(v.span(), &format!("{key}.{}", p.get_ref()), m)
                })?;
                res.insert(i, verdict);
                continue;
            }
            let prop: Property = p
                .get_ref()
                .parse()
                .map_err(|m: String| self.err(p.span(), key, m))?;
            let verdict: Verdict = v
                .get_ref()
                .parse()
                .map_err(|m: String| self.err(v.span(), &format!("{key}.{prop}"), m))?;
            out.insert(prop, verdict);
        }
        Ok((out, res))
    }
}

/// Parse and validate a scenario; `path` names it in errors and anchors `exporter_file`.
pub fn parse_scenario(path: &Path, text: &str) -> Result<Scenario, ScenarioError> {
    let raw: Raw = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| line_of(text, s));
        let mut message = e.message().trim().to_owned();
        let names_key =
            message.starts_with("missing field") || message.starts_with("unknown field");
        if let Some(key) = e
            .span()
            .and_then(|_| key_on_line(text, line))
            .filter(|_| !names_key)
        {
            message = format!("key `{key}`: {message}");
        }
        ScenarioError::Syntax {
            path: path.to_owned(),
            line,
            message,
        }
    })?;
    let v = V { path, text };

    let name = match &raw.name {
        Some(n) => {
            let s = n.get_ref().trim();
            let ok = |c: char| c.is_ascii_alphanumeric() || "-_.".contains(c);
            if s.is_empty() || s.len() > 64 || !s.chars().all(ok) {
                return Err(v.err(
                    n.span(),
                    "name",
                    "must be 1 to 64 letters, digits, '-', '_' or '.'",
                ));
            }
            s.to_owned()
        }
        None => path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "scenario".into()),
    };

    let mut kernels = Vec::new();
    for k in items(&raw.kernel) {
        let r =
            resolve_kernel(k.get_ref()).map_err(|e| v.err(k.span(), "kernel", e.to_string()))?;
        if kernels.iter().any(|(n, _): &(String, _)| n == k.get_ref()) {
            return Err(v.err(
                k.span(),
                "kernel",
                format!("`{}` is listed twice", k.get_ref()),
            ));
        }
        kernels.push((k.get_ref().clone(), r));
    }
    if kernels.is_empty() {
        return Err(v.err(raw.kernel.span(), "kernel", "names no kernel"));
    }

    let mut policies = Vec::new();
    match &raw.policy {
        None => policies.push(Policy::Off),
        Some(p) => {
            for s in items(p) {
                let pol: Policy =
                    s.get_ref()
                        .parse()
                        .map_err(|e: pfnguard_dmabuf::policy::UnknownPolicy| {
                            v.err(s.span(), "policy", e.to_string())
                        })?;
                if policies.contains(&pol) {
                    return Err(v.err(s.span(), "policy", format!("`{pol}` is listed twice")));
                }
                policies.push(pol);
            }
            if policies.is_empty() {
                return Err(v.err(p.span(), "policy", "names no policy"));
            }
        }
    }

    let mut exporter_id = None;
    let exporter: Arc<dyn Exporter> = match (&raw.exporter, &raw.exporter_file) {
        (Some(e), None) => {
            let id: ExporterId =
                e.get_ref()
                    .parse()
                    .map_err(|x: pfnguard_report::UnknownExporterId| {
                        v.err(e.span(), "exporter", x.to_string())
                    })?;
            exporter_id = Some(id);
            pfnguard_dmabuf::by_id(id)
        }
        (None, Some(f)) => {
            let p = path
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join(f.get_ref());
            let c = pfnguard_dmabuf::custom::load(&p)
                .map_err(|e| v.err(f.span(), "exporter_file", e.to_string()))?;
            Arc::new(c)
        }
        (Some(e), Some(_)) => {
            return Err(v.err(
                e.span(),
                "exporter",
                "give `exporter` or `exporter_file`, not both",
            ))
        }
        (None, None) => {
            return Err(ScenarioError::Syntax {
                path: path.to_owned(),
                line: 1,
                message: "missing field `exporter` (or `exporter_file`)".into(),
            })
        }
    };

    let pages = match &raw.pages {
        None => 1,
        Some(p) => match u64::try_from(*p.get_ref()) {
            Ok(n) if (1..=pfnguard_dmabuf::MAX_PAGES).contains(&n) => n,
            _ => {
                return Err(v.err(
                    p.span(),
                    "pages",
                    format!(
                        "{} is out of range (1 to {})",
                        p.get_ref(),
                        pfnguard_dmabuf::MAX_PAGES
                    ),
                ))
            }
        },
    };
    if raw.exporter_file.is_some() {
        if let Some(p) = &raw.pages {
            return Err(v.err(
                p.span(),
                "pages",
                "an exporter file sets its own size: leave `pages` out",
            ));
        }
    }

    // Actors: names and kinds first, so that `fork CHILD` and `parent` resolve.
    let raw_actors = raw.actor.get_ref();
    if raw_actors.is_empty() || raw_actors.len() > MAX_ACTORS {
        return Err(v.err(
            raw.actor.span(),
            "actor",
            format!("a scenario has 1 to {MAX_ACTORS} actors"),
        ));
    }
    let mut actors: Vec<Actor> = Vec::new();
    for a in raw_actors {
        let n = a.name.get_ref().trim();
        let ok = |c: char| c.is_ascii_alphanumeric() || "-_".contains(c);
        if n.is_empty() || n.len() > 32 || !n.chars().all(ok) {
            return Err(v.err(
                a.name.span(),
                "actor.name",
                "must be 1 to 32 letters, digits, '-' or '_'",
            ));
        }
        if actors.iter().any(|x| x.name == n) {
            return Err(v.err(
                a.name.span(),
                "actor.name",
                format!("two actors are named `{n}`"),
            ));
        }
        let kind = match &a.kind {
            None => ActorKind::Process,
            Some(k) => match k.get_ref().as_str() {
                "process" => ActorKind::Process,
                "child" => ActorKind::Child,
                "exporter" => ActorKind::Exporter,
                "device" => ActorKind::Device,
                other => {
                    return Err(v.err(
                        k.span(),
                        "actor.kind",
                        format!(
                            "unknown actor kind `{other}` (expected process, child, exporter or device)"
                        ),
                    ))
                }
            },
        };
        actors.push(Actor {
            name: n.to_owned(),
            kind,
            parent: None,
            steps: Vec::new(),
        });
    }
    if !actors.iter().any(|a| a.kind == ActorKind::Process) {
        return Err(v.err(
            raw.actor.span(),
            "actor",
            "a scenario needs at least one actor of kind \"process\" (it exports the buffer)",
        ));
    }
    for (i, a) in raw_actors.iter().enumerate() {
        match (&a.parent, actors[i].kind) {
            (Some(p), ActorKind::Child) => {
                let j = actors
                    .iter()
                    .position(|x| x.name == *p.get_ref())
                    .filter(|&j| {
                        j != i && matches!(actors[j].kind, ActorKind::Process | ActorKind::Child)
                    })
                    .ok_or_else(|| {
                        v.err(
                            p.span(),
                            "actor.parent",
                            format!("`{}` is not another process or child actor", p.get_ref()),
                        )
                    })?;
                actors[i].parent = Some(j);
            }
            (None, ActorKind::Child) => {
                return Err(v.err(
                    a.name.span(),
                    "actor.parent",
                    "a child actor needs `parent`, the actor whose `fork` creates it",
                ))
            }
            (Some(p), _) => {
                return Err(v.err(
                    p.span(),
                    "actor.parent",
                    "only an actor of kind \"child\" has a parent",
                ))
            }
            (None, _) => {}
        }
    }
    for (i, a) in raw_actors.iter().enumerate() {
        let steps = a.steps.get_ref();
        if steps.len() > MAX_STEPS {
            return Err(v.err(
                a.steps.span(),
                "actor.steps",
                format!("an actor has at most {MAX_STEPS} steps"),
            ));
        }
        let kind = actors[i].kind;
        let child_of = |name: &str| -> Option<u16> {
            actors
                .iter()
                .position(|x| x.name == name && x.parent == Some(i))
                .and_then(|j| u16::try_from(j).ok())
        };
        let mut parsed = Vec::new();
        for s in steps {
            let step = Step::parse(s.get_ref(), kind, &child_of)
                .map_err(|e| v.err(s.span(), "actor.steps", e.to_string()))?;
            parsed.push(step);
        }
        actors[i].steps = parsed;
    }
    for (i, a) in actors.iter().enumerate() {
        if let Some(p) = a.parent {
            let forks = actors[p]
                .steps
                .iter()
                .filter(|s| **s == Step::Fork { child: i as u16 })
                .count();
            if forks != 1 {
                return Err(v.err(
                    raw_actors[i].name.span(),
                    "actor.parent",
                    format!(
                        "child `{}` must be forked exactly once by `{}` (a `fork {}` step); it is forked {forks} time(s)",
                        a.name, actors[p].name, a.name
                    ),
                ));
            }
        }
    }

    if raw.result.len() > MAX_RESULTS {
        return Err(v.err(
            raw.result[MAX_RESULTS].actor.span(),
            "result",
            format!("a scenario has at most {MAX_RESULTS} [[result]] predicates"),
        ));
    }
    let mut results = Vec::new();
    for r in &raw.result {
        let a = actors
            .iter()
            .position(|x| x.name == *r.actor.get_ref())
            .ok_or_else(|| {
                v.err(
                    r.actor.span(),
                    "result.actor",
                    format!("`{}` is not an actor of the scenario", r.actor.get_ref()),
                )
            })?;
        let n = actors[a].steps.len();
        let step = match usize::try_from(*r.step.get_ref()) {
            Ok(s) if (1..=n).contains(&s) => s,
            _ => {
                return Err(v.err(
                    r.step.span(),
                    "result.step",
                    format!(
                        "{} is not a step of `{}` (1 to {n}, counting from 1)",
                        r.step.get_ref(),
                        actors[a].name
                    ),
                ))
            }
        };
        let o = r.outcome.get_ref().trim();
        let ok = matches!(
            o,
            "ok" | "SIGBUS" | "SIGSEGV" | "BUG" | "hang" | "skipped" | "unavailable"
        ) || (o.len() > 1
            && o.starts_with('E')
            && o.chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        let read = matches!(o, "counted" | "zero");
        let is_rss = actors[a].steps[step - 1] == Step::Rss;
        if read && !is_rss {
            return Err(v.err(
                r.outcome.span(),
                "result.outcome",
                format!(
                    "`{o}` is what an `rss` step reads; step {step} of `{}` is `{}`",
                    actors[a].name,
                    actors[a].steps[step - 1].render(&|c| actors
                        .get(usize::from(c))
                        .map(|x| x.name.clone())
                        .unwrap_or_default())
                ),
            ));
        }
        if !ok && !read {
            return Err(v.err(
                r.outcome.span(),
                "result.outcome",
                format!("`{o}` is not an outcome (expected {OUTCOME_KEYS})"),
            ));
        }
        let expect: Verdict = r
            .expect
            .get_ref()
            .parse()
            .map_err(|m: String| v.err(r.expect.span(), "result.expect", m))?;
        results.push(ResultPredicate {
            name: format!("result:{}#{step}={o}", actors[a].name),
            actor: a as u16,
            step: (step - 1) as u16,
            outcome: o.to_owned(),
            expect,
        });
    }
    let (expect, _) = v.expect(&raw.expect, "expect", &[])?;
    let mut when = Vec::new();
    for w in &raw.when {
        let kernel = match &w.kernel {
            Some(k) if !kernels.iter().any(|(n, _)| n == k.get_ref()) => {
                return Err(v.err(
                    k.span(),
                    "when.kernel",
                    format!("`{}` is not one of the scenario's kernels", k.get_ref()),
                ))
            }
            k => k.as_ref().map(|k| k.get_ref().clone()),
        };
        let policy = match &w.policy {
            None => None,
            Some(p) => {
                let pol: Policy =
                    p.get_ref()
                        .parse()
                        .map_err(|e: pfnguard_dmabuf::policy::UnknownPolicy| {
                            v.err(p.span(), "when.policy", e.to_string())
                        })?;
                if !policies.contains(&pol) {
                    return Err(v.err(
                        p.span(),
                        "when.policy",
                        format!("`{pol}` is not one of the scenario's policies"),
                    ));
                }
                Some(pol)
            }
        };
        let (expect, res) = v.expect(&w.expect, "when.expect", &results)?;
        when.push(When {
            kernel,
            policy,
            expect,
            results: res,
        });
    }

    Ok(Scenario {
        path: path.to_owned(),
        name,
        source: raw.source.map(|s| s.into_inner()),
        kernels,
        policies,
        exporter,
        exporter_id,
        pages,
        actors,
        expect,
        results,
        when,
    })
}

/// Read, parse and validate a scenario file.
pub fn load_scenario(path: &Path) -> Result<Scenario, ScenarioError> {
    let text =
        read_bounded(path, MAX_FILE_BYTES, "a scenario").map_err(|e| ScenarioError::Read {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    parse_scenario(path, &text)
}

/// The scenario files of a path: the file itself, or every `*.toml` under a directory
/// (recursively, leaving out `exporters/` directories, which hold exporter files), sorted.
pub fn scenario_files(path: &Path) -> Result<Vec<PathBuf>, ScenarioError> {
    let meta = std::fs::metadata(path).map_err(|e| ScenarioError::Read {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_owned()];
    while let Some(d) = stack.pop() {
        let rd = std::fs::read_dir(&d).map_err(|e| ScenarioError::Read {
            path: d.clone(),
            reason: e.to_string(),
        })?;
        for ent in rd.flatten() {
            let p = ent.path();
            if p.is_dir() {
                // Exporter files the scenarios use live in `exporters/` directories.
                if p.file_name().is_some_and(|n| n != "exporters") {
                    stack.push(p);
                }
            } else if p.extension().is_some_and(|x| x == "toml") {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}
