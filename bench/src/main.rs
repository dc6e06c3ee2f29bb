//! `vaekit-bench`: times the performance issue's workloads in vaekit and, when a Python with
//! PyTorch is found, the same workloads in PyTorch (`bench/torch_reference.py`) in the same
//! run, with the same threads pinned to the same cores; prints each workload's median, the
//! ratio vaekit / PyTorch, GFLOP/s and the fraction of the measured FMA peak.
//!
//! ```text
//! cargo run --release -p vaekit-bench -- [--threads N] [--reps 5] [--rounds 4] [--only NAME,...]
//!                                         [--python PATH | --no-torch] [--json FILE]
//!                                         [--device cpu|cuda[:N]|metal[:N]]
//! ```

mod report;
mod runner;
mod timing;
mod workloads;

use anyhow::Result;
use clap::Parser;
use std::path::PathBuf;
use std::process::ExitCode;

/// Command-line options.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "vaekit against PyTorch on the performance issue's workloads"
)]
pub struct Cli {
    /// Threads on each side (rayon / torch.set_num_threads), pinned to cores 0..N-1; default:
    /// every core.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Timed samples per workload and round; the median of all rounds' samples is reported.
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Rounds: each times every workload on both sides, one side right after the other, the
    /// side going first alternating from round to round (an even count goes first on each
    /// side equally often), so that a ratio's two sides share the machine's minutes even
    /// when its speed drifts.
    #[arg(long, default_value_t = 4)]
    pub rounds: usize,
    /// A sample repeats the workload for at least this many seconds.
    #[arg(long, default_value_t = 0.3)]
    pub min_sample_s: f64,
    /// Untimed iterations before timing.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Only these workloads (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    pub only: Vec<String>,
    /// The Python with PyTorch; default: bench/.venv/bin/python, then python3.
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Do not run the PyTorch side.
    #[arg(long)]
    pub no_torch: bool,
    /// Also write every measurement as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Where vaekit's side runs: cpu, cuda, cuda:N, metal or metal:N (a GPU needs a build
    /// with `--features cuda` or `metal`); PyTorch's side gets `cuda` for a CUDA device.
    /// Every timed iteration ends with a device synchronization on both sides.
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// List the workloads and exit.
    #[arg(long)]
    pub list: bool,
    /// Internal: run vaekit's workloads in this process and print JSON lines.
    #[arg(long, hide = true)]
    pub worker: bool,
    /// Internal, with `--worker`: read workload names from stdin, one per line.
    #[arg(long, hide = true)]
    pub serve: bool,
}

fn main() -> ExitCode {
    // Applied at load time already where the platform allows; idempotent.
    #[cfg(feature = "fast-alloc")]
    vaekit_core::configure_process();
    let cli = Cli::parse();
    if cli.list {
        for w in workloads::ALL {
            println!("{:<28} {}", w.name, w.what);
        }
        return ExitCode::SUCCESS;
    }
    let result: Result<()> = if cli.worker {
        runner::worker(&cli)
    } else {
        runner::run(&cli)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
