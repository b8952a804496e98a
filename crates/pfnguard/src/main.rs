//! `pfnguard`: predict what Linux does with a dma-buf mmap, probe what a real kernel does, and
//! compare the two.
#![forbid(unsafe_code)]

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

mod check;
mod cmd;
mod render;

/// Holds Linux kernels to the dma-buf VM_PFNMAP contract.
///
/// DMA buffers are not normal memory: their mmaps should be VM_PFNMAP with special PTEs, so
/// that get_user_pages and all struct-page infrastructure stay away from them. pfnguard models
/// the MM paths a dma-buf mmap touches (Debian 6.1 and 6.12), the dma-buf exporters and the
/// userspace operations that reach GUP, and runs the same operations on a live kernel.
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
    /// A Markdown table (matrix only).
    Markdown,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Predict every op of one exporter on one kernel under one policy.
    ///
    /// Each op runs on a fresh model: export, mmap(MAP_SHARED, PROT_READ|PROT_WRITE), a write to
    /// every page, then the op. Example:
    ///   pfnguard predict --kernel 6.12 --exporter vivid-vmalloc --policy warn
    #[command(verbatim_doc_comment)]
    Predict {
        /// Kernel profile: 6.1 or 6.12 (a `uname -r` string works too).
        #[arg(long)]
        kernel: String,
        /// A catalogue exporter id (see `pfnguard exporters`).
        #[arg(
            long,
            conflicts_with = "exporter_file",
            required_unless_present = "exporter_file"
        )]
        exporter: Option<String>,
        /// A TOML description of your own exporter (see README, "Your own exporter").
        #[arg(long, value_name = "PATH")]
        exporter_file: Option<PathBuf>,
        /// off | warn | require | strict.
        #[arg(long, default_value = "off")]
        policy: String,
        /// Buffer size in pages for catalogue exporters.
        #[arg(long, default_value_t = pfnguard_dmabuf::DEFAULT_PAGES)]
        pages: u64,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Every exporter x every op, for one or more kernels and policies.
    ///
    /// With several policies the first is the baseline and the cells each further policy
    /// changes are marked: which holes `warn` leaves open, which `strict` closes, which
    /// exporters `require` would break. Example:
    ///   pfnguard matrix --kernel 6.12 --policy off --policy warn --policy strict
    #[command(verbatim_doc_comment)]
    Matrix {
        /// Kernel profiles (default: all).
        #[arg(long = "kernel")]
        kernels: Vec<String>,
        /// Policies (default: off).
        #[arg(long = "policy")]
        policies: Vec<String>,
        /// Also include exporters described in TOML files.
        #[arg(long, value_name = "PATH")]
        exporter_file: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// The kernel path the model took for one cell, step by step, with source cites.
    ///
    /// Example: pfnguard explain --kernel 6.1 --exporter vivid-vmalloc --op io_uring_register
    #[command(verbatim_doc_comment)]
    Explain {
        /// Kernel profile.
        #[arg(long)]
        kernel: String,
        /// A catalogue exporter id.
        #[arg(
            long,
            conflicts_with = "exporter_file",
            required_unless_present = "exporter_file"
        )]
        exporter: Option<String>,
        /// A TOML exporter description.
        #[arg(long, value_name = "PATH")]
        exporter_file: Option<PathBuf>,
        /// The op key (see `pfnguard ops`).
        #[arg(long)]
        op: String,
        /// off | warn | require | strict.
        #[arg(long, default_value = "off")]
        policy: String,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Run the ops on the exporters of the running kernel.
    ///
    /// Needs root for most device nodes. Every op runs in a forked, time-bounded child.
    Probe {
        /// Only these exporter ids (default: every exporter the kernel can reach).
        #[arg(long = "exporter")]
        exporters: Vec<String>,
        /// File or block device for the O_DIRECT ops (default: a scratch file).
        #[arg(long, value_name = "PATH")]
        odirect: Option<PathBuf>,
        /// Time bound of one op, in seconds.
        #[arg(long, default_value_t = 10)]
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
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// Compare a probe report with the model, cell by cell (exit status 1 on disagreement).
    Check {
        /// The JSON `pfnguard probe --format json` printed.
        #[arg(long, value_name = "PROBE.json")]
        probe: PathBuf,
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Table)]
        format: Format,
    },
    /// List the catalogue exporters.
    Exporters,
    /// List the op keys and what each one does.
    Ops,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Predict {
            kernel,
            exporter,
            exporter_file,
            policy,
            pages,
            format,
        } => cmd::predict_cmd(
            &kernel,
            exporter.as_deref(),
            exporter_file.as_deref(),
            &policy,
            pages,
            format,
        ),
        Command::Matrix {
            kernels,
            policies,
            exporter_file,
            format,
        } => cmd::matrix(&kernels, &policies, &exporter_file, format),
        Command::Explain {
            kernel,
            exporter,
            exporter_file,
            op,
            policy,
            format,
        } => cmd::explain(
            &kernel,
            exporter.as_deref(),
            exporter_file.as_deref(),
            &op,
            &policy,
            format,
        ),
        Command::Probe {
            exporters,
            odirect,
            timeout,
            create_soft_roce,
            format,
        } => cmd::probe(exporters, odirect, timeout, create_soft_roce, format),
        Command::Check { probe, format } => check::check(&probe, format),
        Command::Exporters => cmd::list_exporters(),
        Command::Ops => cmd::list_ops(),
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "pfnguard: {e:#}");
            ExitCode::from(2)
        }
    }
}
