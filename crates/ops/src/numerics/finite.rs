use candle::{Result, Tensor};

/// A `u8` mask that is 1 where `x` is finite (not ±inf, not NaN) and 0 elsewhere.
///
/// # Shapes
/// Same shape as `x`, dtype `u8`.
pub fn is_finite(x: &Tensor) -> Result<Tensor> {
    // NaN compares false with everything, so `|x| < inf` is false for NaN and ±inf alike.
    x.abs()?.lt(f64::INFINITY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::Device;

    #[test]
    fn flags_infinities_and_nan() -> Result<()> {
        let x = Tensor::new(
            &[0.0f32, -1e30, f32::INFINITY, f32::NEG_INFINITY, f32::NAN],
            &Device::Cpu,
        )?;
        assert_eq!(is_finite(&x)?.to_vec1::<u8>()?, vec![1, 1, 0, 0, 0]);
        Ok(())
    }
}
