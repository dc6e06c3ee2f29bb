//! Closed forms shared by the exact-model tests, in plain f64.
#![allow(dead_code)]

pub mod two_layer;

/// `ln 2π`.
pub const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// `log N(x; mean, cov)` by a Cholesky factorisation of `cov` (`P x P`, positive definite).
pub fn gaussian_log_density(x: &[f64], mean: &[f64], cov: &[Vec<f64>]) -> f64 {
    let p = x.len();
    let mut l = vec![vec![0.0; p]; p];
    for i in 0..p {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|q| l[i][q] * l[j][q]).sum();
            l[i][j] = if i == j {
                (cov[i][i] - sum).sqrt()
            } else {
                (cov[i][j] - sum) / l[j][j]
            };
        }
    }
    let mut y = vec![0.0; p];
    for i in 0..p {
        y[i] = (x[i] - mean[i] - (0..i).map(|q| l[i][q] * y[q]).sum::<f64>()) / l[i][i];
    }
    -0.5 * y.iter().map(|v| v * v).sum::<f64>()
        - (0..p).map(|i| l[i][i].ln()).sum::<f64>()
        - 0.5 * p as f64 * LN_2PI
}

/// The IWAE-`k` bound from log-weights `[N, S]` (`S` a multiple of `k`): the mean over data
/// points and over the `S / k` groups of the log-mean-exp of each group.
pub fn iwae_bound(log_weights: &candle::Tensor, k: usize) -> f64 {
    let (n, s) = log_weights.dims2().unwrap();
    let groups = log_weights.reshape((n, s / k, k)).unwrap();
    vaekit_core::log_mean_exp(&groups, candle::D::Minus1, false)
        .unwrap()
        .mean_all()
        .unwrap()
        .to_scalar::<f64>()
        .unwrap()
}

/// `log Σ_k exp(terms_k)`.
pub fn log_sum_exp(terms: &[f64]) -> f64 {
    let m = terms.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + terms.iter().map(|t| (t - m).exp()).sum::<f64>().ln()
}

/// `A B` of row-major matrices.
pub fn matmul(a: &[Vec<f64>], b: &[Vec<f64>]) -> Vec<Vec<f64>> {
    a.iter()
        .map(|row| {
            (0..b[0].len())
                .map(|j| row.iter().zip(b).map(|(x, bj)| x * bj[j]).sum())
                .collect()
        })
        .collect()
}

/// `Aᵀ`.
pub fn transpose(a: &[Vec<f64>]) -> Vec<Vec<f64>> {
    (0..a[0].len())
        .map(|j| a.iter().map(|row| row[j]).collect())
        .collect()
}

/// `M⁻¹ v` by Gaussian elimination with partial pivoting (`M` square, non-singular).
pub fn solve(m: &[Vec<f64>], v: &[f64]) -> Vec<f64> {
    let n = v.len();
    let mut a: Vec<Vec<f64>> = m
        .iter()
        .zip(v)
        .map(|(row, &b)| row.iter().copied().chain(std::iter::once(b)).collect())
        .collect();
    for col in 0..n {
        let pivot = (col..n)
            .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
            .unwrap_or(col);
        a.swap(col, pivot);
        let pivot_row = a[col].clone();
        for (r, row) in a.iter_mut().enumerate() {
            if r != col {
                let f = row[col] / pivot_row[col];
                for (x, p) in row.iter_mut().zip(&pivot_row).skip(col) {
                    *x -= f * p;
                }
            }
        }
    }
    (0..n).map(|i| a[i][n] / a[i][i]).collect()
}
