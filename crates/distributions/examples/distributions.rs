//! The distributions and the KL registry on their own: samples and log densities with
//! Pyro/TFP shapes, a closed-form KL checked against Monte Carlo, the registry's fallback to
//! Monte Carlo where no closed form exists, and Bernoulli logits that stay finite.
//! `cargo run --release --example distributions`
use candle::{DType, Device, Tensor};
use vaekit_core::SeededNoise;
use vaekit_distributions::{
    Bernoulli, Distribution, Entropy, Independent, KlMethod, MixtureSameFamily, Normal,
    Reparameterize, StandardNormal, default_registry,
};

fn main() -> candle::Result<()> {
    let (dev, mut noise) = (Device::Cpu, SeededNoise::new(0));
    // q = N(loc, scale²) per dimension, batch [3], event [2]; p = N(0, I) over the same event.
    let loc = Tensor::new(&[[0.5f32, -1.0], [0.0, 0.0], [2.0, 1.0]], &dev)?;
    let scale = Tensor::new(&[[0.5f32, 2.0], [1.0, 1.0], [0.1, 0.3]], &dev)?;
    let q = Independent::new(Normal::new(loc, scale)?, 1)?;
    let p = Independent::new(StandardNormal::new(2, DType::F32, &dev)?, 1)?;
    let z = q.rsample(&[4], &mut noise)?; // sample [4] ++ batch [3] ++ event [2]
    println!("z: {:?}, log q(z): {:?}", z.dims(), q.log_prob(&z)?.dims());
    println!("entropy of q: {:?}", q.entropy()?.to_vec1::<f32>()?);

    // The registry finds the closed form through `Independent`; Monte Carlo agrees.
    let kl = default_registry().kl_divergence(&q, &p, 1, &mut noise)?;
    assert_eq!(kl.method, KlMethod::Analytic);
    let z = q.rsample(&[20_000], &mut noise)?;
    let mc = (q.log_prob(&z)? - p.log_prob(&z)?)?.mean(0)?;
    println!("KL(q || p): closed form {:?}", kl.value.to_vec1::<f32>()?);
    println!(
        "            Monte Carlo {:?} (20000 draws)",
        mc.to_vec1::<f32>()?
    );

    // No closed form between a mixture and a Normal: the registry estimates and says so.
    let logits = Tensor::new(&[[0.0f32, 1.0]], &dev)?; // batch [1], 2 components
    let mix_loc = Tensor::new(&[[[-2.0f32, 0.0], [2.0, 0.0]]], &dev)?; // [1, 2, 2]
    let mix_scale = Tensor::ones((1, 2, 2), DType::F32, &dev)?;
    let mixture = MixtureSameFamily::new(logits, mix_loc, mix_scale)?;
    let kl = default_registry().kl_divergence(&mixture, &p, 10_000, &mut noise)?;
    let value = kl.value.to_vec1::<f32>()?;
    println!("KL(mixture || N(0, I)) = {value:?} by {:?}", kl.method);

    // Bernoulli takes logits: log p(x) stays finite where probabilities would round to 0 or 1.
    let b = Bernoulli::new(Tensor::new(&[-200.0f32, 0.0, 200.0], &dev)?)?;
    let x = Tensor::new(&[1.0f32, 1.0, 0.0], &dev)?;
    let log_p = b.log_prob(&x)?.to_vec1::<f32>()?;
    println!("Bernoulli log p(1 | -200), log p(1 | 0), log p(0 | 200): {log_p:?}");
    Ok(())
}
