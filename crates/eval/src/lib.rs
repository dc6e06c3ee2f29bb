//! # vaekit-eval
//!
//! Likelihood evaluation through the model-agnostic API of `vaekit-objectives`:
//! - [`importance_sampled_log_likelihood`]: IS with the inference network as proposal (mean
//!   NLL, its standard error, the effective sample size);
//! - [`ais_log_likelihood`]: Hamiltonian annealed importance sampling from the prior, the
//!   encoder or the full (flow) posterior, with step sizes tuned per data point by a pilot run
//!   and then frozen ([`StepSizeTuning`]), so the estimate stays unbiased;
//! - [`bdmc`]: bidirectional Monte Carlo bounds on simulated data;
//! - the pieces: [`AnnealingPath`], [`hmc_transition`] / [`leapfrog`], [`anneal`],
//!   [`AnnealingSchedule`].
//!
//! Evaluation never depends on training.

mod ais;
mod anneal;
mod bdmc;
mod hmc;
mod importance;
mod path;
mod schedule;
mod step_size;
mod ticker;

pub use ais::{AisConfig, AisReport, AisStart, VaePath, ais_log_likelihood};
pub use anneal::{Annealed, anneal, log_mean_weights};
pub use bdmc::{BdmcReport, bdmc, bdmc_on_pairs};
pub use hmc::{HmcConfig, StepSizeAdaptation, StepSizes, Transition, hmc_transition, leapfrog};
pub use importance::{ImportanceConfig, NllReport, importance_sampled_log_likelihood};
pub use path::{AnnealingPath, PathPoint};
pub use schedule::AnnealingSchedule;
pub use step_size::{FrozenStepSizes, StepSizePlan, StepSizeTuning};
