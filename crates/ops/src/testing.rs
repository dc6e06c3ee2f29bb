//! Test helpers shared by every vaekit crate: autograd vs finite-difference gradients,
//! element-wise closeness with a stated tolerance, moment checks for samplers, and rayon
//! pools of a given size (for thread-count independence).
//!
//! These functions panic on a failed check (they are meant for `#[test]`s); tensor errors
//! are returned as `Err`. The tolerance policy they serve is written down in
//! `docs/testing.md`.

use candle::{DType, Result, Tensor, Var};

/// A rayon pool of `threads` workers, for tests that run the same work on pools of
/// different sizes (`pool.install(...)`) and compare.
///
/// # Errors
/// When the operating system refuses the threads.
pub fn thread_pool(threads: usize) -> Result<rayon::ThreadPool> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(candle::Error::wrap)
}

/// The gradient of `sum(f(x))` with respect to `x`, by candle's autograd.
///
/// # Shapes
/// Returns a tensor shaped like `x`.
///
/// # Errors
/// Fails when `f` fails, or when `x` does not reach the output (no gradient recorded).
pub fn autograd_gradient<F>(f: F, x: &Tensor) -> Result<Tensor>
where
    F: Fn(&Tensor) -> Result<Tensor>,
{
    let var = Var::from_tensor(x)?;
    let y = f(var.as_tensor())?.sum_all()?;
    let grads = y.backward()?;
    match grads.get(var.as_tensor()) {
        Some(g) => Ok(g.clone()),
        None => Err(candle::Error::Msg(
            "autograd_gradient: the output does not depend on x".into(),
        )),
    }
}

/// The gradient of `sum(f(x))` with respect to `x` by central differences with step `eps`,
/// evaluated in f64 (x is converted to f64 first; `f` must accept f64).
///
/// # Shapes
/// Returns an f64 tensor shaped like `x`.
///
/// # Errors
/// Fails when `f` fails.
pub fn finite_difference_gradient<F>(f: F, x: &Tensor, eps: f64) -> Result<Tensor>
where
    F: Fn(&Tensor) -> Result<Tensor>,
{
    let x64 = x.to_dtype(DType::F64)?;
    let shape = x64.shape().clone();
    let base = x64.flatten_all()?.to_vec1::<f64>()?;
    let eval = |values: Vec<f64>| -> Result<f64> {
        let t = Tensor::from_vec(values, &shape, x.device())?;
        f(&t)?.to_dtype(DType::F64)?.sum_all()?.to_scalar::<f64>()
    };
    let mut grad = Vec::with_capacity(base.len());
    for i in 0..base.len() {
        let mut plus = base.clone();
        plus[i] += eps;
        let mut minus = base.clone();
        minus[i] -= eps;
        grad.push((eval(plus)? - eval(minus)?) / (2.0 * eps));
    }
    Tensor::from_vec(grad, &shape, x.device())
}

/// `max |a - b|` over all elements, in f64 (any float dtypes, same shape).
///
/// # Errors
/// Shape or dtype errors.
pub fn max_abs_diff(a: &Tensor, b: &Tensor) -> Result<f64> {
    (a.to_dtype(candle::DType::F64)? - b.to_dtype(candle::DType::F64)?)?
        .abs()?
        .flatten_all()?
        .max(0)?
        .to_scalar::<f64>()
}

/// The gradient of `t` in `grads`, or an error when autograd gave it none.
///
/// # Errors
/// `t` has no gradient.
pub fn gradient_of(grads: &candle::backprop::GradStore, t: &Tensor) -> Result<Tensor> {
    grads
        .get(t)
        .cloned()
        .ok_or_else(|| candle::Error::Msg("no gradient for this tensor".into()))
}

/// Asserts `|actual - expected| <= atol + rtol * |expected|` element-wise, treating equal
/// infinities as equal and NaN as equal only to NaN. Panics with the first offending index.
///
/// # Errors
/// Fails only when the tensors cannot be read back to the host.
pub fn assert_all_close(actual: &Tensor, expected: &Tensor, rtol: f64, atol: f64) -> Result<()> {
    assert_eq!(
        actual.dims(),
        expected.dims(),
        "assert_all_close: shapes differ"
    );
    let a = actual
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?;
    let e = expected
        .to_dtype(DType::F64)?
        .flatten_all()?
        .to_vec1::<f64>()?;
    for (i, (&x, &y)) in a.iter().zip(&e).enumerate() {
        let ok = if x.is_nan() || y.is_nan() {
            x.is_nan() && y.is_nan()
        } else if x.is_infinite() || y.is_infinite() {
            x == y
        } else {
            (x - y).abs() <= atol + rtol * y.abs()
        };
        assert!(
            ok,
            "assert_all_close: element {i}: got {x:e}, expected {y:e} (rtol {rtol:e}, atol {atol:e})"
        );
    }
    Ok(())
}

/// Checks the first four moments of a sample against their known values.
///
/// The sample is standardised with the *expected* mean and variance; the means of `z`, `z^2`,
/// `z^3` and `z^4` are compared with `0`, `1`, the skewness and `3 + excess kurtosis`, each
/// within `n_se` of its own standard error (the sample standard deviation of that power
/// over `sqrt(n)`).
#[derive(Debug, Clone)]
pub struct MomentCheck {
    sample: Vec<f64>,
}

impl MomentCheck {
    /// Wraps a sample (at least 2 values).
    pub fn new(sample: &[f64]) -> Self {
        Self {
            sample: sample.to_vec(),
        }
    }

    /// Panics unless the moments match within `n_se` standard errors.
    pub fn assert_moments(
        &self,
        mean: f64,
        variance: f64,
        skewness: f64,
        excess_kurtosis: f64,
        n_se: f64,
    ) {
        let n = self.sample.len() as f64;
        assert!(n >= 2.0, "MomentCheck needs at least 2 values");
        let sd = variance.sqrt();
        let targets = [0.0, 1.0, skewness, 3.0 + excess_kurtosis];
        for (power, target) in (1..=4).zip(targets) {
            let values: Vec<f64> = self
                .sample
                .iter()
                .map(|x| ((x - mean) / sd).powi(power))
                .collect();
            let m = values.iter().sum::<f64>() / n;
            let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1.0);
            let se = (var / n).sqrt();
            assert!(
                (m - target).abs() <= n_se * se,
                "moment of order {power}: sample {m:.5}, expected {target:.5}, se {se:.2e}"
            );
        }
    }
}

/// The Kolmogorov–Smirnov statistic `sup_x |F_n(x) - F(x)|` of a sample against a CDF.
pub fn ks_statistic(sample: &[f64], cdf: impl Fn(f64) -> f64) -> f64 {
    let mut sorted = sample.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len() as f64;
    sorted
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            let f = cdf(x);
            (f - i as f64 / n).abs().max(((i + 1) as f64 / n - f).abs())
        })
        .fold(0.0, f64::max)
}

/// Panics unless the one-sample KS test accepts `sample ~ cdf` at level `alpha` (asymptotic
/// critical value `sqrt(-ln(alpha / 2) / (2n))`).
pub fn assert_ks(sample: &[f64], cdf: impl Fn(f64) -> f64, alpha: f64) {
    let d = ks_statistic(sample, cdf);
    let critical = (-(alpha / 2.0).ln() / (2.0 * sample.len() as f64)).sqrt();
    assert!(
        d <= critical,
        "KS statistic {d:.5} > critical value {critical:.5} (alpha {alpha:e}, n {})",
        sample.len()
    );
}

/// Panics unless observed category counts fit the expected probabilities: Pearson's
/// chi-square with `k - 1` degrees of freedom below its `1 - alpha` quantile (Wilson–Hilferty
/// approximation). Categories with expected count below 5 are merged into one.
pub fn assert_chi_square(counts: &[usize], probs: &[f64], alpha: f64) {
    assert_eq!(
        counts.len(),
        probs.len(),
        "assert_chi_square: lengths differ"
    );
    let n: usize = counts.iter().sum();
    let (mut chi2, mut cells, mut small_obs, mut small_exp) = (0.0, 0usize, 0.0, 0.0);
    for (&c, &p) in counts.iter().zip(probs) {
        let e = p * n as f64;
        if e < 5.0 {
            small_obs += c as f64;
            small_exp += e;
        } else {
            chi2 += (c as f64 - e).powi(2) / e;
            cells += 1;
        }
    }
    if small_exp > 0.0 {
        chi2 += (small_obs - small_exp).powi(2) / small_exp.max(1e-300);
        cells += 1;
    }
    let dof = cells.saturating_sub(1).max(1) as f64;
    // Wilson–Hilferty: chi2_q ≈ dof (1 - 2/(9 dof) + z_q sqrt(2/(9 dof)))³.
    let z = normal_quantile_upper(alpha);
    let critical = dof * (1.0 - 2.0 / (9.0 * dof) + z * (2.0 / (9.0 * dof)).sqrt()).powi(3);
    assert!(
        chi2 <= critical,
        "chi-square {chi2:.2} > {critical:.2} ({dof} dof, alpha {alpha:e})"
    );
}

/// The standard normal CDF `Φ(x)`, to about 1e-7 (enough for KS tests).
pub fn normal_cdf(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 - 0.5 * erfc(x / std::f64::consts::SQRT_2)
    } else {
        0.5 * erfc(-x / std::f64::consts::SQRT_2)
    }
}

/// The upper `alpha` quantile of N(0, 1), by bisection on the complementary error function.
fn normal_quantile_upper(alpha: f64) -> f64 {
    let tail = |z: f64| 0.5 * erfc(z / std::f64::consts::SQRT_2);
    let (mut lo, mut hi) = (0.0f64, 40.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if tail(mid) > alpha {
            lo = mid
        } else {
            hi = mid
        }
    }
    0.5 * (lo + hi)
}

/// `erfc(x)` for `x >= 0` (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7: enough
/// for a critical value).
fn erfc(x: f64) -> f64 {
    let t = 1.0 / (1.0 + 0.5 * x.abs());
    let poly = -x * x - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    t * poly.exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ks_and_chi_square_accept_and_reject() {
        let uniform: Vec<f64> = (0..1000).map(|i| (i as f64 + 0.5) / 1000.0).collect();
        assert!(ks_statistic(&uniform, |x| x) < 1e-3);
        assert!(ks_statistic(&uniform, |x| x * x) > 0.2);
        assert_chi_square(&[250, 250, 500], &[0.25, 0.25, 0.5], 1e-6);
        let result = std::panic::catch_unwind(|| {
            assert_chi_square(&[400, 100, 500], &[0.25, 0.25, 0.5], 1e-6)
        });
        assert!(result.is_err());
        // z for alpha = 1e-6 is 4.753424.
        assert!((normal_quantile_upper(1e-6) - 4.753_424).abs() < 1e-4);
    }
}
