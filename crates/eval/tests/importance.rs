//! Importance-sampled log p(x) on the linear-Gaussian model, whose log p(x) is exact.
#![allow(clippy::unwrap_used)]

mod common;

use candle::{DType, Device, Shape, Tensor};
use vaekit_core::{NoiseSource, SeededNoise};
use vaekit_eval::*;
use vaekit_flows::FlowChain;
use vaekit_nets::Pass;
use vaekit_objectives::{EncoderFlow, GenerativeModel, LinearEncoder, LinearGaussian};

fn setup(perturb: f64) -> (LinearGaussian, EncoderFlow<LinearEncoder>, Tensor) {
    let model = common::orthogonal_linear_gaussian();
    let (x, _) = model
        .sample(30, &mut SeededNoise::new(1), Pass::Eval)
        .unwrap();
    let exact = model.posterior_encoder().unwrap();
    let jitter = SeededNoise::new(2)
        .standard_normal(&Shape::from((2, 4)), DType::F64, &Device::Cpu)
        .unwrap();
    let enc = LinearEncoder {
        a: (exact.a + (jitter * perturb).unwrap()).unwrap(),
        c: exact.c,
        log_scale: (exact.log_scale + perturb).unwrap(),
    };
    (model, EncoderFlow::new(enc, FlowChain::default()), x)
}

#[test]
fn exact_proposal_gives_exact_log_likelihood_and_full_ess() {
    let (model, q, x) = setup(0.0);
    let cfg = ImportanceConfig {
        num_samples: 50,
        chunk: 7,
        batch_size: 8,
    };
    let r =
        importance_sampled_log_likelihood(&q, &model, &x, &cfg, &mut SeededNoise::new(3), &mut ())
            .unwrap();
    let exact = model.log_marginal(&x).unwrap().to_vec1::<f64>().unwrap();
    for (a, b) in r.log_likelihoods.iter().zip(&exact) {
        assert!((a - b).abs() < 1e-9, "{a} vs {b}");
    }
    assert!((r.mean_ess - 50.0).abs() < 1e-6, "ESS {}", r.mean_ess);
    let mean_exact = exact.iter().sum::<f64>() / exact.len() as f64;
    assert!((r.mean_nll + mean_exact).abs() < 1e-9);
}

#[test]
fn imperfect_proposal_converges_with_many_samples() {
    let (model, q, x) = setup(0.15);
    let exact = -model
        .log_marginal(&x)
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    let run = |k: usize, chunk: usize| {
        importance_sampled_log_likelihood(
            &q,
            &model,
            &x,
            &ImportanceConfig {
                num_samples: k,
                chunk,
                batch_size: 11,
            },
            &mut SeededNoise::new(4),
            &mut (),
        )
        .unwrap()
    };
    let r10 = run(10, 10);
    let r5000 = run(5000, 700);
    assert!(
        r10.mean_nll > r5000.mean_nll,
        "more samples tighten the bound: {} vs {}",
        r10.mean_nll,
        r5000.mean_nll
    );
    assert!(
        (r5000.mean_nll - exact).abs() < 0.01,
        "IS-5000 NLL {} vs exact {exact}",
        r5000.mean_nll
    );
    assert!(
        r5000.mean_ess > 100.0 && r5000.mean_ess < 5000.0,
        "ESS {}",
        r5000.mean_ess
    );
    assert!(r5000.std_error > 0.0 && r5000.log_likelihoods.len() == 30);
    // Chunking does not change the estimator, only the order of draws: same K, same answer
    // within Monte Carlo error.
    let other = run(5000, 333);
    assert!((other.mean_nll - r5000.mean_nll).abs() < 0.01);
}

#[test]
fn bad_configurations_are_rejected() {
    let (model, q, x) = setup(0.1);
    let cfg = ImportanceConfig {
        num_samples: 0,
        chunk: 1,
        batch_size: 1,
    };
    assert!(
        importance_sampled_log_likelihood(&q, &model, &x, &cfg, &mut SeededNoise::new(0), &mut ())
            .is_err()
    );
}
