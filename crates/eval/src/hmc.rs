//! Hamiltonian Monte Carlo on batches of chains along an annealing path, with the step size
//! adapted per group of chains (the chains of one data point) towards a target acceptance.

use crate::path::{AnnealingPath, PathPoint};
use candle::{DType, Result, Tensor};
use serde::{Deserialize, Serialize};
use vaekit_core::NoiseSource;

/// Step-size adaptation: after every transition, each group's acceptance rate (smoothed) is
/// compared with `target`; the group's step size is multiplied by `increase` when above and by
/// `decrease` when below, then clamped to `[min, max]`.
///
/// # References
/// Wu, Burda, Salakhutdinov, Grosse, arXiv 1611.04273, section 4 and its released code
/// (target 0.65, factors 1.02 / 0.98); Neal, "MCMC using Hamiltonian dynamics", 2011.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepSizeAdaptation {
    /// Target acceptance rate, in `(0, 1)`.
    pub target: f64,
    /// Factor applied when the smoothed acceptance is above target (`> 1`).
    pub increase: f64,
    /// Factor applied when it is below (`< 1`).
    pub decrease: f64,
    /// Smallest step size.
    pub min: f64,
    /// Largest step size.
    pub max: f64,
    /// Weight of the past in the smoothed acceptance rate, in `[0, 1)`.
    pub smoothing: f64,
}

impl Default for StepSizeAdaptation {
    fn default() -> Self {
        Self {
            target: 0.65,
            increase: 1.02,
            decrease: 0.98,
            min: 1e-4,
            max: 0.5,
            smoothing: 0.9,
        }
    }
}

/// One HMC transition's settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HmcConfig {
    /// Leapfrog steps per transition (`L`).
    pub leapfrog_steps: usize,
    /// Step size every group starts with.
    pub initial_step_size: f64,
    /// Adaptation of the step size; `None` keeps it fixed.
    pub adaptation: Option<StepSizeAdaptation>,
}

impl Default for HmcConfig {
    fn default() -> Self {
        Self {
            leapfrog_steps: 10,
            initial_step_size: 0.1,
            adaptation: Some(StepSizeAdaptation::default()),
        }
    }
}

impl HmcConfig {
    /// Checks the settings.
    ///
    /// # Errors
    /// Zero leapfrog steps, a non-positive step size, an adaptation outside its ranges.
    pub fn validate(&self) -> Result<()> {
        if self.leapfrog_steps == 0 {
            candle::bail!("HMC: leapfrog_steps must be at least 1");
        }
        if !(self.initial_step_size > 0.0 && self.initial_step_size.is_finite()) {
            candle::bail!("HMC: initial_step_size must be positive and finite");
        }
        if let Some(a) = self.adaptation {
            let ok = a.target > 0.0
                && a.target < 1.0
                && a.increase > 1.0
                && a.decrease > 0.0
                && a.decrease < 1.0
                && a.min > 0.0
                && a.max >= a.min
                && a.max.is_finite()
                && (0.0..1.0).contains(&a.smoothing);
            if !ok {
                candle::bail!(
                    "HMC: adaptation needs 0 < target < 1, increase > 1, 0 < decrease < 1, 0 < min <= max, 0 <= smoothing < 1"
                );
            }
        }
        Ok(())
    }
}

/// Per-group step sizes and smoothed acceptance rates.
#[derive(Debug, Clone, PartialEq)]
pub struct StepSizes {
    /// The current step size of every group, `[B]`.
    pub sizes: Vec<f64>,
    /// The smoothed acceptance rate of every group.
    pub acceptance: Vec<f64>,
    adaptation: Option<StepSizeAdaptation>,
}

impl StepSizes {
    /// `groups` step sizes starting at `config.initial_step_size` (clamped to the adaptation
    /// range when there is one).
    pub fn new(groups: usize, config: &HmcConfig) -> Self {
        let start = match config.adaptation {
            Some(a) => config.initial_step_size.clamp(a.min, a.max),
            None => config.initial_step_size,
        };
        Self {
            sizes: vec![start; groups],
            acceptance: vec![config.adaptation.map_or(0.0, |a| a.target); groups],
            adaptation: config.adaptation,
        }
    }

    /// Fixed step sizes, one per group, never adapted.
    pub fn fixed(sizes: Vec<f64>) -> Self {
        Self {
            acceptance: vec![0.0; sizes.len()],
            sizes,
            adaptation: None,
        }
    }

    /// Folds in one transition's mean acceptance probability per group and adapts.
    pub fn observe(&mut self, rates: &[f64]) {
        for ((size, smoothed), &rate) in self.sizes.iter_mut().zip(&mut self.acceptance).zip(rates)
        {
            match self.adaptation {
                Some(a) => {
                    *smoothed = a.smoothing * *smoothed + (1.0 - a.smoothing) * rate;
                    let factor = if *smoothed > a.target {
                        a.increase
                    } else {
                        a.decrease
                    };
                    *size = (*size * factor).clamp(a.min, a.max);
                }
                None => *smoothed = rate,
            }
        }
    }

    /// The step sizes as a `[B, 1, 1]` tensor like `like`.
    fn tensor(&self, like: &Tensor) -> Result<Tensor> {
        Tensor::from_vec(self.sizes.clone(), (self.sizes.len(), 1, 1), like.device())?
            .to_dtype(like.dtype())
    }
}

/// Runs `L` leapfrog steps of size `step` (`[B, 1, 1]`) on `H(ε, p) = -log f_β(ε) + |p|²/2`
/// from `(point, momentum)`; returns the end point and momentum. `L` gradient evaluations.
///
/// # Errors
/// Those of the path.
pub fn leapfrog(
    path: &dyn AnnealingPath,
    point: &PathPoint,
    momentum: &Tensor,
    beta: f64,
    step: &Tensor,
    steps: usize,
) -> Result<(PathPoint, Tensor)> {
    let half = step.affine(0.5, 0.0)?;
    let mut p = (momentum + point.grad_log_density(beta)?.broadcast_mul(&half)?)?;
    let mut current = point.clone();
    for l in 0..steps {
        let position = (&current.position + p.broadcast_mul(step)?)?;
        current = PathPoint::evaluate(path, &position)?;
        let kick = if l + 1 < steps { step } else { &half };
        p = (p + current.grad_log_density(beta)?.broadcast_mul(kick)?)?;
    }
    Ok((current, p))
}

/// The outcome of one HMC transition.
#[derive(Debug, Clone)]
pub struct Transition {
    /// The chains' new states.
    pub point: PathPoint,
    /// Mean acceptance probability `min(1, exp(-ΔH))` per group (`[B]`; NaN energies count
    /// as 0).
    pub acceptance: Vec<f64>,
}

/// One HMC transition leaving `f_β` invariant for every chain: fresh momentum, leapfrog,
/// Metropolis acceptance on the Hamiltonian. A NaN or infinite proposed energy is a rejection.
///
/// # Errors
/// Those of the path.
pub fn hmc_transition(
    path: &dyn AnnealingPath,
    point: &PathPoint,
    beta: f64,
    step_sizes: &StepSizes,
    leapfrog_steps: usize,
    noise: &mut dyn NoiseSource,
) -> Result<Transition> {
    let position = &point.position;
    let shape = position.shape().clone();
    let momentum = noise.standard_normal(&shape, position.dtype(), position.device())?;
    let step = step_sizes.tensor(position)?;
    let (proposal, end_momentum) = leapfrog(path, point, &momentum, beta, &step, leapfrog_steps)?;
    let kinetic = |p: &Tensor| -> Result<Tensor> { p.sqr()?.sum(2)?.affine(0.5, 0.0) };
    // ΔH = H(start) - H(proposal) = log f(prop) - K(prop) - log f(start) + K(start), in f64.
    let gain = ((proposal.log_density(beta)? - kinetic(&end_momentum)?)?
        - (point.log_density(beta)? - kinetic(&momentum)?)?)?
    .to_dtype(DType::F64)?;
    let (b, c) = gain.dims2()?;
    let log_u = noise
        .uniform(&(b, c).into(), DType::F64, position.device())?
        .log()?;
    let gains = gain.to_vec2::<f64>()?;
    let log_us = log_u.to_vec2::<f64>()?;
    let mut accept = Vec::with_capacity(b * c);
    let mut rates = Vec::with_capacity(b);
    for (g_row, u_row) in gains.iter().zip(&log_us) {
        let mut sum = 0.0;
        for (&g, &u) in g_row.iter().zip(u_row) {
            // `u < g` is false for NaN; +inf gain (from a NaN-free but infinite start) is
            // not a valid proposal either.
            let ok = g.is_finite() && u < g;
            accept.push(u8::from(ok));
            sum += if g.is_finite() { g.min(0.0).exp() } else { 0.0 };
        }
        rates.push(sum / c as f64);
    }
    let mask = Tensor::from_vec(accept, (b, c), position.device())?;
    let mask3 = mask.unsqueeze(2)?.broadcast_as(shape)?;
    let point = PathPoint {
        position: mask3.where_cond(&proposal.position, &point.position)?,
        log_ratio: mask.where_cond(&proposal.log_ratio, &point.log_ratio)?,
        grad_log_ratio: mask3.where_cond(&proposal.grad_log_ratio, &point.grad_log_ratio)?,
    };
    Ok(Transition {
        point,
        acceptance: rates,
    })
}
