//! Encoders: `x -> (loc, log_scale, context)`.

mod dense;
mod gated;
mod resnet;

pub(crate) use dense::DenseStack;
pub use dense::{DenseConfig, DenseEncoder, dense_encoder};
pub use gated::{GatedConfig, GatedEncoder, gated_encoder};
pub use resnet::{ImageShape, ResNetConfig, ResNetEncoder, Stage, Upsample, resnet_encoder};

use crate::linear::{Linear, LinearConfig, linear};
use crate::pass::Pass;
use candle::{Result, Tensor};
use candle_nn::VarBuilder;
use vaekit_distributions::{Independent, Normal};

/// What an encoder returns for a batch `x: [B, ..]`.
#[derive(Debug, Clone)]
pub struct EncoderOutput {
    /// Posterior means, `[B, D]`.
    pub loc: Tensor,
    /// Posterior log standard deviations, `[B, D]` (the head's output plus the configured
    /// offset).
    pub log_scale: Tensor,
    /// The context vector `h` for conditional flows, `[B, C]` (`C` may be 0).
    pub context: Tensor,
}

impl EncoderOutput {
    /// The diagonal Gaussian `q0(z|x)`, event `[D]`, batch `[B]`. The outputs are not
    /// validated here (a hot path): non-finite ones give non-finite log-densities, which the
    /// objectives report and the trainer skips.
    ///
    /// # Errors
    /// Shape errors.
    pub fn posterior(&self) -> Result<Independent<Normal>> {
        Independent::new(
            Normal::from_log_scale_unchecked(self.loc.clone(), self.log_scale.clone())?,
            1,
        )
    }
}

/// An inference network's body.
pub trait Encoder: Send + Sync + std::fmt::Debug {
    /// Encodes `x: [B, P]` (flattened images, `P = C·H·W`).
    ///
    /// # Errors
    /// Shape errors.
    fn forward(&self, x: &Tensor, pass: Pass) -> Result<EncoderOutput>;
    /// Latent dimension `D`.
    fn latent_dim(&self) -> usize;
    /// Context dimension `C`.
    fn context_dim(&self) -> usize;
}

/// The output heads shared by every encoder: linear maps from features to `loc`,
/// `log_scale` (+ offset) and `context`.
#[derive(Debug, Clone)]
pub(crate) struct GaussianHead {
    loc: Linear,
    log_scale: Linear,
    context: Option<Linear>,
    offset: f64,
    latent_dim: usize,
}

impl GaussianHead {
    pub(crate) fn new(
        features: usize,
        latent_dim: usize,
        context_dim: usize,
        offset: f64,
        vb: VarBuilder,
    ) -> Result<Self> {
        let cfg = LinearConfig::default();
        Ok(Self {
            loc: linear(features, latent_dim, cfg, vb.pp("loc"))?,
            log_scale: linear(features, latent_dim, cfg, vb.pp("log_scale"))?,
            context: (context_dim > 0)
                .then(|| linear(features, context_dim, cfg, vb.pp("context")))
                .transpose()?,
            offset,
            latent_dim,
        })
    }

    pub(crate) fn forward(&self, features: &Tensor, pass: Pass) -> Result<EncoderOutput> {
        let context = match &self.context {
            Some(c) => c.forward(features, pass)?,
            None => Tensor::zeros((features.dim(0)?, 0), features.dtype(), features.device())?,
        };
        Ok(EncoderOutput {
            loc: self.loc.forward(features, pass)?,
            log_scale: (self.log_scale.forward(features, pass)? + self.offset)?,
            context,
        })
    }

    pub(crate) fn latent_dim(&self) -> usize {
        self.latent_dim
    }
}

impl Encoder for Box<dyn Encoder> {
    fn forward(&self, x: &Tensor, pass: Pass) -> Result<EncoderOutput> {
        (**self).forward(x, pass)
    }
    fn latent_dim(&self) -> usize {
        (**self).latent_dim()
    }
    fn context_dim(&self) -> usize {
        (**self).context_dim()
    }
}
