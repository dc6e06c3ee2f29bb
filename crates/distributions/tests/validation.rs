//! Constructors and `log_prob` reject bad input with a message that states the rule.
#![allow(clippy::unwrap_used)]

use candle::{DType, Device, Tensor};
use vaekit_distributions::*;

fn t(v: &[f64]) -> Tensor {
    Tensor::new(v, &Device::Cpu).unwrap()
}

fn says<T: std::fmt::Debug>(r: candle::Result<T>, rule: &str) {
    let msg = r.unwrap_err().to_string();
    assert!(msg.contains(rule), "expected {rule:?} in {msg:?}");
}

#[test]
fn parameter_domains() {
    says(
        Normal::new(t(&[0.0]), t(&[0.0])),
        "Normal: scale must be > 0",
    );
    says(
        Normal::new(t(&[0.0]), t(&[-1.0])),
        "scale must be > 0, found -1e0",
    );
    says(
        Normal::new(t(&[f64::NAN]), t(&[1.0])),
        "Normal: loc must be finite",
    );
    says(
        Normal::from_log_scale(t(&[0.0]), t(&[f64::INFINITY])),
        "log_scale must be finite",
    );
    says(
        Normal::new(t(&[0.0, 1.0]), t(&[1.0])),
        "loc and scale must have the same shape",
    );
    says(
        Normal::new(Tensor::new(&[1u8], &Device::Cpu).unwrap(), t(&[1.0])),
        "loc must have a float dtype",
    );
    says(
        Bernoulli::new(t(&[f64::NAN])),
        "Bernoulli: logits must be finite",
    );
    says(
        Bernoulli::new(t(&[f64::INFINITY])),
        "Bernoulli: logits must be finite",
    );
    says(
        Categorical::new(t(&[0.0, f64::INFINITY])),
        "must not be NaN or +inf",
    );
    says(
        Categorical::new(t(&[f64::NEG_INFINITY, f64::NEG_INFINITY])),
        "at least one finite entry",
    );
    says(
        Categorical::new(Tensor::zeros((2, 0), DType::F32, &Device::Cpu).unwrap()),
        "K >= 1",
    );
    says(
        RelaxedBernoulli::new(0.0, t(&[0.0])),
        "temperature must be finite and > 0",
    );
    says(
        RelaxedBernoulli::new(f64::NAN, t(&[0.0])),
        "temperature must be finite and > 0",
    );
    says(
        RelaxedOneHotCategorical::new(-1.0, t(&[0.0, 1.0])),
        "temperature must be finite and > 0",
    );
    says(RelaxedOneHotCategorical::new(1.0, t(&[0.0])), "K >= 2");
    says(
        Logistic::new(t(&[0.0]), t(&[0.0])),
        "Logistic: scale must be > 0",
    );
    says(
        DiscretizedLogistic::new(t(&[0.0]), t(&[1.0]), 1),
        "num_bins must be >= 2",
    );
    says(
        MixtureSameFamily::new(t(&[0.0, 1.0]), t(&[0.0, 1.0]), t(&[1.0, 1.0])),
        "need mixture_logits [batch.., K] and loc, scale [batch.., K, D]",
    );
    says(
        VonMisesFisher::new(t(&[1.0, 1.0]), Tensor::new(1.0, &Device::Cpu).unwrap()),
        "loc must have unit norm",
    );
    says(
        VonMisesFisher::new(t(&[1.0, 0.0]), Tensor::new(-1.0, &Device::Cpu).unwrap()),
        "concentration must be >= 0",
    );
    says(
        VonMisesFisher::new(t(&[1.0]), Tensor::new(1.0, &Device::Cpu).unwrap()),
        "m >= 2",
    );
    says(
        SphereUniform::new(1, (), DType::F32, &Device::Cpu),
        "ambient dimension must be >= 2",
    );
    says(
        StandardNormal::new(3, DType::U32, &Device::Cpu),
        "float dtype",
    );
    says(
        Independent::new(Normal::new(t(&[0.0]), t(&[1.0])).unwrap(), 2),
        "cannot reinterpret 2 dimensions of a batch shape [1]",
    );
}

#[test]
fn log_prob_checks_the_event_shape() {
    // Independent checks its own event shape, not only the base's.
    let ones = Tensor::ones((8, 2), DType::F64, &Device::Cpu).unwrap();
    let i = Independent::new(Normal::new(ones.zeros_like().unwrap(), ones).unwrap(), 1).unwrap();
    says(
        i.log_prob(&Tensor::zeros((8, 1), DType::F64, &Device::Cpu).unwrap()),
        "Independent: log_prob value of shape [8, 1] does not end in the event shape [2]",
    );
    let d = Independent::new(
        Normal::new(
            Tensor::zeros((2, 3), DType::F64, &Device::Cpu).unwrap(),
            Tensor::ones((2, 3), DType::F64, &Device::Cpu).unwrap(),
        )
        .unwrap(),
        1,
    )
    .unwrap();
    says(
        d.log_prob(&Tensor::zeros((2, 4), DType::F64, &Device::Cpu).unwrap()),
        "",
    );
    let v =
        VonMisesFisher::new(t(&[1.0, 0.0, 0.0]), Tensor::new(1.0, &Device::Cpu).unwrap()).unwrap();
    says(
        v.log_prob(&t(&[1.0, 0.0])),
        "VonMisesFisher: log_prob value of shape [2] does not end in the event shape [3]",
    );
}

/// The unchecked constructors (decoder and encoder hot paths) accept non-finite parameters
/// and give non-finite log-densities, which the objectives detect.
#[test]
fn unchecked_constructors_defer_to_the_log_density() {
    let b = Bernoulli::new_unchecked(t(&[f64::NAN, 0.0])).unwrap();
    let lp = b
        .log_prob(&t(&[1.0, 1.0]))
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    assert!(lp[0].is_nan() && lp[1].is_finite());
    let n = Normal::from_log_scale_unchecked(t(&[0.0]), t(&[f64::NAN])).unwrap();
    assert!(n.log_prob(&t(&[0.0])).unwrap().to_vec1::<f64>().unwrap()[0].is_nan());
    let d = DiscretizedLogistic::new_unchecked(t(&[0.5]), t(&[f64::NAN]), 256).unwrap();
    assert!(d.log_prob(&t(&[0.5])).unwrap().to_vec1::<f64>().unwrap()[0].is_nan());
    assert!(Bernoulli::new_unchecked(Tensor::new(&[1u8], &Device::Cpu).unwrap()).is_err());
    assert!(DiscretizedLogistic::new_unchecked(t(&[0.5]), t(&[1.0]), 1).is_err());
}
