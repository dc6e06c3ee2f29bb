//! `vaekit-bench`: times the performance issue's workloads in vaekit and, when a Python with
//! PyTorch or JAX is found, the same workloads in PyTorch (`bench/torch_reference.py`) and in
//! JAX with each step under `jax.jit` (`bench/jax_reference.py`), in the same run, with the
//! same threads pinned to the same cores; prints each workload's median, the ratios vaekit /
//! PyTorch and vaekit / JAX, GFLOP/s and the fraction of the measured FMA peak.
//!
//! ```text
//! cargo run --release -p vaekit-bench -- [--threads N] [--reps 5] [--rounds 6] [--only NAME,...]
//!                                         [--python PATH] [--no-torch] [--no-jax] [--json FILE]
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
    about = "vaekit against PyTorch and JAX on the performance issue's workloads"
)]
pub struct Cli {
    /// Threads on each side (rayon / torch.set_num_threads), pinned to cores 0..N-1; default:
    /// every core.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Timed samples per workload and round; the median of all rounds' samples is reported.
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// Rounds: each times every workload on every running side, one side right after the
    /// other, the side going first rotating from round to round (a multiple of the number of
    /// sides, two or three, puts each side in each place equally often; the default 6 suits
    /// both), so that a ratio's sides share the machine's minutes even when its speed drifts.
    #[arg(long, default_value_t = 6)]
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
    /// The Python with PyTorch and JAX; default: bench/.venv/bin/python, then python3 (each
    /// peer takes the first that imports it).
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// Do not run the PyTorch side.
    #[arg(long)]
    pub no_torch: bool,
    /// Do not run the JAX side (it runs on the CPU only).
    #[arg(long)]
    pub no_jax: bool,
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
