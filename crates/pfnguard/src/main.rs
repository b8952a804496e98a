//! `pfnguard`: predict what Linux does with a dma-buf mmap, probe what a real kernel does, and
//! compare the two.
#![forbid(unsafe_code)]

use std::io::{self, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use pfnguard_report::{ExporterId, OpKey};

mod audit;
mod audit_workload;
mod check;
mod cmd;
mod evidence;
mod explore_table;
mod history;
mod matrix;
mod render;
mod report;
mod scenarios;

/// Holds Linux kernels to the dma-buf VM_PFNMAP contract.
///
/// DMA buffers are not normal memory: their mmaps should be VM_PFNMAP with special PTEs, so
/// that get_user_pages (GUP) and all struct-page infrastructure stay away from them. pfnguard
/// models the MM paths a dma-buf mmap touches (every line from 5.10 to 7.3), the dma-buf
/// exporters and the userspace operations that reach GUP, runs the same operations on a live
/// kernel, and compares the two.
///
/// Start with `pfnguard matrix`: per kernel, which exporters hand struct pages to GUP, through
/// which ops, and what each policy of the proposal would close and break.
#[derive(Debug, Parser)]
#[command(name = "pfnguard", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Aligned text for people.
    Table,
    /// JSON for machines.
    Json,
}

/// Output formats of `matrix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum MatrixFormat {
    /// Aligned text for people: the verdict, then the matrix with a legend.
    Table,
    /// JSON for machines: one row per kernel, policy and exporter.
    Json,
    /// Markdown: the verdict and one table per kernel and policy.
    Markdown,
}

/// The proposal's policies (`--policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PolicyArg {
    /// The stock kernels: no check.
    Off,
    /// WARN_ON_ONCE when the populated VMA is not VM_PFNMAP; the mmap proceeds.
    Warn,
    /// The mmap fails with -EINVAL unless the VMA is VM_PFNMAP and not VM_MIXEDMAP.
    Require,
    /// require, plus the VM debug check on every struct-page insert path, plus every PTE special.
    Strict,
}

impl From<PolicyArg> for pfnguard_dmabuf::Policy {
    fn from(p: PolicyArg) -> Self {
        match p {
            PolicyArg::Off => pfnguard_dmabuf::Policy::Off,
            PolicyArg::Warn => pfnguard_dmabuf::Policy::Warn,
            PolicyArg::Require => pfnguard_dmabuf::Policy::Require,
            PolicyArg::Strict => pfnguard_dmabuf::Policy::Strict,
        }
    }
}

fn parse_exporter(s: &str) -> Result<ExporterId, String> {
    s.parse()
        .map_err(|e: pfnguard_report::UnknownExporterId| e.to_string())
}

fn parse_op(s: &str) -> Result<OpKey, String> {
    s.parse()
        .map_err(|e: pfnguard_report::UnknownOpKey| e.to_string())
}

fn parse_pages(s: &str) -> Result<u64, String> {
    let max = pfnguard_dmabuf::MAX_PAGES;
    match s.parse::<u64>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("`{s}` is not a page count from 1 to {max}")),
    }
}

fn parse_kernel(s: &str) -> Result<String, String> {
    pfnguard_mm::resolve_kernel(s)
        .map(|_| s.to_owned())
        .map_err(|e| e.to_string())
}

const KERNEL_HELP: &str = "A kernel from 5.10 to 7.3: a line (5.10, 6.6, 7.3; its newest point \
release), an upstream version (6.12.117) or a `uname -r` release (6.12.117+deb13-amd64, \
5.10.0-32-amd64, 6.18.44-fc-v1045). Debian releases get Debian's amd64 config; other names \
every modeled exporter unless --config says otherwise";

const CONFIG_HELP: &str = "The kernel's build configuration: a .config file such as \
/boot/config-$(uname -r). Decides which exporters exist (CONFIG_UDMABUF, CONFIG_DMABUF_HEAPS, \
the DRM and V4L2 drivers)";

/// Which cells `matrix` and `report` show: kernels x policies x exporters.
#[derive(Debug, clap::Args)]
struct Cells {
    /// Kernels (default: every modeled line). Same forms as `predict --kernel`.
    #[arg(long = "kernel", value_parser = parse_kernel)]
    kernels: Vec<String>,
    #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
    config: Option<PathBuf>,
    /// Policies (default: off, warn, require, strict); the first is the baseline each further
    /// one is compared with.
    #[arg(long = "policy", value_enum)]
    policies: Vec<PolicyArg>,
    /// Also include exporters described in TOML files.
    #[arg(long, value_name = "PATH")]
    exporter_file: Vec<PathBuf>,
    /// Buffer size in pages for catalogue exporters (1 to 65536; default 4).
    #[arg(long, value_parser = parse_pages)]
    pages: Option<u64>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Predict every op of one exporter on one kernel under one policy.
    ///
    /// Each op runs on a fresh model: export, mmap(MAP_SHARED, PROT_READ|PROT_WRITE), a write to
    /// every page, then the op. Example:
    ///   pfnguard predict --kernel 6.12 --exporter vivid-vmalloc --policy warn
    ///   pfnguard predict --kernel 6.1 --exporter-file examples/exporters/vm_insert_page.toml
    #[command(verbatim_doc_comment)]
    Predict {
        #[arg(long, value_parser = parse_kernel, help = KERNEL_HELP)]
        kernel: String,
        #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
        config: Option<PathBuf>,
        /// A catalogue exporter id (see `pfnguard exporters`).
        #[arg(long, value_parser = parse_exporter, conflicts_with = "exporter_file", required_unless_present = "exporter_file")]
        exporter: Option<ExporterId>,
        /// A TOML description of your own exporter (docs/exporter-files.md); its `pages` key
        /// sets the buffer size.
        #[arg(long, value_name = "PATH")]
        exporter_file: Option<PathBuf>,
        /// The proposal's policy in force.
        #[arg(long, value_enum, default_value_t = PolicyArg::Off)]
        policy: PolicyArg,
        /// Buffer size in pages (1 to 65536; default 4) for catalogue exporters.
        #[arg(long, value_parser = parse_pages, conflicts_with = "exporter_file")]
        pages: Option<u64>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// The verdict and the full matrix: every exporter x every op, per kernel and policy.
    ///
    /// Leads with one line per exporter and kernel: whether it hands struct pages to GUP, through
    /// which ops, and what each further policy would close, break and warn about. Then the
    /// matrix, cells a real kernel confirmed marked. Without --policy, all four policies are
    /// judged and the matrix shows `off`; with several, the first is the baseline and the
    /// cells each further policy changes are marked. Examples:
    ///   pfnguard matrix
    ///   pfnguard matrix --kernel 6.12 --policy off --policy warn --policy strict
    ///   pfnguard matrix --format json | jq '.[] | select(.gup_struct_pages != [])'
    #[command(verbatim_doc_comment)]
    Matrix {
        #[command(flatten)]
        cells: Cells,
        /// Output format.
        #[arg(long, value_enum, default_value_t = MatrixFormat::Table)]
        format: MatrixFormat,
    },
    /// One exporter's ops on every line from 5.10 to 7.3: the value on each line, the line where
    /// it changed, and the kernel fact (release, commit, file:function before and after) that
    /// changed it.
    ///
    /// Each line runs at its newest point release, with every modeled exporter built unless
    /// --config names a build. Examples:
    ///   pfnguard history --exporter vgem
    ///   pfnguard history --exporter udmabuf-shmem --op odirect_read --format json
    ///   pfnguard history --exporter vivid-vmalloc --op io_uring_register --policy strict
    #[command(verbatim_doc_comment)]
    History {
        /// A catalogue exporter id (see `pfnguard exporters`).
        #[arg(long, value_parser = parse_exporter, conflicts_with = "exporter_file", required_unless_present = "exporter_file")]
        exporter: Option<ExporterId>,
        /// A TOML exporter description.
        #[arg(long, value_name = "PATH")]
        exporter_file: Option<PathBuf>,
        /// Only these ops (repeat; default: every op).
        #[arg(long = "op", value_parser = parse_op)]
        ops: Vec<OpKey>,
        /// The proposal's policy in force.
        #[arg(long, value_enum, default_value_t = PolicyArg::Off)]
        policy: PolicyArg,
        /// Buffer size in pages for catalogue exporters (1 to 65536; default 4).
        #[arg(long, value_parser = parse_pages, conflicts_with = "exporter_file")]
        pages: Option<u64>,
        #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
        config: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// The kernel path the model took for one cell, step by step, with source cites.
    ///
    /// Example: pfnguard explain --kernel 6.1 --exporter vivid-vmalloc --op io_uring_register
    /// Long traces keep their first 800 and last 200 steps.
    #[command(verbatim_doc_comment)]
    Explain {
        #[arg(long, value_parser = parse_kernel, help = KERNEL_HELP)]
        kernel: String,
        #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
        config: Option<PathBuf>,
        /// A catalogue exporter id.
        #[arg(long, value_parser = parse_exporter, conflicts_with = "exporter_file", required_unless_present = "exporter_file")]
        exporter: Option<ExporterId>,
        /// A TOML exporter description.
        #[arg(long, value_name = "PATH")]
        exporter_file: Option<PathBuf>,
        /// The op (see `pfnguard ops`).
        #[arg(long, value_parser = parse_op)]
        op: OpKey,
        /// The proposal's policy in force.
        #[arg(long, value_enum, default_value_t = PolicyArg::Off)]
        policy: PolicyArg,
        /// Buffer size in pages for catalogue exporters (1 to 65536; default 4).
        #[arg(long, value_parser = parse_pages, conflicts_with = "exporter_file")]
        pages: Option<u64>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Run the ops on the exporters of the running kernel.
    ///
    /// Needs root for most device nodes. Every op runs in a forked, time-bounded child; every
    /// fd, mapping and child is released. The report records the dma-buf mmap check level
    /// (mmap_check) when the kernel has /sys/module/dma_buf/parameters/mmap_check. The host is
    /// not changed unless --kmsg or --create-soft-roce asks. Example:
    ///   sudo pfnguard probe --format json > probe.json && pfnguard check --probe probe.json
    ///   sudo pfnguard probe --kmsg --exporter vgem     # which ops made the kernel WARN, and where
    #[command(verbatim_doc_comment)]
    Probe {
        /// Only these exporters (default: every exporter the kernel can reach).
        #[arg(long = "exporter", value_parser = parse_exporter)]
        exporters: Vec<ExporterId>,
        /// File or block device for the O_DIRECT ops (default: a scratch file). odirect_read
        /// reads its first 4 KiB; odirect_write writes back the bytes it read there first.
        #[arg(long, value_name = "PATH")]
        odirect: Option<PathBuf>,
        /// Time bound of one op, in seconds.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
        timeout: u64,
        /// For rdma_reg_mr on a host without an RDMA device: create the soft-RoCE device rxe0
        /// over IFACE (without IFACE: the first non-loopback interface that is up). This changes
        /// host state while the probe runs; the device is removed when the probe ends. Needs
        /// the rdma_rxe module loaded and CAP_NET_ADMIN. Without this flag no device is created
        /// and rdma_reg_mr is `unavailable: ENODEV` on such a host.
        #[arg(
            long,
            value_name = "IFACE",
            num_args = 0..=1,
            require_equals = true,
            default_missing_value = ""
        )]
        create_soft_roce: Option<String>,
        /// Read the kernel log (/dev/kmsg) around every op, export included, and record the
        /// kernel WARNs each op caused: per row, warned_at (op -> file:function of each WARN
        /// site) and the raw log lines in detail.kmsg. This changes host state: before each op
        /// it writes the line "pfnguard: EXPORTER OP" into the kernel log, and writes 1 to
        /// /sys/kernel/debug/clear_warn_once (when debugfs is mounted there), which re-arms
        /// every WARN_ONCE of the running kernel. Without that file a WARN_ONCE shows only the
        /// first time it fires since boot (noted in detail.kmsg_notes). Needs CAP_SYSLOG when
        /// kernel.dmesg_restrict is set. Without this flag neither is touched and warned_at is
        /// absent.
        #[arg(long)]
        kmsg: bool,
        /// Also run the scenario files under DIR on the kernel's exporters: for each scenario
        /// whose every step userspace can perform, its interleavings (all of them, at most 24
        /// spread over them) driven in real processes, each step's value recorded in the
        /// report's `scenarios` section; the others, and those whose exporter is not reachable,
        /// are recorded as skipped with the reason.
        #[arg(long, value_name = "DIR")]
        scenarios: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Compare probe reports with the model, cell by cell.
    ///
    /// Counts only cells both sides measured; cells skipped on both sides and cells the system
    /// could not measure are counted apart. The model runs the policy the kernel ran (the
    /// report's mmap_check, from the kernel/dma-buf-mmap-check series; off without it). When
    /// the probe read the kernel log (probe --kmsg), a cell agrees only if the kernel's WARN
    /// sites during the op are the model's too. Exit status: 0 when every compared cell agrees,
    /// 1 when a cell disagrees, an op is missing, or nothing was compared, 2 on bad input.
    ///
    /// Examples:
    ///   pfnguard check --probe reports/7.3.4+deb13-amd64/probe.json
    ///   pfnguard check --probe reports/patched/off/probe.json --config reports/patched/config \
    ///       --against reports/7.3.4+deb13-amd64/probe.json
    #[command(verbatim_doc_comment)]
    Check {
        /// The JSON `pfnguard probe --format json` printed (repeat for several kernels).
        #[arg(long, value_name = "PROBE.json", required = true)]
        probe: Vec<PathBuf>,
        /// The probed kernels' build configuration (a .config), instead of the one their release
        /// names (Debian's amd64 config for Debian's kernels, every modeled option otherwise).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Also compare every report with this kernel's report, cell by cell: cells both
        /// kernels measured must be equal (a patched kernel at `off` against the kernel it
        /// patches).
        #[arg(long, value_name = "PROBE.json")]
        against: Option<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// List the catalogue exporters.
    Exporters {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// List the kernel facts: each behaviour change between 5.10 and 7.3 the model runs, with the
    /// release that made it (and stable backports). With --kernel, the facts in force there;
    /// --format json adds the commit and the file:function before and after.
    ///
    /// Examples:
    ///   pfnguard facts
    ///   pfnguard facts --kernel 6.6.50 --format json
    #[command(verbatim_doc_comment)]
    Facts {
        /// Only the facts in force at this kernel (same forms as `predict --kernel`).
        #[arg(long, value_parser = parse_kernel)]
        kernel: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Run scenario files: every interleaving of their actors' steps, each verdict checked.
    ///
    /// A scenario (TOML, docs/scenarios.md) names kernels, policies, an exporter and actors
    /// (processes, forked children, the exporter, an importing device) with their steps, and
    /// the verdict each asserted property must get: never, sometimes or always (herd7's
    /// Never/Sometimes/Always) over the complete runs. Every interleaving is visited once per
    /// distinct model state. One line per scenario, kernel, policy and asserted property:
    /// verdict, expected verdict, states; under each `sometimes` and each verdict that differs,
    /// the shortest run that shows it with the kernel path of its last step. Times go to stderr;
    /// stdout is the same on every run. Exit status: 0 every verdict as expected, 1 a verdict
    /// differs (or a search was cut by --max-states), 2 a malformed scenario (file:line: key).
    ///
    /// Examples:
    ///   pfnguard run scenarios/
    ///   pfnguard run scenarios/odirect-in-flight-close.toml --format json
    #[command(verbatim_doc_comment)]
    Run {
        /// Scenario files, or directories searched for *.toml (exporters/ directories skipped).
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
        /// Stop a search after this many distinct states (its verdicts are then incomplete).
        #[arg(long, default_value_t = 1_000_000)]
        max_states: usize,
        /// Worker threads (0: every core). The output does not depend on it.
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Every sequence of up to --depth steps over the whole step alphabet for one exporter:
    /// which properties are reachable, with one shortest witness each.
    ///
    /// The actors are the process that exported the buffer (all of its steps, page 0), an
    /// importing device `dev` (attach, attach_dynamic, map, unmap, detach; --no-importer
    /// leaves it out) and the exporter (evict, move_notify); the buffer has one page unless
    /// --pages says. Opt-in letters (each multiplies the states): --fork adds `fork c` and a
    /// child `c` with the process steps over the inherited mapping; --second-page adds the
    /// page steps on page 1 (the buffer then has at least two pages).
    ///
    /// With --all: the table of every catalogue exporter (and --exporter-file) x every kernel
    /// line x every policy, narrowed by --exporter, --kernel and --policy (each repeatable):
    /// what can go wrong with each exporter, the lines where that changes, and what each policy
    /// closes. Lines with the same facts and build are explored once.
    /// Examples:
    ///   pfnguard explore --exporter udmabuf-shmem --kernel 6.12
    ///   pfnguard explore --exporter vgem --kernel 6.1 --policy strict --depth 5 --format json
    ///   pfnguard explore --all --format markdown
    ///   pfnguard explore --all --exporter vivid-vmalloc --exporter udmabuf-shmem --policy off
    #[command(verbatim_doc_comment)]
    Explore {
        /// The table of every exporter x kernel line x policy (see above).
        #[arg(long)]
        all: bool,
        #[arg(long = "kernel", value_name = "KERNEL", value_parser = parse_kernel, help = KERNEL_HELP, required_unless_present = "all")]
        kernels: Vec<String>,
        #[arg(long, value_name = "FILE", help = CONFIG_HELP)]
        config: Option<PathBuf>,
        /// A catalogue exporter id (see `pfnguard exporters`); repeatable with --all.
        #[arg(long = "exporter", value_name = "ID", value_parser = parse_exporter, required_unless_present_any = ["exporter_files", "all"])]
        exporters: Vec<ExporterId>,
        /// A TOML exporter description; repeatable with --all.
        #[arg(long = "exporter-file", value_name = "PATH")]
        exporter_files: Vec<PathBuf>,
        /// The proposal's policy in force (default: off; with --all, all four); repeatable with
        /// --all.
        #[arg(long = "policy", value_enum)]
        policies: Vec<PolicyArg>,
        /// Buffer size in pages for catalogue exporters (1 to 65536; default 1).
        #[arg(long, value_parser = parse_pages)]
        pages: Option<u64>,
        /// The longest step sequence (1 to 12).
        #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u64).range(1..=12))]
        depth: u64,
        /// Add `fork c` and the child's steps over the inherited mapping (opt-in: more states).
        #[arg(long)]
        fork: bool,
        /// Add the page steps on page 1; at least two pages (opt-in: more states).
        #[arg(long)]
        second_page: bool,
        /// Leave out the importing device `dev` (attach, attach_dynamic, map, unmap, detach).
        #[arg(long)]
        no_importer: bool,
        /// Stop after this many distinct states (per exporter, kernel and policy).
        #[arg(long, default_value_t = 1_000_000)]
        max_states: usize,
        /// Worker threads (0: every core). The output does not depend on it.
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Output format (markdown: with --all only).
        #[arg(long, value_enum, default_value_t = MatrixFormat::Table)]
        format: MatrixFormat,
    },
    /// The dma-bufs of this system: who holds and maps each one, what it costs each process,
    /// and whether each mapping keeps the VM_PFNMAP contract.
    ///
    /// Reads what Android's dmabuf_dump reads (/proc/PID/fd and fdinfo, maps, smaps), plus
    /// /proc/PID/pagemap, debugfs dma_buf/bufinfo and sysfs kernel/dmabuf/buffers for the
    /// buffers no process holds. Changes nothing on the system. As a normal user it reports the
    /// processes it can read and lists the others with the reason; root reads everything (and
    /// only root sees PFNs in pagemap and debugfs). Processes that exit during the scan are
    /// listed, never an error.
    ///
    /// Views, as dmabuf_dump's: per process (default; Rss = the size of each buffer it holds
    /// or maps, Pss = that size divided by the processes holding or mapping it, plus smaps'
    /// own Rss of its /dmabuf: mappings), --buffers (per buffer and per exporter), --all
    /// (buffer x process: `fds(maps) refs`). Per mapping: the VmFlags the contract is about
    /// (pf io mm de dd), pagemap's present PTEs and how many have a struct page behind them,
    /// and the GUP users (O_DIRECT, io_uring, RDMA, KVM, vmsplice, process_vm_readv,
    /// /proc/PID/mem) that the model of this kernel and exporter says get struct pages. A
    /// mapping without pf (or with mm) is flagged with the model's account of the exporter's
    /// mmap; an exporter the model lacks is "not modeled".
    ///
    /// Examples:
    ///   sudo pfnguard audit                          # per process, every process
    ///   pfnguard audit --buffers --format csv        # per buffer, for a spreadsheet
    ///   pfnguard audit --all                         # buffer x process grid
    ///   pfnguard audit --watch 5                     # what grew every 5 s (fds, mappings, kB)
    ///   pfnguard audit --format prometheus > /var/lib/node_exporter/textfile/dmabuf.prom
    ///   sudo pfnguard audit --capture /tmp/snap      # snapshot what it reads, replay anywhere:
    ///   pfnguard audit --replay /tmp/snap
    #[command(verbatim_doc_comment)]
    Audit {
        /// Per buffer (dmabuf_dump -b): holders, mappers, Pss, attached devices, the model's
        /// GUP users; then per exporter.
        #[arg(long, conflicts_with = "all")]
        buffers: bool,
        /// Buffer x process (dmabuf_dump -a): `fds(maps) refs` per process.
        #[arg(long)]
        all: bool,
        /// The procfs to read.
        #[arg(long, value_name = "DIR", default_value = "/proc")]
        proc: PathBuf,
        /// The sysfs to read.
        #[arg(long, value_name = "DIR", default_value = "/sys")]
        sys: PathBuf,
        /// The debugfs to read.
        #[arg(long, value_name = "DIR", default_value = "/sys/kernel/debug")]
        debugfs: PathBuf,
        /// Read a directory --capture wrote (DIR/proc, DIR/sys, DIR/debugfs, and the refusals
        /// the capturing user met, DIR/unreadable.tsv).
        #[arg(long, value_name = "DIR", conflicts_with_all = ["proc", "sys", "debugfs"])]
        replay: Option<PathBuf>,
        /// The kernel the model runs (default: the procfs's sys/kernel/osrelease). Same forms
        /// as `predict --kernel`.
        #[arg(long, value_parser = parse_kernel)]
        kernel: Option<String>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = audit::AuditFormat::Table)]
        format: audit::AuditFormat,
        /// Sample again every SECONDS and show what grew (fds, mappings, kB) per process and
        /// per exporter since the previous sample: as a table, JSON lines or CSV rows
        /// (sample,seconds,what,key,fds,mappings,bytes). Not with --format prometheus, whose
        /// textfile is one snapshot: let Prometheus compute growth (delta()).
        #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86400))]
        watch: Option<u64>,
        /// With --watch: stop after N samples (default: until interrupted).
        #[arg(long, value_name = "N", requires = "watch", value_parser = clap::value_parser!(u64).range(1..))]
        count: Option<u64>,
        /// Copy exactly the files the audit reads into DIR (new or empty), as a fixture any
        /// machine can replay with --replay DIR.
        #[arg(long, value_name = "DIR")]
        capture: Option<PathBuf>,
        /// Hold the audit to the ground truth `pfnguard audit-workload` wrote (its truth.json):
        /// every figure, debugfs bufinfo and each mapping's contract against the model; the
        /// verdict goes to stderr, exit status 1 on any mismatch.
        #[arg(long, value_name = "FILE", conflicts_with = "watch")]
        truth: Option<PathBuf>,
    },
    /// Make a known set of dma-bufs, audit them and check the audit (the QEMU guests' proof).
    ///
    /// Exports a buffer from every reachable exporter, shares them with a fork child and over
    /// SCM_RIGHTS with an exec'd process, names and maps some, leaves one held only by a DRM
    /// importer; then audits the system while they are held, captures it, and compares every
    /// figure with what it did and with debugfs dma_buf/bufinfo. Writes truth.json, capture/,
    /// audit.json, audit.txt and verify.txt into DIR. Run as root with debugfs mounted, in a
    /// throwaway guest (harness/realkernel does).
    #[command(hide = true)]
    AuditWorkload {
        /// Directory to write into (new or empty).
        #[arg(long, value_name = "DIR", required_unless_present = "receiver")]
        out: Option<PathBuf>,
        /// Internal: the exec'd process that receives fds on stdin (a unix socket).
        #[arg(long, hide = true)]
        receiver: bool,
    },
    /// One self-contained HTML page to look at rather than read: the heatmap of every kernel
    /// line, the timeline of each exporter, the proposal's policies, single cells explained
    /// with a picture of the state, and the explorer's witnesses.
    ///
    /// The page (inline CSS and SVG, a little plain JavaScript for filtering, nothing fetched)
    /// has, for the kernels and policies asked for (default: every line from 5.10 to 7.3, all
    /// four policies):
    ///   * the heatmap: exporters x ops, one panel per kernel line, each cell coloured by what
    ///     happened (GUP got a struct page, refused, fault, plain success, not run) with
    ///     `matrix`'s text in it and the exact value on hover; cells a real kernel confirmed
    ///     (reports/) marked +;
    ///   * the timeline: per exporter, `history`'s changes and the kernel fact and commit
    ///     behind each;
    ///   * the proposal: the heatmap under each further policy with the changed cells
    ///     outlined, what each policy closes, breaks and warns about, and the patched kernel
    ///     booted at each level (reports/patched) beside the model;
    ///   * one cell, explained: `explain`'s steps and an SVG of the VMA, PTEs, frames and
    ///     holders at the end of the op, for every cell (cells with the same run share one;
    ///     carried compressed and unpacked by the browser when a cell's link is followed;
    ///     --explain-kernel narrows them to some kernels, the proposal's verdict tables to
    ///     the same ones, by default the newest);
    ///   * explorer witnesses: `explore`'s shortest witness of each reachable property, with
    ///     the state after each step, for a few exporters (default: i915, vgem, udmabuf-shmem
    ///     and vivid-vmalloc on 6.6, depth 4).
    ///
    /// The file is written whole or not at all (a temporary file, then a rename).
    /// Examples:
    ///   pfnguard report --out report.html
    ///   pfnguard report --kernel 6.1 --kernel 6.12 --policy off --policy strict --out r.html
    ///   pfnguard report --exporter-file my-driver.toml --explain-kernel 6.12 --out r.html
    #[command(verbatim_doc_comment)]
    Report {
        /// Where to write the page (its directory must exist).
        #[arg(long, value_name = "FILE.html")]
        out: PathBuf,
        #[command(flatten)]
        cells: Cells,
        /// Kernels whose cells get explanations and whose verdict the proposal section
        /// tabulates (repeat; each must be one of the page's; default: explanations for every
        /// kernel of the page, verdicts of the newest).
        #[arg(long = "explain-kernel", value_name = "KERNEL", value_parser = parse_kernel)]
        explain_kernels: Vec<String>,
        /// Exporters whose explorer witnesses the page shows (repeat; default: i915, vgem,
        /// udmabuf-shmem, vivid-vmalloc).
        #[arg(long = "witness-exporter", value_name = "ID", value_parser = parse_exporter)]
        witness_exporters: Vec<ExporterId>,
        /// The explorer's depth for the witnesses (1 to 8; the shortest witnesses of the
        /// default exporters are at most 3 steps long).
        #[arg(long, default_value_t = report::WITNESS_DEPTH as u64, value_parser = clap::value_parser!(u64).range(1..=8))]
        witness_depth: u64,
        /// The kernel of the witnesses (default: 6.6, where struct pages still reach GUP).
        /// Same forms as `predict --kernel`.
        #[arg(long, value_name = "KERNEL", value_parser = parse_kernel)]
        witness_kernel: Option<String>,
    },
    /// List the ops and what each one does.
    Ops {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
}

fn run(cli: Cli, out: &mut dyn io::Write) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Predict {
            kernel,
            config,
            exporter,
            exporter_file,
            policy,
            pages,
            format,
        } => cmd::predict_cmd(
            out,
            &cmd::kernel(&kernel, cmd::load_config(config.as_deref())?.as_ref())?,
            cmd::ExporterArg::new(exporter, exporter_file)?,
            policy.into(),
            pages,
            format,
        ),
        Command::Matrix { cells, format } => matrix::matrix(
            out,
            &cells.kernels,
            cmd::load_config(cells.config.as_deref())?.as_ref(),
            &cells
                .policies
                .into_iter()
                .map(Into::into)
                .collect::<Vec<_>>(),
            &cells.exporter_file,
            cells.pages,
            format,
        ),
        Command::Explain {
            kernel,
            config,
            exporter,
            exporter_file,
            op,
            policy,
            pages,
            format,
        } => cmd::explain(
            out,
            &cmd::kernel(&kernel, cmd::load_config(config.as_deref())?.as_ref())?,
            cmd::ExporterArg::new(exporter, exporter_file)?,
            op,
            policy.into(),
            pages,
            format,
        ),
        Command::History {
            exporter,
            exporter_file,
            ops,
            policy,
            pages,
            config,
            format,
        } => history::history(
            out,
            cmd::ExporterArg::new(exporter, exporter_file)?,
            &ops,
            policy.into(),
            pages,
            cmd::load_config(config.as_deref())?.as_ref(),
            format,
        ),
        Command::Probe {
            exporters,
            odirect,
            timeout,
            create_soft_roce,
            kmsg,
            scenarios,
            format,
        } => cmd::probe(
            out,
            cmd::ProbeArgs {
                exporters,
                odirect,
                timeout,
                create_soft_roce,
                kmsg,
                scenarios,
            },
            format,
        ),
        Command::Check {
            probe,
            config,
            against,
            format,
        } => check::check(
            out,
            &probe,
            cmd::load_config(config.as_deref())?.as_ref(),
            against.as_deref(),
            format,
        ),
        Command::Run {
            paths,
            max_states,
            threads,
            format,
        } => scenarios::run(out, &paths, format, max_states, threads),
        Command::Explore {
            all,
            kernels,
            config,
            exporters,
            exporter_files,
            policies,
            pages,
            depth,
            fork,
            second_page,
            no_importer,
            max_states,
            threads,
            format,
        } => {
            let config = cmd::load_config(config.as_deref())?;
            let policies: Vec<pfnguard_dmabuf::Policy> =
                policies.into_iter().map(Into::into).collect();
            let alphabet = pfnguard_scenario::Alphabet {
                fork,
                second_page,
                importer: !no_importer,
            };
            if all {
                return explore_table::explore_all(
                    out,
                    &explore_table::Cases {
                        kernels: &kernels,
                        config: config.as_ref(),
                        exporters: &exporters,
                        exporter_files: &exporter_files,
                        policies: &policies,
                        pages,
                    },
                    depth as usize,
                    alphabet,
                    max_states,
                    threads,
                    format,
                );
            }
            let one = |what: &str, n: usize| -> anyhow::Result<()> {
                if n > 1 {
                    anyhow::bail!(
                        "{what} given {n} times: one unless --all (the table of every case)"
                    )
                }
                Ok(())
            };
            one("--kernel", kernels.len())?;
            one("--policy", policies.len())?;
            one(
                "--exporter and --exporter-file",
                exporters.len() + exporter_files.len(),
            )?;
            let format = match format {
                MatrixFormat::Table => Format::Table,
                MatrixFormat::Json => Format::Json,
                MatrixFormat::Markdown => {
                    anyhow::bail!("--format markdown is for the table of --all")
                }
            };
            if pages.is_some() && !exporter_files.is_empty() {
                anyhow::bail!(
                    "--pages is for catalogue exporters: an exporter file gives its own size"
                )
            }
            let kernel = kernels.into_iter().next().unwrap_or_default();
            scenarios::explore(
                out,
                &kernel,
                &cmd::kernel(&kernel, config.as_ref())?,
                cmd::ExporterArg::new(
                    exporters.first().copied(),
                    exporter_files.into_iter().next(),
                )?,
                policies
                    .first()
                    .copied()
                    .unwrap_or(pfnguard_dmabuf::Policy::Off),
                pages,
                depth as usize,
                alphabet,
                max_states,
                threads,
                format,
            )
        }
        Command::Audit {
            buffers,
            all,
            proc,
            sys,
            debugfs,
            replay,
            kernel,
            format,
            watch,
            count,
            capture,
            truth,
        } => {
            let root = match replay {
                Some(dir) => pfnguard_audit::Root::fixture(&dir),
                None => pfnguard_audit::Root {
                    proc,
                    sys,
                    debugfs,
                    denied: Default::default(),
                },
            };
            let view = if buffers {
                audit::View::Buffers
            } else if all {
                audit::View::All
            } else {
                audit::View::Process
            };
            audit::audit(
                out,
                &audit::AuditArgs {
                    view,
                    root,
                    kernel,
                    format,
                    watch,
                    count,
                    capture,
                    truth,
                },
            )
        }
        Command::AuditWorkload { out, receiver } => match (receiver, out) {
            (true, _) => audit_workload::receiver(),
            (false, Some(dir)) => audit_workload::run(&dir),
            (false, None) => anyhow::bail!("audit-workload needs --out DIR"),
        },
        Command::Report {
            out: path,
            cells,
            explain_kernels,
            witness_exporters,
            witness_depth,
            witness_kernel,
        } => report::report(
            out,
            &report::Args {
                kernels: cells.kernels,
                config: cmd::load_config(cells.config.as_deref())?,
                policies: cells.policies.into_iter().map(Into::into).collect(),
                files: cells.exporter_file,
                pages: cells.pages,
                explain_kernels,
                witness_exporters,
                witness_depth: witness_depth as usize,
                witness_kernel,
                out: path,
            },
        ),
        Command::Exporters { format } => cmd::list_exporters(out, format),
        Command::Ops { format } => cmd::list_ops(out, format),
        Command::Facts { kernel, format } => {
            let k = kernel.map(|k| cmd::kernel(&k, None)).transpose()?;
            cmd::list_facts(out, k.as_ref(), format)
        }
    }
}

/// Whether an error is stdout closed under us (`pfnguard matrix | head`).
fn broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
    })
}

/// mimalloc: the explorer builds and drops millions of small copies of model state on every
/// core, where glibc's malloc costs a fifth of its time and its arenas' locks stop a second
/// core from helping.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let r = run(cli, &mut out).and_then(|code| {
        out.flush()?;
        Ok(code)
    });
    match r {
        Ok(code) => code,
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "pfnguard: {e:#}");
            ExitCode::from(2)
        }
    }
}
