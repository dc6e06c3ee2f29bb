//! What the long jobs report: whole jobs whose counts reach their totals (the pilot's
//! transitions included), running figures, and final figures equal to the reports'.
#![allow(clippy::unwrap_used)]

use candle::{DType, Device};
use vaekit_core::{NoiseSource, ProgressEvent, ProgressLog, SeededNoise, Stat};
use vaekit_eval::*;
use vaekit_nets::Pass;
use vaekit_objectives::{GenerativeModel, LinearGaussian};

const P: usize = 6;
const D: usize = 2;

fn model() -> LinearGaussian {
    let w = SeededNoise::new(1)
        .standard_normal(&(P, D).into(), DType::F64, &Device::Cpu)
        .unwrap();
    let b = SeededNoise::new(2)
        .standard_normal(&P.into(), DType::F64, &Device::Cpu)
        .unwrap();
    LinearGaussian::new(w, b, 0.7).unwrap()
}

/// `(done, stats)` of every update.
type Updates = Vec<(u64, Vec<Stat>)>;

/// `(job, total, unit, updates, final summary)` of a log with one job.
fn only_job(log: &ProgressLog) -> (String, u64, &'static str, Updates, Vec<Stat>) {
    log.check().unwrap();
    let mut updates = Vec::new();
    let (mut job, mut summary) = (None, None);
    for e in &log.events {
        match e {
            ProgressEvent::Start {
                job: j,
                total,
                unit,
            } => job = Some((j.clone(), *total, *unit)),
            ProgressEvent::Update { done, stats } => updates.push((*done, stats.clone())),
            ProgressEvent::Finish { summary: s } => summary = Some(s.clone()),
        }
    }
    let (name, total, unit) = job.unwrap();
    (name, total, unit, updates, summary.unwrap())
}

fn stat(stats: &[Stat], name: &str) -> f64 {
    stats.iter().find(|(n, _)| *n == name).unwrap().1
}

#[test]
fn importance_sampling_reports_points_and_its_running_nll() {
    let model = model();
    let q = model.posterior_encoder().unwrap();
    let q = vaekit_objectives::EncoderFlow::new(q, vaekit_flows::FlowChain::default());
    let (x, _) = model
        .sample(7, &mut SeededNoise::new(3), Pass::Eval)
        .unwrap();
    let cfg = ImportanceConfig {
        num_samples: 10,
        chunk: 4,
        batch_size: 3,
    };
    let mut log = ProgressLog::default();
    let r =
        importance_sampled_log_likelihood(&q, &model, &x, &cfg, &mut SeededNoise::new(4), &mut log)
            .unwrap();
    let (job, total, unit, updates, summary) = only_job(&log);
    assert_eq!((job.as_str(), total, unit), ("IS-10", 7, "points"));
    assert_eq!(updates.iter().map(|u| u.0).collect::<Vec<_>>(), [3, 6, 7]);
    let first: f64 = -r.log_likelihoods[..3].iter().sum::<f64>() / 3.0;
    assert!((stat(&updates[0].1, "nll") - first).abs() < 1e-12);
    assert_eq!(stat(&summary, "nll"), r.mean_nll);
    assert_eq!(stat(&summary, "se"), r.std_error);
}

#[test]
fn hais_and_bdmc_count_every_transition_with_acceptance_and_step_size() {
    let model = model();
    let q = model.posterior_encoder().unwrap();
    let q = vaekit_objectives::EncoderFlow::new(q, vaekit_flows::FlowChain::default());
    let (x, _) = model
        .sample(5, &mut SeededNoise::new(5), Pass::Eval)
        .unwrap();
    let cfg = AisConfig {
        num_steps: 8,
        chains: 4,
        batch_size: 2,
        start: AisStart::Encoder,
        ..AisConfig::default()
    };
    // Three batches; per batch 7 transitions of the estimating run and, with the default
    // pilot tuning, 7 of the pilot.
    let betas = cfg.schedule.betas(cfg.num_steps).unwrap().len();
    assert_eq!(betas, 9);
    let mut log = ProgressLog::default();
    let r = ais_log_likelihood(&q, &model, &x, &cfg, &mut SeededNoise::new(6), &mut log).unwrap();
    let (job, total, unit, updates, summary) = only_job(&log);
    assert_eq!(
        (job.as_str(), total, unit),
        ("HAIS", 3 * 2 * 7, "transitions")
    );
    assert_eq!(updates.len() as u64, total);
    assert!(updates.iter().all(|(_, s)| {
        let a = stat(s, "accept");
        (0.0..=1.0).contains(&a) && stat(s, "step") > 0.0
    }));
    // The running NLL appears once the first batch is done.
    assert!(
        updates[..14]
            .iter()
            .all(|(_, s)| s.iter().all(|(n, _)| *n != "nll"))
    );
    assert!(stat(&updates[14].1, "nll").is_finite());
    assert_eq!(stat(&summary, "nll"), r.mean_nll);

    // BDMC: pilot, forward and reverse per batch.
    let mut log = ProgressLog::default();
    let r = bdmc(&q, &model, 3, &cfg, &mut SeededNoise::new(7), &mut log).unwrap();
    let (job, total, _, updates, summary) = only_job(&log);
    assert_eq!((job.as_str(), total), ("BDMC", 2 * 3 * 7));
    assert_eq!(updates.len() as u64, total);
    assert_eq!(
        (
            stat(&summary, "lower"),
            stat(&summary, "upper"),
            stat(&summary, "gap")
        ),
        (r.lower, r.upper, r.gap)
    );
}

#[test]
fn a_failed_job_still_finishes_with_an_empty_summary() {
    let model = model();
    let q = model.posterior_encoder().unwrap();
    let q = vaekit_objectives::EncoderFlow::new(q, vaekit_flows::FlowChain::default());
    let (x, _) = model
        .sample(2, &mut SeededNoise::new(8), Pass::Eval)
        .unwrap();
    // A NaN data point makes the estimate non-finite: an error, and the job closed.
    let x = x
        .slice_assign(
            &[0..1, 0..1],
            &candle::Tensor::full(f64::NAN, (1, 1), &Device::Cpu).unwrap(),
        )
        .unwrap();
    let cfg = ImportanceConfig {
        num_samples: 4,
        chunk: 4,
        batch_size: 2,
    };
    let mut log = ProgressLog::default();
    assert!(
        importance_sampled_log_likelihood(&q, &model, &x, &cfg, &mut SeededNoise::new(9), &mut log)
            .is_err()
    );
    assert_eq!(
        log.events.last(),
        Some(&ProgressEvent::Finish { summary: vec![] })
    );
}
