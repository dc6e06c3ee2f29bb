//! The shape of a stochastic hierarchy.

use super::layer_flow::LayerIaf;
use candle::{Result, Tensor};
use serde::{Deserialize, Serialize};
use vaekit_nets::Activation;

/// One Gaussian latent layer and the deterministic layers below it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StochasticLayer {
    /// Latent units of the layer, `D_l >= 1`.
    pub units: usize,
    /// Deterministic hidden widths between the layer below (`x` for the first) and this one,
    /// bottom to top; the generative network uses them in reverse. Each `>= 1`.
    pub hidden: Vec<usize>,
}

/// How the posterior orders a hierarchy's layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HierarchyInference {
    /// `q(z_1|x) Π_l q(z_l|z_{l-1})`, each layer from the one below (the IWAE paper's
    /// two-layer model; [`crate::HierarchicalEncoder`]). The KL of the top layer is in closed
    /// form given the draw below it; the others are Monte Carlo, since `p(z_l|z_{l+1})`
    /// depends on a layer drawn after `z_l`.
    #[default]
    BottomUp,
    /// `q(z_L|x) Π_l q(z_l|z_{l+1}, x)`, top first, each conditional the decoder's own
    /// `p(z_l|z_{l+1})` times a Gaussian from a deterministic bottom-up pass over `x`: the
    /// ladder VAE's inference, sharing the generative path ([`crate::TopDownEncoder`]). Every
    /// layer's KL is in closed form given the layer above. It needs a KL warm-up to keep its
    /// latents active, as in the ladder VAE paper.
    TopDown,
}

impl HierarchyInference {
    /// Parses `bottom-up` or `top-down`.
    ///
    /// # Errors
    /// Any other name.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "bottom-up" => Ok(Self::BottomUp),
            "top-down" => Ok(Self::TopDown),
            other => candle::bail!("inference {other:?}: use bottom-up or top-down"),
        }
    }

    /// `bottom-up` or `top-down`.
    pub fn name(self) -> &'static str {
        match self {
            Self::BottomUp => "bottom-up",
            Self::TopDown => "top-down",
        }
    }
}

/// A hierarchy of Gaussian latent layers over `input_dim` observed values.
///
/// Parameters: the decoder's `layer{l}.fc{i}` (`z_{l+1}` to `z_l`, for `l < L - 1`) and
/// `pixels.fc{i}` (`z_1` to the likelihood's parameters); bottom-up, the encoder's
/// `layer{l}.fc{i}` (layer `l` maps `x` or `z_{l-1}` to the location and log-scale of `z_l`);
/// top-down, the encoder's `up{l}.fc{i}` (the deterministic bottom-up pass) and `head{l}.fc0`
/// (each layer's bottom-up Gaussian), with the decoder's conditionals shared; with `iaf`,
/// `flow{l}.iaf{k}` in the encoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HierarchyConfig {
    /// Observed values per data point `P` (784 for MNIST).
    pub input_dim: usize,
    /// The latent layers, bottom (next to `x`) first; at least two.
    pub layers: Vec<StochasticLayer>,
    /// Activation of every hidden layer.
    pub activation: Activation,
    /// The order of inference (bottom-up unless configured).
    #[serde(default)]
    pub inference: HierarchyInference,
    /// IAF steps after every layer's Gaussian in the posterior (none unless configured).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iaf: Option<LayerIaf>,
}

impl HierarchyConfig {
    /// The IWAE paper's two-layer model (Burda, Grosse, Salakhutdinov, arXiv 1509.00519,
    /// section 5) with the hidden widths of its reference code's `experiments.py` (the
    /// paper's text gives half of them; the code produced its table): `x` - 200 - 200 - `z_1` (100) -
    /// 100 - 100 - `z_2` (50), tanh, mirrored in the generative network (`z_2` - 100 - 100 -
    /// `z_1` - 200 - 200 - `x`).
    pub fn iwae_two_layer(input_dim: usize) -> Self {
        Self {
            input_dim,
            layers: vec![
                StochasticLayer {
                    units: 100,
                    hidden: vec![200, 200],
                },
                StochasticLayer {
                    units: 50,
                    hidden: vec![100, 100],
                },
            ],
            activation: Activation::Tanh,
            inference: HierarchyInference::BottomUp,
            iaf: None,
        }
    }

    /// `D = Σ_l D_l`.
    pub fn latent_dim(&self) -> usize {
        self.layers.iter().map(|l| l.units).sum()
    }

    /// The units of every layer, bottom first.
    pub fn units(&self) -> Vec<usize> {
        self.layers.iter().map(|l| l.units).collect()
    }

    /// Checks the counts.
    ///
    /// # Errors
    /// `input_dim` 0, fewer than two layers, a layer of 0 units or a hidden width of 0, or
    /// [`LayerIaf::validate`]'s, naming the field.
    pub fn validate(&self) -> Result<()> {
        if self.input_dim == 0 {
            candle::bail!("latent.input_dim = 0: must be at least 1");
        }
        if self.layers.len() < 2 {
            candle::bail!(
                "latent.layers: {} given, a hierarchy needs at least 2 (one layer is --latent gaussian)",
                self.layers.len()
            );
        }
        for (l, layer) in self.layers.iter().enumerate() {
            if layer.units == 0 {
                candle::bail!("latent.layers[{l}].units = 0: must be at least 1");
            }
            if layer.hidden.contains(&0) {
                candle::bail!("latent.layers[{l}].hidden: every width must be at least 1");
            }
        }
        if let Some(iaf) = &self.iaf {
            iaf.validate(&self.units())?;
        }
        Ok(())
    }
}

/// `z: [.., D]` split into the layers' `[.., D_l]`.
pub(crate) fn split(z: &Tensor, units: &[usize]) -> Result<Vec<Tensor>> {
    let mut start = 0;
    units
        .iter()
        .map(|&u| {
            let part = z.narrow(candle::D::Minus1, start, u);
            start += u;
            part
        })
        .collect()
}
