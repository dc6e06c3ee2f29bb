//! Networks and flow from a [`RunConfig`].

use crate::config::{FlowConfig, LatentConfig, Networks, RunConfig};
use anyhow::{Context, Result};
use candle::{DType, Device};
use candle_nn::VarBuilder;
use vaekit_flows::{Flow, FlowChain, iaf_chain, planar_step, sylvester_step};
use vaekit_nets::{
    Decoder, Encoder, ParamStore, dense_decoder, dense_encoder, gated_decoder, gated_encoder,
    resnet_decoder, resnet_encoder,
};
use vaekit_objectives::{
    DecoderModel, DiscreteDecoder, DiscreteEncoder, EncoderFlow, GenerativeModel, InferenceNetwork,
};

/// A model: its parameters, its inference network and its generative model.
pub struct Built {
    pub store: ParamStore,
    pub q: Box<dyn InferenceNetwork>,
    pub p: Box<dyn GenerativeModel>,
}

/// Builds the networks at the stable paths `encoder.*`, `flow.*`, `decoder.*`, initialised
/// from the run's seed.
pub fn build(cfg: &RunConfig, device: &Device) -> Result<Built> {
    cfg.validate()?;
    // Initialisation gets its own stream: the trainer's noise uses `cfg.seed` itself.
    let store = ParamStore::new(vaekit_core::derive_seed(cfg.seed, 1));
    let vb = store.var_builder(DType::F32, device);
    let (q, p): (Box<dyn InferenceNetwork>, Box<dyn GenerativeModel>) = match &cfg.latent {
        LatentConfig::Gaussian => {
            let (q, p) = networks(cfg, vb, device)?;
            (Box::new(q), Box::new(p))
        }
        LatentConfig::Discrete(c) => (
            Box::new(DiscreteEncoder::new(c, vb.pp("encoder"))?),
            Box::new(DiscreteDecoder::new(c, DType::F32, vb.pp("decoder"))?),
        ),
    };
    Ok(Built { store, q, p })
}

/// The networks over `store`'s current values as plain tensors: no parameter is tracked by
/// autograd, so gradients with respect to `z` (HMC) cost no parameter gradients.
///
/// # Errors
/// Discrete latents, which HMC cannot move.
pub fn frozen(cfg: &RunConfig, store: &ParamStore, device: &Device) -> Result<NetworkPair> {
    if let LatentConfig::Discrete(_) = cfg.latent {
        anyhow::bail!(
            "HAIS and BDMC need continuous latents; this run's are {} (use --is-samples)",
            cfg.latent.describe()
        );
    }
    networks(cfg, store.frozen_var_builder(DType::F32, device), device)
}

/// An inference network and a generative model.
pub type NetworkPair = (
    EncoderFlow<Box<dyn Encoder>>,
    DecoderModel<Box<dyn Decoder>>,
);

fn networks(cfg: &RunConfig, vb: VarBuilder<'static>, device: &Device) -> Result<NetworkPair> {
    let (encoder, decoder): (Box<dyn Encoder>, Box<dyn Decoder>) = match &cfg.networks {
        Networks::Dense(c) => (
            Box::new(dense_encoder(c, vb.pp("encoder"))?),
            Box::new(dense_decoder(c, cfg.likelihood, vb.pp("decoder"))?),
        ),
        Networks::ResNet(c) => (
            Box::new(resnet_encoder(c, vb.pp("encoder"))?),
            Box::new(resnet_decoder(c, cfg.likelihood, vb.pp("decoder"))?),
        ),
        Networks::Gated(c) => (
            Box::new(gated_encoder(c, vb.pp("encoder"))?),
            Box::new(gated_decoder(c, cfg.likelihood, vb.pp("decoder"))?),
        ),
    };
    let (d, c) = (cfg.networks.latent_dim(), cfg.networks.context_dim());
    let flow_vb = vb.pp("flow");
    let flow = match &cfg.flow {
        FlowConfig::None => FlowChain::default(),
        FlowConfig::Iaf {
            steps,
            hidden,
            norm,
            variant,
        } => iaf_chain(*steps, &cfg.made(hidden, *norm), *variant, flow_vb)?,
        FlowConfig::Planar { steps } => {
            let s: Result<Vec<Box<dyn Flow>>> = (0..*steps)
                .map(|k| {
                    Ok(
                        Box::new(planar_step(d, c, flow_vb.pp(format!("planar{k}")))?)
                            as Box<dyn Flow>,
                    )
                })
                .collect();
            FlowChain::new(s?)
        }
        FlowConfig::Sylvester { steps, sylvester } => {
            let s: Result<Vec<Box<dyn Flow>>> = (0..*steps)
                .map(|k| {
                    Ok(Box::new(sylvester_step(
                        d,
                        c,
                        *sylvester,
                        k,
                        flow_vb.pp(format!("sylvester{k}")),
                    )?) as Box<dyn Flow>)
                })
                .collect();
            FlowChain::new(s?)
        }
    };
    let p = DecoderModel::new(decoder, DType::F32, device)
        .context("cannot build the generative model")?;
    Ok((EncoderFlow::new(encoder, flow), p))
}
