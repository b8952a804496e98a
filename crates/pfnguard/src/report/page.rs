//! The document around the sections: the header saying what the page includes, the filters,
//! the style sheet and the script (plain JavaScript: filtering, opening the timeline or
//! witness a link points into, and recording any script error into `#js-errors` so that a
//! browser test can fail on it).

use std::fmt::Write as _;

use pfnguard_report::OpKey;

use super::html::esc;
use super::palette::{Class, CHANGED, FOCUS, PAGE};
use super::Ctx;

/// Recorded before anything else runs: every error of any script on the page lands in
/// `#js-errors` (and `window.pfnErrors`).
const ERROR_TRAP: &str = r#"<script>window.pfnErrors=[];function pfnErr(m){window.pfnErrors.push(String(m));var d=document.getElementById('js-errors');if(d){d.textContent=window.pfnErrors.join('\n');d.hidden=false;}}window.addEventListener('error',function(e){pfnErr(e.message||'error');});window.addEventListener('unhandledrejection',function(e){pfnErr('unhandled rejection: '+e.reason);});</script>"#;

/// The filters, the link handling and the heatmap as a keyboard grid (one tab stop per panel,
/// arrow keys move between cells, Enter follows a cell's link, the focused cell's value is read
/// out in the live status line); when it ran to the end it sets `data-js="ok"` on `<body>`
/// and `data-ready-ms`: milliseconds from navigation to the end of the script (the whole
/// document parsed).
const SCRIPT: &str = r#"<script>(function(){
var k=document.getElementById('fk'),p=document.getElementById('fp'),e=document.getElementById('fe'),n=document.getElementById('fn');
function apply(){
var kv=k.value,pv=p.value,ev=e.value.trim().toLowerCase(),shown=0;
document.querySelectorAll('.pn[data-k]').forEach(function(s){var hide=(kv!==''&&s.getAttribute('data-k')!==kv)||(pv!==''&&s.getAttribute('data-p')!==pv);s.classList.toggle('hidden',hide);if(!hide){shown++;}});
document.querySelectorAll('tr[data-e],details[data-e]').forEach(function(r){r.classList.toggle('hidden',ev!==''&&r.getAttribute('data-e').toLowerCase().indexOf(ev)<0);});
n.textContent=shown+' panel(s) shown';
}
[k,p,e].forEach(function(x){x.addEventListener('input',apply);x.addEventListener('change',apply);});
var xd=document.getElementById('explain-data'),xbox=document.getElementById('explain-box'),xp=null;
function inflate(){if(xp){return xp;}if(!xd||!xbox){xp=Promise.resolve(false);return xp;}
if(!window.DecompressionStream){var m=document.getElementById('explain-none');if(m){m.hidden=false;}xp=Promise.resolve(false);return xp;}
var b=atob(xd.textContent.trim()),u=new Uint8Array(b.length);for(var i=0;i<b.length;i++){u[i]=b.charCodeAt(i);}
xp=new Response(new Blob([u]).stream().pipeThrough(new DecompressionStream('gzip'))).text().then(function(t){xbox.insertAdjacentHTML('beforeend',JSON.parse(t).join(''));document.body.setAttribute('data-inflated',String(xbox.children.length));document.body.setAttribute('data-inflated-ms',String(Math.round(performance.now())));return true;});
return xp;}
function show(t){var d=t.closest('details');while(d){d.open=true;d=d.parentElement&&d.parentElement.closest('details');}t.classList.remove('hidden');if(t.classList.contains('ex')){document.querySelectorAll('.ex.open').forEach(function(x){x.classList.remove('open');});t.classList.add('open');}t.scrollIntoView();}
function openTarget(){var h=decodeURIComponent(location.hash.slice(1));if(!h){return;}var t=document.getElementById(h);if(t){show(t);return;}
if(/^[xs][0-9]+$/.test(h)){inflate().then(function(){var u=document.getElementById(h);if(u&&decodeURIComponent(location.hash.slice(1))===h){show(u);}}).catch(function(err){pfnErr('explanations: '+err);});}}
window.addEventListener('hashchange',openTarget);
if(/[?&]inflate(&|$)/.test(location.search)){inflate().catch(function(err){pfnErr('explanations: '+err);});}
document.querySelectorAll('table.hm').forEach(function(t){var c=t.querySelector('tbody td');if(c){c.tabIndex=0;}});
function cellName(td){var tr=td.parentElement,t=tr.closest('table'),pn=t.closest('.pn'),i=Array.prototype.indexOf.call(tr.children,td),th=t.tHead.rows[0].cells[i];return (pn?pn.querySelector('h3').textContent+': ':'')+tr.cells[0].textContent+' '+(th?th.textContent:'')+' = '+(td.title||td.textContent);}
document.addEventListener('focusin',function(ev){var td=ev.target.closest&&ev.target.closest('table.hm td');if(td){n.textContent=cellName(td);}});
document.addEventListener('keydown',function(ev){var td=ev.target.closest&&ev.target.closest('table.hm td');if(!td){return;}var tr=td.parentElement,i=Array.prototype.indexOf.call(tr.children,td),to=null;
if(ev.key==='ArrowRight'){to=td.nextElementSibling;}else if(ev.key==='ArrowLeft'){to=td.previousElementSibling;}else if(ev.key==='ArrowDown'){to=tr.nextElementSibling&&tr.nextElementSibling.children[i];}else if(ev.key==='ArrowUp'){to=tr.previousElementSibling&&tr.previousElementSibling.children[i];}else if(ev.key==='Enter'){var a=td.querySelector('a');if(a){a.click();}return;}else{return;}
if(to&&to.tagName==='TD'){ev.preventDefault();td.tabIndex=-1;to.tabIndex=0;to.focus();}});
openTarget();n.textContent=document.querySelectorAll('.pn[data-k]').length+' panel(s) shown';
document.body.setAttribute('data-ready-ms',String(Math.round(performance.now())));
document.body.setAttribute('data-js','ok');
})();</script>"#;

fn css() -> String {
    let mut s = String::new();
    let (bg, fg, muted, link, code_bg) = (PAGE[0].1, PAGE[0].2, PAGE[1].2, PAGE[2].2, PAGE[3].1);
    let _ = write!(
        s,
        "body{{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:{fg};background:{bg}}}\
header,main,footer{{padding:0 14px}}h1{{font-size:1.5em;margin:.6em 0 .3em}}h2{{margin-top:1.6em;border-bottom:1px solid #ccc}}h3{{font-size:1.05em;margin:.6em 0 .2em}}\
a{{color:{link}}}.mu{{color:{muted};font-weight:normal;font-size:.92em}}code{{background:{code_bg};padding:0 .2em;border-radius:2px;overflow-wrap:anywhere}}\
a:focus-visible,summary:focus-visible,select:focus-visible,input:focus-visible{{outline:3px solid {FOCUS};outline-offset:2px}}\
nav a{{margin-right:.9em;display:inline-block;padding:2px 0}}\
#filters{{position:sticky;top:0;background:{bg};padding:6px 0;z-index:3;border-bottom:1px solid #ccc;display:flex;flex-wrap:wrap;gap:6px 14px;align-items:center}}\
#filters label{{white-space:nowrap}}select,input{{font:inherit;padding:2px}}\
#js-errors{{background:#fde2e2;color:#6b0000;padding:6px;white-space:pre-wrap}}\
.sc{{overflow-x:auto;max-width:100%}}table{{border-collapse:collapse}}\
.pns{{display:flex;flex-wrap:wrap;gap:0 22px}}.pn{{margin:0 0 12px;max-width:100%;content-visibility:auto;contain-intrinsic-size:auto 1280px auto 560px}}\
.hm,.strip{{font:11px/1.25 ui-monospace,'DejaVu Sans Mono',monospace}}\
.hm th,.hm td,.strip th,.strip td{{border:1px solid {bg};padding:1px 3px;white-space:nowrap}}\
.hm td{{max-width:7.5em;overflow:hidden;text-overflow:ellipsis}}\
.hm thead th{{vertical-align:bottom;height:10.5em}}.hm thead th span{{writing-mode:vertical-rl;transform:rotate(180deg);display:inline-block}}\
.hm tbody th,.strip tbody th{{position:sticky;left:0;background:{bg};text-align:left;z-index:1}}\
td a{{color:inherit}}td a:focus-visible{{outline-offset:0}}.hm td:focus{{outline:3px solid {FOCUS};outline-offset:1px;position:relative;z-index:2}}\
.c{{box-shadow:inset 0 0 0 2px {CHANGED}}}.g.c{{box-shadow:inset 0 0 0 2px {bg}}}\
.vd td{{border:1px solid {bg};padding:2px 5px;vertical-align:top;font-size:.92em}}.vd th{{text-align:left;padding:2px 5px;white-space:nowrap}}\
.lg ul{{list-style:none;padding:0;margin:.3em 0;display:flex;flex-wrap:wrap;gap:2px 16px}}.sw{{display:inline-block;min-width:3.5em;text-align:center;font:11px ui-monospace,monospace;padding:1px 3px}}\
.ex{{display:none;border:1px solid #bbb;padding:4px 10px;margin:10px 0}}.ex:target,.ex.open{{display:block}}\
.tr{{font:12px/1.35 ui-monospace,'DejaVu Sans Mono',monospace;padding-left:2.4em;overflow-wrap:anywhere}}\
.ws>li{{margin-bottom:8px}}\
svg.st{{display:block;width:100%;max-width:1094px;height:auto;font:11px ui-monospace,'DejaVu Sans Mono',monospace;margin:4px 0}}\
svg rect{{stroke:#555;stroke-width:1}}svg text{{fill:{fg}}}text.m{{fill:{muted}}}text.h{{font-weight:bold}}.ln line{{stroke:#333}}\
.vma{{fill:#eef3fb}}.pte-s{{fill:#d5eedb}}.pte-n{{fill:#f6c9c9}}.pte-d{{fill:#fbe3a1}}.pte-x,.fr-x{{fill:#ececec}}.fr-p{{fill:#f6c9c9}}.hold{{fill:#ddc8f5}}\
details{{margin:4px 0}}summary{{cursor:pointer;padding:2px 0}}.hidden{{display:none!important}}\
@media (max-width:600px){{body{{font-size:15px}}header,main,footer{{padding:0 8px}}.hm thead th{{height:9.5em}}}}"
    );
    for d in 1..10 {
        let _ = write!(s, ".tr .d{d}{{margin-left:{d}em}}");
    }
    for c in Class::ALL {
        let (bg, fg) = c.colours();
        let _ = write!(s, ".{}{{background:{bg};color:{fg}}}", c.css());
    }
    s
}

/// The whole page around `sections`.
pub fn document(ctx: &Ctx, explain_at: &[usize], sections: &[String]) -> String {
    let cells = ctx.ks.len() * ctx.ps.len() * ctx.exps.len() * OpKey::ALL.len();
    let explained = if explain_at.len() == ctx.ks.len() {
        "every cell explained".to_owned()
    } else {
        let names: Vec<String> = explain_at.iter().map(|&k| esc(&ctx.ks[k].name)).collect();
        format!("cells explained for Linux {}", names.join(", "))
    };
    let mut s = format!(
        r##"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>pfnguard report</title><style>{}</style>{ERROR_TRAP}</head><body><div id="js-errors" role="alert" hidden></div><header><h1>pfnguard: who hands struct pages of a dma-buf to GUP</h1><p>{} kernel(s) ({}) × {} polic(ies) ({}) × {} exporters × {} ops = {cells} cells, the values of <code>pfnguard matrix</code>; {explained}. pfnguard {}.</p><nav aria-label="sections"><a href="#heatmap">heatmap</a><a href="#timeline">timeline</a><a href="#proposal">proposal</a><a href="#booted">booted</a><a href="#explain">one cell, explained</a><a href="#witnesses">explorer witnesses</a></nav></header>"##,
        css(),
        ctx.ks.len(),
        esc(&ctx.kernel_range()),
        ctx.ps.len(),
        ctx.ps
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(", "),
        ctx.exps.len(),
        OpKey::ALL.len(),
        env!("CARGO_PKG_VERSION"),
    );
    if !ctx.files.is_empty() {
        s.push_str("<p>Exporter files: ");
        let files: Vec<String> = ctx
            .files
            .iter()
            .map(|(path, name)| format!("<code>{}</code> ({})", esc(path), esc(name)))
            .collect();
        s.push_str(&files.join(", "));
        s.push_str("</p>");
    }
    s.push_str(r#"<main><div id="filters" role="search"><label>kernel <select id="fk"><option value="">all</option>"#);
    for k in &ctx.ks {
        let _ = write!(s, r#"<option>{}</option>"#, esc(&k.name));
    }
    s.push_str(r#"</select></label><label>policy <select id="fp"><option value="">all</option>"#);
    for p in &ctx.ps {
        let _ = write!(s, "<option>{p}</option>");
    }
    s.push_str(r#"</select></label><label>exporter <input id="fe" type="search" placeholder="name contains" size="14"></label><span id="fn" class="mu" aria-live="polite"></span></div>"#);
    for sec in sections {
        s.push_str(sec);
    }
    s.push_str("</main><footer><p class=\"mu\">Generated by <code>pfnguard report</code>: one file, no network, no external script.</p></footer>");
    s.push_str(SCRIPT);
    s.push_str("</body></html>\n");
    s
}
