//! The objectives' configuration: which bound or estimator ([`Objective`]), KL warm-up,
//! free bits ([`ObjectiveConfig`]).

use crate::estimator::ScoreBaseline;
use crate::relaxation::TemperatureSchedule;
use serde::{Deserialize, Serialize};

/// The gradient estimator of the IWAE bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum IwaeGradient {
    /// Autograd through the bound (the reparameterized IWAE gradient).
    #[default]
    Standard,
    /// Doubly reparameterized gradients for the inference network (Tucker et al., arXiv
    /// 1810.04152): `Σ_s w̃_s² ∂ log w_s / ∂z_s ∂z_s / ∂φ`; needs a posterior whose density
    /// can be evaluated with detached parameters (no flow).
    Dreg,
}

/// Which bound is optimised.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Objective {
    /// `E_q[log p(x|z)] - KL(q(z|x) || p(z))`, averaged over `num_samples` draws; the KL in
    /// closed form when `analytic_kl`, the posterior has no flow and the registry has the
    /// pair, by Monte Carlo otherwise.
    Elbo {
        /// Draws per data point.
        num_samples: usize,
        /// Use the closed-form KL when it exists.
        analytic_kl: bool,
    },
    /// `E[log (1/k) Σ_s p(x, z_s) / q(z_s|x)]` (Burda et al., arXiv 1509.00519).
    Iwae {
        /// `k`, the importance samples per data point.
        num_samples: usize,
        /// The gradient estimator.
        gradient: IwaeGradient,
    },
    /// The ELBO by the score-function estimator (REINFORCE), optionally with NVIL's
    /// baselines and variance normalisation: for latents that cannot be reparameterized.
    Reinforce {
        /// Draws per data point.
        num_samples: usize,
        /// Variance reduction.
        baseline: ScoreBaseline,
    },
    /// The IWAE bound by VIMCO's leave-one-out score-function estimator (Mnih & Rezende,
    /// arXiv 1602.06725).
    Vimco {
        /// `K >= 2`.
        num_samples: usize,
    },
    /// Reweighted wake-sleep (Bornschein & Bengio, arXiv 1406.2751): wake-θ for the model,
    /// a mixture of wake-φ and sleep-φ for the inference network, as separate losses.
    Rws {
        /// `K`, draws per data point.
        num_samples: usize,
        /// Weight of wake-φ against sleep-φ (1: wake only, 0: sleep only).
        wake_fraction: f64,
    },
    /// The relaxed ELBO through Concrete / Gumbel-softmax draws with an annealed temperature
    /// (Maddison et al., arXiv 1611.00712; Jang et al., arXiv 1611.01144).
    Concrete {
        /// Draws per data point.
        num_samples: usize,
        /// The temperature schedule over epochs.
        temperature: TemperatureSchedule,
        /// Hard draws forward, relaxed gradient backward.
        straight_through: bool,
    },
}

impl Objective {
    /// Draws per data point.
    pub fn num_samples(&self) -> usize {
        match *self {
            Objective::Elbo { num_samples, .. }
            | Objective::Iwae { num_samples, .. }
            | Objective::Reinforce { num_samples, .. }
            | Objective::Vimco { num_samples }
            | Objective::Rws { num_samples, .. }
            | Objective::Concrete { num_samples, .. } => num_samples,
        }
    }

    /// Whether the objective gives the generative model and the inference network separate
    /// losses meant for separate optimizers (reweighted wake-sleep).
    pub fn separate_losses(&self) -> bool {
        matches!(self, Objective::Rws { .. })
    }
}

/// Linear KL warm-up: the KL term is scaled by `min(1, epoch / epochs)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KlWarmup {
    /// Epochs until the KL term has full weight.
    pub epochs: f64,
}

impl KlWarmup {
    /// The KL weight at a (fractional) epoch.
    pub fn beta(&self, epoch: f64) -> f64 {
        if self.epochs <= 0.0 {
            1.0
        } else {
            (epoch / self.epochs).clamp(0.0, 1.0)
        }
    }
}

/// Free bits (the IAF paper's form): the latent dimensions are split into `groups`
/// contiguous groups, and each group's KL, averaged over the minibatch, counts at least
/// `nats_per_dim` times its size: `Σ_j max(λ |g_j|, E_x[KL_j])`. The per-dimension KLs are
/// analytic for a plain Gaussian posterior with `analytic_kl`; through an IAF they are Monte
/// Carlo, `log q_d − log p_d` per dimension with each step's `log σ_d` in `log q_d`, as the
/// reference code computes them. Flows that mix dimensions (planar, Sylvester) give no
/// per-dimension split: with them `groups` must be 1 (an error otherwise).
///
/// # References
/// Kingma et al., arXiv 1606.04934, appendix C.8.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FreeBits {
    /// `λ`, nats per latent dimension.
    pub nats_per_dim: f64,
    /// Number of groups (1 = one group for all dimensions).
    pub groups: usize,
}

/// The configuration of a [`crate::Loss`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ObjectiveConfig {
    /// The bound.
    pub objective: Objective,
    /// Optional KL warm-up (ELBO only).
    pub warmup: Option<KlWarmup>,
    /// Optional free bits (ELBO only).
    pub free_bits: Option<FreeBits>,
}

impl Default for ObjectiveConfig {
    fn default() -> Self {
        Self {
            objective: Objective::Elbo {
                num_samples: 1,
                analytic_kl: true,
            },
            warmup: None,
            free_bits: None,
        }
    }
}

impl ObjectiveConfig {
    /// The single-sample ELBO with the KL in closed form where the registry has it, without
    /// warm-up or free bits: the bound vaekit reports per epoch and initialises with.
    pub fn elbo() -> Self {
        Objective::Elbo {
            num_samples: 1,
            analytic_kl: true,
        }
        .into()
    }
}

impl From<Objective> for ObjectiveConfig {
    /// The objective without warm-up or free bits.
    fn from(objective: Objective) -> Self {
        Self {
            objective,
            warmup: None,
            free_bits: None,
        }
    }
}
