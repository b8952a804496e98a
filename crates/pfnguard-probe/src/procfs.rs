//! Parsers for the procfs files the probe reads about its own mappings.
//!
//! - `/proc/self/maps` lines (`show_map_vma`, fs/proc/task_mmu.c);
//! - `/proc/self/smaps` blocks (`show_smap`, with the `VmFlags:` line of
//!   `show_smap_vma_flags`, kept as the raw mnemonics);
//! - `/proc/self/pagemap` entries (`pagemap_read`; bit 63 present, bits 0-54 PFN,
//!   see Documentation/admin-guide/mm/pagemap.rst);
//! - `/proc/self/fdinfo/N` of a dma-buf (`seq_show` in fs/proc/fd.c followed by
//!   `dma_buf_show_fdinfo` in drivers/dma-buf/dma-buf.c: `size`, `count`,
//!   `exp_name`, optional `name`).
//!
//! The functions take text or a reader so that the tests can feed them files
//! captured from real kernels (`tests/fixtures/`).

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};

/// A procfs line or entry that does not have the expected shape.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProcfsError {
    /// A `/proc/PID/maps` line (or smaps header) did not parse.
    #[error("malformed maps line `{line}`: {why}")]
    MapsLine {
        /// The offending line.
        line: String,
        /// What was wrong with it.
        why: &'static str,
    },
    /// An smaps field line appeared before any VMA header.
    #[error("smaps field before the first VMA header: `{0}`")]
    OrphanField(String),
}

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapsEntry {
    /// First address of the VMA.
    pub start: u64,
    /// One past its last address.
    pub end: u64,
    /// `rwxp`/`rwxs` permissions.
    pub perms: String,
    /// File offset in bytes (`vm_pgoff << PAGE_SHIFT`).
    pub offset: u64,
    /// `major:minor` of the backing device, as printed (hex).
    pub dev: String,
    /// Inode number of the backing file.
    pub inode: u64,
    /// Path or pseudo-path (`/dmabuf:`, `/memfd:x (deleted)`, `[heap]`), if any.
    pub pathname: Option<String>,
}

impl MapsEntry {
    /// Whether the mapping is shared (`s` in the permissions).
    pub fn is_shared(&self) -> bool {
        self.perms.ends_with('s')
    }
}

fn hex(s: &str, line: &str, why: &'static str) -> Result<u64, ProcfsError> {
    u64::from_str_radix(s, 16).map_err(|_| ProcfsError::MapsLine {
        line: line.to_owned(),
        why,
    })
}

/// Whether a line looks like a maps line / smaps VMA header (`start-end perms ...`).
fn is_vma_header(line: &str) -> bool {
    let Some(first) = line.split_ascii_whitespace().next() else {
        return false;
    };
    match first.split_once('-') {
        Some((a, b)) => {
            !a.is_empty()
                && !b.is_empty()
                && a.bytes().all(|c| c.is_ascii_hexdigit())
                && b.bytes().all(|c| c.is_ascii_hexdigit())
        }
        None => false,
    }
}

/// Parse one `/proc/PID/maps` line.
///
/// The pathname is everything after the inode column with the padding spaces
/// removed; it may itself contain spaces (`/memfd:x (deleted)`).
pub fn parse_maps_line(line: &str) -> Result<MapsEntry, ProcfsError> {
    let line = line.trim_end_matches('\n');
    let err = |why| ProcfsError::MapsLine {
        line: line.to_owned(),
        why,
    };
    let mut rest = line;
    let mut field = || -> Option<&str> {
        let trimmed = rest.trim_start_matches(' ');
        let end = trimmed.find(' ').unwrap_or(trimmed.len());
        let (f, r) = trimmed.split_at(end);
        rest = r;
        if f.is_empty() {
            None
        } else {
            Some(f)
        }
    };
    let range = field().ok_or_else(|| err("missing address range"))?;
    let perms = field()
        .ok_or_else(|| err("missing permissions"))?
        .to_owned();
    let offset = field().ok_or_else(|| err("missing offset"))?;
    let dev = field().ok_or_else(|| err("missing device"))?.to_owned();
    let inode = field().ok_or_else(|| err("missing inode"))?;
    let (start, end) = range
        .split_once('-')
        .ok_or_else(|| err("address range without `-`"))?;
    let start = hex(start, line, "bad start address")?;
    let end = hex(end, line, "bad end address")?;
    let offset = hex(offset, line, "bad offset")?;
    let inode = inode.parse().map_err(|_| err("bad inode"))?;
    if perms.len() != 4 {
        return Err(err("permissions are not 4 characters"));
    }
    let path = rest.trim_start_matches(' ');
    Ok(MapsEntry {
        start,
        end,
        perms,
        offset,
        dev,
        inode,
        pathname: (!path.is_empty()).then(|| path.to_owned()),
    })
}

/// Parse a whole `/proc/PID/maps` file.
pub fn parse_maps(text: &str) -> Result<Vec<MapsEntry>, ProcfsError> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(parse_maps_line)
        .collect()
}

/// One VMA block of `/proc/PID/smaps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmapsVma {
    /// The header, which is the VMA's `/proc/PID/maps` line.
    pub header: MapsEntry,
    /// The raw header line.
    pub header_line: String,
    /// Numeric fields (`Rss`, `Pss`, `Locked`, ..., in kB where the kernel
    /// prints `kB`; `THPeligible`, `ProtectionKey` as printed).
    pub fields: BTreeMap<String, u64>,
    /// The `VmFlags:` mnemonics in kernel order, as printed.
    pub vmflags: Vec<String>,
    /// The raw `VmFlags:` line (without the newline), if present.
    pub vmflags_line: Option<String>,
}

impl SmapsVma {
    /// A numeric field in kB (`Rss`, `Pss`, `Locked`).
    pub fn kb(&self, name: &str) -> Option<u64> {
        self.fields.get(name).copied()
    }
    /// `Rss:` in kB.
    pub fn rss_kb(&self) -> Option<u64> {
        self.kb("Rss")
    }
    /// `Pss:` in kB.
    pub fn pss_kb(&self) -> Option<u64> {
        self.kb("Pss")
    }
    /// `Locked:` in kB.
    pub fn locked_kb(&self) -> Option<u64> {
        self.kb("Locked")
    }
    /// The VmFlags mnemonics joined by single spaces (the `vmflags` op value).
    pub fn vmflags_joined(&self) -> String {
        self.vmflags.join(" ")
    }
    /// Whether VmFlags contains a mnemonic (`lo`, `pf`, `io`, `mm`).
    pub fn has_flag(&self, flag: &str) -> bool {
        self.vmflags.iter().any(|f| f == flag)
    }
}

/// Parse a whole `/proc/PID/smaps` file into its VMA blocks.
pub fn parse_smaps(text: &str) -> Result<Vec<SmapsVma>, ProcfsError> {
    let mut out: Vec<SmapsVma> = Vec::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if is_vma_header(line) {
            out.push(SmapsVma {
                header: parse_maps_line(line)?,
                header_line: line.to_owned(),
                fields: BTreeMap::new(),
                vmflags: Vec::new(),
                vmflags_line: None,
            });
            continue;
        }
        let Some(vma) = out.last_mut() else {
            return Err(ProcfsError::OrphanField(line.to_owned()));
        };
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        if name == "VmFlags" {
            vma.vmflags = value.split_ascii_whitespace().map(str::to_owned).collect();
            vma.vmflags_line = Some(line.to_owned());
            continue;
        }
        let mut words = value.split_ascii_whitespace();
        if let Some(Ok(n)) = words.next().map(str::parse::<u64>) {
            vma.fields.insert(name.to_owned(), n);
        }
    }
    Ok(out)
}

/// The smaps block of the VMA that starts at `start`.
pub fn find_vma(vmas: &[SmapsVma], start: u64) -> Option<&SmapsVma> {
    vmas.iter().find(|v| v.header.start == start)
}

/// One 64-bit `/proc/PID/pagemap` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PagemapEntry(pub u64);

impl PagemapEntry {
    /// Bit 63: page present in RAM.
    pub fn present(self) -> bool {
        self.0 & (1 << 63) != 0
    }
    /// Bit 62: page swapped.
    pub fn swapped(self) -> bool {
        self.0 & (1 << 62) != 0
    }
    /// Bit 61: file-page or shared-anon.
    pub fn file_or_shared(self) -> bool {
        self.0 & (1 << 61) != 0
    }
    /// Bit 56: page exclusively mapped.
    pub fn exclusive(self) -> bool {
        self.0 & (1 << 56) != 0
    }
    /// Bit 55: PTE soft-dirty.
    pub fn soft_dirty(self) -> bool {
        self.0 & (1 << 55) != 0
    }
    /// Bits 0-54: the PFN if present (zero without `CAP_SYS_ADMIN`).
    pub fn pfn(self) -> Option<u64> {
        self.present().then_some(self.0 & ((1 << 55) - 1))
    }
}

/// Read the pagemap entry of the page containing `vaddr`, from a reader
/// positioned like `/proc/PID/pagemap` (entry `vaddr / page_size` at byte
/// offset `8 * (vaddr / page_size)`).
pub fn read_pagemap_entry<R: Read + Seek>(
    r: &mut R,
    vaddr: u64,
    page_size: u64,
) -> std::io::Result<PagemapEntry> {
    let index = vaddr / page_size.max(1);
    r.seek(SeekFrom::Start(index * 8))?;
    let mut buf = [0u8; 8];
    r.read_exact(&mut buf)?;
    Ok(PagemapEntry(u64::from_ne_bytes(buf)))
}

/// The fields of `/proc/PID/fdinfo/N`, with the dma-buf ones typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fdinfo {
    /// `pos:`.
    pub pos: Option<u64>,
    /// `flags:` (octal, as printed).
    pub flags: Option<String>,
    /// `mnt_id:`.
    pub mnt_id: Option<u64>,
    /// `ino:` (a dma-buf's unique inode number).
    pub ino: Option<u64>,
    /// `size:` of a dma-buf.
    pub size: Option<u64>,
    /// `count:` of a dma-buf (file references minus one).
    pub count: Option<i64>,
    /// `exp_name:` of a dma-buf (`system`, `udmabuf`, `drm`, `videobuf2_vmalloc`, ...).
    pub exp_name: Option<String>,
    /// `name:` of a dma-buf, when set.
    pub name: Option<String>,
    /// Every `key:\tvalue` line, raw.
    pub raw: BTreeMap<String, String>,
}

impl Fdinfo {
    /// Whether this fd is a dma-buf (it has the `exp_name:` line).
    pub fn is_dma_buf(&self) -> bool {
        self.exp_name.is_some()
    }
}

/// Parse `/proc/PID/fdinfo/N`.
pub fn parse_fdinfo(text: &str) -> Fdinfo {
    let mut info = Fdinfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        info.raw
            .entry(key.to_owned())
            .or_insert_with(|| value.to_owned());
        match key {
            "pos" => info.pos = value.parse().ok(),
            "flags" => info.flags = Some(value.to_owned()),
            "mnt_id" => info.mnt_id = value.parse().ok(),
            "ino" => info.ino = value.parse().ok(),
            "size" => info.size = value.parse().ok(),
            "count" => info.count = value.parse().ok(),
            "exp_name" => info.exp_name = Some(value.to_owned()),
            "name" => info.name = Some(value.to_owned()),
            _ => {}
        }
    }
    info
}

/// `HugePages_Free:` and `Hugepagesize:` (kB) from `/proc/meminfo`.
pub fn meminfo_hugepages(text: &str) -> (Option<u64>, Option<u64>) {
    let mut free = None;
    let mut size_kb = None;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let n = value
            .split_ascii_whitespace()
            .next()
            .and_then(|v| v.parse().ok());
        match key {
            "HugePages_Free" => free = n,
            "Hugepagesize" => size_kb = n,
            _ => {}
        }
    }
    (free, size_kb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_line_with_spaces_in_path() {
        let e = parse_maps_line(
            "7f0000000000-7f0000004000 rw-s 00000000 00:01 1234                       /memfd:x (deleted)",
        )
        .unwrap();
        assert_eq!(e.start, 0x7f00_0000_0000);
        assert_eq!(e.end, 0x7f00_0000_4000);
        assert!(e.is_shared());
        assert_eq!(e.inode, 1234);
        assert_eq!(e.pathname.as_deref(), Some("/memfd:x (deleted)"));
    }

    #[test]
    fn maps_line_anonymous() {
        let e = parse_maps_line("7ffd1000-7ffd2000 r--p 00000000 00:00 0 ").unwrap();
        assert_eq!(e.pathname, None);
        assert!(!e.is_shared());
    }

    #[test]
    fn maps_line_errors() {
        assert!(parse_maps_line("").is_err());
        assert!(parse_maps_line("zz-10 rw-p 0 00:00 0").is_err());
        assert!(parse_maps_line("10-20 rw 0 00:00 0").is_err());
    }

    #[test]
    fn pagemap_bits() {
        let e = PagemapEntry((1 << 63) | (1 << 61) | 0x1234);
        assert!(e.present());
        assert!(e.file_or_shared());
        assert!(!e.swapped());
        assert_eq!(e.pfn(), Some(0x1234));
        assert_eq!(PagemapEntry(0).pfn(), None);
    }

    #[test]
    fn dmabuf_fdinfo_shape() {
        let text = "pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t77\nsize:\t16384\ncount:\t1\nexp_name:\tsystem\nname:\tfoo\n";
        let f = parse_fdinfo(text);
        assert!(f.is_dma_buf());
        assert_eq!(f.size, Some(16384));
        assert_eq!(f.count, Some(1));
        assert_eq!(f.exp_name.as_deref(), Some("system"));
        assert_eq!(f.name.as_deref(), Some("foo"));
        assert_eq!(f.ino, Some(77));
        assert_eq!(f.flags.as_deref(), Some("02000002"));
    }

    #[test]
    fn meminfo() {
        let (free, size) =
            meminfo_hugepages("HugePages_Free:        3\nHugepagesize:       2048 kB\n");
        assert_eq!(free, Some(3));
        assert_eq!(size, Some(2048));
    }
}
