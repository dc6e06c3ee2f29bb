//! Free bits in groups through a flow posterior: the per-dimension split of `log q` along the
//! IAF's sampling path sums to `log q`, the grouped KL term equals an independent
//! recomputation from that split, and groups = 1 and groups = 8 give different losses on the
//! same batch (they gave the same before, when a flow silently dropped the groups).
#![allow(clippy::unwrap_used)]

use candle::{D, DType, Device, Tensor};
use vaekit_core::{NoiseSource, SeededNoise};
use vaekit_flows::{Flow, FlowChain, IafVariant, MadeConfig, Reverse, iaf_chain, planar_step};
use vaekit_nets::{Normalization, ParamStore, Pass};
use vaekit_objectives::*;

const P: usize = 16;
const LATENT: usize = 8;

fn model_and_data() -> (LinearGaussian, Tensor) {
    let w = SeededNoise::new(31)
        .standard_normal(&(P, LATENT).into(), DType::F64, &Device::Cpu)
        .unwrap();
    let b = Tensor::zeros(P, DType::F64, &Device::Cpu).unwrap();
    let model = LinearGaussian::new(w, b, 0.8).unwrap();
    let (x, _) = model
        .sample(24, &mut SeededNoise::new(32), Pass::Eval)
        .unwrap();
    (model, x)
}

/// The exact posterior's encoder, perturbed, and a randomly initialised 2-step IAF.
fn iaf_posterior(model: &LinearGaussian, store: &ParamStore) -> EncoderFlow<LinearEncoder> {
    let exact = model.posterior_encoder().unwrap();
    let enc = LinearEncoder {
        a: exact.a.affine(0.9, 0.0).unwrap(),
        c: exact.c.clone(),
        log_scale: exact.log_scale.affine(1.0, 0.3).unwrap(),
    };
    let made = MadeConfig {
        dim: LATENT,
        hidden: vec![16],
        context_dim: 0,
        norm: Normalization::None,
        ..MadeConfig::default()
    };
    let flow = iaf_chain(
        2,
        &made,
        IafVariant::Gated { forget_bias: 0.5 },
        store.var_builder(DType::F64, &Device::Cpu).pp("flow"),
    )
    .unwrap();
    EncoderFlow::new(enc, flow)
}

fn elbo_with_free_bits(nats_per_dim: f64, groups: usize) -> ObjectiveConfig {
    ObjectiveConfig {
        objective: Objective::Elbo {
            num_samples: 3,
            analytic_kl: true,
        },
        warmup: None,
        free_bits: Some(FreeBits {
            nats_per_dim,
            groups,
        }),
    }
}

fn scalar(t: &Tensor) -> f64 {
    t.to_dtype(DType::F64).unwrap().to_scalar::<f64>().unwrap()
}

#[test]
fn the_per_dimension_split_sums_to_log_q_along_the_same_draws() {
    let (model, x) = model_and_data();
    let store = ParamStore::new(33);
    let q = iaf_posterior(&model, &store);
    let posterior = q.forward(&x, Pass::Eval).unwrap();
    let plain = posterior
        .rsample_with_log_prob(3, &mut SeededNoise::new(4))
        .unwrap();
    let (split, dims) = posterior
        .rsample_with_log_prob_per_dim(3, &mut SeededNoise::new(4))
        .unwrap()
        .expect("an IAF splits its log-determinant");
    assert_eq!(dims.dims(), &[24, 3, LATENT]);
    let diff = |a: &Tensor, b: &Tensor| scalar(&(a - b).unwrap().abs().unwrap().max_all().unwrap());
    assert!(diff(&plain.z, &split.z) < 1e-12, "the same draws");
    assert!(diff(&plain.log_q, &split.log_q) < 1e-12);
    assert!(diff(&dims.sum(D::Minus1).unwrap(), &split.log_q) < 1e-10);
    // A lone reversal: z_d = z0_{D−1−d}, so the split of coordinate d must be the base
    // density of z0's coordinate D−1−d, evaluated at z_d (an odd number of reversals is where
    // a split that forgets to move the base terms goes wrong).
    let exact = model.posterior_encoder().unwrap();
    let reversed = EncoderFlow::new(
        LinearEncoder {
            a: exact.a.clone(),
            c: exact.c.clone(),
            log_scale: exact.log_scale.affine(1.0, 0.3).unwrap(),
        },
        FlowChain::new(vec![Box::new(Reverse::new(LATENT)) as Box<dyn Flow>]),
    );
    let posterior = reversed.forward(&x, Pass::Eval).unwrap();
    let (s, dims) = posterior
        .rsample_with_log_prob_per_dim(2, &mut SeededNoise::new(7))
        .unwrap()
        .unwrap();
    let (loc, log_scale) = posterior.base_gaussian().unwrap(); // [B, D], z0's coordinates
    let loc = loc.flip(&[1]).unwrap().unsqueeze(1).unwrap();
    let log_scale = log_scale.flip(&[1]).unwrap().unsqueeze(1).unwrap();
    let expected =
        s.z.broadcast_sub(&loc)
            .unwrap()
            .broadcast_div(&log_scale.exp().unwrap())
            .unwrap()
            .sqr()
            .unwrap()
            .affine(-0.5, -0.5 * std::f64::consts::TAU.ln())
            .unwrap()
            .broadcast_sub(&log_scale)
            .unwrap();
    assert!(diff(&dims, &expected) < 1e-10, "{dims} vs {expected}");
    // Without a flow: each coordinate's own Gaussian density.
    let gaussian = EncoderFlow::new(model.posterior_encoder().unwrap(), FlowChain::default());
    let posterior = gaussian.forward(&x, Pass::Eval).unwrap();
    let (s, dims) = posterior
        .rsample_with_log_prob_per_dim(2, &mut SeededNoise::new(5))
        .unwrap()
        .unwrap();
    assert!(diff(&dims.sum(D::Minus1).unwrap(), &s.log_q) < 1e-10);
}

#[test]
fn grouped_free_bits_reach_through_an_iaf() {
    let (model, x) = model_and_data();
    let store = ParamStore::new(33);
    let q = iaf_posterior(&model, &store);
    let run = |cfg: &ObjectiveConfig| {
        evaluate(
            cfg,
            EvalContext::new(&q, &model, &x, &mut SeededNoise::new(6)),
        )
        .and_then(Evaluation::checked)
        .unwrap()
    };
    // λ at the mean per-dimension KL: one group of all 8 sits at about its floor, while 8
    // groups raise the dimensions below λ.
    let plain = run(&ObjectiveConfig {
        free_bits: None,
        ..elbo_with_free_bits(0.0, 1)
    });
    let lambda = plain.kl / LATENT as f64;
    let one = run(&elbo_with_free_bits(lambda, 1));
    let eight = run(&elbo_with_free_bits(lambda, 8));
    let (l1, l8) = (scalar(&one.loss), scalar(&eight.loss));
    assert!(l8 > l1 + 1e-3, "groups 1: {l1}, groups 8: {l8}");
    assert_eq!(
        one.bound, eight.bound,
        "free bits change the loss, not the bound"
    );
    // The grouped term recomputed independently from the same draws: Σ_d max(λ, E_x KL_d).
    let posterior = q.forward(&x, Pass::Eval).unwrap();
    let (s, dims) = posterior
        .rsample_with_log_prob_per_dim(3, &mut SeededNoise::new(6))
        .unwrap()
        .unwrap();
    let log_prior_dims =
        s.z.sqr()
            .unwrap()
            .affine(-0.5, -0.5 * std::f64::consts::TAU.ln())
            .unwrap();
    let kl_dims = (dims - log_prior_dims)
        .unwrap()
        .mean(1)
        .unwrap()
        .mean(0)
        .unwrap()
        .to_vec1::<f64>()
        .unwrap();
    let term: f64 = kl_dims.iter().map(|k| k.max(lambda)).sum();
    assert!(
        (l8 - (-eight.reconstruction + term)).abs() < 1e-9,
        "loss {l8} vs −reconstruction + Σ max(λ, KL_d) = {}",
        -eight.reconstruction + term
    );
    assert!(kl_dims.iter().any(|&k| k < lambda) && kl_dims.iter().any(|&k| k > lambda));
}

/// The linear encoder with a constant one-wide context, for amortized flows.
#[derive(Debug)]
struct WithContext(LinearEncoder);

impl vaekit_nets::Encoder for WithContext {
    fn forward(&self, x: &Tensor, pass: Pass) -> candle::Result<vaekit_nets::EncoderOutput> {
        let mut out = self.0.forward(x, pass)?;
        out.context = Tensor::ones((x.dim(0)?, 1), x.dtype(), x.device())?;
        Ok(out)
    }
    fn latent_dim(&self) -> usize {
        self.0.latent_dim()
    }
    fn context_dim(&self) -> usize {
        1
    }
}

/// Planar steps mix the dimensions: grouped free bits are refused with a clear error, one
/// group still works.
#[test]
fn grouped_free_bits_with_a_mixing_flow_are_refused() {
    let (model, x) = model_and_data();
    let store = ParamStore::new(34);
    let planar = planar_step(
        LATENT,
        1,
        store.var_builder(DType::F64, &Device::Cpu).pp("planar"),
    )
    .unwrap();
    let q = EncoderFlow::new(
        WithContext(model.posterior_encoder().unwrap()),
        FlowChain::new(vec![Box::new(planar) as Box<dyn Flow>]),
    );
    let run = |groups| {
        evaluate(
            &elbo_with_free_bits(0.1, groups),
            EvalContext::new(&q, &model, &x, &mut SeededNoise::new(6)),
        )
        .and_then(Evaluation::checked)
    };
    let err = run(8).unwrap_err().to_string();
    assert!(
        err.contains("free bits in 8 groups") && err.contains("groups = 1"),
        "{err}"
    );
    assert!(run(1).is_ok());
}
