//! A plain multi-layer perceptron: linear layers with an activation between them.

use candle::{Result, Tensor};
use candle_nn::VarBuilder;
use vaekit_nets::{Activation, Linear, LinearConfig, Pass, linear};

/// `in -> hidden.. -> out`, the activation after every hidden layer, none after the last.
#[derive(Debug, Clone)]
pub(crate) struct Mlp {
    layers: Vec<Linear>,
    activation: Activation,
}

impl Mlp {
    /// Layers at `vb.pp("fc{i}")`.
    pub(crate) fn new(
        in_dim: usize,
        hidden: &[usize],
        out_dim: usize,
        activation: Activation,
        vb: &VarBuilder,
    ) -> Result<Self> {
        let widths: Vec<usize> = std::iter::once(in_dim)
            .chain(hidden.iter().copied())
            .chain(std::iter::once(out_dim))
            .collect();
        let layers = widths
            .windows(2)
            .enumerate()
            .map(|(i, w)| linear(w[0], w[1], LinearConfig::default(), vb.pp(format!("fc{i}"))))
            .collect::<Result<_>>()?;
        Ok(Self { layers, activation })
    }

    /// The same network with every parameter detached: gradients flow through its input
    /// only (DReG's `log q` at stopped parameters).
    pub(crate) fn detached(&self) -> Self {
        Self {
            layers: self.layers.iter().map(Linear::detached).collect(),
            activation: self.activation,
        }
    }

    /// `[N, in]` gives `[N, out]`.
    pub(crate) fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        let mut h = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            h = if i + 1 < self.layers.len() {
                layer.forward_act(&h, self.activation, pass)?
            } else {
                layer.forward(&h, pass)?
            };
        }
        Ok(h)
    }
}
