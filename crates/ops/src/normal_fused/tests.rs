//! The fused Gaussian ops against compositions of candle primitives written out here
//! (values and every input's gradient: f64 to rounding, f32 against f64), against central
//! differences, over every broadcast layout [`Plan`] accepts, and across thread counts.
#![allow(clippy::unwrap_used)]

use super::*;
use crate::testing::{finite_difference_gradient, max_abs_diff};
use candle::{D, DType, Device, Var};

/// Deterministic values in `[lo, hi)`.
fn filled(shape: &[usize], seed: u64, lo: f64, hi: f64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let v: Vec<f64> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            lo + (hi - lo) * (x >> 11) as f64 / (1u64 << 53) as f64
        })
        .collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn sum_last(t: Tensor, n: usize) -> Tensor {
    (0..n).fold(t, |t, _| t.sum(D::Minus1).unwrap())
}

/// `Σ_n log N(v; loc, exp(ls))` from candle's broadcast primitives.
fn log_prob_reference(v: &Tensor, loc: &Tensor, ls: &Tensor, n: usize) -> Tensor {
    let z = v
        .broadcast_sub(loc)
        .unwrap()
        .broadcast_div(&ls.exp().unwrap())
        .unwrap();
    let terms = (z.sqr().unwrap() * -0.5)
        .unwrap()
        .broadcast_sub(ls)
        .unwrap()
        .affine(1.0, -HALF_LN_2PI)
        .unwrap();
    sum_last(terms, n)
}

/// A value shape, a parameter shape, the summed dimensions, and the plan's `(A, M, C, w)`.
type Case = (Vec<usize>, Vec<usize>, usize, (usize, usize, usize, usize));

/// The broadcast layouts the fused ops take.
fn layouts() -> Vec<Case> {
    vec![
        // [S, B, D] against [B, D]: leading samples.
        (vec![4, 3, 5], vec![3, 5], 1, (1, 4, 15, 5)),
        // [B, S, D] against [B, 1, D]: batch-first samples.
        (vec![3, 4, 5], vec![3, 1, 5], 1, (3, 4, 5, 5)),
        (vec![3, 4, 5], vec![3, 1, 5], 0, (3, 4, 5, 1)),
        (vec![2, 3, 4, 5], vec![4, 5], 2, (1, 6, 20, 20)),
        (vec![2, 3, 4, 5], vec![2, 1, 4, 5], 2, (2, 3, 20, 20)),
        // No broadcast; parameters broadcast over all but the last dimension.
        (vec![3, 5], vec![3, 5], 1, (1, 1, 15, 5)),
        (vec![3, 4, 5], vec![5], 1, (1, 12, 5, 5)),
    ]
}

#[test]
fn plans_of_broadcasts() {
    for (v, p, n, (a, m, c, w)) in layouts() {
        assert_eq!(
            Plan::new(&v, &p, n),
            Some(Plan { a, m, c, w }),
            "{v:?} {p:?}"
        );
    }
    // Two broadcast runs; a summed dimension inside the run; parameters larger than the
    // value; an empty dimension.
    assert_eq!(Plan::new(&[3, 4, 5, 2], &[3, 1, 5, 1], 1), None);
    assert_eq!(Plan::new(&[3, 4, 5], &[3, 1, 5], 2), None);
    assert_eq!(Plan::new(&[3, 1, 5], &[3, 4, 5], 1), None);
    assert_eq!(Plan::new(&[3, 0, 5], &[3, 1, 5], 1), None);
}

/// Value and the three gradients of `Σ weights · f(v, loc, ls)`.
fn value_and_grads(
    f: impl Fn(&Tensor, &Tensor, &Tensor) -> Tensor,
    inputs: [&Tensor; 3],
    dtype: DType,
) -> (Tensor, [Tensor; 3]) {
    let vars = inputs.map(|t| Var::from_tensor(&t.to_dtype(dtype).unwrap()).unwrap());
    let out = f(
        vars[0].as_tensor(),
        vars[1].as_tensor(),
        vars[2].as_tensor(),
    );
    let w = filled(out.dims(), 99, 0.5, 1.5).to_dtype(dtype).unwrap();
    let grads = (&out * &w).unwrap().sum_all().unwrap().backward().unwrap();
    let g = vars.map(|v| {
        grads
            .get(v.as_tensor())
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
    });
    (out.to_dtype(DType::F64).unwrap(), g)
}

fn fused_log_prob(n: usize) -> impl Fn(&Tensor, &Tensor, &Tensor) -> Tensor {
    move |v, l, s| normal_log_prob_sum(v, l, s, n).unwrap().unwrap()
}

fn scale_of(t: &Tensor) -> f64 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

#[test]
fn log_prob_sum_matches_the_composition() {
    for (vs, ps, n, _) in layouts() {
        let inputs = [
            &filled(&vs, 1, -3.0, 3.0),
            &filled(&ps, 2, -1.0, 1.0),
            &filled(&ps, 3, -1.5, 1.0),
        ];
        let reference = |v: &Tensor, l: &Tensor, s: &Tensor| log_prob_reference(v, l, s, n);
        let (want, want_g) = value_and_grads(reference, inputs, DType::F64);
        assert_eq!(want.dims(), &vs[..vs.len() - n]);
        for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 2e-6)] {
            let (got, got_g) = value_and_grads(fused_log_prob(n), inputs, dtype);
            let scale = scale_of(&want).max(1.0);
            assert!(
                max_abs_diff(&got, &want).unwrap() <= tol * scale,
                "{vs:?} {ps:?} {n} {dtype:?}"
            );
            for (k, (g, w)) in got_g.iter().zip(&want_g).enumerate() {
                let scale = scale_of(w).max(1.0);
                assert!(scale_of(w) > 0.1, "input {k} has a gradient");
                assert!(
                    max_abs_diff(g, w).unwrap() <= tol * scale,
                    "gradient {k}: {vs:?} {ps:?} {n} {dtype:?}"
                );
            }
        }
    }
}

#[test]
fn log_prob_sum_gradients_match_finite_differences() {
    let (v, l, s) = (
        filled(&[3, 4, 5], 4, -2.0, 2.0),
        filled(&[3, 1, 5], 5, -1.0, 1.0),
        filled(&[3, 1, 5], 6, -1.0, 0.5),
    );
    let f = fused_log_prob(1);
    let check = |auto: &Tensor, fd: Tensor| {
        crate::testing::assert_all_close(auto, &fd, 1e-6, 1e-8).unwrap();
    };
    let (_, g) = value_and_grads(
        |v, l, s| (f(v, l, s) * 1.0).unwrap(),
        [&v, &l, &s],
        DType::F64,
    );
    // The same weights as `value_and_grads` uses.
    let w = filled(&[3, 4], 99, 0.5, 1.5);
    let weighted = |t: Tensor| (t * &w).unwrap();
    check(
        &g[0],
        finite_difference_gradient(|x| Ok(weighted(f(x, &l, &s))), &v, 1e-6).unwrap(),
    );
    check(
        &g[1],
        finite_difference_gradient(|x| Ok(weighted(f(&v, x, &s))), &l, 1e-6).unwrap(),
    );
    check(
        &g[2],
        finite_difference_gradient(|x| Ok(weighted(f(&v, &l, x))), &s, 1e-6).unwrap(),
    );
}

#[test]
fn reparameterize_matches_the_composition() {
    for (vs, ps, _, _) in layouts() {
        let inputs = [
            &filled(&vs, 7, -2.0, 2.0),
            &filled(&ps, 8, -1.0, 1.0),
            &filled(&ps, 9, 0.2, 2.0),
        ];
        let reference = |e: &Tensor, l: &Tensor, s: &Tensor| {
            e.broadcast_mul(s).unwrap().broadcast_add(l).unwrap()
        };
        let fused =
            |e: &Tensor, l: &Tensor, s: &Tensor| normal_reparameterize(e, l, s).unwrap().unwrap();
        // Bit for bit in either dtype: the same two roundings.
        for dtype in [DType::F32, DType::F64] {
            let (got, got_g) = value_and_grads(fused, inputs, dtype);
            let (want, want_g) = value_and_grads(reference, inputs, dtype);
            assert_eq!(
                max_abs_diff(&got, &want).unwrap(),
                0.0,
                "{vs:?} {ps:?} {dtype:?}"
            );
            let tol = if dtype == DType::F64 { 1e-12 } else { 1e-5 };
            for (k, (g, w)) in got_g.iter().zip(&want_g).enumerate() {
                assert!(scale_of(w) > 0.1, "input {k} has a gradient");
                assert!(
                    max_abs_diff(g, w).unwrap() <= tol * scale_of(w),
                    "gradient {k}: {vs:?} {ps:?}"
                );
            }
        }
    }
}

#[test]
fn standard_log_prob_sum_matches_the_composition() {
    for n in 0..=3 {
        let v = filled(&[3, 4, 5], 10, -3.0, 3.0);
        let reference = |v: &Tensor| {
            sum_last(
                (v.sqr().unwrap() * -0.5)
                    .unwrap()
                    .affine(1.0, -HALF_LN_2PI)
                    .unwrap(),
                n,
            )
        };
        for (dtype, tol) in [(DType::F64, 1e-12), (DType::F32, 2e-6)] {
            let run = |f: &dyn Fn(&Tensor) -> Tensor, dtype: DType| {
                let x = Var::from_tensor(&v.to_dtype(dtype).unwrap()).unwrap();
                let out = f(x.as_tensor());
                let w = filled(out.dims(), 11, 0.5, 1.5).to_dtype(dtype).unwrap();
                let grads = (&out * &w).unwrap().sum_all().unwrap().backward().unwrap();
                let g = grads
                    .get(x.as_tensor())
                    .unwrap()
                    .to_dtype(DType::F64)
                    .unwrap();
                (out.to_dtype(DType::F64).unwrap(), g)
            };
            let fused = |x: &Tensor| standard_normal_log_prob_sum(x, n).unwrap().unwrap();
            let (got, got_g) = run(&fused, dtype);
            let (want, want_g) = run(&reference, DType::F64);
            assert_eq!(got.dims(), want.dims());
            assert!(
                max_abs_diff(&got, &want).unwrap() <= tol * scale_of(&want),
                "{n} {dtype:?}"
            );
            assert!(
                max_abs_diff(&got_g, &want_g).unwrap() <= tol * scale_of(&want_g),
                "{n} {dtype:?}"
            );
        }
    }
    assert!(standard_normal_log_prob_sum(&filled(&[2, 3], 1, 0.0, 1.0), 3).is_err());
}

/// Above the parallel threshold, one thread and three give the same bits.
#[test]
fn results_do_not_depend_on_the_thread_count() {
    let (v, l, s) = (
        filled(&[64, 50, 40], 12, -2.0, 2.0)
            .to_dtype(DType::F32)
            .unwrap(),
        filled(&[64, 1, 40], 13, -1.0, 1.0)
            .to_dtype(DType::F32)
            .unwrap(),
        filled(&[64, 1, 40], 14, -1.0, 0.5)
            .to_dtype(DType::F32)
            .unwrap(),
    );
    assert!(v.elem_count() > 2 * PAR_MIN_ELEMS);
    let run = || {
        let lp = value_and_grads(fused_log_prob(1), [&v, &l, &s], DType::F32);
        let fused =
            |e: &Tensor, l: &Tensor, s: &Tensor| normal_reparameterize(e, l, s).unwrap().unwrap();
        let z = value_and_grads(fused, [&v, &l, &s.exp().unwrap()], DType::F32);
        let st = standard_normal_log_prob_sum(&v, 2).unwrap().unwrap();
        let mut all = vec![lp.0, z.0, st.to_dtype(DType::F64).unwrap()];
        all.extend(lp.1);
        all.extend(z.1);
        all
    };
    let on = |threads: usize| crate::testing::thread_pool(threads).unwrap().install(run);
    for (a, b) in on(1).iter().zip(&on(3)) {
        assert_eq!(max_abs_diff(a, b).unwrap(), 0.0);
    }
}
