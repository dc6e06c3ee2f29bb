//! Discrete latent variables behind the model-agnostic API: sigmoid belief networks (layers
//! of binary units) and categorical-latent VAEs, with their Concrete relaxations.

mod config;
mod decoder;
mod encoder;
mod units;

pub use config::DiscreteConfig;
pub use decoder::{DiscreteDecoder, DiscretePrior};
pub use encoder::{DiscreteEncoder, DiscretePosterior};
pub use units::{LatentUnits, split_layers};
