//! The score-function estimator (REINFORCE) with NVIL's variance reduction.

use super::state::EstimatorState;
use crate::draw::Draw;
use crate::evaluation::Evaluation;
use crate::model::{GenerativeModel, InferenceNetwork};
use candle::{DType, Result, Tensor};
use serde::{Deserialize, Serialize};
use vaekit_core::NoiseSource;
use vaekit_nets::Pass;

/// Variance reduction of the score-function estimator. All off is plain REINFORCE; all on
/// is NVIL.
///
/// # References
/// Williams, "Simple statistical gradient-following algorithms", 1992; Mnih & Gregor,
/// "Neural variational inference and learning in belief networks", arXiv 1402.0030.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct ScoreBaseline {
    /// Subtract a moving average of the learning signal, with this decay (NVIL: 0.8).
    pub moving_average: Option<f64>,
    /// Subtract the inference network's learned, input-dependent baseline `b(x)`, trained by
    /// least squares on the centred signal ([`InferenceNetwork::baseline`]).
    pub learned: bool,
    /// Divide the centred signal by `max(1, running standard deviation)`.
    pub normalize_variance: bool,
}

impl ScoreBaseline {
    /// Checks the decay.
    ///
    /// # Errors
    /// A moving-average decay outside `[0, 1)`.
    pub fn validate(&self) -> candle::Result<()> {
        match self.moving_average {
            Some(a) if !(0.0..1.0).contains(&a) => {
                candle::bail!("NVIL: the moving-average decay must lie in [0, 1), got {a}")
            }
            _ => Ok(()),
        }
    }

    /// NVIL: moving average (0.8), learned baseline, variance normalisation.
    pub fn nvil() -> Self {
        Self {
            moving_average: Some(0.8),
            learned: true,
            normalize_variance: true,
        }
    }

    /// Whether running statistics are kept.
    fn tracks_statistics(&self) -> bool {
        self.moving_average.is_some() || self.normalize_variance
    }
}

/// REINFORCE on the ELBO with `num_samples` draws: the learning signal of draw `s` is
/// `ℓ_s = log p(x, z_s) - log q(z_s|x)`; the surrogate
/// `mean_{b,s}[log p(x, z_s) + A_s log q(z_s|x)]`, with the advantage
/// `A_s = (ℓ_s - b(x) - c) / max(1, σ)` held constant, has the estimator's gradient for both
/// networks; the learned baseline adds `mean (ℓ_s - c - b(x))²`. In a training pass the
/// running mean `c` and variance `σ²` of `ℓ - b(x)` are updated first (NVIL's algorithm 1),
/// so the batch contributes `(1 - α) / (B·S)` of its own centre: a bias of that order, which
/// the paper accepts and which vanishes with the batch size.
///
/// # Errors
/// A learned baseline requested from an inference network without one; tensor errors.
#[allow(clippy::too_many_arguments)]
pub(crate) fn reinforce(
    baseline: ScoreBaseline,
    state: &mut EstimatorState,
    inference: &dyn InferenceNetwork,
    model: &dyn GenerativeModel,
    x: &Tensor,
    num_samples: usize,
    noise: &mut dyn NoiseSource,
    pass: Pass,
) -> Result<Evaluation> {
    baseline.validate()?;
    let draw = Draw::sample(inference, model, x, num_samples, noise, pass)?;
    let signal = &draw.log_w64;
    let learned = if baseline.learned {
        let Some(b) = inference.baseline(x, pass)? else {
            candle::bail!(
                "NVIL: the inference network has no learned baseline (build it with one)"
            );
        };
        Some(b)
    } else {
        None
    };
    let residual = match &learned {
        Some(b) => signal.broadcast_sub(&b.detach().to_dtype(DType::F64)?.unsqueeze(1)?)?,
        None => signal.clone(),
    };
    if baseline.tracks_statistics() && matches!(pass, Pass::Train) {
        let mean = residual.mean_all()?.to_scalar::<f64>()?;
        let variance = residual
            .affine(1.0, -mean)?
            .sqr()?
            .mean_all()?
            .to_scalar::<f64>()?;
        state.update(baseline.moving_average.unwrap_or(0.8), mean, variance);
    }
    let c = if baseline.moving_average.is_some() {
        state.signal_mean
    } else {
        0.0
    };
    let scale = if baseline.normalize_variance {
        state.signal_variance.sqrt().max(1.0)
    } else {
        1.0
    };
    let dtype = draw.log_q.dtype();
    let advantage = residual.affine(1.0 / scale, -c / scale)?.to_dtype(dtype)?;
    let surrogate = (&draw.log_p + (advantage * &draw.log_q)?)?.mean_all()?;
    let mut loss = surrogate.neg()?;
    if let Some(b) = learned {
        let target = signal.affine(1.0, -c)?.to_dtype(dtype)?;
        let fit = target.broadcast_sub(&b.unsqueeze(1)?)?.sqr()?.mean_all()?;
        loss = (loss + fit)?;
    }
    let bound = signal.mean_all()?.to_scalar::<f64>()?;
    draw.evaluation(loss, None, bound)
}
