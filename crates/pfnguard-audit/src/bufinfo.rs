//! debugfs `dma_buf/bufinfo`: every dma-buf of the system, the ones no process holds included.
//!
//! Written by drivers/dma-buf/dma-buf.c:dma_buf_debug_show: a header line `Dma-buf Objects:`,
//! a column line `size flags mode count exp_name ino name`, then per buffer one line
//! `"%08zu\t%08x\t%08x\t%08ld\t%s\t%08lu\t%s\n"` (size, `f_flags`, `f_mode`,
//! `file_count()`, `exp_name`, inode, `name` or `<none>`), followed by lines that begin with a
//! tab (`dma_resv_describe()`'s fences, `\tAttached Devices:` and one `\t<dev_name>` each) and
//! `Total N devices attached`; the file ends with `Total N objects, B bytes`. Kernels before
//! 5.5 print no inode (and no name); their lines are kept without one.

use serde::Serialize;

/// One buffer line of `bufinfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BufinfoEntry {
    /// `size`, bytes.
    pub size: u64,
    /// `count`: `file_count()` of the dma-buf's file.
    pub count: u64,
    /// `exp_name`.
    pub exp_name: String,
    /// `ino`, when the kernel prints it.
    pub inode: Option<u64>,
    /// `name` (`DMA_BUF_SET_NAME`), absent when `<none>`.
    pub name: Option<String>,
    /// The devices attached (`Attached Devices:`).
    pub attached: Vec<String>,
}

/// The parsed file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Bufinfo {
    /// Every buffer line, in the kernel's order.
    pub buffers: Vec<BufinfoEntry>,
    /// `Total N objects, B bytes`: (N, B), when present.
    pub total: Option<(u64, u64)>,
}

/// Parse `dma_buf/bufinfo`. Lines that fit no shape are ignored: the file is debug output.
pub fn parse_bufinfo(text: &str) -> Bufinfo {
    let mut out = Bufinfo::default();
    let mut in_attached = false;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix('\t') {
            if rest.trim() == "Attached Devices:" {
                in_attached = true;
            } else if in_attached {
                if let Some(b) = out.buffers.last_mut() {
                    b.attached.push(rest.trim().to_owned());
                }
            }
            continue;
        }
        in_attached = false;
        if let Some(t) = line.strip_prefix("Total ") {
            // `Total N objects, B bytes` (the per-buffer `Total N devices attached` is skipped).
            if let Some((n, rest)) = t.split_once(" objects, ") {
                let b = rest.trim_end_matches(" bytes");
                if let (Ok(n), Ok(b)) = (n.trim().parse(), b.trim().parse()) {
                    out.total = Some((n, b));
                }
            }
            continue;
        }
        let f: Vec<&str> = line.split('\t').collect();
        if f.len() < 5 {
            continue;
        }
        let (Ok(size), Ok(count)) = (f[0].trim().parse::<u64>(), f[3].trim().parse::<u64>()) else {
            continue;
        };
        let inode = f.get(5).and_then(|s| s.trim().parse::<u64>().ok());
        let name = f
            .get(6..)
            .map(|r| r.join("\t"))
            .filter(|n| !n.is_empty() && n != "<none>");
        out.buffers.push(BufinfoEntry {
            size,
            count,
            exp_name: f[4].to_owned(),
            inode,
            name,
            attached: Vec::new(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_format() {
        let text = "\nDma-buf Objects:\nsize    \tflags   \tmode    \tcount   \texp_name\tino     \tname\n\
00008192\t00000002\t00080007\t00000003\tsystem\t00000042\tcamera-0\n\
\tAttached Devices:\n\t0000:00:02.0\nTotal 1 devices attached\n\n\
00004096\t00000002\t00080007\t00000001\tudmabuf\t00000043\t<none>\n\
\tAttached Devices:\nTotal 0 devices attached\n\n\nTotal 2 objects, 12288 bytes\n";
        let b = parse_bufinfo(text);
        assert_eq!(b.buffers.len(), 2);
        assert_eq!(b.buffers[0].size, 8192);
        assert_eq!(b.buffers[0].count, 3);
        assert_eq!(b.buffers[0].inode, Some(42));
        assert_eq!(b.buffers[0].name.as_deref(), Some("camera-0"));
        assert_eq!(b.buffers[0].attached, vec!["0000:00:02.0".to_owned()]);
        assert_eq!(b.buffers[1].name, None);
        assert_eq!(b.buffers[1].exp_name, "udmabuf");
        assert_eq!(b.total, Some((2, 12288)));
    }
}
