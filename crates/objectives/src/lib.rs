//! # vaekit-objectives
//!
//! The model-agnostic API and the objectives that train through it.
//!
//! - [`InferenceNetwork`] (`forward` gives a [`Posterior`]; `sample`, `log_prob`) and
//!   [`GenerativeModel`] (`forward` gives `p(x|z)`; `prior`, `sample`, `log_prob = log p(x|z)
//!   + log p(z)`); log p and log q are `[batch, n_samples]`.
//! - [`EncoderFlow`] (any encoder, optionally followed by a flow) and [`DecoderModel`] (any
//!   decoder with a standard-normal prior) implement them for vaekit's networks;
//!   [`LinearGaussian`] is a model whose `log p(x)` is exact.
//! - [`Objective`]: ELBO (analytic or Monte Carlo KL, reported in [`Evaluation::kl_method`]),
//!   IWAE with the standard or the doubly reparameterized gradient; [`KlWarmup`],
//!   [`FreeBits`]; [`Loss`] evaluates and keeps a history.

mod linear_gaussian;
mod loss;
mod model;
mod objective;
mod vae;

pub use linear_gaussian::{LinearEncoder, LinearGaussian};
pub use loss::{Loss, LossRecord};
pub use model::{GenerativeModel, InferenceNetwork, LatentSample, Posterior};
pub use objective::{
    Evaluation, FreeBits, IwaeGradient, KlWarmup, Objective, ObjectiveConfig, evaluate,
    evaluate_unchecked,
};
pub use vae::{DecoderModel, EncoderFlow, GaussianFlowPosterior};
