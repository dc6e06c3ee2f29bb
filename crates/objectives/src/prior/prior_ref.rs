//! A prior distribution that is either borrowed from its model or built for one use.

use std::ops::Deref;
use vaekit_distributions::Distribution;

/// What [`crate::GenerativeModel::prior`] gives: a fixed prior borrowed from the model, or
/// one built from the current parameter values (learned priors). Dereferences to the
/// distribution either way.
pub enum PriorRef<'a> {
    /// A prior with no trainable parameters, owned by the model.
    Fixed(&'a dyn Distribution),
    /// A prior built for this use.
    Built(Box<dyn Distribution>),
}

impl Deref for PriorRef<'_> {
    type Target = dyn Distribution;

    fn deref(&self) -> &Self::Target {
        match self {
            PriorRef::Fixed(d) => *d,
            PriorRef::Built(d) => d.as_ref(),
        }
    }
}

impl std::fmt::Debug for PriorRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PriorRef::Fixed(_) => f.write_str("PriorRef::Fixed"),
            PriorRef::Built(_) => f.write_str("PriorRef::Built"),
        }
    }
}
