//! MADE: masked autoencoders for distribution estimation, with a context input (cMADE).

mod degrees;
mod network;

pub use degrees::{Ordering, hidden_degrees, input_degrees, masks};
pub use network::{ContextInjection, Made, MadeConfig, made};
