//! Which flow a Gaussian posterior has.

use serde::{Deserialize, Serialize};
use vaekit_flows::{IafVariant, SylvesterKind};
use vaekit_nets::Normalization;

/// The posterior's flow.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FlowConfig {
    /// A plain Gaussian posterior.
    None,
    /// `steps` IAF steps on a conditional MADE (hidden widths and normalisation as given).
    Iaf {
        /// Number of IAF steps, at least 1.
        steps: usize,
        /// Hidden widths of each step's MADE: at least one layer, each a multiple of the
        /// latent dimension.
        hidden: Vec<usize>,
        /// Normalisation of the MADE's layers (weight norm needs the data-dependent
        /// initialisation [`crate::Model::data_init`] runs).
        norm: Normalization,
        /// Affine or gated (LSTM-type) update.
        variant: IafVariant,
    },
    /// `steps` amortized planar steps.
    Planar {
        /// Number of steps, at least 1.
        steps: usize,
    },
    /// `steps` amortized Sylvester steps.
    Sylvester {
        /// Number of steps, at least 1.
        steps: usize,
        /// Orthogonal, Householder (at least one reflection) or triangular.
        sylvester: SylvesterKind,
    },
}
