//! The configuration of a discrete-latent model.

use super::units::LatentUnits;
use serde::{Deserialize, Serialize};
use vaekit_nets::Activation;

/// A model with stochastic layers of discrete units.
///
/// The generative model is `p(z_L) Π_{l<L} p(z_l | z_{l+1}) p(x | z_1)` (top layer last in
/// `layers`), each conditional a network with the `hidden` widths (none: a linear layer, i.e.
/// a sigmoid belief network) ending in logits; the top layer's prior has learned logits. The
/// inference network mirrors it: `q(z_1 | x) Π_{l>1} q(z_l | z_{l-1})`. The latent vector is
/// the concatenation `[z_1, .., z_L]`.
///
/// # References
/// Neal, "Connectionist learning of belief networks", 1992; Mnih & Gregor, arXiv 1402.0030
/// (SBN and the NVIL baseline network); Jang et al., arXiv 1611.01144 (categorical VAE).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscreteConfig {
    /// Width of the data (784 for MNIST).
    pub data_dim: usize,
    /// The stochastic layers, the one next to the data first.
    pub layers: Vec<LatentUnits>,
    /// Hidden widths of every conditional network.
    pub hidden: Vec<usize>,
    /// Activation of the hidden layers.
    pub activation: Activation,
    /// Hidden width of the learned input-dependent baseline `b(x)` of the inference network
    /// (NVIL uses one tanh layer of 100 units); `None` builds none.
    pub baseline_hidden: Option<usize>,
}

impl DiscreteConfig {
    /// A sigmoid belief network on `data_dim` inputs with linear conditionals and binary
    /// layers of the given widths (no baseline network; NVIL's has 100 tanh units).
    pub fn sigmoid_belief_net(data_dim: usize, units: &[usize]) -> Self {
        Self {
            data_dim,
            layers: units
                .iter()
                .map(|&units| LatentUnits::Bernoulli { units })
                .collect(),
            hidden: Vec::new(),
            activation: Activation::Tanh,
            baseline_hidden: None,
        }
    }

    /// The Gumbel-softmax paper's categorical VAE: `variables × classes` latents, networks
    /// with hidden layers 512 and 256 (ReLU).
    pub fn categorical_vae(data_dim: usize, variables: usize, classes: usize) -> Self {
        Self {
            data_dim,
            layers: vec![LatentUnits::Categorical { variables, classes }],
            hidden: vec![512, 256],
            activation: Activation::Relu,
            baseline_hidden: None,
        }
    }

    /// Width of the latent vector.
    pub fn latent_dim(&self) -> usize {
        self.layers.iter().map(LatentUnits::width).sum()
    }

    /// Checks the configuration before any tensor exists.
    ///
    /// # Errors
    /// No layers, an empty layer, a zero data or hidden width.
    pub fn validate(&self) -> Result<(), String> {
        if self.data_dim == 0 || self.layers.is_empty() {
            return Err("discrete model: needs data_dim > 0 and at least one layer".into());
        }
        if let Some(l) = self.layers.iter().find(|l| !l.is_valid()) {
            return Err(format!(
                "discrete model: invalid layer {l:?} (units > 0, classes >= 2)"
            ));
        }
        if self.hidden.contains(&0) || self.baseline_hidden == Some(0) {
            return Err("discrete model: hidden widths must be > 0".into());
        }
        Ok(())
    }
}
