//! Objectives on log-weights: ELBO, IWAE (standard and DReG gradients), KL warm-up, free bits.

use crate::draw::Draw;
use crate::estimator::{self, EstimatorState, ScoreBaseline};
use crate::model::{GenerativeModel, InferenceNetwork};
use crate::relaxation::TemperatureSchedule;
use candle::{D, DType, Result, Tensor, Var};
use serde::{Deserialize, Serialize};
use vaekit_core::{NoiseSource, log_mean_exp};
use vaekit_distributions::{KlMethod, default_registry};
use vaekit_nets::Pass;

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

fn mean_f64(t: &Tensor) -> Result<f64> {
    t.to_dtype(DType::F64)?.mean_all()?.to_scalar::<f64>()
}

/// Evaluates `config` on a batch `x: [B, P]` at a (fractional) `epoch` (for warm-up).
///
/// # Errors
/// DReG with a flow posterior; a zero sample count; non-finite values (a NaN or infinite
/// bound is reported as an error naming the objective, never returned silently).
pub fn evaluate(
    config: &ObjectiveConfig,
    inference: &dyn InferenceNetwork,
    model: &dyn GenerativeModel,
    x: &Tensor,
    epoch: f64,
    noise: &mut dyn NoiseSource,
    pass: Pass,
) -> Result<Evaluation> {
    evaluate_unchecked(config, inference, model, x, epoch, noise, pass)?.checked()
}

/// [`evaluate`] without the finiteness check, for callers that handle non-finite batches
/// themselves (the trainer skips and counts them): check [`Evaluation::is_finite`]. Running
/// estimator statistics start afresh; see [`evaluate_with_state`].
///
/// # Errors
/// DReG with a flow posterior; a zero sample count.
pub fn evaluate_unchecked(
    config: &ObjectiveConfig,
    inference: &dyn InferenceNetwork,
    model: &dyn GenerativeModel,
    x: &Tensor,
    epoch: f64,
    noise: &mut dyn NoiseSource,
    pass: Pass,
) -> Result<Evaluation> {
    let mut state = EstimatorState::default();
    evaluate_with_state(config, &mut state, inference, model, x, epoch, noise, pass)
}

/// [`evaluate_unchecked`] with the estimator's running statistics (NVIL's moving averages),
/// which a training pass ([`Pass::Train`]) updates.
///
/// # Errors
/// DReG with a flow posterior; a pathwise objective (ELBO, IWAE) trained through a posterior
/// that is not reparameterized (discrete latents); a zero sample count; the estimators' own.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_with_state(
    config: &ObjectiveConfig,
    state: &mut EstimatorState,
    inference: &dyn InferenceNetwork,
    model: &dyn GenerativeModel,
    x: &Tensor,
    epoch: f64,
    noise: &mut dyn NoiseSource,
    pass: Pass,
) -> Result<Evaluation> {
    let num_samples = config.objective.num_samples();
    if num_samples == 0 {
        candle::bail!("objective: num_samples must be > 0");
    }
    match config.objective {
        Objective::Elbo { .. } | Objective::Iwae { .. } => {}
        Objective::Reinforce { baseline, .. } => {
            return estimator::reinforce(
                baseline,
                state,
                inference,
                model,
                x,
                num_samples,
                noise,
                pass,
            );
        }
        Objective::Vimco { .. } => {
            return estimator::vimco(inference, model, x, num_samples, noise, pass);
        }
        Objective::Rws { wake_fraction, .. } => {
            return estimator::rws(wake_fraction, inference, model, x, num_samples, noise, pass);
        }
        Objective::Concrete {
            temperature,
            straight_through,
            ..
        } => {
            return estimator::concrete(
                temperature,
                straight_through,
                inference,
                model,
                x,
                epoch,
                num_samples,
                noise,
                pass,
            );
        }
    }
    let posterior = inference.forward(x, pass)?;
    if matches!(pass, Pass::Train) && !posterior.is_reparameterized() {
        candle::bail!(
            "objective: the ELBO and IWAE gradients need reparameterized latents; train discrete latents with REINFORCE, NVIL, VIMCO, RWS or Concrete"
        );
    }
    // Free bits in several groups need per-dimension KLs: in closed form for a plain
    // Gaussian posterior with the analytic KL, otherwise through the flow (Monte Carlo, with
    // `log q` split over the dimensions along the sampling path).
    let grouped_free_bits = match (config.objective, config.free_bits) {
        (Objective::Elbo { .. }, Some(fb)) if fb.groups > 1 => Some(fb.groups),
        _ => None,
    };
    // The ELBO's KL in closed form: a posterior without a flow whose pair the registry has.
    let analytic = match (config.objective, posterior.as_distribution()) {
        (
            Objective::Elbo {
                analytic_kl: true, ..
            },
            Some(q),
        ) if default_registry().has_analytic(q, model.prior()) => Some(q),
        _ => None,
    };
    let per_dim_closed_form = analytic.is_some_and(|q| per_dim_pair(q, model.prior()).is_some());
    let (sample, log_q_dims) = match grouped_free_bits {
        Some(groups) if !per_dim_closed_form => {
            match posterior.rsample_with_log_prob_per_dim(num_samples, noise)? {
                Some((sample, dims)) => (sample, Some(dims)),
                None => candle::bail!(
                    "objective: free bits in {groups} groups need per-dimension KLs, which this posterior does not split (planar and Sylvester steps mix the dimensions): use free_bits.groups = 1"
                ),
            }
        }
        _ => (posterior.rsample_with_log_prob(num_samples, noise)?, None),
    };
    let (latent_dim, log_q_stopped) = (sample.z.dim(D::Minus1)?, sample.log_q_stopped.clone());
    let z = sample.z.clone();
    let draw = Draw::score(sample, model, x, pass)?;
    // Differentiable log-weights (the draw's own `log_w64` is detached), [B, S].
    let log_w64 = (&draw.log_p - &draw.log_q)?.to_dtype(DType::F64)?;
    let eval = match config.objective {
        Objective::Elbo { .. } => {
            let (kl, method, per_dim) = match analytic {
                Some(q) => {
                    let per_dim = match per_dim_pair(q, model.prior()) {
                        Some((bq, bp)) => Some(default_registry().analytic(bq, bp)?),
                        None => None,
                    };
                    (
                        default_registry().analytic(q, model.prior())?,
                        KlMethod::Analytic,
                        per_dim,
                    )
                }
                None => {
                    // `log q_d − log p_d` per dimension, averaged over the draws: [B, D].
                    let per_dim = match (&log_q_dims, model.prior().reinterpreted()) {
                        (Some(dims), Some((bp, 1))) => {
                            Some((dims - bp.log_prob(&z)?)?.mean(D::Minus2)?)
                        }
                        (Some(_), _) => candle::bail!(
                            "objective: grouped free bits need a prior that factorizes over the latent dimensions"
                        ),
                        (None, _) => None,
                    };
                    (
                        (&draw.log_q - &draw.log_prior)?.mean(D::Minus1)?,
                        KlMethod::MonteCarlo { num_samples },
                        per_dim,
                    )
                }
            };
            if let (Some(groups), None) = (grouped_free_bits, &per_dim) {
                candle::bail!(
                    "objective: free bits in {groups} groups need per-dimension KLs, which this posterior and prior do not give: use free_bits.groups = 1"
                );
            }
            let recon_b = draw.log_lik.mean(D::Minus1)?; // [B]
            let beta = config.warmup.map_or(1.0, |w| w.beta(epoch));
            let kl_term = match config.free_bits {
                Some(fb) => free_bits_term(&kl, per_dim.as_ref(), fb, latent_dim)?,
                None => kl.mean_all()?,
            };
            let objective = (recon_b.mean_all()? - (kl_term * beta)?)?;
            let kl_mean = mean_f64(&kl)?;
            let base = draw.evaluation(objective.neg()?, None, f64::NAN)?;
            Evaluation {
                bound: base.reconstruction - kl_mean,
                kl: kl_mean,
                kl_method: method,
                ..base
            }
        }
        Objective::Iwae { gradient, .. } => {
            let bound_b = log_mean_exp(&log_w64, D::Minus1, false)?; // [B]
            let bound = bound_b.mean_all()?;
            let (loss, inference_loss) = match gradient {
                IwaeGradient::Standard => (bound.neg()?.to_dtype(x.dtype())?, None),
                IwaeGradient::Dreg => {
                    let Some(log_q_stopped) = &log_q_stopped else {
                        candle::bail!(
                            "objective: DReG needs a posterior whose density can be evaluated with detached parameters; flow posteriors cannot"
                        );
                    };
                    // Normalised weights w̃ (detached), [B, S].
                    let w_tilde = log_w64
                        .broadcast_sub(&bound_b.unsqueeze(1)?)?
                        .exp()?
                        .affine(1.0 / num_samples as f64, 0.0)?
                        .detach();
                    // A sample with log-weight −∞ has w̃ = 0 and contributes nothing, as in the
                    // standard estimator; its 0 · (−∞) would be NaN, so it is masked out of
                    // both surrogates (gradients reach only the kept samples).
                    let kept = log_w64.detach().ne(f64::NEG_INFINITY)?;
                    let zeros = log_w64.zeros_like()?;
                    let masked = |t: Tensor| kept.where_cond(&t, &zeros);
                    let model_sur = (&w_tilde * masked(log_w64.clone())?)?
                        .sum(D::Minus1)?
                        .mean_all()?;
                    let log_w_stop_q = (&draw.log_p - log_q_stopped)?.to_dtype(DType::F64)?;
                    let inf_sur = (w_tilde.sqr()? * masked(log_w_stop_q)?)?
                        .sum(D::Minus1)?
                        .mean_all()?;
                    (
                        model_sur.neg()?.to_dtype(x.dtype())?,
                        Some(inf_sur.neg()?.to_dtype(x.dtype())?),
                    )
                }
            };
            draw.evaluation(loss, inference_loss, bound.to_scalar::<f64>()?)?
        }
        other => candle::bail!("objective: {other:?} is not a pathwise objective"),
    };
    Ok(eval)
}

/// The base distributions of a factorized posterior and prior whose per-dimension KL has a
/// closed form.
fn per_dim_pair<'a>(
    q: &'a dyn vaekit_distributions::Distribution,
    p: &'a dyn vaekit_distributions::Distribution,
) -> Option<(
    &'a dyn vaekit_distributions::Distribution,
    &'a dyn vaekit_distributions::Distribution,
)> {
    match (q.reinterpreted(), p.reinterpreted()) {
        (Some((bq, 1)), Some((bp, 1))) if default_registry().has_analytic(bq, bp) => Some((bq, bp)),
        _ => None,
    }
}

/// `Σ_j max(λ |g_j|, mean_batch KL_j)` with per-dimension KLs `[B, D]` when available, else
/// one group over the per-datapoint KL `[B]` with floor `λ · latent_dim`.
fn free_bits_term(
    kl: &Tensor,
    per_dim: Option<&Tensor>,
    fb: FreeBits,
    latent_dim: usize,
) -> Result<Tensor> {
    match per_dim {
        Some(per_dim) => {
            let d = per_dim.dim(D::Minus1)?;
            let groups = fb.groups.clamp(1, d);
            let mut total: Option<Tensor> = None;
            for g in 0..groups {
                let (start, end) = (g * d / groups, (g + 1) * d / groups);
                let kl_g = per_dim
                    .narrow(D::Minus1, start, end - start)?
                    .sum(D::Minus1)?
                    .mean_all()?;
                let floor = fb.nats_per_dim * (end - start) as f64;
                let term = kl_g.maximum(floor)?;
                total = Some(match total {
                    Some(t) => (t + term)?,
                    None => term,
                });
            }
            match total {
                Some(t) => Ok(t),
                None => kl.mean_all(),
            }
        }
        None => kl.mean_all()?.maximum(fb.nats_per_dim * latent_dim as f64),
    }
}
