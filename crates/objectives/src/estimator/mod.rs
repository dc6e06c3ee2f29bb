//! Gradient estimators for latents that cannot be reparameterized: score-function
//! (REINFORCE / NVIL), VIMCO, reweighted wake-sleep, and the Concrete relaxation.
//!
//! Each works from log-weights `log p(x, z_s) - log q(z_s|x)` of shape `[B, S]` and returns
//! an [`Evaluation`] whose `loss` (and, for RWS, `inference_loss`) are surrogates whose
//! gradients are the estimator's.

mod concrete;
mod rws;
mod score;
mod state;
mod vimco;

pub(crate) use concrete::concrete;
pub(crate) use rws::rws;
pub use score::ScoreBaseline;
pub(crate) use score::reinforce;
pub use state::EstimatorState;
pub(crate) use vimco::vimco;
pub use vimco::{vimco_leave_one_out, vimco_signals};
