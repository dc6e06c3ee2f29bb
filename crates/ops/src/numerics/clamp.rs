//! Clamping whose gradient passes straight through.

use super::finite::is_finite;
use candle::{Result, Tensor};

/// `clamp(x, min, max)` in value, identity in gradient: `d/dx = 1` everywhere, also outside
/// `[min, max]` (the straight-through clamp Pyro uses for scales and IAF log-scales, so that
/// a clamped parameter keeps learning its way back into range).
///
/// Infinite entries are clamped in value and receive a zero gradient; NaN stays NaN.
///
/// # Shapes
/// Element-wise; any shape, any float dtype.
///
/// # Errors
/// `min > max`.
pub fn clamp_preserve_gradients(x: &Tensor, min: f64, max: f64) -> Result<Tensor> {
    if min > max || min.is_nan() || max.is_nan() {
        candle::bail!("clamp_preserve_gradients: need min <= max, got min {min}, max {max}");
    }
    let clamped = x.clamp(min, max)?.detach();
    // x - x.detach() is 0 in value and the identity in gradient; infinite entries are
    // replaced by 0 first so that inf - inf cannot turn the value into NaN.
    let finite = is_finite(x)?;
    let safe = finite.where_cond(x, &x.zeros_like()?)?;
    let through = (&safe - safe.detach())?;
    clamped + through
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::autograd_gradient;
    use candle::Device;

    #[test]
    fn clamps_values_and_passes_gradients() -> Result<()> {
        let x = Tensor::new(
            &[
                -10.0,
                -1.0,
                0.5,
                3.0,
                1e30,
                f64::INFINITY,
                f64::NEG_INFINITY,
            ],
            &Device::Cpu,
        )?;
        let y = clamp_preserve_gradients(&x, -2.0, 2.0)?.to_vec1::<f64>()?;
        assert_eq!(y, vec![-2.0, -1.0, 0.5, 2.0, 2.0, 2.0, -2.0]);
        let g = autograd_gradient(|x| clamp_preserve_gradients(x, -2.0, 2.0), &x)?;
        assert_eq!(g.to_vec1::<f64>()?, vec![1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
        // Plain clamp would give 0 outside the range: this is the point of the function.
        let plain = autograd_gradient(|x| x.clamp(-2.0, 2.0), &x.narrow(0, 0, 4)?)?;
        assert_eq!(plain.to_vec1::<f64>()?, vec![0.0, 1.0, 1.0, 0.0]);
        Ok(())
    }

    #[test]
    fn rejects_an_empty_range() -> Result<()> {
        let x = Tensor::new(&[1.0f32], &Device::Cpu)?;
        let err = clamp_preserve_gradients(&x, 1.0, 0.0).unwrap_err();
        assert!(err.to_string().contains("min <= max"), "{err}");
        Ok(())
    }
}
