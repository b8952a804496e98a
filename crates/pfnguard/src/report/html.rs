//! The one place text becomes HTML: every string from a model, a report or a file name goes
//! through [`esc`] before it reaches the page.

use std::fmt::Write as _;

/// `s` with the five characters HTML gives meaning to (`& < > " '`) replaced by entities: safe
/// in text and in a quoted attribute value.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Standard base64 (RFC 4648 section 4, with padding): binary data inside the page, as the
/// browser's `atob()` reads it back.
pub fn base64(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for c in data.chunks(3) {
        let b = [
            c[0],
            c.get(1).copied().unwrap_or(0),
            c.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                out.push(char::from(A[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// An attribute value: bare when HTML allows it (letters, digits and `-_.:,/`), else quoted
/// and escaped. The page has tens of thousands of cells; most values need no quotes.
pub fn attr(v: &str) -> String {
    let bare = !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:,/".contains(&b));
    if bare {
        v.to_owned()
    } else {
        format!("\"{}\"", esc(v))
    }
}

/// An id for `href="#…"` made of `parts`: letters, digits, `-` and `_` kept, every other byte
/// as `_XX`, so distinct parts give distinct ids and any name is a valid fragment.
pub fn id(parts: &[&str]) -> String {
    let mut out = String::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            out.push('-');
        }
        for b in p.bytes() {
            if b.is_ascii_alphanumeric() {
                out.push(char::from(b));
            } else {
                let _ = write!(out, "_{b:02x}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_characters_are_escaped_and_ids_are_fragment_safe() {
        assert_eq!(
            esc(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(id(&["7.3", "off"]), "7_2e3-off");
        assert_eq!(attr("EFAULT"), "EFAULT");
        assert_eq!(attr("rd wr"), "\"rd wr\"");
        assert_eq!(attr(""), "\"\"");
        assert_eq!(attr("a\"b>"), "\"a&quot;b&gt;\"");
        assert_ne!(id(&["a-b"]), id(&["a", "b"]));
        assert!(id(&["<x y>"])
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
    }

    #[test]
    fn base64_is_rfc_4648() {
        // RFC 4648 section 10's test vectors.
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), coded, "{plain}");
        }
        assert_eq!(base64(&[0xff, 0xfe, 0x3f]), "//4/");
    }
}
