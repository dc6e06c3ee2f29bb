//! What `curves.png` shows: the run's per-epoch metrics and its final likelihood figures.

use crate::metrics::{EpochMetrics, read_metrics};
use crate::plots::{Marker, Panel, Scale, Series, write_png};
use anyhow::Result;
use serde_json::Value;
use std::path::Path;

/// The final NLL figures of a run's `results.json` as markers: importance sampling and,
/// when present, HAIS, each with its standard error.
pub fn nll_markers(results: &Value) -> Vec<Marker> {
    let mut markers = Vec::new();
    if let (Some(v), Some(e)) = (results["is_nll"].as_f64(), results["is_std_error"].as_f64()) {
        let k = results["is_samples"].as_u64().unwrap_or(0);
        markers.push(Marker {
            label: format!("IS-{k} NLL {v:.2} ± {e:.2}"),
            value: v,
            error: e,
        });
    }
    let hais = &results["hais"];
    if let (Some(v), Some(e)) = (hais["nll"].as_f64(), hais["std_error"].as_f64()) {
        markers.push(Marker {
            label: format!("HAIS NLL {v:.2} ± {e:.2}"),
            value: v,
            error: e,
        });
    }
    markers
}

/// The four panels of `curves.png`: train and test −ELBO with the final NLLs, KL and
/// reconstruction, the learning rate, and seconds per epoch.
pub fn panels(metrics: &[EpochMetrics], results: Option<&Value>) -> Vec<Panel> {
    let curve = |f: &dyn Fn(&EpochMetrics) -> f64| -> Vec<(f64, f64)> {
        metrics.iter().map(|m| (m.epoch as f64, f(m))).collect()
    };
    let averaged = metrics
        .iter()
        .any(|m| m.weights == Some(vaekit_train::Weights::Averaged));
    let mut bound = vec![
        Series {
            label: "train (mean over the epoch's steps)".into(),
            points: curve(&|m| m.train_neg_elbo),
        },
        Series {
            label: if averaged {
                "test (averaged weights)".into()
            } else {
                "test".into()
            },
            points: curve(&|m| m.test_neg_elbo),
        },
    ];
    if metrics.iter().any(|m| m.test_neg_elbo_current.is_some()) {
        bound.push(Series {
            label: "test (current weights)".into(),
            points: curve(&|m| m.test_neg_elbo_current.unwrap_or(f64::NAN)),
        });
    }
    vec![
        Panel {
            title: "negative ELBO (lower is better)".into(),
            scale: Scale::Linear,
            y_label: "nats per image".into(),
            series: bound,
            markers: results.map(nll_markers).unwrap_or_default(),
        },
        Panel {
            title: "KL and reconstruction (training)".into(),
            scale: Scale::Linear,
            y_label: "nats per image".into(),
            series: vec![
                Series {
                    label: "KL(q(z|x) ‖ p(z))".into(),
                    points: curve(&|m| m.kl),
                },
                Series {
                    label: "−E_q log p(x|z)".into(),
                    points: curve(&|m| -m.reconstruction),
                },
            ],
            markers: vec![],
        },
        Panel {
            title: "learning rate".into(),
            y_label: "learning rate".into(),
            scale: Scale::LogIfDecades,
            series: vec![Series {
                label: "lr".into(),
                points: curve(&|m| m.lr),
            }],
            markers: vec![],
        },
        Panel {
            title: "time per epoch".into(),
            scale: Scale::Linear,
            y_label: "seconds".into(),
            series: vec![Series {
                label: "training and test bound".into(),
                points: curve(&|m| m.seconds),
            }],
            markers: vec![],
        },
    ]
}

/// Draws `curves.png` of the run in `dir` from its `metrics.jsonl` and, `with_results`, the
/// final figures of its `results.json` (when it exists and parses).
///
/// # Errors
/// `metrics.jsonl` cannot be read; drawing or writing the picture fails.
pub fn write_curves(dir: &Path, title: &str, with_results: bool) -> Result<()> {
    let metrics = read_metrics(dir)?;
    let results: Option<Value> = with_results
        .then(|| std::fs::read_to_string(dir.join("results.json")).ok())
        .flatten()
        .and_then(|t| serde_json::from_str(&t).ok());
    write_png(
        &dir.join("curves.png"),
        title,
        &panels(&metrics, results.as_ref()),
        1280,
        900,
    )
}
