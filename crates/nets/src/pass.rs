//! Which kind of forward pass a network runs.

use crate::params::ParamStore;

/// The mode of a forward pass. Layers with batch normalisation use batch statistics (and
/// update their running statistics) in `Train` and `DataInit`, running statistics in `Eval`.
/// Weight-normalised layers initialise their gain and bias from the batch in `DataInit`
/// (Salimans & Kingma, arXiv 1602.07868, section 3), writing them into the store.
#[derive(Clone, Copy, Debug)]
pub enum Pass<'a> {
    /// Training: batch statistics.
    Train,
    /// Evaluation: running statistics, nothing written.
    Eval,
    /// Data-dependent initialisation on a batch: weight-norm gains and biases are set so that
    /// every pre-activation has zero mean and unit variance (times the layer's init scale).
    DataInit(&'a ParamStore),
}

impl Pass<'_> {
    /// Whether batch-norm layers use batch statistics.
    pub fn train(&self) -> bool {
        !matches!(self, Pass::Eval)
    }
}
