//! `predict`, `matrix` and `explain`: run every op of an exporter on the model of a kernel under
//! a policy.

use std::collections::BTreeMap;

use pfnguard_mm::{Kernel, ResolvedKernel};
use pfnguard_report::{run_row, ExporterReport, OpKey, Outcome};

use crate::consumers::run_op;
use crate::exporters::{ExportCtx, Exporter};
use crate::policy::Policy;

/// Default buffer size in pages where userspace chooses it.
pub const DEFAULT_PAGES: u64 = 4;

/// The largest buffer the model runs, in pages (256 MiB): for `--pages`, exporter files and the
/// sizes `check` reads from probe reports alike.
pub const MAX_PAGES: u64 = 65536;

/// One cell on a fresh kernel: the value, the kernel's warnings, and (if asked) the trace.
#[derive(Debug, Clone)]
pub struct Cell {
    /// The op's outcome.
    pub value: Outcome,
    /// Warnings and other kernel events recorded while the op ran.
    pub events: Vec<String>,
    /// The `file:function` of each WARN the op hit, as the kernel log's `WARNING:` line names
    /// it ([`Kernel::warn_sites`]).
    pub warn_sites: Vec<&'static str>,
    /// How many `struct page`s of the buffer GUP handed to the op's kernel path
    /// ([`Kernel::gup_returned`]).
    pub gup_struct_pages: u64,
    /// The modeled steps, when tracing was asked for.
    pub trace: Option<pfnguard_mm::trace::Trace>,
    /// The state at the end of the op (VMAs, PTEs, frames, holders), when tracing was asked
    /// for.
    pub snapshot: Option<pfnguard_mm::snapshot::Snapshot>,
}

/// The [`Config`](pfnguard_mm::Config) a kernel model runs with: the policy's, and what the
/// build says (CONFIG_SECRETMEM, CONFIG_DEBUG_VM, CONFIG_X86_PAT).
pub fn mm_config(kernel: &ResolvedKernel, policy: Policy) -> pfnguard_mm::Config {
    use pfnguard_mm::Kconfig;
    let mut c = policy.mm_config();
    c.secretmem = kernel.config.has(Kconfig::Secretmem);
    c.debug_vm |= kernel.config.has(Kconfig::DebugVm);
    c.x86_pat = kernel.config.has(Kconfig::X86Pat);
    c
}

/// Run one op of one exporter on a fresh model of `kernel` under `policy`. An exporter the
/// kernel's build lacks is unavailable: its export names the missing option.
pub fn run_cell(
    kernel: &ResolvedKernel,
    exp: &dyn Exporter,
    policy: Policy,
    op: OpKey,
    pages: u64,
    trace: bool,
) -> Cell {
    if let Some(o) = exp.not_built(&kernel.config) {
        return Cell {
            value: Outcome::unavailable(format!("{o} is not set ({})", kernel.config.source)),
            events: Vec::new(),
            warn_sites: Vec::new(),
            gup_struct_pages: 0,
            trace: None,
            snapshot: None,
        };
    }
    let mut k = Kernel::new(kernel.facts, mm_config(kernel, policy));
    if trace {
        k.trace.enable();
    }
    let cx = ExportCtx { policy, pages };
    let value = run_op(&mut k, exp, &cx, op);
    let events = k.warnings();
    let warn_sites = k.warn_sites();
    Cell {
        value,
        events,
        warn_sites,
        gup_struct_pages: k.gup_returned,
        trace: trace.then(|| k.trace.clone()),
        snapshot: trace.then(|| pfnguard_mm::snapshot::Snapshot::of(&k)),
    }
}

/// `pfnguard predict`: every op of `exp` on `kernel` under `policy`.
pub fn predict(
    kernel: &ResolvedKernel,
    exp: &dyn Exporter,
    policy: Policy,
    pages: u64,
) -> ExporterReport {
    // Each op boots a fresh kernel, so a WARN_ON_ONCE fires once per op: list each message
    // once, with the ops that hit it.
    let mut seen: Vec<(String, Vec<OpKey>)> = Vec::new();
    let mut gup_struct_pages = Vec::new();
    let mut warned = Vec::new();
    let mut warned_at = BTreeMap::new();
    let ops = run_row(|op| {
        let c = run_cell(kernel, exp, policy, op, pages, false);
        if c.gup_struct_pages > 0 {
            gup_struct_pages.push(op);
        }
        if !c.warn_sites.is_empty() {
            warned_at.insert(op, c.warn_sites.iter().map(|s| s.to_string()).collect());
        }
        if !c.events.is_empty() {
            warned.push(op);
        }
        for w in c.events {
            match seen.iter_mut().find(|(m, _)| *m == w) {
                Some((_, ops)) => ops.push(op),
                None => seen.push((w, vec![op])),
            }
        }
        c.value
    });
    let warnings = seen
        .into_iter()
        .map(|(m, o)| {
            if o.len() == 1 {
                format!("{m} (op {})", o[0])
            } else {
                format!("{m} ({} ops, first {})", o.len(), o[0])
            }
        })
        .collect();
    let mut detail = serde_json::Map::new();
    detail.insert("summary".into(), exp.summary().into());
    detail.insert("kernel_version".into(), kernel.version.to_string().into());
    detail.insert("config".into(), kernel.config.source.to_string().into());
    if let Some(o) = exp.not_built(&kernel.config) {
        detail.insert("not_built".into(), format!("{o} is not set").into());
    }
    ExporterReport {
        kernel: Some(kernel.name.clone()),
        exporter: exp.id().to_owned(),
        policy: Some(policy.name().to_owned()),
        ops,
        warnings,
        gup_struct_pages: Some(gup_struct_pages),
        warned: Some(warned),
        warned_at: Some(warned_at),
        status: None,
        detail,
    }
}
