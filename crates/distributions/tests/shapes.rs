//! `sample_shape ++ batch_shape ++ event_shape` for every family, and `log_prob` returning
//! the value's shape without the event dimensions.
#![allow(clippy::unwrap_used)]

use candle::{DType, Device, Tensor};
use vaekit_core::SeededNoise;
use vaekit_distributions::*;

fn zeros(dims: &[usize]) -> Tensor {
    Tensor::zeros(dims, DType::F32, &Device::Cpu).unwrap()
}

fn ones(dims: &[usize]) -> Tensor {
    Tensor::ones(dims, DType::F32, &Device::Cpu).unwrap()
}

/// Checks shapes for a distribution with batch `[2, 3]`.
fn check(d: &dyn Distribution, event: &[usize]) {
    assert_eq!(d.batch_shape().dims(), &[2, 3], "{}", d.name());
    assert_eq!(d.event_shape().dims(), event, "{}", d.name());
    let x = d.sample(&[4, 5], &mut SeededNoise::new(0)).unwrap();
    let mut expected = vec![4, 5, 2, 3];
    expected.extend_from_slice(event);
    assert_eq!(x.dims(), expected.as_slice(), "{} sample", d.name());
    assert_eq!(
        d.log_prob(&x).unwrap().dims(),
        &[4, 5, 2, 3],
        "{} log_prob",
        d.name()
    );
    if let Some(r) = d.as_reparameterize() {
        assert_eq!(
            r.rsample(&[7], &mut SeededNoise::new(0)).unwrap().dims()[0],
            7
        );
    }
    // A single value broadcasts against the batch.
    let one = x
        .get(0)
        .unwrap()
        .get(0)
        .unwrap()
        .get(0)
        .unwrap()
        .get(0)
        .unwrap();
    assert_eq!(
        d.log_prob(&one).unwrap().dims(),
        &[2, 3],
        "{} broadcast log_prob",
        d.name()
    );
}

#[test]
fn every_family() {
    check(&Normal::new(zeros(&[2, 3]), ones(&[2, 3])).unwrap(), &[]);
    check(
        &StandardNormal::new((2, 3), DType::F32, &Device::Cpu).unwrap(),
        &[],
    );
    check(&Bernoulli::new(zeros(&[2, 3])).unwrap(), &[]);
    check(&Categorical::new(zeros(&[2, 3, 4])).unwrap(), &[]);
    check(&RelaxedBernoulli::new(0.5, zeros(&[2, 3])).unwrap(), &[]);
    check(
        &RelaxedOneHotCategorical::new(0.5, zeros(&[2, 3, 4])).unwrap(),
        &[4],
    );
    check(&Logistic::new(zeros(&[2, 3]), ones(&[2, 3])).unwrap(), &[]);
    check(
        &DiscretizedLogistic::new(zeros(&[2, 3]), ones(&[2, 3]), 256).unwrap(),
        &[],
    );
    check(
        &MixtureSameFamily::new(zeros(&[2, 3, 4]), zeros(&[2, 3, 4, 5]), ones(&[2, 3, 4, 5]))
            .unwrap(),
        &[5],
    );
    let loc = Tensor::cat(&[ones(&[2, 3, 1]), zeros(&[2, 3, 2])], 2).unwrap();
    check(&VonMisesFisher::new(loc, ones(&[2, 3])).unwrap(), &[3]);
    check(
        &SphereUniform::new(3, (2, 3), DType::F32, &Device::Cpu).unwrap(),
        &[3],
    );
    // Independent moves batch dimensions into the event.
    let d = Independent::new(Normal::new(zeros(&[2, 3, 6]), ones(&[2, 3, 6])).unwrap(), 1).unwrap();
    check(&d, &[6]);
    let d2 =
        Independent::new(Normal::new(zeros(&[2, 3, 6]), ones(&[2, 3, 6])).unwrap(), 2).unwrap();
    assert_eq!(
        (d2.batch_shape().dims(), d2.event_shape().dims()),
        (&[2][..], &[3, 6][..])
    );
    let x = d2.sample(&[4], &mut SeededNoise::new(0)).unwrap();
    assert_eq!(d2.log_prob(&x).unwrap().dims(), &[4, 2]);
    assert_eq!(d2.entropy().unwrap().dims(), &[2]);
}

#[test]
fn entropies_and_moments_have_the_batch_shape() {
    let n = Normal::new(zeros(&[2, 3]), ones(&[2, 3])).unwrap();
    assert_eq!(n.entropy().unwrap().dims(), &[2, 3]);
    assert_eq!(n.mean().unwrap().dims(), &[2, 3]);
    let c = Categorical::new(zeros(&[2, 3, 4])).unwrap();
    assert_eq!(c.entropy().unwrap().dims(), &[2, 3]);
    let m = MixtureSameFamily::new(zeros(&[2, 3, 4]), zeros(&[2, 3, 4, 5]), ones(&[2, 3, 4, 5]))
        .unwrap();
    assert_eq!(m.mean().unwrap().dims(), &[2, 3, 5]);
    assert_eq!(m.variance().unwrap().dims(), &[2, 3, 5]);
    let loc = Tensor::cat(&[ones(&[2, 3, 1]), zeros(&[2, 3, 2])], 2).unwrap();
    let v = VonMisesFisher::new(loc, ones(&[2, 3])).unwrap();
    assert_eq!(v.entropy().unwrap().dims(), &[2, 3]);
    assert_eq!(v.mean().unwrap().dims(), &[2, 3, 3]);
    assert_eq!(v.variance().unwrap().dims(), &[2, 3, 3]);
}
