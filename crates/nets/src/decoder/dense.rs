//! The dense decoder, mirroring [`crate::DenseEncoder`].

use super::{Decoder, DecoderOutput, Likelihood};
use crate::encoder::DenseConfig;
use crate::encoder::DenseStack;
use crate::linear::{Linear, LinearConfig, linear};
use crate::pass::Pass;
use candle::{Result, Tensor};
use candle_nn::VarBuilder;

/// A dense decoder: the encoder's hidden widths in reverse (`fc{i}`, the latent fed to every
/// layer when configured), then a plain output layer (`out`).
///
/// # Shapes
/// `z: [N, latent_dim]` gives parameters over `[N, input_dim]`.
#[derive(Debug, Clone)]
pub struct DenseDecoder {
    stack: DenseStack,
    out: Linear,
    likelihood: Likelihood,
    latent_dim: usize,
}

/// Builds a dense decoder at `vb`'s path.
///
/// # Errors
/// Zero dimensions; variable creation errors.
pub fn dense_decoder(
    config: &DenseConfig,
    likelihood: Likelihood,
    vb: VarBuilder,
) -> Result<DenseDecoder> {
    if config.input_dim == 0 || config.latent_dim == 0 {
        candle::bail!("dense_decoder: input_dim and latent_dim must be > 0");
    }
    let hidden: Vec<usize> = config.hidden.iter().rev().copied().collect();
    let stack = DenseStack::new(
        config.latent_dim,
        &hidden,
        config.activation,
        config.norm,
        config.input_to_every_layer,
        &vb,
    )?;
    let k = likelihood.outputs_per_pixel();
    let out = linear(
        stack.out_dim(config.latent_dim),
        k * config.input_dim,
        LinearConfig::default(),
        vb.pp("out"),
    )?;
    Ok(DenseDecoder {
        stack,
        out,
        likelihood,
        latent_dim: config.latent_dim,
    })
}

impl Decoder for DenseDecoder {
    fn forward(&self, z: &Tensor, pass: Pass) -> Result<DecoderOutput> {
        let raw = self.out.forward(&self.stack.forward(z, pass)?, pass)?;
        DecoderOutput::from_rows(&raw, self.likelihood)
    }
    fn latent_dim(&self) -> usize {
        self.latent_dim
    }
    /// For Bernoulli pixels and a plain output layer, the layer and the likelihood as one op
    /// (`linear_bernoulli.rs`): the logits and their gradient never enter the graph.
    fn log_likelihood_rows(&self, z: &Tensor, x: &Tensor, pass: Pass) -> Result<Tensor> {
        if self.likelihood == Likelihood::Bernoulli
            && let Some((w, b)) = self.out.plain_parts()?
        {
            let h = self.stack.forward(z, pass)?;
            return vaekit_ops::linear_bernoulli_sum(&h, &w, b, x);
        }
        self.forward(z, pass)?.log_likelihood_rows(x)
    }
}
