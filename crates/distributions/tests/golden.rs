//! Golden values from an independent implementation (SciPy 1.17, NumPy 2.4): `log_prob`,
//! entropy and variance of every family, at ordinary and extreme parameters.
//!
//! The constants below are the verbatim output of this script:
//! ```python
//! import numpy as np
//! from scipy import stats, special
//! np.set_printoptions(precision=17)
//! def arr(name, xs):
//!     print(f"const {name}: [f64; {len(xs)}] = [{', '.join(repr(float(x)) for x in xs)}];")
//! # Normal
//! loc = np.array([0.5, -1.0, 2.0, 0.0]); scale = np.array([0.3, 2.0, 1e-3, 1e3]); x = np.array([-1.3, 0.2, 2.002, 5e3])
//! arr("NORMAL_LOG_PROB", stats.norm.logpdf(x, loc, scale)); arr("NORMAL_ENTROPY", stats.norm(loc, scale).entropy())
//! # Logistic
//! arr("LOGISTIC_LOG_PROB", stats.logistic.logpdf(x, loc, scale)); arr("LOGISTIC_ENTROPY", stats.logistic(loc, scale).entropy())
//! arr("LOGISTIC_VARIANCE", stats.logistic(loc, scale).var())
//! # Bernoulli on logits (moderate logits; the extremes are tested against closed forms)
//! logits = np.array([-3.0, -0.25, 0.0, 4.5]); p = special.expit(logits)
//! arr("BERNOULLI_LOG_PROB_ONE", stats.bernoulli.logpmf(1, p)); arr("BERNOULLI_LOG_PROB_ZERO", stats.bernoulli.logpmf(0, p))
//! arr("BERNOULLI_ENTROPY", stats.bernoulli(p).entropy())
//! # Categorical
//! cl = np.array([[1.0, -2.0, 0.5, 3.0], [0.0, 0.0, 0.0, 0.0]])
//! lsm = special.log_softmax(cl, axis=-1)
//! arr("CATEGORICAL_LOG_PROBS", lsm.ravel()); arr("CATEGORICAL_ENTROPY", [stats.entropy(np.exp(r)) for r in lsm])
//! # Binary Concrete density, Maddison et al. (2017) appendix B, computed directly in y-space.
//! tau, bl = 0.7, np.array([-1.0, 0.3, 2.0]); y = np.array([0.2, 0.55, 0.97]); a = np.exp(bl)
//! dens = tau * a * y**(-tau - 1) * (1 - y)**(-tau - 1) / (a * y**(-tau) + (1 - y)**(-tau))**2
//! arr("RELAXED_BERNOULLI_LOG_PROB", np.log(dens))
//! # Concrete density, Maddison et al. (2017) eq. 8, computed directly.
//! tau2, rl = 0.5, np.array([0.2, -1.0, 1.5]); yy = np.array([0.3, 0.1, 0.6]); aa = np.exp(rl); n = 3
//! dens = special.factorial(n - 1) * tau2**(n - 1) * np.prod(aa * yy**(-tau2 - 1)) / np.sum(aa * yy**(-tau2))**n
//! arr("RELAXED_CATEGORICAL_LOG_PROB", [np.log(dens)])
//! # Discretized logistic, 256 bins on [0, 1]: mass of the bin around k/255 (edge bins open).
//! dl_loc, dl_scale = 0.4, 0.05; ks = np.array([0, 3, 100, 102, 255]); h = 0.5 / 255; v = ks / 255
//! upper = np.where(ks == 255, 1.0, stats.logistic.cdf(v + h, dl_loc, dl_scale))
//! lower = np.where(ks == 0, 0.0, stats.logistic.cdf(v - h, dl_loc, dl_scale))
//! arr("DISCRETIZED_LOGISTIC_LOG_PROB", np.log(upper - lower))
//! # Mixture of two diagonal Gaussians in R^2.
//! w = special.softmax([0.3, -0.4]); mu = np.array([[0.0, 1.0], [-2.0, 0.5]]); sd = np.array([[1.0, 0.5], [0.3, 2.0]]); xm = np.array([-1.0, 0.8])
//! comp = [np.log(w[k]) + stats.norm.logpdf(xm, mu[k], sd[k]).sum() for k in range(2)]
//! arr("MIXTURE_LOG_PROB", [special.logsumexp(comp)])
//! # von Mises-Fisher (scipy >= 1.11).
//! print("const VMF_CASES: [(usize, f64, f64, f64); 4] = [")
//! for m, kappa in [(3, 0.5), (3, 200.0), (5, 10.0), (10, 1e4)]:
//!     mu = np.zeros(m); mu[0] = 0.6; mu[1] = 0.8
//!     xv = np.ones(m) / np.sqrt(m)
//!     d = stats.vonmises_fisher(mu, kappa)
//!     print(f"    ({m}, {kappa!r}, {float(d.logpdf(xv))!r}, {float(d.entropy())!r}),")
//! print("];")
//! ```
#![allow(
    clippy::unwrap_used,
    clippy::excessive_precision,
    clippy::approx_constant
)] // verbatim SciPy output

use candle::{DType, Device, Tensor};
use vaekit_core::testing::assert_all_close;
use vaekit_distributions::*;

const NORMAL_LOG_PROB: [f64; 4] = [
    -17.714965728878738,
    -1.7920857137646178,
    3.9888167457779047,
    -20.32669381218681,
];
const NORMAL_ENTROPY: [f64; 4] = [
    0.21496572887873655,
    2.112085713764618,
    -5.488816745777465,
    8.326693812186809,
];
const LOGISTIC_LOG_PROB: [f64; 4] = [
    -4.800978565949525,
    -2.1681230815317165,
    4.653899256896359,
    -11.921185975960373,
];
const LOGISTIC_ENTROPY: [f64; 4] = [
    0.7960271956740639,
    2.6931471805599454,
    -4.907755278982137,
    8.907755278982137,
];
const LOGISTIC_VARIANCE: [f64; 4] = [
    0.29608813203268075,
    13.159472534785811,
    3.289868133696453e-06,
    3289868.1336964527,
];
const BERNOULLI_LOG_PROB_ONE: [f64; 4] = [
    -3.048587351573742,
    -0.8259394198788435,
    -0.6931471805599453,
    -0.011047744848593825,
];
const BERNOULLI_LOG_PROB_ZERO: [f64; 4] = [
    -0.04858735157374206,
    -0.5759394198788437,
    -0.6931471805599453,
    -4.511047744848593,
];
const BERNOULLI_ENTROPY: [f64; 4] = [
    0.19086497110644235,
    0.685395294657394,
    0.6931471805599453,
    0.060488986686263166,
];
const CATEGORICAL_LOG_PROBS: [f64; 8] = [
    -2.2022534476793516,
    -5.202253447679352,
    -2.7022534476793516,
    -0.20225344767935172,
    -1.3862943611198906,
    -1.3862943611198906,
    -1.3862943611198906,
    -1.3862943611198906,
];
const CATEGORICAL_ENTROPY: [f64; 2] = [0.6185172818922773, 1.3862943611198906];
const RELAXED_BERNOULLI_LOG_PROB: [f64; 3] =
    [0.08939321625114513, -0.3529803687760821, 1.7474798247678758];
const RELAXED_CATEGORICAL_LOG_PROB: [f64; 1] = [-0.617872058676803];
const DISCRETIZED_LOGISTIC_LOG_PROB: [f64; 5] = [
    -7.96113313226047,
    -10.310830236476598,
    -3.9380966060296445,
    -3.931953777066328,
    -11.960790703653768,
];
const MIXTURE_LOG_PROB: [f64; 1] = [-2.1250945800406513];
const VMF_CASES: [(usize, f64, f64, f64); 4] = [
    (3, 0.5, -2.168203913149472, 2.490372394712884),
    (3, 200.0, -34.88148432676607, -2.4604403001386856),
    (5, 10.0, -2.704233096692552, 0.8541123734735336),
    (10, 10000.0, -5539.634403349851, -28.677659993149064),
];

fn t(v: &[f64]) -> Tensor {
    Tensor::new(v, &Device::Cpu).unwrap()
}

const LOC: [f64; 4] = [0.5, -1.0, 2.0, 0.0];
const SCALE: [f64; 4] = [0.3, 2.0, 1e-3, 1e3];
const X: [f64; 4] = [-1.3, 0.2, 2.002, 5e3];

#[test]
fn normal() {
    let d = Normal::new(t(&LOC), t(&SCALE)).unwrap();
    assert_all_close(
        &d.log_prob(&t(&X)).unwrap(),
        &t(&NORMAL_LOG_PROB),
        1e-13,
        0.0,
    )
    .unwrap();
    assert_all_close(&d.entropy().unwrap(), &t(&NORMAL_ENTROPY), 1e-14, 0.0).unwrap();
    let squares: Vec<f64> = SCALE.iter().map(|s| s * s).collect();
    assert_all_close(&d.variance().unwrap(), &t(&squares), 1e-15, 0.0).unwrap();
    // The log-scale constructor gives the same distribution.
    let log_scale: Vec<f64> = SCALE.iter().map(|s| s.ln()).collect();
    let d2 = Normal::from_log_scale(t(&LOC), t(&log_scale)).unwrap();
    assert_all_close(
        &d2.log_prob(&t(&X)).unwrap(),
        &t(&NORMAL_LOG_PROB),
        1e-13,
        0.0,
    )
    .unwrap();
    // f32 within f32 precision.
    let d32 = Normal::new(
        t(&LOC).to_dtype(DType::F32).unwrap(),
        t(&SCALE).to_dtype(DType::F32).unwrap(),
    )
    .unwrap();
    let lp = d32.log_prob(&t(&X).to_dtype(DType::F32).unwrap()).unwrap();
    assert_all_close(
        &lp.narrow(0, 0, 2).unwrap(),
        &t(&NORMAL_LOG_PROB[..2]),
        1e-6,
        0.0,
    )
    .unwrap();
    // StandardNormal agrees with Normal(0, 1).
    let std = StandardNormal::new(4, DType::F64, &Device::Cpu).unwrap();
    let unit = Normal::new(t(&[0.0; 4]), t(&[1.0; 4])).unwrap();
    assert_all_close(
        &std.log_prob(&t(&X)).unwrap(),
        &unit.log_prob(&t(&X)).unwrap(),
        1e-15,
        0.0,
    )
    .unwrap();
    assert_all_close(
        &std.entropy().unwrap(),
        &unit.entropy().unwrap(),
        1e-15,
        0.0,
    )
    .unwrap();
}

#[test]
fn logistic() {
    let d = Logistic::new(t(&LOC), t(&SCALE)).unwrap();
    assert_all_close(
        &d.log_prob(&t(&X)).unwrap(),
        &t(&LOGISTIC_LOG_PROB),
        1e-13,
        0.0,
    )
    .unwrap();
    assert_all_close(&d.entropy().unwrap(), &t(&LOGISTIC_ENTROPY), 1e-14, 0.0).unwrap();
    assert_all_close(&d.variance().unwrap(), &t(&LOGISTIC_VARIANCE), 1e-14, 0.0).unwrap();
}

#[test]
fn bernoulli() {
    let logits = [-3.0, -0.25, 0.0, 4.5];
    let d = Bernoulli::new(t(&logits)).unwrap();
    // SciPy works from probabilities: ln p of a p rounded near 1 is off by ~1e-16 absolute.
    assert_all_close(
        &d.log_prob(&t(&[1.0; 4])).unwrap(),
        &t(&BERNOULLI_LOG_PROB_ONE),
        1e-14,
        1e-15,
    )
    .unwrap();
    assert_all_close(
        &d.log_prob(&t(&[0.0; 4])).unwrap(),
        &t(&BERNOULLI_LOG_PROB_ZERO),
        1e-14,
        1e-15,
    )
    .unwrap();
    assert_all_close(&d.entropy().unwrap(), &t(&BERNOULLI_ENTROPY), 1e-14, 1e-15).unwrap();
    let p: Vec<f64> = logits
        .iter()
        .map(|l: &f64| 1.0 / (1.0 + (-l).exp()))
        .collect();
    let var: Vec<f64> = p.iter().map(|p| p * (1.0 - p)).collect();
    assert_all_close(&d.mean().unwrap(), &t(&p), 1e-15, 0.0).unwrap();
    assert_all_close(&d.variance().unwrap(), &t(&var), 1e-14, 0.0).unwrap();
    // Logits ±50, against the closed forms: log p(1) = -softplus(-l), log p(0) = -softplus(l).
    let d = Bernoulli::new(t(&[-50.0, 50.0])).unwrap();
    let lp1 = d
        .log_prob(&t(&[1.0, 1.0]))
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let lp0 = d
        .log_prob(&t(&[0.0, 0.0]))
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let tail = (-50f64).exp();
    assert!(
        (lp1[0] + 50.0 + tail).abs() < 1e-13 && (lp1[1] + tail).abs() < 1e-30,
        "{lp1:?}"
    );
    assert!(
        (lp0[0] + tail).abs() < 1e-30 && (lp0[1] + 50.0 + tail).abs() < 1e-13,
        "{lp0:?}"
    );
    let h = d.entropy().unwrap().to_vec1::<f64>().unwrap();
    // H = p softplus(-l) + (1 - p) softplus(l) ≈ e^-50 (1 + 50) at |l| = 50.
    for v in h {
        assert!((v - tail * 51.0).abs() < 1e-30, "{v}");
    }
}

#[test]
fn categorical() {
    let d = Categorical::new(
        Tensor::new(&[[1.0, -2.0, 0.5, 3.0], [0.0, 0.0, 0.0, 0.0]], &Device::Cpu).unwrap(),
    )
    .unwrap();
    assert_all_close(
        &d.log_probs().flatten_all().unwrap(),
        &t(&CATEGORICAL_LOG_PROBS),
        1e-14,
        0.0,
    )
    .unwrap();
    assert_all_close(&d.entropy().unwrap(), &t(&CATEGORICAL_ENTROPY), 1e-14, 0.0).unwrap();
    let idx = Tensor::new(&[[3u32, 1], [0, 2]], &Device::Cpu).unwrap(); // [sample 2, batch 2]
    let lp = d.log_prob(&idx).unwrap();
    let c = &CATEGORICAL_LOG_PROBS;
    let expected = Tensor::new(&[[c[3], c[5]], [c[0], c[6]]], &Device::Cpu).unwrap();
    assert_all_close(&lp, &expected, 1e-14, 0.0).unwrap();
    // An impossible class: probability 0, entropy without NaN.
    let d = Categorical::new(t(&[0.0, f64::NEG_INFINITY, 0.0])).unwrap();
    assert!((d.entropy().unwrap().to_scalar::<f64>().unwrap() - 2f64.ln()).abs() < 1e-15);
    assert_eq!(
        d.log_prob(&Tensor::new(1u32, &Device::Cpu).unwrap())
            .unwrap()
            .to_scalar::<f64>()
            .unwrap(),
        f64::NEG_INFINITY
    );
}

#[test]
fn relaxed_bernoulli_matches_the_y_space_density() {
    let d = RelaxedBernoulli::new(0.7, t(&[-1.0, 0.3, 2.0])).unwrap();
    let lp = d.log_prob(&t(&[0.2, 0.55, 0.97])).unwrap();
    assert_all_close(&lp, &t(&RELAXED_BERNOULLI_LOG_PROB), 1e-13, 0.0).unwrap();
}

#[test]
fn relaxed_categorical_matches_the_concrete_density() {
    let d = RelaxedOneHotCategorical::new(0.5, t(&[0.2, -1.0, 1.5])).unwrap();
    let lp = d.log_prob(&t(&[0.3, 0.1, 0.6])).unwrap();
    assert_all_close(
        &lp.unsqueeze(0).unwrap(),
        &t(&RELAXED_CATEGORICAL_LOG_PROB),
        1e-13,
        0.0,
    )
    .unwrap();
    // With K = 2, Concrete((y, 1-y); l1, l2) is BinConcrete(y; l1 - l2) w.r.t. dy.
    let two = RelaxedOneHotCategorical::new(
        0.8,
        Tensor::new(&[[1.5, -0.5], [0.0, 2.0]], &Device::Cpu).unwrap(),
    )
    .unwrap();
    let bin = RelaxedBernoulli::new(0.8, t(&[2.0, -2.0])).unwrap();
    let y = t(&[0.35, 0.9]);
    let pairs = Tensor::stack(&[y.clone(), y.affine(-1.0, 1.0).unwrap()], 1).unwrap();
    assert_all_close(
        &two.log_prob(&pairs).unwrap(),
        &bin.log_prob(&y).unwrap(),
        1e-13,
        0.0,
    )
    .unwrap();
}

#[test]
fn discretized_logistic_masses() {
    let d = DiscretizedLogistic::new(t(&[0.4]), t(&[0.05]), 256).unwrap();
    let v: Vec<f64> = [0.0, 3.0, 100.0, 102.0, 255.0]
        .iter()
        .map(|k| k / 255.0)
        .collect();
    let lp = d
        .log_prob(&t(&v).unsqueeze(1).unwrap())
        .unwrap()
        .squeeze(1)
        .unwrap();
    assert_all_close(&lp, &t(&DISCRETIZED_LOGISTIC_LOG_PROB), 1e-10, 0.0).unwrap();
    // The 256 masses sum to 1, for ordinary and extreme scales and locations.
    let all: Vec<f64> = (0..256).map(|k| k as f64 / 255.0).collect();
    for (loc, scale) in [
        (0.4, 0.05),
        (0.0, 1e-6),
        (1.0, 1e6),
        (-3.0, 0.01),
        (0.5, 1e-3),
    ] {
        let d = DiscretizedLogistic::new(t(&[loc]), t(&[scale]), 256).unwrap();
        let lp = d.log_prob(&t(&all).unsqueeze(1).unwrap()).unwrap();
        let values = lp.flatten_all().unwrap().to_vec1::<f64>().unwrap();
        assert!(
            values.iter().all(|v| !v.is_nan()),
            "NaN at loc {loc}, scale {scale}"
        );
        let total: f64 = values.iter().map(|v| v.exp()).sum();
        assert!(
            (total - 1.0).abs() < 1e-9,
            "loc {loc}, scale {scale}: total {total}"
        );
    }
}

#[test]
fn mixture() {
    let d = MixtureSameFamily::new(
        t(&[0.3, -0.4]),
        Tensor::new(&[[0.0, 1.0], [-2.0, 0.5]], &Device::Cpu).unwrap(),
        Tensor::new(&[[1.0, 0.5], [0.3, 2.0]], &Device::Cpu).unwrap(),
    )
    .unwrap();
    let lp = d.log_prob(&t(&[-1.0, 0.8])).unwrap();
    assert_all_close(&lp.unsqueeze(0).unwrap(), &t(&MIXTURE_LOG_PROB), 1e-13, 0.0).unwrap();
}

#[test]
fn von_mises_fisher() {
    for (m, kappa, log_pdf, entropy) in VMF_CASES {
        let mut mu = vec![0.0; m];
        mu[0] = 0.6;
        mu[1] = 0.8;
        let d = VonMisesFisher::new(t(&mu), Tensor::new(kappa, &Device::Cpu).unwrap()).unwrap();
        let x = vec![1.0 / (m as f64).sqrt(); m];
        let lp = d.log_prob(&t(&x)).unwrap().to_scalar::<f64>().unwrap();
        let h = d.entropy().unwrap().to_scalar::<f64>().unwrap();
        let tol = 1e-10 * log_pdf.abs().max(1.0);
        assert!(
            (lp - log_pdf).abs() < tol,
            "m {m}, κ {kappa}: log_prob {lp} vs {log_pdf}"
        );
        assert!(
            (h - entropy).abs() < 1e-9 * entropy.abs().max(1.0),
            "m {m}, κ {kappa}: entropy {h} vs {entropy}"
        );
    }
    // κ = 0 is the uniform distribution on the sphere.
    let d =
        VonMisesFisher::new(t(&[0.0, 0.0, 1.0]), Tensor::new(0.0, &Device::Cpu).unwrap()).unwrap();
    let u = SphereUniform::new(3, (), DType::F64, &Device::Cpu).unwrap();
    let x = t(&[0.6, 0.0, 0.8]);
    assert_all_close(
        &d.log_prob(&x).unwrap(),
        &u.log_prob(&x).unwrap(),
        1e-15,
        0.0,
    )
    .unwrap();
    assert!(
        (u.entropy().unwrap().to_scalar::<f64>().unwrap() - (4.0 * std::f64::consts::PI).ln())
            .abs()
            < 1e-15
    );
}
