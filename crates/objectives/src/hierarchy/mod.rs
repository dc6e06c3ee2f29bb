//! Stochastic hierarchies: Gaussian latent layers `z_1 .. z_L`, inferred bottom-up
//! (`q(z_1|x) Π q(z_l|z_{l-1})`) and generated top-down (`p(z_L) Π p(z_l|z_{l+1}) p(x|z_1)`),
//! as in the IWAE paper's two-layer model. The latent vector the model-agnostic API sees is
//! the concatenation `[z_1, .., z_L]`, so every objective, importance sampling and HAIS /
//! BDMC (in the posterior's noise space) apply unchanged.

mod config;
mod decoder;
mod encoder;
mod gaussian;

pub use config::{HierarchyConfig, StochasticLayer};
pub use decoder::{HierarchicalDecoder, HierarchicalPrior};
pub use encoder::{HierarchicalEncoder, HierarchicalPosterior};
