//! One cell, explained: `explain`'s steps with their source cites, and the picture of the state
//! at the end of the op ([`pfnguard_mm::snapshot::Snapshot`]).
//!
//! Every cell of the `--explain-kernel` lines (default: every line of the page) under every
//! policy has one; cells whose value, trace and end state are identical share it, and the setup
//! every op of an exporter starts with is shown once. The explanations of a whole page are tens
//! of megabytes of HTML, made of few distinct pieces: the page carries them gzip-compressed
//! (base64 in a `<script type="application/gzip">` block that never runs) and the page's script
//! inflates them with the browser's `DecompressionStream` the first time a link points at one.

use std::collections::HashMap;
use std::fmt::Write as _;

use pfnguard_dmabuf::run_cell;
use pfnguard_mm::snapshot::Snapshot;
use pfnguard_mm::trace::Step;
use pfnguard_report::{OpKey, Outcome};

use super::heatmap::panel_id;
use super::html::{base64, esc};
use super::state_picture::Pictures;
use super::Ctx;

/// One explanation, shared by the cells whose run was the same.
pub struct Explanation {
    /// The cell's value.
    value: Outcome,
    /// The setup its trace starts with (export, mmap, a write to every page), shown apart, and
    /// how many steps of the trace it is.
    setup: Option<(usize, usize)>,
    /// The kernel path (`explain`'s steps) after the setup.
    steps: Vec<Step>,
    /// The picture of the state at the end of the op.
    picture: usize,
    /// Struct pages GUP handed to the op's path.
    gup_struct_pages: u64,
    /// The kernel log.
    events: Vec<String>,
    /// The cells it explains: (kernel, policy, exporter, op).
    cells: Vec<(usize, usize, usize, OpKey)>,
}

/// The steps every op of one exporter, kernel and policy starts with: the trace of
/// `mmap_shared` (export, mmap, a write to every page).
struct Setup {
    steps: Vec<Step>,
    /// Whose: (kernel, policy, exporter).
    of: (usize, usize, usize),
}

/// The explanations of the page, and which cell has which.
pub struct Explained {
    items: Vec<Explanation>,
    setups: Vec<Setup>,
    pictures: Pictures,
    by_cell: HashMap<(usize, usize, usize, OpKey), usize>,
}

/// The fragment id of explanation `i`.
fn anchor(i: usize) -> String {
    format!("x{i}")
}

impl Explained {
    /// The fragment id of the explanation of a cell, if the page has one.
    pub fn id_of(&self, k: usize, p: usize, e: usize, op: OpKey) -> Option<String> {
        self.by_cell.get(&(k, p, e, op)).map(|&i| anchor(i))
    }
    /// How many distinct explanations.
    pub fn len(&self) -> usize {
        self.items.len()
    }
}

/// Whether the page explains this cell: every cell that has a value.
fn worth_explaining(ctx: &Ctx, (k, p, e): (usize, usize, usize), op: OpKey) -> bool {
    ctx.row(k, p, e).report.ops.contains_key(&op)
}

/// The traced run of one cell.
fn traced(
    ctx: &Ctx,
    (k, p, e): (usize, usize, usize),
    op: OpKey,
) -> pfnguard_dmabuf::predict::Cell {
    let exp = &ctx.exps[e];
    let pages = exp.fixed_pages().unwrap_or(ctx.pages);
    run_cell(&ctx.ks[k], exp.as_ref(), ctx.ps[p], op, pages, true)
}

fn steps_of(c: &pfnguard_dmabuf::predict::Cell) -> Vec<Step> {
    c.trace.as_ref().map(|t| t.steps()).unwrap_or_default()
}

/// Run, traced, every cell worth explaining on the kernels `at`.
pub fn collect(ctx: &Ctx, at: &[usize]) -> Explained {
    let mut out = Explained {
        items: Vec::new(),
        setups: Vec::new(),
        pictures: Pictures::new("pic"),
        by_cell: HashMap::new(),
    };
    let mut by_run: HashMap<String, usize> = HashMap::new();
    let mut by_setup: HashMap<String, usize> = HashMap::new();
    for &k in at {
        for p in 0..ctx.ps.len() {
            for e in 0..ctx.exps.len() {
                let mut setup: Option<(usize, usize)> = None;
                for op in OpKey::ALL {
                    if !worth_explaining(ctx, (k, p, e), op) {
                        continue;
                    }
                    let c = traced(ctx, (k, p, e), op);
                    let mut steps = steps_of(&c);
                    if setup.is_none() {
                        let s = steps_of(&traced(ctx, (k, p, e), OpKey::MmapShared));
                        let key = serde_json::to_string(&s).unwrap_or_default();
                        let i = *by_setup.entry(key).or_insert_with(|| {
                            out.setups.push(Setup {
                                steps: s,
                                of: (k, p, e),
                            });
                            out.setups.len() - 1
                        });
                        setup = Some((i, out.setups[i].steps.len()));
                    }
                    let shared = setup.filter(|&(i, n)| {
                        op != OpKey::MmapShared
                            && n > 0
                            && steps.len() > n
                            && steps[..n] == out.setups[i].steps[..]
                    });
                    if let Some((_, n)) = shared {
                        steps.drain(..n);
                    }
                    let state = c.snapshot.as_ref().cloned().unwrap_or_else(|| Snapshot {
                        mms: Vec::new(),
                        frames: Vec::new(),
                        holders: Vec::new(),
                    });
                    let key = serde_json::to_string(&(c.value.to_string(), shared, &steps, &state))
                        .unwrap_or_default();
                    let picture = out.pictures.add(&state);
                    let i = *by_run.entry(key).or_insert_with(|| {
                        out.items.push(Explanation {
                            value: c.value.clone(),
                            setup: shared,
                            steps,
                            picture,
                            gup_struct_pages: c.gup_struct_pages,
                            events: c.events.clone(),
                            cells: Vec::new(),
                        });
                        out.items.len() - 1
                    });
                    out.items[i].cells.push((k, p, e, op));
                    out.by_cell.insert((k, p, e, op), i);
                }
            }
        }
    }
    out
}

/// The other cells of the same run an explanation links to; the rest are counted.
const SAME_RUN_LINKS: usize = 12;

/// Steps of a long trace shown from its start, and from its end: a buffer of many pages makes a
/// step per page, which `pfnguard explain` prints and the page leaves out.
const HEAD_STEPS: usize = 80;
/// Steps shown from the end of a long trace.
const TAIL_STEPS: usize = 40;

/// The steps as a list, indented by call depth, each citing its `file:function`; numbered
/// from `start`. Of a trace longer than [`HEAD_STEPS`] + [`TAIL_STEPS`] the middle is left out,
/// and says so.
pub fn steps_list(steps: &[Step], start: usize) -> String {
    let mut s = if start > 1 {
        format!(r#"<ol class="tr" start="{start}">"#)
    } else {
        String::from(r#"<ol class="tr">"#)
    };
    let n = steps.len();
    let cut = n > HEAD_STEPS + TAIL_STEPS;
    for (i, st) in steps.iter().enumerate() {
        if cut && (HEAD_STEPS..n - TAIL_STEPS).contains(&i) {
            if i == HEAD_STEPS {
                let _ = write!(
                    s,
                    "<li class=d0 value={}><em>{} steps left out here (<code>pfnguard explain</code> prints every step)</em>",
                    start + i,
                    n - HEAD_STEPS - TAIL_STEPS
                );
            }
            continue;
        }
        let value = if cut && i == n - TAIL_STEPS {
            format!(" value={}", start + i)
        } else {
            String::new()
        };
        let _ = write!(
            s,
            "<li class=d{}{value}><code>{}</code> {}",
            st.depth.min(9),
            esc(st.function),
            esc(&st.note)
        );
    }
    s.push_str("</ol>");
    s
}

fn setup_article(ctx: &Ctx, i: usize, st: &Setup) -> String {
    let (k, p, e) = st.of;
    format!(
        r#"<article class="ex" id="s{i}"><h3>{}: export, mmap(MAP_SHARED) and a write to every page</h3><p>Linux {}, policy {}: the steps every op of this exporter starts with (the <code>mmap_shared</code> cell's whole trace).</p>{}</article>"#,
        esc(ctx.exps[e].id()),
        esc(&ctx.ks[k].label()),
        ctx.ps[p],
        steps_list(&st.steps, 1)
    )
}

fn article(ctx: &Ctx, explained: &Explained, i: usize, x: &Explanation) -> String {
    let Some(&(k0, p0, e0, op0)) = x.cells.first() else {
        return String::new();
    };
    let exporter = ctx.exps[e0].id();
    let mut s = format!(
        r#"<article class="ex" id="{}"><h3>{} · {} = {}</h3><p>Linux {}, policy {}"#,
        anchor(i),
        esc(exporter),
        op0,
        esc(&x.value.describe()),
        esc(&ctx.ks[k0].label()),
        ctx.ps[p0]
    );
    if x.cells.len() > 1 {
        s.push_str("; the same run for ");
        let others: Vec<String> = x.cells[1..]
            .iter()
            .take(SAME_RUN_LINKS)
            .map(|&(k, p, e, op)| {
                format!(
                    r##"<a href="#{}">{} {} {} {}</a>"##,
                    panel_id(ctx, k, p),
                    esc(&ctx.ks[k].name),
                    ctx.ps[p],
                    esc(ctx.exps[e].id()),
                    op
                )
            })
            .collect();
        s.push_str(&others.join(", "));
        let more = x.cells.len() - 1 - others.len();
        if more > 0 {
            let _ = write!(s, " and {more} more cells");
        }
    }
    let _ = write!(
        s,
        r##". <a href="#{}">back to the panel</a></p>"##,
        panel_id(ctx, k0, p0)
    );
    if x.gup_struct_pages > 0 {
        let _ = write!(
            s,
            "<p><strong>GUP handed {} struct page(s) of the buffer to this path.</strong></p>",
            x.gup_struct_pages
        );
    }
    let start = match x.setup {
        Some((si, n)) => {
            let _ = write!(
                s,
                r##"<p>Steps 1–{n}: <a href="#s{si}">export, mmap and a write to every page</a>, then:</p>"##
            );
            n + 1
        }
        None => 1,
    };
    s.push_str(&steps_list(&x.steps, start));
    if !x.events.is_empty() {
        s.push_str("<p>kernel log:</p><ul>");
        for w in &x.events {
            let _ = write!(s, "<li><code>{}</code></li>", esc(w));
        }
        s.push_str("</ul>");
    }
    let _ = write!(
        s,
        "<p>The state at the end of the op:</p>{}</article>",
        explained.pictures.show(
            x.picture,
            &format!("{exporter} {op0}: the state at the end of the op")
        )
    );
    s
}

/// The id of the `<script>` block that carries the explanations.
pub const DATA_ID: &str = "explain-data";

/// The id of the element the page's script puts the explanations in.
pub const BOX_ID: &str = "explain-box";

/// Every explanation's `<article>`, in the order of their ids (the setups, then the runs).
fn articles(ctx: &Ctx, explained: &Explained) -> Vec<String> {
    let mut out: Vec<String> = explained
        .setups
        .iter()
        .enumerate()
        .map(|(i, st)| setup_article(ctx, i, st))
        .collect();
    out.extend(
        explained
            .items
            .iter()
            .enumerate()
            .map(|(i, x)| article(ctx, explained, i, x)),
    );
    out
}

/// `articles` as the page carries them: a JSON array of strings, gzip-compressed, in base64.
fn payload(articles: &[String]) -> String {
    use std::io::Write as _;
    let json = serde_json::to_vec(articles).unwrap_or_default();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing into a Vec cannot fail.
    let bytes: Vec<u8> = gz
        .write_all(&json)
        .and_then(|()| gz.finish())
        .unwrap_or_default();
    base64(&bytes)
}

/// The section: what it includes, the pictures' shared definitions, and every explanation,
/// compressed (each shown when its cell's link is followed, `:target`).
pub fn section(ctx: &Ctx, explained: &Explained) -> String {
    let arts = articles(ctx, explained);
    let bytes: usize = arts.iter().map(String::len).sum();
    let mut s = format!(
        r#"<section id="explain"><h2>One cell, explained</h2><p>Every cell of the heatmaps links here: {} distinct explanations of {} cells, {} distinct end states; cells with the same value, kernel path and end state share one. Follow a cell's link to open its explanation: <code>explain</code>'s steps (each names the kernel function and what decided), and the VMA, PTEs, frames and holders at the end of the op. The {} kB of explanations travel compressed in the page and are unpacked by your browser the first time a link points at one.</p><p id="explain-none" hidden>This browser cannot unpack them (it lacks <code>DecompressionStream</code>): <code>pfnguard explain</code> prints any cell's.</p>"#,
        explained.len(),
        explained.by_cell.len(),
        explained.pictures.len(),
        bytes / 1000
    );
    s.push_str(&explained.pictures.defs());
    let _ = write!(
        s,
        r#"<div id="{BOX_ID}"></div><script type="application/gzip" id="{DATA_ID}" data-n="{}">{}</script></section>"#,
        arts.len(),
        payload(&arts)
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_trace_keeps_its_start_and_end_and_says_what_it_left_out() {
        let steps: Vec<Step> = (0..500)
            .map(|i| Step {
                depth: 1,
                function: "mm/memory.c:insert_pfn",
                note: format!("page {i}"),
            })
            .collect();
        let html = steps_list(&steps, 1);
        assert_eq!(html.matches("<li").count(), HEAD_STEPS + TAIL_STEPS + 1);
        assert!(html.contains("page 0<"), "{html}");
        assert!(
            html.contains("page 79<") && !html.contains("page 80<"),
            "{html}"
        );
        assert!(html.contains("380 steps left out here"), "{html}");
        assert!(
            html.contains("<li class=d1 value=461><code>mm/memory.c:insert_pfn</code> page 460<")
        );
        let short = steps_list(&steps[..3], 4);
        assert!(short.starts_with(r#"<ol class="tr" start="4">"#), "{short}");
        assert_eq!(short.matches("<li").count(), 3);
    }
}
