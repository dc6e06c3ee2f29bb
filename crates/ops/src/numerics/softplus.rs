//! `softplus(x) = log(1 + exp(x))` and `log_sigmoid(x) = -softplus(-x)`.

use super::elementwise::{Differentiable, F64Fn, Map, apply};
use candle::{Result, Tensor};

pub(crate) fn softplus_f64(x: f64) -> f64 {
    if x > 0.0 {
        x + (-x).exp().ln_1p()
    } else {
        x.exp().ln_1p()
    }
}

pub(crate) fn sigmoid_f64(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

const SOFTPLUS: Differentiable<F64Fn, F64Fn> = Differentiable {
    value: Map {
        name: "softplus",
        f: softplus_f64,
    },
    derivative: Map {
        name: "softplus-grad",
        f: sigmoid_f64,
    },
};

const LOG_SIGMOID: Differentiable<F64Fn, F64Fn> = Differentiable {
    value: Map {
        name: "log_sigmoid",
        f: |x| -softplus_f64(-x),
    },
    derivative: Map {
        name: "log_sigmoid-grad",
        f: |x| sigmoid_f64(-x),
    },
};

/// `softplus(x) = log(1 + exp(x))`, stable for any `x`: `softplus(-inf) = 0`,
/// `softplus(1e4) = 1e4`, and `softplus(-40) = exp(-40)` to full relative precision on CPU.
/// Its gradient is `sigmoid(x)`.
///
/// # Shapes
/// Element-wise; any shape, any float dtype.
///
/// # Errors
/// Non-float dtypes.
pub fn softplus(x: &Tensor) -> Result<Tensor> {
    apply(x, SOFTPLUS, softplus_composite)
}

/// `log_sigmoid(x) = log(1 / (1 + exp(-x))) = -softplus(-x)`, stable for any `x`; the
/// log-probability of a Bernoulli logit. Its gradient is `sigmoid(-x)`.
///
/// # Shapes
/// Element-wise; any shape, any float dtype.
///
/// # Errors
/// Non-float dtypes.
pub fn log_sigmoid(x: &Tensor) -> Result<Tensor> {
    apply(x, LOG_SIGMOID, |x| softplus_composite(&x.neg()?)?.neg())
}

/// `max(x, 0) + log(1 + exp(-|x|))` from candle primitives, for devices without a kernel.
/// Both `max` and `|x|` are written as selections so that the gradient at 0 is exactly 1/2.
pub(crate) fn softplus_composite(x: &Tensor) -> Result<Tensor> {
    let positive = x.ge(0.0)?;
    let abs = positive.where_cond(x, &x.neg()?)?;
    let relu = positive.where_cond(x, &x.zeros_like()?)?;
    relu + (abs.neg()?.exp()? + 1.0)?.log()?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{assert_all_close, autograd_gradient, finite_difference_gradient};
    use candle::{DType, Device};

    fn t(v: &[f64]) -> Result<Tensor> {
        Tensor::new(v, &Device::Cpu)
    }

    #[test]
    fn values_against_independent_forms() -> Result<()> {
        // Naive log(1 + exp(x)) in f64 is good to ~1e-16 absolute on a moderate range (the
        // rounding of 1 + exp(x)).
        let xs: Vec<f64> = (-50..=50).map(|i| i as f64 / 10.0).collect();
        let naive: Vec<f64> = xs.iter().map(|x| (1.0 + x.exp()).ln()).collect();
        assert_all_close(&softplus(&t(&xs)?)?, &t(&naive)?, 1e-14, 1e-15)?;
        // Far left tail: softplus(x) = exp(x) (1 - exp(x)/2 + ...), relative 1e-15.
        let left = [-40.0, -100.0, -700.0];
        let expected: Vec<f64> = left.iter().map(|x: &f64| x.exp()).collect();
        assert_all_close(&softplus(&t(&left)?)?, &t(&expected)?, 1e-15, 0.0)?;
        // Identities and extremes.
        let x = t(&[0.0, 1e4, -1e4, f64::INFINITY, f64::NEG_INFINITY])?;
        let expected = t(&[std::f64::consts::LN_2, 1e4, 0.0, f64::INFINITY, 0.0])?;
        assert_all_close(&softplus(&x)?, &expected, 1e-15, 0.0)?;
        let xs = t(&[-3.5, 0.25, 17.0, 1e4])?;
        let diff = (softplus(&xs)? - softplus(&xs.neg()?)?)?;
        assert_all_close(&diff, &xs, 1e-15, 1e-15)?;
        // log_sigmoid = -softplus(-x), and log_sigmoid(x) + log_sigmoid(-x) = -softplus(x) - softplus(-x).
        let x = t(&[-1e4, -20.0, 0.0, 20.0, 1e4, f64::NEG_INFINITY])?;
        assert_all_close(&log_sigmoid(&x)?, &softplus(&x.neg()?)?.neg()?, 0.0, 0.0)?;
        Ok(())
    }

    #[test]
    fn f32_extremes_are_finite_and_right() -> Result<()> {
        let x = Tensor::new(&[-1e4f32, -88.0, 0.0, 88.0, 1e4], &Device::Cpu)?;
        let expected = [0.0, (-88.0f64).exp(), std::f64::consts::LN_2, 88.0, 1e4];
        assert_all_close(
            &softplus(&x)?,
            &t(&expected)?.to_dtype(DType::F32)?,
            1e-6,
            0.0,
        )?;
        let ls = log_sigmoid(&x)?.to_vec1::<f32>()?;
        assert_eq!(ls[0], -1e4);
        assert_eq!(ls[4], 0.0);
        assert!(ls.iter().all(|v| v.is_finite()));
        Ok(())
    }

    #[test]
    fn gradients_match_finite_differences() -> Result<()> {
        let x = t(&[-30.0, -5.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 5.0, 30.0])?;
        for f in [
            softplus as fn(&Tensor) -> Result<Tensor>,
            log_sigmoid,
            softplus_composite,
        ] {
            let auto = autograd_gradient(f, &x)?;
            let fd = finite_difference_gradient(f, &x, 1e-5)?;
            assert_all_close(&auto, &fd, 1e-7, 1e-10)?;
        }
        // At the extremes the gradient is exactly 0 or 1, never NaN.
        let x = t(&[-1e4, 1e4, f64::NEG_INFINITY, f64::INFINITY])?;
        assert_all_close(
            &autograd_gradient(softplus, &x)?,
            &t(&[0.0, 1.0, 0.0, 1.0])?,
            0.0,
            0.0,
        )?;
        assert_all_close(
            &autograd_gradient(log_sigmoid, &x)?,
            &t(&[1.0, 0.0, 1.0, 0.0])?,
            0.0,
            0.0,
        )?;
        Ok(())
    }

    #[test]
    fn composite_fallback_agrees_with_the_kernel() -> Result<()> {
        let xs: Vec<f64> = (-200..=200).map(|i| i as f64 / 10.0).collect();
        let x = t(&xs)?;
        assert_all_close(&softplus_composite(&x)?, &softplus(&x)?, 1e-12, 1e-15)?;
        let x = t(&[-1e4, 1e4, f64::NEG_INFINITY, f64::INFINITY])?;
        assert_all_close(&softplus_composite(&x)?, &softplus(&x)?, 0.0, 0.0)?;
        let g = autograd_gradient(softplus_composite, &t(&[0.0])?)?;
        assert_eq!(g.to_vec1::<f64>()?, vec![0.5]);
        Ok(())
    }

    #[test]
    fn half_precision_goes_through_f32() -> Result<()> {
        let x = Tensor::new(&[-2.0f32, 0.0, 3.0], &Device::Cpu)?.to_dtype(DType::BF16)?;
        let y = softplus(&x)?;
        assert_eq!(y.dtype(), DType::BF16);
        let expected = t(&[softplus_f64(-2.0), softplus_f64(0.0), softplus_f64(3.0)])?;
        assert_all_close(&y, &expected, 1e-2, 0.0)?;
        assert!(softplus(&Tensor::new(&[1u8], &Device::Cpu)?).is_err());
        Ok(())
    }
}
