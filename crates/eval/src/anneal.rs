//! Annealed importance sampling along a path: the generic driver.

use crate::hmc::{HmcConfig, StepSizes, hmc_transition};
use crate::path::{AnnealingPath, PathPoint};
use crate::step_size::StepSizePlan;
use candle::{DType, Result, Tensor};
use vaekit_core::NoiseSource;

/// The chains after annealing.
#[derive(Debug, Clone)]
pub struct Annealed {
    /// `log w` of every chain, f64 `[B, C]`: `log mean_c w` estimates `log Z_last - log Z_first`.
    pub log_weights: Tensor,
    /// The chains' final states.
    pub point: PathPoint,
    /// The final step size of every group.
    pub step_sizes: Vec<f64>,
    /// The step size every group used at every transition, in the forward schedule's order
    /// (`[T − 1][B]`; a reverse run's last transition comes first): what a pilot run hands
    /// to [`crate::FrozenStepSizes::from_trace`].
    pub step_trace: Vec<Vec<f64>>,
    /// Mean acceptance probability over all transitions and chains.
    pub mean_acceptance: f64,
    /// Gradient evaluations per chain (`(T - 1) · L + 1`).
    pub gradient_evaluations: usize,
}

/// Annealed importance sampling with HMC transitions through the inverse temperatures
/// `betas` (`γ_0, ..., γ_T`), starting from `start: [B, C, D]`, which must be exact draws from
/// `f_{γ_0}`: for `k = 1..T`, `log w += (γ_k - γ_{k-1}) ℓ(ε)`, then (except after the last)
/// one HMC transition leaving `f_{γ_k}` invariant. Forward (`γ` from 0 to 1, start from
/// `N(0, I)`) gives an unbiased estimate of `Z_1` in `w`; reverse (1 to 0, start from exact
/// samples of `f_1`) one of `1 / Z_1`. Weights accumulate in f64.
///
/// The estimates are unbiased only with step sizes fixed before the run
/// ([`StepSizePlan::Frozen`]); [`StepSizePlan::Online`] adapts them from the run's own
/// acceptance (a pilot run, or a heuristic estimate).
///
/// # Errors
/// Fewer than two temperatures, a bad HMC configuration, frozen sizes for another number of
/// groups or transitions, errors of the path.
///
/// # References
/// Neal, "Annealed importance sampling", 1998; Grosse, Ghahramani, Adams, "Sandwiching the
/// marginal likelihood using bidirectional Monte Carlo", arXiv 1511.02543.
pub fn anneal(
    path: &dyn AnnealingPath,
    start: &Tensor,
    betas: &[f64],
    hmc: &HmcConfig,
    plan: StepSizePlan,
    noise: &mut dyn NoiseSource,
) -> Result<Annealed> {
    anneal_observed(path, start, betas, hmc, plan, noise, &mut |_, _| {})
}

/// [`anneal`], calling
/// `on_transition(acceptance, step_sizes)` after every HMC transition with the mean
/// acceptance probability of its chains and the mean step size it used.
pub(crate) fn anneal_observed(
    path: &dyn AnnealingPath,
    start: &Tensor,
    betas: &[f64],
    hmc: &HmcConfig,
    plan: StepSizePlan,
    noise: &mut dyn NoiseSource,
    on_transition: &mut dyn FnMut(f64, f64),
) -> Result<Annealed> {
    hmc.validate()?;
    if betas.len() < 2 {
        candle::bail!("anneal: need at least two inverse temperatures");
    }
    if let StepSizePlan::Frozen(f) = plan {
        let (b, transitions) = (start.dim(0)?, betas.len() - 2);
        if f.groups() != b || (transitions > 0 && f.transitions() != transitions) {
            candle::bail!(
                "anneal: frozen step sizes for {} groups and {} transitions, the run has {b} and {transitions}",
                f.groups(),
                f.transitions()
            );
        }
    }
    // Thousands of small forward and backward passes: the pool's workers stay awake.
    vaekit_core::keep_awake(|| {
        let (b, c, _) = start.dims3()?;
        let mut point = PathPoint::evaluate(path, start)?;
        let mut log_w = Tensor::zeros((b, c), DType::F64, start.device())?;
        let mut steps = StepSizes::new(b, hmc);
        let (mut acceptance_sum, mut transitions) = (0.0, 0usize);
        let mut gradient_evaluations = 1;
        let last = betas.len() - 1;
        let reverse = betas[0] > betas[last];
        // The forward-schedule index of the transition at run step `k` (1 ≤ k < last).
        let forward_index = |k: usize| if reverse { last - 1 - k } else { k - 1 };
        let mut step_trace = vec![Vec::new(); last.saturating_sub(1)];
        for k in 1..=last {
            let delta = betas[k] - betas[k - 1];
            if delta != 0.0 {
                // 0 · (-inf) would be NaN: only non-zero increments touch the weights.
                let ell = point.log_ratio.to_dtype(DType::F64)?;
                log_w = (log_w + ell.affine(delta, 0.0)?)?;
            }
            if k < last {
                let j = forward_index(k);
                if let StepSizePlan::Frozen(f) = plan {
                    steps = StepSizes::fixed(f.at(j));
                }
                step_trace[j] = steps.sizes.clone();
                let t = hmc_transition(path, &point, betas[k], &steps, hmc.leapfrog_steps, noise)?;
                let acceptance = t.acceptance.iter().sum::<f64>() / b as f64;
                acceptance_sum += acceptance;
                transitions += 1;
                on_transition(acceptance, steps.sizes.iter().sum::<f64>() / b as f64);
                if let StepSizePlan::Online = plan {
                    steps.observe(&t.acceptance);
                }
                point = t.point;
                gradient_evaluations += hmc.leapfrog_steps;
            }
        }
        Ok(Annealed {
            log_weights: log_w,
            point,
            step_sizes: steps.sizes,
            step_trace,
            mean_acceptance: if transitions == 0 {
                f64::NAN
            } else {
                acceptance_sum / transitions as f64
            },
            gradient_evaluations,
        })
    })
}

/// Per row of `log_w: [B, C]` (f64): `log mean_c w` and its delta-method standard error
/// `sd_c(w) / (sqrt(C) · mean_c(w))`.
///
/// # Errors
/// Tensor errors.
pub fn log_mean_weights(log_w: &Tensor) -> Result<(Vec<f64>, Vec<f64>)> {
    let rows = log_w.to_dtype(DType::F64)?.to_vec2::<f64>()?;
    let mut estimates = Vec::with_capacity(rows.len());
    let mut errors = Vec::with_capacity(rows.len());
    for row in rows {
        let n = row.len() as f64;
        let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !max.is_finite() {
            estimates.push(max);
            errors.push(f64::NAN);
            continue;
        }
        let w: Vec<f64> = row.iter().map(|v| (v - max).exp()).collect();
        let mean = w.iter().sum::<f64>() / n;
        let var = if n > 1.0 {
            w.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
        } else {
            0.0
        };
        estimates.push(max + mean.ln());
        errors.push((var / n).sqrt() / mean);
    }
    Ok((estimates, errors))
}
