//! HAIS and BDMC over every latent of a stochastic hierarchy: the two-layer linear-Gaussian
//! model ([`LinearHierarchy`]), whose `log p(x)` is exact, with the library's bottom-up
//! posterior ([`HierarchicalEncoder`]) and its top-down one ([`TopDownEncoder`]). HAIS starts
//! from either posterior in its noise space (`AisStart::Posterior`) and from `N(0, I)`; BDMC's
//! bounds bracket the exact value. With IAF steps in each layer ([`LayerIaf`]), HAIS from
//! the posterior's noise space still matches it in both orders.
#![allow(clippy::unwrap_used)]

use candle::{DType, Device, Tensor};
use vaekit_core::SeededNoise;
use vaekit_eval::*;
use vaekit_nets::{ParamStore, Pass};
use vaekit_objectives::{
    GenerativeModel, HierarchicalEncoder, HierarchyConfig, InferenceNetwork, LayerIaf,
    LinearHierarchy, TopDownEncoder,
};

const P: usize = 6;

fn t(v: &[f64]) -> Tensor {
    Tensor::new(v, &Device::Cpu).unwrap()
}

/// Layers of 2 and 1 units over 6 observed values, observation noise 0.4.
fn model() -> LinearHierarchy {
    let w = Tensor::new(
        &[
            [1.0, 0.5],
            [-0.3, 0.8],
            [0.6, -1.1],
            [0.2, 0.2],
            [-0.9, 0.1],
            [0.4, 0.7],
        ],
        &Device::Cpu,
    )
    .unwrap();
    LinearHierarchy::new(
        &t(&[1.5, -0.8]).unsqueeze(1).unwrap(),
        &t(&[0.2, 0.1]),
        &t(&[-0.7, -0.4]),
        &w,
        &t(&[0.1, 0.0, -0.2, 0.3, 0.0, 0.1]),
        0.4,
    )
    .unwrap()
}

/// A bottom-up posterior with fixed, moderately wide conditionals.
fn encoder(store: &ParamStore) -> HierarchicalEncoder {
    let q = HierarchicalEncoder::new(
        &LinearHierarchy::config(P, 2, 1),
        store.var_builder(DType::F64, &Device::Cpu),
    )
    .unwrap();
    let set = |name: &str, value: Tensor| store.set(name, &value).unwrap();
    set(
        "layer0.fc0.weight",
        Tensor::new(
            &[
                [0.3, -0.1, 0.2, 0.1, -0.3, 0.2],
                [0.2, 0.3, -0.3, 0.1, 0.0, 0.2],
                [0.0; P],
                [0.0; P],
            ],
            &Device::Cpu,
        )
        .unwrap(),
    );
    set("layer0.fc0.bias", t(&[0.0, 0.0, -0.5, -0.5]));
    set(
        "layer1.fc0.weight",
        Tensor::new(&[[0.4, -0.3], [0.0, 0.0]], &Device::Cpu).unwrap(),
    );
    set("layer1.fc0.bias", t(&[0.0, -0.2]));
    q
}

/// A top-down posterior over `p`'s generative conditional, with fixed, moderately wide
/// bottom-up Gaussians: `q(z_2|x)` from `head1`, `q(z_1|z_2, x)` the prior conditional times
/// `head0`'s Gaussian.
fn top_down_encoder(store: &ParamStore, p: &LinearHierarchy) -> TopDownEncoder {
    let q = TopDownEncoder::new(
        &LinearHierarchy::config(P, 2, 1),
        store.var_builder(DType::F64, &Device::Cpu),
        p.decoder(),
    )
    .unwrap();
    let set = |name: &str, value: Tensor| store.set(name, &value).unwrap();
    set(
        "head1.fc0.weight",
        Tensor::new(&[[0.2, -0.1, 0.1, 0.0, -0.2, 0.1], [0.0; P]], &Device::Cpu).unwrap(),
    );
    set("head1.fc0.bias", t(&[0.0, -0.3]));
    set(
        "head0.fc0.weight",
        Tensor::new(
            &[
                [0.3, -0.1, 0.2, 0.1, -0.3, 0.2],
                [0.2, 0.3, -0.3, 0.1, 0.0, 0.2],
                [0.0; P],
                [0.0; P],
            ],
            &Device::Cpu,
        )
        .unwrap(),
    );
    set("head0.fc0.bias", t(&[0.0, 0.0, 0.0, 0.2]));
    q
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn hais_over_every_latent_matches_the_exact_log_likelihood() {
    let p = model();
    let store = ParamStore::new(1);
    let q = encoder(&store);
    let (x, _) = p.sample(8, &mut SeededNoise::new(2), Pass::Eval).unwrap();
    let exact = p.log_marginal(&x).unwrap().to_vec1::<f64>().unwrap();
    for (start, steps) in [(AisStart::Posterior, 300), (AisStart::Prior, 1000)] {
        let config = AisConfig {
            num_steps: steps,
            chains: 32,
            batch_size: 4,
            start,
            ..AisConfig::default()
        };
        let r = ais_log_likelihood(&q, &p, &x, &config, &mut SeededNoise::new(3), &mut ()).unwrap();
        let err = mean(&r.log_likelihoods) - mean(&exact);
        let se = r.chain_std_errors.iter().map(|e| e * e).sum::<f64>().sqrt() / exact.len() as f64;
        assert!(
            err.abs() < 0.05 + 3.0 * se,
            "{start:?}: mean error {err} (standard error {se})"
        );
        assert!(
            r.mean_acceptance > 0.4,
            "{start:?}: acceptance {}",
            r.mean_acceptance
        );
    }
}

/// HAIS from `q`'s posterior (300 steps, 32 chains, in its noise space) on 8 draws of `p`
/// matches the exact mean `log p(x)` within 0.05 nats + 3 standard errors, acceptance > 0.4.
fn assert_hais_from_posterior_matches(q: &dyn InferenceNetwork, p: &LinearHierarchy, label: &str) {
    let (x, _) = p.sample(8, &mut SeededNoise::new(2), Pass::Eval).unwrap();
    let exact = p.log_marginal(&x).unwrap().to_vec1::<f64>().unwrap();
    let config = AisConfig {
        num_steps: 300,
        chains: 32,
        batch_size: 4,
        start: AisStart::Posterior,
        ..AisConfig::default()
    };
    let r = ais_log_likelihood(q, p, &x, &config, &mut SeededNoise::new(3), &mut ()).unwrap();
    let err = mean(&r.log_likelihoods) - mean(&exact);
    let se = r.chain_std_errors.iter().map(|e| e * e).sum::<f64>().sqrt() / exact.len() as f64;
    assert!(
        err.abs() < 0.05 + 3.0 * se,
        "{label}: mean error {err} (standard error {se})"
    );
    assert!(
        r.mean_acceptance > 0.4,
        "{label}: acceptance {}",
        r.mean_acceptance
    );
}

#[test]
fn hais_from_the_top_down_posterior_matches_the_exact_log_likelihood() {
    let p = model();
    let store = ParamStore::new(1);
    let q = top_down_encoder(&store, &p);
    assert_hais_from_posterior_matches(&q, &p, "top-down");
}

/// The hierarchy's two orders with two gated IAF steps per layer (MADE 4, a 3-wide
/// context), every base-Gaussian weight set to `0.2 sin` of its index (biases `0.05 sin`);
/// the flows keep their seeded initialisation.
fn layer_iaf_encoders(store: &ParamStore, p: &LinearHierarchy) -> Vec<Box<dyn InferenceNetwork>> {
    let config = HierarchyConfig {
        iaf: Some(LayerIaf::gated(2, vec![4], 3)),
        ..LinearHierarchy::config(P, 2, 1)
    };
    let vb = |prefix: &str| store.var_builder(DType::F64, &Device::Cpu).pp(prefix);
    let out: Vec<Box<dyn InferenceNetwork>> = vec![
        Box::new(HierarchicalEncoder::new(&config, vb("bottom_up")).unwrap()),
        Box::new(TopDownEncoder::new(&config, vb("top_down"), p.decoder()).unwrap()),
    ];
    for (name, var) in store.trainable() {
        if name.contains(".flow") {
            continue;
        }
        let t = var.as_tensor();
        let scale = if name.ends_with("bias") { 0.05 } else { 0.2 };
        let v: Vec<f64> = (0..t.elem_count())
            .map(|i| scale * (1.3 * i as f64 + 0.7).sin())
            .collect();
        let v = Tensor::new(v, &Device::Cpu)
            .unwrap()
            .reshape(t.dims())
            .unwrap();
        store.set(&name, &v).unwrap();
    }
    out
}

#[test]
fn hais_from_layer_iaf_posteriors_in_both_orders_matches_the_exact_log_likelihood() {
    let p = model();
    let store = ParamStore::new(5);
    let encoders = layer_iaf_encoders(&store, &p);
    for (order, q) in ["bottom-up", "top-down"].into_iter().zip(&encoders) {
        assert_hais_from_posterior_matches(&**q, &p, &format!("{order} with layer IAFs"));
    }
}

#[test]
fn bdmc_brackets_the_exact_log_likelihood_of_a_hierarchy() {
    let p = model();
    let store = ParamStore::new(4);
    let q = encoder(&store);
    let (x, z) = p.sample(8, &mut SeededNoise::new(5), Pass::Eval).unwrap();
    let exact = mean(&p.log_marginal(&x).unwrap().to_vec1::<f64>().unwrap());
    let config = AisConfig {
        num_steps: 200,
        chains: 16,
        batch_size: 4,
        start: AisStart::Prior,
        ..AisConfig::default()
    };
    let r = bdmc_on_pairs(&q, &p, &x, &z, &config, &mut SeededNoise::new(6), &mut ()).unwrap();
    assert!(
        r.lower < exact + 3.0 * r.lower_std_error && exact < r.upper + 3.0 * r.upper_std_error,
        "lower {} (se {}), exact {exact}, upper {} (se {})",
        r.lower,
        r.lower_std_error,
        r.upper,
        r.upper_std_error
    );
    assert!(r.gap < 0.5, "gap {}", r.gap);
}
