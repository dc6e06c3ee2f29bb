//! Composition of flows, and the reversal placed between IAF steps.

use crate::flow::{Flow, FlowOutput, check_input};
use crate::iaf::{IafVariant, iaf_step};
use crate::made::MadeConfig;
use candle::{Result, Tensor};
use candle_nn::VarBuilder;
use vaekit_nets::Pass;

/// Reverses the order of the dimensions (a permutation: `log det = 0`).
#[derive(Debug, Clone, Copy)]
pub struct Reverse {
    dim: usize,
}

impl Reverse {
    /// A reversal of `dim` dimensions.
    pub fn new(dim: usize) -> Self {
        Self { dim }
    }
}

impl Flow for Reverse {
    fn forward(&self, z: &Tensor, _context: Option<&Tensor>, _pass: Pass) -> Result<FlowOutput> {
        check_input("Reverse", z, self.dim)?;
        Ok(FlowOutput {
            value: z.flip(&[1])?,
            log_det_jacobian: Tensor::zeros(z.dim(0)?, z.dtype(), z.device())?,
        })
    }
    fn dim(&self) -> usize {
        self.dim
    }
    fn forward_per_dim(
        &self,
        z: &Tensor,
        context: Option<&Tensor>,
        pass: Pass,
        acc: &Tensor,
    ) -> Result<Option<(FlowOutput, Tensor)>> {
        Ok(Some((self.forward(z, context, pass)?, acc.flip(&[1])?)))
    }
}

/// `f_K ∘ ... ∘ f_1`, each step given the same context; the log-determinants add up.
#[derive(Debug, Default)]
pub struct FlowChain {
    steps: Vec<Box<dyn Flow>>,
}

impl FlowChain {
    /// A chain of the given steps.
    pub fn new(steps: Vec<Box<dyn Flow>>) -> Self {
        Self { steps }
    }

    /// Number of steps.
    pub fn len(&self) -> usize {
        self.steps.len()
    }

    /// Whether the chain is empty (the identity).
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

impl Flow for FlowChain {
    fn forward(&self, z: &Tensor, context: Option<&Tensor>, pass: Pass) -> Result<FlowOutput> {
        let mut value = z.clone();
        let mut log_det = Tensor::zeros(z.dim(0)?, z.dtype(), z.device())?;
        for step in &self.steps {
            let out = step.forward(&value, context, pass)?;
            value = out.value;
            log_det = (log_det + out.log_det_jacobian)?;
        }
        Ok(FlowOutput {
            value,
            log_det_jacobian: log_det,
        })
    }
    fn dim(&self) -> usize {
        self.steps.first().map_or(0, |s| s.dim())
    }
    fn forward_per_dim(
        &self,
        z: &Tensor,
        context: Option<&Tensor>,
        pass: Pass,
        acc: &Tensor,
    ) -> Result<Option<(FlowOutput, Tensor)>> {
        let mut value = z.clone();
        let mut log_det = Tensor::zeros(z.dim(0)?, z.dtype(), z.device())?;
        let mut acc = acc.clone();
        for step in &self.steps {
            let Some((out, next)) = step.forward_per_dim(&value, context, pass, &acc)? else {
                return Ok(None);
            };
            value = out.value;
            log_det = (log_det + out.log_det_jacobian)?;
            acc = next;
        }
        Ok(Some((
            FlowOutput {
                value,
                log_det_jacobian: log_det,
            },
            acc,
        )))
    }
}

/// `steps` IAF steps with a [`Reverse`] between consecutive ones (so that every dimension is
/// transformed conditioned on every other one somewhere in the chain); step `k` at
/// `vb.pp("iaf{k}")`.
///
/// # Errors
/// Step construction errors.
pub fn iaf_chain(
    steps: usize,
    made: &MadeConfig,
    variant: IafVariant,
    vb: VarBuilder,
) -> Result<FlowChain> {
    let mut out: Vec<Box<dyn Flow>> = Vec::with_capacity(2 * steps);
    for k in 0..steps {
        if k > 0 {
            out.push(Box::new(Reverse::new(made.dim)));
        }
        out.push(Box::new(iaf_step(made, variant, vb.pp(format!("iaf{k}")))?));
    }
    Ok(FlowChain::new(out))
}
