//! Hierarchies with an IAF after every layer's Gaussian ([`LayerIaf`]), in both inference
//! orders, against references that do not use the flow's own log-determinant:
//! - along the sampling path, `log q` equals the change-of-variables density of the whole
//!   noise-to-latent map, `log N(ε) − log |det ∂z/∂ε|`, with the Jacobian taken by central
//!   differences and its determinant by elimination here;
//! - on the two-layer linear-Gaussian model whose `log p(x)` is exact ([`LinearHierarchy`]),
//!   the bounds are ordered and importance sampling converges to it;
//! - what the flow takes away (a density off the path, DReG's stopped density, closed-form
//!   KLs) is refused or falls back, and the configuration is checked.
#![allow(clippy::unwrap_used)]

mod common;

use candle::{DType, Device, Tensor};
use vaekit_core::{NoiseSource, SeededNoise};
use vaekit_nets::{ParamStore, Pass};
use vaekit_objectives::*;

use common::two_layer::{P, model};

/// The linear hierarchy's shape with two gated IAF steps per layer (MADE 4-4, a 3-wide
/// context) and the given inference order.
fn config(inference: HierarchyInference) -> HierarchyConfig {
    HierarchyConfig {
        inference,
        iaf: Some(LayerIaf::gated(2, vec![4, 4], 3)),
        ..LinearHierarchy::config(P, 2, 1)
    }
}

/// Every `encoder.layer*` / `encoder.head*` weight and bias set to moderate values
/// (`0.3 sin`, `0.1 cos` of the index), so the base Gaussians have scales near 1; the flows
/// keep their seeded initialisation.
fn moderate(store: &ParamStore) {
    for (name, var) in store.trainable() {
        let base = name.contains(".layer") || name.contains(".head") || name.contains(".up");
        if !name.starts_with("encoder.") || !base {
            continue;
        }
        let t = var.as_tensor();
        let n = t.elem_count();
        let scale = if name.ends_with("bias") { 0.1 } else { 0.3 };
        let v: Vec<f64> = (0..n)
            .map(|i| scale * (1.7 * i as f64 + 0.4).sin())
            .collect();
        let v = Tensor::new(v, &Device::Cpu)
            .unwrap()
            .reshape(t.dims())
            .unwrap();
        store.set(&name, &v).unwrap();
    }
}

/// The inference network of `config(inference)` over `p`, in f64, with moderate weights.
fn encoder(
    store: &ParamStore,
    p: &LinearHierarchy,
    inference: HierarchyInference,
) -> Box<dyn InferenceNetwork> {
    let vb = store.var_builder(DType::F64, &Device::Cpu).pp("encoder");
    let cfg = config(inference);
    let q: Box<dyn InferenceNetwork> = match inference {
        HierarchyInference::BottomUp => Box::new(HierarchicalEncoder::new(&cfg, vb).unwrap()),
        HierarchyInference::TopDown => {
            Box::new(TopDownEncoder::new(&cfg, vb, p.decoder()).unwrap())
        }
    };
    moderate(store);
    q
}

const ORDERS: [HierarchyInference; 2] = [HierarchyInference::BottomUp, HierarchyInference::TopDown];

/// `log |det m|` by elimination with partial pivoting.
fn log_abs_det(mut m: Vec<Vec<f64>>) -> f64 {
    let n = m.len();
    let mut acc = 0.0;
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))
            .unwrap();
        m.swap(col, pivot);
        acc += m[col][col].abs().ln();
        let pivot_row = m[col].clone();
        for row in m.iter_mut().skip(col + 1) {
            let f = row[col] / pivot_row[col];
            for (x, p) in row.iter_mut().zip(&pivot_row).skip(col) {
                *x -= f * p;
            }
        }
    }
    acc
}

#[test]
fn the_path_density_is_the_change_of_variables_density_in_both_orders() {
    let p = model();
    let (x, _) = p.sample(2, &mut SeededNoise::new(1), Pass::Eval).unwrap();
    for inference in ORDERS {
        let store = ParamStore::new(7);
        let q = encoder(&store, &p, inference);
        let post = q.forward(&x, Pass::Eval).unwrap();
        let eps = SeededNoise::new(2)
            .standard_normal(&(2, 4, 3).into(), DType::F64, &Device::Cpu)
            .unwrap();
        let draw = post.reparameterize(&eps).unwrap();
        let log_q = draw.log_q.to_vec2::<f64>().unwrap();
        let z = |e: &Tensor| post.reparameterize(e).unwrap().z.to_vec3::<f64>().unwrap();
        let e = eps.to_vec3::<f64>().unwrap();
        let h = 1e-5;
        for b in 0..2 {
            for s in 0..4 {
                // Column j of the Jacobian ∂z/∂ε of this draw, by central differences.
                let mut jac = vec![vec![0.0; 3]; 3];
                for j in 0..3 {
                    let shifted = |sign: f64| {
                        let mut v = e.clone();
                        v[b][s][j] += sign * h;
                        z(&Tensor::new(v, &Device::Cpu).unwrap())
                    };
                    let (up, down) = (shifted(1.0), shifted(-1.0));
                    for (i, row) in jac.iter_mut().enumerate() {
                        row[j] = (up[b][s][i] - down[b][s][i]) / (2.0 * h);
                    }
                }
                let log_n: f64 = e[b][s]
                    .iter()
                    .map(|v| -0.5 * v * v - 0.5 * std::f64::consts::TAU.ln())
                    .sum();
                let want = log_n - log_abs_det(jac);
                assert!(
                    (log_q[b][s] - want).abs() < 1e-6,
                    "{inference:?} draw ({b}, {s}): log q {} vs change of variables {want}",
                    log_q[b][s]
                );
            }
        }
    }
}

/// `steps` of plain gradient descent on the IWAE-10 bound over `x` for every encoder
/// variable (the model is fixed); returns the single-draw ELBO on 2000 draws before and after.
fn fit(
    store: &ParamStore,
    q: &dyn InferenceNetwork,
    p: &LinearHierarchy,
    x: &Tensor,
) -> (f64, f64) {
    let vars: Vec<_> = store.trainable().into_iter().map(|(_, v)| v).collect();
    let bound = |cfg: &ObjectiveConfig, seed: u64, pass: Pass| {
        evaluate(
            cfg,
            EvalContext::new(q, p, x, &mut SeededNoise::new(seed)).with_pass(pass),
        )
        .and_then(Evaluation::checked)
        .unwrap()
    };
    let elbo = |seed| bound(&elbo_config(2000), seed, Pass::Eval).bound;
    let before = elbo(40);
    let iwae = ObjectiveConfig {
        objective: Objective::Iwae {
            num_samples: 10,
            gradient: IwaeGradient::Standard,
        },
        ..elbo_config(1)
    };
    for step in 0..300 {
        let g = bound(&iwae, 100 + step, Pass::Train)
            .gradients(&[], &vars)
            .unwrap();
        for (v, g) in vars.iter().zip(g) {
            v.set(&(v.as_tensor() - (g * 0.01).unwrap()).unwrap())
                .unwrap();
        }
    }
    let after = elbo(41);
    (before, after)
}

fn elbo_config(num_samples: usize) -> ObjectiveConfig {
    ObjectiveConfig {
        objective: Objective::Elbo {
            num_samples,
            analytic_kl: true,
        },
        warmup: None,
        free_bits: None,
    }
}

/// After a short fit (which must raise the ELBO), with 20000 draws:
/// ELBO < IWAE-10 < IWAE-100 ≤ IS, IS within 0.03 nats of the exact `log p(x)`.
#[test]
fn bounds_are_ordered_and_importance_sampling_converges_in_both_orders() {
    let p = model();
    let n = 8;
    let (x, _) = p.sample(n, &mut SeededNoise::new(2), Pass::Eval).unwrap();
    let log_p = p.log_marginal(&x).unwrap().mean_all().unwrap();
    let log_p = log_p.to_scalar::<f64>().unwrap();
    let samples = 20_000;
    for inference in ORDERS {
        let store = ParamStore::new(9);
        let q = encoder(&store, &p, inference);
        let (before, after) = fit(&store, &*q, &p, &x);
        assert!(
            after > before + 0.1,
            "{inference:?}: ELBO {before} before the fit, {after} after"
        );
        let cfg = elbo_config(samples);
        let eval = evaluate(
            &cfg,
            EvalContext::new(&*q, &p, &x, &mut SeededNoise::new(3)),
        )
        .and_then(Evaluation::checked)
        .unwrap();
        // No closed form through a flow: the KL is log q − log p of the draws.
        assert_eq!(
            eval.kl_method,
            vaekit_distributions::KlMethod::MonteCarlo {
                num_samples: samples
            },
            "{inference:?}"
        );
        let lw = &eval.log_weights;
        let bound = |k: usize| common::iwae_bound(lw, k);
        let (e, i10, i100, is) = (bound(1), bound(10), bound(100), bound(samples));
        assert!(
            e < i10 - 0.02 && i10 < i100 && i100 <= is + 1e-9,
            "{inference:?}: ELBO {e}, IWAE-10 {i10}, IWAE-100 {i100}, IS {is}, exact {log_p}"
        );
        assert!(
            (is - log_p).abs() < 0.03,
            "{inference:?}: IS-{samples} {is} vs exact {log_p}"
        );
        assert!((eval.bound - e).abs() < 1e-9, "{} vs {e}", eval.bound);
    }
}

/// The flows take part: moving one layer's flow parameters moves that layer's draw and, as
/// the next layer is conditioned on the transformed draw, the next layer's too (bottom-up:
/// `z_2` from `z_1`; top-down: `z_1` from `z_2`), with the noise held fixed; and every flow
/// step gets a gradient from the ELBO.
#[test]
fn each_layers_flow_moves_its_draw_and_the_layer_conditioned_on_it() {
    let p = model();
    let (x, _) = p.sample(3, &mut SeededNoise::new(8), Pass::Eval).unwrap();
    let eps = SeededNoise::new(9)
        .standard_normal(&(3, 4, 3).into(), DType::F64, &Device::Cpu)
        .unwrap();
    // (order, the flow moved, the layer it transforms, the layer conditioned on it), as
    // column ranges of z = [z_1 (2), z_2 (1)].
    for (inference, flow, own, next) in [
        (HierarchyInference::BottomUp, "flow0", 0..2, 2..3),
        (HierarchyInference::TopDown, "flow1", 2..3, 0..2),
    ] {
        let store = ParamStore::new(11);
        let q = encoder(&store, &p, inference);
        let draw = |q: &dyn InferenceNetwork| {
            let post = q.forward(&x, Pass::Eval).unwrap();
            post.reparameterize(&eps)
                .unwrap()
                .z
                .to_vec3::<f64>()
                .unwrap()
        };
        let before = draw(&*q);
        let moved = |a: &[Vec<Vec<f64>>], b: &[Vec<Vec<f64>>], cols: &std::ops::Range<usize>| {
            a.iter()
                .flatten()
                .zip(b.iter().flatten())
                .flat_map(|(u, v)| cols.clone().map(move |c| (u[c] - v[c]).abs()))
                .fold(0.0f64, f64::max)
        };
        for (name, var) in store.trainable() {
            if name.starts_with(&format!("encoder.{flow}.")) {
                let t = var.as_tensor();
                store.set(&name, &(t + 0.2).unwrap()).unwrap();
            }
        }
        let after = draw(&*q);
        for (what, cols) in [
            ("its own layer", &own),
            ("the layer conditioned on it", &next),
        ] {
            let d = moved(&before, &after, cols);
            assert!(d > 1e-3, "{inference:?}: moving {flow} moved {what} by {d}");
        }
        // Every step of every layer's flow learns from the ELBO (a 1-unit layer's MADE has
        // its input weights masked out entirely, so the check is per step, not per tensor).
        let vars: Vec<_> = store.trainable();
        let eval = evaluate(
            &elbo_config(4),
            EvalContext::new(&*q, &p, &x, &mut SeededNoise::new(10)).with_pass(Pass::Train),
        )
        .and_then(Evaluation::checked)
        .unwrap();
        let only: Vec<_> = vars.iter().map(|(_, v)| v.clone()).collect();
        let grads = eval.gradients(&[], &only).unwrap();
        for step in ["flow0.iaf0", "flow0.iaf1", "flow1.iaf0", "flow1.iaf1"] {
            let norm: f64 = vars
                .iter()
                .zip(&grads)
                .filter(|((name, _), _)| name.contains(step))
                .map(|(_, g)| {
                    g.sqr()
                        .unwrap()
                        .sum_all()
                        .unwrap()
                        .to_scalar::<f64>()
                        .unwrap()
                })
                .sum();
            assert!(norm > 0.0, "{inference:?}: no gradient for {step}");
        }
    }
}

#[test]
fn a_density_off_the_path_and_dreg_are_refused_with_layer_flows() {
    let p = model();
    let (x, _) = p.sample(3, &mut SeededNoise::new(4), Pass::Eval).unwrap();
    for inference in ORDERS {
        let store = ParamStore::new(5);
        let q = encoder(&store, &p, inference);
        let post = q.forward(&x, Pass::Train).unwrap();
        let draw = post
            .rsample_with_log_prob(2, &mut SeededNoise::new(6))
            .unwrap();
        assert!(draw.log_q_stopped.is_none());
        let err = post.log_prob(&draw.z).unwrap_err().to_string();
        assert!(err.contains("layer IAFs"), "{err}");
        let prior = p.prior(Pass::Eval).unwrap();
        assert!(post.layered_kl(&draw.z, &*prior).unwrap().is_none());
        let dreg = ObjectiveConfig {
            objective: Objective::Iwae {
                num_samples: 3,
                gradient: IwaeGradient::Dreg,
            },
            warmup: None,
            free_bits: None,
        };
        let err = evaluate(
            &dreg,
            EvalContext::new(&*q, &p, &x, &mut SeededNoise::new(7)).with_pass(Pass::Train),
        )
        .and_then(Evaluation::checked)
        .unwrap_err()
        .to_string();
        assert!(err.contains("DReG"), "{inference:?}: {err}");
    }
}

#[test]
fn the_layer_iaf_configuration_is_checked_and_old_files_have_none() {
    let units = [100, 50];
    let ok = LayerIaf::gated(2, vec![200, 200], 50);
    ok.validate(&units).unwrap();
    for (bad, field) in [
        (LayerIaf::gated(0, vec![200], 50), "latent.iaf.steps = 0"),
        (LayerIaf::gated(2, vec![], 50), "latent.iaf.hidden"),
        (LayerIaf::gated(2, vec![150], 50), "width 150"),
        (
            LayerIaf::gated(2, vec![200], 0),
            "latent.iaf.context_dim = 0",
        ),
    ] {
        let err = bad.validate(&units).unwrap_err().to_string();
        assert!(err.contains(field), "{err}");
    }
    // The hierarchy's own check runs the flow's.
    let mut cfg = HierarchyConfig::iwae_two_layer(784);
    cfg.iaf = Some(LayerIaf::gated(2, vec![150], 50));
    assert!(
        cfg.validate()
            .unwrap_err()
            .to_string()
            .contains("width 150")
    );
    // A configuration written without the field reads as no flow, and one without a flow
    // writes no field.
    let plain = serde_json::to_value(HierarchyConfig::iwae_two_layer(784)).unwrap();
    assert!(plain.get("iaf").is_none());
    let back: HierarchyConfig = serde_json::from_value(plain).unwrap();
    assert_eq!(back.iaf, None);
    cfg.iaf = Some(ok);
    let text = serde_json::to_string(&cfg).unwrap();
    let back: HierarchyConfig = serde_json::from_str(&text).unwrap();
    assert_eq!(back, cfg);
}
