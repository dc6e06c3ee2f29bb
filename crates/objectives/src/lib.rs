//! # vaekit-objectives
//!
//! The model-agnostic API and the objectives that train through it.
//!
//! - [`InferenceNetwork`] (`forward` gives a [`Posterior`]; `sample`, `log_prob`) and
//!   [`GenerativeModel`] (`forward` gives `p(x|z)`; `prior`, `sample`, `log_prob = log p(x|z)
//!   + log p(z)`); log p and log q are `[batch, n_samples]`.
//! - [`EncoderFlow`] (any encoder, optionally followed by a flow) and [`DecoderModel`] (any
//!   decoder with a [`LatentPrior`]: [`StandardNormalPrior`], [`MixturePrior`],
//!   [`VampPrior`]) implement them for vaekit's networks;
//!   [`LinearGaussian`] and [`LinearHierarchy`] are models whose `log p(x)` is exact; [`DiscreteEncoder`] and
//!   [`DiscreteDecoder`] give sigmoid belief networks and categorical-latent VAEs.
//! - [`Objective`]: ELBO (analytic, Monte Carlo or layered KL, reported in [`Evaluation::kl_method`]),
//!   IWAE with the standard or the doubly reparameterized gradient; for latents that cannot
//!   be reparameterized, REINFORCE with NVIL's baselines ([`ScoreBaseline`]), VIMCO,
//!   reweighted wake-sleep (separate model and inference losses) and the Concrete relaxation
//!   ([`TemperatureSchedule`], straight-through); [`KlWarmup`], [`FreeBits`].
//! - One way to evaluate: [`evaluate`]`(config, `[`EvalContext`]`)`, or [`Loss::compute`]
//!   with the estimator's running state ([`EstimatorState`]) and a bounded
//!   [`LossSummary`] kept across calls.

mod context;
mod discrete;
mod draw;
mod elbo;
mod estimator;
mod evaluate;
mod evaluation;
mod free_bits;
mod hierarchy;
mod iwae;
mod linear_gaussian;
mod linear_hierarchy;
mod loss;
mod mlp;
mod model;
mod objective;
mod prior;
mod relaxation;
mod vae;

pub use context::EvalContext;
pub use discrete::{
    DiscreteConfig, DiscreteDecoder, DiscreteEncoder, DiscretePosterior, DiscretePrior,
    LatentUnits, split_layers,
};
pub use estimator::{EstimatorState, ScoreBaseline, vimco_leave_one_out, vimco_signals};
pub use evaluate::{data_dependent_init, evaluate};
pub use evaluation::Evaluation;
pub use hierarchy::{
    HierarchicalDecoder, HierarchicalEncoder, HierarchicalPosterior, HierarchicalPrior,
    HierarchyConfig, HierarchyInference, LayerIaf, StochasticLayer, TopDownEncoder,
    TopDownPosterior,
};
pub use linear_gaussian::{LinearEncoder, LinearGaussian};
pub use linear_hierarchy::LinearHierarchy;
pub use loss::{Loss, LossSummary};
pub use model::{GenerativeModel, InferenceNetwork, LatentSample, LayeredKl, Posterior};
pub use objective::{FreeBits, IwaeGradient, KlWarmup, Objective, ObjectiveConfig};
pub use prior::{LatentPrior, MixturePrior, PriorRef, StandardNormalPrior, VampPrior};
pub use relaxation::{Relaxation, TemperatureSchedule};
pub use vae::{DecoderModel, EncoderFlow, GaussianFlowPosterior};
/// How [`Evaluation::kl`] was computed (from `vaekit-distributions`).
pub use vaekit_distributions::KlMethod;
