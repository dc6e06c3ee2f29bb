//! Binarization of grey-scale intensities: dynamic, fixed (drawn once) and thresholded.

use crate::error::{DataError, Result};
use candle::Tensor;
use serde::{Deserialize, Serialize};
use vaekit_core::{NoiseSource, SeededNoise};

/// How intensities in `[0, 1]` become binary pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
#[non_exhaustive]
pub enum Binarization {
    /// A fresh Bernoulli(intensity) draw every time the image is used (every epoch), from
    /// the run's noise source: the training protocol of the IWAE and IAF papers.
    Dynamic,
    /// One Bernoulli(intensity) draw per image from `seed`, the same every time: the IWAE
    /// protocol's fixed binarized test set.
    Fixed {
        /// The seed of the single draw.
        seed: u64,
    },
    /// `1` where intensity `> threshold` (0.5 is customary), `0` elsewhere.
    Threshold {
        /// The cut-off.
        threshold: f64,
    },
    /// The data as they are (already binary, or modelled by a likelihood for continuous
    /// values).
    None,
}

/// Bernoulli(x) draws: `1` where `u < x` for fresh `u ~ U[0, 1)` from `noise`, so
/// `P(1) = x` exactly for every `x` in `[0, 1]`.
///
/// # Shapes
/// Same shape and dtype as `x`.
///
/// # Errors
/// A non-float `x`.
pub fn binarize_dynamic(x: &Tensor, noise: &mut dyn NoiseSource) -> Result<Tensor> {
    let u = noise.uniform(x.shape(), x.dtype(), x.device())?;
    Ok(u.lt(x)?.to_dtype(x.dtype())?)
}

/// A binarization drawn once from `seed` (fresh [`SeededNoise`]); the same `x` and `seed`
/// always give the same result.
///
/// # Shapes
/// Same shape and dtype as `x`.
///
/// # Errors
/// A non-float `x`.
pub fn binarize_fixed(x: &Tensor, seed: u64) -> Result<Tensor> {
    binarize_dynamic(x, &mut SeededNoise::new(seed))
}

/// `1` where `x > threshold`, `0` elsewhere.
///
/// # Shapes
/// Same shape and dtype as `x`.
///
/// # Errors
/// A NaN threshold.
pub fn binarize_threshold(x: &Tensor, threshold: f64) -> Result<Tensor> {
    if threshold.is_nan() {
        return Err(DataError::Config("binarize: threshold is NaN".into()));
    }
    Ok(x.gt(threshold)?.to_dtype(x.dtype())?)
}

impl Binarization {
    /// Applies this binarization (the trainer's per-batch transform); `noise` is used by
    /// [`Binarization::Dynamic`] only.
    ///
    /// # Shapes
    /// Same shape and dtype as `x`.
    ///
    /// # Errors
    /// Those of the functions it calls.
    pub fn apply(&self, x: &Tensor, noise: &mut dyn NoiseSource) -> Result<Tensor> {
        match *self {
            Binarization::Dynamic => binarize_dynamic(x, noise),
            Binarization::Fixed { seed } => binarize_fixed(x, seed),
            Binarization::Threshold { threshold } => binarize_threshold(x, threshold),
            Binarization::None => Ok(x.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::{DType, Device};

    #[test]
    fn dynamic_draws_are_bernoulli_and_fresh() -> Result<()> {
        let p = [0.0f32, 0.1, 0.5, 0.9, 1.0];
        let n = 40_000;
        let x = Tensor::new(&p, &Device::Cpu)?
            .unsqueeze(0)?
            .repeat((n, 1))?;
        let mut noise = SeededNoise::new(9);
        let b1 = binarize_dynamic(&x, &mut noise)?;
        let b2 = binarize_dynamic(&x, &mut noise)?;
        assert_ne!(b1.to_vec2::<f32>()?, b2.to_vec2::<f32>()?);
        let means = b1.mean(0)?.to_vec1::<f32>()?;
        for (&m, &q) in means.iter().zip(&p) {
            // 6 standard errors of a Bernoulli mean (0 when q is 0 or 1: exact).
            let se = (f64::from(q) * (1.0 - f64::from(q)) / n as f64).sqrt();
            assert!(
                (f64::from(m) - f64::from(q)).abs() <= 6.0 * se,
                "{m} vs {q}"
            );
        }
        let values = b1.flatten_all()?.to_vec1::<f32>()?;
        assert!(values.iter().all(|&v| v == 0.0 || v == 1.0));
        Ok(())
    }

    #[test]
    fn fixed_is_fixed_and_threshold_cuts() -> Result<()> {
        let x = Tensor::new(&[[0.2f64, 0.5, 0.7], [0.51, 0.49, 1.0]], &Device::Cpu)?;
        let a = Binarization::Fixed { seed: 3 }.apply(&x, &mut SeededNoise::new(0))?;
        let b = Binarization::Fixed { seed: 3 }.apply(&x, &mut SeededNoise::new(99))?;
        assert_eq!(a.to_vec2::<f64>()?, b.to_vec2::<f64>()?);
        let t = Binarization::Threshold { threshold: 0.5 }.apply(&x, &mut SeededNoise::new(0))?;
        assert_eq!(
            t.to_vec2::<f64>()?,
            vec![vec![0.0, 0.0, 1.0], vec![1.0, 0.0, 1.0]]
        );
        assert_eq!(t.dtype(), DType::F64);
        assert!(binarize_threshold(&x, f64::NAN).is_err());
        Ok(())
    }
}
