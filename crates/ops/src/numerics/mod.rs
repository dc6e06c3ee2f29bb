//! Numerically stable functions that candle lacks, all differentiable.
//!
//! On CPU the element-wise functions run as fused custom ops that evaluate each element in
//! f64 with `ln_1p` / `exp_m1` (exact to the last bit or two, one pass, one allocation) and
//! carry their own backward. On other devices they fall back to compositions of candle
//! primitives that are stable but less accurate in the far tails (issue 9 adds kernels).

mod activation;
mod bernoulli;
mod bernoulli_sum;
mod clamp;
mod dispatch;
mod elementwise;
mod fast_f32;
mod finite;
mod log1mexp;
mod log_mean_exp;
mod softplus;

pub use activation::{FusedActivation, elu, tanh};
pub use bernoulli::bernoulli_log_prob;
pub use bernoulli_sum::{bernoulli_log_prob_sum, bernoulli_sum_and_score};
pub use clamp::clamp_preserve_gradients;
pub use elementwise::map_elementwise;
pub use finite::is_finite;
pub use log_mean_exp::{log_mean_exp, log_softmax, log_sum_exp};
pub use log1mexp::log1mexp;
pub use softplus::{log_sigmoid, softplus};
