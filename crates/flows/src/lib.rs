//! # vaekit-flows
//!
//! Normalizing flows for VAE posteriors. Every step implements [`Flow`], returning its value
//! and `log |det J|` in one pass:
//!
//! - [`IafStep`] on a conditional [`Made`] (natural, reversed or random ordering; context
//!   added to the first hidden layer or concatenated to the input; none / batch / weight
//!   normalisation), in the stable gated form, an affine form with a bounded log-scale, or
//!   shift-only;
//! - [`Reverse`] and [`FlowChain`] ([`iaf_chain`] puts a reversal between IAF steps);
//! - amortized [`PlanarStep`] and [`SylvesterStep`] (Householder-orthogonal or triangular),
//!   whose parameters come from the encoder's context per data point;
//! - [`FlowPosterior`]: the encoder's Gaussian through a flow, returning samples with
//!   `log q(z|x)`.
//!
//! Adding a flow: `docs/HOW_TO_ADD_A_FLOW.md`.

mod chain;
mod flow;
mod iaf;
pub mod made;
mod planar;
mod posterior;
mod sylvester;

pub use chain::{FlowChain, Reverse, iaf_chain};
pub use flow::{Flow, FlowOutput};
pub use iaf::{IafStep, IafVariant, iaf_step};
pub use made::{ContextInjection, Made, MadeConfig, Ordering, made};
pub use planar::{PlanarStep, planar_step};
pub use posterior::{FlowPosterior, PosteriorSample};
pub use sylvester::{SylvesterKind, SylvesterStep, sylvester_step};
