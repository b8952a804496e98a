//! `pfnguard report`: one self-contained HTML page (inline CSS and SVG, a little plain
//! JavaScript for filtering, nothing fetched) that shows what `matrix`, `history`, `explain` and
//! `explore` compute: the heatmap of every kernel line, the timeline of each exporter, the
//! proposal's policies (and the patched kernel's real outcomes), single cells explained with a
//! picture of the state at the end of the op, and the explorer's shortest witnesses.
//!
//! Every section is rendered from the same types the text commands print
//! ([`crate::matrix::Row`], [`crate::history::History`], [`pfnguard_dmabuf::predict::Cell`],
//! [`pfnguard_scenario::ExploreReport`]); [`html::esc`] is the only way text reaches the page.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use pfnguard_dmabuf::{Exporter, Policy, DEFAULT_PAGES};
use pfnguard_mm::{KernelConfig, ResolvedKernel};
use pfnguard_report::ExporterId;

use crate::cmd::{distinct_policies, kernels as kernels_of};
use crate::matrix::{self, Row};

mod explanations;
mod heatmap;
pub(crate) mod html;
mod page;
pub(crate) mod palette;
mod proposal;
mod state_picture;
mod timeline;
mod witnesses;

/// The exporters whose explorer witnesses the page shows unless `--witness-exporter` says.
/// (The README's explore table: i915 reaches a stale mapping, vgem a BUG on 6.2 to 6.9,
/// udmabuf-shmem and vivid-vmalloc hand struct pages to GUP by two different shapes.)
pub const WITNESS_EXPORTERS: [&str; 4] = ["i915", "vgem", "udmabuf-shmem", "vivid-vmalloc"];

/// The kernel of the witnesses unless `--witness-kernel` says: a line where struct pages still
/// reach GUP (6.13 converted udmabuf and the GEM shmem helpers) and vgem's BUG is reachable.
pub const WITNESS_KERNEL: &str = "6.6";

/// The explorer's depth for the witnesses unless `--witness-depth` says.
pub const WITNESS_DEPTH: usize = 4;

/// What `pfnguard report` was asked for.
pub struct Args {
    /// `--kernel` (default: every modeled line).
    pub kernels: Vec<String>,
    /// `--config`.
    pub config: Option<KernelConfig>,
    /// `--policy` (default: all four; the first is the baseline).
    pub policies: Vec<Policy>,
    /// `--exporter-file`.
    pub files: Vec<PathBuf>,
    /// `--pages`.
    pub pages: Option<u64>,
    /// `--explain-kernel` (default: every kernel of the page).
    pub explain_kernels: Vec<String>,
    /// `--witness-exporter` (default: [`WITNESS_EXPORTERS`]).
    pub witness_exporters: Vec<ExporterId>,
    /// `--witness-depth`.
    pub witness_depth: usize,
    /// `--witness-kernel` (default: [`WITNESS_KERNEL`]).
    pub witness_kernel: Option<String>,
    /// `--out`.
    pub out: PathBuf,
}

/// What every section reads: the kernels, policies and exporters of the page and the matrix
/// rows of all of them.
pub(crate) struct Ctx {
    /// The kernels, one panel each, in order.
    pub ks: Vec<Arc<ResolvedKernel>>,
    /// The policies; the first is the baseline the others are compared with.
    pub ps: Vec<Policy>,
    /// The exporters, one heatmap row each.
    pub exps: Vec<Arc<dyn Exporter>>,
    /// `matrix`'s rows: kernel-major, then policy, then exporter.
    pub rows: Vec<Row>,
    /// Buffer size for catalogue exporters.
    pub pages: u64,
    /// `--config`.
    pub config: Option<KernelConfig>,
    /// `--exporter-file`s as given, each with the name of its exporter.
    pub files: Vec<(String, String)>,
}

impl Ctx {
    /// The row of kernel `k`, policy `p`, exporter `e` (indices).
    pub fn row(&self, k: usize, p: usize, e: usize) -> &Row {
        &self.rows[(k * self.ps.len() + p) * self.exps.len() + e]
    }
    /// The baseline policy.
    pub fn base(&self) -> Policy {
        self.ps[0]
    }
    /// The kernels of the page as people say it: `7.3`, or `5.10 to 7.3`.
    pub fn kernel_range(&self) -> String {
        match (self.ks.first(), self.ks.last()) {
            (Some(a), Some(b)) if a.name != b.name => format!("{} to {}", a.name, b.name),
            (Some(a), _) => a.name.clone(),
            _ => String::new(),
        }
    }
}

/// `pfnguard report`.
pub fn report(out: &mut dyn Write, args: &Args) -> Result<ExitCode> {
    check_out(&args.out)?;
    let t = Instant::now();
    let html = build(args)?;
    write_atomically(&args.out, html.as_bytes())?;
    writeln!(
        out,
        "wrote {} ({} bytes) in {:.1} s",
        args.out.display(),
        html.len(),
        t.elapsed().as_secs_f64()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The page.
pub fn build(args: &Args) -> Result<String> {
    let ks = kernels_of(&args.kernels, args.config.as_ref())?;
    let ps = if args.policies.is_empty() {
        Policy::ALL.to_vec()
    } else {
        distinct_policies(&args.policies)
    };
    let exps = matrix::exporters(&args.files)?;
    let pages = args.pages.unwrap_or(DEFAULT_PAGES);
    let rows = matrix::run(&ks, &ps, &exps, pages);
    let first_file = exps.len() - args.files.len();
    let files = args
        .files
        .iter()
        .zip(&exps[first_file..])
        .map(|(f, e)| (f.display().to_string(), e.id().to_owned()))
        .collect();
    let ctx = Ctx {
        files,
        ks,
        ps,
        exps,
        rows,
        pages,
        config: args.config.clone(),
    };
    let explain_at = explain_kernels(&ctx, &args.explain_kernels)?;
    let explained = explanations::collect(&ctx, &explain_at);
    // The proposal's verdict tables: of the kernels asked to be explained, or of the newest.
    let verdict_at: Vec<usize> = if args.explain_kernels.is_empty() {
        vec![ctx.ks.len().saturating_sub(1)]
    } else {
        explain_at.clone()
    };
    let witness_exps: Vec<Arc<dyn Exporter>> = if args.witness_exporters.is_empty() {
        WITNESS_EXPORTERS
            .iter()
            .filter_map(|id| id.parse::<ExporterId>().ok())
            .map(pfnguard_dmabuf::by_id)
            .collect()
    } else {
        args.witness_exporters
            .iter()
            .map(|id| pfnguard_dmabuf::by_id(*id))
            .collect()
    };
    let witness_kernel = crate::cmd::kernel(
        args.witness_kernel.as_deref().unwrap_or(WITNESS_KERNEL),
        args.config.as_ref(),
    )
    .map_err(|e| anyhow!("--witness-kernel: {e:#}"))?;
    let sections = [
        heatmap::section(&ctx, &explained),
        timeline::section(&ctx)?,
        proposal::section(&ctx, &explained, &verdict_at),
        explanations::section(&ctx, &explained),
        witnesses::section(
            &witness_kernel,
            &witness_exps,
            ctx.base(),
            args.witness_depth,
        ),
    ];
    Ok(page::document(&ctx, &explain_at, &sections))
}

/// Indices into `ctx.ks` of the kernels whose cells are explained: `--explain-kernel`, each a
/// kernel of the page, or every kernel of the page.
fn explain_kernels(ctx: &Ctx, names: &[String]) -> Result<Vec<usize>> {
    if names.is_empty() {
        return Ok((0..ctx.ks.len()).collect());
    }
    let mut out = Vec::new();
    for n in names {
        let k = crate::cmd::kernel(n, ctx.config.as_ref())?;
        let i = ctx
            .ks
            .iter()
            .position(|q| q.name == k.name)
            .ok_or_else(|| {
                anyhow!("--explain-kernel {n}: not a kernel of the page (add it with --kernel)")
            })?;
        if !out.contains(&i) {
            out.push(i);
        }
    }
    Ok(out)
}

/// `--out` must name a file in an existing directory: said before minutes of work, not after.
fn check_out(path: &Path) -> Result<()> {
    let p = path.display();
    if path.as_os_str().is_empty() || path.file_name().is_none() {
        return Err(anyhow!("--out {p}: not a file name"));
    }
    if path.is_dir() {
        return Err(anyhow!("--out {p}: is a directory"));
    }
    let dir = parent(path);
    if !dir.is_dir() {
        return Err(anyhow!(
            "--out {p}: the directory {} does not exist",
            dir.display()
        ));
    }
    Ok(())
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Write `bytes` to `path` through a temporary file in the same directory and a rename, so the
/// path holds the old page or the whole new one, never part of one.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let p = path.display();
    let dir = parent(path);
    let name = path
        .file_name()
        .ok_or_else(|| anyhow!("--out {p}: not a file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp{}", std::process::id()));
    let tmp = dir.join(tmp_name);
    let written = std::fs::File::create(&tmp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("--out {p}: cannot write"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
