//! Which encoder/decoder pair a VAE has.

use serde::{Deserialize, Serialize};
use vaekit_nets::{DenseConfig, GatedConfig, Normalization, ResNetConfig};

/// The encoder/decoder pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Networks {
    /// Dense networks.
    Dense(DenseConfig),
    /// ResNet networks.
    ResNet(ResNetConfig),
    /// Gated-convolution networks.
    Gated(GatedConfig),
}

impl Networks {
    /// The latent dimension `D` of the Gaussian posterior.
    pub fn latent_dim(&self) -> usize {
        match self {
            Networks::Dense(c) => c.latent_dim,
            Networks::ResNet(c) => c.latent_dim,
            Networks::Gated(c) => c.latent_dim,
        }
    }

    /// The number of input values `P` per data point (`C·H·W` for images).
    pub fn input_dim(&self) -> usize {
        match self {
            Networks::Dense(c) => c.input_dim,
            Networks::ResNet(c) => c.image.pixels(),
            Networks::Gated(c) => c.image.pixels(),
        }
    }

    /// The normalisation of the hidden layers.
    pub fn normalization(&self) -> Normalization {
        match self {
            Networks::Dense(c) => c.norm,
            Networks::ResNet(c) => c.norm,
            Networks::Gated(c) => c.norm,
        }
    }

    /// The width of the encoder's context `h`, which a flow posterior is conditioned on
    /// (`0`: no context).
    pub fn context_dim(&self) -> usize {
        match self {
            Networks::Dense(c) => c.context_dim,
            Networks::ResNet(c) => c.context_dim,
            Networks::Gated(c) => c.context_dim,
        }
    }
}
