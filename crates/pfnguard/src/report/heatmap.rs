//! The heatmap: exporters x ops, one panel per kernel line and policy, each cell coloured by
//! [`Class`], its text `matrix`'s table text (the value shortened, with the marks `^ ! + *`),
//! its exact value in `title`, and a link to its explanation where the page has one.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use pfnguard_report::OpKey;

use super::explanations::Explained;
use super::html::{attr, esc, id};
use super::palette::Class;
use super::Ctx;
use crate::matrix::{cell_text, marks, SHORTENED};

/// The id of the panel of kernel `k` under policy `p` (indices into the context).
pub fn panel_id(ctx: &Ctx, k: usize, p: usize) -> String {
    id(&["h", &ctx.ks[k].name, ctx.ps[p].name()])
}

/// One cell: `<td>` with its class, title and text (a link when explained).
fn cell(ctx: &Ctx, explained: &Explained, (k, p, e): (usize, usize, usize), op: OpKey) -> String {
    let r = ctx.row(k, p, e);
    let Some(v) = r.report.ops.get(&op) else {
        return "<td>".to_owned();
    };
    let base = (p != 0).then(|| ctx.row(k, 0, e));
    let changed = base.is_some_and(|b| b.report.ops.get(&op) != Some(v));
    let class = if changed {
        format!("\"{} c\"", Class::of(v, r.leaks().contains(&op)).css())
    } else {
        Class::of(v, r.leaks().contains(&op)).css().to_owned()
    };
    let text = esc(&cell_text(r, base, op, false));
    let title = attr(&v.to_string());
    match explained.id_of(k, p, e, op) {
        Some(x) => format!("<td class={class} title={title}><a href=#{x}>{text}</a>"),
        None => format!("<td class={class} title={title}>{text}"),
    }
}

/// The panel of kernel `k` under policy `p`.
pub fn panel(ctx: &Ctx, explained: &Explained, k: usize, p: usize) -> String {
    let kernel = &ctx.ks[k];
    let policy = ctx.ps[p];
    let mut s = String::new();
    let changed = if p == 0 {
        String::new()
    } else {
        format!(", cells changed from {} outlined and marked *", ctx.base())
    };
    let _ = write!(
        s,
        r#"<section class="pn" id="{}" data-k="{}" data-p="{}"><h3>Linux {} <span class="mu">policy {}{changed}</span></h3>"#,
        panel_id(ctx, k, p),
        esc(&kernel.name),
        policy.name(),
        esc(&kernel.label()),
        policy.name(),
    );
    let confirmed: BTreeSet<&str> = (0..ctx.exps.len())
        .flat_map(|e| ctx.row(k, p, e).confirmed.values().flatten())
        .map(String::as_str)
        .collect();
    if !confirmed.is_empty() {
        let list: Vec<&str> = confirmed.into_iter().collect();
        let _ = write!(
            s,
            r#"<p class="mu">+ confirmed on {}</p>"#,
            esc(&list.join(", "))
        );
    }
    s.push_str(r#"<div class="sc"><table class="hm"><thead><tr><th scope="col">exporter"#);
    for op in OpKey::ALL {
        let _ = write!(s, "<th scope=col data-op={op}><span>{op}</span>");
    }
    s.push_str("</thead><tbody>");
    for e in 0..ctx.exps.len() {
        let name = esc(ctx.exps[e].id());
        let _ = write!(
            s,
            "<tr data-e={}><th scope=row>{name}",
            attr(ctx.exps[e].id())
        );
        for op in OpKey::ALL {
            s.push_str(&cell(ctx, explained, (k, p, e), op));
        }
    }
    s.push_str("</tbody></table></div></section>");
    s
}

/// The legend: the classes with their colours, the marks, the shortened values.
pub fn legend(ctx: &Ctx) -> String {
    let mut s = String::from(r#"<div class="lg"><ul>"#);
    for c in Class::ALL {
        let _ = write!(
            s,
            r#"<li><span class="sw {}">{}</span> {}</li>"#,
            c.css(),
            c.example(),
            esc(c.meaning())
        );
    }
    s.push_str("</ul><ul>");
    for m in marks(ctx.base()) {
        let (mark, what) = m.split_at(1);
        let _ = write!(s, "<li><code>{}</code>{}</li>", esc(mark), esc(what));
    }
    for l in SHORTENED {
        let _ = write!(s, "<li>{}</li>", esc(l));
    }
    s.push_str(
        "<li>hover a cell for the exact value; with the keyboard, Tab into a panel, move with \
         the arrow keys (the status line at the top says the cell's value), Enter opens a \
         linked cell's explanation</li></ul></div>",
    );
    s
}

/// The heatmap section: the baseline policy's panel of every kernel.
pub fn section(ctx: &Ctx, explained: &Explained) -> String {
    let mut s = format!(
        r#"<section id="heatmap"><h2>The heatmap: exporters × ops, policy {}</h2><p>One panel per kernel line ({}), the same cells as <code>pfnguard matrix</code>. Colour and text say the same thing.</p>{}<div class="pns">"#,
        ctx.base(),
        esc(&ctx.kernel_range()),
        legend(ctx)
    );
    for k in 0..ctx.ks.len() {
        s.push_str(&panel(ctx, explained, k, 0));
    }
    s.push_str(
        "</div><details><summary>What each op does (<code>pfnguard ops</code>)</summary><dl>",
    );
    for op in OpKey::ALL {
        let _ = write!(s, "<dt><code>{op}</code><dd>{}", esc(op.describe()));
    }
    s.push_str("</dl></details></section>");
    s
}
