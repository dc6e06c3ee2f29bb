//! Activation functions, as a serialisable choice.

use candle::{Result, Tensor};
use serde::{Deserialize, Serialize};
use vaekit_core::FusedActivation;

/// An element-wise non-linearity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `x` for `x > 0`, `exp(x) - 1` otherwise (Clevert et al., arXiv 1511.07289); the IAF
    /// paper's choice.
    #[default]
    Elu,
    /// `tanh(x)`; the IWAE paper's dense networks.
    Tanh,
    /// `max(x, 0)`.
    Relu,
    /// `x`.
    Identity,
}

impl Activation {
    /// Applies the activation: tanh and ELU through vaekit-ops' fused ops (one vectorized
    /// pass each way on CPU in f32, candle's ops elsewhere).
    ///
    /// # Shapes
    /// Element-wise.
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Elu => vaekit_core::elu(x),
            Activation::Tanh => vaekit_core::tanh(x),
            Activation::Relu => x.relu(),
            Activation::Identity => Ok(x.clone()),
        }
    }

    /// The fused-kernel form of this activation, for ops that apply it inside their own
    /// pass (the fused linear layer, the pre-activated convolution): tanh and ELU.
    pub fn fused(self) -> Option<FusedActivation> {
        match self {
            Activation::Elu => Some(FusedActivation::Elu),
            Activation::Tanh => Some(FusedActivation::Tanh),
            Activation::Relu | Activation::Identity => None,
        }
    }
}
