//! Text and Markdown tables.

/// An aligned text table with a header rule.
pub fn table(headers: &[String], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    table_streamed(headers, &|sink| rows.iter().for_each(|r| sink(r)), &mut out);
    out
}

/// The rows of a table, handed one at a time to a sink.
pub type Rows<'a> = dyn Fn(&mut dyn FnMut(&[String])) + 'a;

/// [`table`] written to `out`, its rows made twice, once to measure the columns and once to
/// write them, and none of them kept: for tables of tens of thousands of rows.
pub fn table_streamed(headers: &[String], rows: &Rows<'_>, out: &mut dyn std::fmt::Write) {
    let n = headers.len();
    let mut w: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    rows(&mut |r: &[String]| {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count());
        }
    });
    let mut buf = String::new();
    let mut line = |out: &mut dyn std::fmt::Write, cells: &[String]| {
        buf.clear();
        for (i, c) in cells.iter().enumerate().take(n) {
            if i > 0 {
                buf.push_str("  ");
            }
            buf.push_str(c);
            if i + 1 < n {
                buf.extend(std::iter::repeat_n(' ', w[i] - c.chars().count()));
            }
        }
        let _ = out.write_str(buf.trim_end());
        let _ = out.write_char('\n');
    };
    line(out, headers);
    let rule: Vec<String> = w.iter().map(|&x| "-".repeat(x)).collect();
    line(out, &rule);
    rows(&mut |r: &[String]| line(out, r));
}

/// A Markdown table.
pub fn markdown(headers: &[String], rows: &[Vec<String>]) -> String {
    let esc = |s: &str| s.replace('|', "\\|");
    let mut out = format!(
        "| {} |\n",
        headers
            .iter()
            .map(|h| esc(h))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    out.push_str(&format!("|{}\n", "---|".repeat(headers.len())));
    for r in rows {
        out.push_str(&format!(
            "| {} |\n",
            r.iter().map(|c| esc(c)).collect::<Vec<_>>().join(" | ")
        ));
    }
    out
}

/// `text` after `lead`, wrapped at word boundaries to `width` columns, continuation lines
/// indented to the lead's width.
pub fn wrap_words(lead: &str, text: &str, width: usize) -> String {
    let indent = lead.chars().count();
    let mut out = String::new();
    let mut line = lead.to_owned();
    let mut len = indent;
    let mut first = true;
    for w in text.split_whitespace() {
        let wl = w.chars().count();
        if !first && len + 1 + wl > width {
            out.push_str(line.trim_end());
            out.push('\n');
            line = " ".repeat(indent);
            len = indent;
            first = true;
        }
        if !first {
            line.push(' ');
            len += 1;
        }
        line.push_str(w);
        len += wl;
        first = false;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

/// A table too wide for `width` columns, cut into groups of columns that fit, each group
/// repeating the first column and rendered with `render`.
pub fn wrap_columns(
    headers: &[String],
    rows: &[Vec<String>],
    width: usize,
    render: fn(&[String], &[Vec<String>]) -> String,
) -> String {
    let col_width = |i: usize| {
        rows.iter()
            .filter_map(|r| r.get(i))
            .chain(std::iter::once(&headers[i]))
            .map(|c| c.chars().count())
            .max()
            .unwrap_or(0)
    };
    let first = col_width(0);
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut cur: Vec<usize> = Vec::new();
    let mut used = first;
    for i in 1..headers.len() {
        let w = col_width(i) + 2;
        if !cur.is_empty() && used + w > width {
            groups.push(std::mem::take(&mut cur));
            used = first;
        }
        cur.push(i);
        used += w;
    }
    if !cur.is_empty() {
        groups.push(cur);
    }
    let mut out = String::new();
    for g in groups {
        let pick = |r: &[String]| -> Vec<String> {
            std::iter::once(0)
                .chain(g.iter().copied())
                .map(|i| r.get(i).cloned().unwrap_or_default())
                .collect()
        };
        out.push_str(&render(
            &pick(headers),
            &rows.iter().map(|r| pick(r)).collect::<Vec<_>>(),
        ));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_columns_fit_the_width() {
        let headers: Vec<String> = (0..30).map(|i| format!("column_{i}")).collect();
        let rows = vec![(0..30).map(|i| format!("value{i}")).collect::<Vec<_>>()];
        let t = wrap_columns(&headers, &rows, 60, table);
        assert!(t.lines().all(|l| l.chars().count() <= 60), "{t}");
        for h in &headers {
            assert!(t.contains(h.as_str()), "{h} lost");
        }
        let w = wrap_words("lead  ", &"word ".repeat(40), 30);
        assert!(w.lines().all(|l| l.chars().count() <= 30), "{w}");
        assert!(w.lines().skip(1).all(|l| l.starts_with("      ")), "{w}");
    }
}
