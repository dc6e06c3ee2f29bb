//! Every instruction-set level this CPU has gives what the portable baseline gives: the
//! kernels are forced onto each level in turn with `set_isa_cap` (as `VAEKIT_ISA` does), so
//! an AVX2-only or an aarch64 user runs code this suite has checked against the AVX-512
//! paths. The element-wise kernels are compiled from one body per level and must agree bit
//! for bit; the direct AVX-512 convolution and the im2col GEMM that replaces it below
//! AVX-512 sum in different orders and must agree to float rounding.
#![allow(clippy::unwrap_used)]

use candle::{Device, Tensor, Var};
use vaekit_ops::*;

/// Values over the kernels' branches: large negative and positive, near zero, exact zero;
/// 1003 of them, not a multiple of any vector width.
fn values(scale: f32) -> Vec<f32> {
    values_n(1003, scale)
}

/// `n` such values.
fn values_n(n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| match i % 7 {
            0 => 0.0,
            1 => 1e-6 * (i as f32),
            _ => scale * ((i as f32) * 0.377).sin() * (1.0 + (i % 13) as f32),
        })
        .collect()
}

fn tensor(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape, &Device::Cpu).unwrap()
}

/// `f`'s value and the gradient of its sum, flattened.
fn with_grad(x: &Tensor, f: &dyn Fn(&Tensor) -> candle::Result<Tensor>) -> Vec<Vec<f32>> {
    let v = Var::from_tensor(x).unwrap();
    let y = f(v.as_tensor()).unwrap();
    let g = y.sum_all().unwrap().backward().unwrap();
    let dx = g.get(v.as_tensor()).unwrap();
    vec![
        y.flatten_all().unwrap().to_vec1().unwrap(),
        dx.flatten_all().unwrap().to_vec1().unwrap(),
    ]
}

/// Every element-wise kernel's values and gradients at the current level.
fn elementwise() -> Vec<(&'static str, Vec<Vec<f32>>)> {
    let x = tensor(&values(4.0), &[1003]);
    let neg = tensor(
        &values(4.0)
            .iter()
            .map(|v| -v.abs() - 1e-3)
            .collect::<Vec<_>>(),
        &[1003],
    );
    let bits = tensor(
        &values(1.0)
            .iter()
            .map(|v| f32::from(*v > 0.0))
            .collect::<Vec<_>>(),
        &[1003],
    );
    let logits_2d = tensor(&values(4.0)[..1000], &[10, 100]);
    let bits_2d = tensor(
        &values(1.0)[..1000]
            .iter()
            .map(|v| f32::from(*v > 0.0))
            .collect::<Vec<_>>(),
        &[10, 100],
    );
    vec![
        ("softplus", with_grad(&x, &|t| softplus(t))),
        ("log_sigmoid", with_grad(&x, &|t| log_sigmoid(t))),
        ("tanh", with_grad(&x, &|t| tanh(t))),
        ("elu", with_grad(&x, &|t| elu(t))),
        ("log1mexp", with_grad(&neg, &|t| log1mexp(t))),
        (
            "bernoulli_log_prob",
            with_grad(&x, &|t| bernoulli_log_prob(t, &bits)),
        ),
        (
            "bernoulli_log_prob_sum",
            with_grad(&logits_2d, &|t| bernoulli_log_prob_sum(t, &bits_2d)),
        ),
    ]
}

/// The dense output layer fused with its likelihood: value and gradient in `h`.
fn linear_bernoulli() -> Vec<Vec<f32>> {
    let h = tensor(&values_n(20 * 30, 0.5), &[20, 30]);
    let w = tensor(&values_n(64 * 30, 0.1), &[64, 30]);
    let b = tensor(&values_n(64, 0.2), &[64]);
    let x = tensor(
        &values_n(20 * 64, 1.0)
            .iter()
            .map(|v| f32::from(*v > 0.0))
            .collect::<Vec<_>>(),
        &[20, 64],
    );
    with_grad(&h, &|t| linear_bernoulli_sum(t, &w, &b, &x))
}

/// A 3x3 "same" convolution (the direct kernel's case on AVX-512): value and input
/// gradient.
fn conv() -> Vec<Vec<f32>> {
    let data: Vec<f32> = (0..2 * 16 * 14 * 14)
        .map(|i| ((i as f32) * 0.113).sin())
        .collect();
    let x = tensor(&data, &[2, 16, 14, 14]);
    let wd: Vec<f32> = (0..32 * 16 * 9)
        .map(|i| 0.1 * ((i as f32) * 0.291).cos())
        .collect();
    let w = tensor(&wd, &[32, 16, 3, 3]);
    let geometry = ConvGeometry {
        padding: 1,
        ..ConvGeometry::default()
    };
    with_grad(&x, &|t| conv2d_gemm(t, &w, geometry))
}

/// Three Adam and Adamax steps in place and a squared norm: the optimizer's kernels.
fn optimizer() -> Vec<Vec<f32>> {
    let mut out = Vec::new();
    for adamax in [false, true] {
        let step = AdamStep {
            adamax,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.01,
        };
        let p = tensor(&values(1.0), &[1003]);
        let m = tensor(&vec![0.0; 1003], &[1003]);
        let v = tensor(&vec![0.0; 1003], &[1003]);
        for t in 1..=3 {
            let g = tensor(&values(0.1 * t as f32), &[1003]);
            adam_update(&step, 1e-3, t, &p, &g, &m, &v).unwrap();
        }
        for x in [&p, &m, &v] {
            out.push(x.to_vec1().unwrap());
        }
        // The one-pass update with host moments, above the threading threshold.
        let n = PAR_MIN_ELEMS + 1003;
        let p = tensor(&values_n(n, 1.0), &[n]);
        let mut moments = HostMoments::zeros(&p).unwrap();
        for t in 1..=3 {
            let g = tensor(&values_n(n, 0.1 * t as f32), &[n]);
            adam_update_host(&step, 1e-3, t, &p, &g, &mut moments).unwrap();
        }
        out.push(p.to_vec1().unwrap());
        let HostMoments::F32 { m, v } = moments else {
            panic!("f32 parameter, f32 moments");
        };
        out.push(m);
        out.push(v);
    }
    out.push(vec![
        squared_norm(&tensor(&values(3.0), &[1003])).unwrap() as f32
    ]);
    out
}

fn close(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(a, b)| (a - b).abs() <= 1e-5 * (1.0 + a.abs().max(b.abs())))
}

#[test]
fn every_level_this_cpu_has_matches_the_baseline() {
    // The levels below the one in force (the CPU's, or less under `VAEKIT_ISA`).
    let top = isa();
    let levels: Vec<Isa> = [Isa::Baseline, Isa::Avx2, Isa::Avx512]
        .into_iter()
        .filter(|l| *l <= top)
        .collect();
    eprintln!("levels compared on this CPU: {levels:?}");
    let at = |level: Isa| {
        set_isa_cap(Some(level));
        assert_eq!(isa(), level);
        (elementwise(), linear_bernoulli(), optimizer(), conv())
    };
    let (base_ew, base_lb, base_opt, base_conv) = at(Isa::Baseline);
    for &level in &levels[1..] {
        let (ew, lb, opt, cv) = at(level);
        for ((name, got), (_, want)) in ew.iter().zip(&base_ew) {
            assert!(got == want, "{name} at {level:?} differs from the baseline");
        }
        assert!(lb == base_lb, "linear_bernoulli_sum at {level:?} differs");
        assert!(
            opt == base_opt,
            "the optimizer's kernels at {level:?} differ"
        );
        for (got, want) in cv.iter().zip(&base_conv) {
            assert!(
                close(got, want),
                "conv2d at {level:?} differs beyond rounding"
            );
        }
        // The cap reaches the convolution: below AVX-512 it is the im2col GEMM, as at the
        // baseline, bit for bit; at AVX-512 the direct kernel, which sums in another order.
        match level {
            Isa::Avx512 => assert!(cv != base_conv, "the direct kernel did not run at AVX-512"),
            _ => assert!(
                cv == base_conv,
                "conv2d at {level:?} is not the baseline's path"
            ),
        }
    }
    set_isa_cap(None);
    assert_eq!(isa(), top, "the cap was not lifted");
}
