//! Amortized Sylvester flows: orthogonal (Householder) and triangular.

use crate::flow::{Flow, FlowOutput, check_input, require_context};
use candle::{D, Device, Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use vaekit_nets::{Linear, LinearConfig, Pass, linear};

/// Where the orthogonal matrix `Q` of a Sylvester step comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum SylvesterKind {
    /// `Q` is a product of `reflections` amortized Householder reflections (H-SNF).
    Householder {
        /// Number of reflections.
        reflections: usize,
    },
    /// `Q` is the identity (even steps) or the reversal permutation (odd steps) (T-SNF).
    Triangular,
}

/// A Sylvester flow `f(z) = z + Q R tanh(R̃ Qᵀ z + b)` with `R`, `R̃` upper triangular and
/// `Q` orthogonal, all produced per data point from the context by a linear amortizer
/// (`amortizer`). The diagonals are `tanh` of free parameters, so `R_ii R̃_ii ∈ (-1, 1)` and
/// with `h = tanh` (`h' ∈ (0, 1]`) every `1 + R_ii R̃_ii h'` is positive: the map is
/// invertible. `log det = Σ_i log(1 + R_ii R̃_ii h'(r_i))`, `r = R̃ Qᵀ z + b`.
///
/// # Shapes
/// `z: [N, D]`, `context: [N, C]` (required).
///
/// # References
/// van den Berg, Hasenclever, Tomczak, Welling, "Sylvester normalizing flows for variational
/// inference", arXiv 1803.05649, sections 3-4.
#[derive(Debug, Clone)]
pub struct SylvesterStep {
    amortizer: Linear,
    dim: usize,
    kind: SylvesterKind,
    reversed: bool,
    strict_upper: Tensor,
}

fn parameter_count(dim: usize, kind: SylvesterKind) -> usize {
    let reflections = match kind {
        SylvesterKind::Householder { reflections } => reflections,
        SylvesterKind::Triangular => 0,
    };
    2 * dim * dim + 3 * dim + reflections * dim
}

/// Builds an amortized Sylvester step; `index` (its position in a chain) selects the
/// permutation of a triangular step.
///
/// # Errors
/// Zero sizes, zero reflections; variable errors.
pub fn sylvester_step(
    dim: usize,
    context_dim: usize,
    kind: SylvesterKind,
    index: usize,
    vb: VarBuilder,
) -> Result<SylvesterStep> {
    if dim == 0 || context_dim == 0 || kind == (SylvesterKind::Householder { reflections: 0 }) {
        candle::bail!("sylvester_step: dim, context_dim and the number of reflections must be > 0");
    }
    let amortizer = linear(
        context_dim,
        parameter_count(dim, kind),
        LinearConfig::default(),
        vb.pp("amortizer"),
    )?;
    let mask: Vec<f64> = (0..dim * dim)
        .map(|k| if k % dim > k / dim { 1.0 } else { 0.0 })
        .collect();
    let strict_upper = Tensor::from_vec(mask, (dim, dim), &Device::Cpu)?
        .to_dtype(vb.dtype())?
        .to_device(vb.device())?;
    Ok(SylvesterStep {
        amortizer,
        dim,
        kind,
        reversed: kind == SylvesterKind::Triangular && index % 2 == 1,
        strict_upper,
    })
}

/// `diag(v)` for `v: [N, D]`: `[N, D, D]`.
fn diag_embed(v: &Tensor) -> Result<Tensor> {
    let d = v.dim(1)?;
    let eye = Tensor::eye(d, v.dtype(), v.device())?;
    v.unsqueeze(2)?.broadcast_mul(&eye)
}

impl SylvesterStep {
    /// `(Q, R, R̃, b)` per data point: `[N, D, D]` x 3 and `[N, D]`.
    ///
    /// # Errors
    /// Shape errors.
    pub fn parameters(
        &self,
        context: &Tensor,
        pass: Pass,
    ) -> Result<(Tensor, Tensor, Tensor, Tensor)> {
        let (d, n) = (self.dim, context.dim(0)?);
        let p = self.amortizer.forward(context, pass)?;
        let take = |offset: usize, len: usize| p.narrow(1, offset, len);
        let r1 = take(0, d * d)?
            .reshape((n, d, d))?
            .broadcast_mul(&self.strict_upper)?;
        let r2 = take(d * d, d * d)?
            .reshape((n, d, d))?
            .broadcast_mul(&self.strict_upper)?;
        let r1 = (r1 + diag_embed(&take(2 * d * d, d)?.tanh()?)?)?;
        let r2 = (r2 + diag_embed(&take(2 * d * d + d, d)?.tanh()?)?)?;
        let b = take(2 * d * d + 2 * d, d)?;
        let q = match self.kind {
            SylvesterKind::Householder { reflections } => {
                let v = take(2 * d * d + 3 * d, reflections * d)?.reshape((n, reflections, d))?;
                householder_product(&v)?
            }
            SylvesterKind::Triangular => {
                let eye = Tensor::eye(d, context.dtype(), context.device())?;
                let q = if self.reversed { eye.flip(&[1])? } else { eye };
                q.unsqueeze(0)?.broadcast_as((n, d, d))?.contiguous()?
            }
        };
        Ok((q, r1, r2, b))
    }
}

/// `Π_k (I - 2 v_k v_kᵀ / |v_k|²)` for `v: [N, K, D]`: `[N, D, D]`, orthogonal.
fn householder_product(v: &Tensor) -> Result<Tensor> {
    let (n, k, d) = v.dims3()?;
    let mut q = Tensor::eye(d, v.dtype(), v.device())?
        .unsqueeze(0)?
        .broadcast_as((n, d, d))?
        .contiguous()?;
    for i in 0..k {
        let vi = v.narrow(1, i, 1)?.squeeze(1)?; // [N, D]
        let norm2 = (vi.sqr()?.sum_keepdim(D::Minus1)? + 1e-12)?;
        let outer = vi.unsqueeze(2)?.matmul(&vi.unsqueeze(1)?)?; // [N, D, D]
        let h = (Tensor::eye(d, v.dtype(), v.device())?
            .unsqueeze(0)?
            .broadcast_sub(
                &outer
                    .broadcast_div(&norm2.unsqueeze(2)?)?
                    .affine(2.0, 0.0)?,
            ))?;
        q = q.matmul(&h)?;
    }
    Ok(q)
}

impl Flow for SylvesterStep {
    fn forward(&self, z: &Tensor, context: Option<&Tensor>, pass: Pass) -> Result<FlowOutput> {
        check_input("SylvesterStep", z, self.dim)?;
        let (q, r1, r2, b) = self.parameters(require_context("SylvesterStep", context)?, pass)?;
        let zc = z.unsqueeze(2)?; // [N, D, 1]
        let qt_z = q.transpose(1, 2)?.matmul(&zc)?;
        let pre = (r2.matmul(&qt_z)?.squeeze(2)? + &b)?; // [N, D]
        let h = pre.tanh()?;
        let value = (z + q.matmul(&r1.matmul(&h.unsqueeze(2)?)?)?.squeeze(2)?)?;
        let diag = |r: &Tensor| -> Result<Tensor> {
            let eye = Tensor::eye(self.dim, r.dtype(), r.device())?;
            r.broadcast_mul(&eye)?.sum(D::Minus1)
        };
        let slope = h.sqr()?.affine(-1.0, 1.0)?;
        let det_terms = ((diag(&r1)? * diag(&r2)?)? * slope)?.affine(1.0, 1.0)?;
        let log_det = det_terms
            .abs()?
            .clamp(1e-30, f64::INFINITY)?
            .log()?
            .sum(D::Minus1)?;
        Ok(FlowOutput {
            value,
            log_det_jacobian: log_det,
        })
    }
    fn dim(&self) -> usize {
        self.dim
    }
}
