//! The model-agnostic API: inference networks, posteriors and generative models.

use crate::prior::PriorRef;
use crate::relaxation::Relaxation;
use candle::{Result, Tensor};
use vaekit_core::NoiseSource;
use vaekit_distributions::Distribution;
use vaekit_nets::Pass;

/// Reparameterized posterior samples with their log-density.
#[derive(Debug, Clone)]
pub struct LatentSample {
    /// `z ~ q(z|x)`, `[B, S, D]`.
    pub z: Tensor,
    /// `log q(z|x)`, `[B, S]`.
    pub log_q: Tensor,
    /// `log q(z|x)` evaluated with the posterior's parameters detached, so that its gradient
    /// flows through `z` only (needed by DReG); `None` when the posterior cannot provide it
    /// (flow posteriors, whose density at a given point needs the inverse flow).
    pub log_q_stopped: Option<Tensor>,
}

impl LatentSample {
    /// Draws without a detached-parameter density (`log_q_stopped: None`).
    pub fn scored(z: Tensor, log_q: Tensor) -> Self {
        Self {
            z,
            log_q,
            log_q_stopped: None,
        }
    }
}

/// The KL of a layered posterior to a layered prior along the posterior's own draws:
/// closed forms for the layers whose prior conditional depends only on layers drawn before
/// them, `log q − log p` of the draw for the others.
#[derive(Debug, Clone)]
pub struct LayeredKl {
    /// Per draw, `[B, S]`; its mean over draws is an unbiased estimate of `KL(q(z|x) || p(z))`
    /// (each closed form is the conditional expectation of its layer's `log q − log p` given
    /// the layers it conditions on). It usually varies less than `log q − log p`, though not
    /// always, and an ELBO with it is no longer exact at the exact posterior.
    pub per_draw: Tensor,
    /// Layers in closed form.
    pub analytic_layers: usize,
    /// All latent layers.
    pub layers: usize,
}

/// `q(z|x)` for one batch.
pub trait Posterior {
    /// `num_samples` reparameterized samples per data point, with `log q`.
    ///
    /// # Shapes
    /// `z: [B, S, D]`, `log_q: [B, S]`.
    ///
    /// # Errors
    /// Tensor errors.
    fn rsample_with_log_prob(
        &self,
        num_samples: usize,
        noise: &mut dyn NoiseSource,
    ) -> Result<LatentSample>;

    /// [`Posterior::rsample_with_log_prob`] with `log q` also split over the latent
    /// dimensions, `[B, S, D]` summing to `log_q` (for per-dimension KLs, e.g. free bits
    /// through a flow); `None` (the default) when the posterior has no such split.
    ///
    /// # Errors
    /// Tensor errors.
    fn rsample_with_log_prob_per_dim(
        &self,
        num_samples: usize,
        noise: &mut dyn NoiseSource,
    ) -> Result<Option<(LatentSample, Tensor)>> {
        let _ = (num_samples, noise);
        Ok(None)
    }

    /// `log q(z|x)` of given points `z: [B, S, D]`: `[B, S]`.
    ///
    /// # Errors
    /// When the posterior has no tractable density at arbitrary points (flows).
    fn log_prob(&self, z: &Tensor) -> Result<Tensor>;

    /// The sampling path as a function of its standard-normal noise: `eps: [B, S, D]` gives
    /// `z = T(eps)` (`[B, S, D]`) and `log q(z|x)` (`[B, S]`), differentiable in `eps`. With
    /// it, annealed importance sampling can start from the full posterior (flows included) by
    /// running its chains in noise space.
    ///
    /// # Errors
    /// Posteriors that are not a transformation of standard-normal noise (the default).
    fn reparameterize(&self, eps: &Tensor) -> Result<LatentSample> {
        let _ = eps;
        candle::bail!("reparameterize: this posterior is not a transformation of normal noise")
    }

    /// The diagonal Gaussian the posterior starts from, before any flow: `(loc, log_scale)`,
    /// each `[B, D]`; `None` when there is none.
    fn base_gaussian(&self) -> Option<(Tensor, Tensor)> {
        None
    }

    /// The posterior as a plain distribution (event `[D]`, batch `[B]`) when it is one (no
    /// flow): the KL registry can then give an analytic KL.
    fn as_distribution(&self) -> Option<&dyn Distribution>;

    /// The KL to `prior` layer by layer along draws `z: [B, S, D]` of this posterior, with
    /// closed forms where the pair of conditionals allows ([`LayeredKl`]); `None` (the
    /// default) when the posterior is not layered or `prior` is not the matching kind, and the
    /// ELBO then estimates the KL by `log q − log p`.
    ///
    /// # Errors
    /// Tensor errors.
    fn layered_kl(&self, z: &Tensor, prior: &dyn Distribution) -> Result<Option<LayeredKl>> {
        let _ = (z, prior);
        Ok(None)
    }

    /// Whether [`Posterior::rsample_with_log_prob`] is differentiable in the posterior's
    /// parameters through `z` (false for discrete latents, whose `rsample_with_log_prob`
    /// returns plain draws: pathwise objectives refuse to train them).
    fn is_reparameterized(&self) -> bool {
        true
    }

    /// `num_samples` draws for score-function estimators: `z` is detached and `log_q` is
    /// differentiable in the posterior's parameters, so `∇ log q(z|x)` is the score.
    ///
    /// # Shapes
    /// `z: [B, S, D]`, `log_q: [B, S]`.
    ///
    /// # Errors
    /// The default draws by `rsample_with_log_prob` and re-evaluates `log_prob` at the
    /// detached draw, which flow posteriors cannot do.
    fn sample_with_log_prob(
        &self,
        num_samples: usize,
        noise: &mut dyn NoiseSource,
    ) -> Result<LatentSample> {
        let z = self.rsample_with_log_prob(num_samples, noise)?.z.detach();
        let log_q = self.log_prob(&z).map_err(|e| {
            candle::Error::Msg(format!(
                "score-function estimators need log q(z|x) at a detached draw: {e}"
            ))
        })?;
        Ok(LatentSample::scored(z, log_q))
    }

    /// A continuous relaxation of a discrete posterior (Concrete / Gumbel-softmax), or, with
    /// `relaxation.straight_through`, hard values whose gradient is the relaxed one.
    ///
    /// Without straight-through, `z` lies in the relaxation's unconstrained space (the
    /// logistic pre-activations of binary units, the log-probabilities of categorical ones)
    /// and `log_q` is the relaxed density there; score it with
    /// [`GenerativeModel::log_prob_relaxed`]. With straight-through, `z` holds discrete
    /// values and `log_q` is the discrete `log q(z|x)`; score it with
    /// [`GenerativeModel::log_prob`].
    ///
    /// # Shapes
    /// `z: [B, S, D]`, `log_q: [B, S]`.
    ///
    /// # Errors
    /// Posteriors without a relaxation (the default).
    ///
    /// # References
    /// Maddison, Mnih, Teh, arXiv 1611.00712; Jang, Gu, Poole, arXiv 1611.01144.
    fn rsample_relaxed(
        &self,
        num_samples: usize,
        relaxation: Relaxation,
        noise: &mut dyn NoiseSource,
    ) -> Result<LatentSample> {
        let _ = (num_samples, relaxation, noise);
        candle::bail!("rsample_relaxed: this posterior has no continuous relaxation")
    }
}

/// An inference network: `x -> q(z|x)`.
pub trait InferenceNetwork: Send + Sync {
    /// The posterior for a batch `x: [B, P]`.
    ///
    /// # Errors
    /// Shape errors.
    fn forward<'a>(&'a self, x: &Tensor, pass: Pass<'a>) -> Result<Box<dyn Posterior + 'a>>;

    /// `forward(x)` then `rsample_with_log_prob`.
    ///
    /// # Errors
    /// Those of both.
    fn sample(
        &self,
        x: &Tensor,
        num_samples: usize,
        noise: &mut dyn NoiseSource,
        pass: Pass,
    ) -> Result<LatentSample> {
        self.forward(x, pass)?
            .rsample_with_log_prob(num_samples, noise)
    }

    /// `log q(z|x)`: `z: [B, S, D]` gives `[B, S]`.
    ///
    /// # Errors
    /// Those of [`Posterior::log_prob`].
    fn log_prob(&self, x: &Tensor, z: &Tensor, pass: Pass) -> Result<Tensor> {
        self.forward(x, pass)?.log_prob(z)
    }

    /// An input-dependent learned baseline `b(x)` for score-function estimators (NVIL), `[B]`,
    /// trained with the inference network; `None` when the network has none (the default).
    ///
    /// # Errors
    /// Shape errors.
    fn baseline(&self, x: &Tensor, pass: Pass) -> Result<Option<Tensor>> {
        let _ = (x, pass);
        Ok(None)
    }
}

/// A generative model `p(x, z) = p(x|z) p(z)`.
pub trait GenerativeModel: Send + Sync {
    /// `p(x|z)` for `z: [N, D]`, as a distribution with batch `[N]` and event `[P]`.
    ///
    /// # Errors
    /// Shape errors.
    fn forward(&self, z: &Tensor, pass: Pass) -> Result<Box<dyn Distribution>>;

    /// The prior `p(z)` for a forward pass of kind `pass`, event `[D]`, batch `[]`: borrowed
    /// when it has no parameters, built from the current values when it is learned (ask
    /// once per use and keep it for that use).
    ///
    /// # Errors
    /// Those of building a learned prior.
    fn prior(&self, pass: Pass) -> Result<PriorRef<'_>>;

    /// The latent dimension `D`.
    ///
    /// # Errors
    /// A prior whose event is not a vector.
    fn latent_dim(&self) -> Result<usize> {
        match self.prior(Pass::Eval)?.event_shape().dims() {
            [d] => Ok(*d),
            other => candle::bail!("expected a vector latent, the prior's event is {other:?}"),
        }
    }

    /// `n` draws `(x, z)` from the model: `x: [n, P]`, `z: [n, D]`.
    ///
    /// # Errors
    /// Tensor errors.
    fn sample(
        &self,
        n: usize,
        noise: &mut dyn NoiseSource,
        pass: Pass,
    ) -> Result<(Tensor, Tensor)> {
        let z = self.prior(pass)?.sample(&[n], noise)?;
        let x = self.forward(&z, pass)?.sample(&[], noise)?;
        Ok((x, z))
    }

    /// `log p(x|z)`: `x: [B, P]`, `z: [B, S, D]` give `[B, S]`.
    ///
    /// # Errors
    /// Shape errors.
    fn log_likelihood(&self, x: &Tensor, z: &Tensor, pass: Pass) -> Result<Tensor> {
        let (b, s, d) = z.dims3()?;
        let px = self.forward(&z.reshape((b * s, d))?, pass)?;
        let p = x.dim(1)?;
        let xs = x
            .unsqueeze(1)?
            .broadcast_as((b, s, p))?
            .reshape((b * s, p))?;
        px.log_prob(&xs)?.reshape((b, s))
    }

    /// `log p(z)`: `z: [B, S, D]` gives `[B, S]`.
    ///
    /// # Errors
    /// Shape errors.
    fn log_prior(&self, z: &Tensor, pass: Pass) -> Result<Tensor> {
        self.prior(pass)?.log_prob(z)
    }

    /// `log p(x, z) = log p(x|z) + log p(z)`: `[B, S]`.
    ///
    /// # Errors
    /// Shape errors.
    fn log_prob(&self, x: &Tensor, z: &Tensor, pass: Pass) -> Result<Tensor> {
        self.log_likelihood(x, z, pass)? + self.log_prior(z, pass)?
    }

    /// `(log p(x|z), log p(z))` of a relaxed latent `z` drawn by
    /// [`Posterior::rsample_relaxed`] without straight-through (in the relaxation's
    /// unconstrained space), with the prior relaxed at the same temperature.
    ///
    /// # Shapes
    /// `x: [B, P]`, `z: [B, S, D]` give two `[B, S]`.
    ///
    /// # Errors
    /// Models without a relaxed prior (the default).
    fn log_prob_relaxed(
        &self,
        x: &Tensor,
        z: &Tensor,
        relaxation: Relaxation,
        pass: Pass,
    ) -> Result<(Tensor, Tensor)> {
        let _ = (x, z, relaxation, pass);
        candle::bail!("log_prob_relaxed: this model has no relaxed prior")
    }
}
