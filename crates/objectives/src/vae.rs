//! The VAE building blocks behind the model-agnostic API: an encoder with an optional flow,
//! and a decoder with a standard-normal prior.

use crate::model::{GenerativeModel, InferenceNetwork, LatentSample, Posterior};
use crate::prior::{LatentPrior, PriorRef, StandardNormalPrior};
use candle::{DType, Device, Result, Tensor};
use vaekit_core::NoiseSource;
use vaekit_distributions::{Distribution, Independent, Normal};
use vaekit_flows::{FlowChain, FlowPosterior};
use vaekit_nets::{Decoder, Encoder, EncoderOutput, Pass};

/// `q(z|x)`: the encoder's diagonal Gaussian, pushed through a conditional flow (an empty
/// [`FlowChain`] for a plain Gaussian posterior).
#[derive(Debug)]
pub struct EncoderFlow<E> {
    encoder: E,
    posterior: FlowPosterior<FlowChain>,
}

impl<E: Encoder> EncoderFlow<E> {
    /// An inference network from an encoder and a flow.
    pub fn new(encoder: E, flow: FlowChain) -> Self {
        Self {
            encoder,
            posterior: FlowPosterior::new(flow),
        }
    }

    /// The encoder.
    pub fn encoder(&self) -> &E {
        &self.encoder
    }

    /// Whether a flow follows the Gaussian.
    pub fn has_flow(&self) -> bool {
        !self.posterior.flow().is_empty()
    }
}

/// The posterior of an [`EncoderFlow`] for one batch.
#[derive(Debug)]
pub struct GaussianFlowPosterior<'a> {
    encoded: EncoderOutput,
    base: Independent<Normal>,
    flow: Option<&'a FlowPosterior<FlowChain>>,
    pass: Pass<'a>,
}

impl<'a> GaussianFlowPosterior<'a> {
    /// A posterior from encoder outputs; `flow` `None` (or empty) for a plain Gaussian.
    ///
    /// # Errors
    /// Non-finite encoder outputs.
    pub fn new(
        encoded: EncoderOutput,
        flow: Option<&'a FlowPosterior<FlowChain>>,
        pass: Pass<'a>,
    ) -> Result<Self> {
        let base = encoded.posterior()?;
        let flow = flow.filter(|f| !f.flow().is_empty());
        Ok(Self {
            encoded,
            base,
            flow,
            pass,
        })
    }
}

/// `[S, B, ..]` to `[B, S, ..]`.
fn batch_first(t: &Tensor) -> Result<Tensor> {
    t.transpose(0, 1)?.contiguous()
}

impl Posterior for GaussianFlowPosterior<'_> {
    fn rsample_with_log_prob(
        &self,
        num_samples: usize,
        noise: &mut dyn NoiseSource,
    ) -> Result<LatentSample> {
        match self.flow {
            Some(flow) => {
                let s = flow.rsample_with_log_prob(&self.encoded, num_samples, noise, self.pass)?;
                Ok(LatentSample {
                    z: batch_first(&s.z)?,
                    log_q: batch_first(&s.log_q)?,
                    log_q_stopped: None,
                })
            }
            None => {
                // The noise drawn as `rsample` draws it, `[S, B, D]`, then put batch-first
                // outside the graph; the parameters as `[B, 1, D]` broadcast over the
                // samples. So `z` and `log q` come out `[B, S, ..]` with no transpose or copy
                // in the graph (each would cost the backward a zero-filled copy and an
                // addition of the latents' size).
                let (loc, log_scale) = (&self.encoded.loc, &self.encoded.log_scale);
                let shape: Vec<usize> = [&[num_samples][..], loc.dims()].concat();
                let eps = noise.standard_normal(&shape.into(), loc.dtype(), loc.device())?;
                let eps = batch_first(&eps)?;
                let q = |loc: &Tensor, log_scale: &Tensor| {
                    Normal::from_log_scale_unchecked(loc.unsqueeze(1)?, log_scale.unsqueeze(1)?)
                };
                let event = self.base.reinterpreted_ndims();
                let base = q(loc, log_scale)?;
                let z = base.reparameterize(&eps)?;
                let log_q = Independent::new(base, event)?.log_prob(&z)?;
                let stopped = Independent::new(q(&loc.detach(), &log_scale.detach())?, event)?;
                let log_q_stopped = stopped.log_prob(&z)?;
                Ok(LatentSample {
                    z,
                    log_q,
                    log_q_stopped: Some(log_q_stopped),
                })
            }
        }
    }

    /// Draws the noise as [`Posterior::rsample_with_log_prob`] does; the split is the base
    /// Gaussian's per-coordinate density minus each IAF step's `log σ_d` (carried through the
    /// reversals); `None` for planar and Sylvester flows.
    fn rsample_with_log_prob_per_dim(
        &self,
        num_samples: usize,
        noise: &mut dyn NoiseSource,
    ) -> Result<Option<(LatentSample, Tensor)>> {
        let loc = &self.encoded.loc;
        let shape: Vec<usize> = [&[num_samples][..], loc.dims()].concat();
        let eps = noise.standard_normal(&shape.into(), loc.dtype(), loc.device())?;
        let identity = FlowPosterior::new(FlowChain::default());
        let flow = self.flow.unwrap_or(&identity);
        let Some((s, dims)) = flow.push_forward_per_dim(&self.encoded, &eps, self.pass)? else {
            return Ok(None);
        };
        Ok(Some((
            LatentSample {
                z: batch_first(&s.z)?,
                log_q: batch_first(&s.log_q)?,
                log_q_stopped: None,
            },
            batch_first(&dims)?,
        )))
    }

    fn reparameterize(&self, eps: &Tensor) -> Result<LatentSample> {
        let eps = batch_first(eps)?; // [S, B, D]
        let s = match self.flow {
            Some(flow) => flow.push_forward(&self.encoded, &eps, self.pass)?,
            // The identity flow: the plain Gaussian's noise-to-sample map.
            None => FlowPosterior::new(FlowChain::default()).push_forward(
                &self.encoded,
                &eps,
                self.pass,
            )?,
        };
        Ok(LatentSample {
            z: batch_first(&s.z)?,
            log_q: batch_first(&s.log_q)?,
            log_q_stopped: None,
        })
    }

    fn base_gaussian(&self) -> Option<(Tensor, Tensor)> {
        Some((self.encoded.loc.clone(), self.encoded.log_scale.clone()))
    }

    fn log_prob(&self, z: &Tensor) -> Result<Tensor> {
        if self.flow.is_some() {
            candle::bail!(
                "log_prob: a flow posterior has a density only along its sampling path; use rsample_with_log_prob"
            );
        }
        batch_first(&self.base.log_prob(&batch_first(z)?)?)
    }

    fn as_distribution(&self) -> Option<&dyn Distribution> {
        match self.flow {
            None => Some(&self.base),
            Some(_) => None,
        }
    }
}

impl<E: Encoder> InferenceNetwork for EncoderFlow<E> {
    fn forward<'a>(&'a self, x: &Tensor, pass: Pass<'a>) -> Result<Box<dyn Posterior + 'a>> {
        let encoded = self.encoder.forward(x, pass)?;
        Ok(Box::new(GaussianFlowPosterior::new(
            encoded,
            Some(&self.posterior),
            pass,
        )?))
    }
}

/// `p(x, z) = p(x|z) p(z)` with a decoder network for `p(x|z)` and a [`LatentPrior`]
/// (the standard normal unless [`DecoderModel::with_prior`] says otherwise).
#[derive(Debug)]
pub struct DecoderModel<D> {
    decoder: D,
    prior: Box<dyn LatentPrior>,
}

impl<D: Decoder> DecoderModel<D> {
    /// A model from a decoder; the prior is a standard normal on the decoder's latent space.
    ///
    /// # Errors
    /// A non-float dtype.
    pub fn new(decoder: D, dtype: DType, device: &Device) -> Result<Self> {
        let prior = StandardNormalPrior::new(decoder.latent_dim(), dtype, device)?;
        Self::with_prior(decoder, Box::new(prior))
    }

    /// A model from a decoder and a prior over the decoder's latent space.
    ///
    /// # Errors
    /// A prior of another dimension than the decoder's.
    pub fn with_prior(decoder: D, prior: Box<dyn LatentPrior>) -> Result<Self> {
        if prior.latent_dim() != decoder.latent_dim() {
            candle::bail!(
                "DecoderModel: a prior of {} dimensions for a decoder of {}",
                prior.latent_dim(),
                decoder.latent_dim()
            );
        }
        Ok(Self { decoder, prior })
    }

    /// The decoder.
    pub fn decoder(&self) -> &D {
        &self.decoder
    }
}

impl<D: Decoder> GenerativeModel for DecoderModel<D> {
    fn forward(&self, z: &Tensor, pass: Pass) -> Result<Box<dyn Distribution>> {
        self.decoder.forward(z, pass)?.distribution()
    }

    /// As the trait's, through [`Decoder::log_likelihood_rows`] on `z` folded to rows: for
    /// Bernoulli pixels `x` is never broadcast over the samples, no view of the logits enters
    /// the graph, and the dense decoder fuses its output layer with the likelihood.
    fn log_likelihood(&self, x: &Tensor, z: &Tensor, pass: Pass) -> Result<Tensor> {
        let (b, s, d) = z.dims3()?;
        if x.dim(0)? != b {
            candle::bail!("log_likelihood: x {:?} against z {:?}", x.dims(), z.dims());
        }
        self.decoder
            .log_likelihood_rows(&z.reshape((b * s, d))?, x, pass)
    }
    fn prior(&self, pass: Pass) -> Result<PriorRef<'_>> {
        self.prior.distribution(pass)
    }
}
