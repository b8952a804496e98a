//! The proposal: what each policy of `dma_buf.mmap_check` does to the baseline — the verdict of
//! `matrix` for the explained kernels, the heatmap under each policy with the changed cells
//! outlined, and the patched kernel booted at each level (`reports/patched`) beside the model.

use std::fmt::Write as _;

use pfnguard_dmabuf::{by_id, predict, Policy};
use pfnguard_mm::resolve_release;
use pfnguard_report::{ExporterId, OpKey};

use super::explanations::Explained;
use super::heatmap::panel;
use super::html::esc;
use super::palette::Class;
use super::Ctx;
use crate::check::pages_of;
use crate::evidence;
use crate::matrix::{policy_effect, short};

/// What each level does, as the README's table of policies says it.
fn what(p: Policy) -> &'static str {
    match p {
        Policy::Off => "the stock kernels: no check",
        Policy::Warn => "after the exporter's mmap, a WARN_ONCE naming the exporter unless the VMA is VM_PFNMAP without VM_MIXEDMAP; the mmap proceeds",
        Policy::Require => "the same WARN_ONCE, and the mmap fails with -EINVAL",
        Policy::Strict => "require, plus the check on every struct-page insert path into a VM_PFNMAP/VM_IO VMA (-EINVAL, SIGBUS on faults), plus every present PTE of the new VMA special",
    }
}

/// The verdict of one explained kernel: per exporter, what each policy changes.
fn verdicts(ctx: &Ctx, k: usize) -> String {
    let mut s = format!(
        r#"<h3>Linux {}: what each policy changes against {}</h3><div class="sc"><table class="vd"><thead><tr><th scope="col">exporter<th scope="col">{}"#,
        esc(&ctx.ks[k].label()),
        ctx.base(),
        ctx.base()
    );
    for p in &ctx.ps[1..] {
        let _ = write!(s, r#"<th scope="col">{p}"#);
    }
    s.push_str("</thead><tbody>");
    for e in 0..ctx.exps.len() {
        let b = ctx.row(k, 0, e);
        let leaks = b.leaks();
        let (class, base) = if leaks.is_empty() {
            ("s", "no struct pages reach GUP".to_owned())
        } else {
            let ops: Vec<&str> = leaks.iter().map(|o| o.as_str()).collect();
            ("g", format!("struct pages to GUP via {}", ops.join(", ")))
        };
        let _ = write!(
            s,
            r#"<tr><th scope="row">{}<td class="{class}">{}"#,
            esc(ctx.exps[e].id()),
            esc(&base)
        );
        for p in 1..ctx.ps.len() {
            let r = ctx.row(k, p, e);
            let effect = policy_effect(b, r);
            let text = effect.split_once(": ").map_or(effect.as_str(), |(_, t)| t);
            let class = if r.leaks().is_empty() { "s" } else { "g" };
            let _ = write!(s, r#"<td class="{class}">{}"#, esc(text));
        }
    }
    s.push_str("</tbody></table></div>");
    s
}

/// The patched kernel at each level it was booted at: per exporter and op, the real value as
/// the cell's text and the model's beside it when they differ.
fn booted() -> String {
    let levels = evidence::patched();
    if levels.is_empty() {
        return "<p>No patched-kernel reports are embedded (reports/patched).</p>".to_owned();
    }
    let mut s = String::from(
        r#"<h3 id="booted">The proposal, booted</h3><p>Debian's 7.3 with the series in <code>kernel/dma-buf-mmap-check</code>, booted at each <code>mmap_check</code> level under QEMU (<code>reports/patched</code>, embedded at build time). Each cell is the real kernel's value; <code>=</code> the model gives the same, <code>≠ X</code> the model gives X.</p><div class="pns">"#,
    );
    for (level, report) in &levels {
        let Some(policy) = Policy::ALL.into_iter().find(|p| p.name() == *level) else {
            continue;
        };
        let kernel = resolve_release(&report.kernel_release, report.kernel_version.as_deref());
        let Ok(kernel) = kernel else { continue };
        let _ = write!(
            s,
            r#"<section class="pn" data-p="{level}"><h3>{} <span class="mu">mmap_check={level}</span></h3><div class="sc"><table class="hm"><thead><tr><th scope="col">exporter"#,
            esc(&report.kernel_release)
        );
        for op in OpKey::ALL {
            let _ = write!(s, r#"<th scope="col"><span>{op}</span>"#);
        }
        s.push_str("</thead><tbody>");
        for row in &report.exporters {
            let Ok(id) = row.exporter.parse::<ExporterId>() else {
                continue;
            };
            let pages = pages_of(row).unwrap_or(pfnguard_dmabuf::DEFAULT_PAGES);
            let model = predict(&kernel, by_id(id).as_ref(), policy, pages);
            let gup = model.gup_struct_pages.clone().unwrap_or_default();
            let _ = write!(s, r#"<tr><th scope="row">{}"#, esc(&row.exporter));
            for op in OpKey::ALL {
                let Some(real) = row.ops.get(&op) else {
                    s.push_str("<td>");
                    continue;
                };
                let m = model.ops.get(&op);
                let (mark, title) = match m {
                    Some(m) if m == real => {
                        ("=".to_owned(), format!("real {real}; model the same"))
                    }
                    Some(m) => (
                        format!(" ≠ {}", short(m)),
                        format!("real {real}; model {m}"),
                    ),
                    None => (String::new(), format!("real {real}")),
                };
                let _ = write!(
                    s,
                    r#"<td class="{}" title="{}">{}{}"#,
                    Class::of(real, gup.contains(&op)).css(),
                    esc(&title),
                    esc(&short(real)),
                    esc(&mark)
                );
            }
        }
        s.push_str("</tbody></table></div></section>");
    }
    s.push_str("</div>");
    s
}

/// The section.
pub fn section(ctx: &Ctx, explained: &Explained, explain_at: &[usize]) -> String {
    let mut s =
        String::from(r#"<section id="proposal"><h2>The proposal: dma_buf.mmap_check</h2><ul>"#);
    for p in &ctx.ps {
        let _ = write!(s, "<li><strong>{p}</strong>: {}</li>", esc(what(*p)));
    }
    s.push_str("</ul>");
    if ctx.ps.len() > 1 {
        for &k in explain_at {
            s.push_str(&verdicts(ctx, k));
        }
        for p in 1..ctx.ps.len() {
            let _ = write!(
                s,
                r#"<h3>The heatmap under {}</h3><div class="pns">"#,
                ctx.ps[p]
            );
            for k in 0..ctx.ks.len() {
                s.push_str(&panel(ctx, explained, k, p));
            }
            s.push_str("</div>");
        }
    } else {
        s.push_str("<p>Only one policy was asked for: nothing to compare (without <code>--policy</code> the page has all four).</p>");
    }
    s.push_str(&booted());
    s.push_str("</section>");
    s
}
