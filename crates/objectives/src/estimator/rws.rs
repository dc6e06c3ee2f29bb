//! Reweighted wake-sleep: separate losses for the generative model and the inference network.

use crate::draw::Draw;
use crate::evaluation::Evaluation;
use crate::model::{GenerativeModel, InferenceNetwork};
use candle::{D, Result, Tensor};
use candle_nn::ops::softmax_last_dim;
use vaekit_core::{NoiseSource, log_mean_exp};
use vaekit_nets::Pass;

/// Reweighted wake-sleep with `K = num_samples` draws from `q` (held constant) and their
/// normalised importance weights `w̃` (detached):
/// - wake-θ, the generative model's loss: `-mean_b Σ_s w̃_s log p(x, z_s)`;
/// - wake-φ: `Σ_s w̃_s log q(z_s|x)`; sleep-φ: `log q(z|x)` at `(x, z)` drawn from the model
///   (one per data point, detached); the inference network's loss is
///   `-(α wake-φ + (1 - α) sleep-φ)` with `α = wake_fraction` (1: wake-φ only, 0: sleep
///   only, 0.5: the papers' mixture).
///
/// The first loss reaches only the generative model's parameters, the second only the
/// inference network's; the trainer steps each with its own optimizer. The reported bound is
/// the IWAE bound of the `K` draws.
///
/// # Errors
/// `wake_fraction` outside `[0, 1]`; tensor errors.
///
/// # References
/// Bornschein & Bengio, arXiv 1406.2751; Le, Kosiorek, Siddharth, Teh, Wood, arXiv
/// 1805.10469.
#[allow(clippy::too_many_arguments)]
pub(crate) fn rws(
    wake_fraction: f64,
    inference: &dyn InferenceNetwork,
    model: &dyn GenerativeModel,
    x: &Tensor,
    num_samples: usize,
    noise: &mut dyn NoiseSource,
    pass: Pass,
) -> Result<Evaluation> {
    if !(0.0..=1.0).contains(&wake_fraction) {
        candle::bail!("RWS: wake_fraction must lie in [0, 1], got {wake_fraction}");
    }
    let draw = Draw::sample(inference, model, x, num_samples, noise, pass)?;
    let dtype = draw.log_q.dtype();
    let weights = softmax_last_dim(&draw.log_w64)?.to_dtype(dtype)?;
    let model_loss = (&weights * &draw.log_p)?
        .sum(D::Minus1)?
        .mean_all()?
        .neg()?;
    let mut inference_objective =
        ((&weights * &draw.log_q)?.sum(D::Minus1)?.mean_all()? * wake_fraction)?;
    if wake_fraction < 1.0 {
        let (xs, zs) = model.sample(x.dim(0)?, noise, pass)?;
        let sleep = inference
            .log_prob(&xs.detach(), &zs.detach().unsqueeze(1)?, pass)?
            .mean_all()?;
        inference_objective = (inference_objective + (sleep * (1.0 - wake_fraction))?)?;
    }
    let bound = log_mean_exp(&draw.log_w64, D::Minus1, false)?
        .mean_all()?
        .to_scalar::<f64>()?;
    draw.evaluation(model_loss, Some(inference_objective.neg()?), bound)
}
