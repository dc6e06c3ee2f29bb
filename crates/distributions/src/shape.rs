//! Shape helpers shared by the families.

use candle::{Result, Shape, Tensor};

/// `sample_shape ++ shape`.
pub(crate) fn extend(sample_shape: &[usize], shape: &Shape) -> Shape {
    let mut dims = sample_shape.to_vec();
    dims.extend_from_slice(shape.dims());
    Shape::from(dims)
}

/// `sample_shape ++ batch_shape ++ event_shape`.
pub(crate) fn sample_dims(sample_shape: &[usize], batch: &Shape, event: &Shape) -> Shape {
    let mut dims = sample_shape.to_vec();
    dims.extend_from_slice(batch.dims());
    dims.extend_from_slice(event.dims());
    Shape::from(dims)
}

/// Sums the last `n` dimensions.
pub(crate) fn sum_rightmost(x: &Tensor, n: usize) -> Result<Tensor> {
    let mut out = x.clone();
    for _ in 0..n {
        let last = out.rank() - 1;
        out = out.sum(last)?;
    }
    Ok(out)
}

/// Checks that `value` ends in `event` (the event dims of a log_prob argument).
pub(crate) fn check_event(name: &str, value: &Tensor, event: &Shape) -> Result<()> {
    let (v, e) = (value.dims(), event.dims());
    if v.len() < e.len() || &v[v.len() - e.len()..] != e {
        candle::bail!(
            "{name}: log_prob value of shape {:?} does not end in the event shape {e:?}",
            v
        );
    }
    Ok(())
}

/// Checks that two parameter tensors have the same shape.
pub(crate) fn check_same_shape(name: &str, what: &str, a: &Tensor, b: &Tensor) -> Result<()> {
    if a.dims() != b.dims() {
        candle::bail!(
            "{name}: {what} must have the same shape, got {:?} and {:?}",
            a.dims(),
            b.dims()
        );
    }
    Ok(())
}
