//! `train-iaf data`: find, load and verify MNIST.

use anyhow::{Context, Result};
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;
use vaekit_datasets::{DataOrigin, ImageSet, Mnist, SourceFile, resolve_mnist_dir};

/// Arguments of `train-iaf data`.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// Directory holding the four MNIST IDX files (gzipped or not). Without it: $VAEKIT_DATA_DIR,
    /// then the cache, then (built with `--features hub`) the Hugging Face Hub.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Exit with status 2 unless all four files carry the canonical MNIST checksums.
    #[arg(long)]
    require_canonical: bool,
}

#[derive(Debug, Serialize)]
struct SplitReport {
    count: usize,
    rows: usize,
    cols: usize,
    mean_intensity: f64,
    label_counts: Vec<usize>,
}

impl SplitReport {
    fn of(set: &ImageSet) -> Self {
        Self {
            count: set.len(),
            rows: set.rows(),
            cols: set.cols(),
            mean_intensity: set.mean_intensity(),
            label_counts: set.label_counts(),
        }
    }
}

#[derive(Debug, Serialize)]
struct DataReport {
    dir: PathBuf,
    origin: DataOrigin,
    train: SplitReport,
    test: SplitReport,
    files: Vec<SourceFile>,
    canonical: bool,
}

/// Runs the subcommand; the exit code is 2 when `--require-canonical` fails.
pub fn run(args: &DataArgs) -> Result<ExitCode> {
    let found = resolve_mnist_dir(args.data_dir.as_deref()).context("cannot find MNIST")?;
    let mnist = Mnist::load_dir(&found.dir)
        .with_context(|| format!("cannot load MNIST from {}", found.dir.display()))?;
    let report = DataReport {
        dir: found.dir.clone(),
        origin: found.origin,
        train: SplitReport::of(&mnist.train),
        test: SplitReport::of(&mnist.test),
        canonical: mnist.is_canonical(),
        files: mnist.files,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&report);
    }
    if args.require_canonical && !report.canonical {
        eprintln!("error: the files are not the canonical MNIST files (--require-canonical)");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

fn print_text(r: &DataReport) {
    println!("MNIST in {} ({:?})", r.dir.display(), r.origin);
    for (name, s) in [("train", &r.train), ("test", &r.test)] {
        println!(
            "  {name:<5} {:>6} images of {}x{}, mean intensity {:.5}, label counts {:?}",
            s.count, s.rows, s.cols, s.mean_intensity, s.label_counts
        );
    }
    for f in &r.files {
        let verdict = if f.canonical {
            "canonical"
        } else {
            "NOT canonical"
        };
        println!("  {}  md5 {}  {verdict}", f.path.display(), f.md5);
    }
    if r.canonical {
        println!("All four files match the canonical MNIST checksums.");
    } else {
        println!("Some files differ from canonical MNIST (fine for fixtures; see the md5 column).");
    }
}
