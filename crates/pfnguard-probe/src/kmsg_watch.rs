//! Reading the kernel log around every op (`probe --kmsg`, [`crate::ProbeOptions::kmsg`]).
//!
//! Before an op the parent moves its `/dev/kmsg` reader past the last record
//! (`lseek(SEEK_END)`, kernel/printk/printk.c:`devkmsg_llseek`), writes `1` to
//! `/sys/kernel/debug/clear_warn_once` when that file exists (kernel/panic.c:`clear_warn_once_set`
//! resets every `WARN_ONCE`/`WARN_ON_ONCE` site: `generic_bug_clear_once()` clears the
//! `BUGFLAG_DONE` of the bug table and the `.data.once` flags are zeroed, so each op that
//! reaches a once-site logs it again), and writes the marker `pfnguard: EXPORTER OP` into the
//! log (`devkmsg_write`, facility `LOG_USER`) so that a console log shows which cell each
//! warning belongs to. Then the op's worker runs, and once it has been reaped the parent reads
//! every record logged since (`devkmsg_read`, until `EAGAIN`): warnings the kernel printed on
//! the child's behalf at `munmap`, `close` or exit count for that op. [`crate::kmsg::warnings`]
//! reads the WARNs out of them.
//!
//! The log is global: a WARN some other task triggers while an op runs is recorded for that
//! op too (its WARNING line names the task). A WARN the kernel prints after the worker was
//! reaped (from a workqueue, an RCU callback, or a worker that could not be killed at its
//! deadline) counts for the next op. Without `clear_warn_once` (debugfs not mounted at
//! `/sys/kernel/debug`, or no `CONFIG_DEBUG_FS`) a once-site shows only the first time it
//! fires since boot; the rows say so in `detail.kmsg_notes`.

use std::collections::BTreeMap;
use std::path::Path;

use pfnguard_report::OpKey;
use rustix::io::Errno;
use serde_json::{json, Map, Value};

use crate::errno;
use crate::kmsg::{self, KernelWarning};
use crate::sys;

/// The debugfs file that resets the warn-once flags (kernel/panic.c:`register_warn_debugfs`).
pub(crate) const CLEAR_WARN_ONCE: &str = "/sys/kernel/debug/clear_warn_once";

/// Most records read after one op; a log flooded beyond this is cut (and noted).
const MAX_RECORDS: usize = 4096;

/// Read buffer: larger than any record `devkmsg_read` returns (`PRINTK_MESSAGE_MAX`).
const RECORD_BUF: usize = 16 * 1024;

/// The kernel log reader of a probe run.
#[derive(Debug)]
pub(crate) struct KmsgWatch {
    reader: sys::KmsgReader,
    clear_warn_once: bool,
    /// Notes that hold for the whole run (`clear_warn_once` missing).
    pub(crate) notes: Vec<String>,
}

/// What the kernel logged while one op ran.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct OpLog {
    /// The WARNs, in log order.
    pub warnings: Vec<KernelWarning>,
    /// What went wrong reading the log (records lost, a failed write).
    pub notes: Vec<String>,
}

/// The line written to the kernel log before `op` runs on `exporter`.
pub(crate) fn marker(exporter: &str, op: OpKey) -> String {
    format!("pfnguard: {exporter} {op}\n")
}

/// Whether `records` hold the marker line as userspace wrote it (facility other than 0).
fn has_marker(records: &[String], mark: &str) -> bool {
    let mark = mark.trim_end();
    records
        .iter()
        .filter_map(|r| kmsg::parse_record(r))
        .any(|r| r.facility != 0 && r.text == mark)
}

impl KmsgWatch {
    /// Open `/dev/kmsg` and look for `clear_warn_once`.
    pub(crate) fn open() -> Result<Self, String> {
        let reader =
            sys::KmsgReader::open().map_err(|e| format!("/dev/kmsg: {}", errno::errno(e)))?;
        reader
            .seek_end()
            .map_err(|e| format!("lseek /dev/kmsg: {}", errno::errno(e)))?;
        let mut notes = Vec::new();
        let clear_warn_once = match std::fs::metadata(CLEAR_WARN_ONCE) {
            Ok(_) => true,
            Err(e) => {
                let why = if e.kind() == std::io::ErrorKind::NotFound {
                    " (debugfs not mounted at /sys/kernel/debug, or no CONFIG_DEBUG_FS)"
                } else {
                    ""
                };
                notes.push(format!(
                    "{CLEAR_WARN_ONCE}: {}{why}: warn-once flags were not cleared, so a \
                     WARN_ONCE site is logged only the first time it fires since boot",
                    errno::io_error(&e)
                ));
                false
            }
        };
        Ok(Self {
            reader,
            clear_warn_once,
            notes,
        })
    }

    /// Run `f` (the op's whole worker, until it is reaped) with the kernel log read around it.
    pub(crate) fn around<T>(&self, exporter: &str, op: OpKey, f: impl FnOnce() -> T) -> (T, OpLog) {
        let mut log = OpLog::default();
        if let Err(e) = self.reader.seek_end() {
            log.notes
                .push(format!("lseek /dev/kmsg: {}", errno::errno(e)));
        }
        if self.clear_warn_once {
            if let Err(e) = sys::write_existing(Path::new(CLEAR_WARN_ONCE), b"1") {
                log.notes.push(format!(
                    "writing {CLEAR_WARN_ONCE}: {}: warn-once flags not cleared",
                    errno::errno(e)
                ));
            }
        }
        let mark = marker(exporter, op);
        let marked = match sys::kmsg_write(&mark) {
            Ok(()) => true,
            Err(e) => {
                log.notes.push(format!(
                    "marker not written to /dev/kmsg: {}",
                    errno::errno(e)
                ));
                false
            }
        };
        let out = f();
        let records = self.drain(&mut log.notes);
        if marked && !has_marker(&records, &mark) {
            log.notes.push(
                "the marker written before the op was not read back from /dev/kmsg: the log \
                 may not have been read completely"
                    .to_owned(),
            );
        }
        log.warnings = kmsg::warnings(records.iter().map(String::as_str));
        (out, log)
    }

    /// Every record logged since the last `seek_end`, until `EAGAIN`.
    fn drain(&self, notes: &mut Vec<String>) -> Vec<String> {
        let mut buf = vec![0u8; RECORD_BUF];
        let mut out = Vec::new();
        let mut lost = false;
        // Bounded even if every read is interrupted or reports lost records.
        for _ in 0..MAX_RECORDS + 256 {
            if out.len() >= MAX_RECORDS {
                notes.push(format!(
                    "more than {MAX_RECORDS} kernel log records during the op: the rest were not \
                     read"
                ));
                break;
            }
            match self.reader.read_record(&mut buf) {
                Ok(0) | Err(Errno::AGAIN) => break,
                Ok(n) => out.push(String::from_utf8_lossy(&buf[..n.min(buf.len())]).into_owned()),
                Err(Errno::INTR) => continue,
                // The reader's position moved on to the oldest record still there.
                Err(Errno::PIPE) => lost = true,
                Err(e) => {
                    notes.push(format!("reading /dev/kmsg: {}", errno::errno(e)));
                    break;
                }
            }
        }
        if lost {
            notes.push(
                "kernel log records were overwritten before they were read (EPIPE): warnings may \
                 be missing"
                    .to_owned(),
            );
        }
        out
    }
}

/// What the probe keeps of the kernel log for one row.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct RowLog {
    /// Op → the `file:function` of each WARN site it hit ([`pfnguard_report::ExporterReport::warned_at`]).
    pub warned_at: BTreeMap<OpKey, Vec<String>>,
    /// Op → the raw lines of its warnings (message lines and WARNING lines), for `detail.kmsg`.
    pub lines: Map<String, Value>,
    /// The run's notes, for `detail.kmsg_notes`.
    pub run_notes: Vec<String>,
    /// Each distinct note of the ops, with the ops that had it, in order of appearance.
    pub op_notes: Vec<(String, Vec<OpKey>)>,
}

impl RowLog {
    /// A row's log, starting with the run's notes.
    pub(crate) fn new(run_notes: &[String]) -> Self {
        Self {
            run_notes: run_notes.to_vec(),
            ..Self::default()
        }
    }

    /// Add what `op` logged.
    pub(crate) fn record(&mut self, op: OpKey, log: OpLog) {
        for n in log.notes {
            match self.op_notes.iter_mut().find(|(text, _)| *text == n) {
                Some((_, ops)) if !ops.contains(&op) => ops.push(op),
                Some(_) => {}
                None => self.op_notes.push((n, vec![op])),
            }
        }
        if log.warnings.is_empty() {
            return;
        }
        self.warned_at.insert(op, kmsg::sites(&log.warnings));
        let lines: Vec<&String> = log.warnings.iter().flat_map(|w| &w.lines).collect();
        self.lines.insert(op.to_string(), json!(lines));
    }

    /// Put the lines and notes into a row's `detail` (`kmsg`: op → lines; `kmsg_notes`: the
    /// run's notes, then each op note as `NOTE (op, op)`); returns the row's `warned_at`.
    pub(crate) fn finish(self, detail: &mut Map<String, Value>) -> BTreeMap<OpKey, Vec<String>> {
        if !self.lines.is_empty() {
            detail.insert("kmsg".into(), Value::Object(self.lines));
        }
        let mut notes = self.run_notes;
        for (text, ops) in self.op_notes {
            let ops: Vec<&str> = ops.iter().map(|o| o.as_str()).collect();
            notes.push(format!("{text} ({})", ops.join(", ")));
        }
        if !notes.is_empty() {
            detail.insert("kmsg_notes".into(), json!(notes));
        }
        self.warned_at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K73: &str = include_str!("../tests/kmsg/7.3-x86_64.kmsg");

    #[test]
    fn a_row_keeps_sites_lines_and_notes() {
        let ws = kmsg::warnings(kmsg::split_records(K73));
        let mut row = RowLog::new(&["clear_warn_once is missing".to_owned()]);
        row.record(
            OpKey::MmapShared,
            OpLog {
                warnings: vec![ws[0].clone(), ws[0].clone()],
                notes: Vec::new(),
            },
        );
        row.record(OpKey::Rss, OpLog::default());
        row.record(
            OpKey::MadvPopulateWrite,
            OpLog {
                warnings: vec![ws[3].clone(), ws[0].clone()],
                notes: vec!["kernel log records were overwritten".to_owned()],
            },
        );
        row.record(
            OpKey::Mlock,
            OpLog {
                warnings: Vec::new(),
                notes: vec!["kernel log records were overwritten".to_owned()],
            },
        );
        let mut detail = Map::new();
        let warned_at = row.finish(&mut detail);
        assert_eq!(
            warned_at,
            BTreeMap::from([
                (
                    OpKey::MmapShared,
                    vec!["drivers/dma-buf/dma-buf.c:dma_buf_mmap_check".to_owned()]
                ),
                (
                    OpKey::MadvPopulateWrite,
                    vec![
                        "mm/memory.c:vm_pfnmap_insert_refused".to_owned(),
                        "drivers/dma-buf/dma-buf.c:dma_buf_mmap_check".to_owned()
                    ]
                ),
            ]),
            "an op without warnings has no entry; a site is listed once"
        );
        let lines = detail["kmsg"]["mmap_shared"].as_array().unwrap();
        assert_eq!(lines.len(), 4, "both warnings' lines are kept");
        assert!(lines[0]
            .as_str()
            .unwrap()
            .starts_with("dma-buf: exporter vgem set up a mapping"));
        assert!(detail["kmsg"].get("rss").is_none());
        assert_eq!(
            detail["kmsg_notes"],
            json!([
                "clear_warn_once is missing",
                "kernel log records were overwritten (madv_populate_write, mlock)"
            ])
        );
        let mut empty = Map::new();
        assert!(RowLog::new(&[]).finish(&mut empty).is_empty());
        assert!(empty.is_empty());
    }

    #[test]
    fn marker_names_the_cell() {
        let m = marker("vgem", OpKey::MmapShared);
        assert_eq!(m, "pfnguard: vgem mmap_shared\n");
        let recs: Vec<String> = kmsg::split_records(K73)
            .into_iter()
            .map(str::to_owned)
            .collect();
        assert!(has_marker(&recs, &m));
        assert!(!has_marker(&recs, &marker("vgem", OpKey::Rss)));
        // The kernel writing the same text is not the marker.
        assert!(!has_marker(
            &["4,1,1,-;pfnguard: vgem rss\n".to_owned()],
            &marker("vgem", OpKey::Rss)
        ));
    }

    /// Reading the log changes nothing: open, seek to the end, read what arrives. Skipped
    /// where `/dev/kmsg` cannot be read (no `CAP_SYSLOG` with `dmesg_restrict`, a container).
    #[test]
    fn reading_the_log_ends_at_eagain() {
        let Ok(reader) = sys::KmsgReader::open() else {
            return;
        };
        let w = KmsgWatch {
            reader,
            clear_warn_once: false,
            notes: Vec::new(),
        };
        w.reader.seek_end().unwrap();
        let mut notes = Vec::new();
        let recs = w.drain(&mut notes);
        assert!(recs.len() < MAX_RECORDS, "{notes:?}");
        assert!(notes.iter().all(|n| !n.starts_with("reading")), "{notes:?}");
    }
}
