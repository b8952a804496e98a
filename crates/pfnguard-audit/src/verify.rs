//! An audit held to a workload's ground truth: the dma-bufs `pfnguard audit-workload` made on a
//! real kernel ([`pfnguard_probe::workload::Truth`]), what debugfs `dma_buf/bufinfo` says of
//! them, and what the model predicts for each exporter on that kernel.
//!
//! Every figure is compared: per buffer its size, `exp_name`, name, the processes holding an fd
//! and those mapping it, and whether only the kernel holds it (then bufinfo must list the
//! importer's attachment); per process its fds, mappings, dmabuf_dump Rss and Pss; the totals;
//! debugfs bufinfo's own rows and `Total N objects, B bytes`; and per mapping the contract:
//! flagged or not, and the GUP users that get struct pages, against
//! [`contract::predict_exporter`] of the exporter the workload allocated from (what `pfnguard
//! predict --kernel K --exporter ID` says). A buffer the audit finds that the workload did not
//! make is a mismatch too. A mapping whose maps line is not the dma-buf's `/dmabuf:` file
//! ([`pfnguard_probe::workload::TruthMapping`]) is one no audit can tie to its buffer: it must
//! not be counted.

use std::collections::BTreeMap;

use pfnguard_probe::workload::Truth;

use crate::bufinfo::Bufinfo;
use crate::contract;
use crate::Audit;

/// The outcome: the figures compared, and every disagreement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verification {
    /// One line per figure compared that agreed.
    pub agreed: Vec<String>,
    /// One line per disagreement, naming the buffer, process or total and both values.
    pub mismatches: Vec<String>,
}

impl Verification {
    fn check<T: PartialEq + std::fmt::Debug>(&mut self, what: String, audit: T, truth: T) {
        if audit == truth {
            self.agreed.push(format!("{what}: {truth:?}"));
        } else {
            self.mismatches
                .push(format!("{what}: audit {audit:?}, ground truth {truth:?}"));
        }
    }

    /// Whether everything agreed (and something was compared).
    pub fn ok(&self) -> bool {
        self.mismatches.is_empty() && !self.agreed.is_empty()
    }
}

impl std::fmt::Display for Verification {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for m in &self.mismatches {
            writeln!(f, "MISMATCH {m}")?;
        }
        writeln!(
            f,
            "audit vs ground truth: {} figures agree, {} disagree",
            self.agreed.len(),
            self.mismatches.len()
        )
    }
}

/// Hold `audit` (and the scan's `bufinfo`) to `truth`.
pub fn verify(truth: &Truth, audit: &Audit, bufinfo: Option<&Bufinfo>) -> Verification {
    let mut v = Verification::default();
    let rows: BTreeMap<u64, &crate::BufferRow> =
        audit.buffers.iter().map(|b| (b.inode, b)).collect();
    for t in &truth.buffers {
        let what = |k: &str| format!("buffer {} ({}) {k}", t.inode, t.exporter);
        if !contract::exporters_for(&t.exp_name).contains(&t.exporter) {
            v.mismatches.push(format!(
                "{}: exp_name `{}` is not one the catalogue attributes to {}",
                what("exporter"),
                t.exp_name,
                t.exporter
            ));
        }
        let Some(r) = rows.get(&t.inode) else {
            v.mismatches
                .push(format!("{}: not in the audit", what("row")));
            continue;
        };
        v.check(what("size"), r.size_bytes, t.size);
        v.check(what("exp_name"), r.exporter.as_str(), t.exp_name.as_str());
        v.check(what("name"), r.name.as_deref(), t.name.as_deref());
        v.check(
            what("holders"),
            r.fd_refs.keys().copied().collect(),
            t.holders.clone(),
        );
        v.check(
            what("mappers"),
            r.map_refs.keys().copied().collect(),
            t.seen_mappers(),
        );
        v.check(
            what("kernel only"),
            r.kernel_only,
            t.kernel_held_by.is_some(),
        );
    }
    verify_unseen(&mut v, truth, audit);
    for r in audit.buffers.iter() {
        if !truth.buffers.iter().any(|t| t.inode == r.inode) {
            v.mismatches.push(format!(
                "buffer {} ({}, {} bytes): in the audit, not made by the workload",
                r.inode, r.exporter, r.size_bytes
            ));
        }
    }
    verify_bufinfo(&mut v, truth, bufinfo);
    verify_processes(&mut v, truth, audit);
    verify_totals(&mut v, truth, audit);
    verify_contracts(&mut v, truth, audit);
    v
}

/// The mappings maps does not show as the dma-buf (an exporter's mmap put its own backing file
/// in the VMA): the audit must leave them out, and cannot do otherwise.
fn verify_unseen(v: &mut Verification, truth: &Truth, audit: &Audit) {
    for t in &truth.buffers {
        for m in t.mappings.iter().filter(|m| !m.is_dmabuf()) {
            let start = format!("{:x}", m.start);
            let counted = audit
                .processes
                .iter()
                .filter(|p| p.pid == m.pid)
                .flat_map(|p| &p.maps)
                .any(|row| row.start == start);
            v.check(
                format!(
                    "mapping {start} of {} ({}) by {}, which maps shows as {:?}, not the \
                     dma-buf: counted",
                    t.inode, t.exporter, m.pid, m.pathname
                ),
                counted,
                false,
            );
        }
    }
}

fn verify_bufinfo(v: &mut Verification, truth: &Truth, bufinfo: Option<&Bufinfo>) {
    let Some(bi) = bufinfo else {
        v.mismatches
            .push("debugfs dma_buf/bufinfo: not read (is debugfs mounted?)".to_owned());
        return;
    };
    for t in &truth.buffers {
        let what = |k: &str| format!("bufinfo {} ({}) {k}", t.inode, t.exporter);
        let Some(e) = bi.buffers.iter().find(|e| e.inode == Some(t.inode)) else {
            v.mismatches.push(format!("{}: not listed", what("row")));
            continue;
        };
        v.check(what("size"), e.size, t.size);
        v.check(what("exp_name"), e.exp_name.as_str(), t.exp_name.as_str());
        v.check(what("name"), e.name.as_deref(), t.name.as_deref());
        if t.kernel_held_by.is_some() {
            v.check(what("has an attachment"), !e.attached.is_empty(), true);
        }
    }
    for e in &bi.buffers {
        if !e
            .inode
            .is_some_and(|i| truth.buffers.iter().any(|t| t.inode == i))
        {
            v.mismatches.push(format!(
                "bufinfo buffer {:?} ({}, {} bytes): not made by the workload",
                e.inode, e.exp_name, e.size
            ));
        }
    }
    let bytes: u64 = truth.buffers.iter().map(|t| t.size).sum();
    v.check(
        "bufinfo Total objects, bytes".to_owned(),
        bi.total,
        Some((truth.buffers.len() as u64, bytes)),
    );
}

fn verify_processes(v: &mut Verification, truth: &Truth, audit: &Audit) {
    for p in &truth.processes {
        let what = |k: &str| format!("process {}:{} {k}", p.comm, p.pid);
        let held: Vec<_> = truth
            .buffers
            .iter()
            .filter(|b| b.holders.contains(&p.pid) || b.seen_mappers().contains(&p.pid))
            .collect();
        let Some(row) = audit.processes.iter().find(|r| r.pid == p.pid) else {
            if !held.is_empty() {
                v.mismatches
                    .push(format!("{}: not in the audit", what("row")));
            }
            continue;
        };
        v.check(what("comm"), row.comm.as_str(), p.comm.as_str());
        let fds = held.iter().filter(|b| b.holders.contains(&p.pid)).count();
        let maps = held
            .iter()
            .filter(|b| b.seen_mappers().contains(&p.pid))
            .count();
        v.check(what("fds"), row.fds as usize, fds);
        v.check(what("mappings"), row.mappings as usize, maps);
        v.check(
            what("rss (dmabuf_dump)"),
            row.size_bytes,
            held.iter().map(|b| b.size).sum::<u64>(),
        );
        v.check(
            what("pss (dmabuf_dump)"),
            row.pss_bytes,
            held.iter().map(|b| b.size / pids(b).max(1)).sum::<u64>(),
        );
    }
}

/// The processes holding or mapping a buffer (libdmabufinfo's `pids_`).
fn pids(b: &pfnguard_probe::workload::TruthBuffer) -> u64 {
    let mut p: Vec<u32> = b.holders.iter().copied().chain(b.seen_mappers()).collect();
    p.sort_unstable();
    p.dedup();
    p.len() as u64
}

fn verify_totals(v: &mut Verification, truth: &Truth, audit: &Audit) {
    let t = &audit.totals;
    let b = &truth.buffers;
    let sum = |f: &dyn Fn(&&pfnguard_probe::workload::TruthBuffer) -> bool| -> u64 {
        b.iter().filter(f).map(|x| x.size).sum()
    };
    v.check("total buffers".to_owned(), t.buffers, b.len() as u64);
    v.check("total bytes".to_owned(), t.dmabuf_bytes, sum(&|_| true));
    v.check(
        "kernel-only bytes".to_owned(),
        t.kernel_bytes,
        Some(sum(&|x| x.kernel_held_by.is_some())),
    );
    v.check(
        "userspace bytes".to_owned(),
        t.userspace_bytes,
        sum(&|x| x.kernel_held_by.is_none()),
    );
    v.check(
        "total fds".to_owned(),
        t.fds,
        b.iter().map(|x| x.holders.len() as u64).sum(),
    );
    v.check(
        "total mappings".to_owned(),
        t.mappings,
        b.iter().map(|x| x.seen_mappers().len() as u64).sum(),
    );
}

fn verify_contracts(v: &mut Verification, truth: &Truth, audit: &Audit) {
    let release = audit
        .kernel
        .release
        .as_deref()
        .unwrap_or(&truth.kernel_release);
    let kernel = match pfnguard_mm::resolve_kernel(release) {
        Ok(k) => k,
        Err(e) => {
            v.mismatches
                .push(format!("contract: kernel {release} not modeled: {e}"));
            return;
        }
    };
    let mut flagged_total = 0u64;
    for p in &audit.processes {
        for m in &p.maps {
            let Some(t) = truth.buffers.iter().find(|b| b.inode == m.inode) else {
                continue;
            };
            let what = |k: &str| {
                format!(
                    "mapping {}-{} of {}:{} ({}) {k}",
                    m.start, m.end, p.comm, p.pid, t.exporter
                )
            };
            let model = contract::predict_exporter(&kernel, t.exporter);
            let flagged = m.contract.verdict == "breaks";
            flagged_total += u64::from(model.flagged().unwrap_or(false));
            match model.flagged() {
                Some(f) => v.check(what("flagged"), flagged, f),
                None => v
                    .mismatches
                    .push(format!("{}: the model does not map it", what("flagged"))),
            }
            v.check(
                what("GUP users with struct pages"),
                m.contract.gup_struct_page.clone(),
                Some(model.gup_struct_page.clone()),
            );
            if let Some(want) = &model.vmflags {
                let want: Vec<String> = contract::CONTRACT_FLAGS
                    .iter()
                    .filter(|f| want.split_whitespace().any(|x| x == **f))
                    .map(|f| (*f).to_owned())
                    .collect();
                v.check(what("contract VmFlags"), m.contract.flags.clone(), want);
            }
        }
    }
    v.check(
        "mappings breaking the contract".to_owned(),
        audit.totals.mappings_breaking,
        flagged_total,
    );
}
