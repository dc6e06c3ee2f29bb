//! Training through the Concrete (Gumbel-softmax) relaxation.

use crate::draw::Draw;
use crate::evaluation::Evaluation;
use crate::model::{GenerativeModel, InferenceNetwork};
use crate::relaxation::{Relaxation, TemperatureSchedule};
use candle::{Result, Tensor};
use vaekit_core::NoiseSource;
use vaekit_nets::Pass;

/// The relaxed ELBO `mean_s [log p(x|z_s) + log p_τ(z_s) - log q_τ(z_s|x)]` over relaxed
/// draws at the temperature `τ = temperature.at(epoch)`, prior and posterior relaxed alike
/// (Maddison et al.); with `straight_through`, hard draws forward and the discrete
/// densities, the relaxed gradient backward (Jang et al.). Biased for the discrete model, by
/// design. The reported bound is this objective: relaxed, or with straight-through the
/// discrete ELBO of the hard draws (evaluate the discrete model with the ELBO or importance
/// sampling).
///
/// # Errors
/// An invalid temperature schedule; models or posteriors without a relaxation; tensor
/// errors.
///
/// # References
/// Maddison, Mnih, Teh, arXiv 1611.00712; Jang, Gu, Poole, arXiv 1611.01144.
#[allow(clippy::too_many_arguments)]
pub(crate) fn concrete(
    temperature: TemperatureSchedule,
    straight_through: bool,
    inference: &dyn InferenceNetwork,
    model: &dyn GenerativeModel,
    x: &Tensor,
    epoch: f64,
    num_samples: usize,
    noise: &mut dyn NoiseSource,
    pass: Pass,
) -> Result<Evaluation> {
    if !temperature.is_valid() {
        candle::bail!("Concrete: temperatures must be finite and > 0, got {temperature:?}");
    }
    let relaxation = Relaxation {
        temperature: temperature.at(epoch),
        straight_through,
    };
    let posterior = inference.forward(x, pass)?;
    let sample = posterior.rsample_relaxed(num_samples, relaxation, noise)?;
    let draw = if straight_through {
        Draw::score(sample, model, x, pass)?
    } else {
        let (log_lik, log_prior) = model.log_prob_relaxed(x, &sample.z, relaxation, pass)?;
        Draw::from_parts(log_lik, log_prior, sample.log_q)?
    };
    let objective = (&draw.log_p - &draw.log_q)?.mean_all()?;
    let bound = draw.log_w64.mean_all()?.to_scalar::<f64>()?;
    draw.evaluation(objective.neg()?, None, bound)
}
