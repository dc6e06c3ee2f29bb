//! Sampling goodness of fit for every family. Failure budget: each check is at the 1e-6
//! level (KS critical value, chi-square quantile, or 6 standard errors for moments), about
//! 30 checks in all, so a correct sampler fails this file with probability below 1e-4; the
//! seeds are fixed, so a run is deterministic.
#![allow(clippy::unwrap_used)]

use candle::{D, DType, Device, Tensor};
use vaekit_core::SeededNoise;
use vaekit_core::testing::{MomentCheck, assert_chi_square, assert_ks, normal_cdf};
use vaekit_distributions::*;

const N: usize = 50_000;
const ALPHA: f64 = 1e-6;

fn t(v: &[f64]) -> Tensor {
    Tensor::new(v, &Device::Cpu).unwrap()
}

fn values(x: &Tensor) -> Vec<f64> {
    x.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn counts(indices: &[f64], k: usize) -> Vec<usize> {
    let mut c = vec![0; k];
    for &i in indices {
        c[i as usize] += 1;
    }
    c
}

#[test]
fn normal_and_standard_normal() {
    let d = Normal::new(t(&[1.5]), t(&[0.7])).unwrap();
    let x = values(&d.sample(&[N], &mut SeededNoise::new(1)).unwrap());
    MomentCheck::new(&x).assert_moments(1.5, 0.49, 0.0, 0.0, 6.0);
    assert_ks(&x, |v| normal_cdf((v - 1.5) / 0.7), ALPHA);
    let s = StandardNormal::new((), DType::F32, &Device::Cpu).unwrap();
    let x = values(&s.sample(&[N], &mut SeededNoise::new(2)).unwrap());
    assert_ks(&x, normal_cdf, ALPHA);
}

#[test]
fn logistic() {
    let d = Logistic::new(t(&[-0.5]), t(&[2.0])).unwrap();
    let x = values(&d.sample(&[N], &mut SeededNoise::new(3)).unwrap());
    let var = 4.0 * std::f64::consts::PI.powi(2) / 3.0;
    MomentCheck::new(&x).assert_moments(-0.5, var, 0.0, 1.2, 6.0);
    assert_ks(&x, |v| sigmoid((v + 0.5) / 2.0), ALPHA);
}

#[test]
fn bernoulli_and_categorical() {
    let d = Bernoulli::new(t(&[0.7, -2.0])).unwrap();
    let x = d.sample(&[N], &mut SeededNoise::new(4)).unwrap();
    for (j, logit) in [0.7f64, -2.0].iter().enumerate() {
        let col = values(&x.narrow(1, j, 1).unwrap());
        let p = sigmoid(*logit);
        assert_chi_square(&counts(&col, 2), &[1.0 - p, p], ALPHA);
    }
    let logits = [0.5, -1.0, 2.0, 0.0];
    let d = Categorical::new(t(&logits)).unwrap();
    let idx = values(&d.sample(&[N], &mut SeededNoise::new(5)).unwrap());
    let probs: Vec<f64> = values(&d.log_probs().exp().unwrap());
    assert_chi_square(&counts(&idx, 4), &probs, ALPHA);
    let one_hot = d.sample_one_hot(&[10], &mut SeededNoise::new(5)).unwrap();
    assert_eq!(one_hot.dims(), &[10, 4]);
    assert_eq!(values(&one_hot.sum(D::Minus1).unwrap()), vec![1.0; 10]);
}

#[test]
fn relaxed_families() {
    let (tau, l) = (0.6, 0.8);
    let d = RelaxedBernoulli::new(tau, t(&[l])).unwrap();
    let y = values(&d.sample(&[N], &mut SeededNoise::new(6)).unwrap());
    // P(Y <= y) = sigmoid(τ logit(y) - l).
    assert_ks(&y, |v| sigmoid(tau * (v / (1.0 - v)).ln() - l), ALPHA);
    // The argmax of a Concrete sample is Categorical(logits) at every temperature.
    let logits = [0.3, -0.7, 1.1];
    for tau in [0.1, 1.0, 5.0] {
        let d = RelaxedOneHotCategorical::new(tau, t(&logits)).unwrap();
        let y = d.sample(&[N], &mut SeededNoise::new(7)).unwrap();
        assert_eq!(
            values(&y.sum(D::Minus1).unwrap())
                .iter()
                .filter(|s| (*s - 1.0).abs() > 1e-9)
                .count(),
            0
        );
        let idx = values(&y.argmax(D::Minus1).unwrap());
        let probs = values(
            &Categorical::new(t(&logits))
                .unwrap()
                .log_probs()
                .exp()
                .unwrap(),
        );
        assert_chi_square(&counts(&idx, 3), &probs, ALPHA);
    }
}

#[test]
fn discretized_logistic() {
    let d = DiscretizedLogistic::new(t(&[0.3]), t(&[0.1]), 256).unwrap();
    let x = values(&d.sample(&[N], &mut SeededNoise::new(8)).unwrap());
    let bins: Vec<f64> = x.iter().map(|v| (v * 255.0).round()).collect();
    let grid: Vec<f64> = (0..256).map(|k| k as f64 / 255.0).collect();
    let probs = values(
        &d.log_prob(&t(&grid).unsqueeze(1).unwrap())
            .unwrap()
            .exp()
            .unwrap(),
    );
    assert_chi_square(&counts(&bins, 256), &probs, ALPHA);
}

#[test]
fn mixture_marginals() {
    let logits = [0.4, -0.2];
    let loc = [[0.0, 2.0], [-3.0, 0.5]];
    let scale = [[1.0, 0.3], [0.5, 1.5]];
    let d = MixtureSameFamily::new(
        t(&logits),
        Tensor::new(&loc, &Device::Cpu).unwrap(),
        Tensor::new(&scale, &Device::Cpu).unwrap(),
    )
    .unwrap();
    let z = d.sample(&[N], &mut SeededNoise::new(9)).unwrap();
    let w = [sigmoid(0.6), 1.0 - sigmoid(0.6)];
    for dim in 0..2 {
        let col = values(&z.narrow(1, dim, 1).unwrap());
        assert_ks(
            &col,
            |v| {
                (0..2)
                    .map(|k| w[k] * normal_cdf((v - loc[k][dim]) / scale[k][dim]))
                    .sum()
            },
            ALPHA,
        );
    }
    // Moments() agrees with the sample.
    let mean = values(&d.mean().unwrap());
    let var = values(&d.variance().unwrap());
    for dim in 0..2 {
        let col = values(&z.narrow(1, dim, 1).unwrap());
        let m = col.iter().sum::<f64>() / N as f64;
        let v = col.iter().map(|x| (x - m).powi(2)).sum::<f64>() / N as f64;
        assert!(
            (m - mean[dim]).abs() < 6.0 * (var[dim] / N as f64).sqrt(),
            "mean {m} vs {}",
            mean[dim]
        );
        assert!(
            (v - var[dim]).abs() < 0.05 * var[dim],
            "variance {v} vs {}",
            var[dim]
        );
    }
    // rsample draws the same values as sample for the same seed.
    let r = d.rsample(&[5], &mut SeededNoise::new(10)).unwrap();
    let s = d.sample(&[5], &mut SeededNoise::new(10)).unwrap();
    assert_eq!(values(&r), values(&s));
}

#[test]
fn von_mises_fisher_and_uniform_sphere() {
    // m = 3: w = μᵀx has density κ e^{κw} / (2 sinh κ), CDF (e^{κ(w-1)} - e^{-2κ}) / (1 - e^{-2κ}).
    let mu = [0.0, 0.6, 0.8];
    for kappa in [0.5f64, 5.0, 200.0] {
        let d = VonMisesFisher::new(t(&mu), Tensor::new(kappa, &Device::Cpu).unwrap()).unwrap();
        let x = d.sample(&[N], &mut SeededNoise::new(11)).unwrap();
        let norms = values(&x.sqr().unwrap().sum(D::Minus1).unwrap());
        assert!(norms.iter().all(|n| (n - 1.0).abs() < 1e-12));
        let w = values(&x.broadcast_mul(&t(&mu)).unwrap().sum(D::Minus1).unwrap());
        let e = (-2.0 * kappa).exp();
        assert_ks(&w, |v| ((kappa * (v - 1.0)).exp() - e) / (1.0 - e), ALPHA);
        // The mean is A_3(κ) μ: checks the reflection puts the mass around μ.
        let mean = values(&x.mean(0).unwrap());
        let expected = values(&d.mean().unwrap());
        for j in 0..3 {
            assert!(
                (mean[j] - expected[j]).abs() < 6.0 / (N as f64).sqrt(),
                "κ {kappa}: {mean:?} vs {expected:?}"
            );
        }
        let var = values(&d.variance().unwrap());
        for j in 0..3 {
            let col: Vec<f64> = values(&x.narrow(1, j, 1).unwrap());
            let v = col.iter().map(|c| (c - mean[j]).powi(2)).sum::<f64>() / N as f64;
            assert!(
                (v - var[j]).abs() < 0.03 * var[j].max(1e-3) + 1e-4,
                "κ {kappa}, coordinate {j}: variance {v} vs {}",
                var[j]
            );
        }
    }
    // Uniform on S^2: each coordinate is U(-1, 1) (Archimedes).
    let u = SphereUniform::new(3, (), DType::F64, &Device::Cpu).unwrap();
    let x = u.sample(&[N], &mut SeededNoise::new(12)).unwrap();
    assert_ks(
        &values(&x.narrow(1, 2, 1).unwrap()),
        |v| (v + 1.0) / 2.0,
        ALPHA,
    );
}
