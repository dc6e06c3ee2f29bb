//! The run directory's `tb/`: TensorBoard scalars per epoch, the pictures and final NLLs.

use crate::metrics::EpochMetrics;
use anyhow::{Context, Result};
use std::path::Path;
use vaekit_monitor::EventWriter;

/// A new event file in `dir/tb/`.
pub fn open_tensorboard(dir: &Path) -> Result<EventWriter> {
    EventWriter::create(&dir.join("tb")).context("cannot start the TensorBoard log")
}

/// The epoch's scalars (step = epoch), flushed to the disk.
pub fn write_epoch(tb: &mut EventWriter, m: &EpochMetrics) -> Result<()> {
    let mut scalars = vec![
        ("neg_elbo/train", m.train_neg_elbo),
        ("neg_elbo/test", m.test_neg_elbo),
        ("train/kl", m.kl),
        ("train/neg_reconstruction", -m.reconstruction),
        ("train/lr", m.lr),
        ("train/seconds", m.seconds),
        ("train/skipped_steps", m.skipped_steps as f64),
    ];
    if let Some(current) = m.test_neg_elbo_current {
        scalars.push(("neg_elbo/test_current_weights", current));
    }
    let finite: Vec<(&str, f64)> = scalars.into_iter().filter(|(_, v)| v.is_finite()).collect();
    tb.add_scalars(m.epoch as i64, &finite)?;
    tb.flush()?;
    Ok(())
}

/// `samples.png` and `reconstructions.png` of the run in `dir` as images at `step`.
pub fn write_pictures(tb: &mut EventWriter, dir: &Path, step: i64) -> Result<()> {
    for name in ["samples", "reconstructions"] {
        let path = dir.join(format!("{name}.png"));
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let decoder = png::Decoder::new(std::io::Cursor::new(&bytes));
        let reader = decoder
            .read_info()
            .with_context(|| format!("{}: not a PNG file", path.display()))?;
        let info = reader.info();
        let channels = info.color_type.samples() as u8;
        tb.add_image(name, step, &bytes, info.width, info.height, channels)?;
    }
    Ok(())
}

/// Final figures of `train-iaf eval` (`tag` → value) at `step`, when the run keeps a `tb/`.
pub fn write_final(dir: &Path, step: i64, scalars: &[(String, f64)]) -> Result<()> {
    if !dir.join("tb").is_dir() || scalars.is_empty() {
        return Ok(());
    }
    let mut tb = open_tensorboard(dir)?;
    let values: Vec<(&str, f64)> = scalars.iter().map(|(t, v)| (t.as_str(), *v)).collect();
    tb.add_scalars(step, &values)?;
    tb.flush()?;
    Ok(())
}
