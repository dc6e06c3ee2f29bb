//! Compiles `cuda/*.cu` to PTX with nvcc (`$NVCC`, else `nvcc` on `PATH`, else
//! `$CUDA_HOME/bin/nvcc`), for the virtual architecture `compute_$VAEKIT_PTX_ARCH` (default
//! 75, the oldest that CUDA 13 still compiles for; the driver JIT-compiles it for any newer
//! GPU). `$NVCC_CCBIN` picks the host compiler.

use std::env;
use std::path::PathBuf;
use std::process::Command;

const SOURCES: [&str; 2] = ["elementwise", "reduce"];

fn nvcc() -> PathBuf {
    if let Some(p) = env::var_os("NVCC") {
        return PathBuf::from(p);
    }
    if let Some(home) = env::var_os("CUDA_HOME") {
        let p = PathBuf::from(home).join("bin").join("nvcc");
        if p.exists() {
            return p;
        }
    }
    PathBuf::from("nvcc")
}

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-changed=cuda");
    for var in ["NVCC", "CUDA_HOME", "NVCC_CCBIN", "VAEKIT_PTX_ARCH"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let arch = env::var("VAEKIT_PTX_ARCH").unwrap_or_else(|_| "75".to_string());
    for name in SOURCES {
        let src = format!("cuda/{name}.cu");
        let dst = out.join(format!("{name}.ptx"));
        let mut cmd = Command::new(nvcc());
        cmd.args(["--ptx", "-O3", "-std=c++17", "-lineinfo"])
            .arg(format!("-arch=compute_{arch}"))
            .arg(&src)
            .arg("-o")
            .arg(&dst);
        if let Some(ccbin) = env::var_os("NVCC_CCBIN") {
            cmd.arg("-ccbin").arg(ccbin);
        }
        let status = cmd.status().unwrap_or_else(|e| {
            panic!(
                "vaekit-kernels: cannot run nvcc ({e}); install the CUDA toolkit \
                 (scripts/build-gpu-bundle.sh installs 13.0 from PyPI) or set NVCC"
            )
        });
        assert!(status.success(), "vaekit-kernels: nvcc failed on {src}");
    }
}
