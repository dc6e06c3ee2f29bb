//! Parameter validation: dtype and domain checks whose errors state the rule.

use candle::{DType, Result, Tensor};
use vaekit_core::is_finite;

/// Fails unless `t` has a float dtype.
pub(crate) fn float(name: &str, what: &str, t: &Tensor) -> Result<()> {
    if !t.dtype().is_float() {
        candle::bail!(
            "{name}: {what} must have a float dtype, got {:?}",
            t.dtype()
        );
    }
    Ok(())
}

/// Fails unless every element of `t` is finite.
pub(crate) fn finite(name: &str, what: &str, t: &Tensor) -> Result<()> {
    if t.elem_count() > 0 && all_zero_or_one(&is_finite(t)?)? == 0 {
        candle::bail!("{name}: {what} must be finite (found NaN or infinity)");
    }
    Ok(())
}

/// Fails unless every element of `t` is finite and `> 0` (or `>= 0` when `allow_zero`).
pub(crate) fn positive(name: &str, what: &str, t: &Tensor, allow_zero: bool) -> Result<()> {
    finite(name, what, t)?;
    if t.elem_count() == 0 {
        return Ok(());
    }
    let min = t
        .flatten_all()?
        .min(0)?
        .to_dtype(DType::F64)?
        .to_scalar::<f64>()?;
    let ok = if allow_zero { min >= 0.0 } else { min > 0.0 };
    if !ok {
        let rule = if allow_zero { ">= 0" } else { "> 0" };
        candle::bail!("{name}: {what} must be {rule}, found {min:e}");
    }
    Ok(())
}

/// Fails unless `x > 0` and finite (a scalar hyper-parameter such as a temperature).
pub(crate) fn positive_scalar(name: &str, what: &str, x: f64) -> Result<()> {
    if !(x.is_finite() && x > 0.0) {
        candle::bail!("{name}: {what} must be finite and > 0, got {x}");
    }
    Ok(())
}

/// 1 when all entries of a u8 mask are 1.
fn all_zero_or_one(mask: &Tensor) -> Result<u8> {
    mask.flatten_all()?.min(0)?.to_scalar::<u8>()
}
