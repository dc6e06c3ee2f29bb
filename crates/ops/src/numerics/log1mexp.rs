//! `log1mexp(x) = log(1 - exp(x))` for `x <= 0`.

use super::elementwise::{Differentiable, F64Fn, Map, apply};
use candle::{Result, Tensor};

fn log1mexp_f64(x: f64) -> f64 {
    if x > 0.0 {
        f64::NAN
    } else if x > -std::f64::consts::LN_2 {
        (-x.exp_m1()).ln()
    } else {
        (-x.exp()).ln_1p()
    }
}

fn log1mexp_grad_f64(x: f64) -> f64 {
    // Written with abs so that x = -0.0 gives -inf, not +inf.
    if x > 0.0 {
        f64::NAN
    } else {
        -1.0 / (-x).exp_m1().abs()
    }
}

const LOG1MEXP: Differentiable<F64Fn, F64Fn> = Differentiable {
    value: Map {
        name: "log1mexp",
        f: log1mexp_f64,
    },
    derivative: Map {
        name: "log1mexp-grad",
        f: log1mexp_grad_f64,
    },
};

/// Below this `|x|`, the fallback uses the series `1 - exp(x) = -x (1 + x/2 + x^2/6 + x^3/24)`.
const SERIES_CUTOFF: f64 = 1e-2;

/// `log1mexp(x) = log(1 - exp(x))` for `x <= 0`: the log-probability of the complement of an
/// event whose log-probability is `x`. Stable at both ends (Mächler's switch at `-ln 2`
/// between `log(-expm1(x))` and `log1p(-exp(x))`): `log1mexp(0) = -inf`,
/// `log1mexp(-inf) = 0`, and `log1mexp(-1e-10) = log(1e-10)` to full precision on CPU.
/// `x > 0` gives NaN. The gradient is `-1 / expm1(-x)` (`-inf` at 0).
///
/// # Shapes
/// Element-wise; any shape, any float dtype.
///
/// # Errors
/// Non-float dtypes.
///
/// # References
/// M. Mächler, "Accurately computing log(1 - exp(-|a|))", Rmpfr vignette, 2012.
pub fn log1mexp(x: &Tensor) -> Result<Tensor> {
    apply(x, LOG1MEXP, log1mexp_composite)
}

/// From candle primitives: a cubic series for `|x| < 1e-2`, `log(1 - exp(x))` elsewhere,
/// each branch fed a safe input so that no NaN reaches the gradient ("double where").
pub(crate) fn log1mexp_composite(x: &Tensor) -> Result<Tensor> {
    let near_zero = x.gt(-SERIES_CUTOFF)?;
    let xs = near_zero.where_cond(x, &x.ones_like()?.affine(0.0, -SERIES_CUTOFF)?)?;
    let poly = ((((&xs / 24.0)? + 1.0 / 6.0)? * &xs)? + 0.5)?;
    let poly = ((poly * &xs)? + 1.0)?;
    let series = (xs.neg()? * poly)?.log()?;
    let xf = near_zero.where_cond(&x.ones_like()?.neg()?, x)?;
    let direct = (xf.exp()?.neg()? + 1.0)?.log()?;
    near_zero.where_cond(&series, &direct)
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
        // Naive log(1 - exp(x)) in f64 is accurate to ~1e-12 away from 0 and -inf.
        let xs: Vec<f64> = (1..=200).map(|i| -(i as f64) / 20.0).collect();
        let naive: Vec<f64> = xs.iter().map(|x| (1.0 - x.exp()).ln()).collect();
        assert_all_close(&log1mexp(&t(&xs)?)?, &t(&naive)?, 1e-12, 1e-15)?;
        // Near 0: 1 - exp(x) = -x (1 + x/2 + ...), so log1mexp(-1e-10) = ln(1e-10) + ln(1 - 5e-11).
        let y = log1mexp(&t(&[-1e-10, -1e-300])?)?.to_vec1::<f64>()?;
        let expected = (1e-10f64).ln() + (-5e-11f64).ln_1p();
        assert!((y[0] - expected).abs() < 1e-13, "{} vs {expected}", y[0]);
        assert!((y[1] - (1e-300f64).ln()).abs() < 1e-12, "{}", y[1]);
        // Far tail: log1mexp(x) = -exp(x) to first order.
        let y = log1mexp(&t(&[-40.0, -1e4])?)?.to_vec1::<f64>()?;
        assert!((y[0] + (-40f64).exp()).abs() < 1e-30);
        assert_eq!(y[1], 0.0);
        // Ends of the domain.
        let y = log1mexp(&t(&[0.0, f64::NEG_INFINITY, 1.0])?)?.to_vec1::<f64>()?;
        assert_eq!(y[0], f64::NEG_INFINITY);
        assert_eq!(y[1], 0.0);
        assert!(y[2].is_nan());
        // f32 keeps the near-zero precision too.
        let y = log1mexp(&Tensor::new(&[-1e-7f32], &Device::Cpu)?)?.to_vec1::<f32>()?;
        assert!((f64::from(y[0]) - (1e-7f64).ln()).abs() < 1e-5, "{}", y[0]);
        Ok(())
    }

    #[test]
    fn gradients_match_finite_differences() -> Result<()> {
        let x = t(&[-30.0, -5.0, -1.0, -0.5, -0.1, -0.02, -0.005, -1e-3])?;
        for f in [
            log1mexp as fn(&Tensor) -> Result<Tensor>,
            log1mexp_composite,
        ] {
            let auto = autograd_gradient(f, &x)?;
            let fd = finite_difference_gradient(f, &x, 1e-7)?;
            assert_all_close(&auto, &fd, 1e-5, 1e-12)?;
        }
        let g =
            autograd_gradient(log1mexp, &t(&[0.0, f64::NEG_INFINITY, -1e4])?)?.to_vec1::<f64>()?;
        assert_eq!(g[0], f64::NEG_INFINITY);
        assert_eq!(g[1], 0.0);
        assert_eq!(g[2], 0.0);
        Ok(())
    }

    #[test]
    fn composite_fallback_agrees_with_the_kernel() -> Result<()> {
        let xs: Vec<f64> = (1..=400).map(|i| -(i as f64).powi(2) / 4000.0).collect();
        let x = t(&xs)?;
        assert_all_close(&log1mexp_composite(&x)?, &log1mexp(&x)?, 1e-9, 1e-15)?;
        let x32 = x.to_dtype(DType::F32)?;
        assert_all_close(&log1mexp_composite(&x32)?, &log1mexp(&x)?, 1e-4, 1e-6)?;
        let y = log1mexp_composite(&t(&[0.0, f64::NEG_INFINITY])?)?.to_vec1::<f64>()?;
        assert_eq!(y, vec![f64::NEG_INFINITY, 0.0]);
        Ok(())
    }
}
