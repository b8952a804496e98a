//! The text files users hand pfnguard (exporter descriptions, scenarios, probe reports): read
//! with a bound on their size, and a TOML error's byte span turned into the line and key it
//! names.

use std::ops::Range;
use std::path::Path;

/// The file at `path` as text, if it has at most `max` bytes; a longer one (or an endless one,
/// such as a device) is an `InvalidData` error saying it is not `what`.
pub fn read_bounded(path: &Path, max: u64, what: &str) -> std::io::Result<String> {
    use std::io::Read as _;
    let f = std::fs::File::open(path)?;
    let mut text = String::new();
    f.take(max + 1).read_to_string(&mut text)?;
    if text.len() as u64 > max {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {max} bytes: not {what}"),
        ));
    }
    Ok(text)
}

/// The 1-based line of `text` on which the byte span starts.
pub fn line_of(text: &str, span: Range<usize>) -> usize {
    text.get(..span.start.min(text.len()))
        .map_or(1, |s| s.bytes().filter(|&b| b == b'\n').count() + 1)
}

/// The bare key a `key = value` line assigns, if the 1-based `line` is one.
pub fn key_on_line(text: &str, line: usize) -> Option<&str> {
    let l = text.lines().nth(line.checked_sub(1)?)?;
    let (k, _) = l.split_once('=')?;
    let k = k.trim();
    (!k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'))
    .then_some(k)
}
