//! Gated convolutions: `h(x) ⊙ sigmoid(g(x))`.

use crate::conv::{Conv2d, ConvConfig, ConvTranspose2d, conv_transpose2d, conv2d};
use crate::pass::Pass;
use candle::{Result, Tensor};
use candle_nn::VarBuilder;
use vaekit_core::log_sigmoid;

/// A gated convolution: two convolutions `h` and `g` of the same shape, combined as
/// `h(x) ⊙ sigmoid(g(x))`. Parameters at `h.*` and `g.*`.
///
/// # Shapes
/// As [`Conv2d`].
///
/// # References
/// Dauphin et al., "Language modeling with gated convolutional networks", arXiv 1612.08083;
/// van den Berg et al., "Sylvester normalizing flows", arXiv 1803.05649 (their VAE networks).
#[derive(Debug, Clone)]
pub struct GatedConv2d {
    h: Conv2d,
    g: Conv2d,
}

/// A gated convolution at `vb`'s path.
///
/// # Errors
/// Variable creation errors.
pub fn gated_conv2d(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    config: ConvConfig,
    vb: VarBuilder,
) -> Result<GatedConv2d> {
    Ok(GatedConv2d {
        h: conv2d(in_channels, out_channels, kernel, config, vb.pp("h"))?,
        g: conv2d(in_channels, out_channels, kernel, config, vb.pp("g"))?,
    })
}

impl GatedConv2d {
    /// Applies the layer.
    ///
    /// # Errors
    /// Shape errors.
    pub fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        self.h.forward(x, pass)? * log_sigmoid(&self.g.forward(x, pass)?)?.exp()?
    }
}

/// A gated transposed convolution, `h(x) ⊙ sigmoid(g(x))` with transposed convolutions.
///
/// # Shapes
/// As [`ConvTranspose2d`].
#[derive(Debug, Clone)]
pub struct GatedConvTranspose2d {
    h: ConvTranspose2d,
    g: ConvTranspose2d,
}

/// A gated transposed convolution at `vb`'s path.
///
/// # Errors
/// Variable creation errors.
pub fn gated_conv_transpose2d(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    config: ConvConfig,
    vb: VarBuilder,
) -> Result<GatedConvTranspose2d> {
    Ok(GatedConvTranspose2d {
        h: conv_transpose2d(in_channels, out_channels, kernel, config, vb.pp("h"))?,
        g: conv_transpose2d(in_channels, out_channels, kernel, config, vb.pp("g"))?,
    })
}

impl GatedConvTranspose2d {
    /// Applies the layer.
    ///
    /// # Errors
    /// Shape errors.
    pub fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        self.h.forward(x, pass)? * log_sigmoid(&self.g.forward(x, pass)?)?.exp()?
    }
}
