//! `rsample` pathwise gradients against finite differences for every reparameterizable
//! family: the noise is held fixed by reusing the seed, so `rsample` is a deterministic,
//! differentiable function of the parameters. The mixture's implicit gradient is checked by
//! re-solving its distributional transform at perturbed parameters; the von Mises–Fisher
//! estimator, with its score term, against the closed-form derivative of `E[μᵀx]`.
#![allow(clippy::unwrap_used)]

use candle::{D, DType, Device, Result, Tensor, Var};
use vaekit_core::SeededNoise;
use vaekit_core::testing::{assert_all_close, autograd_gradient, finite_difference_gradient};
use vaekit_distributions::*;

fn t(v: &[f64]) -> Tensor {
    Tensor::new(v, &Device::Cpu).unwrap()
}

/// A smooth, non-linear read-out of a sample, so every coordinate matters differently.
fn readout(z: &Tensor) -> Result<Tensor> {
    let w = Tensor::arange(1.0f64, (z.elem_count() + 1) as f64, z.device())?.reshape(z.shape())?;
    (z.sin()? * w)?.sum_all()
}

fn check<F: Fn(&Tensor) -> Result<Tensor>>(f: F, x: &Tensor, eps: f64, rtol: f64) {
    let auto = autograd_gradient(&f, x).unwrap();
    let fd = finite_difference_gradient(&f, x, eps).unwrap();
    assert_all_close(&auto, &fd, rtol, 1e-7).unwrap();
}

#[test]
fn normal_and_logistic() {
    let loc = t(&[0.3, -1.0, 2.0]);
    let log_scale = t(&[-0.5, 0.1, 0.7]);
    check(
        |l| {
            readout(
                &Normal::from_log_scale(l.clone(), log_scale.clone())?
                    .rsample(&[4], &mut SeededNoise::new(1))?,
            )
        },
        &loc,
        1e-6,
        1e-6,
    );
    check(
        |s| {
            readout(
                &Normal::from_log_scale(loc.clone(), s.clone())?
                    .rsample(&[4], &mut SeededNoise::new(1))?,
            )
        },
        &log_scale,
        1e-6,
        1e-6,
    );
    check(
        |s| readout(&Normal::new(loc.clone(), s.exp()?)?.rsample(&[4], &mut SeededNoise::new(1))?),
        &log_scale,
        1e-6,
        1e-6,
    );
    check(
        |l| {
            readout(
                &Logistic::new(l.clone(), log_scale.exp()?)?
                    .rsample(&[4], &mut SeededNoise::new(2))?,
            )
        },
        &loc,
        1e-6,
        1e-6,
    );
    check(
        |s| {
            readout(&Logistic::new(loc.clone(), s.exp()?)?.rsample(&[4], &mut SeededNoise::new(2))?)
        },
        &log_scale,
        1e-6,
        1e-6,
    );
    // Through Independent.
    check(
        |l| {
            readout(
                &Independent::new(Normal::from_log_scale(l.clone(), log_scale.clone())?, 1)?
                    .rsample(&[2], &mut SeededNoise::new(3))?,
            )
        },
        &loc,
        1e-6,
        1e-6,
    );
}

#[test]
fn relaxed_families() {
    let logits = t(&[-1.0, 0.5, 2.0]);
    for tau in [0.3, 1.0] {
        check(
            |l| {
                readout(
                    &RelaxedBernoulli::new(tau, l.clone())?
                        .rsample(&[5], &mut SeededNoise::new(4))?,
                )
            },
            &logits,
            1e-6,
            1e-5,
        );
        check(
            |l| {
                readout(
                    &RelaxedOneHotCategorical::new(tau, l.clone())?
                        .rsample(&[5], &mut SeededNoise::new(5))?,
                )
            },
            &logits,
            1e-6,
            1e-5,
        );
    }
    // Straight-through: the value is hard, the gradient is the relaxed sample's.
    let d = RelaxedOneHotCategorical::new(0.5, logits.clone()).unwrap();
    let hard = d
        .rsample_straight_through(&[3], &mut SeededNoise::new(6))
        .unwrap();
    let soft = d.rsample(&[3], &mut SeededNoise::new(6)).unwrap();
    let rows = hard.to_vec2::<f64>().unwrap();
    assert!(rows.iter().all(
        |r| r.iter().filter(|&&v| (v - 1.0).abs() < 1e-12).count() == 1
            && r.iter().sum::<f64>() - 1.0 < 1e-12
    ));
    // With a linear read-out the straight-through gradient equals the relaxed one (with a
    // non-linear one the outer derivative is taken at the hard value instead).
    let linear = |z: Tensor| -> Result<Tensor> {
        let w =
            Tensor::arange(1.0f64, (z.elem_count() + 1) as f64, z.device())?.reshape(z.shape())?;
        (z * w)?.sum_all()
    };
    let st = |l: &Tensor| {
        linear(
            RelaxedOneHotCategorical::new(0.5, l.clone())?
                .rsample_straight_through(&[3], &mut SeededNoise::new(6))?,
        )
    };
    let relaxed = |l: &Tensor| {
        linear(
            RelaxedOneHotCategorical::new(0.5, l.clone())?
                .rsample(&[3], &mut SeededNoise::new(6))?,
        )
    };
    assert_all_close(
        &autograd_gradient(st, &logits).unwrap(),
        &autograd_gradient(relaxed, &logits).unwrap(),
        1e-12,
        0.0,
    )
    .unwrap();
    assert_eq!(
        soft.argmax(D::Minus1).unwrap().to_vec1::<u32>().unwrap(),
        hard.argmax(D::Minus1).unwrap().to_vec1::<u32>().unwrap()
    );
    let b = RelaxedBernoulli::new(0.5, logits.clone())
        .unwrap()
        .rsample_straight_through(&[2], &mut SeededNoise::new(7))
        .unwrap();
    assert!(
        b.flatten_all()
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()
            .iter()
            .all(|&v| v == 0.0 || v == 1.0)
    );
}

/// Mixture parameters packed in one vector: 3 logits, 3x2 locations, 3x2 log-scales.
fn mixture(theta: &Tensor) -> Result<MixtureSameFamily> {
    let logits = theta.narrow(0, 0, 3)?;
    let loc = theta.narrow(0, 3, 6)?.reshape((3, 2))?;
    let log_scale = theta.narrow(0, 9, 6)?.reshape((3, 2))?;
    MixtureSameFamily::from_log_scale(logits, loc, log_scale)
}

/// `z(θ)` with `F(z; θ) = u`, solved dimension by dimension with Newton steps from `z0`.
fn solve(theta: &Tensor, u: &[f64], z0: &[f64]) -> Vec<f64> {
    let d = mixture(theta).unwrap();
    let mut z = z0.to_vec();
    for dim in 0..z.len() {
        for _ in 0..60 {
            let (cdf, pdf) = d.distributional_transform(&t(&z)).unwrap();
            let (cdf, pdf) = (cdf.to_vec1::<f64>().unwrap(), pdf.to_vec1::<f64>().unwrap());
            z[dim] -= (cdf[dim] - u[dim]) / pdf[dim];
        }
    }
    z
}

#[test]
fn mixture_implicit_gradient_matches_the_perturbed_inverse() {
    let theta = t(&[
        0.2, -0.5, 0.4, 0.0, 1.0, -1.5, 0.3, 1.2, -0.8, -0.3, 0.1, 0.4, -0.6, 0.0, 0.2,
    ]);
    for seed in 0..4 {
        let z = mixture(&theta)
            .unwrap()
            .rsample(&[], &mut SeededNoise::new(seed))
            .unwrap();
        let z0 = z.to_vec1::<f64>().unwrap();
        let (u, _) = mixture(&theta)
            .unwrap()
            .distributional_transform(&z)
            .unwrap();
        let u = u.to_vec1::<f64>().unwrap();
        // Autograd: d(c·z)/dθ with c = (1, -2).
        let var = Var::from_tensor(&theta).unwrap();
        let zs = mixture(var.as_tensor())
            .unwrap()
            .rsample(&[], &mut SeededNoise::new(seed))
            .unwrap();
        assert_eq!(zs.to_vec1::<f64>().unwrap(), z0);
        let loss = (zs.narrow(0, 0, 1).unwrap() - (zs.narrow(0, 1, 1).unwrap() * 2.0).unwrap())
            .unwrap()
            .sum_all()
            .unwrap();
        let auto = loss
            .backward()
            .unwrap()
            .get(var.as_tensor())
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        // Finite differences of the implicit function.
        let base = theta.to_vec1::<f64>().unwrap();
        let h = 1e-6;
        for i in 0..base.len() {
            let mut plus = base.clone();
            plus[i] += h;
            let mut minus = base.clone();
            minus[i] -= h;
            let zp = solve(&t(&plus), &u, &z0);
            let zm = solve(&t(&minus), &u, &z0);
            let fd = ((zp[0] - zm[0]) - 2.0 * (zp[1] - zm[1])) / (2.0 * h);
            assert!(
                (auto[i] - fd).abs() < 1e-5 * fd.abs().max(1.0),
                "seed {seed}, θ[{i}]: autograd {}, finite differences {fd}",
                auto[i]
            );
        }
    }
}

#[test]
fn von_mises_fisher_pathwise() {
    // Concentration: w(ε, κ) with the accepted ε fixed (a perturbation of 1e-6 does not flip
    // any accept/reject decision for these seeds).
    let mu = t(&[0.0, 0.6, 0.8])
        .unsqueeze(0)
        .unwrap()
        .repeat((2, 1))
        .unwrap();
    let kappa = t(&[2.0, 40.0]);
    check(
        |k| {
            readout(
                &VonMisesFisher::new(mu.clone(), k.clone())?
                    .rsample(&[3], &mut SeededNoise::new(9))?,
            )
        },
        &kappa,
        1e-6,
        1e-5,
    );
    // Direction: loc = θ / |θ| keeps it on the sphere.
    let theta = t(&[0.3, -0.4, 1.1, 0.9, 0.2, -0.5])
        .reshape((2, 3))
        .unwrap();
    let f = |th: &Tensor| {
        let loc = th.broadcast_div(&th.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?)?;
        readout(&VonMisesFisher::new(loc, kappa.clone())?.rsample(&[3], &mut SeededNoise::new(10))?)
    };
    check(f, &theta, 1e-6, 1e-5);
}

/// `d/dκ E[μᵀx] = A'(κ) = 1 - A² - (m-1) A / κ`: the pathwise term alone is biased; with the
/// score term of `rsample_with_score` the estimate matches within 5 standard errors.
#[test]
fn von_mises_fisher_score_term_makes_the_gradient_unbiased() {
    let n = 100_000;
    for (m, kappa) in [(3usize, 1.5f64), (5, 8.0)] {
        let mut mu = vec![0.0; m];
        mu[0] = 1.0;
        let k = Var::new(&[kappa], &Device::Cpu).unwrap();
        let d = VonMisesFisher::new(t(&mu).unsqueeze(0).unwrap(), k.as_tensor().clone()).unwrap();
        let (x, score) = d
            .rsample_with_score(&[n], &mut SeededNoise::new(11))
            .unwrap();
        let f = x
            .narrow(D::Minus1, 0, 1)
            .unwrap()
            .squeeze(D::Minus1)
            .unwrap()
            .squeeze(D::Minus1)
            .unwrap(); // μᵀx, [n]
        let fbar = f.mean_all().unwrap().to_scalar::<f64>().unwrap();
        let centred = (f.detach() - fbar).unwrap();
        let score = score.squeeze(D::Minus1).unwrap();
        let surrogate = ((&f + centred.mul(&score).unwrap())
            .unwrap()
            .sum_all()
            .unwrap()
            / n as f64)
            .unwrap();
        let g_total = surrogate
            .backward()
            .unwrap()
            .get(k.as_tensor())
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()[0];
        // Per-sample gradients for the standard error: pathwise part by the chain rule is
        // not separable here, so bound it with the per-sample spread of the score part.
        let per_sample = centred
            .mul(&score.detach())
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        let mean = per_sample.iter().sum::<f64>() / n as f64;
        let sd = (per_sample.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        let a = vmf_a(m, kappa);
        let exact = 1.0 - a * a - (m as f64 - 1.0) * a / kappa;
        let se = sd.max(0.05) / (n as f64).sqrt();
        assert!(
            (g_total - exact).abs() < 6.0 * se,
            "m {m}, κ {kappa}: estimate {g_total}, exact {exact}, se {se}"
        );
        // And E[μᵀx] itself matches A_m(κ).
        assert!(
            (fbar - a).abs() < 6.0 / (n as f64).sqrt(),
            "m {m}: mean {fbar} vs A {a}"
        );
    }
}

fn vmf_a(m: usize, kappa: f64) -> f64 {
    vaekit_distributions::special::bessel_iv_ratio(m as f64 / 2.0 - 1.0, kappa)
}

#[test]
fn f32_parameters_work_too() {
    let loc = Var::new(&[0.1f32, -0.3], &Device::Cpu).unwrap();
    let d = Normal::from_log_scale(
        loc.as_tensor().clone(),
        Tensor::zeros(2, DType::F32, &Device::Cpu).unwrap(),
    )
    .unwrap();
    let z = d.rsample(&[8], &mut SeededNoise::new(0)).unwrap();
    let g = z.sqr().unwrap().sum_all().unwrap().backward().unwrap();
    let g = g.get(loc.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
    let z = z.to_vec2::<f32>().unwrap();
    for j in 0..2 {
        let expected: f32 = z.iter().map(|row| 2.0 * row[j]).sum();
        assert!((g[j] - expected).abs() < 1e-4, "{g:?}");
    }
}
