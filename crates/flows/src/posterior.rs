//! The flow posterior: the encoder's Gaussian pushed through a conditional flow.

use crate::flow::{Flow, FlowOutput};
use candle::{Result, Tensor};
use vaekit_core::NoiseSource;
use vaekit_distributions::Distribution;
use vaekit_nets::{EncoderOutput, Pass};

/// Samples of a flow posterior with their log-density.
#[derive(Debug, Clone)]
pub struct PosteriorSample {
    /// `z_K`, `[S, B, D]`.
    pub z: Tensor,
    /// `log q(z_K | x) = log q0(z_0 | x) - Σ_k log |det ∂f_k/∂z|`, `[S, B]`.
    pub log_q: Tensor,
    /// The base sample `z_0`, `[S, B, D]`.
    pub z0: Tensor,
    /// `log q0(z_0 | x)`, `[S, B]`.
    pub log_q0: Tensor,
}

/// `q(z|x)`: `z_0 ~ N(loc, diag(scale²))` from the encoder, `z = f(z_0; h)` through a flow
/// conditioned on the encoder's context `h`. An IAF density is cheap only along its sampling
/// path, so samples come back together with their log-density, in one pass.
///
/// # References
/// Rezende & Mohamed, arXiv 1505.05770, eq. 7; Kingma et al., arXiv 1606.04934, eq. 11.
#[derive(Debug)]
pub struct FlowPosterior<F> {
    flow: F,
}

impl<F: Flow> FlowPosterior<F> {
    /// A posterior with the given flow (use an empty [`crate::FlowChain`] for a plain
    /// Gaussian).
    pub fn new(flow: F) -> Self {
        Self { flow }
    }

    /// The flow.
    pub fn flow(&self) -> &F {
        &self.flow
    }

    /// `num_samples` reparameterized samples per data point and their log-density.
    ///
    /// # Shapes
    /// Encoder outputs for a batch of `B` give `z: [S, B, D]`, `log_q: [S, B]`.
    ///
    /// # Errors
    /// Shape errors, non-finite encoder outputs.
    pub fn rsample_with_log_prob(
        &self,
        encoded: &EncoderOutput,
        num_samples: usize,
        noise: &mut dyn NoiseSource,
        pass: Pass,
    ) -> Result<PosteriorSample> {
        let (b, d) = encoded.loc.dims2()?;
        let eps = noise.standard_normal(
            &(num_samples, b, d).into(),
            encoded.loc.dtype(),
            encoded.loc.device(),
        )?;
        self.push_forward(encoded, &eps, pass)
    }

    /// The sampling path as a function of its noise: standard-normal `eps: [S, B, D]` gives
    /// `z0 = loc + exp(log_scale) · eps`, pushed through the flow, with `log q` of every point
    /// (differentiable in `eps`). [`FlowPosterior::rsample_with_log_prob`] is this map applied
    /// to drawn noise. Annealed importance sampling runs its chains in `eps` space, where
    /// the flow posterior's density is available everywhere.
    ///
    /// # Errors
    /// Shape errors, non-finite encoder outputs.
    pub fn push_forward(
        &self,
        encoded: &EncoderOutput,
        eps: &Tensor,
        pass: Pass,
    ) -> Result<PosteriorSample> {
        let base = Base::new(encoded, eps)?;
        let out = self.flow.forward(&base.flat, Some(&base.context), pass)?;
        base.sample(out)
    }

    /// [`FlowPosterior::push_forward`] with `log q` split over the latent dimensions: the base
    /// Gaussian's density of each coordinate minus the log-determinant terms the flow's steps
    /// assign to it ([`Flow::forward_per_dim`]), `[S, B, D]`, summing over `D` to `log_q`
    /// (up to rounding). `None` when a step mixes coordinates (planar, Sylvester).
    ///
    /// # Errors
    /// Those of [`FlowPosterior::push_forward`].
    ///
    /// # References
    /// Kingma et al., arXiv 1606.04934, appendix C.8 and the reference code's per-dimension
    /// KL for free bits.
    pub fn push_forward_per_dim(
        &self,
        encoded: &EncoderOutput,
        eps: &Tensor,
        pass: Pass,
    ) -> Result<Option<(PosteriorSample, Tensor)>> {
        let base = Base::new(encoded, eps)?;
        let (s, b, d) = base.z0.dims3()?;
        // log N(z0_d; loc_d, σ_d) = −ε_d²/2 − log σ_d − log(2π)/2, per coordinate.
        let half_log_tau = 0.5 * std::f64::consts::TAU.ln();
        let log_q0_dims = eps
            .sqr()?
            .affine(-0.5, -half_log_tau)?
            .broadcast_sub(&encoded.log_scale.unsqueeze(0)?)?;
        // `−log q` per coordinate travels with the coordinates: each step adds its terms and a
        // reversal reverses it, so the base density of `z0`'s coordinate `j` ends where `z0_j`
        // ends.
        let acc = log_q0_dims.reshape((s * b, d))?.neg()?;
        let Some((out, acc)) =
            self.flow
                .forward_per_dim(&base.flat, Some(&base.context), pass, &acc)?
        else {
            return Ok(None);
        };
        let log_q_dims = acc.reshape((s, b, d))?.neg()?;
        Ok(Some((base.sample(out)?, log_q_dims)))
    }
}

/// The base Gaussian's draws `z0 = loc + σ·ε` (`[S, B, D]`), their log-density, and the flat
/// `[S·B, D]` draws with the context repeated per sample, ready for the flow.
struct Base {
    z0: Tensor,
    log_q0: Tensor,
    flat: Tensor,
    context: Tensor,
}

impl Base {
    fn new(encoded: &EncoderOutput, eps: &Tensor) -> Result<Self> {
        let z0 = encoded
            .log_scale
            .exp()?
            .unsqueeze(0)?
            .broadcast_mul(eps)?
            .broadcast_add(&encoded.loc.unsqueeze(0)?)?;
        let log_q0 = encoded.posterior()?.log_prob(&z0)?; // [S, B]
        let (s, b, d) = z0.dims3()?;
        let flat = z0.reshape((s * b, d))?;
        let c = encoded.context.dim(1)?;
        let context = encoded
            .context
            .unsqueeze(0)?
            .broadcast_as((s, b, c))?
            .reshape((s * b, c))?;
        Ok(Self {
            z0,
            log_q0,
            flat,
            context,
        })
    }

    /// The sample after the flow's output `out`.
    fn sample(self, out: FlowOutput) -> Result<PosteriorSample> {
        let (s, b, d) = self.z0.dims3()?;
        let z = out.value.reshape((s, b, d))?;
        let log_q = (&self.log_q0 - out.log_det_jacobian.reshape((s, b))?)?;
        Ok(PosteriorSample {
            z,
            log_q,
            z0: self.z0,
            log_q0: self.log_q0,
        })
    }
}
