//! Stochastic hierarchies: Gaussian latent layers `z_1 .. z_L` generated top-down
//! (`p(z_L) Π p(z_l|z_{l+1}) p(x|z_1)`) and inferred bottom-up (`q(z_1|x) Π q(z_l|z_{l-1})`,
//! the IWAE paper's two-layer model) or top-down through the generative path
//! (`q(z_L|x) Π q(z_l|z_{l+1}, x)`, ladder / bidirectional inference). The latent vector the model-agnostic API sees is
//! the concatenation `[z_1, .., z_L]`, so every objective, importance sampling, HAIS (from
//! the posterior in its noise space, or from the prior) and BDMC (from the prior, whose map
//! the reverse chain can invert) apply unchanged. Each layer's Gaussian may be followed by IAF
//! steps ([`LayerIaf`]; with them, a density along the sampling path only).

mod config;
mod decoder;
mod encoder;
mod gaussian;
mod layer_flow;
mod top_down;

pub use config::{HierarchyConfig, HierarchyInference, StochasticLayer};
pub use decoder::{HierarchicalDecoder, HierarchicalPrior};
pub use encoder::{HierarchicalEncoder, HierarchicalPosterior};
pub use layer_flow::LayerIaf;
pub use top_down::{TopDownEncoder, TopDownPosterior};
