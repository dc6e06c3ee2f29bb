//! Learned priors against independent references: the mixture prior's density against the
//! mixture formula evaluated by hand in f64, its normalisation and first moment by Monte
//! Carlo; the VampPrior's density against the mean of the encoder's Gaussians at the
//! pseudo-inputs, and its pseudo-input gradient against finite differences; and on a
//! linear-Gaussian model with a mixture prior, whose `log p(x)` is a closed-form mixture of
//! Gaussians, the bound ordering and importance sampling converging to `log p(x)`.
#![allow(clippy::unwrap_used)]

mod common;

use candle::{D, DType, Device, Shape, Tensor};
use vaekit_core::{NoiseSource, SeededNoise};
use vaekit_distributions::Distribution;
use vaekit_flows::FlowChain;
use vaekit_nets::{ParamStore, Pass};
use vaekit_objectives::*;

use common::LN_2PI;

fn randn(seed: u64, shape: &[usize], scale: f64) -> Tensor {
    SeededNoise::new(seed)
        .standard_normal(&Shape::from(shape), DType::F64, &Device::Cpu)
        .unwrap()
        .affine(scale, 0.0)
        .unwrap()
}

fn rows(t: &Tensor) -> Vec<Vec<f64>> {
    t.to_vec2::<f64>().unwrap()
}

/// `log Σ_k w_k Π_d N(z_d; μ_kd, exp(s_kd))`, by hand.
fn mixture_log_density(z: &[f64], logits: &[f64], loc: &[Vec<f64>], log_scale: &[Vec<f64>]) -> f64 {
    let log_norm = common::log_sum_exp(logits);
    let terms: Vec<f64> = (0..logits.len())
        .map(|k| {
            logits[k] - log_norm
                + (0..z.len())
                    .map(|d| {
                        let s = log_scale[k][d];
                        let u = (z[d] - loc[k][d]) / s.exp();
                        -0.5 * u * u - s - 0.5 * LN_2PI
                    })
                    .sum::<f64>()
        })
        .collect();
    common::log_sum_exp(&terms)
}

/// A mixture prior of 3 components on 2 dimensions with distinct weights and scales.
fn mixture_prior(store: &ParamStore) -> MixturePrior {
    let prior = MixturePrior::new(3, 2, store.var_builder(DType::F64, &Device::Cpu)).unwrap();
    store
        .set(
            "logits",
            &Tensor::new(&[0.5f64, -1.0, 0.2], &Device::Cpu).unwrap(),
        )
        .unwrap();
    store.set("log_scale", &randn(5, &[3, 2], 0.4)).unwrap();
    store.set("loc", &randn(6, &[3, 2], 2.0)).unwrap();
    prior
}

fn var(store: &ParamStore, name: &str) -> Tensor {
    store
        .sorted_vars()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap()
        .1
        .as_tensor()
        .clone()
}

#[test]
fn mixture_prior_density_is_the_mixture_formula() {
    let store = ParamStore::new(1);
    let prior = mixture_prior(&store);
    assert_eq!((prior.components(), prior.latent_dim()), (3, 2));
    let p = prior.distribution(Pass::Train).unwrap();
    let z = randn(7, &[4, 5, 2], 2.5); // [B, S, D]
    let lp = p.log_prob(&z).unwrap();
    assert_eq!(lp.dims(), [4, 5]);
    let logits = var(&store, "logits").to_vec1::<f64>().unwrap();
    let (loc, log_scale) = (rows(&var(&store, "loc")), rows(&var(&store, "log_scale")));
    let zs = z.reshape((20, 2)).unwrap();
    for (i, (zi, got)) in rows(&zs)
        .iter()
        .zip(lp.flatten_all().unwrap().to_vec1::<f64>().unwrap())
        .enumerate()
    {
        let want = mixture_log_density(zi, &logits, &loc, &log_scale);
        assert!((got - want).abs() < 1e-10, "row {i}: {got} vs {want}");
    }
    // The parameters are live: a new value shows in the next distribution.
    store.set("loc", &randn(8, &[3, 2], 2.0)).unwrap();
    let moved = prior
        .distribution(Pass::Train)
        .unwrap()
        .log_prob(&z)
        .unwrap();
    let change = (moved - lp).unwrap().abs().unwrap().max_all().unwrap();
    assert!(change.to_scalar::<f64>().unwrap() > 1e-3);
}

#[test]
fn mixture_prior_integrates_to_one_and_samples_have_its_mean() {
    let store = ParamStore::new(2);
    let prior = mixture_prior(&store);
    let p = prior.distribution(Pass::Eval).unwrap();
    // ∫ p = E_r[p / r] with r = N(0, 4² I): 200 000 draws.
    let n = 200_000;
    let scale = 4.0;
    let z = randn(11, &[n, 2], scale);
    let log_r = ((z.sqr().unwrap().sum(D::Minus1).unwrap() * (-0.5 / (scale * scale))).unwrap()
        - (2.0 * scale.ln() + LN_2PI))
        .unwrap();
    let ratio = (p.log_prob(&z).unwrap() - log_r).unwrap().exp().unwrap();
    let mean = ratio.mean_all().unwrap().to_scalar::<f64>().unwrap();
    let spread = ratio
        .sqr()
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
        - mean * mean;
    let se = (spread / n as f64).sqrt();
    assert!((mean - 1.0).abs() < 4.0 * se + 1e-3, "∫p ≈ {mean} ± {se}");
    // Draws have the mixture's mean Σ_k w_k μ_k.
    let draws = p.sample(&[n], &mut SeededNoise::new(12)).unwrap();
    assert_eq!(draws.dims(), [n, 2]);
    let logits = var(&store, "logits").to_vec1::<f64>().unwrap();
    let total: f64 = logits.iter().map(|a| a.exp()).sum();
    let loc = rows(&var(&store, "loc"));
    let log_scale = rows(&var(&store, "log_scale"));
    let got = rows(&draws.mean(0).unwrap().unsqueeze(0).unwrap())[0].clone();
    for d in 0..2 {
        let w = |k: usize| logits[k].exp() / total;
        let want: f64 = (0..3).map(|k| w(k) * loc[k][d]).sum();
        let second: f64 = (0..3)
            .map(|k| w(k) * (loc[k][d].powi(2) + (2.0 * log_scale[k][d]).exp()))
            .sum();
        let se = ((second - want * want) / n as f64).sqrt();
        assert!(
            (got[d] - want).abs() < 4.0 * se,
            "dim {d}: mean {} vs {want} ± {se}",
            got[d]
        );
    }
}

/// A linear encoder `q(z|x) = N(A x + c, diag(exp(2 s)))` with `P = 3`, `D = 2`.
fn linear_encoder(seed: u64) -> LinearEncoder {
    LinearEncoder {
        a: randn(seed, &[2, 3], 1.0),
        c: randn(seed + 1, &[2], 0.5),
        log_scale: randn(seed + 2, &[2], 0.3),
    }
}

#[test]
fn vamp_prior_is_the_mean_of_the_posteriors_at_its_pseudo_inputs() {
    let store = ParamStore::new(3);
    let enc = linear_encoder(20);
    let prior = VampPrior::new(
        enc.clone(),
        4,
        3,
        store.var_builder(DType::F64, &Device::Cpu),
    )
    .unwrap();
    assert_eq!((prior.components(), prior.latent_dim()), (4, 2));
    // Pseudo-inputs spread over [0, 1] (one below 0, clamped).
    let w = Tensor::new(
        &[
            [0.1f64, 0.9, 0.4],
            [0.7, 0.2, 0.55],
            [-0.3, 0.5, 1.0],
            [0.33, 0.66, 0.05],
        ],
        &Device::Cpu,
    )
    .unwrap();
    store.set("pseudo_inputs", &w).unwrap();
    let u = prior.pseudo_inputs().unwrap();
    assert_eq!(rows(&u)[2][0], 0.0);
    let z = randn(21, &[6, 2], 1.5);
    let lp = prior
        .distribution(Pass::Train)
        .unwrap()
        .log_prob(&z)
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let (a, c, s) = (
        rows(&enc.a),
        enc.c.to_vec1::<f64>().unwrap(),
        enc.log_scale.to_vec1::<f64>().unwrap(),
    );
    let u = rows(&u);
    let loc: Vec<Vec<f64>> = u
        .iter()
        .map(|uk| {
            (0..2)
                .map(|d| c[d] + (0..3).map(|j| a[d][j] * uk[j]).sum::<f64>())
                .collect()
        })
        .collect();
    let log_scale = vec![s.clone(); 4];
    for (zi, got) in rows(&z).iter().zip(&lp) {
        let want = mixture_log_density(zi, &[0.0; 4], &loc, &log_scale);
        assert!((got - want).abs() < 1e-10, "{got} vs {want}");
    }
    // The gradient reaches the pseudo-inputs: d/dw_kj Σ log p(z) against central
    // differences (w away from the clamp's corners).
    let pseudo = store
        .trainable()
        .into_iter()
        .find(|(n, _)| n == "pseudo_inputs")
        .unwrap()
        .1;
    let total = |p: &VampPrior<LinearEncoder>| -> Tensor {
        p.distribution(Pass::Train)
            .unwrap()
            .log_prob(&z)
            .unwrap()
            .sum_all()
            .unwrap()
    };
    let grads = total(&prior).backward().unwrap();
    let g = rows(&grads.get(pseudo.as_tensor()).unwrap().clone());
    let h = 1e-6;
    for (k, j) in [(0, 0), (1, 2), (3, 1)] {
        let mut plus = rows(&w);
        plus[k][j] += h;
        let mut minus = rows(&w);
        minus[k][j] -= h;
        let at = |m: &Vec<Vec<f64>>| {
            store
                .set(
                    "pseudo_inputs",
                    &Tensor::new(m.clone(), &Device::Cpu).unwrap(),
                )
                .unwrap();
            total(&prior).to_scalar::<f64>().unwrap()
        };
        let fd = (at(&plus) - at(&minus)) / (2.0 * h);
        assert!(
            (fd - g[k][j]).abs() < 1e-6 * (1.0 + fd.abs()),
            "({k},{j}): {} vs {fd}",
            g[k][j]
        );
    }
}

/// A linear-Gaussian model `x = W z + b + σ ε` with a learned-mixture prior.
struct MixtureLinear {
    likelihood: LinearGaussian,
    prior: MixturePrior,
}

impl GenerativeModel for MixtureLinear {
    fn forward(&self, z: &Tensor, pass: Pass) -> candle::Result<Box<dyn Distribution>> {
        self.likelihood.forward(z, pass)
    }
    fn prior(&self, pass: Pass) -> candle::Result<PriorRef<'_>> {
        self.prior.distribution(pass)
    }
}

/// `log p(x) = log Σ_k w_k N(x; W μ_k + b, W diag(σ_k²) Wᵀ + s² I)` for one `x`.
fn exact_log_marginal(x: &[f64], w: &[Vec<f64>], b: &[f64], s: f64, prior: &ParamStore) -> f64 {
    let logits = var(prior, "logits").to_vec1::<f64>().unwrap();
    let (loc, log_scale) = (rows(&var(prior, "loc")), rows(&var(prior, "log_scale")));
    let (p, d) = (x.len(), w[0].len());
    let log_norm = common::log_sum_exp(&logits);
    let terms: Vec<f64> = (0..logits.len())
        .map(|k| {
            let mean: Vec<f64> = (0..p)
                .map(|i| b[i] + (0..d).map(|j| w[i][j] * loc[k][j]).sum::<f64>())
                .collect();
            let cov: Vec<Vec<f64>> = (0..p)
                .map(|i| {
                    (0..p)
                        .map(|l| {
                            (0..d)
                                .map(|j| w[i][j] * w[l][j] * (2.0 * log_scale[k][j]).exp())
                                .sum::<f64>()
                                + if i == l { s * s } else { 0.0 }
                        })
                        .collect()
                })
                .collect();
            logits[k] - log_norm + common::gaussian_log_density(x, &mean, &cov)
        })
        .collect();
    common::log_sum_exp(&terms)
}

#[test]
fn a_mixture_prior_model_has_ordered_bounds_and_is_converges_to_its_exact_log_p() {
    let store = ParamStore::new(4);
    let prior = mixture_prior(&store);
    let w = Tensor::new(&[[1.0f64, 0.3], [0.5, -0.4], [-0.2, 1.5]], &Device::Cpu).unwrap();
    let b = Tensor::new(&[0.1f64, -0.2, 0.3], &Device::Cpu).unwrap();
    let s = 0.6;
    let model = MixtureLinear {
        likelihood: LinearGaussian::new(w.clone(), b.clone(), s).unwrap(),
        prior,
    };
    let n = 12;
    let (x, _) = model
        .sample(n, &mut SeededNoise::new(30), Pass::Eval)
        .unwrap();
    let (wv, bv) = (rows(&w), b.to_vec1::<f64>().unwrap());
    let log_p: f64 = rows(&x)
        .iter()
        .map(|xi| exact_log_marginal(xi, &wv, &bv, s, &store))
        .sum::<f64>()
        / n as f64;
    // A broad Gaussian proposal: the likelihood's own posterior under N(0, I), widened.
    let exact_sn = LinearGaussian::new(w, b, s)
        .unwrap()
        .posterior_encoder()
        .unwrap();
    let enc = LinearEncoder {
        log_scale: (exact_sn.log_scale.clone() + 0.7).unwrap(),
        ..exact_sn
    };
    let q = EncoderFlow::new(enc, FlowChain::default());
    let samples = 20_000;
    let lw = evaluate(
        &ObjectiveConfig {
            objective: Objective::Elbo {
                num_samples: samples,
                analytic_kl: true,
            },
            warmup: None,
            free_bits: None,
        },
        EvalContext::new(&q, &model, &x, &mut SeededNoise::new(31)),
    )
    .and_then(Evaluation::checked)
    .unwrap()
    .log_weights;
    let bound = |k: usize| common::iwae_bound(&lw, k);
    let (elbo, i10, i100, is) = (bound(1), bound(10), bound(100), bound(samples));
    assert!(
        elbo < i10 && i10 < i100 && i100 <= is + 1e-9 && is < log_p + 0.02,
        "ELBO {elbo}, IWAE-10 {i10}, IWAE-100 {i100}, IS {is}, exact {log_p}"
    );
    assert!(
        (is - log_p).abs() < 0.02,
        "IS-{samples} {is} vs exact {log_p}"
    );
}
