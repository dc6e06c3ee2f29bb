//! The run directory's `tb/`: TensorBoard scalars per epoch, the pictures and final NLLs.
//! Best effort: a log that cannot be written warns, and training goes on.

use crate::metrics::EpochMetrics;
use anyhow::{Context, Result};
use std::path::Path;
use vaekit_monitor::EventWriter;

/// A new event file in `dir/tb/`; for a resumed run, `restart` is the first epoch it will
/// log, marked so that TensorBoard drops what an interrupted earlier invocation logged for
/// that epoch and later. `None` (with a warning on stderr) when the file cannot be written.
pub fn open_tensorboard(dir: &Path, restart: Option<i64>) -> Option<EventWriter> {
    let opened = EventWriter::create(&dir.join("tb")).and_then(|mut tb| {
        if let Some(step) = restart {
            tb.add_session_start(step)?;
            tb.flush()?;
        }
        Ok(tb)
    });
    match opened {
        Ok(tb) => Some(tb),
        Err(e) => {
            eprintln!("warning: no TensorBoard log: {e}");
            None
        }
    }
}

/// The epoch's scalars (step = epoch), flushed to the disk.
///
/// # Errors
/// A write error, naming the file.
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

/// `samples.png` and `reconstructions.png` of the run in `dir` as images at `step`, flushed.
///
/// # Errors
/// A picture that cannot be read or is not a PNG file; a write error.
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
    tb.flush()?;
    Ok(())
}

/// Final figures (`tag` → value) at `step`, flushed.
///
/// # Errors
/// A write error, naming the file.
pub fn write_final(tb: &mut EventWriter, step: i64, scalars: &[(String, f64)]) -> Result<()> {
    let values: Vec<(&str, f64)> = scalars
        .iter()
        .filter(|(_, v)| v.is_finite())
        .map(|(t, v)| (t.as_str(), *v))
        .collect();
    tb.add_scalars(step, &values)?;
    tb.flush()?;
    Ok(())
}

/// `train-iaf eval`'s figures at `step`, in a new event file, when the run keeps a `tb/`;
/// a failure only warns.
pub fn write_eval(dir: &Path, step: i64, scalars: &[(String, f64)]) {
    if !dir.join("tb").is_dir() || scalars.is_empty() {
        return;
    }
    if let Some(mut tb) = open_tensorboard(dir, None)
        && let Err(e) = write_final(&mut tb, step, scalars)
    {
        eprintln!("warning: the TensorBoard log lacks the evaluation's figures: {e:#}");
    }
}
