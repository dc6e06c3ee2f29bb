//! HMC on known targets: invariance, reversibility, energy conservation, adaptation.
#![allow(clippy::unwrap_used)]

use candle::{DType, Device, Result, Tensor};
use vaekit_core::{NoiseSource, SeededNoise};
use vaekit_eval::*;

const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// `ℓ(ε) = log N(ε; loc, diag(scale²)) - log N(ε; 0, I)`: at `β = 1` the target is the
/// Gaussian itself.
struct GaussianTarget {
    loc: Vec<f64>,
    scale: Vec<f64>,
    /// Where `ε_0 > nan_above`, `ℓ` is NaN (a model that breaks in part of the space).
    nan_above: Option<f64>,
}

impl AnnealingPath for GaussianTarget {
    fn log_ratio(&self, eps: &Tensor) -> Result<Tensor> {
        let d = self.loc.len();
        let dev = eps.device();
        let loc = Tensor::from_vec(self.loc.clone(), d, dev)?.to_dtype(eps.dtype())?;
        let scale = Tensor::from_vec(self.scale.clone(), d, dev)?.to_dtype(eps.dtype())?;
        let log_scale_sum: f64 = self.scale.iter().map(|s| s.ln()).sum();
        let target = eps
            .broadcast_sub(&loc)?
            .broadcast_div(&scale)?
            .sqr()?
            .sum(2)?
            .affine(-0.5, -log_scale_sum)?;
        let base = eps.sqr()?.sum(2)?.affine(-0.5, 0.0)?;
        let ell = (target - base)?;
        match self.nan_above {
            None => Ok(ell),
            Some(t) => {
                let first = eps.narrow(2, 0, 1)?.squeeze(2)?;
                let bad = first.gt(t)?;
                let nan = ell.ones_like()?.affine(f64::NAN, 0.0)?;
                bad.where_cond(&nan, &ell)
            }
        }
    }
}

fn gaussian(loc: &[f64], scale: &[f64]) -> GaussianTarget {
    GaussianTarget {
        loc: loc.to_vec(),
        scale: scale.to_vec(),
        nan_above: None,
    }
}

fn exact_draws(t: &GaussianTarget, b: usize, c: usize, noise: &mut SeededNoise) -> Tensor {
    let d = t.loc.len();
    let n = noise
        .standard_normal(&(b, c, d).into(), DType::F64, &Device::Cpu)
        .unwrap();
    let loc = Tensor::from_vec(t.loc.clone(), d, &Device::Cpu).unwrap();
    let scale = Tensor::from_vec(t.scale.clone(), d, &Device::Cpu).unwrap();
    n.broadcast_mul(&scale)
        .unwrap()
        .broadcast_add(&loc)
        .unwrap()
}

/// Mean and variance of every dimension over all chains of `x: [B, C, D]`.
fn moments(x: &Tensor) -> (Vec<f64>, Vec<f64>) {
    let d = x.dim(2).unwrap();
    let flat = x.reshape(((), d)).unwrap();
    let mean = flat.mean(0).unwrap();
    let var = flat
        .broadcast_sub(&mean)
        .unwrap()
        .sqr()
        .unwrap()
        .mean(0)
        .unwrap();
    (mean.to_vec1().unwrap(), var.to_vec1().unwrap())
}

#[test]
fn hmc_leaves_a_gaussian_target_invariant() {
    let target = gaussian(&[1.0, -2.0, 0.5], &[0.5, 1.5, 1.0]);
    let mut noise = SeededNoise::new(11);
    let (b, c) = (2, 4000);
    let start = exact_draws(&target, b, c, &mut noise);
    let mut point = PathPoint::evaluate(&target, &start).unwrap();
    let config = HmcConfig {
        leapfrog_steps: 5,
        initial_step_size: 0.3,
        adaptation: None,
    };
    let steps = StepSizes::new(b, &config);
    let mut acceptance = 0.0;
    for _ in 0..10 {
        let t = hmc_transition(&target, &point, 1.0, &steps, 5, &mut noise).unwrap();
        acceptance += t.acceptance.iter().sum::<f64>() / b as f64;
        point = t.point;
    }
    // Chains that never move would pass trivially: they must have moved.
    assert!(acceptance / 10.0 > 0.5, "acceptance {}", acceptance / 10.0);
    let moved = (&point.position - &start)
        .unwrap()
        .abs()
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    assert!(moved > 0.3, "mean displacement {moved}");
    let (mean, var) = moments(&point.position);
    let n = (b * c) as f64;
    for i in 0..3 {
        let s2 = target.scale[i] * target.scale[i];
        // 5 standard errors of the mean and of the variance (chains are independent draws).
        assert!(
            (mean[i] - target.loc[i]).abs() < 5.0 * (s2 / n).sqrt(),
            "mean {i}: {} vs {}",
            mean[i],
            target.loc[i]
        );
        assert!(
            (var[i] - s2).abs() < 5.0 * s2 * (2.0 / n).sqrt(),
            "variance {i}: {} vs {s2}",
            var[i]
        );
    }
}

#[test]
fn leapfrog_is_reversible_and_conserves_energy() {
    let target = gaussian(&[0.3, -0.7], &[0.4, 2.0]);
    let mut noise = SeededNoise::new(12);
    let start = noise
        .standard_normal(&(3, 5, 2).into(), DType::F64, &Device::Cpu)
        .unwrap();
    let p0 = noise
        .standard_normal(&(3, 5, 2).into(), DType::F64, &Device::Cpu)
        .unwrap();
    let point = PathPoint::evaluate(&target, &start).unwrap();
    let beta = 0.7;
    let energy = |pt: &PathPoint, p: &Tensor| -> Vec<Vec<f64>> {
        let kinetic = p.sqr().unwrap().sum(2).unwrap().affine(0.5, 0.0).unwrap();
        (kinetic - pt.log_density(beta).unwrap())
            .unwrap()
            .to_vec2()
            .unwrap()
    };
    for (h, tol) in [(0.01, 1e-3), (0.002, 4e-5)] {
        let step = Tensor::full(h, (3, 1, 1), &Device::Cpu).unwrap();
        let (end, p1) = leapfrog(&target, &point, &p0, beta, &step, 40).unwrap();
        // Energy error of the leapfrog integrator is O(h²).
        for (a, b) in energy(&point, &p0)
            .iter()
            .flatten()
            .zip(energy(&end, &p1).iter().flatten())
        {
            assert!((a - b).abs() < tol, "h {h}: H {a} -> {b}");
        }
        // Reversibility: flip the momentum, integrate again, arrive where we started.
        let (back, p2) = leapfrog(&target, &end, &p1.neg().unwrap(), beta, &step, 40).unwrap();
        vaekit_core::testing::assert_all_close(&back.position, &start, 1e-10, 1e-10).unwrap();
        vaekit_core::testing::assert_all_close(&p2.neg().unwrap(), &p0, 1e-10, 1e-10).unwrap();
    }
}

#[test]
fn path_point_gradient_matches_finite_differences() {
    let target = gaussian(&[0.3, -0.7, 2.0], &[0.4, 2.0, 1.0]);
    let x = SeededNoise::new(13)
        .standard_normal(&(2, 3, 3).into(), DType::F64, &Device::Cpu)
        .unwrap();
    let point = PathPoint::evaluate(&target, &x).unwrap();
    let fd = vaekit_core::testing::finite_difference_gradient(
        |e| target.log_ratio(e)?.sum_all(),
        &x,
        1e-6,
    )
    .unwrap();
    vaekit_core::testing::assert_all_close(&point.grad_log_ratio, &fd, 1e-6, 1e-6).unwrap();
}

#[test]
fn step_size_adaptation_reaches_the_target_acceptance() {
    // A narrow target needs a small step; start far too large.
    let target = gaussian(&[0.0, 1.0], &[0.05, 0.08]);
    let mut noise = SeededNoise::new(14);
    let (b, c) = (3, 16);
    let mut point = PathPoint::evaluate(&target, &exact_draws(&target, b, c, &mut noise)).unwrap();
    let config = HmcConfig {
        leapfrog_steps: 5,
        initial_step_size: 0.5,
        adaptation: Some(StepSizeAdaptation::default()),
    };
    let mut steps = StepSizes::new(b, &config);
    let mut late = Vec::new();
    for i in 0..600 {
        let t = hmc_transition(&target, &point, 1.0, &steps, 5, &mut noise).unwrap();
        steps.observe(&t.acceptance);
        if i >= 300 {
            late.extend(t.acceptance.iter().copied());
        }
        point = t.point;
    }
    let rate = late.iter().sum::<f64>() / late.len() as f64;
    assert!((rate - 0.65).abs() < 0.1, "late acceptance {rate}");
    for s in &steps.sizes {
        assert!(*s > 1e-4 && *s < 0.2, "step size {s}");
    }
}

#[test]
fn nan_regions_are_rejected_and_never_reach_the_chains() {
    let mut target = gaussian(&[0.0, 0.0], &[1.0, 1.0]);
    target.nan_above = Some(0.5);
    let mut noise = SeededNoise::new(15);
    let (b, c) = (2, 64);
    // Start inside the valid region.
    let start = noise
        .standard_normal(&(b, c, 2).into(), DType::F64, &Device::Cpu)
        .unwrap()
        .affine(0.1, -1.0)
        .unwrap();
    let mut point = PathPoint::evaluate(&target, &start).unwrap();
    let config = HmcConfig {
        leapfrog_steps: 10,
        initial_step_size: 0.4,
        adaptation: Some(StepSizeAdaptation::default()),
    };
    let mut steps = StepSizes::new(b, &config);
    let mut rejected_something = false;
    for _ in 0..50 {
        let t = hmc_transition(&target, &point, 1.0, &steps, 10, &mut noise).unwrap();
        assert!(t.acceptance.iter().all(|a| a.is_finite()));
        rejected_something |= t.acceptance.iter().any(|a| *a < 1.0);
        steps.observe(&t.acceptance);
        point = t.point;
        for v in point
            .log_ratio
            .flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()
        {
            assert!(v.is_finite());
        }
        let first = point.position.narrow(2, 0, 1).unwrap();
        for v in first.flatten_all().unwrap().to_vec1::<f64>().unwrap() {
            assert!(v.is_finite() && v <= 0.5, "{v}");
        }
    }
    assert!(rejected_something);
    assert!(steps.sizes.iter().all(|s| s.is_finite() && *s >= 1e-4));
}

/// A two-component Gaussian mixture in 2-D times a known constant `Z`.
struct Mixture {
    log_z: f64,
}

impl AnnealingPath for Mixture {
    fn log_ratio(&self, eps: &Tensor) -> Result<Tensor> {
        let comp = |mx: f64, my: f64, s: f64, w: f64| -> Result<Tensor> {
            let dx = eps.narrow(2, 0, 1)?.squeeze(2)?.affine(1.0, -mx)?;
            let dy = eps.narrow(2, 1, 1)?.squeeze(2)?.affine(1.0, -my)?;
            (dx.sqr()? + dy.sqr()?)?.affine(-0.5 / (s * s), w.ln() - 2.0 * s.ln() - LN_2PI)
        };
        let a = comp(-2.0, 1.0, 0.6, 0.3)?;
        let b = comp(2.0, 0.5, 0.4, 0.7)?;
        let mix = vaekit_core::log_sum_exp(&Tensor::stack(&[a, b], 2)?, 2, false)?;
        let base = eps.sqr()?.sum(2)?.affine(-0.5, -LN_2PI)?;
        (mix - base)?.affine(1.0, self.log_z)
    }
}

#[test]
fn ais_recovers_the_normaliser_of_a_bimodal_target() {
    let path = Mixture { log_z: 2.5 };
    let mut noise = SeededNoise::new(16);
    let (b, c) = (4, 256);
    let start = noise
        .standard_normal(&(b, c, 2).into(), DType::F64, &Device::Cpu)
        .unwrap();
    let betas = AnnealingSchedule::Sigmoid { radius: 4.0 }
        .betas(300)
        .unwrap();
    let out = anneal(
        &path,
        &start,
        &betas,
        &HmcConfig::default(),
        StepSizePlan::Online,
        &mut noise,
    )
    .unwrap();
    let (estimates, errors) = log_mean_weights(&out.log_weights).unwrap();
    let mean = estimates.iter().sum::<f64>() / b as f64;
    let se = errors.iter().map(|e| e * e).sum::<f64>().sqrt() / b as f64;
    assert!(se < 0.03, "standard error {se}");
    assert!(
        (mean - 2.5).abs() < 3.0 * se + 0.01,
        "log Z {mean} ± {se} ({estimates:?}, se {errors:?})"
    );
    assert!(
        out.mean_acceptance > 0.3,
        "acceptance {}",
        out.mean_acceptance
    );
    // With too few steps the weights of the bimodal target are far more dispersed: the
    // estimate must actually depend on the annealing.
    let short = AnnealingSchedule::Linear.betas(2).unwrap();
    let poor = anneal(
        &path,
        &start,
        &short,
        &HmcConfig::default(),
        StepSizePlan::Online,
        &mut noise,
    )
    .unwrap();
    let (_, poor_errors) = log_mean_weights(&poor.log_weights).unwrap();
    let spread = |e: &[f64]| e.iter().sum::<f64>() / e.len() as f64;
    assert!(
        spread(&poor_errors) > 3.0 * spread(&errors),
        "chain standard errors: 2 steps {poor_errors:?}, 300 steps {errors:?}"
    );
}
