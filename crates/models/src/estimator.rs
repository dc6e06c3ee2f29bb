//! Objectives by name, as `train-iaf --estimator` takes them.

use crate::{ConfigError, bail};
use vaekit_objectives::{IwaeGradient, Objective, ScoreBaseline, TemperatureSchedule};

/// Names of the `--estimator` choices.
pub const ESTIMATORS: [&str; 8] = [
    "elbo",
    "iwae",
    "reinforce",
    "nvil",
    "vimco",
    "rws",
    "concrete",
    "concrete-st",
];

/// The objective of an `--estimator` name with `k` draws per data point.
///
/// # Errors
/// `k = 0`, or a name not in [`ESTIMATORS`].
pub fn estimator_objective(name: &str, k: usize) -> Result<Objective, ConfigError> {
    if k == 0 {
        bail!("--k 0: the number of draws per data point must be at least 1");
    }
    Ok(match name {
        "elbo" => Objective::Elbo {
            num_samples: k,
            analytic_kl: true,
        },
        "iwae" => Objective::Iwae {
            num_samples: k,
            gradient: IwaeGradient::Standard,
        },
        "reinforce" => Objective::Reinforce {
            num_samples: k,
            baseline: ScoreBaseline::default(),
        },
        "nvil" => Objective::Reinforce {
            num_samples: k,
            baseline: ScoreBaseline::nvil(),
        },
        "vimco" => Objective::Vimco { num_samples: k },
        "rws" => Objective::Rws {
            num_samples: k,
            wake_fraction: 1.0,
        },
        "concrete" | "concrete-st" => Objective::Concrete {
            num_samples: k,
            temperature: TemperatureSchedule::default(),
            straight_through: name == "concrete-st",
        },
        other => bail!(
            "unknown estimator {other:?}; choose one of {}",
            ESTIMATORS.join(", ")
        ),
    })
}
