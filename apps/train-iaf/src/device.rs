//! `--device cpu|cuda[:N]|metal[:N]`: where tensors live.

use anyhow::{Context, Result, bail};
use candle::Device;

/// The device named by `spec`: `cpu`, `cuda` / `cuda:N` (GPU N, default 0) or `metal` /
/// `metal:N`. A GPU that this binary was built without support for is an error saying
/// which `--features` to build with.
pub fn parse(spec: &str) -> Result<Device> {
    let (kind, ordinal) = match spec.split_once(':') {
        Some((k, n)) => (
            k,
            n.parse::<usize>()
                .with_context(|| format!("--device {spec}: `{n}` is not a device number"))?,
        ),
        None => (spec, 0),
    };
    match kind {
        "cpu" if !spec.contains(':') => Ok(Device::Cpu),
        "cuda" => {
            if !candle::utils::cuda_is_available() {
                bail!(
                    "--device {spec}: this train-iaf was built without CUDA; build it with \
                     `cargo build --release -p train-iaf --features cuda` (docs/gpu.md)"
                );
            }
            Device::new_cuda(ordinal).with_context(|| format!("--device {spec}: no such CUDA GPU"))
        }
        "metal" => {
            if !candle::utils::metal_is_available() {
                bail!(
                    "--device {spec}: this train-iaf was built without Metal; build it with \
                     `cargo build --release -p train-iaf --features metal`"
                );
            }
            Device::new_metal(ordinal)
                .with_context(|| format!("--device {spec}: no such Metal GPU"))
        }
        _ => bail!("--device {spec}: expected cpu, cuda, cuda:N, metal or metal:N"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices_and_rejects_nonsense() {
        assert!(parse("cpu").is_ok_and(|d| d.is_cpu()));
        for bad in ["gpu", "cpu:1", "cuda:x", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        if !candle::utils::cuda_is_available() {
            let e = format!(
                "{:#}",
                parse("cuda:0")
                    .err()
                    .map_or(String::new(), |e| e.to_string())
            );
            assert!(e.contains("--features cuda"), "{e}");
        }
    }
}
