//! Closed-form KL divergences.

use super::KlDivergence;
use crate::shape::sum_rightmost;
use crate::special::log_sphere_area;
use crate::{
    Bernoulli, Categorical, Distribution, Independent, Normal, SphereUniform, StandardNormal,
    VonMisesFisher,
};
use candle::{D, Result, Tensor};
use vaekit_core::{is_finite, log_sigmoid};

/// `ln(σ_q/σ_p) + (σ_p² + (μ_p - μ_q)²) / (2 σ_q²) - ½`.
impl KlDivergence<Normal> for Normal {
    fn kl_divergence(&self, q: &Normal) -> Result<Tensor> {
        let log_ratio = self.log_scale().broadcast_sub(q.log_scale())?;
        let var_ratio = (&log_ratio * 2.0)?.exp()?;
        let diff = self
            .loc()
            .broadcast_sub(q.loc())?
            .broadcast_div(q.scale())?;
        ((var_ratio + diff.sqr()?)? * 0.5)?.affine(1.0, -0.5)? - log_ratio
    }
}

/// `½ (σ² + μ² - 1) - ln σ`.
impl KlDivergence<StandardNormal> for Normal {
    fn kl_divergence(&self, q: &StandardNormal) -> Result<Tensor> {
        let kl =
            ((self.scale().sqr()? + self.loc().sqr()?)?.affine(0.5, -0.5)? - self.log_scale())?;
        let zeros = Tensor::zeros(q.batch_shape(), kl.dtype(), kl.device())?;
        kl.broadcast_add(&zeros)
    }
}

/// `p (ln p - ln q) + (1 - p)(ln(1 - p) - ln(1 - q))`, all in log-sigmoids of the logits.
impl KlDivergence<Bernoulli> for Bernoulli {
    fn kl_divergence(&self, q: &Bernoulli) -> Result<Tensor> {
        let (lp, lq) = (self.logits(), q.logits());
        let (log_p, log_1mp) = (log_sigmoid(lp)?, log_sigmoid(&lp.neg()?)?);
        let (log_q, log_1mq) = (log_sigmoid(lq)?, log_sigmoid(&lq.neg()?)?);
        let a = log_p.exp()?.broadcast_mul(&log_p.broadcast_sub(&log_q)?)?;
        let b = log_1mp
            .exp()?
            .broadcast_mul(&log_1mp.broadcast_sub(&log_1mq)?)?;
        a + b
    }
}

/// `Σ_k p_k (ln p_k - ln q_k)`, with classes impossible under `p` contributing 0.
impl KlDivergence<Categorical> for Categorical {
    fn kl_divergence(&self, q: &Categorical) -> Result<Tensor> {
        let lp = self.log_probs();
        let finite = is_finite(lp)?;
        let safe_lp = finite.where_cond(lp, &lp.zeros_like()?)?;
        let diff = safe_lp.broadcast_sub(q.log_probs())?;
        let diff = finite
            .broadcast_as(diff.shape())?
            .where_cond(&diff, &diff.zeros_like()?)?;
        safe_lp.exp()?.broadcast_mul(&diff)?.sum(D::Minus1)
    }
}

/// `κ A_m(κ) + ln C_m(κ) + ln |S^{m-1}|`.
impl KlDivergence<SphereUniform> for VonMisesFisher {
    fn kl_divergence(&self, q: &SphereUniform) -> Result<Tensor> {
        let m = self.event_shape().dims()[0];
        if q.dim() != m {
            candle::bail!(
                "kl(VonMisesFisher || SphereUniform): dimensions {m} and {} differ",
                q.dim()
            );
        }
        let ka = (self.concentration() * self.mean_resultant_length()?)?;
        let kl = (ka + self.log_normalizer()?)?.affine(1.0, log_sphere_area(m))?;
        let zeros = Tensor::zeros(q.batch_shape(), kl.dtype(), kl.device())?;
        kl.broadcast_add(&zeros)
    }
}

/// The base KL summed over the reinterpreted dimensions.
impl<P, Q> KlDivergence<Independent<Q>> for Independent<P>
where
    P: Distribution + KlDivergence<Q>,
    Q: Distribution,
{
    fn kl_divergence(&self, q: &Independent<Q>) -> Result<Tensor> {
        let n = self.reinterpreted_ndims();
        if n != q.reinterpreted_ndims() {
            candle::bail!(
                "kl(Independent || Independent): reinterpreted dimensions {n} and {} differ",
                q.reinterpreted_ndims()
            );
        }
        sum_rightmost(&self.base().kl_divergence(q.base())?, n)
    }
}
