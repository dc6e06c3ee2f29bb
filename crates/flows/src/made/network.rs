//! The (conditional) MADE network.

use super::degrees::{Ordering, hidden_degrees, input_degrees, masks};
use crate::flow::check_input;
use candle::{D, Device, Result, Tensor};
use candle_nn::VarBuilder;
use serde::{Deserialize, Serialize};
use vaekit_nets::{Activation, Linear, LinearConfig, Normalization, Pass, linear, masked_linear};

/// How the context vector `h` enters a MADE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ContextInjection {
    /// A dense projection of `h` added to the first hidden layer's pre-activation (the IAF
    /// paper's cMADE).
    #[default]
    AddToFirstHidden,
    /// `h` concatenated to the input, connected to every first-layer hidden unit.
    ConcatToInput,
}

/// Configuration of a [`Made`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MadeConfig {
    /// Latent dimension `D`.
    pub dim: usize,
    /// Hidden widths; each must be a multiple of `D`.
    pub hidden: Vec<usize>,
    /// Context dimension (0 for an unconditional MADE).
    pub context_dim: usize,
    /// Where the context enters.
    pub injection: ContextInjection,
    /// The autoregressive order.
    pub ordering: Ordering,
    /// Hidden activation.
    pub activation: Activation,
    /// Normalisation of the hidden layers (the output layer is weight-normalised with init
    /// scale 0.1 under `Weight`, plain otherwise).
    pub norm: Normalization,
    /// Number of `D`-sized output heads (2 for `(m, s)`).
    pub heads: usize,
}

impl Default for MadeConfig {
    fn default() -> Self {
        Self {
            dim: 64,
            hidden: vec![1920, 1920],
            context_dim: 1920,
            injection: ContextInjection::AddToFirstHidden,
            ordering: Ordering::Natural,
            activation: Activation::Elu,
            norm: Normalization::Weight,
            heads: 2,
        }
    }
}

/// A MADE with optional context: `heads` outputs of size `D`, output `i` depending only on
/// the inputs before `i` in the ordering (and on the context). Parameters at `hidden{l}`,
/// `context` and `out`.
///
/// # Shapes
/// `z: [N, D]`, `context: [N, C]` give `heads` tensors `[N, D]`.
///
/// # References
/// Germain, Gregor, Murray, Larochelle, "MADE", arXiv 1502.03509; Kingma et al., arXiv
/// 1606.04934 (context MADE in IAF).
#[derive(Debug, Clone)]
pub struct Made {
    hidden: Vec<Linear>,
    context: Option<Linear>,
    out: Linear,
    degrees: Vec<usize>,
    config: MadeConfig,
}

/// Builds a MADE at `vb`'s path.
///
/// # Errors
/// `D == 0`, no head, a hidden width that is not a multiple of `D`; variable errors.
pub fn made(config: &MadeConfig, vb: VarBuilder) -> Result<Made> {
    let d = config.dim;
    if d == 0 || config.heads == 0 {
        candle::bail!("made: dim and heads must be > 0");
    }
    if let Some(w) = config.hidden.iter().find(|&&w| w == 0 || w % d != 0) {
        candle::bail!(
            "made: hidden width {w} is not a positive multiple of the latent dimension {d}"
        );
    }
    let degrees = input_degrees(d, config.ordering)?;
    let hidden_deg: Vec<Vec<usize>> = config
        .hidden
        .iter()
        .map(|&w| hidden_degrees(w, d, config.context_dim > 0))
        .collect();
    let concat = config.injection == ContextInjection::ConcatToInput && config.context_dim > 0;
    let extra = if concat { config.context_dim } else { 0 };
    let all_masks = masks(&degrees, &hidden_deg, extra, config.heads);
    let dtype = vb.dtype();
    let to_tensor = |m: &Vec<Vec<f64>>| -> Result<Tensor> {
        let (rows, cols) = (m.len(), m[0].len());
        Tensor::from_vec(m.concat(), (rows, cols), &Device::Cpu)?
            .to_dtype(dtype)?
            .to_device(vb.device())
    };
    let hidden_cfg = LinearConfig {
        norm: config.norm,
        init_scale: 1.0,
    };
    let mut hidden = Vec::with_capacity(config.hidden.len());
    let mut width = d + extra;
    for (l, &w) in config.hidden.iter().enumerate() {
        hidden.push(masked_linear(
            width,
            w,
            to_tensor(&all_masks[l])?,
            hidden_cfg,
            vb.pp(format!("hidden{l}")),
        )?);
        width = w;
    }
    let context = match (config.injection, config.context_dim, config.hidden.first()) {
        (ContextInjection::AddToFirstHidden, c, Some(&w)) if c > 0 => {
            let cfg = LinearConfig {
                norm: if config.norm == Normalization::Weight {
                    Normalization::Weight
                } else {
                    Normalization::None
                },
                init_scale: 1.0,
            };
            Some(linear(c, w, cfg, vb.pp("context"))?)
        }
        (ContextInjection::AddToFirstHidden, c, None) if c > 0 => {
            candle::bail!(
                "made: context added to the first hidden layer needs at least one hidden layer"
            )
        }
        _ => None,
    };
    let out_norm = if config.norm == Normalization::Weight {
        Normalization::Weight
    } else {
        Normalization::None
    };
    let out_cfg = LinearConfig {
        norm: out_norm,
        init_scale: 0.1,
    };
    let out = masked_linear(
        width,
        config.heads * d,
        to_tensor(&all_masks[all_masks.len() - 1])?,
        out_cfg,
        vb.pp("out"),
    )?;
    Ok(Made {
        hidden,
        context,
        out,
        degrees,
        config: config.clone(),
    })
}

impl Made {
    /// The input degrees (1-based positions in the ordering).
    pub fn degrees(&self) -> &[usize] {
        &self.degrees
    }

    /// The configuration.
    pub fn config(&self) -> &MadeConfig {
        &self.config
    }

    /// Runs the network.
    ///
    /// # Errors
    /// Shape errors; a missing context when `context_dim > 0`.
    pub fn forward(&self, z: &Tensor, context: Option<&Tensor>, pass: Pass) -> Result<Vec<Tensor>> {
        let d = self.config.dim;
        check_input("made", z, d)?;
        let ctx = match (self.config.context_dim, context) {
            (0, _) => None,
            (c, Some(h)) if h.dims() == [z.dim(0)?, c] => Some(h),
            (c, Some(h)) => candle::bail!(
                "made: context must be [{}, {c}], got {:?}",
                z.dim(0)?,
                h.dims()
            ),
            (_, None) => candle::bail!("made: this MADE is conditional and needs a context"),
        };
        let concat = self.config.injection == ContextInjection::ConcatToInput;
        let mut h = match (concat, ctx) {
            (true, Some(c)) => Tensor::cat(&[z, c], D::Minus1)?,
            _ => z.clone(),
        };
        if self.hidden.is_empty() {
            return self.split(&self.out.forward(&h, pass)?);
        }
        for (l, layer) in self.hidden.iter().enumerate() {
            h = match (l, &self.context, ctx) {
                (0, Some(proj), Some(c)) => {
                    let pre = (layer.forward(&h, pass)? + proj.forward(c, pass)?)?;
                    self.config.activation.apply(&pre)?
                }
                // Without a context term the layer and its activation fuse into one op.
                _ => layer.forward_act(&h, self.config.activation, pass)?,
            };
        }
        self.split(&self.out.forward(&h, pass)?)
    }

    fn split(&self, out: &Tensor) -> Result<Vec<Tensor>> {
        let d = self.config.dim;
        (0..self.config.heads)
            .map(|i| out.narrow(D::Minus1, i * d, d))
            .collect()
    }
}
