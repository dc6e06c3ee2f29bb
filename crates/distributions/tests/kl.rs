//! Every registered KL pair against a Monte Carlo estimate with 2e5 samples (tolerance: 5
//! Monte Carlo standard errors plus 1e-6), and the registry's behaviour for type-erased and
//! missing pairs.
#![allow(clippy::unwrap_used)]

use candle::{DType, Device, Result, Shape, Tensor};
use vaekit_core::SeededNoise;
use vaekit_distributions::*;

const N: usize = 200_000;

fn t(v: &[f64]) -> Tensor {
    Tensor::new(v, &Device::Cpu).unwrap()
}

/// Mean and standard error of `ln p(z) - ln q(z)` over `z ~ p`, per batch element.
fn monte_carlo(p: &dyn Distribution, q: &dyn Distribution, seed: u64) -> (Vec<f64>, Vec<f64>) {
    let z = p.sample(&[N], &mut SeededNoise::new(seed)).unwrap();
    let d = (p.log_prob(&z).unwrap() - q.log_prob(&z).unwrap())
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap();
    let d = d.reshape((N, ())).unwrap();
    let mean = d.mean(0).unwrap();
    let var = d
        .broadcast_sub(&mean)
        .unwrap()
        .sqr()
        .unwrap()
        .mean(0)
        .unwrap();
    let se = (var / N as f64).unwrap().sqrt().unwrap();
    (mean.to_vec1().unwrap(), se.to_vec1().unwrap())
}

fn check_against_monte_carlo(p: &dyn Distribution, q: &dyn Distribution, seed: u64) {
    let analytic = default_registry()
        .analytic(p, q)
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let (mc, se) = monte_carlo(p, q, seed);
    assert_eq!(analytic.len(), mc.len());
    for i in 0..mc.len() {
        assert!(
            (analytic[i] - mc[i]).abs() <= 5.0 * se[i] + 1e-6,
            "KL({} || {}) element {i}: analytic {}, Monte Carlo {} ± {}",
            p.name(),
            q.name(),
            analytic[i],
            mc[i],
            se[i]
        );
        assert!(
            analytic[i] >= -1e-12,
            "KL must be >= 0, got {}",
            analytic[i]
        );
    }
}

#[test]
fn normal_pairs() {
    let p = Normal::new(t(&[0.0, 1.5, -2.0]), t(&[1.0, 0.3, 4.0])).unwrap();
    let q = Normal::new(t(&[0.5, 1.0, -2.0]), t(&[2.0, 0.5, 1.0])).unwrap();
    check_against_monte_carlo(&p, &q, 1);
    let std = StandardNormal::new(3, DType::F64, &Device::Cpu).unwrap();
    check_against_monte_carlo(&p, &std, 2);
    // Identical distributions: exactly 0.
    let same = default_registry()
        .analytic(&p, &p)
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    assert!(same.iter().all(|v| v.abs() < 1e-15), "{same:?}");
}

#[test]
fn bernoulli_and_categorical() {
    let p = Bernoulli::new(t(&[-2.0, 0.0, 3.0, 10.0])).unwrap();
    let q = Bernoulli::new(t(&[1.0, 0.5, -3.0, 9.0])).unwrap();
    check_against_monte_carlo(&p, &q, 3);
    // Batch shapes broadcast: p [4] against q [2, 4].
    let wide = Bernoulli::new(
        Tensor::new(&[[1.0, 0.5, -3.0, 9.0], [0.0, 0.0, 0.0, 0.0]], &Device::Cpu).unwrap(),
    )
    .unwrap();
    let kl = p.kl_divergence(&wide).unwrap();
    assert_eq!(kl.dims(), &[2, 4]);
    assert_eq!(
        kl.get(0).unwrap().to_vec1::<f64>().unwrap(),
        p.kl_divergence(&q).unwrap().to_vec1::<f64>().unwrap()
    );
    let p =
        Categorical::new(Tensor::new(&[[0.0, 1.0, -1.0], [2.0, 2.0, -5.0]], &Device::Cpu).unwrap())
            .unwrap();
    let q =
        Categorical::new(Tensor::new(&[[1.0, 0.0, 0.0], [0.0, 3.0, 1.0]], &Device::Cpu).unwrap())
            .unwrap();
    check_against_monte_carlo(&p, &q, 4);
}

#[test]
fn von_mises_fisher_uniform() {
    for (m, kappa) in [(3usize, 0.5), (3, 10.0), (10, 50.0)] {
        let mut mu = vec![0.0; m];
        mu[m - 1] = 1.0;
        let p = VonMisesFisher::new(t(&mu).unsqueeze(0).unwrap(), t(&[kappa])).unwrap();
        let q = SphereUniform::new(m, 1, DType::F64, &Device::Cpu).unwrap();
        check_against_monte_carlo(&p, &q, 5);
    }
}

#[test]
fn independent_pairs_through_the_registry() {
    let dev = Device::Cpu;
    let loc = Tensor::new(&[[0.0, 1.0], [2.0, -1.0]], &dev).unwrap();
    let scale = Tensor::new(&[[1.0, 0.5], [2.0, 0.1]], &dev).unwrap();
    let p = Independent::new(Normal::new(loc.clone(), scale.clone()).unwrap(), 1).unwrap();
    let q = Independent::new(StandardNormal::new(2, DType::F64, &dev).unwrap(), 1).unwrap();
    let erased = default_registry()
        .analytic(&p as &dyn Distribution, &q as &dyn Distribution)
        .unwrap();
    let typed = p.kl_divergence(&q).unwrap();
    assert_eq!(erased.dims(), &[2]);
    assert_eq!(
        erased.to_vec1::<f64>().unwrap(),
        typed.to_vec1::<f64>().unwrap()
    );
    check_against_monte_carlo(&p, &q, 6);
}

#[test]
fn missing_pairs_name_both_types_and_fall_back_to_monte_carlo() {
    let p = Logistic::new(t(&[0.0, 1.0]), t(&[1.0, 2.0])).unwrap();
    let q = Normal::new(t(&[0.0, 0.0]), t(&[1.5, 1.5])).unwrap();
    let reg = default_registry();
    assert!(!reg.has_analytic(&p, &q));
    let err = reg.analytic(&p, &q).unwrap_err().to_string();
    assert!(
        err.contains("no analytic KL registered for (Logistic, Normal)"),
        "{err}"
    );
    let ip = Independent::new(p.clone(), 1).unwrap();
    let iq = Independent::new(q.clone(), 1).unwrap();
    let err = reg.analytic(&ip, &iq).unwrap_err().to_string();
    assert!(
        err.contains("(Independent(Logistic), Independent(Normal))"),
        "{err}"
    );

    let est = reg
        .kl_divergence(&p, &q, 50_000, &mut SeededNoise::new(7))
        .unwrap();
    assert_eq!(
        est.method,
        KlMethod::MonteCarlo {
            num_samples: 50_000
        }
    );
    let (mc, se) = monte_carlo(&p, &q, 8);
    let v = est.value.to_vec1::<f64>().unwrap();
    for i in 0..2 {
        assert!(
            (v[i] - mc[i]).abs() < 5.0 * se[i] * (1.0 + (N as f64 / 50_000.0).sqrt()),
            "{v:?} vs {mc:?}"
        );
    }
    let est = reg
        .kl_divergence(
            &Normal::new(t(&[0.0]), t(&[1.0])).unwrap(),
            &Normal::new(t(&[1.0]), t(&[1.0])).unwrap(),
            10,
            &mut SeededNoise::new(0),
        )
        .unwrap();
    assert_eq!(est.method, KlMethod::Analytic);
    assert!((est.value.to_vec1::<f64>().unwrap()[0] - 0.5).abs() < 1e-15);
    assert!(
        reg.kl_divergence(&p, &q, 0, &mut SeededNoise::new(0))
            .is_err()
    );
}

#[test]
fn monte_carlo_fallback_carries_pathwise_gradients() {
    let loc = candle::Var::new(&[0.3f64, -0.2], &Device::Cpu).unwrap();
    let p = Normal::new(loc.as_tensor().clone(), t(&[1.0, 1.0])).unwrap();
    let q = Logistic::new(t(&[0.0, 0.0]), t(&[1.0, 1.0])).unwrap();
    let est = default_registry()
        .kl_divergence(&p, &q, 1000, &mut SeededNoise::new(3))
        .unwrap();
    let grads = est.value.sum_all().unwrap().backward().unwrap();
    let g = grads
        .get(loc.as_tensor())
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    assert!(g.iter().all(|v| v.is_finite() && v.abs() > 1e-3), "{g:?}");
}

/// A user-defined family registered at run time.
#[derive(Debug, Clone)]
struct Shifted(Normal);

impl Distribution for Shifted {
    fn name(&self) -> &'static str {
        "Shifted"
    }
    fn batch_shape(&self) -> &Shape {
        self.0.batch_shape()
    }
    fn event_shape(&self) -> &Shape {
        self.0.event_shape()
    }
    fn dtype(&self) -> DType {
        self.0.dtype()
    }
    fn device(&self) -> &Device {
        self.0.device()
    }
    fn sample(&self, s: &[usize], noise: &mut dyn vaekit_core::NoiseSource) -> Result<Tensor> {
        self.0.sample(s, noise)
    }
    fn log_prob(&self, v: &Tensor) -> Result<Tensor> {
        self.0.log_prob(v)
    }
}

impl KlDivergence<Normal> for Shifted {
    fn kl_divergence(&self, q: &Normal) -> Result<Tensor> {
        self.0.kl_divergence(q)
    }
}

#[test]
fn user_pairs_can_be_registered() {
    let p = Shifted(Normal::new(t(&[1.0]), t(&[1.0])).unwrap());
    let q = Normal::new(t(&[0.0]), t(&[1.0])).unwrap();
    let mut reg = KlRegistry::with_defaults();
    assert!(reg.analytic(&p, &q).is_err());
    reg.register::<Shifted, Normal>();
    let est = reg
        .kl_divergence(&p, &q, 1, &mut SeededNoise::new(0))
        .unwrap();
    assert_eq!(est.method, KlMethod::Analytic);
    assert!((est.value.to_vec1::<f64>().unwrap()[0] - 0.5).abs() < 1e-15);
}
