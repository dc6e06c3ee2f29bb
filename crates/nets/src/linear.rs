//! A linear layer with an optional autoregressive mask and none / batch / weight
//! normalisation.

use crate::activation::Activation;
use crate::norm::{Normalization, weight_norm_output};
use crate::pass::Pass;
use candle::{D, Result, Tensor};
use candle_nn::{BatchNorm, Init, ModuleT, VarBuilder};
use serde::{Deserialize, Serialize};
use vaekit_ops::row_norm;

/// Configuration of a [`Linear`] layer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LinearConfig {
    /// Normalisation.
    pub norm: Normalization,
    /// Standard deviation of the outputs after data-dependent initialisation (weight norm).
    pub init_scale: f64,
}

impl Default for LinearConfig {
    fn default() -> Self {
        Self {
            norm: Normalization::None,
            init_scale: 1.0,
        }
    }
}

/// `y = x Wᵀ + b`, with `W` masked element-wise when a mask is given (MADE), and normalised as
/// configured. Parameters: `weight` (`[out, in]`; the direction `v` under weight norm), `bias`,
/// and `g` (weight norm) or `bn.*` (batch norm).
///
/// # Shapes
/// `[.., in]` gives `[.., out]` (batch norm needs `[B, out]`).
#[derive(Debug, Clone)]
pub struct Linear {
    weight: Tensor,
    /// Absent under batch norm, whose own shift makes a bias redundant (its gradient would be
    /// exactly zero).
    bias: Option<Tensor>,
    mask: Option<Tensor>,
    g: Option<Tensor>,
    bn: Option<BatchNorm>,
    config: LinearConfig,
    path: String,
}

impl Linear {
    /// Input width.
    pub fn in_dim(&self) -> usize {
        self.weight.dims()[1]
    }

    /// Output width.
    pub fn out_dim(&self) -> usize {
        self.weight.dims()[0]
    }

    /// The same layer with its weight, bias and weight-norm gain detached from the autograd
    /// graph (values shared): gradients flow through the input only. Batch-norm statistics
    /// are kept as they are.
    pub fn detached(&self) -> Self {
        Self {
            weight: self.weight.detach(),
            bias: self.bias.as_ref().map(Tensor::detach),
            g: self.g.as_ref().map(Tensor::detach),
            ..self.clone()
        }
    }

    /// The effective weight `W` (masked, and `g v / |v|` under weight norm).
    ///
    /// # Shapes
    /// `[out, in]`.
    pub fn effective_weight(&self) -> Result<Tensor> {
        let v = self.masked()?;
        match &self.g {
            Some(g) => v.broadcast_mul(&(g / row_norm(&v)?)?.unsqueeze(1)?),
            None => Ok(v),
        }
    }

    /// `(W, b)` of a plain layer (a bias, no weight or batch norm), `W` masked: the layer is
    /// `x · Wᵀ + b`, so ops that fuse it with what follows can take the two tensors.
    ///
    /// # Errors
    /// Tensor errors of the mask.
    pub(crate) fn plain_parts(&self) -> Result<Option<(Tensor, &Tensor)>> {
        match (&self.g, &self.bn, &self.bias) {
            (None, None, Some(b)) => Ok(Some((self.masked()?, b))),
            _ => Ok(None),
        }
    }

    fn masked(&self) -> Result<Tensor> {
        match &self.mask {
            Some(m) => vaekit_ops::masked(&self.weight, m),
            None => Ok(self.weight.clone()),
        }
    }

    /// Applies the layer to the last dimension of `x: [..., in]`, giving `[..., out]`
    /// (leading dimensions are folded into one GEMM's rows, except under batch norm).
    ///
    /// # Errors
    /// A last dimension other than `in_dim`.
    pub fn forward(&self, x: &Tensor, pass: Pass) -> Result<Tensor> {
        if x.dim(D::Minus1)? != self.in_dim() {
            candle::bail!(
                "{}: input width {} != {}",
                self.path,
                x.dim(D::Minus1)?,
                self.in_dim()
            );
        }
        if x.rank() > 2 && self.bn.is_none() {
            return self.on_rows(x, |rows| self.forward(rows, pass));
        }
        if let (Some(g), None, Some(b), 2, false) = (
            &self.g,
            &self.bn,
            &self.bias,
            x.rank(),
            matches!(pass, Pass::DataInit(_)),
        ) {
            // Weight norm: mask, norms, product and scale as one op (its backward without
            // the weight-sized intermediate gradients), then the bias.
            let y = vaekit_ops::weight_norm_linear(x, &self.weight, self.mask.as_ref(), g)?;
            return vaekit_ops::bias_add(&y, b);
        }
        let v = self.masked()?;
        if let (None, None, Some(b), 2) = (&self.g, &self.bn, &self.bias, x.rank()) {
            // The plain layer: the bias added inside the GEMM's output pass.
            return vaekit_ops::linear_t(x, &v, b);
        }
        let t = vaekit_ops::matmul_t(x, &v)?;
        match (&self.g, &self.bn, &self.bias) {
            (Some(g), _, Some(b)) => {
                let t2 = t.reshape(((), self.out_dim()))?;
                let y = weight_norm_output(
                    &t2,
                    &row_norm(&v)?,
                    g,
                    b,
                    &self.path,
                    self.config.init_scale,
                    pass,
                )?;
                y.reshape(t.shape())
            }
            (None, Some(bn), _) => bn.forward_t(&t, pass.train()),
            (_, _, Some(b)) => t.broadcast_add(b),
            (_, _, None) => Ok(t),
        }
    }

    /// `act(self.forward(x))`. For a plain layer (bias, no weight or batch norm) with tanh
    /// or ELU, in f32 on CPU, one fused op (`linear_act.rs`): the activation applied in
    /// the GEMM's output pass, and one autograd node instead of two.
    ///
    /// # Shapes
    /// `[..., in]` gives `[..., out]`.
    ///
    /// # Errors
    /// A last dimension other than `in_dim`.
    pub fn forward_act(&self, x: &Tensor, act: Activation, pass: Pass) -> Result<Tensor> {
        if let (Some(f), None, None, Some(b)) = (act.fused(), &self.g, &self.bn, &self.bias)
            && x.dim(D::Minus1)? == self.in_dim()
        {
            if x.rank() > 2 {
                return self.on_rows(x, |rows| self.forward_act(rows, act, pass));
            }
            if x.rank() == 2 {
                return crate::linear_act::linear_act(x, &self.masked()?, b, f);
            }
        }
        act.apply(&self.forward(x, pass)?)
    }

    /// `f` applied to `x: [..., in]` folded to rows `[N, in]`, its `[N, out]` unfolded
    /// again. Leading dimensions (samples, chains) become rows of one 2-D GEMM whose weight
    /// gradient is one product: through `broadcast_matmul` candle would broadcast the weight
    /// over them and reduce a per-slice weight gradient (`[S, out, in]`) with `sum_keepdim`.
    fn on_rows(&self, x: &Tensor, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
        let mut dims = x.dims().to_vec();
        let y = f(&x.contiguous()?.reshape(((), self.in_dim()))?)?;
        if let Some(last) = dims.last_mut() {
            *last = self.out_dim();
        }
        y.reshape(dims)
    }
}

/// A linear layer `in -> out` at `vb`'s path.
///
/// # Errors
/// Variable creation errors.
pub fn linear(
    in_dim: usize,
    out_dim: usize,
    config: LinearConfig,
    vb: VarBuilder,
) -> Result<Linear> {
    build(in_dim, out_dim, None, config, vb)
}

/// A masked linear layer: `mask: [out, in]` of 0/1 multiplies the weight in every forward.
///
/// # Errors
/// A mask of the wrong shape, variable creation errors.
pub fn masked_linear(
    in_dim: usize,
    out_dim: usize,
    mask: Tensor,
    config: LinearConfig,
    vb: VarBuilder,
) -> Result<Linear> {
    if mask.dims() != [out_dim, in_dim] {
        candle::bail!(
            "masked_linear: mask must be [{out_dim}, {in_dim}], got {:?}",
            mask.dims()
        );
    }
    build(in_dim, out_dim, Some(mask), config, vb)
}

fn build(
    in_dim: usize,
    out_dim: usize,
    mask: Option<Tensor>,
    config: LinearConfig,
    vb: VarBuilder,
) -> Result<Linear> {
    let path = vb.prefix();
    let weight_init = match config.norm {
        Normalization::Weight => Init::Randn {
            mean: 0.0,
            stdev: 0.05,
        },
        _ => Init::Randn {
            mean: 0.0,
            stdev: 1.0 / (in_dim.max(1) as f64).sqrt(),
        },
    };
    let weight = vb.get_with_hints((out_dim, in_dim), "weight", weight_init)?;
    let bias = match config.norm {
        Normalization::Batch => None,
        _ => Some(vb.get_with_hints(out_dim, "bias", Init::Const(0.0))?),
    };
    let mask = mask.map(|m| m.to_dtype(weight.dtype())).transpose()?;
    let g = match config.norm {
        Normalization::Weight => Some(vb.get_with_hints(out_dim, "g", Init::Const(1.0))?),
        _ => None,
    };
    let bn = match config.norm {
        Normalization::Batch => Some(candle_nn::batch_norm(
            out_dim,
            candle_nn::BatchNormConfig::default(),
            vb.pp("bn"),
        )?),
        _ => None,
    };
    Ok(Linear {
        weight,
        bias,
        mask,
        g,
        bn,
        config,
        path,
    })
}
