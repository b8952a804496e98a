//! The target of the O_DIRECT ops: the path given with `--odirect` (a raw
//! virtio disk in QEMU), or a scratch file the probe creates on a block-backed
//! file system and removes afterwards.
//!
//! tmpfs and ramfs are skipped: since 6.6 shmem accepts `O_DIRECT` opens but
//! copies through the page cache, so no user page would be pinned.

use std::io::Write;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags};

use crate::errno;

/// `TMPFS_MAGIC` (include/uapi/linux/magic.h).
const TMPFS_MAGIC: u64 = 0x0102_1994;
/// `RAMFS_MAGIC` (include/uapi/linux/magic.h).
const RAMFS_MAGIC: u64 = 0x8584_58f6;
/// Size of the scratch file: two pages of data for the 4096-byte transfers.
const SCRATCH_SIZE: usize = 8192;

/// A scratch file removed on drop.
#[derive(Debug)]
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Where the O_DIRECT ops read and write.
#[derive(Debug)]
pub(crate) struct OdirectTarget {
    /// The path, or why there is none (`unavailable: ` is prefixed by the ops).
    pub path: Result<PathBuf, String>,
    _scratch: Option<Scratch>,
}

impl OdirectTarget {
    /// Use `given`, or create a scratch file.
    pub(crate) fn resolve(given: Option<&Path>) -> Self {
        if let Some(p) = given {
            return Self {
                path: Ok(p.to_path_buf()),
                _scratch: None,
            };
        }
        let mut dirs = vec![std::env::temp_dir(), PathBuf::from("/var/tmp")];
        if let Ok(cwd) = std::env::current_dir() {
            dirs.push(cwd);
        }
        let mut why = Vec::new();
        for dir in dirs {
            match scratch_in(&dir) {
                Ok(s) => {
                    return Self {
                        path: Ok(s.0.clone()),
                        _scratch: Some(s),
                    }
                }
                Err(e) => why.push(format!("{}: {e}", dir.display())),
            }
        }
        Self {
            path: Err(format!(
                "no O_DIRECT-capable scratch file ({}); pass --odirect",
                why.join("; ")
            )),
            _scratch: None,
        }
    }
}

fn scratch_in(dir: &Path) -> Result<Scratch, String> {
    let st = rustix::fs::statfs(dir).map_err(|e| format!("statfs: {}", errno::errno(e)))?;
    let magic = st.f_type as u64;
    if magic == TMPFS_MAGIC || magic == RAMFS_MAGIC {
        return Err("tmpfs/ramfs".into());
    }
    let path = dir.join(format!("pfnguard-odirect-{}.tmp", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| format!("create: {}", errno::io_error(&e)))?;
    let scratch = Scratch(path);
    f.write_all(&[0xa5; SCRATCH_SIZE])
        .map_err(|e| format!("write: {}", errno::io_error(&e)))?;
    f.sync_all()
        .map_err(|e| format!("fsync: {}", errno::io_error(&e)))?;
    rustix::fs::open(
        &scratch.0,
        OFlags::RDWR | OFlags::DIRECT | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| format!("open O_DIRECT: {}", errno::errno(e)))?;
    Ok(scratch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_path_is_used_as_is() {
        let t = OdirectTarget::resolve(Some(Path::new("/dev/vda")));
        assert_eq!(t.path, Ok(PathBuf::from("/dev/vda")));
    }

    #[test]
    fn scratch_is_removed() {
        let t = OdirectTarget::resolve(None);
        if let Ok(p) = t.path.clone() {
            assert!(p.exists());
            drop(t);
            assert!(!p.exists());
        }
    }
}
