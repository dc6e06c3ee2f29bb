//! The `Flow` trait.

use candle::{Result, Tensor};
use vaekit_nets::Pass;

/// A flow step's output: the transformed value and `log |det ∂f/∂z|` per row.
#[derive(Debug, Clone)]
pub struct FlowOutput {
    /// `f(z)`, `[N, D]`.
    pub value: Tensor,
    /// `log |det ∂f(z)/∂z|`, `[N]`.
    pub log_det_jacobian: Tensor,
}

/// An invertible map `R^D -> R^D` (per row), optionally conditioned on a context vector, with
/// its log-determinant computed in the same pass.
///
/// # Shapes
/// `z: [N, D]`, `context: [N, C]`; the output value is `[N, D]` and the log-determinant `[N]`.
pub trait Flow: Send + Sync + std::fmt::Debug {
    /// Applies the flow.
    ///
    /// # Errors
    /// Shape errors, or a missing context for a flow that needs one.
    fn forward(&self, z: &Tensor, context: Option<&Tensor>, pass: Pass) -> Result<FlowOutput>;

    /// The dimension `D` it acts on.
    fn dim(&self) -> usize;

    /// [`Flow::forward`] with the log-determinant split over the coordinates, for steps whose
    /// Jacobian is triangular up to a permutation: given the per-coordinate log-determinants
    /// accumulated so far, `acc: [N, D]` in `z`'s coordinates, returns the output and `acc`
    /// carried to the output's coordinates plus this step's diagonal terms (an IAF step adds
    /// its `log σ_d` to coordinate `d`; a reversal reverses `acc`). The rows of the new `acc`
    /// minus the old sum to the step's log-determinant. `None` (the default) for steps that
    /// mix coordinates (planar, Sylvester), whose log-determinant has no such split.
    ///
    /// # Errors
    /// Those of [`Flow::forward`].
    fn forward_per_dim(
        &self,
        z: &Tensor,
        context: Option<&Tensor>,
        pass: Pass,
        acc: &Tensor,
    ) -> Result<Option<(FlowOutput, Tensor)>> {
        let _ = (z, context, pass, acc);
        Ok(None)
    }
}

/// `context`, or an error naming the flow that needs it.
pub(crate) fn require_context<'a>(name: &str, context: Option<&'a Tensor>) -> Result<&'a Tensor> {
    context.ok_or_else(|| {
        candle::Error::Msg(format!(
            "{name}: this flow is amortized and needs a context"
        ))
    })
}

/// Checks `z: [N, dim]`.
pub(crate) fn check_input(name: &str, z: &Tensor, dim: usize) -> Result<()> {
    if z.rank() != 2 || z.dim(1)? != dim {
        candle::bail!("{name}: input must be [N, {dim}], got {:?}", z.dims());
    }
    Ok(())
}
