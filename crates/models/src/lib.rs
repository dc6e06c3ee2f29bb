//! # vaekit-models
//!
//! Model recipes: what a VAE is made of, as a serializable value, and the code that turns it
//! into networks.
//!
//! - [`VaeConfig`]: networks ([`Networks`]: dense, ResNet, gated-conv), the posterior's
//!   [`FlowConfig`] (IAF, planar, Sylvester), the [`LatentConfig`] (Gaussian or discrete) and
//!   the likelihood. [`VaeConfig::validate`] and [`VaeConfig::check_objective`] refuse a bad
//!   combination (a flow without an encoder context, IAF widths that are not multiples of
//!   the latent dimension; with `check_objective`, DReG through a flow, ...) before any
//!   tensor exists.
//! - [`RunConfig`]: a model with its objective, optimizer, schedule and data settings, the
//!   format of `train-iaf`'s `config.json`; [`RunConfig::preset`] gives the named presets
//!   ([`PRESETS`]).
//! - [`build`] returns the [`Model`]: the parameter store and the inference network and
//!   generative model over it, at the fixed paths `encoder.*`, `flow.*`, `decoder.*`, whose
//!   groups [`ParamGroup`] names. [`Model::data_init`] runs weight norm's data-dependent
//!   initialisation; [`frozen`] rebuilds the networks over untracked tensors for HMC.
//!
//! ```
//! use candle::{Device, Tensor};
//! use vaekit_core::SeededNoise;
//! use vaekit_models::{ParamGroup, RunConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut cfg = RunConfig::preset("iwae-dense")?;
//! cfg.validate()?;
//! let model = cfg.build(&Device::Cpu)?;
//! assert!(!model.parameters(ParamGroup::Inference).is_empty());
//! let x = Tensor::zeros((4, 784), candle::DType::F32, &Device::Cpu)?;
//! model.data_init(&x, &mut SeededNoise::new(1))?;
//! // A flow without an encoder context is refused before any tensor exists.
//! cfg.model.flow = vaekit_models::FlowConfig::Planar { steps: 2 };
//! if let vaekit_models::Networks::Dense(n) = &mut cfg.model.networks {
//!     n.context_dim = 0;
//! }
//! assert!(cfg.validate().unwrap_err().to_string().contains("context"));
//! # Ok(())
//! # }
//! ```

mod build;
mod error;
mod estimator;
mod flow;
mod latent;
mod networks;
mod presets;
mod prior;
mod recipe;
mod vae;

pub use build::{
    DECODER_PATH, ENCODER_PATH, FLOW_PATH, Model, NetworkPair, PRIOR_PATH, ParamGroup, build,
    frozen,
};
pub(crate) use error::bail;
pub use error::{ConfigError, ModelError};
pub use estimator::{ESTIMATORS, estimator_objective};
pub use flow::FlowConfig;
pub use latent::LatentConfig;
pub use networks::Networks;
pub use presets::PRESETS;
pub use prior::{MAX_PRIOR_COMPONENTS, PriorConfig};
pub use recipe::RunConfig;
pub use vae::VaeConfig;
