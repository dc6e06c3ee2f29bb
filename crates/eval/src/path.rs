//! The family of targets that annealing moves through, in noise space.

use candle::{Result, Tensor, Var};

/// An annealing path in the space of standard-normal noise `ε`:
/// `log f_β(ε) = log N(ε; 0, I) + β ℓ(ε)`, from `f_0 = N(0, I)` (normalised, sampled
/// exactly) to `f_1`, whose normaliser `Z_1 = E_{N(0,I)}[exp ℓ(ε)]` is what annealed importance
/// sampling estimates.
///
/// For a VAE, `ε ↦ z = T(ε)` is the start distribution's sampling path and
/// `ℓ(ε) = log p(x, z) - log q_start(z)`, so that `Z_1 = p(x)`; pulled back to `z`, the path
/// is the usual geometric one `q_start^{1-β} p(x, ·)^β`.
pub trait AnnealingPath {
    /// `ℓ(ε)`: `eps: [B, C, D]` (data points, chains, dimensions) gives `[B, C]`,
    /// differentiable in `eps`. `-inf` is allowed (a point outside the support); NaN is
    /// treated as a rejected proposal by HMC.
    ///
    /// # Errors
    /// Tensor errors.
    fn log_ratio(&self, eps: &Tensor) -> Result<Tensor>;
}

/// A position with its cached `ℓ` and `∇ℓ`: enough to evaluate `f_β` and its gradient at any
/// `β` without touching the model again.
#[derive(Debug, Clone)]
pub struct PathPoint {
    /// `ε`, `[B, C, D]`.
    pub position: Tensor,
    /// `ℓ(ε)`, `[B, C]`.
    pub log_ratio: Tensor,
    /// `∇_ε ℓ(ε)`, `[B, C, D]`.
    pub grad_log_ratio: Tensor,
}

impl PathPoint {
    /// Evaluates `ℓ` and its gradient at `position` (detached first: only `ε` is tracked).
    ///
    /// # Errors
    /// Those of the path; a gradient that does not reach `ε` gives zeros.
    pub fn evaluate(path: &dyn AnnealingPath, position: &Tensor) -> Result<Self> {
        let var = Var::from_tensor(&position.detach())?;
        let ell = path.log_ratio(var.as_tensor())?;
        let grads = ell.sum_all()?.backward()?;
        let grad = match grads.get(var.as_tensor()) {
            Some(g) => g.detach(),
            None => var.as_tensor().zeros_like()?,
        };
        Ok(Self {
            position: var.as_tensor().detach(),
            log_ratio: ell.detach(),
            grad_log_ratio: grad,
        })
    }

    /// `log f_β(ε)` up to the constant of `N(0, I)`: `-|ε|²/2 + β ℓ(ε)`, `[B, C]`.
    ///
    /// # Errors
    /// Tensor errors.
    pub fn log_density(&self, beta: f64) -> Result<Tensor> {
        let sq = self.position.sqr()?.sum(2)?;
        self.log_ratio.affine(beta, 0.0)? - sq.affine(0.5, 0.0)?
    }

    /// `∇ log f_β(ε) = -ε + β ∇ℓ(ε)`, `[B, C, D]`.
    ///
    /// # Errors
    /// Tensor errors.
    pub fn grad_log_density(&self, beta: f64) -> Result<Tensor> {
        self.grad_log_ratio.affine(beta, 0.0)? - &self.position
    }
}
