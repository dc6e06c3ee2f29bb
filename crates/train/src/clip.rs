//! Gradient clipping by global norm.

use candle::{Result, Tensor};
use vaekit_ops::squared_norm;

/// The global L2 norm of `grads` (accumulated in f64).
///
/// # Errors
/// Tensor errors.
pub fn global_norm(grads: &[Tensor]) -> Result<f64> {
    let mut total = 0.0;
    for g in grads {
        total += squared_norm(g)?;
    }
    Ok(total.sqrt())
}

/// Scales `grads` so that their global norm is at most `max_norm`; returns the norm before
/// clipping (NaN or infinite when a gradient is not finite, in which case nothing is scaled).
///
/// # Errors
/// Tensor errors.
pub fn clip_grad_norm(grads: &mut [Tensor], max_norm: f64) -> Result<f64> {
    let norm = global_norm(grads)?;
    if norm.is_finite() && norm > max_norm && norm > 0.0 {
        let scale = max_norm / norm;
        for g in grads.iter_mut() {
            *g = (&*g * scale)?;
        }
    }
    Ok(norm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::{DType, Device};

    #[test]
    fn clips_to_the_norm() -> Result<()> {
        let mut g = vec![
            Tensor::new(&[3.0f32, 0.0], &Device::Cpu)?,
            Tensor::new(&[4.0f32], &Device::Cpu)?,
        ];
        assert_eq!(clip_grad_norm(&mut g, 10.0)?, 5.0);
        assert_eq!(g[0].to_vec1::<f32>()?, vec![3.0, 0.0]);
        assert_eq!(clip_grad_norm(&mut g, 1.0)?, 5.0);
        assert!((global_norm(&g)? - 1.0).abs() < 1e-6);
        // The CPU kernel against the composed reduction, on a strided (transposed) tensor.
        let x = Tensor::arange(0f32, 12.0, &Device::Cpu)?
            .reshape((3, 4))?
            .t()?;
        let composed = x
            .to_dtype(DType::F64)?
            .sqr()?
            .sum_all()?
            .to_scalar::<f64>()?;
        assert_eq!(squared_norm(&x)?, composed);
        let mut bad = vec![Tensor::new(&[f32::NAN], &Device::Cpu)?];
        assert!(clip_grad_norm(&mut bad, 1.0)?.is_nan());
        Ok(())
    }
}
