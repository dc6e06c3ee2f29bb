//! # vaekit-eval
//!
//! Likelihood evaluation through the model-agnostic API of `vaekit-objectives`:
//! [`importance_sampled_log_likelihood`] (mean NLL, its standard error and the effective
//! sample size). Annealed importance sampling and bidirectional Monte Carlo follow (issue 6).
//! Evaluation never depends on training.

mod importance;

pub use importance::{ImportanceConfig, NllReport, importance_sampled_log_likelihood};
