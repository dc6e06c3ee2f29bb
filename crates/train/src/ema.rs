//! Exponential moving average of the parameters, for evaluation.

use candle::{DType, Device, Result, Tensor, Var};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// Checkpoint key of the number of updates (an `i64` scalar); the averages are `ema.<name>`.
const UPDATES_KEY: &str = "ema_updates";

/// Which parameters an evaluation uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Weights {
    /// The parameters as the optimizer left them.
    Current,
    /// The exponential moving average of the parameters ([`Ema`]).
    Averaged,
}

impl Weights {
    /// `"current"` or `"averaged"`.
    pub fn name(self) -> &'static str {
        match self {
            Weights::Current => "current",
            Weights::Averaged => "averaged",
        }
    }
}

impl std::fmt::Display for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Weights {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "current" => Ok(Weights::Current),
            "averaged" => Ok(Weights::Averaged),
            other => Err(format!("weights {other:?}: choose current or averaged")),
        }
    }
}

/// What an average is and how far it has come, for the records of a run (`metrics.jsonl`,
/// `results.json`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EmaSummary {
    /// The configured decay (the ceiling of the warmed-up decay).
    pub decay: f64,
    /// Whether the decay is warmed up ([`Ema::decay_at`]).
    pub warmup: bool,
    /// Updates folded in so far.
    pub updates: u64,
    /// The weight the average still gives the parameters of its first update (in a training
    /// run: the parameters after one step, nearly the initial ones). `1` before any update.
    pub initial_weight: f64,
}

/// An exponential moving average (EMA) of named parameters, with the decay warmed up as in
/// TensorFlow's `ExponentialMovingAverage(decay, num_updates)`:
///
/// `shadow ← d_t · shadow + (1 − d_t) · param`, `d_t = min(decay, (1 + t) / (10 + t))`,
///
/// where `t` counts the updates before this one (the first update copies the parameters).
/// Without the warm-up (`d_t = decay` throughout) a short run is evaluated at nearly its
/// first parameters: after `n` updates they keep the weight `decay^(n−1)`, 0.89 after 120
/// steps at decay 0.999. With it they keep at most `10 · n! · 9! / (n + 9)!`
/// ([`Ema::initial_weight_bound`]): below `1e-12` after 120 steps. The warmed-up decay
/// reaches `decay` after `(10·decay − 1) / (1 − decay)` updates (8991 at 0.999); until
/// then the average spans about the last `(t + 10) / 9` steps.
///
/// Evaluate with [`Ema::swap_in`] / [`Ema::swap_out`] (or `Trainer::with_weights`).
///
/// # References
/// Polyak & Juditsky, 1992 (averaging); TensorFlow's `tf.train.ExponentialMovingAverage`
/// (`num_updates` warm-up); the IAF reference code evaluates with an average of decay 0.999.
#[derive(Debug, Clone)]
pub struct Ema {
    decay: f64,
    warmup: bool,
    updates: u64,
    shadow: BTreeMap<String, Tensor>,
}

impl Ema {
    /// An empty average with the given decay, warmed up ([`Ema::decay_at`]).
    ///
    /// # Errors
    /// `decay` outside `(0, 1)`.
    pub fn new(decay: f64) -> Result<Self> {
        Self::with_warmup(decay, true)
    }

    /// An empty average with the given decay, with or without the warm-up of the decay.
    ///
    /// # Errors
    /// `decay` outside `(0, 1)`.
    pub fn with_warmup(decay: f64, warmup: bool) -> Result<Self> {
        if !(decay > 0.0 && decay < 1.0) {
            candle::bail!("ema: decay {decay} must lie in (0, 1)");
        }
        Ok(Self {
            decay,
            warmup,
            updates: 0,
            shadow: BTreeMap::new(),
        })
    }

    /// The decay applied by update number `t + 1` (`t` updates before it):
    /// `min(decay, (1 + t) / (10 + t))` with the warm-up, `decay` without.
    pub fn decay_at(&self, t: u64) -> f64 {
        if self.warmup {
            let t = t as f64;
            self.decay.min((1.0 + t) / (10.0 + t))
        } else {
            self.decay
        }
    }

    /// The largest weight the warmed-up average can leave on the parameters of its first
    /// update after `n ≥ 1` updates, whatever the decay: `10 · n! · 9! / (n + 9)!`, the
    /// product of `(1 + t) / (10 + t)` over `t = 1 .. n−1`.
    pub fn initial_weight_bound(n: u64) -> f64 {
        product_over_updates(n, |t| (1.0 + t as f64) / (10.0 + t as f64))
    }

    /// Folds the current parameter values in (the first update copies them).
    ///
    /// # Errors
    /// Tensor errors.
    pub fn update(&mut self, params: &[(String, Var)]) -> Result<()> {
        let d = self.decay_at(self.updates);
        for (name, var) in params {
            let current = var.as_tensor().detach();
            let next = match self.shadow.get(name) {
                Some(s) => ((s * d)? + (current * (1.0 - d))?)?,
                None => current.copy()?,
            };
            self.shadow.insert(name.clone(), next);
        }
        self.updates += 1;
        Ok(())
    }

    /// The configured decay, the warm-up, the updates so far and the weight left on the
    /// first update's parameters.
    pub fn summary(&self) -> EmaSummary {
        EmaSummary {
            decay: self.decay,
            warmup: self.warmup,
            updates: self.updates,
            initial_weight: product_over_updates(self.updates, |t| self.decay_at(t)),
        }
    }

    /// Writes the averages into the parameters and returns the values they replaced
    /// (parameters without an average keep their value).
    ///
    /// # Errors
    /// Tensor errors.
    pub fn swap_in(&self, params: &[(String, Var)]) -> Result<Vec<Tensor>> {
        let mut backup = Vec::with_capacity(params.len());
        for (name, var) in params {
            backup.push(var.as_tensor().copy()?);
            if let Some(s) = self.shadow.get(name) {
                var.set(s)?;
            }
        }
        Ok(backup)
    }

    /// Restores the values returned by [`Ema::swap_in`].
    ///
    /// # Errors
    /// Tensor errors.
    pub fn swap_out(&self, params: &[(String, Var)], backup: &[Tensor]) -> Result<()> {
        for ((_, var), b) in params.iter().zip(backup) {
            var.set(b)?;
        }
        Ok(())
    }

    /// The averages as named tensors (`ema.<name>`) and the number of updates
    /// (`ema_updates`, an `i64` scalar), for a checkpoint.
    ///
    /// # Errors
    /// Tensor errors.
    pub fn state_tensors(&self) -> Result<HashMap<String, Tensor>> {
        let mut out: HashMap<String, Tensor> = self
            .shadow
            .iter()
            .map(|(k, v)| (format!("ema.{k}"), v.clone()))
            .collect();
        let updates = i64::try_from(self.updates)
            .map_err(|_| candle::Error::Msg("ema: update count overflows i64".into()))?;
        out.insert(
            UPDATES_KEY.into(),
            Tensor::new(updates, &Device::Cpu)?.to_dtype(DType::I64)?,
        );
        Ok(out)
    }

    /// Restores the state saved by [`Ema::state_tensors`]; a checkpoint written before the
    /// update count was saved gets `updates_if_missing` (a trainer passes its step count: it
    /// updates the average once per step), one without averages starts a fresh average.
    /// Training then continues bit for bit with the same decay schedule.
    ///
    /// # Errors
    /// A count that is not a non-negative integer scalar.
    pub fn load_state(
        &mut self,
        tensors: &HashMap<String, Tensor>,
        updates_if_missing: u64,
    ) -> Result<()> {
        self.shadow = tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("ema.").map(|n| (n.to_string(), v.clone())))
            .collect();
        // No averages saved (the average was switched on after that checkpoint): a fresh one.
        let updates_if_missing = if self.shadow.is_empty() {
            0
        } else {
            updates_if_missing
        };
        self.updates = match tensors.get(UPDATES_KEY) {
            Some(t) => {
                let n = t.to_dtype(DType::I64)?.to_scalar::<i64>()?;
                u64::try_from(n).map_err(|_| {
                    candle::Error::Msg(format!("ema: saved update count {n} is negative"))
                })?
            }
            None => updates_if_missing,
        };
        Ok(())
    }
}

/// `Π_{t=1}^{n−1} decay(t)`: the weight `n` updates leave on the first one's parameters
/// (the first update copies them; update `t + 1` multiplies the old average by `decay(t)`).
fn product_over_updates(n: u64, decay: impl Fn(u64) -> f64) -> f64 {
    (1..n).fold(1.0, |w, t| w * decay(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(var: &Var) -> f64 {
        var.as_tensor().to_vec1::<f64>().unwrap_or_default()[0]
    }

    #[test]
    fn averages_and_swaps() -> Result<()> {
        let var = Var::new(&[0.0f64], &Device::Cpu)?;
        let params = vec![("p".to_string(), var.clone())];
        let mut ema = Ema::with_warmup(0.5, false)?;
        ema.update(&params)?; // shadow 0
        var.set(&Tensor::new(&[4.0f64], &Device::Cpu)?)?;
        ema.update(&params)?; // shadow 2
        let backup = ema.swap_in(&params)?;
        assert_eq!(scalar(&var), 2.0);
        ema.swap_out(&params, &backup)?;
        assert_eq!(scalar(&var), 4.0);
        let mut other = Ema::with_warmup(0.5, false)?;
        other.load_state(&ema.state_tensors()?, 0)?;
        assert_eq!(other.state_tensors()?["ema.p"].to_vec1::<f64>()?, vec![2.0]);
        assert_eq!(other.summary(), ema.summary());
        assert_eq!(ema.summary().initial_weight, 0.5);
        Ok(())
    }

    /// The parameters of the first update are 1, every later update's are 0: the average is
    /// then exactly the weight left on the first update.
    fn weight_left(ema: &mut Ema, n: u64) -> Result<f64> {
        let var = Var::new(&[1.0f64], &Device::Cpu)?;
        let params = vec![("p".to_string(), var.clone())];
        ema.update(&params)?;
        var.set(&Tensor::new(&[0.0f64], &Device::Cpu)?)?;
        for _ in 1..n {
            ema.update(&params)?;
        }
        ema.swap_in(&params)?;
        Ok(scalar(&var))
    }

    #[test]
    fn warmup_leaves_almost_no_weight_on_the_first_parameters() -> Result<()> {
        // 120 steps (the reproduction of a short ResNet run): 0.999^119 = 0.888 without
        // the warm-up; at most 10·120!·9!/129! ≈ 4.5e-13 with it.
        let bound = Ema::initial_weight_bound(120);
        assert!(bound < 1e-12, "{bound}");
        let mut ema = Ema::new(0.999)?;
        let left = weight_left(&mut ema, 120)?;
        assert!(left <= bound * (1.0 + 1e-9), "{left} > {bound}");
        assert!((ema.summary().initial_weight - left).abs() <= 1e-15);
        let mut plain = Ema::with_warmup(0.999, false)?;
        let left = weight_left(&mut plain, 120)?;
        assert!((left - 0.999f64.powi(119)).abs() < 1e-12, "{left}");
        assert!((plain.summary().initial_weight - left).abs() < 1e-12);
        // The bound's closed form, and the decay schedule's ceiling.
        let closed = |n: u64| -> f64 {
            let mut w = 10.0;
            for k in 1..=9 {
                w *= k as f64 / (n + k) as f64;
            }
            w
        };
        for n in [1, 2, 5, 50, 1000] {
            let b = Ema::initial_weight_bound(n);
            assert!(
                (b - closed(n)).abs() <= 1e-12 * closed(n).max(1e-300),
                "{n}"
            );
        }
        assert_eq!(ema.decay_at(0), 0.1);
        assert_eq!(ema.decay_at(9000), 0.999);
        assert!(ema.decay_at(8989) < 0.999);
        Ok(())
    }

    #[test]
    fn state_round_trip_continues_bit_for_bit() -> Result<()> {
        let var = Var::new(&[0.3f32, -1.0], &Device::Cpu)?;
        let params = vec![("w".to_string(), var.clone())];
        let step = |k: usize| Tensor::new(&[0.1f32 * k as f32, (k as f32).sin()], &Device::Cpu);
        let mut straight = Ema::new(0.99)?;
        let mut first = Ema::new(0.99)?;
        for k in 0..7 {
            var.set(&step(k)?)?;
            straight.update(&params)?;
            first.update(&params)?;
        }
        let mut resumed = Ema::new(0.99)?;
        resumed.load_state(&first.state_tensors()?, 0)?;
        assert_eq!(resumed.summary(), first.summary());
        for k in 7..15 {
            var.set(&step(k)?)?;
            straight.update(&params)?;
            resumed.update(&params)?;
        }
        let a = straight.state_tensors()?;
        let b = resumed.state_tensors()?;
        assert_eq!(a["ema.w"].to_vec1::<f32>()?, b["ema.w"].to_vec1::<f32>()?);
        assert_eq!(straight.summary(), resumed.summary());
        // A checkpoint without the count takes the caller's.
        let mut old = a.clone();
        old.remove(UPDATES_KEY);
        let mut legacy = Ema::new(0.99)?;
        legacy.load_state(&old, 15)?;
        assert_eq!(legacy.summary(), straight.summary());
        // A checkpoint without averages starts a fresh one, whatever the step count.
        let mut fresh = Ema::new(0.99)?;
        fresh.load_state(&HashMap::new(), 15)?;
        assert_eq!(fresh.summary().updates, 0);
        assert_eq!(fresh.summary().initial_weight, 1.0);
        Ok(())
    }

    #[test]
    fn invalid_decay_is_refused() {
        for d in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
            let err = Ema::new(d).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("must lie in (0, 1)"), "{d}: {err}");
        }
    }
}
