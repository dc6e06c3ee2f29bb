//! Devices named on a command line: `cpu`, `cuda[:N]`, `metal[:N]`.

use candle::{Device, Result};

/// The device named by `spec`: `cpu`, `cuda` / `cuda:N` (GPU N, default 0) or `metal` /
/// `metal:N`. For binaries' `--device` options.
///
/// # Errors
/// An unknown name or a bad number; a GPU kind this build has no support for (the message
/// says which cargo feature to build with); a GPU that is not there or a driver that does
/// not answer: the message starts `device "cuda:N": no CUDA device usable` and carries the
/// driver's error.
pub fn parse_device(spec: &str) -> Result<Device> {
    let (kind, ordinal) = match spec.split_once(':') {
        Some((k, n)) => match n.parse::<usize>() {
            Ok(n) if k != "cpu" => (k, n),
            _ => candle::bail!("device {spec:?}: expected cpu, cuda, cuda:N, metal or metal:N"),
        },
        None => (spec, 0),
    };
    match kind {
        "cpu" => Ok(Device::Cpu),
        "cuda" if !candle::utils::cuda_is_available() => candle::bail!(
            "device {spec:?}: built without CUDA; build with `--features cuda` (docs/gpu.md)"
        ),
        "cuda" => Device::new_cuda(ordinal).map_err(|e| {
            // The driver's error without the backtrace candle attaches under RUST_BACKTRACE.
            let e = match e {
                candle::Error::WithBacktrace { inner, .. } => *inner,
                e => e,
            };
            candle::Error::Msg(format!(
                "device {spec:?}: no CUDA device usable ({e}); this build needs an NVIDIA GPU \
                 and its driver (docs/gpu.md)"
            ))
        }),
        "metal" if !candle::utils::metal_is_available() => {
            candle::bail!("device {spec:?}: built without Metal; build with `--features metal`")
        }
        "metal" => Device::new_metal(ordinal),
        _ => candle::bail!("device {spec:?}: expected cpu, cuda, cuda:N, metal or metal:N"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_devices_and_rejects_nonsense() {
        assert!(parse_device("cpu").is_ok_and(|d| d.is_cpu()));
        for bad in ["gpu", "cpu:1", "cuda:x", "cuda:", ""] {
            assert!(parse_device(bad).is_err(), "{bad}");
        }
        if !candle::utils::cuda_is_available() {
            let e = parse_device("cuda:0").map_or_else(|e| e.to_string(), |_| String::new());
            assert!(e.contains("--features cuda"), "{e}");
        }
    }
}
