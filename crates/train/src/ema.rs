//! Exponential moving average of the parameters, for evaluation.

use candle::{Result, Tensor, Var};
use std::collections::{BTreeMap, HashMap};

/// `shadow ← decay · shadow + (1 - decay) · param` after every step, per parameter name.
/// Evaluate with [`Ema::swap_in`] / [`Ema::swap_out`].
///
/// # References
/// Polyak & Juditsky, 1992; the IAF reference code evaluates with an EMA (decay 0.999).
#[derive(Debug, Clone)]
pub struct Ema {
    decay: f64,
    shadow: BTreeMap<String, Tensor>,
}

impl Ema {
    /// An empty average with the given decay.
    pub fn new(decay: f64) -> Self {
        Self {
            decay,
            shadow: BTreeMap::new(),
        }
    }

    /// Folds the current parameter values in (the first call copies them).
    ///
    /// # Errors
    /// Tensor errors.
    pub fn update(&mut self, params: &[(String, Var)]) -> Result<()> {
        for (name, var) in params {
            let current = var.as_tensor().detach();
            let next = match self.shadow.get(name) {
                Some(s) => ((s * self.decay)? + (current * (1.0 - self.decay))?)?,
                None => current.copy()?,
            };
            self.shadow.insert(name.clone(), next);
        }
        Ok(())
    }

    /// Writes the averages into the parameters and returns the values they replaced.
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

    /// The averages as named tensors (`ema.<name>`) for a checkpoint.
    pub fn state_tensors(&self) -> HashMap<String, Tensor> {
        self.shadow
            .iter()
            .map(|(k, v)| (format!("ema.{k}"), v.clone()))
            .collect()
    }

    /// Restores averages saved by [`Ema::state_tensors`].
    pub fn load_state(&mut self, tensors: &HashMap<String, Tensor>) {
        self.shadow = tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("ema.").map(|n| (n.to_string(), v.clone())))
            .collect();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle::Device;

    #[test]
    fn averages_and_swaps() -> Result<()> {
        let var = Var::new(&[0.0f64], &Device::Cpu)?;
        let params = vec![("p".to_string(), var.clone())];
        let mut ema = Ema::new(0.5);
        ema.update(&params)?; // shadow 0
        var.set(&Tensor::new(&[4.0f64], &Device::Cpu)?)?;
        ema.update(&params)?; // shadow 2
        let backup = ema.swap_in(&params)?;
        assert_eq!(var.as_tensor().to_vec1::<f64>()?, vec![2.0]);
        ema.swap_out(&params, &backup)?;
        assert_eq!(var.as_tensor().to_vec1::<f64>()?, vec![4.0]);
        let mut other = Ema::new(0.5);
        other.load_state(&ema.state_tensors());
        assert_eq!(other.state_tensors()["ema.p"].to_vec1::<f64>()?, vec![2.0]);
        Ok(())
    }
}
