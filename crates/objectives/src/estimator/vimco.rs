//! VIMCO: the multi-sample score-function estimator with leave-one-out baselines.

use crate::draw::Draw;
use crate::evaluation::Evaluation;
use crate::model::{GenerativeModel, InferenceNetwork};
use candle::{D, DType, Result, Tensor};
use vaekit_core::{NoiseSource, log_mean_exp};
use vaekit_nets::Pass;

/// `ln(e^a + e^b)`, exact at `-inf`.
fn log_add_exp(a: f64, b: f64) -> f64 {
    let m = a.max(b);
    if m == f64::NEG_INFINITY {
        m
    } else {
        m + ((a - m).exp() + (b - m).exp()).ln()
    }
}

/// For one data point's log-weights `l_1..l_K`: `ln Σ_{j≠s} e^{l_j}` for every `s`, from
/// prefix and suffix log-sum-exps (`O(K)` time and memory, no cancellation).
pub fn vimco_leave_one_out(log_w: &[f64]) -> Vec<f64> {
    let k = log_w.len();
    let mut prefix = vec![f64::NEG_INFINITY; k + 1];
    for j in 0..k {
        prefix[j + 1] = log_add_exp(prefix[j], log_w[j]);
    }
    let mut suffix = vec![f64::NEG_INFINITY; k + 1];
    for j in (0..k).rev() {
        suffix[j] = log_add_exp(suffix[j + 1], log_w[j]);
    }
    (0..k)
        .map(|s| log_add_exp(prefix[s], suffix[s + 1]))
        .collect()
}

/// VIMCO's per-sample learning signals `L - L_{-s}` for one data point (`K >= 2`), with
/// `L = ln (1/K) Σ_j w_j` and `L_{-s}` the same with `w_s` replaced by the geometric mean of
/// the others, `ln ŵ_{-s} = (Σ_{j≠s} l_j) / (K - 1)`.
///
/// # References
/// Mnih & Rezende, arXiv 1602.06725, equations 8-10.
pub fn vimco_signals(log_w: &[f64]) -> Vec<f64> {
    let k = log_w.len();
    let total: f64 = log_w.iter().sum();
    // With a `-inf` weight, `total - l` is `-inf - -inf`: sum the others directly.
    let finite = log_w.iter().all(|l| l.is_finite());
    let others_sum = |s: usize| -> f64 {
        if finite {
            total - log_w[s]
        } else {
            (0..k).filter(|&j| j != s).map(|j| log_w[j]).sum()
        }
    };
    let others = vimco_leave_one_out(log_w);
    let all = log_w.iter().copied().fold(f64::NEG_INFINITY, log_add_exp);
    let ln_k = (k as f64).ln();
    let bound = all - ln_k;
    others
        .iter()
        .enumerate()
        .map(|(s, &rest)| {
            let geometric = others_sum(s) / (k as f64 - 1.0);
            bound - (log_add_exp(rest, geometric) - ln_k)
        })
        .collect()
}

/// VIMCO on the IWAE bound with `K = num_samples >= 2`: the surrogate
/// `ln (1/K) Σ_s w_s + Σ_s (L - L_{-s}) ln q(z_s|x)` (signals held constant, `z` not
/// differentiated) gives the estimator's gradient for both networks. The signals are
/// computed per data point in f64 in `O(B·K)` time and memory on the host, from the
/// detached `[B, K]` log-weights, so the estimator runs on any device.
///
/// # Errors
/// `num_samples < 2`; tensor errors.
pub(crate) fn vimco(
    inference: &dyn InferenceNetwork,
    model: &dyn GenerativeModel,
    x: &Tensor,
    num_samples: usize,
    noise: &mut dyn NoiseSource,
    pass: Pass,
) -> Result<Evaluation> {
    if num_samples < 2 {
        candle::bail!("VIMCO needs at least 2 samples per data point, got {num_samples}");
    }
    let draw = Draw::sample(inference, model, x, num_samples, noise, pass)?;
    let rows = draw.log_w64.to_vec2::<f64>()?;
    let signals: Vec<f64> = rows.iter().flat_map(|r| vimco_signals(r)).collect();
    let dtype = draw.log_q.dtype();
    let signals = Tensor::from_vec(signals, draw.log_w64.shape(), x.device())?.to_dtype(dtype)?;
    let log_w = (&draw.log_p - &draw.log_q)?.to_dtype(DType::F64)?;
    let bound_b = log_mean_exp(&log_w, D::Minus1, false)?;
    let score = (signals * &draw.log_q)?.sum(D::Minus1)?;
    let surrogate = (bound_b.to_dtype(dtype)? + score)?.mean_all()?;
    let bound = bound_b.detach().mean_all()?.to_scalar::<f64>()?;
    draw.evaluation(surrogate.neg()?, None, bound)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive_log_sum_exp(v: &[f64]) -> f64 {
        let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
    }

    #[test]
    fn signals_match_the_quadratic_definition() {
        let lw = [-90.0, -95.5, -88.25, -300.0, -91.0];
        let k = lw.len() as f64;
        let l = naive_log_sum_exp(&lw) - k.ln();
        for (s, got) in vimco_signals(&lw).into_iter().enumerate() {
            let mut replaced = lw.to_vec();
            let others: Vec<f64> = lw
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != s)
                .map(|(_, &v)| v)
                .collect();
            replaced[s] = others.iter().sum::<f64>() / (k - 1.0);
            let want = l - (naive_log_sum_exp(&replaced) - k.ln());
            assert!((got - want).abs() < 1e-12, "{s}: {got} vs {want}");
        }
    }

    #[test]
    fn a_zero_weight_gives_finite_signals_for_the_others() {
        let out = vimco_signals(&[-10.0, f64::NEG_INFINITY, -12.0]);
        assert!(!out[1].is_nan());
        assert!(out[0].is_finite() && out[2].is_finite(), "{out:?}");
    }

    #[test]
    fn leave_one_out_has_no_cancellation() {
        // The dominant weight exceeds the others by e^700: a subtraction would give 0 or NaN.
        let lw = [0.0, -700.0, -701.0];
        let out = vimco_leave_one_out(&lw);
        let want = naive_log_sum_exp(&[-700.0, -701.0]);
        assert!((out[0] - want).abs() < 1e-12);
        assert!(out.iter().all(|v| v.is_finite()));
    }
}
