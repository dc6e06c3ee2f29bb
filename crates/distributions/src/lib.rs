//! # vaekit-distributions
//!
//! Tensor-batched, differentiable probability distributions for VAEs, and a KL registry.
//!
//! Every family implements [`Distribution`] (`sample`, `log_prob`) and whichever of
//! [`Reparameterize`] (`rsample`), [`Entropy`] and [`Moments`] it has in closed form. Shapes
//! follow `sample_shape ++ batch_shape ++ event_shape`; [`Independent`] moves batch dimensions
//! into the event. Randomness comes from an explicit [`vaekit_core::NoiseSource`].
//!
//! | family | rsample | entropy | moments |
//! |---|---|---|---|
//! | [`Normal`], [`StandardNormal`] | pathwise | yes | yes |
//! | [`Bernoulli`] (logits) | — | yes | yes |
//! | [`Categorical`] (logits, Gumbel-max) | — | yes | — |
//! | [`RelaxedBernoulli`], [`RelaxedOneHotCategorical`] (Concrete) | pathwise, straight-through | — | — |
//! | [`Logistic`] | pathwise | yes | yes |
//! | [`DiscretizedLogistic`] | — | — | — |
//! | [`MixtureSameFamily`] (diagonal Normals) | implicit | — | yes |
//! | [`VonMisesFisher`] | Wood + reflection (+ score term) | yes | yes |
//! | [`SphereUniform`] | — | yes | — |
//!
//! KL: [`KlDivergence`] for statically typed pairs; [`KlRegistry`] for `&dyn Distribution`,
//! falling back to Monte Carlo and saying so ([`KlMethod`]).
//!
//! ```
//! use candle::{DType, Device, Tensor};
//! use vaekit_core::SeededNoise;
//! use vaekit_distributions::{default_registry, Distribution, Independent, KlMethod, Normal,
//!     Reparameterize, StandardNormal};
//!
//! # fn main() -> candle::Result<()> {
//! let dev = Device::Cpu;
//! let q = Independent::new(Normal::from_log_scale(Tensor::zeros((8, 2), DType::F32, &dev)?,
//!                                                 Tensor::zeros((8, 2), DType::F32, &dev)?)?, 1)?;
//! let p = Independent::new(StandardNormal::new(2, DType::F32, &dev)?, 1)?;
//! let z = q.rsample(&[5], &mut SeededNoise::new(0))?;          // [5, 8, 2]
//! assert_eq!(q.log_prob(&z)?.dims(), &[5, 8]);
//! let kl = default_registry().kl_divergence(&q, &p, 1, &mut SeededNoise::new(0))?;
//! assert_eq!(kl.method, KlMethod::Analytic);
//! assert_eq!(kl.value.to_vec1::<f32>()?, vec![0.0; 8]);
//! # Ok(())
//! # }
//! ```

mod accessors;
mod bernoulli;
mod categorical;
mod host_rng;
mod independent;
pub mod kl;
mod logistic;
mod mixture;
mod normal;
mod relaxed_bernoulli;
mod relaxed_categorical;
mod shape;
pub mod special;
mod traits;
mod validate;
mod von_mises_fisher;

pub use bernoulli::Bernoulli;
pub use categorical::Categorical;
pub use independent::Independent;
pub use kl::{KlDivergence, KlEstimate, KlMethod, KlRegistry, default_registry};
pub use logistic::{DiscretizedLogistic, Logistic};
pub use mixture::MixtureSameFamily;
pub use normal::{Normal, StandardNormal};
pub use relaxed_bernoulli::RelaxedBernoulli;
pub use relaxed_categorical::RelaxedOneHotCategorical;
pub use traits::{Distribution, Entropy, Moments, Reparameterize};
pub use von_mises_fisher::{SphereUniform, VonMisesFisher};
