//! The page's structure, its size bound, every cell against the matrix, escaping, bad input.

use std::collections::HashSet;

use super::*;
use crate::matrix::cell_text;
use pfnguard_report::OpKey;

fn args(kernels: &[&str], policies: &[Policy], out: &Path) -> Args {
    Args {
        kernels: kernels.iter().map(|k| k.to_string()).collect(),
        config: None,
        policies: policies.to_vec(),
        files: Vec::new(),
        pages: None,
        explain_kernels: Vec::new(),
        witness_exporters: vec!["vivid-vmalloc".parse().expect("id")],
        witness_depth: 2,
        witness_kernel: None,
        out: out.to_owned(),
    }
}

/// Standard base64 read back (the test's own decoder, against the page's encoder).
fn unbase64(s: &str) -> Vec<u8> {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = A.iter().position(|&a| a == c).expect("base64 character") as u32;
        bits = bits << 6 | v;
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push((bits >> n) as u8);
        }
    }
    out
}

/// The page as the browser shows it once its script unpacked the explanations: the articles
/// of the compressed block in the box that receives them.
fn inflated(html: &str) -> String {
    use std::io::Read as _;
    let open = format!(
        r#"<script type="application/gzip" id="{}" data-n=""#,
        explanations::DATA_ID
    );
    let start = html.find(&open).expect("the explanations block");
    let body = &html[start..];
    let from = body.find('>').expect("block start") + 1;
    let to = body.find("</script>").expect("block end");
    let mut json = String::new();
    flate2::read::GzDecoder::new(&unbase64(&body[from..to])[..])
        .read_to_string(&mut json)
        .expect("gzip");
    let arts: Vec<String> = serde_json::from_str(&json).expect("a JSON array of articles");
    let n: usize = body[open.len()..]
        .split('"')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("data-n");
    assert_eq!(arts.len(), n, "data-n is the number of articles");
    let box_tag = format!(r#"<div id="{}">"#, explanations::BOX_ID);
    html.replacen(&box_tag, &format!("{box_tag}{}", arts.concat()), 1)
}

/// Every `id="…"` and every `href="#…"` of a page.
fn ids_and_links(html: &str) -> (HashSet<&str>, Vec<&str>) {
    let grab = |pat: &str, end: char| -> Vec<&str> {
        html.match_indices(pat)
            .filter_map(|(i, _)| {
                let rest = &html[i + pat.len()..];
                rest.find(end).map(|j| &rest[..j])
            })
            .collect()
    };
    let mut ids: HashSet<&str> = grab(" id=\"", '"').into_iter().collect();
    ids.extend(
        grab(" id=", '>')
            .into_iter()
            .filter(|i| !i.starts_with('"')),
    );
    let mut links = grab("href=\"#", '"');
    links.extend(grab("href=#", '>'));
    (ids, links)
}

/// The text between `<td …>` and the next tag of the cell `(kernel, policy, exporter, op)`,
/// with its title: read from the page the way a browser would not need to (the page puts
/// attributes in a fixed order).
fn cells_of(html: &str) -> Vec<(String, String, String, usize, String, String)> {
    let mut out = Vec::new();
    for panel in html.split("<section class=\"pn\"").skip(1) {
        let attr = |name: &str| {
            panel
                .split_once(&format!("{name}=\""))
                .and_then(|(_, r)| r.split_once('"'))
                .map(|(v, _)| v.to_owned())
        };
        let (Some(k), Some(p)) = (attr("data-k"), attr("data-p")) else {
            continue;
        };
        let body = panel.split("</section>").next().unwrap_or_default();
        for row in body.split("<tr data-e=").skip(1) {
            let e = row.split('>').next().unwrap_or_default().trim_matches('"');
            for (col, td) in row.split("<td ").skip(1).enumerate() {
                let title = td
                    .split_once("title=")
                    .map(|(_, r)| {
                        if let Some(q) = r.strip_prefix('"') {
                            q.split('"').next().unwrap_or_default().to_owned()
                        } else {
                            r.split('>').next().unwrap_or_default().to_owned()
                        }
                    })
                    .unwrap_or_default();
                let after = td.split_once('>').map(|(_, r)| r).unwrap_or_default();
                let after = after
                    .strip_prefix("<a href=")
                    .and_then(|a| a.split_once('>'))
                    .map_or(after, |(_, r)| r);
                let text = after.split('<').next().unwrap_or_default();
                out.push((
                    k.clone(),
                    p.clone(),
                    e.to_owned(),
                    col,
                    title,
                    text.to_owned(),
                ));
            }
        }
    }
    out
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

#[test]
fn every_cell_is_on_the_page_once_and_equal_to_the_matrix() {
    let dir = std::env::temp_dir();
    let a = args(
        &["6.1", "7.3"],
        &[Policy::Off, Policy::Strict],
        &dir.join("x.html"),
    );
    let html = build(&a).expect("page");
    let ks = kernels_of(&a.kernels, None).expect("kernels");
    let exps = matrix::exporters(&[]).expect("exporters");
    let rows = matrix::run(&ks, &a.policies, &exps, DEFAULT_PAGES);
    let cells = cells_of(&html);
    assert_eq!(
        cells.len(),
        ks.len() * a.policies.len() * exps.len() * OpKey::ALL.len(),
        "one cell per kernel, policy, exporter and op"
    );
    let mut seen = HashSet::new();
    for (k, p, e, col, title, text) in &cells {
        let op = OpKey::ALL[*col];
        assert!(seen.insert((k, p, e, op)), "{k} {p} {e} {op} twice");
        let r = rows
            .iter()
            .find(|r| r.kernel.name == *k && r.policy.name() == p && r.report.exporter == *e)
            .unwrap_or_else(|| panic!("{k} {p} {e}: not a matrix row"));
        let base = rows
            .iter()
            .find(|b| b.kernel.name == *k && b.policy == a.policies[0] && b.report.exporter == *e);
        let base = base.filter(|_| r.policy != a.policies[0]);
        let v = r.report.ops.get(&op).expect("value");
        assert_eq!(unescape(title), v.to_string(), "{k} {p} {e} {op}");
        assert_eq!(
            unescape(text),
            cell_text(r, base, op, false),
            "{k} {p} {e} {op}"
        );
    }
    // Every cell links to its explanation, with the op's steps and a picture.
    let html = inflated(&html);
    assert!(
        html.contains("<article class=\"ex\" id=\"x0\">"),
        "no explanation"
    );
    let linked = html.matches("<a href=#x").count();
    assert_eq!(linked, cells.len(), "every cell links to its explanation");
    assert!(html.contains("mm/gup.c:"), "no GUP step cited");
    assert!(html.contains("<use href=\"#pic0\"/>"), "no state picture");
    for section in ["heatmap", "timeline", "proposal", "explain", "witnesses"] {
        assert!(
            html.contains(&format!("<section id=\"{section}\">")),
            "{section} missing"
        );
    }
}

#[test]
fn every_internal_link_has_its_target() {
    let a = args(&["7.3"], &[], &std::env::temp_dir().join("x.html"));
    let html = inflated(&build(&a).expect("page"));
    let (ids, links) = ids_and_links(&html);
    assert!(links.len() > 100, "{} links", links.len());
    for l in links {
        assert!(ids.contains(l), "href=#{l} has no target");
    }
}

#[test]
fn the_whole_page_stays_under_5_mb() {
    // Every kernel line x 4 policies x every catalogue exporter, every cell explained.
    let mut a = args(&[], &[], &std::env::temp_dir().join("x.html"));
    a.witness_exporters = Vec::new();
    a.witness_depth = WITNESS_DEPTH;
    let html = build(&a).expect("page");
    assert!(html.len() < 5_000_000, "{} bytes", html.len());
    assert!(
        html.len() > 1_000_000,
        "{} bytes: cells missing?",
        html.len()
    );
}

#[test]
fn an_exporter_file_name_with_html_characters_is_escaped() {
    let dir = std::env::temp_dir().join(format!("pfnguard-report-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join(r#"<b>"x"&'y'.toml"#);
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/exporters/vm_insert_page.toml"),
        &file,
    )
    .expect("copy");
    let mut a = args(&["7.3"], &[Policy::Off], &dir.join("r.html"));
    a.files = vec![file.clone()];
    let html = build(&a).expect("page");
    assert!(
        html.contains("&lt;b&gt;&quot;x&quot;&amp;&#39;y&#39;.toml"),
        "the file name is not escaped"
    );
    assert!(!html.contains(r#"<b>"x""#), "raw file name on the page");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_is_named_and_nothing_half_written_is_left() {
    let dir = std::env::temp_dir().join(format!("pfnguard-report-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    // A directory that does not exist.
    let missing = dir.join("no/such/dir/r.html");
    let err = report(&mut Vec::new(), &args(&["7.3"], &[], &missing)).expect_err("no dir");
    assert!(err.to_string().starts_with("--out "), "{err}");
    // A directory as the output.
    let err = report(&mut Vec::new(), &args(&["7.3"], &[], &dir)).expect_err("a dir");
    assert!(err.to_string().contains("is a directory"), "{err}");
    // A kernel to explain that is not on the page.
    let mut a = args(&["7.3"], &[], &dir.join("r.html"));
    a.explain_kernels = vec!["6.1".into()];
    let err = build(&a).expect_err("6.1 is not on the page");
    assert!(err.to_string().starts_with("--explain-kernel 6.1"), "{err}");
    // An exporter file that does not parse names the file.
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "name = \n").expect("write");
    let mut a = args(&["7.3"], &[], &dir.join("r.html"));
    a.files = vec![bad];
    let err = build(&a).expect_err("bad file");
    assert!(format!("{err:#}").contains("bad.toml"), "{err:#}");
    // Written whole through a rename; the old page stays when the write fails.
    let out = dir.join("r.html");
    write_atomically(&out, b"old").expect("write");
    write_atomically(&out, b"new").expect("write");
    assert_eq!(std::fs::read(&out).expect("read"), b"new");
    let err = write_atomically(&dir.join("gone/r.html"), b"x").expect_err("no dir");
    assert!(err.to_string().contains("cannot write"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
