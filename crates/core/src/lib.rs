//! # vaekit-core
//!
//! The foundation of vaekit: an explicit, seeded source of randomness and the numerically
//! stable functions that candle lacks.
//!
//! - [`NoiseSource`] is the one way randomness enters vaekit; [`SeededNoise`] implements it
//!   with the counter-based Philox4x32-10 generator, so a run is reproducible bit for bit and
//!   its stream position ([`NoiseState`]) can be checkpointed and resumed.
//! - [`softplus`], [`log_sigmoid`], [`log1mexp`], [`log_mean_exp`], [`log_sum_exp`],
//!   [`log_softmax`] and [`clamp_preserve_gradients`] are differentiable and stable at `±1e4` and `-inf`.
//! - Re-exported from `vaekit-ops` (where they are implemented, with the kernels):
//!   [`on_pool`] runs a binary's work on vaekit's thread pool, where parallel ops join cheaply;
//!   [`keep_awake`] keeps the pool's workers polling through a stretch of forking work.
//! - [`expand_leading`] broadcasts parameters over leading sample dimensions with a fast
//!   backward (contiguous block sums instead of candle's strided `sum_keepdim`).
//! - [`Progress`] is how long jobs (training epochs, importance sampling, HAIS, BDMC) report
//!   their progress; `&mut ()` reports nothing.
//! - [`testing`] holds the gradient and moment checks every vaekit crate tests with.
//!
//! ```
//! use candle::{DType, Device, Shape, Tensor};
//! use vaekit_core::{log_mean_exp, softplus, NoiseSource, SeededNoise};
//!
//! # fn main() -> candle::Result<()> {
//! let mut noise = SeededNoise::new(42);
//! let eps = noise.standard_normal(&Shape::from((4, 3)), DType::F32, &Device::Cpu)?;
//! let again = SeededNoise::new(42).standard_normal(&Shape::from((4, 3)), DType::F32, &Device::Cpu)?;
//! assert_eq!(eps.to_vec2::<f32>()?, again.to_vec2::<f32>()?);
//!
//! let log_w = Tensor::new(&[[0.0f64, f64::NEG_INFINITY], [f64::NEG_INFINITY; 2]], &Device::Cpu)?;
//! let lme = log_mean_exp(&log_w, 1, false)?.to_vec1::<f64>()?;
//! assert_eq!(lme, vec![-(2f64.ln()), f64::NEG_INFINITY]);
//! assert_eq!(softplus(&Tensor::new(&[1e4f32], &Device::Cpu)?)?.to_vec1::<f32>()?, vec![1e4]);
//! # Ok(())
//! # }
//! ```

mod device;
mod noise;
mod progress;
mod seeded;

pub use device::parse_device;
pub use noise::{NoiseSource, permutation};
pub use progress::{Progress, ProgressEvent, ProgressLog, Stat, report_job};
pub use seeded::{NoiseState, SeededNoise, derive_seed};

// The kernels and the thread pool live in vaekit-ops; the crates above use them through here.
#[cfg(feature = "fast-alloc")]
pub use vaekit_ops::configure_process;
pub use vaekit_ops::testing;
pub use vaekit_ops::{
    FusedActivation, IDLE_LIMIT, PAR_MIN_ELEMS, POOL_STACK_BYTES, START_LIMIT, avx2_dispatch,
    bernoulli_log_prob, bernoulli_log_prob_sum, bernoulli_sum_and_score, clamp_preserve_gradients,
    contiguous_part, contiguous_slice, elu, expand_leading, for_chunks, for_chunks_above,
    has_cpu_kernel, has_kernel, is_finite, keep_awake, log_mean_exp, log_sigmoid, log_softmax,
    log_sum_exp, log1mexp, map_elementwise, on_pool, philox4x32_10, pool, second_order_gradients,
    softplus, tanh,
};
