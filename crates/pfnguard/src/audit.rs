//! `pfnguard audit`: the dma-bufs of the running system, in dmabuf_dump's three views, with
//! the contract of every mapping, as a table, JSON, CSV or Prometheus text.

use std::fmt::Write as _;
use std::io;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use clap::ValueEnum;
use pfnguard_audit::{Audit, Reader, Root, ScanOptions};

use crate::render::{table, table_streamed};

/// Output formats of `audit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuditFormat {
    /// Aligned text for people.
    Table,
    /// The whole audit as one JSON document (with --watch: one line per sample).
    Json,
    /// One row per line of the view, a header line first.
    Csv,
    /// Prometheus text exposition format, for node_exporter's textfile collector.
    Prometheus,
}

/// Which view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Per process (dmabuf_dump).
    Process,
    /// Per buffer (dmabuf_dump -b).
    Buffers,
    /// Buffer x process (dmabuf_dump -a).
    All,
}

/// The arguments of `audit`.
#[derive(Debug)]
pub struct AuditArgs {
    /// The view.
    pub view: View,
    /// The trees.
    pub root: Root,
    /// The model's kernel instead of the root's osrelease.
    pub kernel: Option<String>,
    /// The format.
    pub format: AuditFormat,
    /// Seconds between samples.
    pub watch: Option<u64>,
    /// Samples with --watch.
    pub count: Option<u64>,
    /// Snapshot into this directory.
    pub capture: Option<PathBuf>,
    /// A workload's ground truth to hold the audit to.
    pub truth: Option<PathBuf>,
}

fn kb(b: u64) -> String {
    format!("{}", b / 1024)
}

/// One audit, the reader when it captured, and with `--truth` whether everything agreed.
type Sample<'a> = (Audit, Option<Reader<'a>>, Option<bool>);

fn sample(args: &AuditArgs, capture: bool) -> Result<Sample<'_>> {
    let r = Reader::new(&args.root, capture);
    let s = pfnguard_audit::scan(&r, ScanOptions::default())?;
    let a = pfnguard_audit::audit(&s, args.kernel.as_deref());
    let mut verified = None;
    if let Some(path) = &args.truth {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("--truth {}", path.display()))?;
        let truth: pfnguard_probe::workload::Truth =
            serde_json::from_str(&text).with_context(|| {
                format!(
                    "--truth {}: not a ground truth of audit-workload",
                    path.display()
                )
            })?;
        let v = pfnguard_audit::verify::verify(&truth, &a, s.bufinfo.as_ref());
        eprint!("{v}");
        verified = Some(v.ok());
    }
    Ok((a, capture.then_some(r), verified))
}

/// Why `--watch` has no Prometheus form.
const WATCH_PROMETHEUS: &str = "--watch with --format prometheus: a textfile-collector file \
is one snapshot, and Prometheus computes growth itself (e.g. \
delta(pfnguard_dmabuf_process_bytes[10m])); write `pfnguard audit --format prometheus` to the \
collector's directory from a timer instead, or use --watch with --format csv, json or table";

/// The columns of `--watch --format csv`: one row per process or exporter that changed in a
/// sample (sample 0: everything the first audit found, as growth from nothing).
const GROWTH_CSV_HEADER: [&str; 7] = [
    "sample", "seconds", "what", "key", "fds", "mappings", "bytes",
];

fn growth_csv(s: &mut String, sample: u64, seconds: u64, g: &[pfnguard_audit::Growth]) {
    for x in g {
        csv_line(
            s,
            &[
                sample.to_string(),
                seconds.to_string(),
                x.what.clone(),
                x.key.clone(),
                x.fds.to_string(),
                x.mappings.to_string(),
                x.bytes.to_string(),
            ],
        );
    }
}

/// Refuse `dir` (the argument of `flag`) unless it is absent or an empty directory.
pub fn new_or_empty(dir: &std::path::Path, flag: &str) -> Result<()> {
    if dir.exists()
        && std::fs::read_dir(dir)
            .with_context(|| format!("{flag} {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{flag} {}: not empty (it writes only into an empty or new directory)",
            dir.display()
        );
    }
    Ok(())
}

/// Text made with [`std::fmt::Write`] going straight to an [`io::Write`], with the first
/// error it met.
struct IoText<'a> {
    out: &'a mut dyn io::Write,
    err: Option<io::Error>,
}

impl IoText<'_> {
    /// Run `make` onto `out` through a buffer, then flush it; the first write error.
    fn write(
        out: &mut dyn io::Write,
        make: impl FnOnce(&mut dyn std::fmt::Write),
    ) -> io::Result<()> {
        let mut buf = io::BufWriter::new(out);
        let mut t = IoText {
            out: &mut buf,
            err: None,
        };
        make(&mut t);
        match t.err {
            Some(e) => Err(e),
            None => io::Write::flush(&mut buf),
        }
    }
}

impl std::fmt::Write for IoText<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.err.is_some() {
            return Err(std::fmt::Error);
        }
        self.out.write_all(s.as_bytes()).map_err(|e| {
            self.err = Some(e);
            std::fmt::Error
        })
    }
}

/// Run `audit`.
pub fn audit(out: &mut dyn io::Write, args: &AuditArgs) -> Result<ExitCode> {
    if args.watch.is_some() && args.format == AuditFormat::Prometheus {
        bail!(WATCH_PROMETHEUS);
    }
    if let Some(dir) = &args.capture {
        new_or_empty(dir, "--capture")?;
    }
    let (first, reader, verified) = sample(args, args.capture.is_some())?;
    if let (Some(dir), Some(r)) = (&args.capture, reader) {
        let n = r.write_capture(dir)?;
        eprintln!(
            "pfnguard: captured {n} reads into {}; replay with: pfnguard audit --replay {}",
            dir.display(),
            dir.display()
        );
    }
    let Some(secs) = args.watch else {
        // Streamed: a large system's document is tens of megabytes.
        match args.format {
            AuditFormat::Json => {
                serde_json::to_writer_pretty(&mut *out, &first)?;
                writeln!(out)?;
            }
            AuditFormat::Table => IoText::write(out, |t| render_table(&first, args.view, t))?,
            AuditFormat::Csv => IoText::write(out, |t| render_csv(&first, args.view, t))?,
            AuditFormat::Prometheus => write!(out, "{}", render_prometheus(&first))?,
        }
        return Ok(if verified == Some(false) {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        });
    };
    match args.format {
        AuditFormat::Table => write!(out, "{}", render(&first, args.view, args.format))?,
        AuditFormat::Json => writeln!(
            out,
            "{}",
            serde_json::json!({"sample": 0, "audit": &first, "growth": []})
        )?,
        AuditFormat::Csv => {
            // Sample 0 is the growth from nothing: what each process and exporter has.
            let none = pfnguard_audit::audit(&pfnguard_audit::Scan::default(), None);
            let mut s = String::new();
            csv_line(&mut s, &strings(&GROWTH_CSV_HEADER));
            growth_csv(&mut s, 0, 0, &pfnguard_audit::growth(&none, &first));
            write!(out, "{s}")?;
        }
        AuditFormat::Prometheus => bail!(WATCH_PROMETHEUS),
    }
    out.flush()?;
    let mut prev = first;
    let mut n = 1u64;
    while args.count.is_none_or(|c| n < c) {
        std::thread::sleep(Duration::from_secs(secs));
        let (now, _, _) = sample(args, false)?;
        let g = pfnguard_audit::growth(&prev, &now);
        if args.format == AuditFormat::Table {
            writeln!(out, "\nsample {n} (+{}s): {}", secs * n, growth_line(&g))?;
            if !g.is_empty() {
                let rows: Vec<Vec<String>> = g
                    .iter()
                    .map(|x| {
                        vec![
                            x.what.clone(),
                            x.key.clone(),
                            signed(x.fds),
                            signed(x.mappings),
                            signed(x.bytes / 1024),
                        ]
                    })
                    .collect();
                write!(
                    out,
                    "{}",
                    table(
                        &strings(&["", "process/exporter", "fds", "mappings", "kB"]),
                        &rows
                    )
                )?;
            }
        } else if args.format == AuditFormat::Csv {
            let mut s = String::new();
            growth_csv(&mut s, n, secs * n, &g);
            write!(out, "{s}")?;
        } else {
            writeln!(
                out,
                "{}",
                serde_json::json!({"sample": n, "totals": &now.totals, "growth": g})
            )?;
        }
        out.flush()?;
        prev = now;
        n += 1;
    }
    Ok(ExitCode::SUCCESS)
}

fn growth_line(g: &[pfnguard_audit::Growth]) -> String {
    if g.is_empty() {
        "nothing changed".to_owned()
    } else {
        format!("{} changes since the previous sample", g.len())
    }
}

fn signed(n: i64) -> String {
    if n > 0 {
        format!("+{n}")
    } else {
        n.to_string()
    }
}

fn strings(s: &[&str]) -> Vec<String> {
    s.iter().map(|x| (*x).to_owned()).collect()
}

/// The audit in one view and format.
pub fn render(a: &Audit, view: View, format: AuditFormat) -> String {
    match format {
        AuditFormat::Table => {
            let mut s = String::new();
            render_table(a, view, &mut s);
            s
        }
        AuditFormat::Json => {
            let mut s = serde_json::to_string_pretty(a).unwrap_or_default();
            s.push('\n');
            s
        }
        AuditFormat::Csv => {
            let mut s = String::new();
            render_csv(a, view, &mut s);
            s
        }
        AuditFormat::Prometheus => render_prometheus(a),
    }
}

fn ops_list(o: &Option<Vec<pfnguard_report::OpKey>>) -> String {
    match o {
        None => "not modeled".to_owned(),
        Some(v) if v.is_empty() => "none".to_owned(),
        Some(v) => v
            .iter()
            .map(|o| o.to_string())
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The table view of `a`, written to `s` as it is made (a large system's tables are megabytes).
fn render_table(a: &Audit, view: View, s: &mut dyn std::fmt::Write) {
    let _ = writeln!(
        s,
        "kernel {} (model: {})",
        a.kernel.release.as_deref().unwrap_or("unknown"),
        a.kernel.modeled.as_deref().unwrap_or("not modeled")
    );
    if let Some(n) = &a.kernel.note {
        let _ = writeln!(s, "  {n}");
    }
    let _ = s.write_char('\n');
    match view {
        View::Process => {
            let h = strings(&[
                "process", "inode", "name", "exporter", "size kB", "rss kB", "pss kB", "nr_procs",
                "fds", "maps",
            ]);
            let rows = |sink: &mut dyn FnMut(&[String])| {
                for p in &a.processes {
                    let who = format!("{}:{}", p.comm, p.pid);
                    for b in &p.buffers {
                        sink(&[
                            who.clone(),
                            b.inode.to_string(),
                            b.name.clone().unwrap_or_else(|| "<unknown>".into()),
                            b.exporter.clone(),
                            kb(b.size_bytes),
                            kb(b.rss_bytes),
                            kb(b.pss_bytes),
                            b.nr_procs.to_string(),
                            b.fds.to_string(),
                            b.maps.to_string(),
                        ]);
                    }
                    sink(&[
                        who,
                        "PROCESS TOTAL".into(),
                        String::new(),
                        String::new(),
                        kb(p.size_bytes),
                        kb(p.rss_bytes),
                        kb(p.pss_bytes),
                        String::new(),
                        p.fds.to_string(),
                        p.mappings.to_string(),
                    ]);
                }
            };
            if a.processes.is_empty() {
                let _ = s.write_str("no process holds or maps a dma-buf\n");
            } else {
                table_streamed(&h, &rows, s);
            }
            contract_table(s, a);
        }
        View::Buffers => {
            let h = strings(&[
                "inode",
                "size kB",
                "exporter",
                "name",
                "fds (pid×n)",
                "maps (pid×n)",
                "nr_procs",
                "pss kB",
                "attached",
                "GUP gets struct pages (model)",
            ]);
            let refs = |m: &pfnguard_audit::Refs| {
                if m.is_empty() {
                    "-".to_owned()
                } else {
                    m.iter()
                        .map(|(p, n)| format!("{p}×{n}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                }
            };
            let rows = |sink: &mut dyn FnMut(&[String])| {
                for b in &a.buffers {
                    sink(&[
                        b.inode.to_string(),
                        kb(b.size_bytes),
                        b.exporter.clone(),
                        b.name.clone().unwrap_or_else(|| "<unknown>".into()),
                        if b.kernel_only {
                            "kernel only".into()
                        } else {
                            refs(&b.fd_refs)
                        },
                        refs(&b.map_refs),
                        b.pids().len().to_string(),
                        kb(b.pss_bytes),
                        b.attached.join(" "),
                        ops_list(&b.gup_struct_page),
                    ]);
                }
            };
            table_streamed(&h, &rows, s);
            let _ = s.write_char('\n');
            let h = strings(&[
                "exporter",
                "buffers",
                "kB",
                "kernel-only kB",
                "fds",
                "mappings",
            ]);
            let rows: Vec<Vec<String>> = a
                .exporters
                .iter()
                .map(|e| {
                    vec![
                        e.exporter.clone(),
                        e.buffers.to_string(),
                        kb(e.bytes),
                        kb(e.kernel_only_bytes),
                        e.fds.to_string(),
                        e.mappings.to_string(),
                    ]
                })
                .collect();
            let _ = s.write_str(&table(&h, &rows));
        }
        View::All => {
            let mut h = strings(&["inode", "size kB", "fd refs", "map refs"]);
            for p in &a.processes {
                h.push(format!("{}:{}", p.comm, p.pid));
            }
            let mut rows = Vec::new();
            for b in a.buffers.iter().filter(|b| !b.kernel_only) {
                let mut r = vec![
                    b.inode.to_string(),
                    kb(b.size_bytes),
                    b.fd_refs.values().sum::<u32>().to_string(),
                    b.map_refs.values().sum::<u32>().to_string(),
                ];
                for p in &a.processes {
                    let f = b.fd_refs.get(&p.pid).copied().unwrap_or(0);
                    let m = b.map_refs.get(&p.pid).copied().unwrap_or(0);
                    r.push(if f + m == 0 {
                        "--".into()
                    } else {
                        format!("{f}({m}) refs")
                    });
                }
                rows.push(r);
            }
            let mut tot = vec![
                "TOTALS".to_owned(),
                kb(a.totals.userspace_bytes),
                "n/a".into(),
                "n/a".into(),
            ];
            for p in &a.processes {
                tot.push(format!("{} kB", p.size_bytes / 1024));
            }
            rows.push(tot);
            let _ = s.write_str(&crate::render::wrap_columns(&h, &rows, 120, table));
        }
    }
    let t = &a.totals;
    let _ = writeln!(
        s,
        "\ndmabuf total: {} kB kernel_rss: {} userspace_rss: {} kB userspace_pss: {} kB (mapped rss: {} kB; {} buffers, {} fds, {} mappings, {} breaking the contract)",
        t.dmabuf_bytes / 1024,
        t.kernel_bytes
            .map_or_else(|| "unknown".to_owned(), |k| format!("{} kB", k / 1024)),
        t.userspace_rss_bytes / 1024,
        t.userspace_pss_bytes / 1024,
        t.mapped_rss_bytes / 1024,
        t.buffers,
        t.fds,
        t.mappings,
        t.mappings_breaking
    );
    if !a.unreadable.is_empty() {
        let _ = s.write_str("\nnot readable:\n");
        for u in &a.unreadable {
            let _ = writeln!(
                s,
                "  {}:{} {}: {}",
                u.comm.as_deref().unwrap_or("?"),
                u.pid,
                u.what,
                u.why
            );
        }
    }
    if !a.vanished.is_empty() {
        let _ = writeln!(
            s,
            "\nexited during the scan: {}",
            a.vanished
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    for n in &a.notes {
        let _ = writeln!(s, "note: {n}");
    }
}

fn contract_table(s: &mut dyn std::fmt::Write, a: &Audit) {
    let h = strings(&[
        "process",
        "mapping",
        "inode",
        "exporter",
        "flags",
        "pagemap present/struct page",
        "GUP gets struct pages (model)",
        "contract",
    ]);
    let rows = |sink: &mut dyn FnMut(&[String])| {
        for p in &a.processes {
            for m in &p.maps {
                let c = &m.contract;
                sink(&[
                    format!("{}:{}", p.comm, p.pid),
                    format!("{}-{}", m.start, m.end),
                    m.inode.to_string(),
                    m.exporter.clone(),
                    if c.flags.is_empty() {
                        "-".into()
                    } else {
                        c.flags.join(" ")
                    },
                    c.pagemap.map_or_else(
                        || "unread".into(),
                        |pm| format!("{}/{} of {}", pm.present, pm.normal, pm.pages),
                    ),
                    ops_list(&c.gup_struct_page),
                    match &c.reason {
                        Some(r) => format!("{}: {r}", c.verdict),
                        None => c.verdict.clone(),
                    },
                ]);
            }
        }
    };
    if a.processes.iter().any(|p| !p.maps.is_empty()) {
        let _ = s.write_str("\nmappings and the VM_PFNMAP contract:\n");
        table_streamed(&h, &rows, s);
    }
}

fn csv_field(f: &str) -> String {
    if f.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", f.replace('"', "\"\""))
    } else {
        f.to_owned()
    }
}

fn csv_line(s: &mut dyn std::fmt::Write, fields: &[String]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            let _ = s.write_char(',');
        }
        let _ = s.write_str(&csv_field(f));
    }
    let _ = s.write_char('\n');
}

/// The CSV view of `a`, written to `s` as it is made.
fn render_csv(a: &Audit, view: View, s: &mut dyn std::fmt::Write) {
    match view {
        View::Process => {
            csv_line(
                s,
                &strings(&[
                    "pid",
                    "comm",
                    "inode",
                    "name",
                    "exporter",
                    "size_bytes",
                    "rss_bytes",
                    "pss_bytes",
                    "nr_procs",
                    "fds",
                    "maps",
                ]),
            );
            for p in &a.processes {
                for b in &p.buffers {
                    csv_line(
                        s,
                        &[
                            p.pid.to_string(),
                            p.comm.clone(),
                            b.inode.to_string(),
                            b.name.clone().unwrap_or_default(),
                            b.exporter.clone(),
                            b.size_bytes.to_string(),
                            b.rss_bytes.to_string(),
                            b.pss_bytes.to_string(),
                            b.nr_procs.to_string(),
                            b.fds.to_string(),
                            b.maps.to_string(),
                        ],
                    );
                }
            }
        }
        View::Buffers => {
            csv_line(
                s,
                &strings(&[
                    "inode",
                    "size_bytes",
                    "exporter",
                    "name",
                    "fd_pids",
                    "map_pids",
                    "nr_procs",
                    "pss_bytes",
                    "kernel_only",
                    "gup_struct_page",
                ]),
            );
            let pids = |m: &pfnguard_audit::Refs| {
                m.keys()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            for b in &a.buffers {
                csv_line(
                    s,
                    &[
                        b.inode.to_string(),
                        b.size_bytes.to_string(),
                        b.exporter.clone(),
                        b.name.clone().unwrap_or_default(),
                        pids(&b.fd_refs),
                        pids(&b.map_refs),
                        b.pids().len().to_string(),
                        b.pss_bytes.to_string(),
                        b.kernel_only.to_string(),
                        ops_list(&b.gup_struct_page),
                    ],
                );
            }
        }
        View::All => {
            csv_line(
                s,
                &strings(&[
                    "inode",
                    "size_bytes",
                    "exporter",
                    "pid",
                    "comm",
                    "fds",
                    "maps",
                ]),
            );
            for b in &a.buffers {
                for pid in b.pids() {
                    let comm = a
                        .processes
                        .iter()
                        .find(|p| p.pid == pid)
                        .map(|p| p.comm.clone())
                        .unwrap_or_default();
                    csv_line(
                        s,
                        &[
                            b.inode.to_string(),
                            b.size_bytes.to_string(),
                            b.exporter.clone(),
                            pid.to_string(),
                            comm,
                            b.fd_refs.get(&pid).copied().unwrap_or(0).to_string(),
                            b.map_refs.get(&pid).copied().unwrap_or(0).to_string(),
                        ],
                    );
                }
            }
        }
    }
}

fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus metrics (stable names; README "Auditing a live system").
fn render_prometheus(a: &Audit) -> String {
    use std::collections::BTreeMap;
    let mut s = String::new();
    let mut metric = |name: &str, help: &str, samples: Vec<(String, u64)>| {
        let _ = writeln!(s, "# HELP {name} {help}");
        let _ = writeln!(s, "# TYPE {name} gauge");
        for (labels, v) in samples {
            if labels.is_empty() {
                let _ = writeln!(s, "{name} {v}");
            } else {
                let _ = writeln!(s, "{name}{{{labels}}} {v}");
            }
        }
    };
    // Per process and exporter: (size, pss, rss, fds, maps).
    let mut per: BTreeMap<(u32, String, String), [u64; 5]> = BTreeMap::new();
    for p in &a.processes {
        for b in &p.buffers {
            let e = per
                .entry((p.pid, p.comm.clone(), b.exporter.clone()))
                .or_default();
            e[0] += b.size_bytes;
            e[1] += b.pss_bytes;
            e[2] += b.rss_bytes;
            e[3] += u64::from(b.fds);
            e[4] += u64::from(b.maps);
        }
    }
    let pl = |(pid, comm, exp): &(u32, String, String)| {
        format!(
            "pid=\"{pid}\",comm=\"{}\",exporter=\"{}\"",
            label(comm),
            label(exp)
        )
    };
    let col = |i: usize| per.iter().map(|(k, v)| (pl(k), v[i])).collect::<Vec<_>>();
    metric(
        "pfnguard_dmabuf_process_bytes",
        "Size of the dma-bufs a process holds or maps (dmabuf_dump's Rss), per exporter.",
        col(0),
    );
    metric("pfnguard_dmabuf_process_pss_bytes", "Proportional share of those dma-bufs: each buffer's size divided by the processes that hold or map it.", col(1));
    metric("pfnguard_dmabuf_process_rss_bytes", "smaps Rss of the process's /dmabuf: mappings (0 for VM_PFNMAP mappings: special PTEs are not counted).", col(2));
    metric(
        "pfnguard_dmabuf_process_fds",
        "dma-buf fds of the process.",
        col(3),
    );
    metric(
        "pfnguard_dmabuf_process_mappings",
        "/dmabuf: mappings of the process.",
        col(4),
    );
    let el = |e: &str| format!("exporter=\"{}\"", label(e));
    metric(
        "pfnguard_dmabuf_exporter_bytes",
        "Bytes of every dma-buf of the exporter, held by a process or not.",
        a.exporters
            .iter()
            .map(|e| (el(&e.exporter), e.bytes))
            .collect(),
    );
    metric("pfnguard_dmabuf_exporter_kernel_bytes", "Bytes of the exporter's dma-bufs no process holds or maps (from debugfs bufinfo or sysfs).", a.exporters.iter().map(|e| (el(&e.exporter), e.kernel_only_bytes)).collect());
    metric(
        "pfnguard_dmabuf_buffers",
        "dma-bufs of the exporter.",
        a.exporters
            .iter()
            .map(|e| (el(&e.exporter), e.buffers))
            .collect(),
    );
    let mut breaking: BTreeMap<String, u64> = BTreeMap::new();
    for p in &a.processes {
        for m in &p.maps {
            let e = breaking.entry(m.exporter.clone()).or_default();
            if m.contract.verdict == "breaks" {
                *e += 1;
            }
        }
    }
    metric(
        "pfnguard_dmabuf_mappings_breaking_contract",
        "/dmabuf: mappings that are not VM_PFNMAP, or show struct pages in pagemap, per exporter.",
        breaking.into_iter().map(|(e, n)| (el(&e), n)).collect(),
    );
    metric(
        "pfnguard_dmabuf_total_bytes",
        "Bytes of every dma-buf counted.",
        vec![(String::new(), a.totals.dmabuf_bytes)],
    );
    metric(
        "pfnguard_dmabuf_userspace_bytes",
        "Bytes of the dma-bufs some process holds or maps, each once.",
        vec![(String::new(), a.totals.userspace_bytes)],
    );
    let unreadable: std::collections::BTreeSet<u32> = a.unreadable.iter().map(|u| u.pid).collect();
    metric(
        "pfnguard_audit_unreadable_processes",
        "Processes the audit could not read in full.",
        vec![(String::new(), unreadable.len() as u64)],
    );
    s
}
