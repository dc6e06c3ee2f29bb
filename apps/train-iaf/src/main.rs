//! `train-iaf`: train and evaluate VAEs with inverse autoregressive flows on binarized MNIST.
//!
//! Subcommands so far: `data` (find, load and verify MNIST).

mod data;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

// glibc malloc alone costs about 2x on candle's many small allocations.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Train and evaluate VAEs with inverse autoregressive flows on binarized MNIST.
#[derive(Debug, Parser)]
#[command(name = "train-iaf", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Find, load and verify MNIST: counts, mean intensity, canonical checksums.
    Data(data::DataArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Data(args) => data::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
