//! The normalisation a layer applies, and the data-dependent initialisation of weight norm.

use crate::pass::Pass;
use candle::{Result, Tensor};
use serde::{Deserialize, Serialize};

/// Normalisation of a linear or convolutional layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Normalization {
    /// A plain layer.
    #[default]
    None,
    /// Batch normalisation of the layer's output (Ioffe & Szegedy, arXiv 1502.03167).
    Batch,
    /// Weight normalisation `w = g v / |v|` per output unit, recomputed in every forward,
    /// with data-dependent initialisation (Salimans & Kingma, arXiv 1602.07868).
    Weight,
}

/// Applies weight-norm scaling to `t = x·v` (pre-activations computed with the raw direction
/// `v`): `t * g / |v| + b`. In [`Pass::DataInit`] it first sets `g` and `b` from the batch so
/// that the result has per-unit mean 0 and standard deviation `init_scale`.
///
/// `unit_dim` is the output-unit axis of `t` (1 for `[B, out]` and `[B, C, H, W]`); `v_norm`
/// holds `|v|` per unit.
pub(crate) fn weight_norm_output(
    t: &Tensor,
    v_norm: &Tensor,
    g: &Tensor,
    b: &Tensor,
    path: &str,
    init_scale: f64,
    pass: Pass,
) -> Result<Tensor> {
    let rank = t.rank();
    let unit_shape = |u: &Tensor| -> Result<Tensor> {
        let mut dims = vec![1usize; rank];
        dims[1] = u.elem_count();
        u.reshape(dims)
    };
    if let Pass::DataInit(store) = pass {
        let direction = t.broadcast_div(&unit_shape(v_norm)?)?.detach();
        let reduce: Vec<usize> = (0..rank).filter(|&d| d != 1).collect();
        let mean = direction.mean_keepdim(reduce.as_slice())?;
        let var = direction
            .broadcast_sub(&mean)?
            .sqr()?
            .mean_keepdim(reduce.as_slice())?;
        let std = (var + 1e-8)?.sqrt()?;
        let new_g = (std.recip()? * init_scale)?.flatten_all()?;
        let new_b = (mean.broadcast_div(&std)? * -init_scale)?.flatten_all()?;
        store.set(&format!("{path}.g"), &new_g)?;
        store.set(&format!("{path}.bias"), &new_b)?;
    }
    vaekit_ops::channel_affine(t, &(g / v_norm)?, b)
}
