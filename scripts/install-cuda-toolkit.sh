#!/usr/bin/env bash
# Prepare a Debian 12 (bookworm) machine to BUILD vaekit with `--features cuda`.
#
# Installs Debian's packaged CUDA toolkit (nvcc, headers, cuBLAS/cuRAND/cuDNN-free libraries)
# from the `non-free` component. No GPU and no NVIDIA driver are needed to build; the binary
# loads libcuda.so at run time (cudarc's dynamic loading), so a machine that runs it needs the
# NVIDIA driver only. See docs/gpu.md.
#
# Version installed on bookworm: nvidia-cuda-toolkit 11.8.89~11.8.0-5~deb12u1 (CUDA 11.8), which
# accepts host compilers up to GCC 11; the script installs gcc-11/g++-11 for nvcc's host side.
#
# Usage (as root, or with sudo available):  scripts/install-cuda-toolkit.sh
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

. /etc/os-release
if [ "${VERSION_CODENAME:-}" != "bookworm" ]; then
  echo "warning: written for Debian 12 (bookworm); this is ${PRETTY_NAME:-unknown}" >&2
fi

LIST=/etc/apt/sources.list.d/vaekit-cuda-nonfree.sources
if [ ! -f "$LIST" ]; then
  echo "== enabling contrib and non-free in $LIST"
  $SUDO tee "$LIST" >/dev/null <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: ${VERSION_CODENAME:-bookworm} ${VERSION_CODENAME:-bookworm}-updates
Components: contrib non-free non-free-firmware
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

echo "== apt-get install nvidia-cuda-toolkit gcc-11 g++-11"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
  nvidia-cuda-toolkit nvidia-cuda-dev gcc-11 g++-11

echo "== installed"
nvcc --version | tail -2
cat <<MSG

Build with:
  export NVCC_CCBIN=/usr/bin/g++-11        # CUDA 11.8's newest supported host compiler
  export CUDA_COMPUTE_CAP=80                # the GPU's compute capability x10 (H100: 90)
  cargo build --release -p train-iaf --features cuda
MSG
