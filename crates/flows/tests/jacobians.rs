//! Every flow step in f64 on small dimensions: `log_det_jacobian` equals `log |det J|` of a
//! central-difference Jacobian (tolerance 1e-6); IAF/MADE Jacobians are triangular in the
//! ordering, for every ordering and with the context present; planar and Sylvester steps
//! keep `det J > 0` over random parameter draws.
#![allow(clippy::unwrap_used, clippy::needless_range_loop)] // matrix code reads best with indices

use candle::{DType, Device, Shape, Tensor};
use vaekit_core::{NoiseSource, SeededNoise};
use vaekit_flows::*;
use vaekit_nets::{Normalization, ParamStore, Pass};

const N: usize = 3;

fn randn(shape: impl Into<Shape>, seed: u64, scale: f64) -> Tensor {
    (SeededNoise::new(seed)
        .standard_normal(&shape.into(), DType::F64, &Device::Cpu)
        .unwrap()
        * scale)
        .unwrap()
}

/// Per-row Jacobians `J[n][i][j] = ∂f(z)_ni / ∂z_nj` by central differences (rows are
/// independent).
fn jacobians(flow: &dyn Flow, z: &Tensor, context: Option<&Tensor>) -> Vec<Vec<Vec<f64>>> {
    let (n, d) = z.dims2().unwrap();
    let eps = 1e-6;
    let mut jac = vec![vec![vec![0.0; d]; d]; n];
    for j in 0..d {
        let mut delta = vec![0.0; n * d];
        for r in 0..n {
            delta[r * d + j] = eps;
        }
        let delta = Tensor::from_vec(delta, (n, d), &Device::Cpu).unwrap();
        let plus = flow
            .forward(&(z + &delta).unwrap(), context, Pass::Eval)
            .unwrap()
            .value
            .to_vec2::<f64>()
            .unwrap();
        let minus = flow
            .forward(&(z - &delta).unwrap(), context, Pass::Eval)
            .unwrap()
            .value
            .to_vec2::<f64>()
            .unwrap();
        for r in 0..n {
            for i in 0..d {
                jac[r][i][j] = (plus[r][i] - minus[r][i]) / (2.0 * eps);
            }
        }
    }
    jac
}

/// `(sign, log |det|)` by LU decomposition with partial pivoting.
fn log_abs_det(mut a: Vec<Vec<f64>>) -> (f64, f64) {
    let n = a.len();
    let (mut sign, mut log_det) = (1.0, 0.0);
    for c in 0..n {
        let p = (c..n)
            .max_by(|&x, &y| a[x][c].abs().total_cmp(&a[y][c].abs()))
            .unwrap();
        if p != c {
            a.swap(p, c);
            sign = -sign;
        }
        let pivot = a[c][c];
        if pivot == 0.0 {
            return (0.0, f64::NEG_INFINITY);
        }
        sign *= pivot.signum();
        log_det += pivot.abs().ln();
        for r in c + 1..n {
            let f = a[r][c] / pivot;
            for k in c..n {
                a[r][k] -= f * a[c][k];
            }
        }
    }
    (sign, log_det)
}

/// Checks the log-determinant against finite differences and returns the Jacobians.
fn check_log_det(
    flow: &dyn Flow,
    z: &Tensor,
    context: Option<&Tensor>,
    what: &str,
) -> Vec<Vec<Vec<f64>>> {
    let out = flow.forward(z, context, Pass::Eval).unwrap();
    let reported = out.log_det_jacobian.to_vec1::<f64>().unwrap();
    let jac = jacobians(flow, z, context);
    for (r, j) in jac.iter().enumerate() {
        let (sign, log_det) = log_abs_det(j.clone());
        assert!(sign > 0.0, "{what}: row {r} has det J <= 0");
        assert!(
            (log_det - reported[r]).abs() < 1e-6,
            "{what}: row {r}: log|det J| {log_det} vs reported {}",
            reported[r]
        );
    }
    jac
}

fn made_config(ordering: Ordering, injection: ContextInjection, norm: Normalization) -> MadeConfig {
    MadeConfig {
        dim: 4,
        hidden: vec![8, 12],
        context_dim: 3,
        injection,
        ordering,
        norm,
        activation: vaekit_nets::Activation::Elu,
        heads: 2,
    }
}

#[test]
fn iaf_steps_every_configuration() {
    let z = randn((N, 4), 1, 1.0);
    let h = randn((N, 3), 2, 1.0);
    let orderings = [
        Ordering::Natural,
        Ordering::Reversed,
        Ordering::Random { seed: 5 },
    ];
    let injections = [
        ContextInjection::AddToFirstHidden,
        ContextInjection::ConcatToInput,
    ];
    let norms = [
        Normalization::None,
        Normalization::Weight,
        Normalization::Batch,
    ];
    let variants = [
        IafVariant::Gated { forget_bias: 1.0 },
        IafVariant::Affine { max_log_scale: 3.0 },
        IafVariant::Shift,
    ];
    let mut seed = 10;
    for ordering in orderings {
        for injection in injections {
            for norm in norms {
                for variant in variants {
                    seed += 1;
                    let store = ParamStore::new(seed);
                    let cfg = made_config(ordering, injection, norm);
                    let step = iaf_step(&cfg, variant, store.var_builder(DType::F64, &Device::Cpu))
                        .unwrap();
                    // Batch norm runs on its (initial) running statistics in Eval.
                    let what = format!("{variant:?} {ordering:?} {injection:?} {norm:?}");
                    let jac = check_log_det(&step, &z, Some(&h), &what);
                    let deg = step.made().degrees().to_vec();
                    for j in &jac {
                        for a in 0..4 {
                            assert!(j[a][a].abs() > 1e-8, "{what}: zero diagonal");
                            for b in 0..4 {
                                if deg[b] > deg[a] {
                                    assert!(
                                        j[a][b].abs() < 1e-9,
                                        "{what}: ∂z'_{a}/∂z_{b} = {} but z_{b} comes later",
                                        j[a][b]
                                    );
                                }
                            }
                        }
                    }
                    if variant == IafVariant::Shift {
                        assert!(
                            step.forward(&z, Some(&h), Pass::Eval)
                                .unwrap()
                                .log_det_jacobian
                                .abs()
                                .unwrap()
                                .max(0)
                                .unwrap()
                                .to_scalar::<f64>()
                                .unwrap()
                                == 0.0
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn made_outputs_are_strictly_autoregressive() {
    for ordering in [
        Ordering::Natural,
        Ordering::Reversed,
        Ordering::Random { seed: 9 },
    ] {
        for injection in [
            ContextInjection::AddToFirstHidden,
            ContextInjection::ConcatToInput,
        ] {
            let store = ParamStore::new(3);
            let net = made(
                &made_config(ordering, injection, Normalization::None),
                store.var_builder(DType::F64, &Device::Cpu),
            )
            .unwrap();
            let z = randn((1, 4), 4, 1.0);
            let h = randn((1, 3), 5, 1.0);
            let base = net.forward(&z, Some(&h), Pass::Eval).unwrap();
            let deg = net.degrees().to_vec();
            for j in 0..4 {
                let mut bump = vec![0.0; 4];
                bump[j] = 0.5;
                let moved = net
                    .forward(
                        &(&z + Tensor::from_vec(bump.clone(), (1, 4), &Device::Cpu).unwrap())
                            .unwrap(),
                        Some(&h),
                        Pass::Eval,
                    )
                    .unwrap();
                for head in 0..2 {
                    let (a, b) = (
                        base[head].to_vec2::<f64>().unwrap()[0].clone(),
                        moved[head].to_vec2::<f64>().unwrap()[0].clone(),
                    );
                    for i in 0..4 {
                        let changed = (a[i] - b[i]).abs() > 1e-12;
                        assert_eq!(
                            changed,
                            deg[j] < deg[i],
                            "{ordering:?} {injection:?}: output {i} vs input {j}"
                        );
                    }
                }
            }
            // And the context reaches every output.
            let moved = net
                .forward(&z, Some(&(&h + 1.0).unwrap()), Pass::Eval)
                .unwrap();
            let diff = (&moved[0] - &base[0])
                .unwrap()
                .abs()
                .unwrap()
                .to_vec2::<f64>()
                .unwrap();
            assert!(
                diff[0].iter().all(|v| *v > 0.0),
                "{injection:?}: the context must reach every output"
            );
        }
    }
    // Widths must be multiples of the latent dimension; a conditional MADE needs its context.
    let store = ParamStore::new(1);
    let vb = store.var_builder(DType::F64, &Device::Cpu);
    let bad = MadeConfig {
        hidden: vec![10],
        ..made_config(
            Ordering::Natural,
            ContextInjection::AddToFirstHidden,
            Normalization::None,
        )
    };
    assert!(
        made(&bad, vb.pp("bad"))
            .unwrap_err()
            .to_string()
            .contains("not a positive multiple of the latent dimension 4")
    );
    let ok = made(
        &made_config(
            Ordering::Natural,
            ContextInjection::AddToFirstHidden,
            Normalization::None,
        ),
        vb.pp("ok"),
    )
    .unwrap();
    assert!(
        ok.forward(&randn((1, 4), 1, 1.0), None, Pass::Eval)
            .unwrap_err()
            .to_string()
            .contains("needs a context")
    );
}

#[test]
fn chains_and_reversal() {
    let store = ParamStore::new(21);
    let cfg = made_config(
        Ordering::Natural,
        ContextInjection::AddToFirstHidden,
        Normalization::Weight,
    );
    let chain = iaf_chain(
        3,
        &cfg,
        IafVariant::Gated { forget_bias: 0.5 },
        store.var_builder(DType::F64, &Device::Cpu),
    )
    .unwrap();
    assert_eq!(chain.len(), 5);
    let z = randn((N, 4), 6, 1.0);
    let h = randn((N, 3), 7, 1.0);
    check_log_det(&chain, &z, Some(&h), "IAF chain");
    let rev = Reverse::new(4);
    let out = rev.forward(&z, None, Pass::Eval).unwrap();
    assert_eq!(
        out.value.to_vec2::<f64>().unwrap()[0],
        z.to_vec2::<f64>().unwrap()[0]
            .iter()
            .rev()
            .copied()
            .collect::<Vec<_>>()
    );
    check_log_det(&rev, &z, None, "Reverse");
}

#[test]
fn planar_steps_are_exact_and_invertible() {
    let z = randn((N, 5), 8, 1.0);
    for seed in 0..20u64 {
        let store = ParamStore::new(100 + seed);
        let step = planar_step(5, 4, store.var_builder(DType::F64, &Device::Cpu)).unwrap();
        // Large contexts give large, adversarial u and w.
        let h = randn((N, 4), 200 + seed, 4.0);
        check_log_det(&step, &z, Some(&h), &format!("planar seed {seed}"));
        let (u_hat, w, _) = step.parameters(&h, Pass::Eval).unwrap();
        let wu = (w * u_hat)
            .unwrap()
            .sum(1)
            .unwrap()
            .to_vec1::<f64>()
            .unwrap();
        assert!(
            wu.iter().all(|v| *v >= -1.0 - 1e-9),
            "wᵀû must be >= -1, got {wu:?}"
        );
    }
    let store = ParamStore::new(1);
    let step = planar_step(5, 4, store.var_builder(DType::F64, &Device::Cpu)).unwrap();
    assert!(
        step.forward(&z, None, Pass::Eval)
            .unwrap_err()
            .to_string()
            .contains("amortized and needs a context")
    );
}

#[test]
fn sylvester_steps_are_exact_and_invertible() {
    let z = randn((N, 4), 9, 1.0);
    for kind in [
        SylvesterKind::Householder { reflections: 3 },
        SylvesterKind::Triangular,
    ] {
        for seed in 0..10u64 {
            let store = ParamStore::new(300 + seed);
            let step = sylvester_step(
                4,
                6,
                kind,
                seed as usize,
                store.var_builder(DType::F64, &Device::Cpu),
            )
            .unwrap();
            let h = randn((N, 6), 400 + seed, 3.0);
            check_log_det(&step, &z, Some(&h), &format!("{kind:?} seed {seed}"));
            let (q, r1, r2, _) = step.parameters(&h, Pass::Eval).unwrap();
            // Q is orthogonal; R and R̃ are upper triangular.
            let qtq = q.transpose(1, 2).unwrap().matmul(&q).unwrap();
            let eye = Tensor::eye(4, DType::F64, &Device::Cpu).unwrap();
            let err = qtq
                .broadcast_sub(&eye)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            assert!(err < 1e-10, "QᵀQ - I = {err}");
            for r in [r1, r2] {
                let m = r.to_vec3::<f64>().unwrap();
                for row in &m {
                    for i in 0..4 {
                        for j in 0..i {
                            assert_eq!(row[i][j], 0.0);
                        }
                        assert!(row[i][i].abs() < 1.0);
                    }
                }
            }
        }
    }
}
