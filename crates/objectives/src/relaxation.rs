//! Continuous relaxations of discrete latents: the temperature and its annealing schedule.

use serde::{Deserialize, Serialize};

/// How a discrete latent is relaxed for one evaluation (Concrete / Gumbel-softmax).
///
/// # References
/// Maddison, Mnih, Teh, arXiv 1611.00712; Jang, Gu, Poole, arXiv 1611.01144.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Relaxation {
    /// `τ > 0`: the relaxed draws approach the discrete ones as `τ → 0`.
    pub temperature: f64,
    /// Hard (discrete) values forward, the relaxed gradient backward (Jang et al., 2.2).
    pub straight_through: bool,
}

/// Temperature annealing: `τ(epoch) = max(minimum, initial · exp(-rate · epoch))` (the
/// Gumbel-softmax paper anneals `τ = max(0.5, exp(-r t))` over steps; here `t` is the
/// fractional epoch).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TemperatureSchedule {
    /// `τ` at epoch 0.
    pub initial: f64,
    /// The floor.
    pub minimum: f64,
    /// Decay rate per epoch (`0` keeps `initial`).
    pub rate: f64,
}

impl Default for TemperatureSchedule {
    /// From 1 to 0.5 with rate 0.05 per epoch (0.5 is reached after about 14 epochs).
    fn default() -> Self {
        Self {
            initial: 1.0,
            minimum: 0.5,
            rate: 0.05,
        }
    }
}

impl TemperatureSchedule {
    /// A constant temperature.
    pub fn constant(temperature: f64) -> Self {
        Self {
            initial: temperature,
            minimum: temperature,
            rate: 0.0,
        }
    }

    /// `τ` at a (fractional) epoch.
    pub fn at(&self, epoch: f64) -> f64 {
        (self.initial * (-self.rate * epoch.max(0.0)).exp()).max(self.minimum)
    }

    /// Whether every temperature is finite and `> 0`.
    pub fn is_valid(&self) -> bool {
        let ok = |t: f64| t.is_finite() && t > 0.0;
        ok(self.initial) && ok(self.minimum) && self.rate.is_finite() && self.rate >= 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_decays_to_its_floor() {
        let s = TemperatureSchedule::default();
        assert_eq!(s.at(0.0), 1.0);
        assert!((s.at(2.0) - (-0.1f64).exp()).abs() < 1e-15);
        assert_eq!(s.at(100.0), 0.5);
        assert_eq!(TemperatureSchedule::constant(0.7).at(50.0), 0.7);
        assert!(s.is_valid());
        assert!(!TemperatureSchedule::constant(0.0).is_valid());
    }
}
