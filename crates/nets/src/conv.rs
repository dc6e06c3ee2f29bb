//! 2-D convolution and transposed convolution with none / batch / weight normalisation.

use crate::activation::Activation;
use crate::norm::{Normalization, weight_norm_output};
use crate::pass::Pass;
use candle::{Result, Tensor};
use candle_nn::{BatchNorm, Init, ModuleT, VarBuilder};
use serde::{Deserialize, Serialize};
use vaekit_ops::ConvGeometry;
use vaekit_ops::{conv_transpose2d_bias, conv2d_bias};
use vaekit_ops::{conv_transpose2d_gemm, conv2d_gemm};

/// Configuration of a [`Conv2d`] or [`ConvTranspose2d`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConvConfig {
    /// Zero padding.
    pub padding: usize,
    /// Stride.
    pub stride: usize,
    /// Extra rows/columns on the output of a transposed convolution.
    pub output_padding: usize,
    /// Normalisation.
    pub norm: Normalization,
    /// Output standard deviation after data-dependent initialisation (weight norm).
    pub init_scale: f64,
}

impl Default for ConvConfig {
    fn default() -> Self {
        Self {
            padding: 0,
            stride: 1,
            output_padding: 0,
            norm: Normalization::None,
            init_scale: 1.0,
        }
    }
}

/// Shared parameters of both convolution layers.
#[derive(Debug, Clone)]
struct ConvParams {
    weight: Tensor,
    bias: Option<Tensor>,
    g: Option<Tensor>,
    bn: Option<BatchNorm>,
    config: ConvConfig,
    path: String,
}

impl ConvParams {
    /// `weight_shape` puts the output channels at `out_axis`.
    fn new(
        weight_shape: (usize, usize, usize, usize),
        out_channels: usize,
        fan_in: usize,
        config: ConvConfig,
        vb: VarBuilder,
    ) -> Result<Self> {
        let path = vb.prefix();
        let init = match config.norm {
            Normalization::Weight => Init::Randn {
                mean: 0.0,
                stdev: 0.05,
            },
            _ => Init::Randn {
                mean: 0.0,
                stdev: 1.0 / (fan_in.max(1) as f64).sqrt(),
            },
        };
        let weight = vb.get_with_hints(weight_shape, "weight", init)?;
        let bias = match config.norm {
            Normalization::Batch => None,
            _ => Some(vb.get_with_hints(out_channels, "bias", Init::Const(0.0))?),
        };
        let g = match config.norm {
            Normalization::Weight => {
                Some(vb.get_with_hints(out_channels, "g", Init::Const(1.0))?)
            }
            _ => None,
        };
        let bn = match config.norm {
            Normalization::Batch => Some(candle_nn::batch_norm(
                out_channels,
                candle_nn::BatchNormConfig::default(),
                vb.pp("bn"),
            )?),
            _ => None,
        };
        Ok(Self {
            weight,
            bias,
            g,
            bn,
            config,
            path,
        })
    }

    /// The kernel and bias of `scale · (conv(x) + bias)` when the layer's normalisation
    /// folds into them, for one op that adds the bias ([`crate::conv_bias`]): a plain bias,
    /// or weight norm outside [`Pass::DataInit`] (whose statistics need the unscaled
    /// output), as `w = v · g / |v|` per output channel on the weight's `out_axis`. `None`
    /// for batch norm, data-dependent initialisation, and a layer without a bias.
    fn folded(&self, out_axis: usize, scale: f64, pass: Pass) -> Result<Option<(Tensor, Tensor)>> {
        let Some(b) = &self.bias else {
            return Ok(None);
        };
        let weight = match (&self.g, pass) {
            (Some(_), Pass::DataInit(_)) => return Ok(None),
            (Some(g), _) => {
                let per_out = self.v_norm(out_axis)?;
                let mut dims = [1usize; 4];
                dims[out_axis] = per_out.elem_count();
                let s = ((g / per_out)? * scale)?.reshape(dims.as_slice())?;
                self.weight.broadcast_mul(&s)?
            }
            (None, _) if scale == 1.0 => self.weight.clone(),
            (None, _) => (&self.weight * scale)?,
        };
        let bias = if scale == 1.0 {
            b.clone()
        } else {
            (b * scale)?
        };
        Ok(Some((weight, bias)))
    }

    /// `|v|` per output channel, the weight's axis `out_axis` (0 or 1).
    fn v_norm(&self, out_axis: usize) -> Result<Tensor> {
        if out_axis == 0 {
            // Rows of the [out, in·k·k] matrix: one pass each way.
            let out = self.weight.dim(0)?;
            vaekit_ops::row_norm(&self.weight.reshape((out, ()))?)
        } else {
            (self.weight.sqr()?.sum([0, 2, 3])? + 1e-12)?.sqrt()
        }
    }

    /// Bias / normalisation applied to `t` (computed with the raw weight), the output
    /// channels on the weight's `out_axis`.
    fn finish(&self, t: Tensor, out_axis: usize, pass: Pass) -> Result<Tensor> {
        match (&self.g, &self.bn, &self.bias) {
            (Some(g), _, Some(b)) => {
                let v_norm = self.v_norm(out_axis)?;
                weight_norm_output(&t, &v_norm, g, b, &self.path, self.config.init_scale, pass)
            }
            (None, Some(bn), _) => bn.forward_t(&t, pass.train()),
            (_, _, Some(b)) => vaekit_ops::bias_add(&t, b),
            (_, _, None) => Ok(t),
        }
    }
}

/// A 2-D convolution, one group, computed by [`conv2d_gemm`] on CPU. Parameters: `weight` `[out, in, k, k]`, `bias`, `g` or `bn.*`.
///
/// # Shapes
/// `[B, in, H, W]` gives `[B, out, H', W']`, `H' = (H + 2p - k) / s + 1`.
#[derive(Debug, Clone)]
pub struct Conv2d(ConvParams);

/// A 2-D convolution `in -> out` with a `kernel x kernel` window at `vb`'s path.
///
/// # Errors
/// Variable creation errors.
pub fn conv2d(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    config: ConvConfig,
    vb: VarBuilder,
) -> Result<Conv2d> {
    let shape = (out_channels, in_channels, kernel, kernel);
    Ok(Conv2d(ConvParams::new(
        shape,
        out_channels,
        in_channels * kernel * kernel,
        config,
        vb,
    )?))
}

impl Conv2d {
    /// Applies the convolution.
    ///
    /// # Errors
    /// Shape errors.
    pub fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        self.forward_pre(x, Activation::Identity, 1.0, pass)
    }

    /// `scale · self.forward(act(x), pass)` (a pre-activation ResNet layer), with `act` and
    /// `scale` fused into one op where the normalisation allows (a plain bias, or weight
    /// norm outside data-dependent initialisation): `scale` folded into the kernel and
    /// bias, tanh or ELU applied per image as the convolution reads it (f32 on CPU). No
    /// tensor for `act(x)`, no extra pass for the scale.
    ///
    /// # Errors
    /// Shape errors.
    pub fn forward_pre(
        &self,
        x: &Tensor,
        act: Activation,
        scale: f64,
        pass: Pass,
    ) -> Result<Tensor> {
        let c = &self.0.config;
        let geometry = ConvGeometry {
            padding: c.padding,
            stride: c.stride,
            dilation: 1,
        };
        if let Some((w, b)) = self.0.folded(0, scale, pass)? {
            let pre = act.fused();
            let x = match pre {
                Some(_) => x.clone(),
                None => act.apply(x)?,
            };
            return conv2d_bias(&x, &w, &b, geometry, pre);
        }
        let t = conv2d_gemm(&act.apply(x)?, &self.0.weight, geometry)?;
        let y = self.0.finish(t, 0, pass)?;
        if scale == 1.0 { Ok(y) } else { y * scale }
    }
}

/// A 2-D transposed convolution. Parameters: `weight` `[in, out, k, k]`, `bias`, `g` or `bn.*`.
///
/// # Shapes
/// `[B, in, H, W]` gives `[B, out, (H - 1) s - 2p + k + output_padding, ..]`.
#[derive(Debug, Clone)]
pub struct ConvTranspose2d(ConvParams);

/// A transposed convolution `in -> out` at `vb`'s path.
///
/// # Errors
/// Variable creation errors.
pub fn conv_transpose2d(
    in_channels: usize,
    out_channels: usize,
    kernel: usize,
    config: ConvConfig,
    vb: VarBuilder,
) -> Result<ConvTranspose2d> {
    let shape = (in_channels, out_channels, kernel, kernel);
    Ok(ConvTranspose2d(ConvParams::new(
        shape,
        out_channels,
        in_channels * kernel * kernel,
        config,
        vb,
    )?))
}

impl ConvTranspose2d {
    /// Applies the transposed convolution.
    ///
    /// # Errors
    /// Shape errors.
    pub fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let c = &self.0.config;
        let shape = (c.padding, c.stride, c.output_padding);
        if let Some((w, b)) = self.0.folded(1, 1.0, pass)? {
            return conv_transpose2d_bias(x, &w, &b, shape);
        }
        let t = conv_transpose2d_gemm(x, &self.0.weight, c.padding, c.stride, c.output_padding)?;
        self.0.finish(t, 1, pass)
    }
}
