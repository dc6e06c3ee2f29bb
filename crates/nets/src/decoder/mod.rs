//! Decoders: `z -> p(x|z)` parameters.

mod dense;
mod gated;
mod resnet;

pub use dense::{DenseDecoder, dense_decoder};
pub use gated::{GatedDecoder, gated_decoder};
pub use resnet::{ResNetDecoder, resnet_decoder};

use crate::pass::Pass;
use candle::{D, Result, Tensor};
use serde::{Deserialize, Serialize};
use vaekit_distributions::{Bernoulli, DiscretizedLogistic, Distribution, Independent, Moments};

/// The pixel likelihood a decoder parameterises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Likelihood {
    /// Binary pixels, one logit each.
    #[default]
    Bernoulli,
    /// 8-bit (or `num_bins`-level) pixels in `[0, 1]`: a location and a log-scale each.
    DiscretizedLogistic {
        /// Levels per pixel (256 for 8 bits).
        num_bins: usize,
    },
}

impl Likelihood {
    /// Network outputs per pixel.
    pub fn outputs_per_pixel(&self) -> usize {
        match self {
            Likelihood::Bernoulli => 1,
            Likelihood::DiscretizedLogistic { .. } => 2,
        }
    }
}

/// The parameters of `p(x|z)` for a batch of `N` latent vectors, over `P` pixels.
#[derive(Debug, Clone)]
pub enum DecoderOutput {
    /// Bernoulli logits `[N, P]`.
    Bernoulli {
        /// Logits.
        logits: Tensor,
    },
    /// Discretized logistic locations and log-scales, each `[N, P]`.
    DiscretizedLogistic {
        /// Locations in data units (`[0, 1]`).
        loc: Tensor,
        /// Log-scales.
        log_scale: Tensor,
        /// Levels per pixel.
        num_bins: usize,
    },
}

impl DecoderOutput {
    /// Builds the output from raw network outputs `[N, k, P]` (`k` per [`Likelihood`]).
    pub(crate) fn from_raw(raw: &Tensor, likelihood: Likelihood) -> Result<Self> {
        Ok(match likelihood {
            Likelihood::Bernoulli => DecoderOutput::Bernoulli {
                logits: raw.narrow(1, 0, 1)?.squeeze(1)?,
            },
            Likelihood::DiscretizedLogistic { num_bins } => DecoderOutput::DiscretizedLogistic {
                loc: (raw.narrow(1, 0, 1)?.squeeze(1)? + 0.5)?,
                log_scale: (raw.narrow(1, 1, 1)?.squeeze(1)? - 3.0)?,
                num_bins,
            },
        })
    }

    /// Builds the output from raw network outputs as rows `[N, k·P]` (pixel-major per output
    /// kind, `k` per [`Likelihood`]). Bernoulli logits are the rows themselves: no view
    /// between the output layer and the likelihood, whose backward would copy the logits'
    /// gradient into a zero-filled tensor (candle accumulates every graph edge that way).
    ///
    /// # Errors
    /// A width that is not a multiple of the outputs per pixel.
    pub fn from_rows(raw: &Tensor, likelihood: Likelihood) -> Result<Self> {
        match likelihood {
            Likelihood::Bernoulli => Ok(DecoderOutput::Bernoulli {
                logits: raw.clone(),
            }),
            Likelihood::DiscretizedLogistic { .. } => Self::from_raw(
                &split_outputs(raw, likelihood.outputs_per_pixel())?,
                likelihood,
            ),
        }
    }

    /// `p(x|z)` as a distribution with event `[P]` and batch `[N]`.
    ///
    /// # Errors
    /// Non-finite parameters.
    pub fn distribution(&self) -> Result<Box<dyn Distribution>> {
        Ok(match self {
            DecoderOutput::Bernoulli { logits } => Box::new(Independent::new(
                Bernoulli::new_unchecked(logits.clone())?,
                1,
            )?),
            DecoderOutput::DiscretizedLogistic {
                loc,
                log_scale,
                num_bins,
            } => Box::new(Independent::new(
                DiscretizedLogistic::new_unchecked(loc.clone(), log_scale.exp()?, *num_bins)?,
                1,
            )?),
        })
    }

    /// `log p(x|z)` summed over pixels.
    ///
    /// # Shapes
    /// `x: [N, P]` (or broadcastable to it) gives `[N]`.
    ///
    /// # Errors
    /// Shape errors; non-finite parameters.
    pub fn log_prob(&self, x: &Tensor) -> Result<Tensor> {
        self.distribution()?.log_prob(x)
    }

    /// `log p(x|z)` summed over pixels for outputs of `B·S` rows (sample-minor) against
    /// `x: [B, P]`, giving `[B, S]`. Bernoulli logits go straight into
    /// [`vaekit_core::bernoulli_log_prob_sum`], so `x` is never broadcast over the samples and
    /// no view of the logits enters the graph; other likelihoods broadcast `x`.
    ///
    /// # Errors
    /// Row counts that are not a multiple of `B`; shape errors; non-finite parameters.
    pub fn log_likelihood_rows(&self, x: &Tensor) -> Result<Tensor> {
        let rows = match self {
            // Rows `[B·S, P]` as they are: a reshape here would cost the backward a copy.
            DecoderOutput::Bernoulli { logits } => {
                return vaekit_core::bernoulli_log_prob_sum(logits, x);
            }
            DecoderOutput::DiscretizedLogistic { loc, .. } => loc.dim(0)?,
        };
        let (b, p) = x.dims2()?;
        if b == 0 || rows % b != 0 {
            candle::bail!("log_likelihood_rows: {rows} rows for a batch of {b}");
        }
        let s = rows / b;
        let xs = x
            .unsqueeze(1)?
            .broadcast_as((b, s, p))?
            .reshape((b * s, p))?;
        self.distribution()?.log_prob(&xs)?.reshape((b, s))
    }

    /// The mean image (Bernoulli probabilities, or the clipped logistic location), `[N, P]`:
    /// what reconstructions and samples are drawn as.
    ///
    /// # Errors
    /// Tensor errors.
    pub fn mean(&self) -> Result<Tensor> {
        match self {
            DecoderOutput::Bernoulli { logits } => Bernoulli::new_unchecked(logits.clone())?.mean(),
            DecoderOutput::DiscretizedLogistic { loc, .. } => loc.clamp(0.0, 1.0),
        }
    }
}

/// A generative network's body.
pub trait Decoder: Send + Sync + std::fmt::Debug {
    /// Decodes `z: [N, D]`.
    ///
    /// # Errors
    /// Shape errors.
    fn forward(&self, z: &Tensor, pass: Pass) -> Result<DecoderOutput>;
    /// Latent dimension `D`.
    fn latent_dim(&self) -> usize;
    /// `log p(x|z)` summed over pixels, for `S` latent rows per data point: what an
    /// objective needs of the decoder. By default [`Self::forward`] and
    /// [`DecoderOutput::log_likelihood_rows`]; a decoder may fuse its output layer with the
    /// likelihood (the dense decoder does, for Bernoulli pixels).
    ///
    /// # Shapes
    /// `z: [B·S, D]` (rows sample-minor: row `b·S + s`), `x: [B, P]` give `[B, S]`.
    ///
    /// # Errors
    /// Shape errors; non-finite parameters.
    fn log_likelihood_rows(&self, z: &Tensor, x: &Tensor, pass: Pass) -> Result<Tensor> {
        self.forward(z, pass)?.log_likelihood_rows(x)
    }
}

/// Raw outputs `[N, k·P]` (pixel-major per output kind) as `[N, k, P]`.
pub(crate) fn split_outputs(raw: &Tensor, k: usize) -> Result<Tensor> {
    let n = raw.dim(0)?;
    let p = raw.dim(D::Minus1)? / k;
    raw.reshape((n, k, p))
}

impl Decoder for Box<dyn Decoder> {
    fn forward(&self, z: &Tensor, pass: Pass) -> Result<DecoderOutput> {
        (**self).forward(z, pass)
    }
    fn latent_dim(&self) -> usize {
        (**self).latent_dim()
    }
    fn log_likelihood_rows(&self, z: &Tensor, x: &Tensor, pass: Pass) -> Result<Tensor> {
        (**self).log_likelihood_rows(z, x, pass)
    }
}
