//! Amortized planar flows.

use crate::flow::{Flow, FlowOutput, check_input, require_context};
use candle::{D, Result, Tensor};
use candle_nn::VarBuilder;
use vaekit_core::softplus;
use vaekit_nets::{Linear, LinearConfig, Pass, linear};

/// A planar flow `f(z) = z + û tanh(wᵀz + b)` whose `u`, `w`, `b` are produced per data point
/// from the context by a linear amortizer (`amortizer`). `û = u + (m(wᵀu) - wᵀu) w / |w|²`
/// with `m(x) = -1 + softplus(x)` guarantees `wᵀû > -1`, hence invertibility.
/// `log det = log |1 + ûᵀ (1 - tanh²(wᵀz + b)) w|`.
///
/// # Shapes
/// `z: [N, D]`, `context: [N, C]` (required).
///
/// # References
/// Rezende & Mohamed, "Variational inference with normalizing flows", arXiv 1505.05770,
/// appendix A; van den Berg et al., arXiv 1803.05649 (amortization).
#[derive(Debug, Clone)]
pub struct PlanarStep {
    amortizer: Linear,
    dim: usize,
}

/// Builds an amortized planar step for dimension `dim` from contexts of size `context_dim`.
///
/// # Errors
/// Zero sizes; variable errors.
pub fn planar_step(dim: usize, context_dim: usize, vb: VarBuilder) -> Result<PlanarStep> {
    if dim == 0 || context_dim == 0 {
        candle::bail!("planar_step: dim and context_dim must be > 0 (the flow is amortized)");
    }
    Ok(PlanarStep {
        amortizer: linear(
            context_dim,
            2 * dim + 1,
            LinearConfig::default(),
            vb.pp("amortizer"),
        )?,
        dim,
    })
}

impl PlanarStep {
    /// `(û, w, b)` for each row of the context: `[N, D]`, `[N, D]`, `[N]`.
    ///
    /// # Errors
    /// Shape errors.
    pub fn parameters(&self, context: &Tensor, pass: Pass) -> Result<(Tensor, Tensor, Tensor)> {
        let d = self.dim;
        let p = self.amortizer.forward(context, pass)?;
        let (u, w, b) = (
            p.narrow(1, 0, d)?,
            p.narrow(1, d, d)?,
            p.narrow(1, 2 * d, 1)?.squeeze(1)?,
        );
        let wu = (&w * &u)?.sum_keepdim(D::Minus1)?;
        let m = (softplus(&wu)? - 1.0)?;
        let w_norm2 = (w.sqr()?.sum_keepdim(D::Minus1)? + 1e-12)?;
        let u_hat = (&u + w.broadcast_mul(&((m - wu)? / w_norm2)?)?)?;
        Ok((u_hat, w, b))
    }
}

impl Flow for PlanarStep {
    fn forward(&self, z: &Tensor, context: Option<&Tensor>, pass: Pass) -> Result<FlowOutput> {
        check_input("PlanarStep", z, self.dim)?;
        let (u_hat, w, b) = self.parameters(require_context("PlanarStep", context)?, pass)?;
        let a = ((z * &w)?.sum(D::Minus1)? + b)?;
        let t = a.tanh()?;
        let value = (z + u_hat.broadcast_mul(&t.unsqueeze(1)?)?)?;
        let slope = t.sqr()?.affine(-1.0, 1.0)?;
        let det = ((&w * &u_hat)?.sum(D::Minus1)? * slope)?.affine(1.0, 1.0)?;
        let log_det = det.abs()?.clamp(1e-30, f64::INFINITY)?.log()?;
        Ok(FlowOutput {
            value,
            log_det_jacobian: log_det,
        })
    }
    fn dim(&self) -> usize {
        self.dim
    }
}
