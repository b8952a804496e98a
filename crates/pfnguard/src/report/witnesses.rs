//! The explorer's witnesses: for a few exporters, every property `pfnguard explore` reaches,
//! with its shortest witness as a step list and the picture of the state after each step.

use std::fmt::Write as _;
use std::sync::Arc;

use pfnguard_dmabuf::{Exporter, Policy};
use pfnguard_mm::ResolvedKernel;
use pfnguard_scenario::{explore_alphabet, Limits};

use super::explanations::steps_list;
use super::html::{esc, id};
use super::state_picture::Pictures;

/// One exporter's exploration.
fn exporter(
    pictures: &mut Pictures,
    k: &ResolvedKernel,
    e: &dyn Exporter,
    policy: Policy,
    depth: usize,
) -> String {
    let r = match explore_alphabet(&k.name, k, e, policy, 1, depth, Limits::default()) {
        Ok(r) => r,
        Err(why) => {
            return format!(
                r#"<details class="wi"><summary><strong>{}</strong>: not explored ({})</summary></details>"#,
                esc(e.id()),
                esc(&why.to_string())
            )
        }
    };
    let reached: Vec<_> = r
        .properties
        .iter()
        .filter(|p| p.witness.is_some())
        .collect();
    let names: Vec<&str> = reached.iter().map(|p| p.property.name()).collect();
    let mut s = format!(
        r#"<details class="wi" id="{}"><summary><strong>{}</strong>: {} of {} properties reachable in {} steps ({} states){}</summary>"#,
        id(&["w", e.id()]),
        esc(e.id()),
        reached.len(),
        r.properties.len(),
        depth,
        r.states,
        if names.is_empty() {
            String::new()
        } else {
            format!(": {}", esc(&names.join(", ")))
        }
    );
    for p in &r.properties {
        let Some(w) = &p.witness else {
            let why = p.unavailable.map(|u| format!(" ({u})")).unwrap_or_default();
            let _ = write!(
                s,
                r#"<p class="mu"><code>{}</code> not reachable in {depth} steps{}</p>"#,
                p.property.name(),
                esc(&why)
            );
            continue;
        };
        let _ = write!(
            s,
            "<h4><code>{}</code> reachable in {} step(s)</h4><ol class=\"ws\">",
            p.property.name(),
            w.steps.len()
        );
        for (i, st) in w.steps.iter().enumerate() {
            let title = format!(
                "{} {}: after step {} ({}: {})",
                e.id(),
                p.property.name(),
                i + 1,
                st.actor,
                st.step
            );
            let _ = write!(
                s,
                "<li><code>{}: {}</code> → {}{}</li>",
                esc(&st.actor),
                esc(&st.step),
                esc(&st.outcome),
                {
                    let i = pictures.add(&st.state);
                    pictures.show(i, &title)
                }
            );
        }
        s.push_str("</ol><p>the kernel path of the last step:</p>");
        s.push_str(&steps_list(&w.trace, 1));
    }
    s.push_str("</details>");
    s
}

/// The section.
pub fn section(
    k: &ResolvedKernel,
    exps: &[Arc<dyn Exporter>],
    policy: Policy,
    depth: usize,
) -> String {
    let mut s = format!(
        r#"<section id="witnesses"><h2>Explorer witnesses</h2><p><code>pfnguard explore --kernel {} --policy {policy} --depth {depth}</code> for {}: every sequence of up to {depth} steps of one process, an importing device and the exporter over the whole step alphabet, on a one-page buffer. Each reachable property with its shortest witness, and the state after each step. Others: <code>--witness-exporter ID</code>, <code>--witness-depth N</code>.</p>"#,
        esc(&k.name),
        esc(&exps
            .iter()
            .map(|e| e.id().to_owned())
            .collect::<Vec<_>>()
            .join(", "))
    );
    let mut pictures = Pictures::new("wpic");
    let mut body = String::new();
    for e in exps {
        body.push_str(&exporter(&mut pictures, k, e.as_ref(), policy, depth));
    }
    s.push_str(&pictures.defs());
    s.push_str(&body);
    s.push_str("</section>");
    s
}
