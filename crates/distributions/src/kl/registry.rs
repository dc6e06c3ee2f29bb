//! The KL registry: analytic KL for type-erased distributions, Monte Carlo otherwise.

use super::KlDivergence;
use crate::shape::sum_rightmost;
use crate::{
    Bernoulli, Categorical, Distribution, Normal, SphereUniform, StandardNormal, VonMisesFisher,
};
use candle::{DType, Result, Tensor};
use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::OnceLock;
use vaekit_core::NoiseSource;

type KlFn = fn(&dyn Any, &dyn Any) -> Result<Tensor>;

/// How a [`KlEstimate`] (or an objective's KL) was computed; more ways may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KlMethod {
    /// A registered closed form.
    Analytic,
    /// The average of `ln p(z) - ln q(z)` over `num_samples` draws `z ~ p` (reparameterized
    /// when `p` supports it, so the estimate carries pathwise gradients).
    MonteCarlo {
        /// Number of draws.
        num_samples: usize,
    },
    /// A layered model's KL along `num_samples` draws: closed forms for `analytic_layers` of
    /// the `layers` latent layers (given the draws they condition on), `ln q − ln p` of the
    /// draws for the others.
    PerLayer {
        /// Layers in closed form.
        analytic_layers: usize,
        /// All latent layers.
        layers: usize,
        /// Number of draws.
        num_samples: usize,
    },
}

/// A KL divergence and how it was obtained.
#[derive(Debug, Clone)]
pub struct KlEstimate {
    /// `KL(p || q)`, shape: the broadcast batch shape.
    pub value: Tensor,
    /// Analytic or Monte Carlo.
    pub method: KlMethod,
}

/// Closed-form KL divergences keyed by the pair of concrete types, for distributions known
/// only as `&dyn Distribution`. [`crate::Independent`] wrappers are looked through: the pair of
/// bases is looked up and the result summed over the reinterpreted dimensions.
///
/// # References
/// The registries of PyTorch (`torch.distributions.kl.register_kl`) and TFP; pylearn2's
/// `KLIntegrator` (analytic where known, Monte Carlo otherwise).
#[derive(Clone)]
pub struct KlRegistry {
    pairs: HashMap<(TypeId, TypeId), KlFn>,
}

impl std::fmt::Debug for KlRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KlRegistry")
            .field("pairs", &self.pairs.len())
            .finish()
    }
}

impl Default for KlRegistry {
    fn default() -> Self {
        Self::with_defaults()
    }
}

fn erased<P, Q>(p: &dyn Any, q: &dyn Any) -> Result<Tensor>
where
    P: KlDivergence<Q> + 'static,
    Q: 'static,
{
    match (p.downcast_ref::<P>(), q.downcast_ref::<Q>()) {
        (Some(p), Some(q)) => p.kl_divergence(q),
        _ => candle::bail!("kl: registry entry called with the wrong types"),
    }
}

impl KlRegistry {
    /// A registry with no pair.
    pub fn empty() -> Self {
        Self {
            pairs: HashMap::new(),
        }
    }

    /// A registry with vaekit's analytic pairs: Normal–Normal, Normal–StandardNormal,
    /// Bernoulli–Bernoulli, Categorical–Categorical, VonMisesFisher–SphereUniform.
    pub fn with_defaults() -> Self {
        let mut r = Self::empty();
        r.register::<Normal, Normal>();
        r.register::<Normal, StandardNormal>();
        r.register::<Bernoulli, Bernoulli>();
        r.register::<Categorical, Categorical>();
        r.register::<VonMisesFisher, SphereUniform>();
        r
    }

    /// Registers the closed form `P: KlDivergence<Q>` (replacing any earlier entry).
    pub fn register<P, Q>(&mut self)
    where
        P: KlDivergence<Q> + Distribution,
        Q: Distribution,
    {
        self.pairs
            .insert((TypeId::of::<P>(), TypeId::of::<Q>()), erased::<P, Q>);
    }

    /// Whether `KL(p || q)` has a closed form here.
    pub fn has_analytic(&self, p: &dyn Distribution, q: &dyn Distribution) -> bool {
        match (p.reinterpreted(), q.reinterpreted()) {
            (Some((bp, n)), Some((bq, m))) if n == m => self.has_analytic(bp, bq),
            _ => self.pairs.contains_key(&(p.type_id(), q.type_id())),
        }
    }

    /// The closed-form `KL(p || q)`.
    ///
    /// # Errors
    /// When the pair has no closed form here, an error naming both families.
    pub fn analytic(&self, p: &dyn Distribution, q: &dyn Distribution) -> Result<Tensor> {
        if let (Some((bp, n)), Some((bq, m))) = (p.reinterpreted(), q.reinterpreted())
            && n == m
            && self.has_analytic(bp, bq)
        {
            return sum_rightmost(&self.analytic(bp, bq)?, n);
        }
        match self.pairs.get(&(p.type_id(), q.type_id())) {
            Some(f) => f(p as &dyn Any, q as &dyn Any),
            None => candle::bail!(
                "kl: no analytic KL registered for ({}, {}); register one with \
                 KlRegistry::register::<P, Q>() or use KlRegistry::kl_divergence for a Monte Carlo estimate",
                describe(p),
                describe(q)
            ),
        }
    }

    /// `KL(p || q)`: the closed form when registered, otherwise a Monte Carlo estimate from
    /// `num_samples` draws of `p` (averaged in f64). The returned [`KlMethod`] says which.
    ///
    /// # Errors
    /// Sampling or density errors; `num_samples == 0` when a Monte Carlo estimate is needed.
    pub fn kl_divergence(
        &self,
        p: &dyn Distribution,
        q: &dyn Distribution,
        num_samples: usize,
        noise: &mut dyn NoiseSource,
    ) -> Result<KlEstimate> {
        if self.has_analytic(p, q) {
            return Ok(KlEstimate {
                value: self.analytic(p, q)?,
                method: KlMethod::Analytic,
            });
        }
        Ok(KlEstimate {
            value: monte_carlo_kl(p, q, num_samples, noise)?,
            method: KlMethod::MonteCarlo { num_samples },
        })
    }
}

/// `mean_n [ln p(z_n) - ln q(z_n)]`, `z_n ~ p` (reparameterized when possible), in f64.
fn monte_carlo_kl(
    p: &dyn Distribution,
    q: &dyn Distribution,
    n: usize,
    noise: &mut dyn NoiseSource,
) -> Result<Tensor> {
    if n == 0 {
        candle::bail!(
            "kl: a Monte Carlo estimate of KL({} || {}) needs num_samples > 0",
            p.name(),
            q.name()
        );
    }
    let z = match p.as_reparameterize() {
        Some(r) => r.rsample(&[n], noise)?,
        None => p.sample(&[n], noise)?,
    };
    let diff = (p.log_prob(&z)? - q.log_prob(&z)?)?;
    diff.to_dtype(DType::F64)?.mean(0)?.to_dtype(p.dtype())
}

/// "Independent(Normal)" for wrappers, the family name otherwise.
fn describe(d: &dyn Distribution) -> String {
    match d.reinterpreted() {
        Some((base, _)) => format!("{}({})", d.name(), describe(base)),
        None => d.name().to_string(),
    }
}

/// The process-wide registry with vaekit's pairs.
pub fn default_registry() -> &'static KlRegistry {
    static REGISTRY: OnceLock<KlRegistry> = OnceLock::new();
    REGISTRY.get_or_init(KlRegistry::with_defaults)
}
