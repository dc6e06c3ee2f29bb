//! The errors of configurations and of building a model from one.

/// A configuration that cannot be used: the message names the field (and its command-line
/// flag, where `train-iaf` has one), the value and the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    /// What is wrong, for a person.
    pub message: String,
}

impl ConfigError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }
}

/// Why a model could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The configuration was refused before any tensor existed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A tensor operation failed while creating or initialising the networks.
    #[error(transparent)]
    Candle(#[from] candle::Error),
}

/// `return Err(ConfigError)` with a formatted message.
macro_rules! bail {
    ($($t:tt)*) => {
        return Err($crate::ConfigError::new(format!($($t)*)))
    };
}
pub(crate) use bail;

/// `value >= min` for a count, or an error naming the field.
pub(crate) fn check_count(field: &str, value: usize, min: usize) -> Result<(), ConfigError> {
    if value < min {
        bail!("{field} = {value}: must be at least {min}");
    }
    Ok(())
}

/// `lo < value < hi` (and not NaN), or an error naming the field.
pub(crate) fn check_open(field: &str, value: f64, lo: f64, hi: f64) -> Result<(), ConfigError> {
    if !(value > lo && value < hi) {
        bail!("{field} = {value}: must lie in ({lo}, {hi})");
    }
    Ok(())
}

/// `lo <= value < hi` (and not NaN), or an error naming the field.
pub(crate) fn check_half_open(
    field: &str,
    value: f64,
    lo: f64,
    hi: f64,
) -> Result<(), ConfigError> {
    if !(value >= lo && value < hi) {
        bail!("{field} = {value}: must lie in [{lo}, {hi})");
    }
    Ok(())
}
