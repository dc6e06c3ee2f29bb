//! `train-iaf report`: one self-contained HTML page of one or more runs.

mod html;
mod run_files;

use anyhow::{Result, bail};
use clap::Args;
use std::path::PathBuf;

pub use run_files::RunFiles;

/// Options of `train-iaf report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run directories (one or more).
    #[arg(required = true, value_name = "RUN")]
    pub runs: Vec<PathBuf>,
    /// The HTML file to write. Default: `RUN/report.html` for one run, `report.html` in the
    /// current directory for several.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

/// Reads the runs and writes the page; returns its path.
pub fn report(args: &ReportArgs) -> Result<PathBuf> {
    if args.runs.is_empty() {
        bail!("report: give at least one run directory");
    }
    let runs = args
        .runs
        .iter()
        .map(|dir| RunFiles::read(dir))
        .collect::<Result<Vec<_>>>()?;
    let out = match (&args.out, args.runs.as_slice()) {
        (Some(out), _) => out.clone(),
        (None, [one]) => one.join("report.html"),
        (None, _) => PathBuf::from("report.html"),
    };
    let page = html::page(&runs)?;
    vaekit_train::write_atomic(&out, page.as_bytes())?;
    Ok(out)
}
