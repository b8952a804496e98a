#!/usr/bin/env python3
"""Check the DOM headless Chromium dumped of `pfnguard report` (after the page's script ran)
against `pfnguard matrix --format json`:

* the page's script ran to its end (`<body data-js="ok">`) and recorded no error (`#js-errors`
  empty: the page's own error trap writes every script error there);
* the explanations were unpacked (`<body data-inflated="N">`: the page was opened with
  `?inflate`, which makes its script unpack them at once) and every internal link (`href="#x"`
  of a link or of an SVG `<use>`) has an element with id x;
* every heatmap cell links to its explanation;
* every heatmap cell (panels with data-k and data-p) is there exactly once per matrix cell, its
  title is the matrix value and its text the matrix table's text: the shortened value with the
  marks ^ (GUP got struct pages), ! (warned), + (a real kernel confirmed) and * (changed from the
  first policy).

Usage: report-dom-check.py DOM.html MATRIX.json   (exit 0 ok, 1 a check failed)
"""
import json
import sys
from html.parser import HTMLParser


class Dom(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids = set()
        self.hrefs = []
        self.body = {}
        self.errors_text = []
        self.in_errors = 0
        self.panel = None  # (kernel, policy)
        self.ops = []
        self.row = None
        self.col = -1
        self.cell = None  # [title, text]
        self.cells = []  # (kernel, policy, exporter, op, title, text)
        self.links = []  # each cell's link (an explanation's id), or None
        self.stack = []

    def close_cell(self):
        if self.cell is not None and self.panel and self.row is not None:
            op = self.ops[self.col] if 0 <= self.col < len(self.ops) else None
            self.cells.append((*self.panel, self.row, op, self.cell[0], self.cell[1].strip()))
            self.links.append(self.cell[2])
        self.cell = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag in ("a", "use") and a.get("href", "").startswith("#"):
            self.hrefs.append(a["href"][1:])
            if tag == "a" and self.cell is not None:
                self.cell[2] = a["href"][1:]
        if tag == "body":
            self.body = a
        if a.get("id") == "js-errors":
            self.in_errors = 1
        elif self.in_errors:
            self.in_errors += 1
        if tag == "section" and "pn" in a.get("class", "").split():
            self.close_cell()
            self.panel = (a["data-k"], a["data-p"]) if "data-k" in a and "data-p" in a else None
            self.ops, self.row = [], None
        if not self.panel:
            return
        if tag == "th" and "data-op" in a:
            self.ops.append(a["data-op"])
        elif tag == "tr":
            self.close_cell()
            self.row, self.col = a.get("data-e"), -1
        elif tag == "td":
            self.close_cell()
            self.col += 1
            self.cell = [a.get("title"), "", None]
        elif tag == "th":
            self.close_cell()

    def handle_endtag(self, tag):
        if self.in_errors:
            self.in_errors -= 1
        if tag in ("td", "tr", "tbody", "table"):
            self.close_cell()
        if tag == "section":
            self.close_cell()
            self.panel = None

    def handle_data(self, data):
        if self.in_errors:
            self.errors_text.append(data)
        if self.cell is not None:
            self.cell[1] += data


def short(op, v):
    """matrix's `short()`: the values the text table shortens."""
    if v == "skipped":
        return "skip"
    if v.startswith("unavailable: "):
        return "n/a"
    if op == "vmflags":
        special = [m for m in v.split() if m in ("pf", "io", "mm")]
        return ",".join(special) if special else "-"
    if v.startswith("ok:refault-"):
        r = v[len("ok:refault-"):]
        return "rf:" + {"ok": "ok", "timeout": "timeout", "bug": "BUG"}.get(r, r.upper())
    return v


def main():
    dom_path, json_path = sys.argv[1], sys.argv[2]
    d = Dom()
    with open(dom_path, encoding="utf-8") as f:
        d.feed(f.read())
    d.close_cell()
    with open(json_path, encoding="utf-8") as f:
        rows = json.load(f)
    bad = []
    if d.body.get("data-js") != "ok":
        bad.append("the page's script did not run to its end (no <body data-js=\"ok\">)")
    errs = "".join(d.errors_text).strip()
    if errs:
        bad.append("JavaScript error(s): " + errs)
    if not d.body.get("data-inflated", "").isdigit():
        bad.append("the explanations were not unpacked (no <body data-inflated>)")
    unexplained = [c[:4] for c, link in zip(d.cells, d.links) if link is None]
    if unexplained:
        bad.append(f"{len(unexplained)} cell(s) link to no explanation, e.g. {unexplained[:3]}")
    broken = sorted({h for h in d.hrefs if h not in d.ids})
    if broken:
        bad.append(f"{len(broken)} broken internal link(s): " + ", ".join("#" + b for b in broken[:10]))
    matrix = {}
    base = {}
    for r in rows:
        key = (r["kernel"], r["policy"], r["exporter"])
        matrix[key] = r
        base.setdefault((r["kernel"], r["exporter"]), r["policy"])
    seen = set()
    mismatches = []
    for k, p, e, op, title, text in d.cells:
        r = matrix.get((k, p, e))
        if r is None or op is None:
            mismatches.append(f"{k} {p} {e} {op}: not in the matrix")
            continue
        if (k, p, e, op) in seen:
            mismatches.append(f"{k} {p} {e} {op}: twice on the page")
        seen.add((k, p, e, op))
        v = r["ops"].get(op)
        want = short(op, v)
        b = matrix.get((k, base[(k, e)], e))
        if p != base[(k, e)] and b is not None and b["ops"].get(op) != v:
            want = "*" + want
        if op in (r.get("gup_struct_pages") or []):
            want += "^"
        if op in (r.get("warned") or []):
            want += "!"
        if op in (r.get("confirmed") or {}):
            want += "+"
        if title != v or text != want:
            mismatches.append(f"{k} {p} {e} {op}: page says {text!r} (title {title!r}), matrix {want!r} ({v!r})")
    kernels = {c[0] for c in d.cells}
    for (k, p, e), r in matrix.items():
        if k not in kernels:
            continue
        for op in r["ops"]:
            if (k, p, e, op) not in seen:
                mismatches.append(f"{k} {p} {e} {op}: missing from the page")
    if mismatches:
        bad.append(f"{len(mismatches)} cell(s) disagree with the matrix, e.g.: " + "; ".join(mismatches[:5]))
    if not d.cells:
        bad.append("no heatmap cell found")
    for b in bad:
        print("report-dom-check: " + b, file=sys.stderr)
    if bad:
        return 1
    print(f"report-dom-check: {len(seen)} cells equal to the matrix, each linked to one of {d.body.get('data-inflated')} unpacked explanations; {len(d.hrefs)} internal links resolve, no script error")
    return 0


if __name__ == "__main__":
    sys.exit(main())
