//! From a [`VaeConfig`] to networks: parameters at fixed paths, in fixed groups, with the
//! data-dependent initialisation run by the library.

use crate::{
    ConfigError, FlowConfig, LatentConfig, ModelError, Networks, PriorConfig, RunConfig, VaeConfig,
};
use candle::{DType, Device, Tensor, Var};
use candle_nn::VarBuilder;
use vaekit_core::NoiseSource;
use vaekit_flows::{Flow, FlowChain, iaf_chain, planar_step, sylvester_step};
use vaekit_nets::{
    Decoder, Encoder, ParamStore, dense_decoder, dense_encoder, gated_decoder, gated_encoder,
    resnet_decoder, resnet_encoder,
};
use vaekit_objectives::{
    DecoderModel, DiscreteDecoder, DiscreteEncoder, EncoderFlow, GenerativeModel,
    HierarchicalDecoder, HierarchicalEncoder, HierarchyInference, InferenceNetwork, LatentPrior,
    MixturePrior, StandardNormalPrior, TopDownEncoder, VampPrior, data_dependent_init,
};

/// The path of the encoder's parameters (`encoder.*`), in the inference group.
pub const ENCODER_PATH: &str = "encoder";
/// The path of the posterior flow's parameters (`flow.*`), in the inference group.
pub const FLOW_PATH: &str = "flow";
/// The path of the decoder's parameters (`decoder.*`), the generative group.
pub const DECODER_PATH: &str = "decoder";
/// The path of a learned prior's parameters (`prior.*`), the generative group.
pub const PRIOR_PATH: &str = "prior";

/// Which network a parameter belongs to, fixed by its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamGroup {
    /// q(z|x): the encoder and the posterior flow. DReG, RWS and NVIL's baselines give
    /// this group its own gradient (and RWS its own optimizer).
    Inference,
    /// p(x|z) p(z): the decoder and a learned prior (a VampPrior's pseudo-inputs; its
    /// encoder stays in the inference group).
    Generative,
}

impl ParamGroup {
    /// The group of a parameter path, or `None` for a path outside the model's three.
    pub fn of(path: &str) -> Option<Self> {
        let root = path.split('.').next()?;
        match root {
            ENCODER_PATH | FLOW_PATH => Some(ParamGroup::Inference),
            DECODER_PATH | PRIOR_PATH => Some(ParamGroup::Generative),
            _ => None,
        }
    }

    /// The path prefixes of the inference group (`"encoder."`, `"flow."`), as
    /// [`vaekit_train::TrainConfig::inference_prefixes`] takes them.
    pub fn inference_prefixes() -> Vec<String> {
        [ENCODER_PATH, FLOW_PATH]
            .iter()
            .map(|p| format!("{p}."))
            .collect()
    }
}

/// A built model: its parameters and the two networks over them.
pub struct Model {
    /// Every parameter (and batch-norm statistic), created from the initialisation seed.
    pub store: ParamStore,
    /// q(z|x).
    pub q: Box<dyn InferenceNetwork>,
    /// p(x, z).
    pub p: Box<dyn GenerativeModel>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("parameters", &self.store.trainable().len())
            .finish_non_exhaustive()
    }
}

/// An inference network and a generative model (as [`frozen`] returns them for HMC).
pub type NetworkPair = (Box<dyn InferenceNetwork>, Box<dyn GenerativeModel>);

/// The Gaussian-latent networks with their concrete types.
type GaussianPair = (
    EncoderFlow<Box<dyn Encoder>>,
    DecoderModel<Box<dyn Decoder>>,
);

/// Builds `cfg`'s networks at the paths [`ENCODER_PATH`], [`FLOW_PATH`] and
/// [`DECODER_PATH`], every parameter drawn from `init_seed`'s stream (the same seed gives the
/// same weights, bit for bit). Call [`Model::data_init`] before training a model with weight
/// norm. The objective is not known here: check it with [`VaeConfig::check_objective`]
/// before training ([`RunConfig::build`] checks both).
///
/// # Errors
/// [`VaeConfig::validate`]'s, before any tensor exists; candle's while creating tensors.
pub fn build(cfg: &VaeConfig, init_seed: u64, device: &Device) -> Result<Model, ModelError> {
    cfg.validate()?;
    let store = ParamStore::new(init_seed);
    let (q, p) = pair(cfg, store.var_builder(DType::F32, device), device)?;
    Ok(Model { store, q, p })
}

/// `cfg`'s two networks over `vb`.
fn pair(
    cfg: &VaeConfig,
    vb: VarBuilder<'static>,
    device: &Device,
) -> Result<NetworkPair, ModelError> {
    Ok(match &cfg.latent {
        LatentConfig::Gaussian => {
            let (q, p) = networks(cfg, vb, device)?;
            (Box::new(q), Box::new(p))
        }
        LatentConfig::Discrete(c) => (
            Box::new(DiscreteEncoder::new(c, vb.pp(ENCODER_PATH))?),
            Box::new(DiscreteDecoder::new(c, DType::F32, vb.pp(DECODER_PATH))?),
        ),
        LatentConfig::Hierarchy(c) => {
            let decoder = HierarchicalDecoder::new(c, cfg.likelihood, vb.pp(DECODER_PATH))?;
            let encoder: Box<dyn InferenceNetwork> = match c.inference {
                HierarchyInference::BottomUp => {
                    Box::new(HierarchicalEncoder::new(c, vb.pp(ENCODER_PATH))?)
                }
                HierarchyInference::TopDown => {
                    Box::new(TopDownEncoder::new(c, vb.pp(ENCODER_PATH), &decoder)?)
                }
            };
            (encoder, Box::new(decoder))
        }
    })
}

/// The networks over `store`'s current values as plain tensors: no parameter is tracked by
/// autograd, so gradients with respect to `z` (HMC) cost no parameter gradients.
///
/// # Errors
/// Discrete latents, which HMC cannot move; those of [`build`].
pub fn frozen(
    cfg: &VaeConfig,
    store: &ParamStore,
    device: &Device,
) -> Result<NetworkPair, ModelError> {
    if let LatentConfig::Discrete(_) = cfg.latent {
        return Err(ConfigError::new(format!(
            "HAIS and BDMC need continuous latents; this model's are {} (use --is-samples)",
            cfg.latent.describe()
        ))
        .into());
    }
    cfg.validate()?;
    pair(cfg, store.frozen_var_builder(DType::F32, device), device)
}

impl RunConfig {
    /// Builds this run's model: [`build`] with the initialisation seed
    /// `derive_seed(seed, 1)` (the training noise uses `seed` itself), after
    /// [`RunConfig::validate`].
    ///
    /// # Errors
    /// Those of [`RunConfig::validate`] and [`build`].
    pub fn build(&self, device: &Device) -> Result<Model, ModelError> {
        self.validate()?;
        build(&self.model, vaekit_core::derive_seed(self.seed, 1), device)
    }
}

impl Model {
    /// The trainable parameters of one group, sorted by path.
    pub fn parameters(&self, group: ParamGroup) -> Vec<(String, Var)> {
        self.store
            .trainable()
            .into_iter()
            .filter(|(name, _)| ParamGroup::of(name) == Some(group))
            .collect()
    }

    /// Data-dependent initialisation (weight norm's gains and biases, written in place) on
    /// one batch `x` (`[B, ...]`, already binarized or otherwise transformed as training
    /// will see it), by one pass of the single-sample ELBO with `noise`. A model without
    /// weight norm is left as it was. Run it once, before the first training step, and not
    /// after resuming from a checkpoint.
    ///
    /// # Errors
    /// A batch of the wrong shape for the networks; candle's.
    pub fn data_init(&self, x: &Tensor, noise: &mut dyn NoiseSource) -> candle::Result<()> {
        data_dependent_init(self.q.as_ref(), self.p.as_ref(), &self.store, x, noise)
    }
}

fn networks(
    cfg: &VaeConfig,
    vb: VarBuilder<'static>,
    device: &Device,
) -> Result<GaussianPair, ModelError> {
    let q_encoder = encoder(cfg, vb.pp(ENCODER_PATH))?;
    let dec = vb.pp(DECODER_PATH);
    let decoder: Box<dyn Decoder> = match &cfg.networks {
        Networks::Dense(c) => Box::new(dense_decoder(c, cfg.likelihood, dec)?),
        Networks::ResNet(c) => Box::new(resnet_decoder(c, cfg.likelihood, dec)?),
        Networks::Gated(c) => Box::new(gated_decoder(c, cfg.likelihood, dec)?),
    };
    let flow = flow_chain(cfg, vb.pp(FLOW_PATH))?;
    let d = cfg.latent_dim();
    let prior: Box<dyn LatentPrior> = match cfg.prior {
        PriorConfig::StandardNormal => Box::new(StandardNormalPrior::new(d, DType::F32, device)?),
        PriorConfig::Mixture { components } => {
            Box::new(MixturePrior::new(components, d, vb.pp(PRIOR_PATH))?)
        }
        // The prior's encoder is built again at the encoder's path: it finds the variables
        // the inference network's encoder created, so the two share every parameter.
        PriorConfig::Vamp { pseudo_inputs } => Box::new(VampPrior::new(
            encoder(cfg, vb.pp(ENCODER_PATH))?,
            pseudo_inputs,
            cfg.networks.input_dim(),
            vb.pp(PRIOR_PATH),
        )?),
    };
    let p = DecoderModel::with_prior(decoder, prior)?;
    Ok((EncoderFlow::new(q_encoder, flow), p))
}

/// `cfg`'s encoder under `vb`.
fn encoder(cfg: &VaeConfig, vb: VarBuilder<'static>) -> candle::Result<Box<dyn Encoder>> {
    Ok(match &cfg.networks {
        Networks::Dense(c) => Box::new(dense_encoder(c, vb)?),
        Networks::ResNet(c) => Box::new(resnet_encoder(c, vb)?),
        Networks::Gated(c) => Box::new(gated_encoder(c, vb)?),
    })
}

/// The posterior flow of `cfg` under `vb` (`flow.*`). A new flow kind is one arm here and
/// one variant of [`FlowConfig`] (docs/HOW_TO_ADD_A_FLOW.md).
fn flow_chain(cfg: &VaeConfig, vb: VarBuilder<'static>) -> candle::Result<FlowChain> {
    let (d, c) = (cfg.latent_dim(), cfg.context_dim());
    let steps = |n: usize, step: &dyn Fn(usize) -> candle::Result<Box<dyn Flow>>| {
        (0..n).map(step).collect::<candle::Result<Vec<_>>>()
    };
    Ok(match &cfg.flow {
        FlowConfig::None => FlowChain::default(),
        FlowConfig::Iaf {
            steps,
            hidden,
            norm,
            variant,
        } => iaf_chain(*steps, &cfg.made(hidden, *norm), *variant, vb)?,
        FlowConfig::Planar { steps: n } => FlowChain::new(steps(*n, &|k| {
            Ok(Box::new(planar_step(d, c, vb.pp(format!("planar{k}")))?))
        })?),
        FlowConfig::Sylvester {
            steps: n,
            sylvester,
        } => FlowChain::new(steps(*n, &|k| {
            Ok(Box::new(sylvester_step(
                d,
                c,
                *sylvester,
                k,
                vb.pp(format!("sylvester{k}")),
            )?))
        })?),
    })
}
