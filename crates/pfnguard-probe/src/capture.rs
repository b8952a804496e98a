//! Capturing procfs fixtures: for each reachable exporter, the raw
//! `/proc/self/smaps`, `/proc/self/maps`, `/proc/self/fdinfo/N` and the
//! pagemap entries of a freshly exported, mapped and touched buffer, as the
//! probe sees them. The parser tests (`tests/procfs_fixtures.rs`) read them
//! back from `tests/fixtures/<kernel release>/<exporter>.*`.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsFd, AsRawFd};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::errno;
use crate::exporter::Source;
use crate::sys::Mapping;
use crate::{discover, kernel_release, procfs, worker, ProbeOptions};

/// The files captured for one exporter.
#[derive(Debug, Serialize, Deserialize)]
struct Captured {
    smaps: String,
    maps: String,
    fdinfo: String,
    pagemap: Vec<u8>,
    meta: Value,
}

fn capture_one(id: &str, source: &Source, page: usize) -> Result<Captured, String> {
    let buf = source.export(page).map_err(|e| format!("export: {e}"))?;
    let len = buf.map_len(page);
    let mut map =
        Mapping::shared(buf.fd.as_fd(), len).map_err(|e| format!("mmap: {}", errno::errno(e)))?;
    map.touch_pages(page);
    let read =
        |p: &str| std::fs::read_to_string(p).map_err(|e| format!("{p}: {}", errno::io_error(&e)));
    let smaps = read("/proc/self/smaps")?;
    let maps = read("/proc/self/maps")?;
    let fdinfo = read(&format!("/proc/self/fdinfo/{}", buf.fd.as_fd().as_raw_fd()))?;
    let mut pm = File::open("/proc/self/pagemap")
        .map_err(|e| format!("pagemap: {}", errno::io_error(&e)))?;
    let mut pagemap = vec![0u8; len / page * 8];
    pm.seek(SeekFrom::Start((map.addr() / page * 8) as u64))
        .and_then(|_| pm.read_exact(&mut pagemap))
        .map_err(|e| format!("pagemap: {}", errno::io_error(&e)))?;
    // What the probe's parsers make of the capture, recorded for the tests.
    let vma = procfs::parse_smaps(&smaps)
        .ok()
        .and_then(|v| procfs::find_vma(&v, map.addr() as u64).cloned());
    let info = procfs::parse_fdinfo(&fdinfo);
    let meta = json!({
        "kernel_release": kernel_release(),
        "exporter": id,
        "addr": format!("{:#x}", map.addr()),
        "len": len,
        "size": buf.size,
        "page_size": page,
        "expect": {
            "vmflags": vma.as_ref().map(|v| v.vmflags_joined()),
            "rss_kb": vma.as_ref().and_then(|v| v.rss_kb()),
            "exp_name": info.exp_name,
            "pagemap_present": pagemap.chunks(8).map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                procfs::PagemapEntry(u64::from_ne_bytes(b)).present()
            }).collect::<Vec<_>>(),
        },
    });
    Ok(Captured {
        smaps,
        maps,
        fdinfo,
        pagemap,
        meta,
    })
}

/// Capture fixtures for every exporter `opts` selects (all reachable ones
/// when `opts.exporters` is empty) into `dir/<kernel release>/`. Returns, per
/// exporter, the metadata file written or why nothing was.
pub fn capture_fixtures(opts: &ProbeOptions, dir: &Path) -> Vec<(String, Result<PathBuf, String>)> {
    let page = rustix::param::page_size();
    let kdir = dir.join(kernel_release());
    let mut out = Vec::new();
    for found in discover(opts.op_timeout).candidates().0 {
        if !opts.exporters.is_empty() && !opts.exporters.contains(&found.id) {
            continue;
        }
        let cand = found.cand;
        let id = cand.id.clone();
        let res = worker::run(opts.op_timeout, |_| {
            capture_one(&cand.id, &cand.source, page)
        })
        .map_err(|e| e.to_string())
        .and_then(|r| r)
        .and_then(|c| {
            write(&kdir, &cand.id, &c).map_err(|e| format!("write: {}", errno::io_error(&e)))
        });
        out.push((id, res));
    }
    out
}

fn write(kdir: &Path, id: &str, c: &Captured) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(kdir)?;
    std::fs::write(kdir.join(format!("{id}.smaps")), &c.smaps)?;
    std::fs::write(kdir.join(format!("{id}.maps")), &c.maps)?;
    std::fs::write(kdir.join(format!("{id}.fdinfo")), &c.fdinfo)?;
    std::fs::write(kdir.join(format!("{id}.pagemap")), &c.pagemap)?;
    let meta = kdir.join(format!("{id}.json"));
    let text = serde_json::to_string_pretty(&c.meta).map_err(std::io::Error::other)?;
    std::fs::write(&meta, text + "\n")?;
    Ok(meta)
}
