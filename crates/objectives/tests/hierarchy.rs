//! Stochastic hierarchies against a two-layer linear-Gaussian model whose `log p(x)` is
//! exact ([`LinearHierarchy`]): `z_2 ~ N(0, I)`, `z_1 | z_2 ~ N(A z_2 + a, diag(σ²))`,
//! `x | z_1 ~ N(W z_1 + b, s² I)` give `x ~ N(W a + b, W (A Aᵀ + diag(σ²)) Wᵀ + s² I)`, which
//! this file evaluates by its own Cholesky factorisation. The hierarchy's prior and bottom-up
//! posterior are the library's ([`HierarchicalDecoder`]'s, [`HierarchicalEncoder`]) with
//! linear layers, and so is the top-down posterior ([`TopDownEncoder`]); in both orders the
//! bounds are ordered, importance sampling converges to the exact value, the posterior's
//! density at its own draws is the density along its sampling path, DReG's stopped density
//! has the same value (and, top-down, detaches the shared decoder conditional), and the
//! layered KL is an unbiased estimate of
//! `log q − log p`; the prior's draws have its moments; and the top-down posterior set to the
//! exact one (a model where it is in the family) gives log-weights equal to `log p(x)`.
#![allow(clippy::unwrap_used)]

mod common;

use candle::{DType, Device, Tensor};
use vaekit_core::{NoiseSource, SeededNoise};
use vaekit_nets::{ParamStore, Pass};
use vaekit_objectives::*;

fn set(store: &ParamStore, name: &str, rows: &[&[f64]]) {
    let t = Tensor::new(
        rows.iter().map(|r| r.to_vec()).collect::<Vec<_>>(),
        &Device::Cpu,
    )
    .unwrap();
    let t = if rows.len() == 1 {
        t.squeeze(0).unwrap()
    } else {
        t
    };
    store.set(name, &t).unwrap();
}

use common::two_layer::{B, P, S, W, model};

fn exact_log_p(x: &[f64]) -> f64 {
    let (a, a0) = (vec![vec![1.2], vec![-0.7]], [0.3, -0.1]);
    let var1 = [(-1.0f64).exp(), 0.4f64.exp()]; // exp(2 log σ)
    let mut cov_z1 = common::matmul(&a, &common::transpose(&a));
    for (i, v) in var1.iter().enumerate() {
        cov_z1[i][i] += v;
    }
    let w: Vec<Vec<f64>> = W.iter().map(|r| r.to_vec()).collect();
    let mut cov = common::matmul(&common::matmul(&w, &cov_z1), &common::transpose(&w));
    for (i, row) in cov.iter_mut().enumerate() {
        row[i] += S * S;
    }
    let mean: Vec<f64> = (0..P)
        .map(|i| B[i] + W[i][0] * a0[0] + W[i][1] * a0[1])
        .collect();
    common::gaussian_log_density(x, &mean, &cov)
}

/// The encoder with moderate, fixed weights: a broad proposal (the default initialisation
/// of these linear layers can give scales of 1e-9, where a density at a point loses digits
/// to cancellation).
fn encoder(store: &ParamStore) -> HierarchicalEncoder {
    let q = HierarchicalEncoder::new(
        &LinearHierarchy::config(P, 2, 1),
        store.var_builder(DType::F64, &Device::Cpu).pp("encoder"),
    )
    .unwrap();
    // q(z_1|x): loc = M x + m, log-scale 0.2; q(z_2|z_1): loc linear, log-scale mildly so.
    let layer0: [&[f64]; 4] = [
        &[0.4, -0.2, 0.3],
        &[0.1, 0.5, -0.3],
        &[0.0, 0.0, 0.0],
        &[0.0, 0.0, 0.0],
    ];
    set(store, "encoder.layer0.fc0.weight", &layer0);
    set(store, "encoder.layer0.fc0.bias", &[&[0.1, -0.1, 0.2, 0.2]]);
    set(
        store,
        "encoder.layer1.fc0.weight",
        &[&[0.6, -0.4], &[0.05, 0.05]],
    );
    set(store, "encoder.layer1.fc0.bias", &[&[0.0, 0.3]]);
    q
}

fn elbo(samples: usize) -> ObjectiveConfig {
    ObjectiveConfig {
        objective: Objective::Elbo {
            num_samples: samples,
            analytic_kl: true,
        },
        warmup: None,
        free_bits: None,
    }
}

#[test]
fn bounds_are_ordered_and_importance_sampling_converges_to_the_exact_log_p() {
    let store = ParamStore::new(1);
    let p = model();
    let q = encoder(&store);
    let n = 16;
    let (x, _) = p.sample(n, &mut SeededNoise::new(2), Pass::Eval).unwrap();
    // The library's exact value against the closed form computed here.
    let exact = p.log_marginal(&x).unwrap().to_vec1::<f64>().unwrap();
    for (row, lib) in x.to_vec2::<f64>().unwrap().iter().zip(&exact) {
        assert!(
            (exact_log_p(row) - lib).abs() < 1e-10,
            "{lib} vs {}",
            exact_log_p(row)
        );
    }
    let log_p = exact.iter().sum::<f64>() / n as f64;
    // The top layer's KL in closed form given z_1; z_1's against p(z_1|z_2) by its draw.
    assert_bounds_and_convergence(&q, &p, &x, log_p, 1);
}

/// With 20000 draws of `q` on `x`: the KL method (`analytic_layers` of 2 in closed form),
/// ELBO < IWAE-10 < IWAE-100 ≤ IS, IS within 0.03 nats of the exact `log_p`. Returns the
/// ELBO as evaluated (closed-form KLs) and as the mean log-weight.
fn assert_bounds_and_convergence(
    q: &dyn InferenceNetwork,
    p: &LinearHierarchy,
    x: &Tensor,
    log_p: f64,
    analytic_layers: usize,
) -> (f64, f64) {
    let samples = 20_000;
    let eval = evaluate(
        &elbo(samples),
        EvalContext::new(q, p, x, &mut SeededNoise::new(3)),
    )
    .and_then(Evaluation::checked)
    .unwrap();
    assert_eq!(
        eval.kl_method,
        vaekit_distributions::KlMethod::PerLayer {
            analytic_layers,
            layers: 2,
            num_samples: samples
        }
    );
    let lw = eval.log_weights;
    let bound = |k: usize| common::iwae_bound(&lw, k);
    let (e, i10, i100, is) = (bound(1), bound(10), bound(100), bound(samples));
    assert!(
        e < i10 - 0.05 && i10 < i100 && i100 <= is + 1e-9,
        "ELBO {e}, IWAE-10 {i10}, IWAE-100 {i100}, IS {is}, exact {log_p}"
    );
    assert!(
        (is - log_p).abs() < 0.03,
        "IS-{samples} {is} vs exact {log_p}"
    );
    (eval.bound, e)
}

#[test]
fn the_posterior_density_at_its_draws_is_the_density_along_the_path() {
    let store = ParamStore::new(4);
    let p = model();
    let q = encoder(&store);
    let (x, _) = p.sample(5, &mut SeededNoise::new(5), Pass::Eval).unwrap();
    let post = q.forward(&x, Pass::Train).unwrap();
    let draw = post
        .rsample_with_log_prob(7, &mut SeededNoise::new(6))
        .unwrap();
    assert_eq!(draw.z.dims(), [5, 7, 3]);
    let again = post.log_prob(&draw.z).unwrap();
    let stopped = draw.log_q_stopped.clone().unwrap();
    for (name, other) in [("log_prob", &again), ("stopped", &stopped)] {
        let diff = (other - &draw.log_q)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        let diff = diff.to_scalar::<f64>().unwrap();
        assert!(diff < 1e-10, "{name}: {diff}");
    }
    // The stopped density's gradient reaches the encoder only through z: for the first
    // layer's bias (which shifts z_1 and z_1's own Gaussian together) it is the pathwise
    // part alone, which differs from the full gradient.
    let bias = store
        .trainable()
        .into_iter()
        .find(|(n, _)| n == "encoder.layer0.fc0.bias")
        .unwrap()
        .1;
    let full = draw.log_q.sum_all().unwrap().backward().unwrap();
    let path = stopped.sum_all().unwrap().backward().unwrap();
    let (gf, gp) = (
        full.get(bias.as_tensor())
            .unwrap()
            .to_vec1::<f64>()
            .unwrap(),
        path.get(bias.as_tensor())
            .unwrap()
            .to_vec1::<f64>()
            .unwrap(),
    );
    // d/dμ_1 of log q along the path is zero for the first layer's own term (ε is fixed),
    // so only the second layer's term, through z_1, remains in the full gradient...
    assert!(gf[0].abs() > 1e-6, "{gf:?}");
    // ...and the stopped density sees z_1 move without its own mean moving.
    assert!((gf[0] - gp[0]).abs() > 1e-6, "{gf:?} vs {gp:?}");
}

#[test]
fn the_prior_draws_have_its_moments_and_the_ancestral_density() {
    let p = model();
    let prior = p.prior(Pass::Eval).unwrap();
    assert_eq!(prior.event_shape().dims(), [3]);
    let n = 100_000;
    let z = prior.sample(&[n], &mut SeededNoise::new(8)).unwrap();
    assert_eq!(z.dims(), [n, 3]);
    let mean = z.mean(0).unwrap().to_vec1::<f64>().unwrap();
    // E z_1 = a, E z_2 = 0; Var z_1,i = A_i² + σ_i².
    let want = [0.3, -0.1, 0.0];
    let var = [1.44 + (-1.0f64).exp(), 0.49 + 0.4f64.exp(), 1.0];
    for d in 0..3 {
        let se = (var[d] / n as f64).sqrt();
        assert!(
            (mean[d] - want[d]).abs() < 4.0 * se,
            "dim {d}: {} vs {}",
            mean[d],
            want[d]
        );
    }
    // log p(z) = log N(z_2; 0, 1) + log N(z_1; A z_2 + a, diag σ²) at a few points.
    let pts = Tensor::new(&[[0.5f64, -1.0, 0.3], [2.0, 0.1, -1.5]], &Device::Cpu).unwrap();
    let lp = prior.log_prob(&pts).unwrap().to_vec1::<f64>().unwrap();
    for (pt, got) in pts.to_vec2::<f64>().unwrap().iter().zip(lp) {
        let top = common::gaussian_log_density(&[pt[2]], &[0.0], &[vec![1.0]]);
        let mean = [1.2 * pt[2] + 0.3, -0.7 * pt[2] - 0.1];
        let cov = vec![vec![(-1.0f64).exp(), 0.0], vec![0.0, 0.4f64.exp()]];
        let want = top + common::gaussian_log_density(&pt[..2], &mean, &cov);
        assert!((got - want).abs() < 1e-10, "{got} vs {want}");
    }
}

/// A top-down encoder over `p`'s generative conditional with moderate, fixed weights (every
/// layer linear here, so the bottom-up features are `x` itself): `q(z_2|x)` from `head1`,
/// `q(z_1|z_2, x)` the prior conditional times `head0`'s Gaussian.
fn top_down_encoder(store: &ParamStore, p: &LinearHierarchy) -> TopDownEncoder {
    let q = TopDownEncoder::new(
        &LinearHierarchy::config(P, 2, 1),
        store.var_builder(DType::F64, &Device::Cpu).pp("encoder"),
        p.decoder(),
    )
    .unwrap();
    set(
        store,
        "encoder.head1.fc0.weight",
        &[&[0.3, -0.2, 0.4], &[0.0, 0.05, 0.0]],
    );
    set(store, "encoder.head1.fc0.bias", &[&[0.1, -0.3]]);
    let head0: [&[f64]; 4] = [
        &[0.4, -0.2, 0.3],
        &[0.1, 0.5, -0.3],
        &[0.0, 0.05, 0.0],
        &[0.0, 0.0, -0.05],
    ];
    set(store, "encoder.head0.fc0.weight", &head0);
    set(store, "encoder.head0.fc0.bias", &[&[0.1, -0.1, 0.3, 0.2]]);
    q
}

#[test]
fn top_down_inference_orders_the_bounds_and_its_importance_sampling_converges() {
    let store = ParamStore::new(9);
    let p = model();
    let q = top_down_encoder(&store, &p);
    let n = 16;
    let (x, _) = p.sample(n, &mut SeededNoise::new(2), Pass::Eval).unwrap();
    let log_p = p.log_marginal(&x).unwrap().mean_all().unwrap();
    let log_p = log_p.to_scalar::<f64>().unwrap();
    let (bound, e) = assert_bounds_and_convergence(&q, &p, &x, log_p, 2);
    // The ELBO with the closed-form KLs estimates the same bound as the mean log-weight.
    assert!((bound - e).abs() < 0.05, "{bound} vs {e}");
}

/// Mean and standard error of `log q − log p − layered KL` over draws of `post`: the
/// layered KL must be an unbiased estimate of the Monte Carlo one.
fn layered_against_monte_carlo(
    post: &dyn Posterior,
    prior: &dyn vaekit_distributions::Distribution,
    samples: usize,
) -> (f64, f64, LayeredKl) {
    let draw = post
        .rsample_with_log_prob(samples, &mut SeededNoise::new(12))
        .unwrap();
    let layered = post.layered_kl(&draw.z, prior).unwrap().unwrap();
    let mc = (&draw.log_q - prior.log_prob(&draw.z).unwrap()).unwrap();
    let diff = (mc - &layered.per_draw)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let m = diff.len() as f64;
    let mean = diff.iter().sum::<f64>() / m;
    let var = diff.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (m - 1.0);
    (mean, (var / m).sqrt(), layered)
}

#[test]
fn the_layered_kl_is_an_unbiased_estimate_of_the_monte_carlo_kl_in_both_orders() {
    let p = model();
    let (x, _) = p.sample(4, &mut SeededNoise::new(10), Pass::Eval).unwrap();
    let prior = p.prior(Pass::Eval).unwrap();
    let bottom_store = ParamStore::new(1);
    let bottom_up = encoder(&bottom_store);
    let top_store = ParamStore::new(1);
    let top_down = top_down_encoder(&top_store, &p);
    for (name, q, analytic) in [
        ("bottom-up", &bottom_up as &dyn InferenceNetwork, 1),
        ("top-down", &top_down as &dyn InferenceNetwork, 2),
    ] {
        let post = q.forward(&x, Pass::Eval).unwrap();
        let (mean, se, layered) = layered_against_monte_carlo(&*post, &*prior, 50_000);
        assert_eq!((layered.analytic_layers, layered.layers), (analytic, 2));
        assert_eq!(layered.per_draw.dims(), [4, 50_000]);
        assert!(mean.abs() < 4.0 * se, "{name}: {mean} ± {se}");
        // Here (not in general) the closed forms remove variance.
        let draw = post
            .rsample_with_log_prob(2_000, &mut SeededNoise::new(13))
            .unwrap();
        let spread = |t: &Tensor| {
            let v = t.flatten_all().unwrap().to_vec1::<f64>().unwrap();
            let m = v.iter().sum::<f64>() / v.len() as f64;
            v.iter().map(|d| (d - m).powi(2)).sum::<f64>() / v.len() as f64
        };
        let mc = (&draw.log_q - prior.log_prob(&draw.z).unwrap()).unwrap();
        let layered = post.layered_kl(&draw.z, &*prior).unwrap().unwrap();
        assert!(
            spread(&layered.per_draw) < spread(&mc),
            "{name}: {} vs {}",
            spread(&layered.per_draw),
            spread(&mc)
        );
    }
}

#[test]
fn the_top_down_density_at_its_draws_is_the_density_along_the_path() {
    let store = ParamStore::new(4);
    let p = model();
    let q = top_down_encoder(&store, &p);
    let (x, _) = p.sample(5, &mut SeededNoise::new(5), Pass::Eval).unwrap();
    let post = q.forward(&x, Pass::Train).unwrap();
    let draw = post
        .rsample_with_log_prob(7, &mut SeededNoise::new(6))
        .unwrap();
    assert_eq!(draw.z.dims(), [5, 7, 3]);
    let again = post.log_prob(&draw.z).unwrap();
    let stopped = draw.log_q_stopped.clone().unwrap();
    for (name, other) in [("log_prob", &again), ("stopped", &stopped)] {
        let diff = (other - &draw.log_q).unwrap().abs().unwrap();
        let diff = diff.max_all().unwrap().to_scalar::<f64>().unwrap();
        assert!(diff < 1e-10, "{name}: {diff}");
    }
    // The noise-space path gives the same draw.
    let eps = SeededNoise::new(6)
        .standard_normal(&(7, 5, 3).into(), DType::F64, &Device::Cpu)
        .unwrap()
        .transpose(0, 1)
        .unwrap()
        .contiguous()
        .unwrap();
    let path = post.reparameterize(&eps).unwrap();
    let diff = (&path.z - &draw.z).unwrap().abs().unwrap();
    assert!(diff.max_all().unwrap().to_scalar::<f64>().unwrap() < 1e-12);
    // The stopped density's gradient reaches the bottom-up head only through z: for the
    // log-scale of z_1's bottom-up factor (which enters z_1's precision) it differs from the
    // full density's, which is −Σ of that factor's precision weights (ε fixed).
    let bias = store
        .trainable()
        .into_iter()
        .find(|(n, _)| n == "encoder.head0.fc0.bias")
        .unwrap()
        .1;
    let full = draw.log_q.sum_all().unwrap().backward().unwrap();
    let path = stopped.sum_all().unwrap().backward().unwrap();
    let g = |grads: &candle::backprop::GradStore| {
        grads
            .get(bias.as_tensor())
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()
    };
    let (gf, gp) = (g(&full), g(&path));
    assert!(gf[2] < -1e-3 && gf[2] > -35.0, "{gf:?}");
    assert!((gf[2] - gp[2]).abs() > 1e-6, "{gf:?} vs {gp:?}");
}

/// `x = (W A) z_2 + W (a + σ ε) + b + s η` with orthogonal columns of `W`, so the exact
/// posterior `p(z_2|x) p(z_1|z_2, x)` is in the top-down family (`p(z_1|z_2, x) ∝ p(z_1|z_2)
/// p(x|z_1)`, whose second factor is a diagonal Gaussian in `z_1` with mean linear in `x`):
/// set to it, every log-weight is `log p(x)`.
#[test]
fn top_down_inference_set_to_the_exact_posterior_has_constant_log_weights() {
    let (a, a0, log_sigma) = ([1.2, -0.7], [0.3, -0.1], [-0.5, 0.2]);
    let w = [[1.0, 0.5], [1.0, -0.5], [0.5, 0.0]];
    let (b, s) = ([0.2, -0.4, 0.1], 0.5);
    let t = |v: &[f64]| Tensor::new(v, &Device::Cpu).unwrap();
    let p = LinearHierarchy::new(
        &t(&a).unsqueeze(1).unwrap(),
        &t(&a0),
        &t(&log_sigma),
        &Tensor::new(&w, &Device::Cpu).unwrap(),
        &t(&b),
        s,
    )
    .unwrap();
    let var1: Vec<f64> = log_sigma.iter().map(|l: &f64| (2.0 * l).exp()).collect();
    // p(z_2|x): u = W A, c = W a + b, C = W diag(σ²) Wᵀ + s² I.
    let u: Vec<f64> = (0..P).map(|i| w[i][0] * a[0] + w[i][1] * a[1]).collect();
    let c: Vec<f64> = (0..P)
        .map(|i| w[i][0] * a0[0] + w[i][1] * a0[1] + b[i])
        .collect();
    let cov: Vec<Vec<f64>> = (0..P)
        .map(|i| {
            (0..P)
                .map(|j| {
                    let ww = w[i][0] * w[j][0] * var1[0] + w[i][1] * w[j][1] * var1[1];
                    ww + if i == j { s * s } else { 0.0 }
                })
                .collect()
        })
        .collect();
    let ciu = common::solve(&cov, &u);
    let v2 = 1.0 / (1.0 + u.iter().zip(&ciu).map(|(a, b)| a * b).sum::<f64>());
    let row: Vec<f64> = ciu.iter().map(|v| v2 * v).collect();
    let bias = -row.iter().zip(&c).map(|(r, c)| r * c).sum::<f64>();
    let store = ParamStore::new(1);
    let q = top_down_encoder(&store, &p);
    set(
        &store,
        "encoder.head1.fc0.weight",
        &[&row, &[0.0, 0.0, 0.0]],
    );
    set(&store, "encoder.head1.fc0.bias", &[&[bias, 0.5 * v2.ln()]]);
    // The bottom-up factor of z_1 is the likelihood's: precision λ_i = Σ_p W_pi² / s²
    // (diagonal: orthogonal columns), mean Σ_p W_pi (x_p − b_p) / (s² λ_i).
    let (mut rows, mut biases, mut log_scales) = (Vec::new(), Vec::new(), Vec::new());
    for col in [0, 1].map(|i| w.map(|r| r[i])) {
        let lam = col.iter().map(|v| v * v).sum::<f64>() / (s * s);
        rows.push(col.iter().map(|v| v / (s * s * lam)).collect::<Vec<f64>>());
        biases.push(-col.iter().zip(&b).map(|(v, b)| v * b).sum::<f64>() / (s * s * lam));
        log_scales.push(-0.5 * lam.ln());
    }
    let zero = [0.0; P];
    set(
        &store,
        "encoder.head0.fc0.weight",
        &[&rows[0], &rows[1], &zero, &zero],
    );
    set(
        &store,
        "encoder.head0.fc0.bias",
        &[&[biases[0], biases[1], log_scales[0], log_scales[1]]],
    );
    let (x, _) = p.sample(6, &mut SeededNoise::new(14), Pass::Eval).unwrap();
    let exact = p.log_marginal(&x).unwrap().to_vec1::<f64>().unwrap();
    let eval = evaluate(
        &elbo(50),
        EvalContext::new(&q, &p, &x, &mut SeededNoise::new(15)),
    )
    .unwrap();
    for (row, want) in eval
        .log_weights
        .to_vec2::<f64>()
        .unwrap()
        .iter()
        .zip(&exact)
    {
        for lw in row {
            assert!((lw - want).abs() < 1e-9, "{lw} vs {want}");
        }
    }
}

/// DReG's stopped density of the top-down posterior must detach the decoder's conditional it
/// shares: its gradient on those variables is that of `log q` at fixed parameters along the
/// moved draw, `d/dθ log q_θ₀(z(θ))`, checked by central differences.
#[test]
fn the_top_down_stopped_density_detaches_the_shared_generative_conditional() {
    let store = ParamStore::new(3);
    let config = LinearHierarchy::config(P, 2, 1);
    let vb = store.var_builder(DType::F64, &Device::Cpu);
    let decoder = HierarchicalDecoder::new(
        &config,
        vaekit_nets::Likelihood::Bernoulli,
        vb.pp("decoder"),
    )
    .unwrap();
    let q = TopDownEncoder::new(&config, vb.pp("encoder"), &decoder).unwrap();
    set(
        &store,
        "decoder.layer0.fc0.weight",
        &[&[1.2], &[-0.7], &[0.3], &[0.0]],
    );
    let theta = [0.3, -0.1, -0.5, 0.2];
    set(&store, "decoder.layer0.fc0.bias", &[&theta]);
    set(
        &store,
        "encoder.head1.fc0.weight",
        &[&[0.3, -0.2, 0.4], &[0.0, 0.05, 0.0]],
    );
    set(&store, "encoder.head1.fc0.bias", &[&[0.1, -0.3]]);
    let x = Tensor::new(&[[0.5, -0.2, 0.8], [1.0, 0.3, -0.4]], &Device::Cpu).unwrap();
    let (b, s) = (2, 4);
    let post = q.forward(&x, Pass::Train).unwrap();
    let draw = post
        .rsample_with_log_prob(s, &mut SeededNoise::new(6))
        .unwrap();
    let eps = SeededNoise::new(6)
        .standard_normal(&(s, b, 3).into(), DType::F64, &Device::Cpu)
        .unwrap()
        .transpose(0, 1)
        .unwrap()
        .contiguous()
        .unwrap();
    let var = store
        .trainable()
        .into_iter()
        .find(|(n, _)| n == "decoder.layer0.fc0.bias")
        .unwrap()
        .1;
    let grad = |t: &Tensor| {
        let g = t.sum_all().unwrap().backward().unwrap();
        g.get(var.as_tensor()).unwrap().to_vec1::<f64>().unwrap()
    };
    let stopped = grad(draw.log_q_stopped.as_ref().unwrap());
    let full = grad(&draw.log_q);
    let h = 1e-5;
    for j in 0..4 {
        let moved = |delta: f64| {
            let mut t = theta;
            t[j] += delta;
            set(&store, "decoder.layer0.fc0.bias", &[&t]);
            let z = q
                .forward(&x, Pass::Eval)
                .unwrap()
                .reparameterize(&eps)
                .unwrap()
                .z;
            set(&store, "decoder.layer0.fc0.bias", &[&theta]);
            // log q at the unmoved parameters (the conditional runs lazily on them).
            post.log_prob(&z)
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
        };
        let fd = (moved(h) - moved(-h)) / (2.0 * h);
        assert!(
            (fd - stopped[j]).abs() < 1e-6 * (1.0 + fd.abs()),
            "bias {j}: stopped {} vs differences {fd}",
            stopped[j]
        );
    }
    // The full density's gradient also has the score part, which the stopped one drops.
    let gap = (0..4)
        .map(|j| (full[j] - stopped[j]).abs())
        .fold(0.0, f64::max);
    assert!(gap > 1e-3, "{full:?} vs {stopped:?}");
}
