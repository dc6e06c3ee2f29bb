//! `log_mean_exp`, `log_sum_exp` and `log_softmax`, safe for rows of `-inf`.

use super::finite::is_finite;
use candle::shape::Dim;
use candle::{Result, Tensor};

/// `log(mean(exp(x), dim))`, computed as `m + log(sum(exp(x - m))) - log(n)` with `m` the
/// (detached) maximum along `dim`.
///
/// Unlike candle's `log_sum_exp` it keeps the dimension on request and survives `-inf`: a row
/// that is entirely `-inf` (every importance weight zero) gives `-inf` and a zero gradient,
/// not NaN; a row with some `-inf` entries gives them zero weight. The gradient is the
/// softmax of `x` along `dim` (self-normalised importance weights).
///
/// It computes in `x`'s dtype: estimator sums (IWAE, importance-sampled log p(x), AIS) should
/// pass f64 log-weights, as vaekit's estimators do.
///
/// # Shapes
/// `x: [.., n, ..]` gives `[.., 1, ..]` with `keepdim`, `[.., ..]` without.
///
/// # Errors
/// An out-of-range `dim`, an empty `dim`, a non-float dtype.
///
/// # References
/// Burda, Grosse, Salakhutdinov, "Importance weighted autoencoders", arXiv 1509.00519.
pub fn log_mean_exp<D: Dim>(x: &Tensor, dim: D, keepdim: bool) -> Result<Tensor> {
    let dim = dim.to_index(x.shape(), "log_mean_exp")?;
    let n = x.dim(dim)?;
    reduce(x, dim, keepdim, -(n as f64).ln(), "log_mean_exp")
}

/// `log(sum(exp(x), dim))`, with the same `-inf` guarantees as [`log_mean_exp`].
///
/// # Shapes
/// `x: [.., n, ..]` gives `[.., 1, ..]` with `keepdim`, `[.., ..]` without.
///
/// # Errors
/// An out-of-range `dim`, an empty `dim`, a non-float dtype.
pub fn log_sum_exp<D: Dim>(x: &Tensor, dim: D, keepdim: bool) -> Result<Tensor> {
    let dim = dim.to_index(x.shape(), "log_sum_exp")?;
    reduce(x, dim, keepdim, 0.0, "log_sum_exp")
}

/// `log_softmax(x, dim) = x - log_sum_exp(x, dim)`: normalised log-probabilities from logits.
/// Entries of `-inf` stay `-inf` (probability zero) as long as the row has a finite entry.
///
/// # Shapes
/// Same shape as `x`.
///
/// # Errors
/// An out-of-range `dim`, an empty `dim`, a non-float dtype.
pub fn log_softmax<D: Dim>(x: &Tensor, dim: D) -> Result<Tensor> {
    let dim = dim.to_index(x.shape(), "log_softmax")?;
    x.broadcast_sub(&reduce(x, dim, true, 0.0, "log_softmax")?)
}

/// `log(sum(exp(x), dim)) + offset`, safe for rows of `-inf`.
fn reduce(x: &Tensor, dim: usize, keepdim: bool, offset: f64, op: &str) -> Result<Tensor> {
    let n = x.dim(dim)?;
    if n == 0 {
        candle::bail!("{op}: dimension {dim} of {:?} is empty", x.shape());
    }
    if !x.dtype().is_float() {
        candle::bail!("{op}: float dtype expected, got {:?}", x.dtype());
    }
    let max = x.max_keepdim(dim)?.detach();
    // A row of -inf (or one holding +inf) has no finite shift: use 0 there instead.
    let shift = is_finite(&max)?.where_cond(&max, &max.zeros_like()?)?;
    let sum = x.broadcast_sub(&shift)?.exp()?.sum_keepdim(dim)?;
    // sum == 0 exactly when every entry is -inf: take log(1) there and select -inf after, so
    // that the log's backward never divides by zero ("double where").
    let positive = sum.gt(0.0)?;
    let safe_sum = positive.where_cond(&sum, &sum.ones_like()?)?;
    let value = ((safe_sum.log()? + shift)? + offset)?;
    let neg_inf = value.ones_like()?.affine(0.0, f64::NEG_INFINITY)?;
    let out = positive.where_cond(&value, &neg_inf)?;
    if keepdim { Ok(out) } else { out.squeeze(dim) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_all_close, autograd_gradient, finite_difference_gradient};
    use candle::{D, DType, Device};

    const NEG_INF: f64 = f64::NEG_INFINITY;

    fn reference(row: &[f64]) -> f64 {
        // Direct formula, fine for moderate values.
        (row.iter().map(|v| v.exp()).sum::<f64>() / row.len() as f64).ln()
    }

    #[test]
    fn values_shapes_and_dims() -> Result<()> {
        let rows = [
            [0.3, -1.2, 2.5, 0.0],
            [-3.0, -3.0, -3.0, -3.0],
            [10.0, -5.0, 1.0, 4.0],
        ];
        let x = Tensor::new(&rows, &Device::Cpu)?;
        let expected: Vec<f64> = rows.iter().map(|r| reference(r)).collect();
        let y = log_mean_exp(&x, 1, false)?;
        assert_eq!(y.dims(), &[3]);
        assert_all_close(
            &y,
            &Tensor::new(expected.as_slice(), &Device::Cpu)?,
            1e-14,
            0.0,
        )?;
        assert_eq!(log_mean_exp(&x, D::Minus1, true)?.dims(), &[3, 1]);
        let cols = log_mean_exp(&x, 0, true)?;
        assert_eq!(cols.dims(), &[1, 4]);
        let col0 = reference(&[0.3, -3.0, 10.0]);
        assert!((cols.flatten_all()?.to_vec1::<f64>()?[0] - col0).abs() < 1e-14);
        Ok(())
    }

    #[test]
    fn extremes_and_infinities() -> Result<()> {
        let x = Tensor::new(
            &[
                [NEG_INF, NEG_INF, NEG_INF],
                [NEG_INF, 0.0, NEG_INF],
                [1e4, 1e4, 1e4],
                [-1e4, -1e4, -1e4],
                [f64::INFINITY, 0.0, 1.0],
            ],
            &Device::Cpu,
        )?;
        let y = log_mean_exp(&x, 1, false)?.to_vec1::<f64>()?;
        assert_eq!(y[0], NEG_INF);
        assert!((y[1] - (1.0f64 / 3.0).ln()).abs() < 1e-15);
        assert!((y[2] - 1e4).abs() < 1e-9);
        assert!((y[3] + 1e4).abs() < 1e-9);
        assert_eq!(y[4], f64::INFINITY);
        // f32 too.
        let y = log_mean_exp(&x.to_dtype(DType::F32)?.narrow(0, 0, 4)?, 1, false)?;
        let y = y.to_vec1::<f32>()?;
        assert_eq!(y[0], f32::NEG_INFINITY);
        assert!((y[2] - 1e4).abs() < 1e-3);
        Ok(())
    }

    #[test]
    fn gradient_is_softmax_and_never_nan() -> Result<()> {
        let x = Tensor::new(
            &[
                [0.3, -1.2, 2.5],
                [NEG_INF, NEG_INF, NEG_INF],
                [NEG_INF, 1.0, 2.0],
            ],
            &Device::Cpu,
        )?;
        let g = autograd_gradient(|x| log_mean_exp(x, 1, false), &x)?.to_vec2::<f64>()?;
        assert_eq!(g[1], vec![0.0, 0.0, 0.0]);
        assert_eq!(g[2][0], 0.0);
        let e = [1.0f64.exp(), 2.0f64.exp()];
        assert!((g[2][1] - e[0] / (e[0] + e[1])).abs() < 1e-15);
        for row in &g[..1] {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-14);
        }
        // Finite differences on finite inputs.
        let x = Tensor::new(
            &[[0.3, -1.2, 2.5, 7.0], [-30.0, 1.0, 1.5, 0.0]],
            &Device::Cpu,
        )?;
        let f = |x: &Tensor| log_mean_exp(x, 1, false);
        // Central differences with eps 1e-6 on values up to 7: round-off ~1e-9 absolute.
        assert_all_close(
            &autograd_gradient(f, &x)?,
            &finite_difference_gradient(f, &x, 1e-6)?,
            1e-7,
            2e-9,
        )?;
        Ok(())
    }

    #[test]
    fn log_sum_exp_and_log_softmax() -> Result<()> {
        let x = Tensor::new(&[[1.0, 2.0, NEG_INF], [-1e4, -1e4, -1e4]], &Device::Cpu)?;
        let lse = log_sum_exp(&x, 1, false)?.to_vec1::<f64>()?;
        assert!((lse[0] - (1f64.exp() + 2f64.exp()).ln()).abs() < 1e-15);
        assert!((lse[1] - (-1e4 + 3f64.ln())).abs() < 1e-9);
        let lsm = log_softmax(&x, 1)?.to_vec2::<f64>()?;
        assert_eq!(lsm[0][2], NEG_INF);
        let total: f64 = lsm[0].iter().map(|v| v.exp()).sum();
        assert!((total - 1.0).abs() < 1e-15);
        assert!((lsm[1][0] + 3f64.ln()).abs() < 1e-12);
        let f = |x: &Tensor| log_softmax(x, 0)?.narrow(0, 1, 1);
        let x = Tensor::new(&[0.5, -0.25, 2.0], &Device::Cpu)?;
        assert_all_close(
            &autograd_gradient(f, &x)?,
            &finite_difference_gradient(f, &x, 1e-6)?,
            1e-7,
            1e-9,
        )?;
        Ok(())
    }

    #[test]
    fn rejects_bad_arguments() -> Result<()> {
        let x = Tensor::zeros((2, 0), DType::F32, &Device::Cpu)?;
        assert!(
            log_mean_exp(&x, 1, false)
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        let x = Tensor::zeros((2, 3), DType::F32, &Device::Cpu)?;
        assert!(log_mean_exp(&x, 2, false).is_err());
        let x = Tensor::zeros((2, 3), DType::U32, &Device::Cpu)?;
        assert!(log_mean_exp(&x, 1, false).is_err());
        Ok(())
    }
}
