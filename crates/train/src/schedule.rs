//! Learning-rate schedules, as functions of the (fractional) epoch.

use serde::{Deserialize, Serialize};

/// How the learning rate evolves.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum LrSchedule {
    /// The base rate throughout.
    #[default]
    Constant,
    /// `× gamma` every `every_epochs` epochs (the reference IAF setup: ×0.5 every 800).
    StepDecay {
        /// Factor per step.
        gamma: f64,
        /// Epochs between steps.
        every_epochs: f64,
    },
    /// `× gamma` per epoch, continuously.
    Exponential {
        /// Factor per epoch.
        gamma: f64,
    },
    /// The IWAE paper's: `3^i` epochs at `base · 10^(-i/7)` for `i = 0..=7` (3280 epochs),
    /// the last rate after that.
    IwaePaper,
    /// The IWAE paper's eight stages with their lengths scaled so they total `span_epochs`
    /// instead of 3280 (same rates, same 1:3:9:… proportions), for a run with a time budget:
    /// the rate still anneals to `base / 10` by the end. The last rate after that.
    IwaePaperScaled {
        /// Epochs the eight stages span together.
        span_epochs: f64,
    },
}

impl LrSchedule {
    /// The learning rate at `epoch` for base rate `base`.
    pub fn lr(&self, base: f64, epoch: f64) -> f64 {
        match *self {
            LrSchedule::Constant => base,
            LrSchedule::StepDecay {
                gamma,
                every_epochs,
            } => {
                if every_epochs <= 0.0 {
                    base
                } else {
                    base * gamma.powf((epoch / every_epochs).floor())
                }
            }
            LrSchedule::Exponential { gamma } => base * gamma.powf(epoch),
            LrSchedule::IwaePaper => {
                let mut start = 0.0;
                for i in 0..=7 {
                    let len = 3f64.powi(i);
                    if epoch < start + len {
                        return base * 10f64.powf(-f64::from(i) / 7.0);
                    }
                    start += len;
                }
                base * 10f64.powf(-1.0)
            }
            LrSchedule::IwaePaperScaled { span_epochs } => {
                let natural = LrSchedule::IwaePaper.natural_length().unwrap_or(3280.0);
                let scale = if span_epochs > 0.0 {
                    natural / span_epochs
                } else {
                    1.0
                };
                LrSchedule::IwaePaper.lr(base, epoch * scale)
            }
        }
    }

    /// Total epochs a schedule is defined for, when it has a natural end (IWAE: 3280).
    pub fn natural_length(&self) -> Option<f64> {
        match self {
            LrSchedule::IwaePaper => Some((0..=7).map(|i| 3f64.powi(i)).sum()),
            LrSchedule::IwaePaperScaled { span_epochs } => Some(*span_epochs),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        assert_eq!(LrSchedule::Constant.lr(1e-3, 99.0), 1e-3);
        let step = LrSchedule::StepDecay {
            gamma: 0.5,
            every_epochs: 800.0,
        };
        assert_eq!(
            (
                step.lr(1e-3, 799.9),
                step.lr(1e-3, 800.0),
                step.lr(1e-3, 1700.0)
            ),
            (1e-3, 5e-4, 2.5e-4)
        );
        assert!((LrSchedule::Exponential { gamma: 0.9 }.lr(1.0, 2.0) - 0.81).abs() < 1e-15);
        let iwae = LrSchedule::IwaePaper;
        assert_eq!(iwae.natural_length(), Some(3280.0));
        assert_eq!(iwae.lr(1e-3, 0.5), 1e-3);
        assert!((iwae.lr(1e-3, 1.0) - 1e-3 * 10f64.powf(-1.0 / 7.0)).abs() < 1e-18); // epochs 1..4: i = 1
        assert!((iwae.lr(1e-3, 3279.0) - 1e-4).abs() < 1e-15); // the last stage: i = 7
        // Scaled to 820 epochs (a quarter): stage i spans 3^i / 4 epochs, so the stage
        // boundaries 364 and 1093 of the paper fall at 91 and 273.25.
        let scaled = LrSchedule::IwaePaperScaled { span_epochs: 820.0 };
        assert_eq!(scaled.natural_length(), Some(820.0));
        for (epoch, stage) in [(0.2, 0), (90.9, 5), (91.0, 6), (273.2, 6), (273.3, 7)] {
            let want = 1e-3 * 10f64.powf(-f64::from(stage) / 7.0);
            assert!(
                (scaled.lr(1e-3, epoch) - want).abs() < 1e-15,
                "epoch {epoch}"
            );
        }
        assert!((scaled.lr(1e-3, 5000.0) - 1e-4).abs() < 1e-15);
    }
}
