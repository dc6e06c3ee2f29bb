//! Bidirectional Monte Carlo: AIS from both ends on data simulated from the model.

use crate::ais::{AisConfig, VaePath, forward_batch, latent_dim, mean_and_error};
use crate::anneal::{anneal_observed, log_mean_weights};
use crate::step_size::StepSizePlan;
use crate::ticker::{Ticker, transitions_per_batch};
use candle::{Result, Tensor};
use serde::{Deserialize, Serialize};
use vaekit_core::{NoiseSource, Progress, report_job};
use vaekit_nets::Pass;
use vaekit_objectives::{GenerativeModel, InferenceNetwork};

/// Both bounds on simulated data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BdmcReport {
    /// Mean over points of forward AIS's `log p̂(x)`: a stochastic lower bound on the mean
    /// `log p(x)`.
    pub lower: f64,
    /// Mean over points of reverse AIS's `-log (1/p)̂(x)`: a stochastic upper bound.
    pub upper: f64,
    /// `upper - lower`, nats: small when AIS with these settings is trustworthy.
    pub gap: f64,
    /// Standard errors of `lower` and `upper` over the points.
    pub lower_std_error: f64,
    /// See `lower_std_error`.
    pub upper_std_error: f64,
    /// Forward estimates per point.
    pub forward: Vec<f64>,
    /// Reverse estimates per point.
    pub reverse: Vec<f64>,
    /// How the step sizes were set, the same in both directions (online adaptation is named
    /// a heuristic).
    pub step_size_tuning: String,
    /// The settings (used in both directions).
    pub config: AisConfig,
}

/// Simulates `num_points` pairs `(x, z)` from the model (`z` from the prior, `x` from
/// `p(x|z)`, so `z` is an exact posterior sample for `x`), then runs forward AIS from the
/// configured start to `p(z|x)` (lower bound on `log p(x)`) and reverse AIS from `z` back to
/// the start (upper bound). The reverse direction needs the start's inverse map: prior or
/// encoder starts.
///
/// Reports to `progress` as a job named `BDMC` counted in HMC transitions (pilot, forward and
/// reverse), with the mean acceptance (`accept`) and step size (`step`) of each and the
/// running bounds (`lower`, `upper`) of the finished batches; the final bounds and `gap`.
///
/// # Errors
/// Those of [`crate::ais_log_likelihood`]; a flow-posterior start.
///
/// # References
/// Grosse, Ghahramani, Adams, arXiv 1511.02543; Wu, Burda, Salakhutdinov, Grosse,
/// arXiv 1611.04273, section 3.
pub fn bdmc(
    inference: &dyn InferenceNetwork,
    model: &dyn GenerativeModel,
    num_points: usize,
    config: &AisConfig,
    noise: &mut dyn NoiseSource,
    progress: &mut dyn Progress,
) -> Result<BdmcReport> {
    // On vaekit's pool, where parallel ops join cheaply (in place when already there).
    vaekit_core::on_pool(|| -> Result<BdmcReport> {
        if num_points == 0 || config.chains == 0 || config.batch_size == 0 {
            candle::bail!("BDMC: num_points, chains and batch_size must be > 0");
        }
        let (x, z) = model.sample(num_points, noise, Pass::Eval)?;
        bdmc_on_pairs(inference, model, &x, &z, config, noise, progress)
    })
}

/// [`bdmc`] on given simulated pairs: `x_all: [N, P]` drawn from `p(x|z)` with
/// `z_all: [N, D]` drawn from the prior.
///
/// # Errors
/// Those of [`bdmc`]; mismatched counts.
pub fn bdmc_on_pairs(
    inference: &dyn InferenceNetwork,
    model: &dyn GenerativeModel,
    x_all: &Tensor,
    z_all: &Tensor,
    config: &AisConfig,
    noise: &mut dyn NoiseSource,
    progress: &mut dyn Progress,
) -> Result<BdmcReport> {
    // On vaekit's pool, where parallel ops join cheaply (in place when already there).
    vaekit_core::on_pool(|| -> Result<BdmcReport> {
        let num_points = x_all.dim(0)?;
        if z_all.dim(0)? != num_points || num_points == 0 {
            candle::bail!("BDMC: need as many latents as data points, and at least one");
        }
        config.tuning.validate()?;
        let forward_betas = config.schedule.betas(config.num_steps)?;
        // Pilot and forward, then reverse.
        let per_batch = transitions_per_batch(config, forward_betas.len())
            + forward_betas.len().saturating_sub(2) as u64;
        let total = num_points.div_ceil(config.batch_size) as u64 * per_batch;
        let summary = |r: &BdmcReport| vec![("lower", r.lower), ("upper", r.upper), ("gap", r.gap)];
        report_job(
            progress,
            "BDMC",
            total,
            "transitions",
            |progress| {
                let ticker = &mut Ticker::new(progress);
                let reverse_betas: Vec<f64> = forward_betas.iter().rev().copied().collect();
                let d = latent_dim(model)?;
                let (mut forward, mut reverse) = (Vec::new(), Vec::new());
                let mut begin = 0;
                while begin < num_points {
                    let b = config.batch_size.min(num_points - begin);
                    let x = x_all.narrow(0, begin, b)?;
                    let z = z_all
                        .narrow(0, begin, b)?
                        .unsqueeze(1)?
                        .broadcast_as((b, config.chains, d))?
                        .contiguous()?;
                    let path = VaePath::new(inference, model, &x, config.start)?;
                    let exact = path.to_noise(&z)?;
                    // One pilot (forward) tunes the step sizes of both directions.
                    let (up, frozen) =
                        forward_batch(&path, d, &x, &forward_betas, config, noise, ticker)?;
                    let plan = frozen
                        .as_ref()
                        .map_or(StepSizePlan::Online, StepSizePlan::Frozen);
                    let down = anneal_observed(
                        &path,
                        &exact,
                        &reverse_betas,
                        &config.hmc,
                        plan,
                        noise,
                        &mut |a, s| ticker.transition(a, s),
                    )?;
                    forward.extend(log_mean_weights(&up.log_weights)?.0);
                    reverse.extend(
                        log_mean_weights(&down.log_weights)?
                            .0
                            .into_iter()
                            .map(|v| -v),
                    );
                    begin += b;
                    ticker.set("lower", forward.iter().sum::<f64>() / forward.len() as f64);
                    ticker.set("upper", reverse.iter().sum::<f64>() / reverse.len() as f64);
                }
                if let Some(i) = forward
                    .iter()
                    .zip(&reverse)
                    .position(|(f, r)| !f.is_finite() || !r.is_finite())
                {
                    candle::bail!("BDMC: non-finite estimate for simulated point {i}");
                }
                let (lower, lower_std_error) = mean_and_error(&forward);
                let (upper, upper_std_error) = mean_and_error(&reverse);
                Ok(BdmcReport {
                    lower,
                    upper,
                    gap: upper - lower,
                    lower_std_error,
                    upper_std_error,
                    forward,
                    reverse,
                    step_size_tuning: config.tuning.describe(),
                    config: *config,
                })
            },
            summary,
        )
    })
}
