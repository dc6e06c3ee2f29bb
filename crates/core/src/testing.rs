//! Test helpers shared by every vaekit crate: autograd vs finite-difference gradients,
//! element-wise closeness with a stated tolerance, and moment checks for samplers.
//!
//! These functions panic on a failed check (they are meant for `#[test]`s); tensor errors
//! are returned as `Err`. The tolerance policy they serve is written down in
//! `docs/testing.md`.

use candle::{DType, Result, Tensor, Var};

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
