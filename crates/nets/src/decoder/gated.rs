//! The Sylvester paper's gated-convolution decoder for 28x28 images.

use super::{Decoder, DecoderOutput, Likelihood};
use crate::conv::{Conv2d, ConvConfig, conv2d};
use crate::encoder::GatedConfig;
use crate::gated::{GatedConvTranspose2d, gated_conv_transpose2d};
use crate::pass::Pass;
use candle::{Result, Tensor};
use candle_nn::VarBuilder;

/// (in, out, kernel, stride, padding, output_padding); `0` input channels stands for the
/// latent dimension.
const DECODER_LAYERS: [(usize, usize, usize, usize, usize, usize); 6] = [
    (0, 64, 7, 1, 0, 0),
    (64, 64, 5, 1, 2, 0),
    (64, 32, 5, 2, 2, 1),
    (32, 32, 5, 1, 2, 0),
    (32, 32, 5, 2, 2, 1),
    (32, 32, 5, 1, 2, 0),
];

/// Six gated transposed convolutions, 1 -> 7 -> 14 -> 28, then a 1x1 output convolution
/// (`out`).
///
/// # Shapes
/// `z: [N, latent_dim]` gives parameters over `[N, C·28·28]`.
///
/// # References
/// van den Berg et al., arXiv 1803.05649.
#[derive(Debug, Clone)]
pub struct GatedDecoder {
    layers: Vec<GatedConvTranspose2d>,
    out: Conv2d,
    likelihood: Likelihood,
    config: GatedConfig,
}

/// Builds the gated decoder at `vb`'s path.
///
/// # Errors
/// An image other than 28x28; variable creation errors.
pub fn gated_decoder(
    config: &GatedConfig,
    likelihood: Likelihood,
    vb: VarBuilder,
) -> Result<GatedDecoder> {
    if (config.image.height, config.image.width) != (28, 28) {
        candle::bail!(
            "gated_decoder: the architecture is for 28x28 images, got {:?}",
            config.image
        );
    }
    let mut layers = Vec::new();
    for (i, &(c_in, c_out, k, stride, padding, output_padding)) in DECODER_LAYERS.iter().enumerate()
    {
        let c_in = if c_in == 0 { config.latent_dim } else { c_in };
        let cfg = ConvConfig {
            padding,
            stride,
            output_padding,
            norm: config.norm,
            init_scale: 1.0,
        };
        layers.push(gated_conv_transpose2d(
            c_in,
            c_out,
            k,
            cfg,
            vb.pp(format!("deconv{i}")),
        )?);
    }
    let k = likelihood.outputs_per_pixel() * config.image.channels;
    let out = conv2d(32, k, 1, ConvConfig::default(), vb.pp("out"))?;
    Ok(GatedDecoder {
        layers,
        out,
        likelihood,
        config: config.clone(),
    })
}

impl Decoder for GatedDecoder {
    fn forward(&self, z: &Tensor, pass: Pass) -> Result<DecoderOutput> {
        let n = z.dim(0)?;
        let mut h = z.reshape((n, self.config.latent_dim, 1, 1))?;
        for layer in &self.layers {
            h = layer.forward(&h, pass)?;
        }
        let raw = self.out.forward(&h, pass)?.reshape((
            n,
            self.likelihood.outputs_per_pixel(),
            self.config.image.pixels(),
        ))?;
        DecoderOutput::from_raw(&raw, self.likelihood)
    }
    fn latent_dim(&self) -> usize {
        self.config.latent_dim
    }
}
