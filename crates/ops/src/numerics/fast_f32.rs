//! Branch-free f32 `exp(-a)`, `log1p`, sigmoid, tanh, ELU and the Bernoulli log-probability for the hot element-wise kernels.
//!
//! The libm calls (`expf`, `log1p`, `tanhf`) are scalar: in a profile of importance
//! sampling through the dense decoder, f64 `log1p` alone was 30 % of the time and `tanhf`
//! 17 %. These versions use only arithmetic, comparisons and bit casts, so loops over them
//! vectorize. Accuracy, checked against f64 in the tests: relative errors below `5e-7`
//! (about 8 f32 ulp) where the result is a normal f32, results below `e^-87` flushed
//! towards it; NaN propagates and ±∞ give the limits.

/// `ln 2` split so that `n · LN2_HI` is exact for `n < 2^11`.
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
const LOG2_E: f32 = std::f32::consts::LOG2_E;
/// Beyond this `exp(-a)` is below f32's normal range; it is flushed to `exp(-87)`, which
/// changes nothing that adds it to a number of order one.
const A_MAX: f32 = 87.0;
/// `1.5 · 2^23`: adding it to a float below `2^22` rounds that float to an integer.
const MAGIC: f32 = 12_582_912.0;

/// `exp(-a)` for `a >= 0` (NaN in, NaN out). Range reduction `a = n ln 2 + r`,
/// `|r| <= ln 2 / 2` (to rounding), then a degree-7 Taylor polynomial of `exp(-r)` (truncation below
/// `1e-9` relative) times `2^-n` built from its bits. Relative error below `4e-7`.
#[inline(always)]
pub(crate) fn exp_neg(a: f32) -> f32 {
    // A comparison, not `min`, so that NaN stays NaN.
    let a = if a > A_MAX { A_MAX } else { a };
    // n = round(a log2 e) by the 1.5·2^23 trick: after the add, the rounded integer sits in
    // the low mantissa bits. (`as i32` would be scalarized: Rust's saturating float-to-int
    // cast checks NaN lane by lane.) For 0 <= a <= 87, 0 <= n <= 126; NaN gives NaN below.
    let k = a * LOG2_E + MAGIC;
    let n = k.to_bits().wrapping_sub(MAGIC.to_bits()) as i32;
    let nf = k - MAGIC;
    let r = (a - nf * LN2_HI) - nf * LN2_LO;
    // exp(-r) = Σ (-r)^k / k!, Horner.
    let m = -r;
    let p = 1.0
        + m * (1.0
            + m * (0.5
                + m * (1.0 / 6.0
                    + m * (1.0 / 24.0
                        + m * (1.0 / 120.0 + m * (1.0 / 720.0 + m * (1.0 / 5040.0)))))));
    // 2^-n for 0 <= n <= 126 from the exponent bits.
    let scale = f32::from_bits((127i32.wrapping_sub(n) as u32) << 23);
    p * scale
}

/// `log(1 + t)` for `t` in `[0, 1]`: `2 atanh(s)` with `s = t / (2 + t) <= 1/3`, summed to
/// `s^13` (truncation below `1e-8`). Relative error below `3e-7`.
#[inline(always)]
pub(crate) fn log1p_unit(t: f32) -> f32 {
    let s = t / (2.0 + t);
    let s2 = s * s;
    let series = 1.0
        + s2 * (1.0 / 3.0
            + s2 * (1.0 / 5.0
                + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0 + s2 * (1.0 / 13.0))))));
    2.0 * s * series
}

/// The positive part, NaN propagating.
#[inline(always)]
fn positive_part(y: f32) -> f32 {
    if y < 0.0 { 0.0 } else { y }
}

/// `elu(y) = y` for `y > 0`, `e^y - 1` otherwise; below `|y| = 0.125` a Taylor polynomial
/// of `expm1` to `y^6` (no cancellation). Absolute error below `5e-7`, relative below `1e-6`
/// near 0.
#[inline(always)]
pub(crate) fn elu(y: f32) -> f32 {
    let small = y
        * (1.0
            + y * (0.5
                + y * (1.0 / 6.0 + y * (1.0 / 24.0 + y * (1.0 / 120.0 + y * (1.0 / 720.0))))));
    let neg = if y > -0.125 { small } else { exp_neg(-y) - 1.0 };
    if y > 0.0 { y } else { neg }
}

/// `σ(y) = 1 / (1 + e^{-y})` without overflow: `1 / (1 + t)` or `t / (1 + t)` with
/// `t = e^{-|y|}`.
#[inline(always)]
pub(crate) fn sigmoid(y: f32) -> f32 {
    let t = exp_neg(y.abs());
    let r = 1.0 / (1.0 + t);
    if y < 0.0 { t * r } else { r }
}

/// `tanh(y) = sign(y) (1 - t) / (1 + t)`, `t = e^{-2|y|}`; below `|y| = 0.125` an odd
/// Taylor polynomial to `y^9` instead (no cancellation in `1 - t`). Absolute error below
/// `2e-7`, relative below `1e-6`.
#[inline(always)]
pub(crate) fn tanh(y: f32) -> f32 {
    let a = y.abs();
    let t = exp_neg(2.0 * a);
    let big = (1.0 - t) / (1.0 + t);
    let y2 = y * y;
    let small = y
        * (1.0
            + y2 * (-1.0 / 3.0 + y2 * (2.0 / 15.0 + y2 * (-17.0 / 315.0 + y2 * (62.0 / 2835.0)))));
    let big = if y < 0.0 { -big } else { big };
    if a < 0.125 { small } else { big }
}

/// `log Bernoulli(x; l) = -x softplus(-l) - (1 - x) softplus(l)`, both softplus terms from
/// one `e^{-|l|}`: `-L - x max(-l, 0) - (1 - x) max(l, 0)` with `L = log1p(e^{-|l|})`.
/// Exact in form for binary `x` (no cancellation of `x l` against `softplus(l)`).
#[inline(always)]
pub(crate) fn bernoulli_log_prob(l: f32, x: f32) -> f32 {
    let big_l = log1p_unit(exp_neg(l.abs()));
    let (one, zero) = (positive_part(-l), positive_part(l));
    // Selects, not `x · one + (1 - x) · zero`, so that `0 · ∞` cannot appear for binary x.
    let mix = if x == 1.0 {
        one
    } else if x == 0.0 {
        zero
    } else {
        x * one + (1.0 - x) * zero
    };
    -big_l - mix
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dense grid of `[-lim, lim]` plus special points.
    fn grid(lim: f32, n: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..=n)
            .map(|i| -lim + 2.0 * lim * i as f32 / n as f32)
            .collect();
        v.extend([
            0.0, -0.0, 1e-30, -1e-30, 1e-6, -1e-6, 0.124_999, 0.125, 87.0, 88.0, 200.0,
        ]);
        v
    }

    fn softplus64(y: f64) -> f64 {
        y.max(0.0) + (-y.abs()).exp().ln_1p()
    }

    #[test]
    fn exp_neg_is_accurate() {
        for a in grid(100.0, 200_001).into_iter().map(f32::abs) {
            let want = (-f64::from(a)).exp();
            let got = f64::from(exp_neg(a));
            if a <= 87.0 {
                assert!(
                    (got - want).abs() <= 4e-7 * want,
                    "exp(-{a}) = {got}, want {want}"
                );
            } else {
                assert!(got <= 1.7e-38, "exp(-{a}) = {got}");
            }
        }
        assert!(exp_neg(f32::NAN).is_nan());
        assert!(exp_neg(f32::INFINITY) < 1e-37);
    }

    #[test]
    fn elu_sigmoid_tanh_match_f64() {
        for y in grid(120.0, 400_001) {
            let y64 = f64::from(y);
            let el = if y64 > 0.0 { y64 } else { y64.exp_m1() };
            let got = f64::from(elu(y));
            let err = (got - el).abs();
            assert!(
                err <= 5e-7 && err <= 1e-6 * el.abs(),
                "elu({y}) = {got}, want {el}"
            );
            let sg = 1.0 / (1.0 + (-y64).exp());
            let got = f64::from(sigmoid(y));
            assert!(
                (got - sg).abs() <= 5e-7 * sg + 1e-37,
                "sigmoid({y}) = {got}, want {sg}"
            );
            let th = y64.tanh();
            let got = f64::from(tanh(y));
            assert!(
                (got - th).abs() <= 2e-7 && (got - th).abs() <= 1e-6 * th.abs() + 1e-37,
                "tanh({y}) = {got}, want {th}"
            );
        }
    }

    #[test]
    fn bernoulli_matches_f64() {
        for l in grid(120.0, 100_001) {
            for x in [0.0f32, 1.0, 0.3] {
                let (l64, x64) = (f64::from(l), f64::from(x));
                let want = -x64 * softplus64(-l64) - (1.0 - x64) * softplus64(l64);
                let got = f64::from(bernoulli_log_prob(l, x));
                assert!(
                    (got - want).abs() <= 5e-7 * want.abs() + 1e-37,
                    "log p({x}; {l}) = {got}, want {want}"
                );
            }
        }
    }

    #[test]
    fn special_values() {
        for f in [elu, sigmoid, tanh] {
            assert!(f(f32::NAN).is_nan());
        }
        assert!(bernoulli_log_prob(f32::NAN, 1.0).is_nan());
        assert_eq!(elu(f32::INFINITY), f32::INFINITY);
        assert_eq!(elu(f32::NEG_INFINITY), -1.0);
        assert_eq!(sigmoid(f32::INFINITY), 1.0);
        assert!(sigmoid(f32::NEG_INFINITY) < 1e-37);
        assert_eq!(tanh(f32::INFINITY), 1.0);
        assert_eq!(tanh(f32::NEG_INFINITY), -1.0);
        assert!(bernoulli_log_prob(f32::INFINITY, 1.0).abs() < 1e-37);
        assert_eq!(
            bernoulli_log_prob(f32::NEG_INFINITY, 1.0),
            f32::NEG_INFINITY
        );
    }
}
