//! Draws from the posterior scored by the model: the log-weights every objective and
//! estimator starts from.

use crate::evaluation::Evaluation;
use crate::model::{GenerativeModel, InferenceNetwork, LatentSample, Posterior};
use candle::{DType, Result, Tensor};
use vaekit_core::NoiseSource;
use vaekit_distributions::{Distribution, KlMethod};
use vaekit_nets::Pass;

/// The posterior of `x` for a pathwise objective (ELBO, IWAE), which a training pass can
/// only differentiate through reparameterized draws.
///
/// # Errors
/// A posterior that is not reparameterized in a training pass; the network's.
pub(crate) fn reparameterized_posterior<'a>(
    inference: &'a dyn InferenceNetwork,
    x: &Tensor,
    pass: Pass<'a>,
) -> Result<Box<dyn Posterior + 'a>> {
    let posterior = inference.forward(x, pass)?;
    if matches!(pass, Pass::Train) && !posterior.is_reparameterized() {
        candle::bail!(
            "objective: the ELBO and IWAE gradients need reparameterized latents; train discrete latents with REINFORCE, NVIL, VIMCO, RWS or Concrete"
        );
    }
    Ok(posterior)
}

/// `S` draws per data point with their log-densities, all `[B, S]`.
pub(crate) struct Draw {
    pub log_lik: Tensor,
    pub log_prior: Tensor,
    /// `log p(x, z)`.
    pub log_p: Tensor,
    /// `log q(z|x)`.
    pub log_q: Tensor,
    /// `log p - log q`, detached, f64.
    pub log_w64: Tensor,
}

impl Draw {
    /// `num_samples` score-function draws ([`crate::Posterior::sample_with_log_prob`]: `z`
    /// detached, `log q` differentiable) from the posterior of `x`, scored by `model`.
    pub(crate) fn sample(
        inference: &dyn InferenceNetwork,
        model: &dyn GenerativeModel,
        x: &Tensor,
        num_samples: usize,
        noise: &mut dyn NoiseSource,
        pass: Pass,
    ) -> Result<Self> {
        let sample = inference
            .forward(x, pass)?
            .sample_with_log_prob(num_samples, noise)?;
        Self::score(sample, model, x, pass)
    }

    /// Scores `sample` (from the posterior of `x`) with `model`.
    pub(crate) fn score(
        sample: LatentSample,
        model: &dyn GenerativeModel,
        x: &Tensor,
        pass: Pass,
    ) -> Result<Self> {
        let log_lik = model.log_likelihood(x, &sample.z, pass)?;
        let log_prior = model.log_prior(&sample.z, pass)?;
        Self::from_parts(log_lik, log_prior, sample.log_q)
    }

    /// [`Draw::score`] with the prior already built for this pass (a learned prior is then
    /// built once per step).
    pub(crate) fn score_with_prior(
        sample: LatentSample,
        model: &dyn GenerativeModel,
        prior: &dyn Distribution,
        x: &Tensor,
        pass: Pass,
    ) -> Result<Self> {
        let log_lik = model.log_likelihood(x, &sample.z, pass)?;
        let log_prior = prior.log_prob(&sample.z)?;
        Self::from_parts(log_lik, log_prior, sample.log_q)
    }

    /// From `log p(x|z)`, `log p(z)` and `log q(z|x)`.
    pub(crate) fn from_parts(log_lik: Tensor, log_prior: Tensor, log_q: Tensor) -> Result<Self> {
        let log_p = (&log_lik + &log_prior)?;
        let log_w64 = (&log_p - &log_q)?.detach().to_dtype(DType::F64)?;
        Ok(Self {
            log_lik,
            log_prior,
            log_p,
            log_q,
            log_w64,
        })
    }

    /// The [`Evaluation`] with these draws' statistics, a reported `bound` and the losses.
    pub(crate) fn evaluation(
        &self,
        loss: Tensor,
        inference_loss: Option<Tensor>,
        bound: f64,
    ) -> Result<Evaluation> {
        let mean = |t: &Tensor| -> Result<f64> {
            t.detach()
                .to_dtype(DType::F64)?
                .mean_all()?
                .to_scalar::<f64>()
        };
        Ok(Evaluation {
            loss,
            inference_loss,
            bound,
            reconstruction: mean(&self.log_lik)?,
            kl: mean(&(&self.log_q - &self.log_prior)?)?,
            mean_log_p: mean(&self.log_p)?,
            mean_log_q: mean(&self.log_q)?,
            kl_method: KlMethod::MonteCarlo {
                num_samples: self.log_q.dim(1)?,
            },
            log_weights: self.log_w64.clone(),
        })
    }
}
