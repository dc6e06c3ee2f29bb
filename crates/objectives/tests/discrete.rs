//! Discrete latents and their gradient estimators, checked against exact values obtained by
//! enumerating every latent (and, for sleep-φ, every data) configuration of a small sigmoid
//! belief network: 4 binary pixels, two stochastic layers of 2 binary units (16 latent
//! configurations), linear conditionals, f64.
//!
//! Tolerance policy: an unbiased estimator's mean over `R` independent batch-averaged
//! estimates must lie within 4.5 standard errors (plus 1e-9) of the exact gradient in every
//! coordinate; biased or consistent estimators get the tolerance stated at their test.
#![allow(clippy::unwrap_used)]

use candle::{D, DType, Device, Tensor, Var};
use vaekit_core::{SeededNoise, log_sum_exp};
use vaekit_distributions::{Distribution, RelaxedBernoulli, RelaxedOneHotCategorical};
use vaekit_nets::{ParamStore, Pass};
use vaekit_objectives::{
    DiscreteConfig, DiscreteDecoder, DiscreteEncoder, EstimatorState, EvalContext, Evaluation,
    GenerativeModel, InferenceNetwork, LatentUnits, Loss, Objective, ObjectiveConfig,
    ScoreBaseline, TemperatureSchedule,
};

const PIXELS: usize = 4;

/// Variables with their names.
type Named = Vec<(String, Var)>;

struct Model {
    store: ParamStore,
    q: DiscreteEncoder,
    p: DiscreteDecoder,
}

impl Model {
    fn new(config: &DiscreteConfig, seed: u64) -> Self {
        let store = ParamStore::new(seed);
        let vb = store.var_builder(DType::F64, &Device::Cpu);
        let q = DiscreteEncoder::new(config, vb.pp("encoder")).unwrap();
        let p = DiscreteDecoder::new(config, DType::F64, vb.pp("decoder")).unwrap();
        Self { store, q, p }
    }

    fn sbn(baseline: bool) -> Self {
        let mut config = DiscreteConfig::sigmoid_belief_net(PIXELS, &[2, 2]);
        config.baseline_hidden = baseline.then_some(16);
        Self::new(&config, 7)
    }

    /// `(name, var)` of the model and of the inference network (without the baseline).
    fn groups(&self) -> (Named, Named) {
        let all = self.store.trainable();
        let model = all
            .iter()
            .filter(|(n, _)| n.starts_with("decoder."))
            .cloned()
            .collect();
        let inference = all
            .iter()
            .filter(|(n, _)| n.starts_with("encoder.") && !n.contains("baseline"))
            .cloned()
            .collect();
        (model, inference)
    }

    /// One evaluation of `objective` on `x` at epoch 0.5 (the evaluation passes ignore it).
    fn run(
        &self,
        objective: Objective,
        state: &mut EstimatorState,
        x: &Tensor,
        noise: &mut SeededNoise,
        pass: Pass,
    ) -> candle::Result<Evaluation> {
        // A loss carrying the caller's estimator statistics, returned to it afterwards.
        let mut loss = Loss::new(objective.into());
        loss.set_state(*state);
        let ctx = EvalContext::new(&self.q, &self.p, x, noise);
        let eval = loss.compute(ctx.with_pass(pass).at_epoch(0.5));
        *state = loss.state();
        eval
    }

    fn vars(&self) -> Vec<Var> {
        let (m, i) = self.groups();
        m.into_iter().chain(i).map(|(_, v)| v).collect()
    }
}

/// Every `n`-bit pattern, `[2^n, n]`.
fn patterns(n: usize) -> Tensor {
    let rows: Vec<f64> = (0..1usize << n)
        .flat_map(|i| (0..n).map(move |b| ((i >> b) & 1) as f64))
        .collect();
    Tensor::from_vec(rows, (1 << n, n), &Device::Cpu).unwrap()
}

/// The data: all 16 pixel patterns, each `copies` times, `[16·copies, 4]`.
fn data(copies: usize) -> Tensor {
    let x = patterns(PIXELS);
    Tensor::cat(&vec![x; copies], 0).unwrap()
}

/// `log q(z|x)` and `log p(x, z)` of every latent configuration for every pattern,
/// `[16, 16]` each, differentiable.
fn enumerate(m: &Model) -> (Tensor, Tensor) {
    let x = patterns(PIXELS);
    let z = patterns(4)
        .unsqueeze(0)
        .unwrap()
        .repeat((16, 1, 1))
        .unwrap(); // [16 x, 16 z, 4]
    let log_q = m.q.log_prob(&x, &z, Pass::Eval).unwrap();
    let log_p = GenerativeModel::log_prob(&m.p, &x, &z, Pass::Eval).unwrap();
    (log_q, log_p)
}

/// Gradients of a scalar with respect to `vars`, flattened into one vector.
fn flat_grad(loss: &Tensor, vars: &[Var]) -> Vec<f64> {
    let g = loss.backward().unwrap();
    vars.iter()
        .flat_map(|v| match g.get(v.as_tensor()) {
            Some(t) => t.flatten_all().unwrap().to_vec1::<f64>().unwrap(),
            None => vec![0.0; v.elem_count()],
        })
        .collect()
}

/// The exact ELBO averaged over the 16 patterns.
fn exact_elbo(m: &Model) -> Tensor {
    let (log_q, log_p) = enumerate(m);
    let w = (log_p - &log_q).unwrap();
    (log_q.exp().unwrap() * w)
        .unwrap()
        .sum(1)
        .unwrap()
        .mean_all()
        .unwrap()
}

/// The exact IWAE bound with 2 samples averaged over the 16 patterns.
fn exact_iwae2(m: &Model) -> Tensor {
    let (log_q, log_p) = enumerate(m);
    let lw = (log_p - &log_q).unwrap(); // [16, 16]
    let (a, b) = (lw.unsqueeze(2).unwrap(), lw.unsqueeze(1).unwrap());
    let pair = log_sum_exp(
        &Tensor::stack(
            &[
                a.broadcast_as((16, 16, 16)).unwrap(),
                b.broadcast_as((16, 16, 16)).unwrap(),
            ],
            3,
        )
        .unwrap(),
        3,
        false,
    )
    .unwrap()
    .affine(1.0, -(2f64.ln()))
    .unwrap();
    let lq_pair = log_q
        .unsqueeze(2)
        .unwrap()
        .broadcast_add(&log_q.unsqueeze(1).unwrap())
        .unwrap();
    (lq_pair.exp().unwrap() * pair)
        .unwrap()
        .sum((1, 2))
        .unwrap()
        .mean_all()
        .unwrap()
}

/// The exact IWAE bound with 3 samples averaged over the 16 patterns (16³ triples each).
fn exact_iwae3(m: &Model) -> Tensor {
    let (log_q, log_p) = enumerate(m);
    let lw = (log_p - &log_q).unwrap(); // [16, 16]
    let shape = (16, 16, 16, 16);
    let axis = |t: &Tensor, i: usize| -> Tensor {
        let mut dims = vec![16, 1, 1, 1];
        dims[i + 1] = 16;
        t.reshape(dims).unwrap().broadcast_as(shape).unwrap()
    };
    let stacked = Tensor::stack(&[axis(&lw, 0), axis(&lw, 1), axis(&lw, 2)], 4).unwrap();
    let bound = log_sum_exp(&stacked, 4, false)
        .unwrap()
        .affine(1.0, -(3f64.ln()))
        .unwrap();
    let lq = ((axis(&log_q, 0) + axis(&log_q, 1)).unwrap() + axis(&log_q, 2)).unwrap();
    (lq.exp().unwrap() * bound)
        .unwrap()
        .sum((1, 2, 3))
        .unwrap()
        .mean_all()
        .unwrap()
}

/// Mean and standard error, per coordinate, of the loss gradients of `repeats` evaluations
/// (each a batch average), with the sign flipped so that it estimates the bound's gradient.
fn estimate(
    m: &Model,
    objective: Objective,
    state: &mut EstimatorState,
    repeats: usize,
    copies: usize,
    seed: u64,
) -> (Vec<f64>, Vec<f64>) {
    let config = objective;
    let x = data(copies);
    let vars = m.vars();
    let mut noise = SeededNoise::new(seed);
    let draws: Vec<Vec<f64>> = (0..repeats)
        .map(|_| {
            let e = m.run(config, state, &x, &mut noise, Pass::Eval).unwrap();
            let (model, inference) = m.groups();
            let mv: Vec<Var> = model.into_iter().map(|(_, v)| v).collect();
            let iv: Vec<Var> = inference.into_iter().map(|(_, v)| v).collect();
            e.gradients(&mv, &iv)
                .unwrap()
                .iter()
                .flat_map(|g| g.flatten_all().unwrap().to_vec1::<f64>().unwrap())
                .map(|g| -g)
                .collect()
        })
        .collect();
    assert_eq!(
        draws[0].len(),
        vars.iter().map(|v| v.elem_count()).sum::<usize>()
    );
    moments(&draws)
}

fn moments(draws: &[Vec<f64>]) -> (Vec<f64>, Vec<f64>) {
    let r = draws.len() as f64;
    let n = draws[0].len();
    let mean: Vec<f64> = (0..n)
        .map(|j| draws.iter().map(|d| d[j]).sum::<f64>() / r)
        .collect();
    let se = (0..n)
        .map(|j| {
            let var = draws.iter().map(|d| (d[j] - mean[j]).powi(2)).sum::<f64>() / (r - 1.0);
            (var / r).sqrt()
        })
        .collect();
    (mean, se)
}

fn assert_unbiased(name: &str, mean: &[f64], se: &[f64], exact: &[f64]) {
    let mut worst = 0.0f64;
    for (j, ((m, s), e)) in mean.iter().zip(se).zip(exact).enumerate() {
        let z = (m - e).abs() / (s + 1e-9);
        worst = worst.max(z);
        assert!(
            (m - e).abs() <= 4.5 * s + 1e-9,
            "{name}: coordinate {j}: estimate {m:.5} ± {s:.5}, exact {e:.5}"
        );
    }
    assert!(
        exact.iter().any(|e| e.abs() > 1e-3),
        "{name}: trivial exact gradient"
    );
    eprintln!(
        "{name}: worst |z| = {worst:.2} over {} coordinates",
        mean.len()
    );
}

#[test]
fn reinforce_is_unbiased_for_the_elbo_gradient() {
    let m = Model::sbn(false);
    let exact = flat_grad(&exact_elbo(&m), &m.vars());
    let objective = Objective::Reinforce {
        num_samples: 1,
        baseline: ScoreBaseline::default(),
    };
    let (mean, se) = estimate(&m, objective, &mut EstimatorState::default(), 40, 250, 1);
    assert_unbiased("REINFORCE", &mean, &se, &exact);
}

#[test]
fn nvil_is_unbiased_up_to_its_variance_normalisation() {
    let m = Model::sbn(true);
    let exact = flat_grad(&exact_elbo(&m), &m.vars());
    let objective = Objective::Reinforce {
        num_samples: 1,
        baseline: ScoreBaseline::nvil(),
    };
    // Fix the running statistics at a deliberately wrong centre and a scale of 3: the
    // baselines must not bias the estimate, and normalisation divides the inference
    // network's gradient by exactly the scale.
    let mut state = EstimatorState {
        signal_mean: -3.0,
        signal_variance: 9.0,
        updates: 10,
    };
    let (mean, se) = estimate(&m, objective, &mut state, 40, 250, 2);
    let n_model: usize = m.groups().0.iter().map(|(_, v)| v.elem_count()).sum();
    let rescale = |v: &[f64]| -> Vec<f64> {
        v.iter()
            .enumerate()
            .map(|(j, g)| if j < n_model { *g } else { g * 3.0 })
            .collect()
    };
    assert_unbiased("NVIL", &rescale(&mean), &rescale(&se), &exact);
}

#[test]
fn vimco_is_unbiased_for_the_iwae_gradient() {
    let m = Model::sbn(false);
    let exact = flat_grad(&exact_iwae2(&m), &m.vars());
    let (mean, se) = estimate(
        &m,
        Objective::Vimco { num_samples: 2 },
        &mut EstimatorState::default(),
        40,
        250,
        3,
    );
    assert_unbiased("VIMCO", &mean, &se, &exact);
}

#[test]
fn vimco_with_three_samples_is_unbiased() {
    // With K = 3 the geometric mean of the two other weights replaces each weight, which
    // K = 2 cannot distinguish from using the other weight alone.
    let m = Model::sbn(false);
    let exact = flat_grad(&exact_iwae3(&m), &m.vars());
    let (mean, se) = estimate(
        &m,
        Objective::Vimco { num_samples: 3 },
        &mut EstimatorState::default(),
        40,
        250,
        16,
    );
    assert_unbiased("VIMCO K=3", &mean, &se, &exact);
}

#[test]
fn nvil_training_pass_tracks_the_signal_after_the_learned_baseline() {
    let m = Model::sbn(true);
    let config = Objective::Reinforce {
        num_samples: 2,
        baseline: ScoreBaseline::nvil(),
    };
    let x = data(3);
    let mut state = EstimatorState::default();
    let e = m
        .run(
            config,
            &mut state,
            &x,
            &mut SeededNoise::new(17),
            Pass::Train,
        )
        .unwrap();
    let b = m.q.baseline(&x, Pass::Eval).unwrap().unwrap();
    let residual = e
        .log_weights
        .broadcast_sub(&b.unsqueeze(1).unwrap())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let n = residual.len() as f64;
    let mean = residual.iter().sum::<f64>() / n;
    let var = residual.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / n;
    assert_eq!(state.updates, 1);
    assert!((state.signal_mean - mean).abs() < 1e-9 * mean.abs());
    assert!((state.signal_variance - var).abs() < 1e-9 * var);
    // An evaluation pass leaves the statistics alone; a bad decay is refused.
    let before = state;
    m.run(
        config,
        &mut state,
        &x,
        &mut SeededNoise::new(18),
        Pass::Eval,
    )
    .unwrap();
    assert_eq!(state, before);
    let bad = Objective::Reinforce {
        num_samples: 1,
        baseline: ScoreBaseline {
            moving_average: Some(1.0),
            ..ScoreBaseline::nvil()
        },
    };
    assert!(
        m.run(bad, &mut state, &x, &mut SeededNoise::new(19), Pass::Train)
            .is_err()
    );
}

#[test]
fn rws_wake_gradients_approach_the_exact_ones_as_k_grows() {
    // Wake-θ is a self-normalised estimate of ∇θ log p(x), wake-φ of
    // -∇φ KL(p(z|x) || q(z|x)); both are consistent in K (bias O(1/K)).
    let m = Model::sbn(false);
    let (model, inference) = m.groups();
    let mv: Vec<Var> = model.iter().map(|(_, v)| v.clone()).collect();
    let iv: Vec<Var> = inference.iter().map(|(_, v)| v.clone()).collect();
    let (log_q, log_p) = enumerate(&m);
    let log_px = log_sum_exp(&log_p, 1, true).unwrap();
    let exact_model = flat_grad(&log_px.mean_all().unwrap(), &mv);
    let posterior = log_p
        .broadcast_sub(&log_px)
        .unwrap()
        .exp()
        .unwrap()
        .detach();
    let wake_phi = (posterior * &log_q)
        .unwrap()
        .sum(1)
        .unwrap()
        .mean_all()
        .unwrap();
    let exact_inference = flat_grad(&wake_phi, &iv);
    let exact: Vec<f64> = exact_model.into_iter().chain(exact_inference).collect();
    let (mean, se) = estimate(
        &m,
        Objective::Rws {
            num_samples: 200,
            wake_fraction: 1.0,
        },
        &mut EstimatorState::default(),
        10,
        20,
        4,
    );
    let scale = exact.iter().fold(0.0f64, |a, e| a.max(e.abs()));
    for (j, ((m, s), e)) in mean.iter().zip(&se).zip(&exact).enumerate() {
        assert!(
            (m - e).abs() <= 4.5 * s + 0.02 * scale,
            "RWS coordinate {j}: {m:.5} ± {s:.5} vs {e:.5}"
        );
    }
}

#[test]
fn rws_sleep_is_unbiased_for_the_expected_log_q_under_the_model() {
    let m = Model::sbn(false);
    let (_, inference) = m.groups();
    let iv: Vec<Var> = inference.iter().map(|(_, v)| v.clone()).collect();
    let (log_q, log_p) = enumerate(&m);
    let joint = log_p.exp().unwrap().detach(); // p(x, z) over all 16 x 16 configurations
    let total = joint.sum_all().unwrap().to_scalar::<f64>().unwrap();
    assert!((total - 1.0).abs() < 1e-12, "p(x, z) sums to {total}");
    let exact = flat_grad(&(joint * log_q).unwrap().sum_all().unwrap(), &iv);
    let n_model: usize = m.groups().0.iter().map(|(_, v)| v.elem_count()).sum();
    let (mean, se) = estimate(
        &m,
        Objective::Rws {
            num_samples: 2,
            wake_fraction: 0.0,
        },
        &mut EstimatorState::default(),
        40,
        250,
        5,
    );
    assert_unbiased("sleep-φ", &mean[n_model..], &se[n_model..], &exact);
}

#[test]
fn rws_losses_reach_only_their_own_parameters() {
    let m = Model::sbn(false);
    let config = Objective::Rws {
        num_samples: 5,
        wake_fraction: 0.5,
    };
    let e = m
        .run(
            config,
            &mut EstimatorState::default(),
            &data(2),
            &mut SeededNoise::new(6),
            Pass::Train,
        )
        .unwrap();
    let (model, inference) = m.groups();
    let from_model = e.loss.backward().unwrap();
    let from_inference = e.inference_loss.as_ref().unwrap().backward().unwrap();
    for (name, v) in &model {
        assert!(
            from_inference.get(v.as_tensor()).is_none(),
            "φ-loss reached {name}"
        );
        let g = from_model.get(v.as_tensor()).unwrap();
        assert!(
            g.abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
                > 0.0
        );
    }
    for (name, v) in &inference {
        assert!(
            from_model.get(v.as_tensor()).is_none(),
            "θ-loss reached {name}"
        );
        let g = from_inference.get(v.as_tensor()).unwrap();
        assert!(
            g.abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap()
                > 0.0
        );
    }
}

/// `trace(Cov) / |mean|²` of the inference network's gradient over `repeats` single-batch
/// estimates (invariant to NVIL's constant rescaling).
fn relative_variance(m: &Model, objective: Objective, state: &mut EstimatorState) -> f64 {
    let n_model: usize = m.groups().0.iter().map(|(_, v)| v.elem_count()).sum();
    let (mean, se) = estimate(m, objective, state, 200, 1, 8);
    let mean = &mean[n_model..];
    let var: f64 = se[n_model..].iter().map(|s| s * s * 200.0).sum();
    var / mean.iter().map(|g| g * g).sum::<f64>()
}

#[test]
fn vimco_and_nvil_have_lower_variance_than_reinforce() {
    // NVIL: train its baseline network first (least squares on the centred signal), with
    // the running statistics updated as in training.
    let m = Model::sbn(true);
    let nvil = Objective::Reinforce {
        num_samples: 1,
        baseline: ScoreBaseline::nvil(),
    };
    let config = nvil;
    let baseline_vars: Vec<Var> = m
        .store
        .trainable()
        .into_iter()
        .filter(|(n, _)| n.contains("baseline"))
        .map(|(_, v)| v)
        .collect();
    assert!(!baseline_vars.is_empty());
    let mut state = EstimatorState::default();
    let mut noise = SeededNoise::new(9);
    let x = data(4);
    for _ in 0..400 {
        let e = m
            .run(config, &mut state, &x, &mut noise, Pass::Train)
            .unwrap();
        let g = e.loss.backward().unwrap();
        for v in &baseline_vars {
            let step = (g.get(v.as_tensor()).unwrap() * 0.05).unwrap();
            v.set(&(v.as_tensor() - step).unwrap()).unwrap();
        }
    }
    let plain = Objective::Reinforce {
        num_samples: 1,
        baseline: ScoreBaseline::default(),
    };
    let r_plain = relative_variance(&m, plain, &mut EstimatorState::default());
    let r_nvil = relative_variance(&m, nvil, &mut state);
    let plain5 = Objective::Reinforce {
        num_samples: 5,
        baseline: ScoreBaseline::default(),
    };
    let r_plain5 = relative_variance(&m, plain5, &mut EstimatorState::default());
    let r_vimco = relative_variance(
        &m,
        Objective::Vimco { num_samples: 5 },
        &mut EstimatorState::default(),
    );
    eprintln!(
        "relative variance: REINFORCE {r_plain:.3}, NVIL {r_nvil:.3}; K=5: REINFORCE {r_plain5:.3}, VIMCO {r_vimco:.3}"
    );
    assert!(
        r_nvil < 0.5 * r_plain,
        "NVIL {r_nvil} vs REINFORCE {r_plain}"
    );
    assert!(
        r_vimco < 0.5 * r_plain5,
        "VIMCO {r_vimco} vs REINFORCE {r_plain5}"
    );
}

#[test]
fn relaxed_densities_match_the_concrete_distributions() {
    let dev = Device::Cpu;
    let mut noise = SeededNoise::new(10);
    let tau = 0.7;
    // Binary units: the logistic density in logit space equals RelaxedBernoulli's density of
    // sigmoid(z) times the Jacobian sigmoid(z) sigmoid(-z).
    let units = LatentUnits::Bernoulli { units: 3 };
    let logits = Tensor::new(&[[0.3f64, -1.2, 2.0], [0.0, 4.0, -3.0]], &dev).unwrap();
    let z = units.relaxed_sample(&logits, tau, &mut noise).unwrap();
    let ours = units.relaxed_log_prob(&logits, &z, tau).unwrap();
    let y = units.relaxed_value(&z).unwrap();
    let reference = RelaxedBernoulli::new(tau, logits.clone()).unwrap();
    let log_jac = (vaekit_core::log_sigmoid(&z).unwrap()
        + vaekit_core::log_sigmoid(&z.neg().unwrap()).unwrap())
    .unwrap();
    let want = (reference.log_prob(&y).unwrap() + log_jac)
        .unwrap()
        .sum(D::Minus1)
        .unwrap();
    assert_close(&ours, &want, 1e-9);
    // Categorical: ExpConcrete = Concrete density of exp(y) times Π exp(y_k).
    let units = LatentUnits::Categorical {
        variables: 2,
        classes: 3,
    };
    let logits = Tensor::new(&[[0.5f64, -0.3, 1.0, 2.0, 0.0, -1.0]], &dev).unwrap();
    let z = units.relaxed_sample(&logits, tau, &mut noise).unwrap();
    let ours = units.relaxed_log_prob(&logits, &z, tau).unwrap();
    let reference = RelaxedOneHotCategorical::new(tau, logits.reshape((1, 2, 3)).unwrap()).unwrap();
    let z3 = z.reshape((1, 2, 3)).unwrap();
    let want = (reference.log_prob(&z3.exp().unwrap()).unwrap() + z3.sum(D::Minus1).unwrap())
        .unwrap()
        .sum(D::Minus1)
        .unwrap();
    assert_close(&ours, &want, 1e-9);
}

fn assert_close(a: &Tensor, b: &Tensor, tol: f64) {
    let a = a.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    let b = b.flatten_all().unwrap().to_vec1::<f64>().unwrap();
    for (x, y) in a.iter().zip(&b) {
        assert!((x - y).abs() <= tol * (1.0 + y.abs()), "{x} vs {y}");
    }
}

#[test]
fn straight_through_values_are_hard_with_a_relaxed_gradient() {
    let dev = Device::Cpu;
    let units = LatentUnits::Categorical {
        variables: 2,
        classes: 3,
    };
    let logits = Var::new(&[[0.5f64, -0.3, 1.0, 2.0, 0.0, -1.0]], &dev).unwrap();
    let z = units
        .relaxed_sample(logits.as_tensor(), 0.5, &mut SeededNoise::new(11))
        .unwrap();
    let st = units.straight_through(&z).unwrap();
    let v = st.to_vec2::<f64>().unwrap();
    for group in v[0].chunks(3) {
        assert_eq!(group.iter().sum::<f64>(), 1.0);
        assert!(group.iter().all(|&g| g == 0.0 || g == 1.0));
    }
    let weights = Tensor::new(&[[1.0f64, 2.0, 3.0, -1.0, 0.5, 4.0]], &dev).unwrap();
    let g = (st * weights)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let grad = g.get(logits.as_tensor()).unwrap();
    assert!(
        grad.abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
            > 0.0
    );
}

#[test]
fn every_estimator_reaches_every_parameter() {
    let concrete = |straight_through| Objective::Concrete {
        num_samples: 2,
        temperature: TemperatureSchedule::default(),
        straight_through,
    };
    let cases = [
        (
            Objective::Reinforce {
                num_samples: 1,
                baseline: ScoreBaseline::default(),
            },
            false,
        ),
        (
            Objective::Reinforce {
                num_samples: 1,
                baseline: ScoreBaseline::nvil(),
            },
            true,
        ),
        (Objective::Vimco { num_samples: 3 }, false),
        (
            Objective::Rws {
                num_samples: 3,
                wake_fraction: 0.5,
            },
            false,
        ),
        (concrete(false), false),
        (concrete(true), false),
    ];
    for categorical in [false, true] {
        for (objective, baseline) in cases {
            let mut config = if categorical {
                let mut c = DiscreteConfig::categorical_vae(PIXELS, 2, 3);
                c.hidden = vec![5];
                c
            } else {
                DiscreteConfig::sigmoid_belief_net(PIXELS, &[3, 2])
            };
            config.baseline_hidden = baseline.then_some(4);
            let m = Model::new(&config, 12);
            let e = m
                .run(
                    objective,
                    &mut EstimatorState::default(),
                    &data(2),
                    &mut SeededNoise::new(13),
                    Pass::Train,
                )
                .unwrap();
            assert!(e.is_finite(), "{objective:?}");
            let all = m.store.trainable();
            let (model, inference): (Vec<_>, Vec<_>) = all
                .iter()
                .cloned()
                .partition(|(n, _)| n.starts_with("decoder."));
            let mv: Vec<Var> = model.iter().map(|(_, v)| v.clone()).collect();
            let iv: Vec<Var> = inference.iter().map(|(_, v)| v.clone()).collect();
            let grads = e.gradients(&mv, &iv).unwrap();
            for ((name, _), g) in model.iter().chain(&inference).zip(&grads) {
                let norm = g
                    .sqr()
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .to_scalar::<f64>()
                    .unwrap();
                assert!(
                    norm.is_finite() && norm > 0.0,
                    "{objective:?} (categorical {categorical}): {name} got no gradient"
                );
            }
        }
    }
}

#[test]
fn pathwise_objectives_refuse_to_train_discrete_latents() {
    let m = Model::sbn(false);
    let config = ObjectiveConfig::default().objective;
    let err = m
        .run(
            config,
            &mut EstimatorState::default(),
            &data(1),
            &mut SeededNoise::new(14),
            Pass::Train,
        )
        .unwrap_err();
    assert!(err.to_string().contains("reparameterized"), "{err}");
    // Evaluation (values only) works: the ELBO with a Monte Carlo KL.
    let e = m
        .run(
            config,
            &mut EstimatorState::default(),
            &data(1),
            &mut SeededNoise::new(14),
            Pass::Eval,
        )
        .unwrap();
    assert!(e.bound.is_finite() && e.bound < 0.0);
    let vimco = Objective::Vimco { num_samples: 1 };
    assert!(
        m.run(
            vimco,
            &mut EstimatorState::default(),
            &data(1),
            &mut SeededNoise::new(14),
            Pass::Train
        )
        .is_err()
    );
}

#[test]
fn prior_samples_follow_the_prior_and_log_probs_normalise() {
    let m = Model::sbn(false);
    // Σ_z p(z) = 1 over the 16 configurations.
    let lp =
        m.p.prior(Pass::Eval)
            .unwrap()
            .log_prob(&patterns(4))
            .unwrap();
    let total = lp
        .exp()
        .unwrap()
        .sum_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap();
    assert!((total - 1.0).abs() < 1e-12, "{total}");
    // Ancestral draws have the right configuration frequencies (chi-square, 15 dof;
    // 40 is the 0.9995 quantile).
    let n = 20000;
    let draws =
        m.p.prior(Pass::Eval)
            .unwrap()
            .sample(&[n], &mut SeededNoise::new(15))
            .unwrap();
    let rows = draws.to_vec2::<f64>().unwrap();
    let mut counts = [0f64; 16];
    for r in rows {
        let i: usize = r.iter().enumerate().map(|(b, v)| (*v as usize) << b).sum();
        counts[i] += 1.0;
    }
    let probs = lp.exp().unwrap().to_vec1::<f64>().unwrap();
    let chi2: f64 = counts
        .iter()
        .zip(&probs)
        .map(|(c, p)| (c - n as f64 * p).powi(2) / (n as f64 * p))
        .sum();
    assert!(chi2 < 40.0, "chi-square {chi2}");
    // The posterior normalises too, for every pattern.
    let (log_q, _) = enumerate(&m);
    for s in log_q
        .exp()
        .unwrap()
        .sum(1)
        .unwrap()
        .to_vec1::<f64>()
        .unwrap()
    {
        assert!((s - 1.0).abs() < 1e-12);
    }
}
