//! Extreme parameters, in f32 (the training dtype) and f64: logits ±50, scale 1e-6 and 1e6,
//! concentration 0 and 1e4, temperature 0.05. For each, samples (with `rsample` where the
//! family has it) give finite log-densities, and the gradients of
//! `sum(log_prob(rsample)) + sum(rsample)` with respect to every parameter are finite.
#![allow(clippy::unwrap_used)]

use candle::{DType, Device, Result, Tensor, Var};
use vaekit_core::SeededNoise;
use vaekit_distributions::*;

fn var(v: &[f64], dtype: DType) -> Var {
    Var::from_tensor(
        &Tensor::new(v, &Device::Cpu)
            .unwrap()
            .to_dtype(dtype)
            .unwrap(),
    )
    .unwrap()
}

fn all_finite(t: &Tensor) -> bool {
    t.to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
        .iter()
        .all(|v| v.is_finite())
}

/// Builds a distribution from parameter tensors, draws (r)samples, and checks values and
/// gradients.
fn check(name: &str, params: &[Var], build: impl Fn(&[Tensor]) -> Result<Box<dyn Distribution>>) {
    let tensors: Vec<Tensor> = params.iter().map(|v| v.as_tensor().clone()).collect();
    let d = build(&tensors).unwrap();
    let x = match d.as_reparameterize() {
        Some(r) => r.rsample(&[16], &mut SeededNoise::new(0)).unwrap(),
        None => d.sample(&[16], &mut SeededNoise::new(0)).unwrap(),
    };
    let lp = d.log_prob(&x).unwrap();
    assert!(all_finite(&lp), "{name}: non-finite log_prob {lp}");
    let mut loss = lp.sum_all().unwrap();
    if x.dtype().is_float() {
        loss = (loss + x.sum_all().unwrap()).unwrap();
    }
    let grads = loss.backward().unwrap();
    for (i, p) in params.iter().enumerate() {
        if let Some(g) = grads.get(p.as_tensor()) {
            assert!(
                all_finite(g),
                "{name}: non-finite gradient for parameter {i}: {g}"
            );
        }
    }
}

#[test]
fn extremes_are_finite() {
    for dtype in [DType::F32, DType::F64] {
        let logits = var(&[-50.0, 50.0, 0.0], dtype);
        check("Bernoulli", std::slice::from_ref(&logits), |p| {
            Ok(Box::new(Bernoulli::new(p[0].clone())?))
        });
        check("Categorical", std::slice::from_ref(&logits), |p| {
            Ok(Box::new(Categorical::new(p[0].clone())?))
        });
        for tau in [0.05, 1.0] {
            check("RelaxedBernoulli", std::slice::from_ref(&logits), |p| {
                Ok(Box::new(RelaxedBernoulli::new(tau, p[0].clone())?))
            });
            check(
                "RelaxedOneHotCategorical",
                std::slice::from_ref(&logits),
                |p| Ok(Box::new(RelaxedOneHotCategorical::new(tau, p[0].clone())?)),
            );
        }
        let loc = var(&[1.0, -3.0], dtype);
        for s in [1e-6, 1e6] {
            let scale = var(&[s, s], dtype);
            check("Normal", &[loc.clone(), scale.clone()], |p| {
                Ok(Box::new(Normal::new(p[0].clone(), p[1].clone())?))
            });
            check("Normal(log)", &[loc.clone(), scale.clone()], |p| {
                Ok(Box::new(Normal::from_log_scale(p[0].clone(), p[1].log()?)?))
            });
            check("Logistic", &[loc.clone(), scale.clone()], |p| {
                Ok(Box::new(Logistic::new(p[0].clone(), p[1].clone())?))
            });
            check("DiscretizedLogistic", &[loc.clone(), scale.clone()], |p| {
                Ok(Box::new(DiscretizedLogistic::new(
                    p[0].affine(0.1, 0.5)?,
                    p[1].clone(),
                    256,
                )?))
            });
            let mix_loc = var(&[0.0, 1.0, -1.0, 2.0], dtype);
            let mix_scale = var(&[s, s, s, s], dtype);
            check(
                "MixtureSameFamily",
                &[var(&[50.0, -50.0], dtype), mix_loc, mix_scale],
                |p| {
                    Ok(Box::new(MixtureSameFamily::new(
                        p[0].clone(),
                        p[1].reshape((2, 2))?,
                        p[2].reshape((2, 2))?,
                    )?))
                },
            );
        }
        let mu = var(&[0.0, 0.6, 0.8], dtype);
        for kappa in [0.0, 1e-3, 1e4] {
            check("VonMisesFisher", &[mu.clone(), var(&[kappa], dtype)], |p| {
                Ok(Box::new(VonMisesFisher::new(
                    p[0].unsqueeze(0)?,
                    p[1].clone(),
                )?))
            });
        }
    }
}

#[test]
fn low_temperature_samples_are_nearly_discrete() {
    // y_max < 0.99 needs the two largest (logit + Gumbel) within τ ln 99 of each other: about
    // 12% of draws at τ = 0.05 for these logits, and most draws at τ = 1.
    let near_vertex = |tau: f64| {
        let d = RelaxedOneHotCategorical::new(
            tau,
            Tensor::new(&[1.0f32, 0.0, -1.0], &Device::Cpu).unwrap(),
        )
        .unwrap();
        let y = d.sample(&[2000], &mut SeededNoise::new(1)).unwrap();
        y.max(1)
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
            .iter()
            .filter(|&&m| m > 0.99)
            .count()
    };
    let (cold, warm) = (near_vertex(0.05), near_vertex(1.0));
    assert!(
        cold > 1600 && warm < 200,
        "within 0.01 of a vertex: {cold}/2000 at τ 0.05, {warm}/2000 at τ 1"
    );
}

/// Regression: loc = e1 makes the reflection vector 0; the gradient must stay finite.
#[test]
fn von_mises_fisher_at_e1_has_finite_loc_gradients() {
    for dtype in [DType::F32, DType::F64] {
        let mu = var(&[1.0, 0.0, 0.0], dtype);
        let d = VonMisesFisher::new(
            mu.as_tensor().unsqueeze(0).unwrap(),
            Tensor::new(&[5.0], &Device::Cpu)
                .unwrap()
                .to_dtype(dtype)
                .unwrap(),
        )
        .unwrap();
        let x = d.rsample(&[4], &mut SeededNoise::new(2)).unwrap();
        let grads = x
            .sqr()
            .unwrap()
            .sum(2)
            .unwrap()
            .affine(0.0, 0.0)
            .unwrap()
            .add(&x.narrow(2, 0, 1).unwrap().squeeze(2).unwrap())
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g = grads.get(mu.as_tensor()).unwrap();
        assert!(all_finite(g), "{g}");
    }
}

/// Large concentrations in f32: `1 − μᵀx` is about `(m − 1) / 2κ`, below f32's resolution
/// near 1 at κ = 1e7. Wood's `w` is computed in f64, so the samples keep their spread: the
/// mean of `w` recovered from the tangential part (`sqrt(1 − |x⊥|²)`, in f64 from the f32
/// samples) matches the mean resultant length `A_3(κ) = coth κ − 1/κ` (relative error of
/// `1 − A` within 5 %, about 7 standard errors), and `E|x⊥|² = (m − 1) A_m(κ) / κ`.
#[test]
fn von_mises_fisher_keeps_its_spread_at_large_concentration_in_f32() {
    let m = 3;
    let mu64 = [0.6f64, 0.0, 0.8];
    let n = 20000;
    for kappa in [1e5f64, 1e7] {
        let d = VonMisesFisher::new(
            Tensor::new(&[mu64.map(|v| v as f32)], &Device::Cpu).unwrap(),
            Tensor::new(&[kappa as f32], &Device::Cpu).unwrap(),
        )
        .unwrap();
        // A_3(κ) = coth κ − 1/κ, in f64 (f32 rounds 1 − A at κ = 1e7).
        let a = 1.0 / kappa.tanh() - 1.0 / kappa;
        let x = d
            .rsample(&[n], &mut SeededNoise::new(11))
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .reshape((n, m))
            .unwrap()
            .to_vec2::<f64>()
            .unwrap();
        let (mut perp2, mut one_minus_w) = (0.0, 0.0);
        for row in &x {
            let dot: f64 = row.iter().zip(&mu64).map(|(a, b)| a * b).sum();
            let r2: f64 = row
                .iter()
                .zip(&mu64)
                .map(|(a, b)| (a - dot * b).powi(2))
                .sum();
            perp2 += r2;
            one_minus_w += r2 / (1.0 + (1.0 - r2).sqrt());
        }
        let (perp2, one_minus_w) = (perp2 / n as f64, one_minus_w / n as f64);
        let expected_perp2 = (m - 1) as f64 * a / kappa;
        assert!(
            ((one_minus_w - (1.0 - a)) / (1.0 - a)).abs() < 0.05,
            "κ {kappa}: 1 − E[w] = {one_minus_w:e}, 1 − A = {:e}",
            1.0 - a
        );
        assert!(
            ((perp2 - expected_perp2) / expected_perp2).abs() < 0.05,
            "κ {kappa}: E|x⊥|² = {perp2:e}, expected {expected_perp2:e}"
        );
        // The score term is finite too.
        let (_, score) = d
            .rsample_with_score(&[8], &mut SeededNoise::new(12))
            .unwrap();
        assert!(all_finite(&score), "{score}");
    }
}
