//! What the report reads from a run directory.

use crate::metrics::{EpochMetrics, read_metrics};
use anyhow::{Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A run directory's files, as the report shows them.
pub struct RunFiles {
    /// The directory.
    pub dir: PathBuf,
    /// `config.json`.
    pub config: Value,
    /// `results.json`, when training has finished.
    pub results: Option<Value>,
    /// `metrics.jsonl`.
    pub metrics: Vec<EpochMetrics>,
    /// `eval-*.json` files: name and contents, sorted by name.
    pub evals: Vec<(String, Value)>,
    /// `curves.png`, `samples.png`, `reconstructions.png` (those present).
    pub pictures: Vec<(&'static str, Vec<u8>)>,
}

fn read_json(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))
}

impl RunFiles {
    /// Reads the run in `dir`.
    ///
    /// # Errors
    /// No `config.json` (not a run directory); a file that cannot be read or parsed, named.
    pub fn read(dir: &Path) -> Result<Self> {
        let config_path = dir.join("config.json");
        if !config_path.is_file() {
            anyhow::bail!("{} is not a run directory (no config.json)", dir.display());
        }
        let config = read_json(&config_path)?;
        let results_path = dir.join("results.json");
        let results = if results_path.is_file() {
            Some(read_json(&results_path)?)
        } else {
            None
        };
        let mut evals = Vec::new();
        for entry in
            std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?
        {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.starts_with("eval-") && name.ends_with(".json") {
                evals.push((name.clone(), read_json(&dir.join(&name))?));
            }
        }
        evals.sort_by(|a, b| a.0.cmp(&b.0));
        let mut pictures = Vec::new();
        for name in ["curves", "samples", "reconstructions"] {
            let path = dir.join(format!("{name}.png"));
            if path.is_file() {
                let bytes = std::fs::read(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?;
                pictures.push((name, bytes));
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            config,
            results,
            metrics: read_metrics(dir)?,
            evals,
            pictures,
        })
    }

    /// The run's name in tables: its directory.
    pub fn name(&self) -> String {
        self.dir.display().to_string()
    }
}
