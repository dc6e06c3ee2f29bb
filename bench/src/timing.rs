//! The timing protocol shared with `torch_reference.py`: warm up, calibrate the iterations
//! per sample so that a sample lasts at least `min_sample_s`, then take `reps` samples and
//! report the median time per iteration.

use serde::{Deserialize, Serialize};
use std::time::Instant;

/// How to time a workload.
#[derive(Debug, Clone, Copy)]
pub struct Protocol {
    /// Samples whose median is reported.
    pub reps: usize,
    /// Untimed iterations first.
    pub warmup: usize,
    /// A sample runs whole iterations for at least this long.
    pub min_sample_s: f64,
}

/// One workload's result, as printed (JSON lines) by both sides.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Measurement {
    /// The workload's name (the same on both sides).
    pub name: String,
    /// Median milliseconds per iteration.
    pub median_ms: f64,
    /// Milliseconds per iteration of every sample, in order.
    pub samples_ms: Vec<f64>,
    /// Iterations per sample.
    pub iterations: usize,
}

/// The median of `v` (mean of the two middle values for an even length); NaN when empty.
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => 0.5 * (s[n / 2 - 1] + s[n / 2]),
    }
}

/// Times `f` under `protocol`.
///
/// # Errors
/// The first error of `f`.
pub fn measure(
    name: &str,
    protocol: Protocol,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Measurement> {
    for _ in 0..protocol.warmup {
        f()?;
    }
    // Calibrate on one more iteration.
    let t = Instant::now();
    f()?;
    let once = t.elapsed().as_secs_f64().max(1e-9);
    let iterations = ((protocol.min_sample_s / once).ceil() as usize).max(1);
    let mut samples_ms = Vec::with_capacity(protocol.reps);
    for _ in 0..protocol.reps {
        let t = Instant::now();
        for _ in 0..iterations {
            f()?;
        }
        samples_ms.push(t.elapsed().as_secs_f64() * 1e3 / iterations as f64);
    }
    Ok(Measurement {
        name: name.to_string(),
        median_ms: median(&samples_ms),
        samples_ms,
        iterations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn counts_every_iteration() -> anyhow::Result<()> {
        let mut calls = 0usize;
        let p = Protocol {
            reps: 3,
            warmup: 2,
            min_sample_s: 0.0,
        };
        let m = measure("count", p, || {
            calls += 1;
            Ok(())
        })?;
        // warm-up, calibration, then `reps` samples of `iterations` each.
        assert_eq!(calls, 2 + 1 + 3 * m.iterations);
        assert_eq!(m.samples_ms.len(), 3);
        Ok(())
    }
}
