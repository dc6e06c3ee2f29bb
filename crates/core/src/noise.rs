//! The `NoiseSource` trait: the one place randomness enters vaekit.
//!
//! Every sampling API in vaekit takes `&mut dyn NoiseSource` explicitly. candle's own CPU
//! generator cannot be seeded (`Device::set_seed` fails on CPU), so `Tensor::randn` and
//! `Tensor::rand` are never used for anything that must be reproducible.

use candle::{DType, Device, Result, Shape, Tensor};

/// A source of random tensors and random host bits.
///
/// Implementations must be deterministic functions of their state: two sources in the same
/// state produce the same values, bit for bit, for the same sequence of calls.
///
/// # Shapes
/// Tensors come back with exactly the requested `shape`, `dtype` and `device`.
///
/// # Errors
/// Non-float dtypes are rejected for `standard_normal` and `uniform`.
pub trait NoiseSource: Send {
    /// A tensor of independent N(0, 1) draws.
    fn standard_normal(&mut self, shape: &Shape, dtype: DType, device: &Device) -> Result<Tensor>;

    /// A tensor of independent U[0, 1) draws.
    fn uniform(&mut self, shape: &Shape, dtype: DType, device: &Device) -> Result<Tensor>;

    /// Fills `out` with independent, uniformly distributed 64-bit words (host-side decisions:
    /// shuffles, splits, index draws).
    fn fill_u64(&mut self, out: &mut [u64]) -> Result<()>;
}

/// A uniformly random permutation of `0..n` (Fisher–Yates), drawn from `noise`.
///
/// The index for position `i` is `(u * (i + 1)) >> 64` for a fresh 64-bit word `u`; its bias
/// is below `n / 2^64`, i.e. invisible for any data set that fits in memory.
///
/// # Errors
/// Only those of the noise source.
pub fn permutation(noise: &mut dyn NoiseSource, n: usize) -> Result<Vec<usize>> {
    let mut perm: Vec<usize> = (0..n).collect();
    if n < 2 {
        return Ok(perm);
    }
    let mut words = vec![0u64; n - 1];
    noise.fill_u64(&mut words)?;
    for (k, i) in (1..n).rev().enumerate() {
        let j = ((u128::from(words[k]) * (i as u128 + 1)) >> 64) as usize;
        perm.swap(i, j);
    }
    Ok(perm)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SeededNoise;

    #[test]
    fn permutation_is_a_permutation_and_seeded() -> Result<()> {
        let p1 = permutation(&mut SeededNoise::new(3), 1000)?;
        let p2 = permutation(&mut SeededNoise::new(3), 1000)?;
        let p3 = permutation(&mut SeededNoise::new(4), 1000)?;
        assert_eq!(p1, p2);
        assert_ne!(p1, p3);
        let mut sorted = p1.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(
            permutation(&mut SeededNoise::new(3), 0)?,
            Vec::<usize>::new()
        );
        assert_eq!(permutation(&mut SeededNoise::new(3), 1)?, vec![0]);
        Ok(())
    }

    /// Each of the 6 permutations of 3 items appears with probability 1/6: 60000 draws, a
    /// chi-square test with 5 degrees of freedom at the 1e-6 level (critical value 35.9).
    #[test]
    fn permutation_is_uniform() -> Result<()> {
        let mut noise = SeededNoise::new(11);
        let mut counts = std::collections::HashMap::new();
        let draws = 60_000;
        for _ in 0..draws {
            *counts.entry(permutation(&mut noise, 3)?).or_insert(0usize) += 1;
        }
        assert_eq!(counts.len(), 6);
        let expected = draws as f64 / 6.0;
        let chi2: f64 = counts
            .values()
            .map(|&c| (c as f64 - expected).powi(2) / expected)
            .sum();
        assert!(chi2 < 35.9, "chi2 = {chi2}");
        Ok(())
    }
}
