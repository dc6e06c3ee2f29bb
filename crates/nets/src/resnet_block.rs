//! The pre-activation ResNet block of the IAF paper, with down- and up-sampling variants.

use crate::activation::Activation;
use crate::conv::{Conv2d, ConvConfig, ConvTranspose2d, conv_transpose2d, conv2d};
use crate::norm::Normalization;
use crate::pass::Pass;
use candle::{Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

/// How a block changes the spatial size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Resample {
    /// Same size.
    Same,
    /// Halve (rounding up) with stride-2 convolutions.
    Down,
    /// Double (plus `output_padding`) with stride-2 transposed convolutions.
    UpTransposed {
        /// 0 or 1: the extra row/column that makes the size match the encoder's.
        output_padding: usize,
    },
    /// Nearest-neighbour upsampling to `size x size`, then a same-size block.
    UpNearest {
        /// Target height and width.
        size: usize,
    },
}

/// Configuration of a [`ResBlock`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ResBlockConfig {
    /// Square kernel size (odd).
    pub kernel: usize,
    /// Spatial resampling.
    pub resample: Resample,
    /// Normalisation of both convolutions.
    pub norm: Normalization,
    /// Activation before each convolution.
    pub activation: Activation,
    /// The residual branch is scaled by this before the sum (0.1 in the IAF code).
    pub residual_scale: f64,
}

impl Default for ResBlockConfig {
    fn default() -> Self {
        Self {
            kernel: 3,
            resample: Resample::Same,
            norm: Normalization::Weight,
            activation: Activation::Elu,
            residual_scale: 0.1,
        }
    }
}

#[derive(Debug, Clone)]
enum First {
    Conv(Conv2d),
    Transposed(ConvTranspose2d),
}

/// `y = shortcut(x) + s · conv2(act(conv1(act(x))))`, where `conv1` carries the resampling and
/// the shortcut is the identity, or a 1x1 (transposed) convolution when the shape changes.
///
/// # Shapes
/// `[B, in, H, W]` gives `[B, out, H', W']` with `H'` set by [`Resample`].
///
/// # References
/// He et al., "Identity mappings in deep residual networks", arXiv 1603.05027; Kingma et al.,
/// arXiv 1606.04934, appendix (ResNet VAE).
#[derive(Debug, Clone)]
pub struct ResBlock {
    first: First,
    second: Conv2d,
    shortcut: Option<First>,
    config: ResBlockConfig,
}

/// A ResNet block `in -> out` at `vb`'s path (`conv1`, `conv2`, `shortcut`).
///
/// # Errors
/// An even kernel; variable creation errors.
pub fn res_block(
    in_channels: usize,
    out_channels: usize,
    config: ResBlockConfig,
    vb: VarBuilder,
) -> Result<ResBlock> {
    if config.kernel.is_multiple_of(2) {
        candle::bail!(
            "res_block: the kernel size must be odd, got {}",
            config.kernel
        );
    }
    let pad = config.kernel / 2;
    let base = ConvConfig {
        padding: pad,
        stride: 1,
        output_padding: 0,
        norm: config.norm,
        init_scale: 1.0,
    };
    let plain_1x1 = ConvConfig {
        padding: 0,
        norm: Normalization::None,
        ..base
    };
    let (first, shortcut) = match config.resample {
        Resample::Same | Resample::UpNearest { .. } => (
            First::Conv(conv2d(
                in_channels,
                out_channels,
                config.kernel,
                base,
                vb.pp("conv1"),
            )?),
            (in_channels != out_channels)
                .then(|| {
                    conv2d(in_channels, out_channels, 1, plain_1x1, vb.pp("shortcut"))
                        .map(First::Conv)
                })
                .transpose()?,
        ),
        Resample::Down => (
            First::Conv(conv2d(
                in_channels,
                out_channels,
                config.kernel,
                ConvConfig { stride: 2, ..base },
                vb.pp("conv1"),
            )?),
            Some(First::Conv(conv2d(
                in_channels,
                out_channels,
                1,
                ConvConfig {
                    stride: 2,
                    ..plain_1x1
                },
                vb.pp("shortcut"),
            )?)),
        ),
        Resample::UpTransposed { output_padding } => (
            First::Transposed(conv_transpose2d(
                in_channels,
                out_channels,
                config.kernel,
                ConvConfig {
                    stride: 2,
                    output_padding,
                    ..base
                },
                vb.pp("conv1"),
            )?),
            Some(First::Transposed(conv_transpose2d(
                in_channels,
                out_channels,
                1,
                ConvConfig {
                    stride: 2,
                    output_padding,
                    ..plain_1x1
                },
                vb.pp("shortcut"),
            )?)),
        ),
    };
    let second = conv2d(
        out_channels,
        out_channels,
        config.kernel,
        base,
        vb.pp("conv2"),
    )?;
    Ok(ResBlock {
        first,
        second,
        shortcut,
        config,
    })
}

fn apply(layer: &First, x: &Tensor, pass: Pass) -> Result<Tensor> {
    match layer {
        First::Conv(c) => c.forward(x, pass),
        First::Transposed(c) => c.forward(x, pass),
    }
}

impl ResBlock {
    /// Applies the block.
    ///
    /// # Errors
    /// Shape errors.
    pub fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let x = match self.config.resample {
            Resample::UpNearest { size } => x.upsample_nearest2d(size, size)?,
            _ => x.clone(),
        };
        let act = self.config.activation;
        let h = match &self.first {
            First::Conv(c) => c.forward_pre(&x, act, 1.0, pass)?,
            First::Transposed(c) => c.forward(&act.apply(&x)?, pass)?,
        };
        // The activation and the residual scale fuse into the second convolution.
        let scale = self.config.residual_scale;
        let h = self.second.forward_pre(&h, act, scale, pass)?;
        let skip = match &self.shortcut {
            Some(s) => apply(s, &x, pass)?,
            None => x,
        };
        skip + h
    }
}
