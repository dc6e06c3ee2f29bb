//! The model-agnostic API: inference networks, posteriors and generative models.

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
}

/// A generative model `p(x, z) = p(x|z) p(z)`.
pub trait GenerativeModel: Send + Sync {
    /// `p(x|z)` for `z: [N, D]`, as a distribution with batch `[N]` and event `[P]`.
    ///
    /// # Errors
    /// Shape errors.
    fn forward(&self, z: &Tensor, pass: Pass) -> Result<Box<dyn Distribution>>;

    /// The prior `p(z)`, event `[D]`, batch `[]`.
    fn prior(&self) -> &dyn Distribution;

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
        let z = self.prior().sample(&[n], noise)?;
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
    fn log_prior(&self, z: &Tensor) -> Result<Tensor> {
        self.prior().log_prob(z)
    }

    /// `log p(x, z) = log p(x|z) + log p(z)`: `[B, S]`.
    ///
    /// # Errors
    /// Shape errors.
    fn log_prob(&self, x: &Tensor, z: &Tensor, pass: Pass) -> Result<Tensor> {
        self.log_likelihood(x, z, pass)? + self.log_prior(z)?
    }
}
