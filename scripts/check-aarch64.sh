#!/usr/bin/env bash
# vaekit on aarch64 (Apple Silicon under Linux, Graviton, Ampere), from an x86-64 machine:
#   scripts/check-aarch64.sh          # cargo check of the whole workspace, every target
#   scripts/check-aarch64.sh --test   # and vaekit-ops' tests run under qemu-user
# Installs what it needs where it can: the Rust target (rustup) and, from Debian's packages,
# the cross C compiler (mimalloc is C) and, for --test, qemu-user and the arm64 C library.
# On aarch64 the kernels take their portable paths (vaekit_ops::isa() is Baseline); the tests
# compare the fused ops against their compositions there.
set -euo pipefail
cd "$(dirname "$0")/.."
target=aarch64-unknown-linux-gnu
rustup target add "$target" >/dev/null
need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${@:2}" >/dev/null
    else
      echo "error: $1 is missing (Debian: apt-get install ${*:2})" >&2
      exit 1
    fi
  fi
}
need aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
echo "== cargo check --workspace --all-targets --target $target"
cargo check --workspace --all-targets --target "$target"
if [ "${1:-}" = "--test" ]; then
  need qemu-aarch64 qemu-user libc6-dev-arm64-cross
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu"
  echo "== cargo test -p vaekit-ops --target $target (under qemu-aarch64)"
  cargo test -p vaekit-ops --target "$target"
fi
