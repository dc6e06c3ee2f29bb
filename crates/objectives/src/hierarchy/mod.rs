//! Stochastic hierarchies: Gaussian latent layers `z_1 .. z_L` generated top-down
//! (`p(z_L) Π p(z_l|z_{l+1}) p(x|z_1)`) and inferred bottom-up (`q(z_1|x) Π q(z_l|z_{l-1})`,
//! the IWAE paper's two-layer model) or top-down through the generative path
//! (`q(z_L|x) Π q(z_l|z_{l+1}, x)`, ladder / bidirectional inference). The latent vector the model-agnostic API sees is
//! the concatenation `[z_1, .., z_L]`, so every objective, importance sampling and HAIS /
//! BDMC (in the posterior's noise space) apply unchanged.

mod config;
mod decoder;
mod encoder;
mod gaussian;
mod top_down;

pub use config::{HierarchyConfig, HierarchyInference, StochasticLayer};
pub use decoder::{HierarchicalDecoder, HierarchicalPrior};
pub use encoder::{HierarchicalEncoder, HierarchicalPosterior};
pub use top_down::{TopDownEncoder, TopDownPosterior};
