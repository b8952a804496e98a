//! A synthetic fixture tree of any size, for the performance budget (2,000 processes holding
//! 50,000 dma-buf fds and 20,000 mappings) and its linearity.
//!
//! Process `p` (pid `1000 + p`) holds `fds` dma-buf fds. Its first [`SHARED_PER_PROC`] fds are
//! buffers it shares with its pair process (`p ^ 1`, as a fork child or an SCM_RIGHTS peer
//! would); the others are its own. It maps the buffers of its first `maps` fds. Every buffer
//! is 16 KiB; exporters cycle through `system` (VM_PFNMAP, special PTEs), `udmabuf`
//! (VM_PFNMAP) and `videobuf2_vmalloc` (VM_MIXEDMAP, struct pages). The formats are those of
//! the hand-built fixture (`tests/fixtures/desktop`).

use std::fs;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;

/// Buffers each process shares with its pair.
pub const SHARED_PER_PROC: usize = 5;

/// Bytes of every synthetic buffer.
pub const BUF_SIZE: u64 = 16384;

const EXPORTERS: [(&str, &str, bool); 3] = [
    ("system", "pf io de dd", false),
    ("udmabuf", "pf de dd", false),
    ("videobuf2_vmalloc", "mm de dd", true),
];

/// What a synthetic tree holds, for checking an audit of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SynthFigures {
    /// Processes.
    pub procs: usize,
    /// dma-buf fds.
    pub fds: usize,
    /// `/dmabuf:` mappings.
    pub mappings: usize,
    /// Distinct buffers.
    pub buffers: usize,
}

fn inode(p: usize, j: usize, fds: usize) -> u64 {
    if j < SHARED_PER_PROC {
        2_000_000 + ((p / 2) * SHARED_PER_PROC + j) as u64
    } else {
        1_000_000 + (p * fds + j) as u64
    }
}

/// Write the tree under `dir` (`dir/proc`, `dir/debugfs`): `procs` processes (an even number
/// for the pairs), `fds` dma-buf fds and `maps` mappings each (`maps <= fds`).
pub fn write_fixture(
    dir: &Path,
    procs: usize,
    fds: usize,
    maps: usize,
) -> io::Result<SynthFigures> {
    let proc = dir.join("proc");
    fs::create_dir_all(proc.join("sys/kernel"))?;
    fs::write(proc.join("sys/kernel/osrelease"), "6.12.117+deb13-amd64\n")?;
    let maps = maps.min(fds);
    let mut distinct = std::collections::BTreeSet::new();
    for p in 0..procs {
        let pid = 1000 + p;
        let d = proc.join(pid.to_string());
        fs::create_dir_all(d.join("fd"))?;
        fs::create_dir_all(d.join("fdinfo"))?;
        fs::write(d.join("comm"), format!("worker-{}\n", p % 50))?;
        let mut maps_text = String::from(
            "55d4c6a00000-55d4c6a21000 rw-p 00000000 00:00 0                          [heap]\n",
        );
        let mut smaps_text = String::new();
        let mut pagemap = fs::File::create(d.join("pagemap"))?;
        for j in 0..fds {
            let fd = 3 + j;
            let ino = inode(p, j, fds);
            distinct.insert(ino);
            let (exp, _, _) = EXPORTERS[(ino % 3) as usize];
            std::os::unix::fs::symlink("/dmabuf:", d.join(format!("fd/{fd}")))?;
            fs::write(
                d.join(format!("fdinfo/{fd}")),
                format!("pos:\t0\nflags:\t02000002\nmnt_id:\t16\nino:\t{ino}\nsize:\t{BUF_SIZE}\ncount:\t2\nexp_name:\t{exp}\n"),
            )?;
            if j < maps {
                let (_, flags, pages) = EXPORTERS[(ino % 3) as usize];
                let start = 0x100000 + (j as u64) * 0x8000;
                let end = start + BUF_SIZE;
                let header = format!(
                    "{start:08x}-{end:08x} rw-s 00000000 00:0a {ino:<10}                 /dmabuf:\n"
                );
                let rss = if pages { BUF_SIZE / 1024 } else { 0 };
                maps_text.push_str(&header);
                smaps_text.push_str(&header);
                smaps_text.push_str(&format!(
                    "Size:                 16 kB\nKernelPageSize:        4 kB\nMMUPageSize:           4 kB\nRss:                  {rss} kB\nPss:                  {rss} kB\nShared_Clean:          0 kB\nShared_Dirty:          0 kB\nPrivate_Clean:         0 kB\nPrivate_Dirty:        {rss} kB\nReferenced:           {rss} kB\nAnonymous:             0 kB\nSwap:                  0 kB\nLocked:                0 kB\nTHPeligible:    0\nProtectionKey:         0\nVmFlags: rd wr sh mr mw me ms {flags} \n"
                ));
                pagemap.seek(SeekFrom::Start(start / 4096 * 8))?;
                for i in 0..BUF_SIZE / 4096 {
                    let mut e: u64 = (1 << 63) | (0x100000 + i);
                    if pages {
                        e |= 1 << 61;
                    }
                    pagemap.write_all(&e.to_le_bytes())?;
                }
            }
        }
        fs::write(d.join("maps"), maps_text)?;
        fs::write(d.join("smaps"), smaps_text)?;
    }
    Ok(SynthFigures {
        procs,
        fds: procs * fds,
        mappings: procs * maps,
        buffers: distinct.len(),
    })
}
