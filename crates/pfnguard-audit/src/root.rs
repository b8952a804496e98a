//! Where the audit reads the system: the procfs, sysfs and debugfs roots, each injectable, and
//! the record of every file read that `--capture` turns into a fixture tree.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::AuditError;

/// The three trees the audit reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    /// procfs (`/proc`).
    pub proc: PathBuf,
    /// sysfs (`/sys`).
    pub sys: PathBuf,
    /// debugfs (`/sys/kernel/debug`).
    pub debugfs: PathBuf,
    /// Files a captured reader was refused (tree, path in it, the error), read as refused
    /// again on replay: a capture as a normal user replays as that user saw the system.
    pub denied: BTreeMap<(Tree, String), String>,
}

/// The marker a capture leaves in a directory it read empty, so that version control keeps it.
pub const KEEP_FILE: &str = ".gitkeep";

/// Where a capture keeps the ranges it read of a file (`/proc/PID/pagemap`): `FILE.ranges`,
/// one `OFFSET HEXBYTES` line per range (offset in hex), read back on replay when `FILE`
/// itself is absent.
pub fn ranges_file(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".ranges");
    PathBuf::from(p)
}

/// Where a capture keeps the inode a link led to: `LINK.ino`.
fn ino_file(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(".ino");
    PathBuf::from(p)
}

/// Serve `ranges` from a `.ranges` file: each range from the recorded range that starts at its
/// offset, cut to its length (a range recorded shorter, at the end of the file, stays short).
fn read_ranges_file(packed: &Path, ranges: &[(u64, usize)]) -> Result<Vec<Vec<u8>>, ReadFail> {
    let bad = |n: usize, what: &str| {
        ReadFail::Error(AuditError::Read {
            path: packed.to_owned(),
            source: io::Error::new(io::ErrorKind::InvalidData, format!("line {n}: {what}")),
        })
    };
    let text = fs::read_to_string(packed).map_err(|e| classify(packed, e))?;
    let mut recorded: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let (off, hex) = line
            .split_once(' ')
            .ok_or_else(|| bad(i + 1, "expected `OFFSET HEXBYTES`"))?;
        let off = u64::from_str_radix(off, 16).map_err(|_| bad(i + 1, "offset is not hex"))?;
        if !hex.is_ascii() || hex.len() % 2 != 0 {
            return Err(bad(i + 1, "bytes are not pairs of hex digits"));
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|k| u8::from_str_radix(&hex[k..k + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| bad(i + 1, "bytes are not hex"))?;
        recorded.insert(off, bytes);
    }
    Ok(ranges
        .iter()
        .map(|&(offset, len)| {
            recorded
                .get(&offset)
                .map(|b| b[..len.min(b.len())].to_vec())
                .unwrap_or_default()
        })
        .collect())
}

/// The file of a fixture directory that lists what the capturing reader was refused:
/// one `tree<TAB>path<TAB>error` line each.
pub const DENIED_FILE: &str = "unreadable.tsv";

impl Root {
    /// The running system's trees.
    pub fn system() -> Root {
        Root {
            proc: "/proc".into(),
            sys: "/sys".into(),
            debugfs: "/sys/kernel/debug".into(),
            denied: BTreeMap::new(),
        }
    }

    /// A fixture directory as `--capture` writes it: `DIR/proc`, `DIR/sys`, `DIR/debugfs`.
    /// The refusals recorded in its `unreadable.tsv` are replayed.
    pub fn fixture(dir: &Path) -> Root {
        let mut denied = BTreeMap::new();
        if let Ok(text) = fs::read_to_string(dir.join(DENIED_FILE)) {
            for line in text.lines() {
                let mut f = line.splitn(3, '\t');
                let (Some(t), Some(p), Some(why)) = (f.next(), f.next(), f.next()) else {
                    continue;
                };
                let tree = match t {
                    "proc" => Tree::Proc,
                    "sys" => Tree::Sys,
                    "debugfs" => Tree::Debugfs,
                    _ => continue,
                };
                denied.insert((tree, p.to_owned()), why.to_owned());
            }
        }
        Root {
            proc: dir.join("proc"),
            sys: dir.join("sys"),
            debugfs: dir.join("debugfs"),
            denied,
        }
    }

    fn base(&self, tree: Tree) -> &Path {
        match tree {
            Tree::Proc => &self.proc,
            Tree::Sys => &self.sys,
            Tree::Debugfs => &self.debugfs,
        }
    }
}

/// One of the three trees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tree {
    /// procfs.
    Proc,
    /// sysfs.
    Sys,
    /// debugfs.
    Debugfs,
}

impl Tree {
    fn dir(self) -> &'static str {
        match self {
            Tree::Proc => "proc",
            Tree::Sys => "sys",
            Tree::Debugfs => "debugfs",
        }
    }
}

/// Why a read gave nothing, when that is not an error of the audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// The file or its process is gone (ENOENT, ESRCH): a process exited, an fd was closed.
    Gone,
    /// The reader may not read it (EACCES, EPERM): another user's process, root-only debugfs.
    Denied(String),
}

/// A read that did not yield its file: a [`Miss`] or an error that names the file.
#[derive(Debug)]
pub enum ReadFail {
    /// Normal absence or refusal.
    Miss(Miss),
    /// Anything else.
    Error(AuditError),
}

impl From<AuditError> for ReadFail {
    fn from(e: AuditError) -> Self {
        ReadFail::Error(e)
    }
}

fn classify(path: &Path, e: io::Error) -> ReadFail {
    // ENOENT (2), ESRCH (3): gone; EPERM (1), EACCES (13): refused.
    match e.raw_os_error() {
        Some(2) | Some(3) => ReadFail::Miss(Miss::Gone),
        Some(1) | Some(13) => ReadFail::Miss(Miss::Denied(e.to_string())),
        _ => match e.kind() {
            io::ErrorKind::NotFound => ReadFail::Miss(Miss::Gone),
            io::ErrorKind::PermissionDenied => ReadFail::Miss(Miss::Denied(e.to_string())),
            _ => ReadFail::Error(AuditError::Read {
                path: path.to_owned(),
                source: e,
            }),
        },
    }
}

/// What `--capture` keeps of one read.
#[derive(Debug, Clone)]
enum Record {
    File(Tree, PathBuf, Vec<u8>),
    Link(Tree, PathBuf, String),
    At(Tree, PathBuf, u64, Vec<u8>),
    Inode(Tree, PathBuf, u64),
    Denied(Tree, String, String),
    Dir(Tree, PathBuf),
}

/// Reads the trees of a [`Root`], remembering what it read when capturing.
#[derive(Debug)]
pub struct Reader<'a> {
    root: &'a Root,
    record: Option<Mutex<Vec<Record>>>,
}

impl<'a> Reader<'a> {
    /// A reader of `root`; `capture` keeps every file read for [`Reader::write_capture`].
    pub fn new(root: &'a Root, capture: bool) -> Reader<'a> {
        Reader {
            root,
            record: capture.then(|| Mutex::new(Vec::new())),
        }
    }

    fn keep(&self, r: Record) {
        if let Some(m) = &self.record {
            if let Ok(mut v) = m.lock() {
                v.push(r);
            }
        }
    }

    /// A refusal recorded in the root (replay), or `Ok`.
    fn refused(&self, tree: Tree, rel: &str) -> Result<(), ReadFail> {
        match self.root.denied.get(&(tree, rel.to_owned())) {
            Some(why) => Err(ReadFail::Miss(Miss::Denied(why.clone()))),
            None => Ok(()),
        }
    }

    /// Keep a refusal for the capture, and pass the failure on.
    fn note<T>(&self, tree: Tree, rel: &str, r: Result<T, ReadFail>) -> Result<T, ReadFail> {
        if let Err(ReadFail::Miss(Miss::Denied(why))) = &r {
            self.keep(Record::Denied(tree, rel.to_owned(), why.clone()));
        }
        r
    }

    /// Keep a directory for the capture (a process that vanished: its directory without files
    /// replays as vanished).
    pub fn keep_dir(&self, tree: Tree, rel: &str) {
        self.keep(Record::Dir(tree, rel.into()));
    }

    /// The full path of `rel` in `tree`.
    pub fn path(&self, tree: Tree, rel: &str) -> PathBuf {
        self.root.base(tree).join(rel)
    }

    /// A whole text file.
    pub fn text(&self, tree: Tree, rel: &str) -> Result<String, ReadFail> {
        let r = self.text_(tree, rel);
        self.note(tree, rel, r)
    }

    fn text_(&self, tree: Tree, rel: &str) -> Result<String, ReadFail> {
        self.refused(tree, rel)?;
        let path = self.path(tree, rel);
        let bytes = fs::read(&path).map_err(|e| classify(&path, e))?;
        if self.record.is_some() {
            let s = String::from_utf8_lossy(&bytes).into_owned();
            self.keep(Record::File(tree, rel.into(), bytes));
            return Ok(s);
        }
        Ok(String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    /// The target of a symlink (`/proc/PID/fd/N`).
    pub fn link(&self, tree: Tree, rel: &str) -> Result<String, ReadFail> {
        let r = self.link_(tree, rel);
        self.note(tree, rel, r)
    }

    fn link_(&self, tree: Tree, rel: &str) -> Result<String, ReadFail> {
        self.refused(tree, rel)?;
        let path = self.path(tree, rel);
        let t = fs::read_link(&path).map_err(|e| classify(&path, e))?;
        let t = t.to_string_lossy().into_owned();
        self.keep(Record::Link(tree, rel.into(), t.clone()));
        Ok(t)
    }

    /// The inode of the file a link leads to (`stat(/proc/PID/fd/N)`: fs/proc/base.c's
    /// proc_pid_get_link follows the fd to the dma-buf's own inode), for kernels whose dma-buf
    /// fdinfo has no `ino:` (before 5.12), as libdmabufinfo's `ReadDmaBufFdRefs` falls back to.
    /// A capture keeps it as `REL.ino` (the inode in decimal), read back when the link does not
    /// resolve on replay.
    pub fn inode(&self, tree: Tree, rel: &str) -> Result<u64, ReadFail> {
        let r = self.inode_(tree, rel);
        self.note(tree, rel, r)
    }

    fn inode_(&self, tree: Tree, rel: &str) -> Result<u64, ReadFail> {
        use std::os::unix::fs::MetadataExt;
        self.refused(tree, rel)?;
        let path = self.path(tree, rel);
        let ino = match fs::metadata(&path) {
            Ok(m) => m.ino(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let kept = ino_file(&path);
                if !kept.exists() {
                    return Err(classify(&path, e));
                }
                let text = fs::read_to_string(&kept).map_err(|e| classify(&kept, e))?;
                text.trim().parse().map_err(|_| {
                    ReadFail::Error(AuditError::Read {
                        path: kept.clone(),
                        source: io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("line 1: `{}` is not an inode number", text.trim()),
                        ),
                    })
                })?
            }
            Err(e) => return Err(classify(&path, e)),
        };
        self.keep(Record::Inode(tree, rel.into(), ino));
        Ok(ino)
    }

    /// `len` bytes at each `offset` of `ranges` (`/proc/PID/pagemap`), the file opened once;
    /// fewer at the end of the file.
    pub fn ranges(
        &self,
        tree: Tree,
        rel: &str,
        ranges: &[(u64, usize)],
    ) -> Result<Vec<Vec<u8>>, ReadFail> {
        let r = self.ranges_(tree, rel, ranges);
        self.note(tree, rel, r)
    }

    fn ranges_(
        &self,
        tree: Tree,
        rel: &str,
        ranges: &[(u64, usize)],
    ) -> Result<Vec<Vec<u8>>, ReadFail> {
        self.refused(tree, rel)?;
        let path = self.path(tree, rel);
        let f = match fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let packed = ranges_file(&path);
                if packed.exists() {
                    return read_ranges_file(&packed, ranges);
                }
                return Err(classify(&path, e));
            }
            Err(e) => return Err(classify(&path, e)),
        };
        let mut out = Vec::with_capacity(ranges.len());
        for &(offset, len) in ranges {
            let mut buf = vec![0u8; len];
            let mut got = 0;
            while got < len {
                match f.read_at(&mut buf[got..], offset + got as u64) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(classify(&path, e)),
                }
            }
            buf.truncate(got);
            self.keep(Record::At(tree, rel.into(), offset, buf.clone()));
            out.push(buf);
        }
        Ok(out)
    }

    /// The names in a directory, unsorted.
    pub fn list(&self, tree: Tree, rel: &str) -> Result<Vec<String>, ReadFail> {
        let r = self.list_(tree, rel);
        self.note(tree, rel, r)
    }

    fn list_(&self, tree: Tree, rel: &str) -> Result<Vec<String>, ReadFail> {
        self.refused(tree, rel)?;
        let path = self.path(tree, rel);
        let rd = fs::read_dir(&path).map_err(|e| classify(&path, e))?;
        if !rel.is_empty() {
            // An empty directory (a kernel thread's fd/) must replay as empty, not as gone.
            self.keep(Record::Dir(tree, rel.into()));
        }
        let mut out = Vec::new();
        for e in rd {
            match e {
                Ok(e) => out.push(e.file_name().to_string_lossy().into_owned()),
                Err(e) => match classify(&path, e) {
                    ReadFail::Miss(_) => continue,
                    err => return Err(err),
                },
            }
        }
        Ok(out)
    }

    /// Write every file read so far under `dir` (`dir/proc`, `dir/sys`, `dir/debugfs`), which
    /// must be empty or absent. Returns how many entries were written.
    pub fn write_capture(&self, dir: &Path) -> Result<usize, AuditError> {
        let io_err = |path: &Path| {
            let path = path.to_owned();
            move |source| AuditError::Write { path, source }
        };
        if dir.exists() {
            let mut rd = fs::read_dir(dir).map_err(io_err(dir))?;
            if rd.next().is_some() {
                return Err(AuditError::CaptureNotEmpty(dir.to_owned()));
            }
        }
        let Some(m) = &self.record else {
            return Ok(0);
        };
        let records = match m.lock() {
            Ok(v) => v.clone(),
            Err(p) => p.into_inner().clone(),
        };
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let target = |tree: Tree, rel: &Path| dir.join(tree.dir()).join(rel);
        let mut denied = String::new();
        let mkparent = |p: &Path| -> Result<(), AuditError> {
            if let Some(parent) = p.parent() {
                fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            Ok(())
        };
        for r in &records {
            match r {
                Record::File(tree, rel, bytes) => {
                    let p = target(*tree, rel);
                    mkparent(&p)?;
                    fs::write(&p, bytes).map_err(io_err(&p))?;
                }
                Record::Link(tree, rel, to) => {
                    let p = target(*tree, rel);
                    mkparent(&p)?;
                    if fs::symlink_metadata(&p).is_err() {
                        std::os::unix::fs::symlink(to, &p).map_err(io_err(&p))?;
                    }
                }
                Record::At(tree, rel, offset, bytes) => {
                    // Not a sparse copy: the pagemap offset of a mapping near the top of the
                    // address space is terabytes in, which tar and git would write out.
                    let p = ranges_file(&target(*tree, rel));
                    mkparent(&p)?;
                    let mut f = fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&p)
                        .map_err(io_err(&p))?;
                    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                    io::Write::write_all(&mut f, format!("{offset:x} {hex}\n").as_bytes())
                        .map_err(io_err(&p))?;
                }
                Record::Inode(tree, rel, ino) => {
                    let p = ino_file(&target(*tree, rel));
                    mkparent(&p)?;
                    fs::write(&p, format!("{ino}\n")).map_err(io_err(&p))?;
                }
                Record::Dir(tree, rel) => {
                    let p = target(*tree, rel);
                    fs::create_dir_all(&p).map_err(io_err(&p))?;
                }
                Record::Denied(tree, rel, why) => {
                    denied.push_str(&format!("{}\t{rel}\t{why}\n", tree.dir()));
                    // A placeholder, so that the listing of its directory names it on replay;
                    // the refusal is replayed before the file is looked at.
                    let p = target(*tree, Path::new(rel));
                    mkparent(&p)?;
                    if fs::symlink_metadata(&p).is_err() {
                        fs::write(&p, b"").map_err(io_err(&p))?;
                    }
                }
            }
        }
        // git keeps no empty directory, and an empty fd/ (a kernel thread's) must replay as
        // empty, not as a process gone: a marker the listings skip (no number).
        for r in &records {
            if let Record::Dir(tree, rel) = r {
                let p = target(*tree, rel);
                let empty = fs::read_dir(&p).map_err(io_err(&p))?.next().is_none();
                if empty {
                    let keep = p.join(KEEP_FILE);
                    fs::write(&keep, b"").map_err(io_err(&keep))?;
                }
            }
        }
        if !denied.is_empty() {
            let p = dir.join(DENIED_FILE);
            fs::write(&p, denied).map_err(io_err(&p))?;
        }
        Ok(records.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_ranges(text: &str, ranges: &[(u64, usize)]) -> Result<Vec<Vec<u8>>, String> {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("pfnguard-ranges-{}-{n}", std::process::id()));
        fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let p = dir.join("pagemap.ranges");
        fs::write(&p, text).map_err(|e| e.to_string())?;
        let r = read_ranges_file(&p, ranges).map_err(|e| match e {
            ReadFail::Error(e) => e.to_string(),
            ReadFail::Miss(m) => format!("{m:?}"),
        });
        let _ = fs::remove_dir_all(&dir);
        r
    }

    #[test]
    fn ranges_file_round_trip() {
        let got = with_ranges("10 0102\n20 ff\n", &[(0x10, 2), (0x20, 4), (0x30, 8)]);
        assert_eq!(got, Ok(vec![vec![1, 2], vec![0xff], vec![]]));
    }

    #[test]
    fn ranges_file_errors_name_the_line() {
        for (text, want) in [
            ("10 0102\nzz 00\n", "line 2: offset is not hex"),
            ("10 010\n", "line 1: bytes are not pairs of hex digits"),
            ("10 0é\n", "line 1: bytes are not pairs of hex digits"),
            ("10\n", "line 1: expected `OFFSET HEXBYTES`"),
            ("10 0g\n", "line 1: bytes are not hex"),
        ] {
            let e = with_ranges(text, &[(0x10, 2)]).expect_err(text);
            assert!(e.contains(want) && e.contains("pagemap.ranges"), "{e}");
        }
    }
}
