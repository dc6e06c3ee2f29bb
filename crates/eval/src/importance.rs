//! Importance-sampled `log p(x)` with the inference network as proposal.

use candle::{D, DType, Result, Tensor};
use serde::{Deserialize, Serialize};
use vaekit_core::{NoiseSource, Progress, log_sum_exp, report_job};
use vaekit_nets::Pass;
use vaekit_objectives::{GenerativeModel, InferenceNetwork};

/// How many samples, in what chunks, over how many data points at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportanceConfig {
    /// `K`, importance samples per data point (5000 in the IWAE paper's protocol).
    pub num_samples: usize,
    /// Samples drawn per pass (memory: `batch_size · chunk` decoder evaluations at once).
    pub chunk: usize,
    /// Data points per pass.
    pub batch_size: usize,
}

impl Default for ImportanceConfig {
    fn default() -> Self {
        Self {
            num_samples: 5000,
            chunk: 500,
            batch_size: 20,
        }
    }
}

/// The result of an importance-sampling evaluation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NllReport {
    /// Mean negative log-likelihood over the data points, nats.
    pub mean_nll: f64,
    /// Standard error of `mean_nll` over the data points.
    pub std_error: f64,
    /// Mean effective sample size `(Σ w)² / Σ w²` per data point (out of `num_samples`).
    pub mean_ess: f64,
    /// `K`.
    pub num_samples: usize,
    /// The estimate `log p̂(x)` for every data point, in order.
    pub log_likelihoods: Vec<f64>,
}

/// `log p̂(x) = log (1/K) Σ_k p(x, z_k) / q(z_k|x)`, `z_k ~ q(z|x)`, for every row of
/// `data: [N, P]`, streamed in chunks and accumulated in f64 (a running log-sum-exp, so `K`
/// can be large). The networks run in evaluation mode.
///
/// Reports to `progress` as a job named `IS-K` over the data points, with the running mean
/// NLL (`nll`) and effective sample size (`ess`) after every batch, and the final `nll` and
/// its standard error (`se`).
///
/// # Errors
/// Zero sizes; a non-finite estimate, reported with the data point's index.
///
/// # References
/// Rezende, Mohamed, Wierstra, arXiv 1401.4082, appendix E; Burda et al., arXiv 1509.00519,
/// section 5 (K = 5000).
pub fn importance_sampled_log_likelihood(
    inference: &dyn InferenceNetwork,
    model: &dyn GenerativeModel,
    data: &Tensor,
    config: &ImportanceConfig,
    noise: &mut dyn NoiseSource,
    progress: &mut dyn Progress,
) -> Result<NllReport> {
    // On vaekit's pool, where parallel ops join cheaply (in place when already there).
    vaekit_core::on_pool(|| -> Result<NllReport> {
        let ImportanceConfig {
            num_samples,
            chunk,
            batch_size,
        } = *config;
        if num_samples == 0 || chunk == 0 || batch_size == 0 {
            candle::bail!("importance sampling: num_samples, chunk and batch_size must be > 0");
        }
        let n = data.dim(0)?;
        let summary = |r: &NllReport| vec![("nll", r.mean_nll), ("se", r.std_error)];
        report_job(
            progress,
            &format!("IS-{num_samples}"),
            n as u64,
            "points",
            |progress| {
                let mut log_likelihoods = Vec::with_capacity(n);
                let mut ess = Vec::with_capacity(n);
                let mut start = 0;
                while start < n {
                    let b = batch_size.min(n - start);
                    let x = data.narrow(0, start, b)?;
                    let posterior = inference.forward(&x, Pass::Eval)?;
                    // Running log Σ w and log Σ w² per data point.
                    let mut lse: Option<Tensor> = None;
                    let mut lse2: Option<Tensor> = None;
                    let mut drawn = 0;
                    while drawn < num_samples {
                        let s = chunk.min(num_samples - drawn);
                        let sample = posterior.rsample_with_log_prob(s, noise)?;
                        let log_w = (model.log_prob(&x, &sample.z.detach(), Pass::Eval)?
                            - sample.log_q.detach())?
                        .to_dtype(DType::F64)?;
                        let c1 = log_sum_exp(&log_w, D::Minus1, true)?;
                        let c2 = log_sum_exp(&(&log_w * 2.0)?, D::Minus1, true)?;
                        lse = Some(match lse {
                            Some(a) => log_sum_exp(&Tensor::cat(&[a, c1], 1)?, D::Minus1, true)?,
                            None => c1,
                        });
                        lse2 = Some(match lse2 {
                            Some(a) => log_sum_exp(&Tensor::cat(&[a, c2], 1)?, D::Minus1, true)?,
                            None => c2,
                        });
                        drawn += s;
                    }
                    let (Some(lse), Some(lse2)) = (lse, lse2) else {
                        candle::bail!("importance sampling: no sample drawn")
                    };
                    let ll = (lse.squeeze(1)? - (num_samples as f64).ln())?.to_vec1::<f64>()?;
                    let e = ((lse.squeeze(1)? * 2.0)? - lse2.squeeze(1)?)?
                        .exp()?
                        .to_vec1::<f64>()?;
                    for (i, v) in ll.iter().enumerate() {
                        if !v.is_finite() {
                            candle::bail!(
                                "importance sampling: log p(x) of data point {} is {v}",
                                start + i
                            );
                        }
                    }
                    log_likelihoods.extend(ll);
                    ess.extend(e);
                    start += b;
                    let count = log_likelihoods.len() as f64;
                    progress.update(
                        start as u64,
                        &[
                            ("nll", -log_likelihoods.iter().sum::<f64>() / count),
                            ("ess", ess.iter().sum::<f64>() / count),
                        ],
                    );
                }
                let count = log_likelihoods.len() as f64;
                let (mean_ll, std_error) = crate::ais::mean_and_error(&log_likelihoods);
                Ok(NllReport {
                    mean_nll: -mean_ll,
                    std_error,
                    mean_ess: ess.iter().sum::<f64>() / count,
                    num_samples,
                    log_likelihoods,
                })
            },
            summary,
        )
    })
}
