//! The objectives' configuration (ELBO, IWAE, the estimators; KL warm-up, free bits), the
//! [`Evaluation`] they return, and [`evaluate`], which runs one (the ELBO in `elbo.rs`, IWAE
//! in `iwae.rs`, the others in `estimator/`).

use crate::context::EvalContext;
use crate::elbo::elbo;
use crate::estimator::{self, EstimatorState, ScoreBaseline};
use crate::iwae::iwae;
use crate::model::{GenerativeModel, InferenceNetwork};
use crate::relaxation::TemperatureSchedule;
use candle::{DType, Result, Tensor, Var};
use serde::{Deserialize, Serialize};
use vaekit_core::NoiseSource;
use vaekit_distributions::KlMethod;
use vaekit_nets::{ParamStore, Pass};

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

/// The result of evaluating an objective on a batch.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The scalar to minimise. With [`IwaeGradient::Dreg`] and [`Objective::Rws`] its
    /// gradient is meant for the generative model's parameters only.
    pub loss: Tensor,
    /// With DReG or RWS, the surrogate whose gradient is meant for the inference network's
    /// parameters only; `None` when `loss` serves both (see [`Evaluation::gradients`]).
    pub inference_loss: Option<Tensor>,
    /// The bound itself, mean over the batch, nats per data point (no warm-up, no free bits).
    pub bound: f64,
    /// Mean `E_q[log p(x|z)]`.
    pub reconstruction: f64,
    /// Mean KL (analytic or Monte Carlo, see `kl_method`).
    pub kl: f64,
    /// Mean `log p(x, z)` over samples and batch.
    pub mean_log_p: f64,
    /// Mean `log q(z|x)` over samples and batch.
    pub mean_log_q: f64,
    /// How the KL was computed.
    pub kl_method: KlMethod,
    /// Detached log-weights `log p(x, z_s) - log q(z_s|x)`, `[B, S]`, f64.
    pub log_weights: Tensor,
}

impl Evaluation {
    /// Whether the bound and the losses are finite.
    pub fn is_finite(&self) -> bool {
        let finite = |t: &Tensor| {
            t.to_dtype(DType::F64)
                .and_then(|t| t.to_scalar::<f64>())
                .map(f64::is_finite)
                .unwrap_or(false)
        };
        self.bound.is_finite()
            && finite(&self.loss)
            && self.inference_loss.as_ref().is_none_or(finite)
    }

    /// `self` when [`Evaluation::is_finite`], otherwise an error naming the bound.
    ///
    /// # Errors
    /// A non-finite bound or loss.
    pub fn checked(self) -> Result<Self> {
        if !self.is_finite() {
            candle::bail!(
                "objective: the bound is not finite ({}) on this batch",
                self.bound
            );
        }
        Ok(self)
    }

    /// Gradients for each variable: from `loss` for `model` variables, and from
    /// `inference_loss` (or `loss`) for `inference` variables. Variables that receive no
    /// gradient get zeros.
    ///
    /// # Errors
    /// Backward errors.
    pub fn gradients(&self, model: &[Var], inference: &[Var]) -> Result<Vec<Tensor>> {
        let main = self.loss.backward()?;
        let inf = match &self.inference_loss {
            Some(l) => Some(l.backward()?),
            None => None,
        };
        let pick = |store: &candle::backprop::GradStore, v: &Var| -> Result<Tensor> {
            match store.get(v.as_tensor()) {
                Some(g) => Ok(g.clone()),
                None => v.as_tensor().zeros_like(),
            }
        };
        let mut out = Vec::with_capacity(model.len() + inference.len());
        for v in model {
            out.push(pick(&main, v)?);
        }
        for v in inference {
            out.push(pick(inf.as_ref().unwrap_or(&main), v)?);
        }
        Ok(out)
    }
}

/// Evaluates `config` on `ctx`'s batch, with fresh estimator statistics (NVIL's moving
/// averages start afresh; [`crate::Loss::compute`] keeps them across calls). A NaN or
/// infinite bound is returned, not an error: [`Evaluation::checked`] turns it into one, and
/// the trainer skips and counts such batches.
///
/// # Errors
/// A zero sample count; a pathwise objective (ELBO, IWAE) trained through a posterior that is
/// not reparameterized (discrete latents); DReG with a flow posterior; the estimators' own.
pub fn evaluate(config: &ObjectiveConfig, ctx: EvalContext) -> Result<Evaluation> {
    evaluate_with(config, &mut EstimatorState::default(), ctx)
}

/// Data-dependent initialisation: one pass of the single-sample ELBO over the batch `x`
/// (`[B, P]`, as training will see it) with [`Pass::DataInit`], which writes weight norm's
/// gains and biases in `store` so that every pre-activation starts with zero mean and unit
/// variance (Salimans and Kingma, arXiv 1602.07868). Layers without weight norm are left as
/// they are.
///
/// # Errors
/// A batch of the wrong shape; a non-finite bound; candle's.
pub fn data_dependent_init(
    inference: &dyn InferenceNetwork,
    model: &dyn GenerativeModel,
    store: &ParamStore,
    x: &Tensor,
    noise: &mut dyn NoiseSource,
) -> Result<()> {
    let ctx = EvalContext::new(inference, model, x, noise).with_pass(Pass::DataInit(store));
    evaluate(&ObjectiveConfig::elbo(), ctx)?.checked()?;
    Ok(())
}

/// [`evaluate`] with the estimator's running statistics in `state`, which a training pass
/// updates.
pub(crate) fn evaluate_with(
    config: &ObjectiveConfig,
    state: &mut EstimatorState,
    ctx: EvalContext,
) -> Result<Evaluation> {
    let num_samples = config.objective.num_samples();
    if num_samples == 0 {
        candle::bail!("objective: num_samples must be > 0");
    }
    let EvalContext {
        inference,
        model,
        x,
        epoch,
        noise,
        pass,
    } = ctx;
    match config.objective {
        Objective::Elbo { analytic_kl, .. } => elbo(
            config,
            analytic_kl,
            num_samples,
            EvalContext {
                inference,
                model,
                x,
                epoch,
                noise,
                pass,
            },
        ),
        Objective::Iwae { gradient, .. } => iwae(
            gradient,
            num_samples,
            EvalContext {
                inference,
                model,
                x,
                epoch,
                noise,
                pass,
            },
        ),
        Objective::Reinforce { baseline, .. } => estimator::reinforce(
            baseline,
            state,
            inference,
            model,
            x,
            num_samples,
            noise,
            pass,
        ),
        Objective::Vimco { .. } => estimator::vimco(inference, model, x, num_samples, noise, pass),
        Objective::Rws { wake_fraction, .. } => {
            estimator::rws(wake_fraction, inference, model, x, num_samples, noise, pass)
        }
        Objective::Concrete {
            temperature,
            straight_through,
            ..
        } => estimator::concrete(
            temperature,
            straight_through,
            inference,
            model,
            x,
            epoch,
            num_samples,
            noise,
            pass,
        ),
    }
}
