//! Annealed importance sampling and BDMC on the linear-Gaussian model, whose log p(x) is
//! exact, from every start (the flow-posterior start through an IAF).
#![allow(clippy::unwrap_used)]

mod common;

use candle::{DType, Device, Tensor};
use vaekit_core::{NoiseSource, SeededNoise};
use vaekit_eval::*;
use vaekit_flows::{FlowChain, IafVariant, MadeConfig, iaf_chain};
use vaekit_nets::{Normalization, ParamStore, Pass};
use vaekit_objectives::{
    EncoderFlow, GenerativeModel, InferenceNetwork, LinearEncoder, LinearGaussian,
};

const P: usize = 8;
const D: usize = 3;

/// A model with a concentrated posterior (small observation noise), so that starting from
/// the prior needs real annealing; data drawn from it.
fn model() -> (LinearGaussian, Tensor) {
    let w = SeededNoise::new(21)
        .standard_normal(&(P, D).into(), DType::F64, &Device::Cpu)
        .unwrap();
    let b = SeededNoise::new(22)
        .standard_normal(&P.into(), DType::F64, &Device::Cpu)
        .unwrap();
    let model = LinearGaussian::new(w, b, 0.5).unwrap();
    let (x, _) = model
        .sample(12, &mut SeededNoise::new(23), Pass::Eval)
        .unwrap();
    (model, x)
}

/// A linear encoder near the exact posterior (its mean map, with per-dimension standard
/// deviations from the exact covariance, both perturbed), and the same encoder followed by a
/// randomly initialised IAF for the posterior start.
fn encoders(
    model: &LinearGaussian,
    store: &ParamStore,
) -> (EncoderFlow<LinearEncoder>, EncoderFlow<LinearEncoder>) {
    let exact = model.posterior_encoder().unwrap();
    let jitter = SeededNoise::new(40)
        .standard_normal(&(D, P).into(), DType::F64, &Device::Cpu)
        .unwrap()
        .affine(0.05, 0.0)
        .unwrap();
    let enc = || LinearEncoder {
        a: (&exact.a + &jitter).unwrap(),
        c: exact.c.clone(),
        log_scale: exact.log_scale.affine(1.0, 0.2).unwrap(),
    };
    let made = MadeConfig {
        dim: D,
        hidden: vec![18],
        context_dim: 0,
        norm: Normalization::None,
        ..MadeConfig::default()
    };
    let flow = iaf_chain(
        2,
        &made,
        IafVariant::Gated { forget_bias: 2.0 },
        store.var_builder(DType::F64, &Device::Cpu).pp("flow"),
    )
    .unwrap();
    (
        EncoderFlow::new(enc(), FlowChain::default()),
        EncoderFlow::new(enc(), flow),
    )
}

/// A small initial step (0.01) that the adaptation must grow: short runs then show their
/// bias clearly.
fn config(steps: usize, start: AisStart) -> AisConfig {
    AisConfig {
        num_steps: steps,
        chains: 16,
        batch_size: 5,
        start,
        hmc: HmcConfig {
            initial_step_size: 0.01,
            ..HmcConfig::default()
        },
        ..AisConfig::default()
    }
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[test]
fn ais_matches_the_exact_log_likelihood_from_every_start() {
    let (model, x) = model();
    let store = ParamStore::new(24);
    let (plain, flow) = encoders(&model, &store);
    let exact = model.log_marginal(&x).unwrap().to_vec1::<f64>().unwrap();
    // The prior is far from the posterior and needs long annealing; the encoder and the
    // flow posterior start close to it.
    let runs: [(&dyn InferenceNetwork, AisStart, usize, usize); 3] = [
        (&plain, AisStart::Prior, 2000, 64),
        (&plain, AisStart::Encoder, 300, 32),
        (&flow, AisStart::Posterior, 300, 32),
    ];
    for (q, start, steps, chains) in runs {
        let cfg = AisConfig {
            chains,
            ..config(steps, start)
        };
        let r =
            ais_log_likelihood(q, &model, &x, &cfg, &mut SeededNoise::new(25), &mut ()).unwrap();
        let err = mean(&r.log_likelihoods) - mean(&exact);
        // The randomly initialised IAF distorts the posterior (IS with it as proposal has an
        // ESS of under 1 %): its chains are noisier, so it is held to three standard errors
        // of the mean; the other starts to 0.05 nats.
        let se = r.chain_std_errors.iter().map(|e| e * e).sum::<f64>().sqrt() / exact.len() as f64;
        let tol = if start == AisStart::Posterior {
            3.0 * se
        } else {
            0.05
        };
        assert!(
            err.abs() < tol,
            "{start:?}: mean error {err} (standard error {se})"
        );
        for ((a, e), se) in r
            .log_likelihoods
            .iter()
            .zip(&exact)
            .zip(&r.chain_std_errors)
        {
            assert!(
                (a - e).abs() < 0.05 + 4.0 * se,
                "{start:?}: {a} vs exact {e} (se {se})"
            );
        }
        assert!((r.mean_nll + mean(&r.log_likelihoods)).abs() < 1e-12);
        assert!(
            r.mean_acceptance > 0.4,
            "{start:?}: acceptance {}",
            r.mean_acceptance
        );
        assert_eq!(r.gradient_evaluations, (steps - 1) * 10 + 1);
    }
}

#[test]
fn an_exact_start_gives_the_exact_value_with_no_variance() {
    // Orthogonal loadings: the exact posterior is a diagonal Gaussian, which the linear
    // encoder represents exactly. Then `ℓ(ε) = log p(x)` everywhere.
    let model = common::orthogonal_linear_gaussian();
    let (x, _) = model
        .sample(6, &mut SeededNoise::new(41), Pass::Eval)
        .unwrap();
    let q = EncoderFlow::new(model.posterior_encoder().unwrap(), FlowChain::default());
    let exact = model.log_marginal(&x).unwrap().to_vec1::<f64>().unwrap();
    let r = ais_log_likelihood(
        &q,
        &model,
        &x,
        &config(20, AisStart::Encoder),
        &mut SeededNoise::new(42),
        &mut (),
    )
    .unwrap();
    for ((a, e), se) in r
        .log_likelihoods
        .iter()
        .zip(&exact)
        .zip(&r.chain_std_errors)
    {
        assert!((a - e).abs() < 1e-9, "{a} vs {e}");
        assert!(*se < 1e-9, "chain standard error {se}");
    }
}

#[test]
fn more_annealing_steps_give_better_estimates() {
    let (model, x) = model();
    let store = ParamStore::new(26);
    let (plain, _) = encoders(&model, &store);
    let exact = mean(&model.log_marginal(&x).unwrap().to_vec1::<f64>().unwrap());
    let errors: Vec<f64> = [2, 20, 300]
        .iter()
        .map(|&t| {
            let r = ais_log_likelihood(
                &plain,
                &model,
                &x,
                &config(t, AisStart::Prior),
                &mut SeededNoise::new(27),
                &mut (),
            )
            .unwrap();
            (mean(&r.log_likelihoods) - exact).abs()
        })
        .collect();
    assert!(
        errors[0] > errors[1] && errors[1] > errors[2],
        "errors with 2, 20, 300 steps: {errors:?}"
    );
    assert!(errors[0] > 1.0, "2 steps should be far off: {errors:?}");
}

#[test]
fn bdmc_brackets_the_exact_log_likelihood_and_the_gap_closes() {
    let (model, _) = model();
    let store = ParamStore::new(28);
    let (plain, flow) = encoders(&model, &store);
    let (x, z) = model
        .sample(10, &mut SeededNoise::new(29), Pass::Eval)
        .unwrap();
    let exact_points = model.log_marginal(&x).unwrap().to_vec1::<f64>().unwrap();
    let exact = mean(&exact_points);
    // Mean and standard error over points of an estimate's error.
    let error = |estimates: &[f64]| -> (f64, f64) {
        let d: Vec<f64> = estimates
            .iter()
            .zip(&exact_points)
            .map(|(a, e)| a - e)
            .collect();
        let m = mean(&d);
        let var = d.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (d.len() - 1) as f64;
        (m, (var / d.len() as f64).sqrt())
    };
    let mut gaps = Vec::new();
    for steps in [10, 400] {
        for start in [AisStart::Prior, AisStart::Encoder] {
            let r = bdmc_on_pairs(
                &plain,
                &model,
                &x,
                &z,
                &config(steps, start),
                &mut SeededNoise::new(30),
                &mut (),
            )
            .unwrap();
            // Both bounds hold in expectation: allow three standard errors of noise.
            let (low, low_se) = error(&r.forward);
            let (up, up_se) = error(&r.reverse);
            assert!(
                low <= 3.0 * low_se && up >= -3.0 * up_se,
                "{steps} steps from {start:?}: {} <= {exact} <= {} (errors {low} ± {low_se}, {up} ± {up_se})",
                r.lower,
                r.upper
            );
            assert!((r.gap - (r.upper - r.lower)).abs() < 1e-12);
            gaps.push(r.gap);
        }
    }
    assert!(
        gaps[0] > 0.3 && gaps[1] > 0.3,
        "short runs should show a gap: {gaps:?}"
    );
    assert!(
        gaps[2] < 0.1 && gaps[3] < 0.1,
        "long runs should close it: {gaps:?}"
    );
    // The simulating entry point runs end to end; a flow posterior cannot be reversed.
    let r = bdmc(
        &plain,
        &model,
        4,
        &config(20, AisStart::Prior),
        &mut SeededNoise::new(31),
        &mut (),
    );
    assert_eq!(r.unwrap().forward.len(), 4);
    let err = bdmc(
        &flow,
        &model,
        4,
        &config(20, AisStart::Posterior),
        &mut SeededNoise::new(31),
        &mut (),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("inverse"), "{err}");
}

#[test]
fn reparameterize_is_the_sampling_path() {
    let (model, x) = model();
    let store = ParamStore::new(32);
    let (_, flow) = encoders(&model, &store);
    let posterior = flow.forward(&x, Pass::Eval).unwrap();
    let drawn = posterior
        .rsample_with_log_prob(7, &mut SeededNoise::new(33))
        .unwrap();
    // The same noise, drawn as `[S, B, D]` by the sampler, given as `[B, S, D]`.
    let eps = SeededNoise::new(33)
        .standard_normal(&(7, x.dim(0).unwrap(), D).into(), DType::F64, &Device::Cpu)
        .unwrap()
        .transpose(0, 1)
        .unwrap();
    let mapped = posterior.reparameterize(&eps).unwrap();
    vaekit_core::testing::assert_all_close(&mapped.z, &drawn.z, 1e-12, 1e-12).unwrap();
    vaekit_core::testing::assert_all_close(&mapped.log_q, &drawn.log_q, 1e-10, 1e-10).unwrap();
}

#[test]
fn bad_settings_are_errors_not_panics() {
    let (model, x) = model();
    let store = ParamStore::new(34);
    let (plain, _) = encoders(&model, &store);
    let mut noise = SeededNoise::new(35);
    let mut bad = config(10, AisStart::Prior);
    bad.chains = 0;
    assert!(ais_log_likelihood(&plain, &model, &x, &bad, &mut noise, &mut ()).is_err());
    let mut bad = config(0, AisStart::Prior);
    assert!(ais_log_likelihood(&plain, &model, &x, &bad, &mut noise, &mut ()).is_err());
    bad = config(10, AisStart::Prior);
    bad.hmc.leapfrog_steps = 0;
    assert!(ais_log_likelihood(&plain, &model, &x, &bad, &mut noise, &mut ()).is_err());
    assert!("flow".parse::<AisStart>().is_err());
    assert_eq!("encoder".parse::<AisStart>().unwrap(), AisStart::Encoder);
}

/// `log` of the mean of every chain's weight over all copies of one data point, and its
/// delta-method standard error, from the per-copy estimates (each the log-mean-exp of its
/// chains' weights, all copies having the same number of chains).
fn pooled(log_likelihoods: &[f64]) -> (f64, f64) {
    let max = log_likelihoods
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = log_likelihoods.iter().map(|l| (l - max).exp()).collect();
    let m = mean(&w);
    let var = w.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (w.len() - 1) as f64;
    (max + m.ln(), (var / w.len() as f64).sqrt() / m)
}

/// Exaggerated adaptation (×10 / ×0.1 per transition, no smoothing), one chain per copy.
fn exaggerated(start: AisStart, steps: usize, tuning: StepSizeTuning) -> AisConfig {
    AisConfig {
        num_steps: steps,
        chains: 1,
        batch_size: 2000,
        start,
        tuning,
        hmc: HmcConfig {
            leapfrog_steps: 3,
            initial_step_size: 0.1,
            adaptation: Some(StepSizeAdaptation {
                increase: 10.0,
                decrease: 0.1,
                smoothing: 0.0,
                min: 1e-6,
                max: 50.0,
                ..StepSizeAdaptation::default()
            }),
        },
        ..AisConfig::default()
    }
}

/// With the step sizes tuned by a pilot and frozen, AIS's mean weight is an unbiased
/// estimate of `p(x)`: on 8000 copies of one data point, few annealing steps and an
/// exaggerated adaptation, the log of the mean weight over all chains matches the exact
/// `log p(x)` within 3 standard errors (from the prior: few steps, noisy weights; from the
/// encoder: close to the posterior, a tight check).
#[test]
fn frozen_step_sizes_keep_ais_unbiased_on_the_exact_model() {
    let (model, x) = model();
    let store = ParamStore::new(24);
    let (plain, _) = encoders(&model, &store);
    let x0 = x.narrow(0, 0, 1).unwrap();
    let copies = x0.broadcast_as((8000, P)).unwrap().contiguous().unwrap();
    let exact = model.log_marginal(&x0).unwrap().to_vec1::<f64>().unwrap()[0];
    for (start, steps, max_se) in [(AisStart::Prior, 5, 0.2), (AisStart::Encoder, 4, 0.03)] {
        let cfg = exaggerated(start, steps, StepSizeTuning::default());
        let r = ais_log_likelihood(
            &plain,
            &model,
            &copies,
            &cfg,
            &mut SeededNoise::new(77),
            &mut (),
        )
        .unwrap();
        let (estimate, se) = pooled(&r.log_likelihoods);
        assert!(se < max_se, "{start:?}: standard error {se}");
        assert!(
            (estimate - exact).abs() < 3.0 * se,
            "{start:?}: log mean weight {estimate} vs exact {exact} (standard error {se})"
        );
        assert!(
            r.step_size_tuning.contains("pilot"),
            "{}",
            r.step_size_tuning
        );
    }
}

/// The estimating run's step sizes are fixed before it starts: whatever its noise, a frozen
/// plan uses exactly the given sizes at every transition, forward and reverse (looked up by
/// the forward schedule's order), while online adaptation follows the run's own chains.
#[test]
fn the_estimating_run_does_not_adapt_to_its_own_chains() {
    let (model, x) = model();
    let store = ParamStore::new(24);
    let (plain, _) = encoders(&model, &store);
    let x = x.narrow(0, 0, 3).unwrap();
    let path = VaePath::new(&plain, &model, &x, AisStart::Prior).unwrap();
    let hmc = HmcConfig {
        leapfrog_steps: 3,
        initial_step_size: 0.3,
        adaptation: Some(StepSizeAdaptation {
            increase: 1.3,
            decrease: 0.8,
            smoothing: 0.0,
            ..StepSizeAdaptation::default()
        }),
    };
    let betas = AnnealingSchedule::Linear.betas(12).unwrap();
    let reversed: Vec<f64> = betas.iter().rev().copied().collect();
    let start = |seed| {
        SeededNoise::new(seed)
            .standard_normal(&(3, 4, D).into(), DType::F64, &Device::Cpu)
            .unwrap()
    };
    let run = |betas: &[f64], plan: StepSizePlan, seed: u64| {
        anneal(
            &path,
            &start(seed),
            betas,
            &hmc,
            plan,
            &mut SeededNoise::new(seed),
        )
        .unwrap()
        .step_trace
    };
    let online: Vec<_> = [1, 2]
        .map(|seed| run(&betas, StepSizePlan::Online, seed))
        .into();
    assert_ne!(online[0], online[1], "online adaptation follows the chains");
    let frozen = FrozenStepSizes::from_trace(&online[0], 3).unwrap();
    let expected: Vec<Vec<f64>> = (0..online[0].len()).map(|j| frozen.at(j)).collect();
    for seed in [1, 2, 3] {
        assert_eq!(run(&betas, StepSizePlan::Frozen(&frozen), seed), expected);
        assert_eq!(
            run(&reversed, StepSizePlan::Frozen(&frozen), seed),
            expected
        );
    }
    // Frozen sizes for another run shape are refused.
    let short = AnnealingSchedule::Linear.betas(5).unwrap();
    let err = anneal(
        &path,
        &start(1),
        &short,
        &hmc,
        StepSizePlan::Frozen(&frozen),
        &mut SeededNoise::new(1),
    )
    .unwrap_err();
    assert!(err.to_string().contains("frozen step sizes"), "{err}");
    // The online heuristic is named as such in the report.
    let r = ais_log_likelihood(
        &plain,
        &model,
        &x,
        &exaggerated(AisStart::Encoder, 6, StepSizeTuning::Online),
        &mut SeededNoise::new(5),
        &mut (),
    )
    .unwrap();
    assert!(
        r.step_size_tuning.contains("heuristic"),
        "{}",
        r.step_size_tuning
    );
}
