//! `metrics.jsonl`: one line per epoch, appended as the run goes, repaired after crashes.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;
use vaekit_train::{EmaSummary, Weights, write_atomic};

/// One line of `metrics.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub epoch: u64,
    /// Mean training −ELBO of the epoch's steps, always of the current weights.
    pub train_neg_elbo: f64,
    /// Test −ELBO of the weights named by `weights`.
    pub test_neg_elbo: f64,
    /// Which weights `test_neg_elbo` used: `averaged` (the parameter average) or `current`.
    /// Absent in lines written before it was recorded.
    #[serde(default)]
    pub weights: Option<Weights>,
    /// Test −ELBO of the current weights, when `test_neg_elbo` is the average's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_neg_elbo_current: Option<f64>,
    /// The parameter average (decay, warm-up, updates, weight left on its first
    /// parameters); `null` when the run keeps none.
    #[serde(default)]
    pub ema: Option<EmaSummary>,
    pub kl: f64,
    pub reconstruction: f64,
    pub lr: f64,
    pub seconds: f64,
    pub skipped_steps: u64,
}

pub(crate) fn append_metrics(out: &Path, m: &EpochMetrics) -> Result<()> {
    let path = out.join("metrics.jsonl");
    repair_torn_tail(&path)?;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    // One write per line, so that a crash cannot split a record from its newline.
    let mut line = serde_json::to_string(m)?;
    line.push('\n');
    f.write_all(line.as_bytes())?;
    f.sync_data()?;
    Ok(())
}

/// Rewrites `metrics.jsonl` (atomically) without the lines of epochs after `epoch`.
pub(crate) fn drop_metrics_after(out: &Path, epoch: u64) -> Result<()> {
    let path = out.join("metrics.jsonl");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(());
    };
    // Only lines that name a later epoch go; others (NaN figures are written as null, a
    // damaged line) stay for `read_metrics` to judge.
    let later = |l: &str| {
        serde_json::from_str::<serde_json::Value>(l)
            .ok()
            .and_then(|v| v["epoch"].as_u64())
            .is_some_and(|e| e > epoch)
    };
    let kept: Vec<&str> = text.lines().filter(|l| !later(l)).collect();
    if kept.len() == text.lines().count() {
        return Ok(());
    }
    eprintln!(
        "warning: {}: dropping {} line(s) of epochs after the checkpoint of epoch {epoch} (they are re-run)",
        path.display(),
        text.lines().count() - kept.len()
    );
    let mut rewritten = kept.join("\n");
    if !rewritten.is_empty() {
        rewritten.push('\n');
    }
    write_atomic(&path, rewritten.as_bytes())?;
    Ok(())
}

/// A crash while appending can leave a last line without its newline; the next record would
/// then be glued to it and both lost. Cuts such a torn tail off (saying so); the epoch it
/// belonged to is re-run from its checkpoint and logged again.
fn repair_torn_tail(path: &Path) -> Result<()> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    if bytes.last().is_none_or(|&b| b == b'\n') {
        return Ok(());
    }
    let keep = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    eprintln!(
        "warning: {}: removing a torn last line ({} bytes, from an interrupted write)",
        path.display(),
        bytes.len() - keep
    );
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    f.set_len(keep as u64)?;
    f.sync_data()?;
    Ok(())
}

pub(crate) fn read_metrics(out: &Path) -> Result<Vec<EpochMetrics>> {
    let path = out.join("metrics.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    // A resumed run may have re-run an epoch that was logged before a crash: keep the last
    // line of each epoch. A line torn by a crash is skipped with a warning.
    let mut by_epoch = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str::<EpochMetrics>(line) {
            Ok(m) => {
                by_epoch.insert(m.epoch, m);
            }
            Err(e) => eprintln!(
                "warning: {}: skipping a malformed line ({e})",
                path.display()
            ),
        }
    }
    Ok(by_epoch.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(epoch: u64) -> EpochMetrics {
        EpochMetrics {
            epoch,
            train_neg_elbo: 100.0 + epoch as f64,
            test_neg_elbo: 99.0,
            weights: Some(Weights::Current),
            test_neg_elbo_current: None,
            ema: None,
            kl: 20.0,
            reconstruction: -80.0,
            lr: 1e-3,
            seconds: 1.0,
            skipped_steps: 0,
        }
    }

    /// A crash mid-append leaves a line without its newline: the next epoch's record must not
    /// be glued to it (which lost both before).
    #[test]
    fn a_torn_metrics_line_does_not_swallow_the_next_one() -> Result<()> {
        let dir = tempfile::tempdir()?;
        append_metrics(dir.path(), &metrics(1))?;
        let path = dir.path().join("metrics.jsonl");
        let torn = serde_json::to_string(&metrics(2))?;
        let mut f = std::fs::OpenOptions::new().append(true).open(&path)?;
        f.write_all(&torn.as_bytes()[..torn.len() / 2])?;
        drop(f);
        // The resumed run re-runs epoch 2 and logs it, then epoch 3.
        append_metrics(dir.path(), &metrics(2))?;
        append_metrics(dir.path(), &metrics(3))?;
        let read = read_metrics(dir.path())?;
        assert_eq!(
            read.iter().map(|m| m.epoch).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        let text = std::fs::read_to_string(&path)?;
        assert_eq!(text.lines().count(), 3, "{text}");
        // Resuming from epoch 2's checkpoint drops epoch 3's line, and keeps a line whose NaN
        // figures were written as null.
        let mut nan = serde_json::to_value(metrics(1))?;
        nan["train_neg_elbo"] = serde_json::Value::Null;
        let lines = [
            nan.to_string(),
            serde_json::to_string(&metrics(2))?,
            serde_json::to_string(&metrics(3))?,
        ];
        std::fs::write(&path, format!("{}\n", lines.join("\n")))?;
        drop_metrics_after(dir.path(), 2)?;
        let text = std::fs::read_to_string(&path)?;
        assert_eq!(text, format!("{}\n{}\n", lines[0], lines[1]));
        append_metrics(dir.path(), &metrics(3))?;
        // An intact file is left alone.
        let before = std::fs::read(&path)?;
        repair_torn_tail(&path)?;
        assert_eq!(std::fs::read(&path)?, before);
        Ok(())
    }
}
