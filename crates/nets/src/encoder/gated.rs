//! The Sylvester paper's gated-convolution encoder for 28x28 images.

use super::resnet::ImageShape;
use super::{Encoder, EncoderOutput, GaussianHead};
use crate::conv::ConvConfig;
use crate::gated::{GatedConv2d, gated_conv2d};
use crate::norm::Normalization;
use crate::pass::Pass;
use candle::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

/// Configuration of the gated-convolution encoder and decoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatedConfig {
    /// Input images; the architecture is fixed for 28x28.
    pub image: ImageShape,
    /// Latent dimension.
    pub latent_dim: usize,
    /// Context dimension (0 for none).
    pub context_dim: usize,
    /// Added to the log-scale head's output.
    pub log_scale_offset: f64,
    /// Normalisation of the convolutions.
    pub norm: Normalization,
}

impl Default for GatedConfig {
    fn default() -> Self {
        Self {
            image: ImageShape::MNIST,
            latent_dim: 64,
            context_dim: 256,
            log_scale_offset: 0.0,
            norm: Normalization::None,
        }
    }
}

/// (in, out, kernel, stride, padding) of the encoder's six gated convolutions; `0` input
/// channels stands for the image's.
pub(crate) const ENCODER_LAYERS: [(usize, usize, usize, usize, usize); 6] = [
    (0, 32, 5, 1, 2),
    (32, 32, 5, 2, 2),
    (32, 64, 5, 1, 2),
    (64, 64, 5, 2, 2),
    (64, 64, 5, 1, 2),
    (64, 256, 7, 1, 0),
];

/// Six 5x5 / 7x7 gated convolutions, 28x28 -> 14 -> 7 -> 1 with 256 features, then the
/// heads at `head.*`.
///
/// # Shapes
/// `x: [B, C·28·28]` gives loc, log_scale `[B, latent_dim]`, context `[B, context_dim]`.
///
/// # References
/// van den Berg, Hasenclever, Tomczak, Welling, "Sylvester normalizing flows for variational
/// inference", arXiv 1803.05649 (appendix and reference code).
#[derive(Debug, Clone)]
pub struct GatedEncoder {
    layers: Vec<GatedConv2d>,
    head: GaussianHead,
    config: GatedConfig,
}

/// Builds the gated encoder at `vb`'s path.
///
/// # Errors
/// An image other than 28x28; variable creation errors.
pub fn gated_encoder(config: &GatedConfig, vb: VarBuilder) -> Result<GatedEncoder> {
    if (config.image.height, config.image.width) != (28, 28) {
        candle::bail!(
            "gated_encoder: the architecture is for 28x28 images, got {:?}",
            config.image
        );
    }
    let mut layers = Vec::new();
    for (i, &(c_in, c_out, k, stride, padding)) in ENCODER_LAYERS.iter().enumerate() {
        let c_in = if c_in == 0 {
            config.image.channels
        } else {
            c_in
        };
        let cfg = ConvConfig {
            padding,
            stride,
            output_padding: 0,
            norm: config.norm,
            init_scale: 1.0,
        };
        layers.push(gated_conv2d(
            c_in,
            c_out,
            k,
            cfg,
            vb.pp(format!("conv{i}")),
        )?);
    }
    let head = GaussianHead::new(
        256,
        config.latent_dim,
        config.context_dim,
        config.log_scale_offset,
        vb.pp("head"),
    )?;
    Ok(GatedEncoder {
        layers,
        head,
        config: config.clone(),
    })
}

impl Encoder for GatedEncoder {
    fn forward(&self, x: &Tensor, pass: Pass) -> Result<EncoderOutput> {
        let mut h = self.config.image.to_images(x)?;
        for layer in &self.layers {
            h = layer.forward(&h, pass)?;
        }
        self.head.forward(&h.flatten_from(1)?, pass)
    }
    fn latent_dim(&self) -> usize {
        self.head.latent_dim()
    }
    fn context_dim(&self) -> usize {
        self.config.context_dim
    }
}
