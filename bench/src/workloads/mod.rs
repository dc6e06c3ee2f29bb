//! The performance issue's workloads, each built once and then run as a closure. Every
//! workload has twins of the same name in `bench/torch_reference.py` and
//! `bench/jax_reference.py`; every side builds the same shapes, the same layers and the same
//! loss, with seeded inputs.

mod conv;
mod dense;
mod flow;

/// One step of a workload (one timed iteration).
pub type Step = Box<dyn FnMut() -> anyhow::Result<()>>;

/// A named workload.
pub struct Workload {
    /// The name both sides report.
    pub name: &'static str,
    /// What one iteration does.
    pub what: &'static str,
    /// Items per iteration and their unit, for a throughput column (IS samples, chain-steps).
    pub items: Option<(f64, &'static str)>,
    /// Floating-point operations of the matrix products and convolutions per iteration
    /// (multiply-adds count 2), for the fraction of the FMA peak.
    pub flops: f64,
    /// Builds the models and inputs on a device; returns the step.
    pub build: fn(&candle::Device) -> anyhow::Result<Step>,
    /// Whether the measurement's steps run inside one `vaekit_core::keep_awake` region, as
    /// their library path runs them:
    /// training steps (`Trainer::train_epoch`, whose layers the convolution and flow
    /// workloads time) and HAIS (`vaekit_eval::anneal`), not importance sampling, whose
    /// large element-wise passes ran 4 % slower with the workers polling.
    pub awake: bool,
}

/// Multiply-adds of one pass of the IWAE paper's dense encoder (784-200-200-2·50).
const ENCODER_MACS: f64 = 784.0 * 200.0 + 200.0 * 200.0 + 200.0 * 100.0;
/// Multiply-adds of one pass of its decoder (50-200-200-784).
const DECODER_MACS: f64 = 50.0 * 200.0 + 200.0 * 200.0 + 200.0 * 784.0;
/// Multiply-adds of one 3x3 64 -> 64 convolution over a batch of 32 14x14 maps.
const CONV_MACS: f64 = 32.0 * 64.0 * 14.0 * 14.0 * 64.0 * 9.0;
/// Multiply-adds of one cMADE pass (64 -> 1920 -> 1920 -> 2·64, context 1920 -> 1920).
const MADE_MACS: f64 = 64.0 * 1920.0 + 1920.0 * 1920.0 * 2.0 + 1920.0 * 128.0;

/// Every workload, in the order of the table.
pub const ALL: &[Workload] = &[
    Workload {
        name: "dense_vae_step_b100",
        what: "VAE 784-200-200-50 tanh, Bernoulli decoder, ELBO (analytic KL), batch 100: forward, backward, Adam",
        items: None,
        flops: 2.0 * 3.0 * 100.0 * (ENCODER_MACS + DECODER_MACS),
        build: dense::vae_step,
        awake: true,
    },
    Workload {
        name: "dense_vae_step_b20",
        what: "the same VAE and step at batch 20 (the IWAE paper's batch, train-iaf's main job)",
        items: None,
        flops: 2.0 * 3.0 * 20.0 * (ENCODER_MACS + DECODER_MACS),
        build: dense::vae_step_b20,
        awake: true,
    },
    Workload {
        name: "iwae50_step_b100",
        what: "the same networks, IWAE k = 50, batch 100: forward, backward, Adam",
        items: None,
        flops: 2.0 * 3.0 * (100.0 * ENCODER_MACS + 5000.0 * DECODER_MACS),
        build: dense::iwae_step,
        awake: true,
    },
    Workload {
        name: "is_eval_20x500",
        what: "importance sampling: 20 data points x 500 samples through encoder, dense decoder, Bernoulli log-likelihood, f64 log-sum-exp",
        items: Some((10_000.0, "samples/s")),
        flops: 2.0 * (20.0 * ENCODER_MACS + 10_000.0 * DECODER_MACS),
        build: dense::importance,
        awake: false,
    },
    Workload {
        name: "conv3x3_c64_b32_14x14",
        what: "conv 3x3 64->64, pad 1, batch 32, 14x14: forward, backward (input and weight)",
        items: None,
        flops: 2.0 * 3.0 * CONV_MACS,
        build: conv::conv3x3,
        awake: true,
    },
    Workload {
        name: "resblock_c64_b32_14x14",
        what: "ResNet block: ELU, weight-normed conv 3x3, ELU, weight-normed conv 3x3, x + 0.1 h: forward, backward",
        items: None,
        flops: 2.0 * 3.0 * 2.0 * CONV_MACS,
        build: conv::resblock,
        awake: true,
    },
    Workload {
        name: "conv_transpose3x3_s2_7to14",
        what: "transposed conv 3x3 stride 2 (pad 1, output pad 1) 64->64, batch 32, 7x7 -> 14x14, bias: forward, backward",
        items: None,
        flops: 2.0 * 3.0 * CONV_MACS / 4.0,
        build: conv::conv_transpose,
        awake: true,
    },
    Workload {
        name: "iaf_step_b100_d64_w1920",
        what: "one gated IAF step, cMADE [1920, 1920] with context 1920, weight norm, ELU, batch 100: forward, backward",
        items: None,
        flops: 2.0 * 3.0 * 100.0 * MADE_MACS,
        build: flow::iaf_step,
        awake: true,
    },
    Workload {
        name: "hais_leapfrog_b100_c16",
        what: "one HAIS leapfrog step on the dense decoder: 100 data points x 16 chains, one gradient of log p(x|z) + log p(z) in z",
        items: Some((1600.0, "chain-steps/s")),
        flops: 2.0 * 2.0 * 1600.0 * DECODER_MACS,
        build: dense::leapfrog_step,
        awake: true,
    },
];
