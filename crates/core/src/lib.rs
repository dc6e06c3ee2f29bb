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
//! - [`on_pool`] runs a binary's work on vaekit's thread pool, where parallel ops join cheaply;
//!   [`keep_awake`] keeps the pool's workers polling through a stretch of forking work.
//! - [`expand_leading`] broadcasts parameters over leading sample dimensions with a fast
//!   backward (contiguous block sums instead of candle's strided `sum_keepdim`).
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

/// vaekit-alloc's settings (mimalloc's options, candle's thread variables), for `main` to
/// call first on platforms without load-time constructors; linking this crate with its
/// `fast-alloc` feature (the default) also installs mimalloc and applies them at load time.
#[cfg(feature = "fast-alloc")]
pub use vaekit_alloc::configure as configure_process;

mod awake;
mod box_muller;
mod device;
mod expand;
mod grad_mode;
mod noise;
mod numerics;
mod philox;
mod seeded;
mod storage;
pub mod testing;
mod threads;

pub use awake::{IDLE_LIMIT, START_LIMIT, keep_awake};
pub use device::parse_device;
pub use expand::expand_leading;
pub use grad_mode::second_order_gradients;
pub use noise::{NoiseSource, permutation};
pub use numerics::{
    FusedActivation, bernoulli_log_prob, bernoulli_log_prob_sum, bernoulli_sum_and_score,
    clamp_preserve_gradients, elu, is_finite, log_mean_exp, log_sigmoid, log_softmax, log_sum_exp,
    log1mexp, map_elementwise, softplus, tanh,
};
pub use philox::philox4x32_10;
pub use seeded::{NoiseState, SeededNoise, derive_seed};
pub use storage::{contiguous_part, contiguous_slice, has_cpu_kernel, has_kernel};
pub use threads::{PAR_MIN_ELEMS, POOL_STACK_BYTES, for_chunks, for_chunks_above, on_pool, pool};
