//! Objectives on a linear-Gaussian model whose `log p(x)` is exact (f64):
//! the exact posterior makes every log-weight equal `log p(x)`; `ELBO <= IWAE_5 <= IWAE_50 <=
//! log p(x)`; importance sampling with 5000 samples converges to `log p(x)`; analytic and Monte
//! Carlo KL agree; DReG and the standard IWAE gradient agree in expectation (and DReG's model
//! gradient is the standard one, sample for sample); warm-up and free bits do what they say.
#![allow(clippy::unwrap_used)]

use candle::{D, DType, Device, Shape, Tensor, Var};
use vaekit_core::{NoiseSource, SeededNoise, log_mean_exp};
use vaekit_distributions::KlMethod;
use vaekit_flows::{FlowChain, IafVariant, MadeConfig, iaf_chain};
use vaekit_nets::{
    DenseConfig, Likelihood, Normalization, ParamStore, Pass, dense_decoder, dense_encoder,
};
use vaekit_objectives::*;

const B: usize = 40;

fn t2(rows: &[[f64; 2]]) -> Tensor {
    Tensor::from_vec(rows.concat(), (rows.len(), 2), &Device::Cpu).unwrap()
}

/// A 2-latent, 4-observed model with orthogonal loading columns (so the exact posterior is
/// diagonal) and data drawn from it.
fn model_and_data() -> (LinearGaussian, Tensor) {
    let w = t2(&[[1.0, 0.0], [0.5, 0.0], [0.0, 2.0], [0.0, -1.0]]);
    let b = Tensor::new(&[0.1, -0.2, 0.3, 0.0], &Device::Cpu).unwrap();
    let model = LinearGaussian::new(w, b, 0.7).unwrap();
    let (x, _) = model
        .sample(B, &mut SeededNoise::new(1), Pass::Eval)
        .unwrap();
    (model, x)
}

/// The exact posterior as a linear encoder, optionally perturbed.
fn encoder(model: &LinearGaussian, x: &Tensor, perturb: f64) -> LinearEncoder {
    let exact = model.posterior_encoder().unwrap();
    let _ = x;
    let noise = SeededNoise::new(9)
        .standard_normal(&Shape::from((2, 4)), DType::F64, &Device::Cpu)
        .unwrap();
    LinearEncoder {
        a: (exact.a + (noise * perturb).unwrap()).unwrap(),
        c: exact.c,
        log_scale: (exact.log_scale + perturb).unwrap(),
    }
}

fn elbo_mc(s: usize) -> ObjectiveConfig {
    ObjectiveConfig {
        objective: Objective::Elbo {
            num_samples: s,
            analytic_kl: false,
        },
        warmup: None,
        free_bits: None,
    }
}

#[test]
fn exact_posterior_gives_log_p_in_every_sample() {
    let (model, x) = model_and_data();
    let q = EncoderFlow::new(encoder(&model, &x, 0.0), FlowChain::default());
    let eval = evaluate(
        &elbo_mc(3),
        EvalContext::new(&q, &model, &x, &mut SeededNoise::new(2)).with_pass(Pass::Train),
    )
    .and_then(Evaluation::checked)
    .unwrap();
    let exact = model.log_marginal(&x).unwrap().unsqueeze(1).unwrap();
    let diff = eval
        .log_weights
        .broadcast_sub(&exact)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    assert!(diff < 1e-9, "log w - log p(x) = {diff}");
}

#[test]
fn bounds_are_ordered_and_importance_sampling_converges() {
    let (model, x) = model_and_data();
    let q = EncoderFlow::new(encoder(&model, &x, 0.4), FlowChain::default());
    let log_p = model
        .log_marginal(&x)
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    // One big draw: log-weights [B, 5000]; bound_k = mean over chunks of log-mean-exp.
    let s = 5000;
    let lw = evaluate(
        &elbo_mc(s),
        EvalContext::new(&q, &model, &x, &mut SeededNoise::new(3)),
    )
    .and_then(Evaluation::checked)
    .unwrap()
    .log_weights;
    let iwae = |k: usize| -> f64 {
        let chunks = lw.reshape((B, s / k, k)).unwrap();
        log_mean_exp(&chunks, D::Minus1, false)
            .unwrap()
            .mean_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    };
    let (elbo, i5, i50, i500, is) = (iwae(1), iwae(5), iwae(50), iwae(500), iwae(5000));
    assert!(
        elbo < i5 - 0.05 && i5 < i50 - 0.01 && i50 < i500 && i500 < is && is < log_p,
        "ELBO {elbo}, IWAE5 {i5}, IWAE50 {i50}, IWAE500 {i500}, IS-5000 {is}, log p {log_p}"
    );
    // With this deliberately poor proposal the gap still shrinks steadily with K...
    assert!(log_p - is < 0.1, "IS-5000 {is} vs exact {log_p}");
    // ...and with a reasonable one importance sampling is within 0.01 nats at K = 5000.
    let q = EncoderFlow::new(encoder(&model, &x, 0.15), FlowChain::default());
    let lw = evaluate(
        &elbo_mc(s),
        EvalContext::new(&q, &model, &x, &mut SeededNoise::new(4)),
    )
    .and_then(Evaluation::checked)
    .unwrap()
    .log_weights;
    let is = log_mean_exp(&lw, D::Minus1, false)
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    assert!((is - log_p).abs() < 0.01, "IS-5000 {is} vs exact {log_p}");
}

#[test]
fn analytic_and_monte_carlo_kl_agree_and_the_method_is_reported() {
    let (model, x) = model_and_data();
    let q = EncoderFlow::new(encoder(&model, &x, 0.4), FlowChain::default());
    let analytic = ObjectiveConfig {
        objective: Objective::Elbo {
            num_samples: 1,
            analytic_kl: true,
        },
        ..elbo_mc(1)
    };
    let a = evaluate(
        &analytic,
        EvalContext::new(&q, &model, &x, &mut SeededNoise::new(4)),
    )
    .and_then(Evaluation::checked)
    .unwrap();
    assert_eq!(a.kl_method, KlMethod::Analytic);
    let m = evaluate(
        &elbo_mc(20_000),
        EvalContext::new(&q, &model, &x, &mut SeededNoise::new(5)),
    )
    .and_then(Evaluation::checked)
    .unwrap();
    assert_eq!(
        m.kl_method,
        KlMethod::MonteCarlo {
            num_samples: 20_000
        }
    );
    assert!(
        (a.kl - m.kl).abs() < 0.02,
        "analytic KL {}, Monte Carlo {}",
        a.kl,
        m.kl
    );
    // A flow posterior has no closed-form KL: Monte Carlo even when analytic is asked for.
    let store = ParamStore::new(1);
    let made = MadeConfig {
        dim: 2,
        hidden: vec![4],
        context_dim: 0,
        norm: Normalization::None,
        ..MadeConfig::default()
    };
    let flow = iaf_chain(
        2,
        &made,
        IafVariant::default(),
        store.var_builder(DType::F64, &Device::Cpu),
    )
    .unwrap();
    let qf = EncoderFlow::new(encoder(&model, &x, 0.4), flow);
    let f = evaluate(
        &analytic,
        EvalContext::new(&qf, &model, &x, &mut SeededNoise::new(6)),
    )
    .and_then(Evaluation::checked)
    .unwrap();
    assert_eq!(f.kl_method, KlMethod::MonteCarlo { num_samples: 1 });
    let dreg = ObjectiveConfig {
        objective: Objective::Iwae {
            num_samples: 3,
            gradient: IwaeGradient::Dreg,
        },
        ..elbo_mc(1)
    };
    let err = evaluate(
        &dreg,
        EvalContext::new(&qf, &model, &x, &mut SeededNoise::new(6)),
    )
    .and_then(Evaluation::checked)
    .unwrap_err();
    assert!(err.to_string().contains("DReG needs a posterior"), "{err}");
}

/// Encoder parameters as variables.
fn var_encoder(model: &LinearGaussian, x: &Tensor) -> (LinearEncoder, Vec<Var>) {
    let e = encoder(model, x, 0.3);
    let vars = vec![
        Var::from_tensor(&e.a).unwrap(),
        Var::from_tensor(&e.c).unwrap(),
        Var::from_tensor(&e.log_scale).unwrap(),
    ];
    let enc = LinearEncoder {
        a: vars[0].as_tensor().clone(),
        c: vars[1].as_tensor().clone(),
        log_scale: vars[2].as_tensor().clone(),
    };
    (enc, vars)
}

fn flat(grads: &[Tensor]) -> Vec<f64> {
    grads
        .iter()
        .flat_map(|g| g.flatten_all().unwrap().to_vec1::<f64>().unwrap())
        .collect()
}

#[test]
fn dreg_and_standard_iwae_gradients_agree_in_expectation() {
    let (model, x) = model_and_data();
    let (enc, vars) = var_encoder(&model, &x);
    let w = Var::from_tensor(&t2(&[[1.0, 0.0], [0.5, 0.0], [0.0, 2.0], [0.0, -1.0]])).unwrap();
    let model_v = LinearGaussian::new(
        w.as_tensor().clone(),
        Tensor::new(&[0.1, -0.2, 0.3, 0.0], &Device::Cpu).unwrap(),
        0.7,
    )
    .unwrap();
    let q = EncoderFlow::new(enc, FlowChain::default());
    let k = 10;
    let cfg = |gradient| ObjectiveConfig {
        objective: Objective::Iwae {
            num_samples: k,
            gradient,
        },
        ..elbo_mc(1)
    };
    let (mut std_runs, mut dreg_runs) = (Vec::new(), Vec::new());
    let model_vars = vec![w.clone()];
    for r in 0..300u64 {
        let e_std = evaluate(
            &cfg(IwaeGradient::Standard),
            EvalContext::new(&q, &model_v, &x, &mut SeededNoise::new(1000 + r))
                .with_pass(Pass::Train),
        )
        .and_then(Evaluation::checked)
        .unwrap();
        let e_dreg = evaluate(
            &cfg(IwaeGradient::Dreg),
            EvalContext::new(&q, &model_v, &x, &mut SeededNoise::new(1000 + r))
                .with_pass(Pass::Train),
        )
        .and_then(Evaluation::checked)
        .unwrap();
        let g_std = e_std.gradients(&model_vars, &vars).unwrap();
        let g_dreg = e_dreg.gradients(&model_vars, &vars).unwrap();
        // Same samples: the model gradient of DReG is the standard IWAE one exactly.
        let (ms, md) = (flat(&g_std[..1]), flat(&g_dreg[..1]));
        for (a, b) in ms.iter().zip(&md) {
            assert!(
                (a - b).abs() < 1e-9 * a.abs().max(1.0),
                "model gradients differ: {a} vs {b}"
            );
        }
        std_runs.push(flat(&g_std[1..]));
        dreg_runs.push(flat(&g_dreg[1..]));
    }
    let n = std_runs.len() as f64;
    let stats = |runs: &Vec<Vec<f64>>, i: usize| {
        let m = runs.iter().map(|r| r[i]).sum::<f64>() / n;
        let v = runs.iter().map(|r| (r[i] - m).powi(2)).sum::<f64>() / (n - 1.0);
        (m, v)
    };
    let (mut var_std, mut var_dreg) = (0.0, 0.0);
    for i in 0..std_runs[0].len() {
        let ((ms, vs), (md, vd)) = (stats(&std_runs, i), stats(&dreg_runs, i));
        let se = ((vs + vd) / n).sqrt();
        assert!(
            (ms - md).abs() < 5.0 * se + 1e-9,
            "inference gradient {i}: standard {ms} ± {}, DReG {md} ± {}",
            (vs / n).sqrt(),
            (vd / n).sqrt()
        );
        var_std += vs;
        var_dreg += vd;
    }
    assert!(
        var_dreg < var_std,
        "DReG should have lower variance: {var_dreg} vs {var_std}"
    );
}

#[test]
fn warmup_free_bits_and_the_summary() {
    let (model, x) = model_and_data();
    let q = EncoderFlow::new(encoder(&model, &x, 0.4), FlowChain::default());
    let base = ObjectiveConfig {
        objective: Objective::Elbo {
            num_samples: 1,
            analytic_kl: true,
        },
        warmup: Some(KlWarmup { epochs: 10.0 }),
        free_bits: None,
    };
    let mut loss = Loss::new(base);
    let mut bounds = Vec::new();
    // At epoch 0 the KL has weight 0; at 5 half; from 10 on, full.
    for (epoch, beta) in [(0.0, 0.0), (5.0, 0.5), (12.0, 1.0)] {
        let mut noise = SeededNoise::new(7);
        let ctx = EvalContext::new(&q, &model, &x, &mut noise).at_epoch(epoch);
        let e = loss.compute(ctx).and_then(Evaluation::checked).unwrap();
        let value = e.loss.to_scalar::<f64>().unwrap();
        assert!(
            (value - (-e.reconstruction + beta * e.kl)).abs() < 1e-9,
            "epoch {epoch}: loss {value}"
        );
        bounds.push(e.bound);
    }
    // The summary is one record of running means, whatever the number of calls.
    let summary = loss.take_summary();
    assert_eq!((summary.count, summary.epochs), (3, (0.0, 12.0)));
    let mean = bounds.iter().sum::<f64>() / 3.0;
    assert!(
        (summary.bound() - mean).abs() < 1e-9 * mean.abs(),
        "{summary:?}"
    );
    assert!(summary.mean_log_p().is_finite() && summary.mean_log_q().is_finite());
    assert_eq!(
        loss.summary().count,
        0,
        "taking the summary starts a new one"
    );
    // Free bits above every group's KL: the KL term is the floor, λ · D.
    let fb = ObjectiveConfig {
        free_bits: Some(FreeBits {
            nats_per_dim: 100.0,
            groups: 2,
        }),
        warmup: None,
        ..base
    };
    let e = evaluate(
        &fb,
        EvalContext::new(&q, &model, &x, &mut SeededNoise::new(7)),
    )
    .and_then(Evaluation::checked)
    .unwrap();
    assert!((e.loss.to_scalar::<f64>().unwrap() - (-e.reconstruction + 200.0)).abs() < 1e-9);
    // Free bits below every group's KL: no effect.
    let fb0 = ObjectiveConfig {
        free_bits: Some(FreeBits {
            nats_per_dim: 0.0,
            groups: 2,
        }),
        warmup: None,
        ..base
    };
    let e = evaluate(
        &fb0,
        EvalContext::new(&q, &model, &x, &mut SeededNoise::new(7)),
    )
    .and_then(Evaluation::checked)
    .unwrap();
    assert!((e.loss.to_scalar::<f64>().unwrap() - (-e.reconstruction + e.kl)).abs() < 1e-9);
}

/// The whole stack: dense encoder + IAF posterior + dense decoder, ELBO and IWAE: every
/// trainable parameter receives a finite, non-zero gradient.
#[test]
fn every_parameter_of_a_flow_vae_learns() {
    let store = ParamStore::new(3);
    let vb = store.var_builder(DType::F32, &Device::Cpu);
    let cfg = DenseConfig {
        input_dim: 16,
        hidden: vec![12],
        latent_dim: 4,
        context_dim: 6,
        ..DenseConfig::default()
    };
    let made = MadeConfig {
        dim: 4,
        hidden: vec![8],
        context_dim: 6,
        norm: Normalization::Weight,
        ..MadeConfig::default()
    };
    let q = EncoderFlow::new(
        dense_encoder(&cfg, vb.pp("encoder")).unwrap(),
        iaf_chain(2, &made, IafVariant::default(), vb.pp("flow")).unwrap(),
    );
    let p = DecoderModel::new(
        dense_decoder(&cfg, Likelihood::Bernoulli, vb.pp("decoder")).unwrap(),
        DType::F32,
        &Device::Cpu,
    )
    .unwrap();
    let x = SeededNoise::new(4)
        .uniform(&Shape::from((5, 16)), DType::F32, &Device::Cpu)
        .unwrap()
        .gt(0.5)
        .unwrap()
        .to_dtype(DType::F32)
        .unwrap();
    for objective in [
        Objective::Elbo {
            num_samples: 2,
            analytic_kl: true,
        },
        Objective::Iwae {
            num_samples: 4,
            gradient: IwaeGradient::Standard,
        },
    ] {
        let e = evaluate(
            &ObjectiveConfig {
                objective,
                warmup: None,
                free_bits: None,
            },
            EvalContext::new(&q, &p, &x, &mut SeededNoise::new(5)).with_pass(Pass::Train),
        )
        .and_then(Evaluation::checked)
        .unwrap();
        let grads = e.loss.backward().unwrap();
        for (name, var) in store.trainable() {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{name}: no gradient under {objective:?}"));
            let v = g.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert!(
                v.iter().all(|x| x.is_finite()) && v.iter().any(|x| *x != 0.0),
                "{name} under {objective:?}"
            );
        }
    }
}

/// The linear-Gaussian model with `log p(x|z)` set to −∞ for the first draw of the first
/// data point (a sample the likelihood rules out).
struct WithImpossibleDraw<'a>(&'a LinearGaussian);

impl GenerativeModel for WithImpossibleDraw<'_> {
    fn forward(
        &self,
        z: &Tensor,
        pass: Pass,
    ) -> candle::Result<Box<dyn vaekit_distributions::Distribution>> {
        self.0.forward(z, pass)
    }

    fn prior(&self, pass: Pass) -> candle::Result<vaekit_objectives::PriorRef<'_>> {
        self.0.prior(pass)
    }

    fn log_likelihood(&self, x: &Tensor, z: &Tensor, pass: Pass) -> candle::Result<Tensor> {
        let ll = self.0.log_likelihood(x, z, pass)?;
        let (b, s) = ll.dims2()?;
        let mut mask = vec![0.0f64; b * s];
        mask[0] = f64::NEG_INFINITY;
        let mask = Tensor::from_vec(mask, (b, s), ll.device())?.to_dtype(ll.dtype())?;
        ll + mask
    }
}

/// A log-weight of −∞ is a sample with no weight: DReG's losses and gradients stay finite
/// (not 0 · (−∞) = NaN), and its model gradient is still the standard IWAE one.
#[test]
fn dreg_ignores_a_sample_with_log_weight_minus_infinity() {
    let (model, x) = model_and_data();
    let (enc, vars) = var_encoder(&model, &x);
    let w = Var::from_tensor(&t2(&[[1.0, 0.0], [0.5, 0.0], [0.0, 2.0], [0.0, -1.0]])).unwrap();
    let model_v = LinearGaussian::new(
        w.as_tensor().clone(),
        Tensor::new(&[0.1, -0.2, 0.3, 0.0], &Device::Cpu).unwrap(),
        0.7,
    )
    .unwrap();
    let impossible = WithImpossibleDraw(&model_v);
    let q = EncoderFlow::new(enc, FlowChain::default());
    let cfg = |gradient| ObjectiveConfig {
        objective: Objective::Iwae {
            num_samples: 4,
            gradient,
        },
        ..elbo_mc(1)
    };
    let run = |gradient| {
        let e = evaluate(
            &cfg(gradient),
            EvalContext::new(&q, &impossible, &x, &mut SeededNoise::new(8)).with_pass(Pass::Train),
        )
        .and_then(Evaluation::checked)
        .unwrap();
        let lw = e.log_weights.to_vec2::<f64>().unwrap();
        assert_eq!(lw[0][0], f64::NEG_INFINITY);
        assert!(e.is_finite(), "{gradient:?}: loss {}", e.loss);
        e.gradients(std::slice::from_ref(&w), &vars).unwrap()
    };
    let standard = flat(&run(IwaeGradient::Standard));
    let dreg = flat(&run(IwaeGradient::Dreg));
    assert!(dreg.iter().all(|g| g.is_finite()), "{dreg:?}");
    for (a, b) in standard[..8].iter().zip(&dreg[..8]) {
        assert!(
            (a - b).abs() < 1e-9 * a.abs().max(1.0),
            "model gradients {a} vs {b}"
        );
    }
}
