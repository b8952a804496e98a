//! The state at one moment as an SVG: each VMA with its `vm_flags`, its PTEs (special, normal,
//! devmap, write-protected), the frames behind them (a `struct page` with its counts, or none)
//! and the kernel users holding frames, with a line from each PTE and each holder to its frame.
//! Every fact is written in words; colour only repeats them.

use std::collections::HashMap;
use std::fmt::Write as _;

use pfnguard_mm::snapshot::{FramePicture, HolderPicture, PtePicture, Snapshot};

use super::html::esc;

const ROW: u32 = 18;
const VMA_X: u32 = 4;
const VMA_W: u32 = 250;
const PTE_X: u32 = 270;
const PTE_W: u32 = 200;
const FRAME_X: u32 = 500;
const FRAME_W: u32 = 250;
const HOLDER_X: u32 = 780;
const HOLDER_W: u32 = 310;
const WIDTH: u32 = HOLDER_X + HOLDER_W + 4;
/// Characters of flag names per line in a VMA box.
const FLAGS_PER_LINE: usize = 34;

/// The words of a PTE: its kind, and `wp` when a write faults.
fn pte_text(p: &PtePicture) -> String {
    let wp = if p.present && !p.writable { " wp" } else { "" };
    format!("{:#x} {}{wp}", p.addr, p.kind())
}

/// The words of a frame: whether a struct page describes it, and its counts.
fn frame_text(f: &FramePicture) -> String {
    match &f.struct_page {
        Some(c) => format!(
            "pfn {:#x} page ref {} map {} pin {}{}",
            f.pfn,
            c.refcount,
            c.mapcount,
            c.pins,
            if c.freed { " FREED" } else { "" }
        ),
        None => format!("pfn {:#x} no struct page", f.pfn),
    }
}

fn holder_text(h: &HolderPicture) -> String {
    let how = match h.pinned {
        Some(true) => "pin",
        Some(false) => "ref",
        None => "no ref",
    };
    format!("{} ({how}, {} page(s))", h.holder, h.pfns.len())
}

/// `vm_flags` names cut into lines at `|`.
fn flag_lines(flags: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for f in flags.split('|') {
        match lines.last_mut() {
            Some(l) if l.len() + 1 + f.len() <= FLAGS_PER_LINE => {
                l.push('|');
                l.push_str(f);
            }
            _ => lines.push(f.to_owned()),
        }
    }
    lines
}

fn text(svg: &mut String, x: u32, y: u32, class: &str, s: &str) {
    let _ = write!(
        svg,
        r#"<text x="{x}" y="{}" class="{class}">{}</text>"#,
        y + 13,
        esc(s)
    );
}

fn rect(svg: &mut String, x: u32, y: u32, w: u32, h: u32, class: &str) {
    let _ = write!(
        svg,
        r#"<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="3" class="{class}"/>"#
    );
}

/// Distinct pictures, each drawn once in a hidden `<defs>` and shown wherever it is needed
/// with `<use>`: many cells end in the same state.
pub struct Pictures {
    prefix: &'static str,
    drawn: Vec<(String, u32)>,
    index: HashMap<String, usize>,
}

impl Pictures {
    /// An empty set whose ids start with `prefix`.
    pub fn new(prefix: &'static str) -> Pictures {
        Pictures {
            prefix,
            drawn: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// The picture of `s`, drawn once: its index.
    pub fn add(&mut self, s: &Snapshot) -> usize {
        let (body, height) = draw(s);
        if let Some(&i) = self.index.get(&body) {
            return i;
        }
        self.drawn.push((body.clone(), height));
        self.index.insert(body, self.drawn.len() - 1);
        self.drawn.len() - 1
    }

    /// How many distinct pictures.
    pub fn len(&self) -> usize {
        self.drawn.len()
    }

    /// The hidden `<svg>` holding every picture.
    pub fn defs(&self) -> String {
        let mut out = String::from(
            r#"<svg width="0" height="0" style="position:absolute" aria-hidden="true"><defs>"#,
        );
        for (i, (body, _)) in self.drawn.iter().enumerate() {
            let _ = write!(out, r#"<g id="{}{i}">{body}</g>"#, self.prefix);
        }
        out.push_str("</defs></svg>");
        out
    }

    /// Picture `i` shown, titled `title` (its accessible name).
    pub fn show(&self, i: usize, title: &str) -> String {
        let height = self.drawn.get(i).map_or(ROW, |(_, h)| *h);
        format!(
            r##"<svg class="st" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{}"><title>{}</title><use href="#{}{i}"/></svg>"##,
            esc(title),
            esc(title),
            self.prefix
        )
    }
}

/// The picture of `s` (the inside of an `<svg>`), and its height.
fn draw(s: &Snapshot) -> (String, u32) {
    let mut body = String::new();
    let mut y = ROW + 4;
    // Where each PTE row is, to draw its line to the frame.
    let mut pte_rows: Vec<(u32, u64)> = Vec::new();
    text(&mut body, VMA_X, 0, "h", "VMA (vm_flags)");
    text(&mut body, PTE_X, 0, "h", "PTEs");
    text(&mut body, FRAME_X, 0, "h", "frames");
    text(&mut body, HOLDER_X, 0, "h", "held by");
    if s.mms.is_empty() {
        text(&mut body, VMA_X, y, "t", "no VMA: nothing mapped");
    }
    for mm in &s.mms {
        for v in &mm.vmas {
            let flags = flag_lines(&v.flags);
            let ptes = v.ptes.len() + usize::from(v.more_ptes > 0);
            let lines = 2 + flags.len();
            let h = (lines.max(ptes.max(1)) as u32) * ROW + 6;
            rect(&mut body, VMA_X, y, VMA_W, h, "vma");
            text(
                &mut body,
                VMA_X + 4,
                y + 2,
                "t",
                &format!("mm{} {:#x}-{:#x}", mm.mm, v.start, v.end),
            );
            text(
                &mut body,
                VMA_X + 4,
                y + 2 + ROW,
                "t",
                v.file.as_deref().unwrap_or("anonymous"),
            );
            for (i, l) in flags.iter().enumerate() {
                text(&mut body, VMA_X + 4, y + 2 + ROW * (2 + i as u32), "m", l);
            }
            for (i, p) in v.ptes.iter().enumerate() {
                let py = y + 2 + ROW * i as u32;
                let class = match p.kind() {
                    "special" => "pte-s",
                    "normal" => "pte-n",
                    "devmap" => "pte-d",
                    _ => "pte-x",
                };
                rect(&mut body, PTE_X, py, PTE_W, ROW - 2, class);
                text(&mut body, PTE_X + 4, py - 1, "t", &pte_text(p));
                if p.present {
                    pte_rows.push((py + ROW / 2, p.pfn));
                }
            }
            if v.ptes.is_empty() {
                text(&mut body, PTE_X + 4, y + 2, "t", "no PTE");
            }
            if v.more_ptes > 0 {
                let py = y + 2 + ROW * v.ptes.len() as u32;
                text(
                    &mut body,
                    PTE_X + 4,
                    py,
                    "m",
                    &format!("+{} more", v.more_ptes),
                );
            }
            y += h + 8;
        }
    }
    let mut fy = ROW + 4;
    let mut frame_rows: Vec<(u64, u32)> = Vec::new();
    for f in &s.frames {
        let class = if f.struct_page.is_some() {
            "fr-p"
        } else {
            "fr-x"
        };
        rect(&mut body, FRAME_X, fy, FRAME_W, ROW - 2, class);
        text(&mut body, FRAME_X + 4, fy - 1, "t", &frame_text(f));
        frame_rows.push((f.pfn, fy + ROW / 2));
        fy += ROW + 2;
    }
    let mut hy = ROW + 4;
    let mut lines = String::new();
    let frame_y = |pfn: u64| frame_rows.iter().find(|(p, _)| *p == pfn).map(|(_, y)| *y);
    for (py, pfn) in &pte_rows {
        if let Some(fy) = frame_y(*pfn) {
            let _ = write!(
                lines,
                r#"<line x1="{}" y1="{py}" x2="{FRAME_X}" y2="{fy}"/>"#,
                PTE_X + PTE_W
            );
        }
    }
    for h in &s.holders {
        rect(&mut body, HOLDER_X, hy, HOLDER_W, ROW - 2, "hold");
        text(&mut body, HOLDER_X + 4, hy - 1, "t", &holder_text(h));
        let mut seen: Vec<u64> = Vec::new();
        for pfn in &h.pfns {
            if seen.contains(pfn) {
                continue;
            }
            seen.push(*pfn);
            if let Some(fy) = frame_y(*pfn) {
                let _ = write!(
                    lines,
                    r#"<line x1="{HOLDER_X}" y1="{}" x2="{}" y2="{fy}"/>"#,
                    hy + ROW / 2,
                    FRAME_X + FRAME_W
                );
            }
        }
        hy += ROW + 2;
    }
    if s.holders.is_empty() {
        text(&mut body, HOLDER_X + 4, hy, "m", "nothing held");
    }
    let height = y.max(fy).max(hy + ROW) + 4;
    (format!(r#"<g class="ln">{lines}</g>{body}"#), height)
}

#[cfg(test)]
mod tests {
    use super::*;
    use pfnguard_mm::snapshot::{MmPicture, PageCounts, VmaPicture};

    #[test]
    fn the_picture_names_every_pte_frame_and_holder_in_words() {
        let s = Snapshot {
            mms: vec![MmPicture {
                mm: 0,
                vmas: vec![VmaPicture {
                    start: 0x1000,
                    end: 0x3000,
                    flags: "READ|SHARED|PFNMAP|IO".into(),
                    file: Some("/dmabuf:<x>".into()),
                    ptes: vec![
                        PtePicture {
                            addr: 0x1000,
                            pfn: 7,
                            present: true,
                            special: true,
                            devmap: false,
                            writable: false,
                            dirty: false,
                        },
                        PtePicture {
                            addr: 0x2000,
                            pfn: 8,
                            present: true,
                            special: false,
                            devmap: false,
                            writable: true,
                            dirty: true,
                        },
                    ],
                    more_ptes: 0,
                }],
            }],
            frames: vec![
                FramePicture {
                    pfn: 7,
                    struct_page: None,
                },
                FramePicture {
                    pfn: 8,
                    struct_page: Some(PageCounts {
                        refcount: 3,
                        mapcount: 1,
                        pins: 1,
                        freed: false,
                    }),
                },
            ],
            holders: vec![HolderPicture {
                holder: "bio".into(),
                pinned: Some(true),
                pfns: vec![8],
            }],
        };
        let mut pictures = Pictures::new("p");
        let i = pictures.add(&s);
        assert_eq!(pictures.add(&s), i, "one drawing per distinct state");
        let svg = format!("{}{}", pictures.defs(), pictures.show(i, "t<1>"));
        for words in [
            "0x1000 special wp",
            "0x2000 normal",
            "pfn 0x7 no struct page",
            "pfn 0x8 page ref 3 map 1 pin 1",
            "bio (pin, 1 page(s))",
            "READ|SHARED|PFNMAP|IO",
            "/dmabuf:&lt;x&gt;",
            "<title>t&lt;1&gt;</title>",
        ] {
            assert!(svg.contains(words), "{words} missing from {svg}");
        }
        // Two PTE lines and one holder line.
        assert_eq!(svg.matches("<line ").count(), 3, "{svg}");
        assert!(svg.contains(r##"<use href="#p0"/>"##), "{svg}");
    }
}
