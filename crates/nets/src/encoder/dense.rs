//! The dense encoder: fully connected layers, the input fed to every layer.

use super::{Encoder, EncoderOutput, GaussianHead};
use crate::activation::Activation;
use crate::linear::{Linear, LinearConfig, linear};
use crate::norm::Normalization;
use crate::pass::Pass;
use candle::{D, Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};

/// Configuration of a [`DenseEncoder`] (and of the mirrored dense decoder).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DenseConfig {
    /// Input width (784 for MNIST).
    pub input_dim: usize,
    /// Hidden widths, first to last (the IWAE paper: `[200, 200]`).
    pub hidden: Vec<usize>,
    /// Activation of the hidden layers.
    pub activation: Activation,
    /// Normalisation of the hidden layers (never of the output layer).
    pub norm: Normalization,
    /// Feed the network's input to every hidden layer, concatenated with the previous layer's
    /// output (a skip connection from the input).
    pub input_to_every_layer: bool,
    /// Latent dimension.
    pub latent_dim: usize,
    /// Context dimension (0 for none).
    pub context_dim: usize,
    /// Added to the log-scale head's output (e.g. -3 starts the posterior narrow).
    pub log_scale_offset: f64,
}

impl Default for DenseConfig {
    /// The IWAE paper's encoder: 784-200-200-50, tanh, no normalisation.
    fn default() -> Self {
        Self {
            input_dim: 784,
            hidden: vec![200, 200],
            activation: Activation::Tanh,
            norm: Normalization::None,
            input_to_every_layer: false,
            latent_dim: 50,
            context_dim: 0,
            log_scale_offset: 0.0,
        }
    }
}

/// A stack of linear layers, each fed the previous output and optionally the stack's input.
#[derive(Debug, Clone)]
pub(crate) struct DenseStack {
    layers: Vec<Linear>,
    activation: Activation,
    input_to_every_layer: bool,
}

impl DenseStack {
    /// Widths `input -> hidden[0] -> ... -> hidden[n-1]`; layers at `vb.pp("fc{i}")`.
    pub(crate) fn new(
        input: usize,
        hidden: &[usize],
        activation: Activation,
        norm: Normalization,
        input_to_every_layer: bool,
        vb: &VarBuilder,
    ) -> Result<Self> {
        let mut layers = Vec::with_capacity(hidden.len());
        let mut width = input;
        for (i, &h) in hidden.iter().enumerate() {
            let fan_in = if i > 0 && input_to_every_layer {
                width + input
            } else {
                width
            };
            layers.push(linear(
                fan_in,
                h,
                LinearConfig {
                    norm,
                    init_scale: 1.0,
                },
                vb.pp(format!("fc{i}")),
            )?);
            width = h;
        }
        Ok(Self {
            layers,
            activation,
            input_to_every_layer,
        })
    }

    pub(crate) fn out_dim(&self, input: usize) -> usize {
        self.layers.last().map_or(input, Linear::out_dim)
    }

    pub(crate) fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let mut h = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            let input = if i > 0 && self.input_to_every_layer {
                Tensor::cat(&[&h, x], D::Minus1)?
            } else {
                h
            };
            h = layer.forward_act(&input, self.activation, pass)?;
        }
        Ok(h)
    }
}

/// A dense encoder: [`DenseConfig::hidden`] layers then the Gaussian and context heads at
/// `head.*`.
///
/// # Shapes
/// `x: [B, input_dim]` gives loc, log_scale `[B, latent_dim]`, context `[B, context_dim]`.
///
/// # References
/// Burda, Grosse, Salakhutdinov, arXiv 1509.00519 (architecture); Kingma et al.,
/// arXiv 1606.04934 (input fed to every layer, ELU, batch norm).
#[derive(Debug, Clone)]
pub struct DenseEncoder {
    stack: DenseStack,
    head: GaussianHead,
    config: DenseConfig,
}

/// Builds a dense encoder at `vb`'s path.
///
/// # Errors
/// A zero input or latent dimension; variable creation errors.
pub fn dense_encoder(config: &DenseConfig, vb: VarBuilder) -> Result<DenseEncoder> {
    if config.input_dim == 0 || config.latent_dim == 0 {
        candle::bail!("dense_encoder: input_dim and latent_dim must be > 0");
    }
    let stack = DenseStack::new(
        config.input_dim,
        &config.hidden,
        config.activation,
        config.norm,
        config.input_to_every_layer,
        &vb,
    )?;
    let head = GaussianHead::new(
        stack.out_dim(config.input_dim),
        config.latent_dim,
        config.context_dim,
        config.log_scale_offset,
        vb.pp("head"),
    )?;
    Ok(DenseEncoder {
        stack,
        head,
        config: config.clone(),
    })
}

impl Encoder for DenseEncoder {
    fn forward(&self, x: &Tensor, pass: Pass) -> Result<EncoderOutput> {
        let x = x.flatten_from(1)?;
        self.head.forward(&self.stack.forward(&x, pass)?, pass)
    }
    fn latent_dim(&self) -> usize {
        self.head.latent_dim()
    }
    fn context_dim(&self) -> usize {
        self.config.context_dim
    }
}
