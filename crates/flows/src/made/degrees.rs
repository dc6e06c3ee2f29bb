//! Degree assignment and masks.

use candle::Result;
use serde::{Deserialize, Serialize};
use vaekit_core::{SeededNoise, permutation};

/// The autoregressive order of the latent dimensions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Ordering {
    /// Dimension `i` comes `i`-th.
    #[default]
    Natural,
    /// The reverse order.
    Reversed,
    /// A random order drawn from `seed`.
    Random {
        /// Seed of the permutation.
        seed: u64,
    },
}

/// The degree (1-based position in the order) of each input dimension.
///
/// # Errors
/// Noise-source errors.
pub fn input_degrees(dim: usize, ordering: Ordering) -> Result<Vec<usize>> {
    Ok(match ordering {
        Ordering::Natural => (1..=dim).collect(),
        Ordering::Reversed => (1..=dim).rev().collect(),
        Ordering::Random { seed } => permutation(&mut SeededNoise::new(seed), dim)?
            .into_iter()
            .map(|p| p + 1)
            .collect(),
    })
}

/// Degrees of `width` hidden units for a `dim`-dimensional MADE, repeated cyclically:
/// `1, .., dim-1` without a context (Germain et al.), `0, 1, .., dim-1` with one. Degree-0
/// units see no input, only the context, and feed every output: without them the first
/// dimension in the ordering would get constant `(m, s)`, blind to the context.
pub fn hidden_degrees(width: usize, dim: usize, with_context: bool) -> Vec<usize> {
    if with_context || dim <= 1 {
        (0..width).map(|k| k % dim.max(1)).collect()
    } else {
        (0..width).map(|k| 1 + k % (dim - 1)).collect()
    }
}

/// Masks (`[out, in]`, 0/1) for a MADE with input degrees `input`, hidden layers of degrees
/// `hidden`, `extra_inputs` context units concatenated to the input (connected to every first
/// hidden unit) and `heads` output blocks of size `dim`.
///
/// Connectivity (Germain et al., arXiv 1502.03509): input `i` -> hidden `k` iff
/// `m(k) >= m(i)`; hidden -> hidden iff `m(k') >= m(k)`; hidden `k` -> output `j` iff
/// `m(j) > m(k)`. Output `j` therefore depends only on inputs of smaller degree.
pub fn masks(
    input: &[usize],
    hidden: &[Vec<usize>],
    extra_inputs: usize,
    heads: usize,
) -> Vec<Vec<Vec<f64>>> {
    let mut out = Vec::with_capacity(hidden.len() + 1);
    let mut prev: Vec<usize> = input.to_vec();
    for (l, layer) in hidden.iter().enumerate() {
        let mask = layer
            .iter()
            .map(|&mk| {
                let mut row: Vec<f64> = prev
                    .iter()
                    .map(|&mi| if mk >= mi { 1.0 } else { 0.0 })
                    .collect();
                if l == 0 {
                    row.extend(std::iter::repeat_n(1.0, extra_inputs));
                }
                row
            })
            .collect();
        out.push(mask);
        prev = layer.clone();
    }
    let mut last = Vec::with_capacity(heads * input.len());
    for _ in 0..heads {
        for &mj in input {
            let mut row: Vec<f64> = prev
                .iter()
                .map(|&mk| if mj > mk { 1.0 } else { 0.0 })
                .collect();
            if hidden.is_empty() {
                row.extend(std::iter::repeat_n(1.0, extra_inputs));
            }
            last.push(row);
        }
    }
    out.push(last);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn degrees_and_connectivity() -> Result<()> {
        assert_eq!(input_degrees(4, Ordering::Natural)?, vec![1, 2, 3, 4]);
        assert_eq!(input_degrees(4, Ordering::Reversed)?, vec![4, 3, 2, 1]);
        let r = input_degrees(6, Ordering::Random { seed: 3 })?;
        let mut sorted = r.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(r, input_degrees(6, Ordering::Random { seed: 3 })?);
        assert_eq!(hidden_degrees(6, 4, false), vec![1, 2, 3, 1, 2, 3]);
        assert_eq!(hidden_degrees(8, 4, true), vec![0, 1, 2, 3, 0, 1, 2, 3]);
        assert_eq!(hidden_degrees(3, 1, false), vec![0, 0, 0]);
        // Composite connectivity: output j reachable from input i iff deg(i) < deg(j).
        let input = input_degrees(4, Ordering::Random { seed: 1 })?;
        let hidden = vec![hidden_degrees(8, 4, true), hidden_degrees(8, 4, true)];
        let m = masks(&input, &hidden, 0, 1);
        let reach = |a: &Vec<Vec<f64>>, b: &Vec<Vec<f64>>| -> Vec<Vec<f64>> {
            a.iter()
                .map(|row| {
                    (0..b[0].len())
                        .map(|j| row.iter().zip(b).map(|(x, r)| x * r[j]).sum())
                        .collect()
                })
                .collect()
        };
        let total = reach(&m[2], &reach(&m[1], &m[0]));
        for (j, row) in total.iter().enumerate() {
            for (i, &paths) in row.iter().enumerate() {
                assert_eq!(paths > 0.0, input[i] < input[j], "output {j} <- input {i}");
            }
        }
        Ok(())
    }
}
