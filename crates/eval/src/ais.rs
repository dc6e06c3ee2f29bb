//! Annealed importance sampling of `log p(x)` for a VAE through the model-agnostic API.

use crate::anneal::{Annealed, anneal_observed, log_mean_weights};
use crate::hmc::HmcConfig;
use crate::path::AnnealingPath;
use crate::schedule::AnnealingSchedule;
use crate::step_size::{FrozenStepSizes, StepSizePlan, StepSizeTuning};
use crate::ticker::{Ticker, transitions_per_batch};
use candle::{D, Result, Tensor};
use serde::{Deserialize, Serialize};
use vaekit_core::{NoiseSource, Progress, SeededNoise, report_job};
use vaekit_nets::Pass;
use vaekit_objectives::{GenerativeModel, InferenceNetwork, Posterior};

/// The distribution the chains start from (`f_0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AisStart {
    /// `N(0, I)` in latent space: the prior of a standard-normal-prior model (Wu et al.).
    Prior,
    /// The encoder's diagonal Gaussian, before any flow.
    Encoder,
    /// The full posterior `q(z|x)`, flow included: chains run in the posterior's noise space,
    /// where its density is known everywhere.
    Posterior,
}

impl std::str::FromStr for AisStart {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "prior" => Ok(Self::Prior),
            "encoder" => Ok(Self::Encoder),
            "posterior" => Ok(Self::Posterior),
            other => Err(format!(
                "unknown AIS start `{other}`: expected prior, encoder or posterior"
            )),
        }
    }
}

/// Settings of an AIS evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AisConfig {
    /// `T`, intermediate distributions (HMC transitions: `T - 1`).
    pub num_steps: usize,
    /// How the inverse temperatures are spaced.
    pub schedule: AnnealingSchedule,
    /// Independent chains per data point.
    pub chains: usize,
    /// Data points annealed together.
    pub batch_size: usize,
    /// The HMC transitions.
    pub hmc: HmcConfig,
    /// The start distribution.
    pub start: AisStart,
    /// How each data point's step sizes are set (default: a pilot run, then frozen).
    #[serde(default)]
    pub tuning: StepSizeTuning,
}

impl Default for AisConfig {
    fn default() -> Self {
        Self {
            num_steps: 1000,
            schedule: AnnealingSchedule::default(),
            chains: 16,
            batch_size: 100,
            hmc: HmcConfig::default(),
            start: AisStart::Posterior,
            tuning: StepSizeTuning::default(),
        }
    }
}

/// The result of an AIS evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AisReport {
    /// Mean negative log-likelihood, nats (a stochastic upper bound on the true NLL).
    pub mean_nll: f64,
    /// Standard error of `mean_nll` over the data points.
    pub std_error: f64,
    /// `log p̂(x)` of every data point: the log-mean-exp of its chains' weights.
    pub log_likelihoods: Vec<f64>,
    /// Per data point, the delta-method standard error of `log p̂(x)` over its chains.
    pub chain_std_errors: Vec<f64>,
    /// Mean HMC acceptance probability.
    pub mean_acceptance: f64,
    /// Mean final step size.
    pub mean_step_size: f64,
    /// How the step sizes were set ([`StepSizeTuning::describe`]; online adaptation is named
    /// a heuristic).
    pub step_size_tuning: String,
    /// Gradient evaluations per chain.
    pub gradient_evaluations: usize,
    /// The settings.
    pub config: AisConfig,
}

/// The annealing path of a VAE for one batch `x: [B, P]`: the start's sampling map `ε ↦ z`
/// and `ℓ(ε) = log p(x, z) - log q_start(z)`, so that `Z_1 = p(x)` for every start.
pub struct VaePath<'a> {
    x: Tensor,
    model: &'a dyn GenerativeModel,
    start: StartMap<'a>,
}

enum StartMap<'a> {
    Prior,
    /// `loc`, `scale`: `[B, 1, D]`; `Σ log scale`: `[B, 1]`.
    Gaussian(Tensor, Tensor, Tensor),
    Posterior(Box<dyn Posterior + 'a>),
}

impl<'a> VaePath<'a> {
    /// The path for the batch `x: [B, P]` from `start`; the start's parameters are detached.
    ///
    /// # Errors
    /// The encoder start with a posterior that has no Gaussian base; errors of the networks.
    pub fn new(
        inference: &'a dyn InferenceNetwork,
        model: &'a dyn GenerativeModel,
        x: &Tensor,
        start: AisStart,
    ) -> Result<Self> {
        let start = match start {
            AisStart::Prior => StartMap::Prior,
            AisStart::Encoder => {
                let posterior = inference.forward(x, Pass::Eval)?;
                let Some((loc, log_scale)) = posterior.base_gaussian() else {
                    candle::bail!(
                        "AIS: the encoder start needs a Gaussian posterior (a stochastic hierarchy has none): start from the posterior or the prior"
                    );
                };
                StartMap::Gaussian(
                    loc.detach().unsqueeze(1)?,
                    log_scale.detach().exp()?.unsqueeze(1)?,
                    log_scale.detach().sum_keepdim(D::Minus1)?,
                )
            }
            AisStart::Posterior => StartMap::Posterior(inference.forward(x, Pass::Eval)?),
        };
        Ok(Self {
            x: x.clone(),
            model,
            start,
        })
    }

    /// `ε` of latent points `z: [B, C, D]`, where the start map can be inverted.
    ///
    /// # Errors
    /// The flow-posterior start, whose map has no inverse here.
    pub fn to_noise(&self, z: &Tensor) -> Result<Tensor> {
        match &self.start {
            StartMap::Prior => Ok(z.clone()),
            StartMap::Gaussian(loc, scale, _) => z.broadcast_sub(loc)?.broadcast_div(scale),
            StartMap::Posterior(_) => candle::bail!(
                "reverse AIS needs the start's inverse map, which a flow posterior lacks: start from the prior or the encoder"
            ),
        }
    }
}

impl AnnealingPath for VaePath<'_> {
    fn log_ratio(&self, eps: &Tensor) -> Result<Tensor> {
        let d = eps.dim(2)?;
        let log_normal = eps
            .sqr()?
            .sum(2)?
            .affine(-0.5, -0.5 * d as f64 * std::f64::consts::TAU.ln())?;
        let (z, log_q) = match &self.start {
            StartMap::Prior => (eps.clone(), log_normal),
            StartMap::Gaussian(loc, scale, log_scale_sum) => (
                eps.broadcast_mul(scale)?.broadcast_add(loc)?,
                log_normal.broadcast_sub(log_scale_sum)?,
            ),
            StartMap::Posterior(posterior) => {
                let s = posterior.reparameterize(eps)?;
                (s.z, s.log_q)
            }
        };
        self.model.log_prob(&self.x, &z, Pass::Eval)? - log_q
    }
}

/// The latent dimension of a model (its prior's event size).
pub(crate) fn latent_dim(model: &dyn GenerativeModel) -> Result<usize> {
    model
        .latent_dim()
        .map_err(|e| candle::Error::Msg(format!("AIS: {e}")))
}

/// `log p(x)` by annealed importance sampling with HMC transitions for every row of
/// `data: [N, P]`: `C` chains per data point start from the chosen distribution and anneal
/// geometrically to `p(z|x)`; per data point the log-mean-exp of the chains' weights
/// (accumulated in f64) and its standard error. Evaluation mode throughout.
///
/// Reports to `progress` as a job named `HAIS` counted in HMC transitions (the pilot's
/// included), with the mean acceptance (`accept`) and step size (`step`) of each and the
/// running mean NLL (`nll`) of the finished batches; the final `nll` and its standard error
/// (`se`).
///
/// Gradients are taken with respect to the chains' positions only; build the networks from
/// plain tensors (`ParamStore::frozen_var_builder`) so that no parameter gradient is computed.
///
/// # Errors
/// Zero sizes, bad HMC settings, a non-finite estimate (reported with the data point's index).
///
/// # References
/// Neal, "Annealed importance sampling", 1998; Wu, Burda, Salakhutdinov, Grosse,
/// arXiv 1611.04273 (HAIS for decoder-based models).
pub fn ais_log_likelihood(
    inference: &dyn InferenceNetwork,
    model: &dyn GenerativeModel,
    data: &Tensor,
    config: &AisConfig,
    noise: &mut dyn NoiseSource,
    progress: &mut dyn Progress,
) -> Result<AisReport> {
    // On vaekit's pool, where parallel ops join cheaply (in place when already there).
    vaekit_core::on_pool(|| -> Result<AisReport> {
        if config.chains == 0 || config.batch_size == 0 {
            candle::bail!("AIS: chains and batch_size must be > 0");
        }
        config.tuning.validate()?;
        let betas = config.schedule.betas(config.num_steps)?;
        let d = latent_dim(model)?;
        let n = data.dim(0)?;
        let total =
            n.div_ceil(config.batch_size) as u64 * transitions_per_batch(config, betas.len());
        let summary = |r: &AisReport| vec![("nll", r.mean_nll), ("se", r.std_error)];
        report_job(
            progress,
            "HAIS",
            total,
            "transitions",
            |progress| {
                let ticker = &mut Ticker::new(progress);
                let betas: &[f64] = &betas;
                let (mut lls, mut errs) = (Vec::with_capacity(n), Vec::with_capacity(n));
                let (mut acceptance, mut step_size, mut batches, mut grads) =
                    (0.0, 0.0, 0usize, 0usize);
                let mut begin = 0;
                while begin < n {
                    let b = config.batch_size.min(n - begin);
                    let x = data.narrow(0, begin, b)?;
                    let path = VaePath::new(inference, model, &x, config.start)?;
                    let (out, _) = forward_batch(&path, d, &x, betas, config, noise, ticker)?;
                    let (ll, err) = log_mean_weights(&out.log_weights)?;
                    if let Some(i) = ll.iter().position(|v| !v.is_finite()) {
                        candle::bail!("AIS: log p(x) of data point {} is {}", begin + i, ll[i]);
                    }
                    lls.extend(ll);
                    ticker.set("nll", -lls.iter().sum::<f64>() / lls.len() as f64);
                    errs.extend(err);
                    acceptance += out.mean_acceptance;
                    step_size += out.step_sizes.iter().sum::<f64>() / b as f64;
                    grads = out.gradient_evaluations;
                    batches += 1;
                    begin += b;
                }
                let (mean_ll, std_error) = mean_and_error(&lls);
                Ok(AisReport {
                    mean_nll: -mean_ll,
                    std_error,
                    log_likelihoods: lls,
                    chain_std_errors: errs,
                    mean_acceptance: acceptance / batches.max(1) as f64,
                    mean_step_size: step_size / batches.max(1) as f64,
                    gradient_evaluations: grads,
                    step_size_tuning: config.tuning.describe(),
                    config: *config,
                })
            },
            summary,
        )
    })
}

/// One batch's forward run: the step sizes tuned (when `config` asks for a pilot), chains
/// started from `N(0, I)` in noise space and annealed through `betas`, each transition counted
/// on `ticker`. Returns the run and the frozen step sizes, for a reverse run to reuse.
///
/// # Errors
/// Those of the pilot and of [`crate::anneal`].
pub(crate) fn forward_batch(
    path: &VaePath<'_>,
    d: usize,
    x: &Tensor,
    betas: &[f64],
    config: &AisConfig,
    noise: &mut dyn NoiseSource,
    ticker: &mut Ticker<'_>,
) -> Result<(Annealed, Option<FrozenStepSizes>)> {
    let b = x.dim(0)?;
    let frozen = tune_step_sizes(path, b, d, x, betas, config, noise, ticker)?;
    let plan = frozen
        .as_ref()
        .map_or(StepSizePlan::Online, StepSizePlan::Frozen);
    let start = noise.standard_normal(&(b, config.chains, d).into(), x.dtype(), x.device())?;
    let out = anneal_observed(
        path,
        &start,
        betas,
        &config.hmc,
        plan,
        noise,
        &mut |a, s| ticker.transition(a, s),
    )?;
    Ok((out, frozen))
}

/// The frozen step sizes of a batch of `b` data points `x` (`None` for online adaptation):
/// with an adaptation, a pilot run of `chains` chains per data point on a noise stream of its
/// own (seeded from one draw of `noise`) adapts online, and each stretch's geometric mean
/// is frozen; without one, the initial step size throughout.
///
/// The pilot's transitions are counted on `ticker`.
///
/// # Errors
/// Those of the pilot run.
#[allow(clippy::too_many_arguments)]
pub(crate) fn tune_step_sizes(
    path: &dyn AnnealingPath,
    b: usize,
    d: usize,
    x: &Tensor,
    betas: &[f64],
    config: &AisConfig,
    noise: &mut dyn NoiseSource,
    ticker: &mut Ticker<'_>,
) -> Result<Option<FrozenStepSizes>> {
    let StepSizeTuning::Pilot { chains, stretches } = config.tuning else {
        return Ok(None);
    };
    let transitions = betas.len().saturating_sub(2);
    if config.hmc.adaptation.is_none() || transitions == 0 {
        return Ok(Some(FrozenStepSizes::constant(
            b,
            transitions,
            config.hmc.initial_step_size,
        )));
    }
    let mut seed = [0u64; 1];
    noise.fill_u64(&mut seed)?;
    let mut pilot = SeededNoise::new(seed[0]);
    let start = pilot.standard_normal(&(b, chains, d).into(), x.dtype(), x.device())?;
    let out = anneal_observed(
        path,
        &start,
        betas,
        &config.hmc,
        StepSizePlan::Online,
        &mut pilot,
        &mut |a, s| ticker.transition(a, s),
    )?;
    FrozenStepSizes::from_trace(&out.step_trace, stretches).map(Some)
}

/// The mean of `values` and its standard error.
pub(crate) fn mean_and_error(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / n;
    let var = if n > 1.0 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    (mean, (var / n).sqrt())
}
