//! The timeline: per exporter, the lines where its row changed and the kernel fact (and commit)
//! that changed it — `pfnguard history`'s computation ([`crate::history::compute`]), drawn as
//! a strip of lines per op that changed.

use std::fmt::Write as _;

use anyhow::Result;
use pfnguard_dmabuf::Exporter;
use pfnguard_mm::LINES;

use super::html::{esc, id};
use super::palette::Class;
use super::Ctx;
use crate::history::{compute, History};
use crate::matrix::short;

/// The histories of every exporter of the page under the baseline policy, computed on two
/// threads (each is deterministic, the split changes nothing).
fn histories(ctx: &Ctx) -> Result<Vec<History>> {
    let one = |e: &std::sync::Arc<dyn Exporter>| {
        let pages = e.fixed_pages().unwrap_or(ctx.pages);
        compute(e.as_ref(), &[], ctx.base(), pages, ctx.config.as_ref())
    };
    let half = ctx.exps.len().div_ceil(2);
    let (a, b) = ctx.exps.split_at(half);
    std::thread::scope(|s| {
        let other = s.spawn(|| b.iter().map(one).collect::<Result<Vec<_>>>());
        let mut mine = a.iter().map(one).collect::<Result<Vec<_>>>()?;
        match other.join() {
            Ok(rest) => mine.extend(rest?),
            Err(p) => std::panic::resume_unwind(p),
        }
        Ok(mine)
    })
}

fn exporter(h: &History) -> String {
    let changed: Vec<_> = h.ops.iter().filter(|o| !o.changes.is_empty()).collect();
    let mut lines: Vec<String> = changed
        .iter()
        .flat_map(|o| o.changes.iter().map(|c| c.line.clone()))
        .collect();
    lines.sort_by_key(|l| LINES.iter().position(|x| x.to_string() == *l));
    lines.dedup();
    let summary = if lines.is_empty() {
        "unchanged on every line".to_owned()
    } else {
        format!("changes on {}", lines.join(", "))
    };
    let mut s = format!(
        r#"<details class="tl" id="{}" data-e="{}"><summary><strong>{}</strong>: {}</summary>"#,
        id(&["t", &h.exporter]),
        esc(&h.exporter),
        esc(&h.exporter),
        esc(&summary)
    );
    if !changed.is_empty() {
        s.push_str(r#"<div class="sc"><table class="strip"><thead><tr><th scope="col">op"#);
        for l in LINES {
            let _ = write!(s, r#"<th scope="col">{l}"#);
        }
        s.push_str("</thead><tbody>");
        for o in &changed {
            let _ = write!(s, r#"<tr><th scope="row">{}"#, o.op);
            for seg in &o.segments {
                let pos = |l: &str| LINES.iter().position(|x| x.to_string() == l);
                let span = match (pos(&seg.from), pos(&seg.to)) {
                    (Some(a), Some(b)) => b + 1 - a,
                    _ => 1,
                };
                let _ = write!(
                    s,
                    r#"<td colspan="{span}" class="{}" title="{} – {}: {}">{}"#,
                    Class::of(&seg.value, false).css(),
                    esc(&seg.from),
                    esc(&seg.to),
                    esc(&seg.value.to_string()),
                    esc(&short(&seg.value))
                );
            }
        }
        s.push_str("</tbody></table></div><ul>");
        for o in &changed {
            for c in &o.changes {
                let how = if c.jointly { " (together)" } else { "" };
                let _ = write!(
                    s,
                    "<li><strong>{}</strong> <code>{}</code>: {} → {}{how}<ul>",
                    esc(&c.line),
                    o.op,
                    esc(&c.from.to_string()),
                    esc(&c.to.to_string())
                );
                for f in &c.facts {
                    let commit = f
                        .commit
                        .map(|c| format!(", commit <code>{}</code>", esc(c)))
                        .unwrap_or_default();
                    let backports = if f.backports.is_empty() {
                        String::new()
                    } else {
                        format!("; also in stable {}", esc(&f.backports.join(", ")))
                    };
                    let _ = write!(
                        s,
                        "<li><code>{}</code> (since {}{commit}{backports}): {} <span class=\"mu\"><code>{}</code> → <code>{}</code></span></li>",
                        esc(f.id),
                        esc(&f.since),
                        esc(f.summary),
                        esc(f.before),
                        esc(f.after)
                    );
                }
                s.push_str("</ul></li>");
            }
        }
        s.push_str("</ul>");
    }
    let same: Vec<String> = h
        .ops
        .iter()
        .filter(|o| o.changes.is_empty())
        .map(|o| o.op.to_string())
        .collect();
    if !same.is_empty() {
        let _ = write!(
            s,
            r#"<p class="mu">the same on every line: {}</p>"#,
            esc(&same.join(", "))
        );
    }
    s.push_str("</details>");
    s
}

/// The section.
pub fn section(ctx: &Ctx) -> Result<String> {
    let hs = histories(ctx)?;
    let mut s = format!(
        r#"<section id="timeline"><h2>The timeline: where each exporter's row changed, and why</h2><p><code>pfnguard history</code> for every exporter under policy {}, each line at its newest point release ({}): per op that changed, the value on each run of lines (colours as in the heatmap, without the GUP mark, which history does not compute), then each change with the kernel fact that makes it alone (or the facts the newer line needs together), its release, commit and <code>file:function</code> before and after.</p>"#,
        ctx.base(),
        esc(&hs.first().map(|h| h.config.clone()).unwrap_or_default())
    );
    for h in &hs {
        s.push_str(&exporter(h));
    }
    s.push_str("</section>");
    Ok(s)
}
