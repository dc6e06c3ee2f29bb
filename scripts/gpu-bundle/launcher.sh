#!/usr/bin/env bash
# A launcher of vaekit's CUDA bundle (made by scripts/build-gpu-bundle.sh): finds the CUDA 13
# libraries the binary links, then runs the binary of the same name in ../libexec (a test
# launcher in bin/tests/ runs ../../libexec/tests/NAME).
#
# The binary needs the NVIDIA driver's libcuda.so.1 and, from CUDA 13, the libraries that
# lib/cuda-libs.txt names (libcublas.so.13, libcublasLt.so.13, libcurand.so.10,
# libcudart.so.13). They are looked for, in this order, in:
#   $VAEKIT_CUDA_LIB_DIRS (folders separated by ':'), the bundle's lib/,
#   the nvidia/cu13/lib and nvidia/*/lib folders of python3's site-packages (PyTorch's CUDA 13
#   wheels: nvidia-cublas, nvidia-curand, nvidia-cuda-nvrtc, nvidia-cuda-runtime),
#   /usr/local/cuda/lib64 and /usr/local/cuda/targets/x86_64-linux/lib,
#   then what the dynamic loader already finds (LD_LIBRARY_PATH, ldconfig).
# Without the driver it stops with "no CUDA device" and exit status 3; with a library
# missing it names the library and exits with 4. VAEKIT_LAUNCHER_DEBUG=1 prints the search.
set -uo pipefail
self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name="$(basename "${BASH_SOURCE[0]}")"
case "$self" in
  */bin/tests) root="${self%/bin/tests}"; exe="$root/libexec/tests/$name" ;;
  *) root="${self%/bin}"; exe="$root/libexec/$name" ;;
esac
debug() { [ "${VAEKIT_LAUNCHER_DEBUG:-0}" = 1 ] && echo "launcher: $*" >&2; return 0; }

dirs=()
IFS=: read -r -a extra <<<"${VAEKIT_CUDA_LIB_DIRS:-}"
for d in "${extra[@]}"; do [ -n "$d" ] && dirs+=("$d"); done
dirs+=("$root/lib")
py="${VAEKIT_PYTHON:-python3}"
if command -v "$py" >/dev/null 2>&1; then
  while IFS= read -r sp; do
    for d in "$sp"/nvidia/cu13/lib "$sp"/nvidia/*/lib; do [ -d "$d" ] && dirs+=("$d"); done
  done < <("$py" -c 'import site
for p in site.getsitepackages() + [site.getusersitepackages()]: print(p)' 2>/dev/null)
fi
dirs+=(/usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib)

# where the loader would find NAME without our help (LD_LIBRARY_PATH, then ldconfig's cache)
loader_has() {
  local d
  IFS=: read -r -a ld <<<"${LD_LIBRARY_PATH:-}"
  for d in "${ld[@]}"; do [ -n "$d" ] && [ -e "$d/$1" ] && return 0; done
  ldconfig -p 2>/dev/null | grep -q "[[:space:]]$1 "
}

driver=""
for d in "${extra[@]}" /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib/wsl/lib; do
  [ -n "$d" ] && [ -e "$d/libcuda.so.1" ] && { driver="$d"; break; }
done
if [ -z "$driver" ] && ! loader_has libcuda.so.1; then
  echo "$name: no CUDA device: the NVIDIA driver's libcuda.so.1 is not on this machine" \
    "(this CUDA build of vaekit needs an NVIDIA GPU and its driver, version 580 or newer;" \
    "docs/gpu.md)" >&2
  exit 3
fi
debug "driver: ${driver:-found by the loader}"

path=()
[ -n "$driver" ] && path+=("$driver")
missing=()
# the CUDA libraries the bundle's binaries link (written by build-gpu-bundle.sh)
needs=(libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libcudart.so.13)
[ -f "$root/lib/cuda-libs.txt" ] && mapfile -t needs <"$root/lib/cuda-libs.txt"
for lib in "${needs[@]}"; do
  found=""
  for d in "${dirs[@]}"; do
    if [ -e "$d/$lib" ]; then found="$d"; break; fi
  done
  if [ -n "$found" ]; then
    debug "$lib: $found"
    case ":$(IFS=:; echo "${path[*]:-}"):" in *":$found:"*) ;; *) path+=("$found") ;; esac
  elif loader_has "$lib"; then
    debug "$lib: found by the loader"
  else
    missing+=("$lib")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "$name: CUDA 13 libraries not found: ${missing[*]}. Install PyTorch's CUDA 13 wheels" \
    "(nvidia-cublas, nvidia-curand, nvidia-cuda-runtime) for python3, or" \
    "name their folders in VAEKIT_CUDA_LIB_DIRS (docs/gpu.md)" >&2
  exit 4
fi
joined="$(IFS=:; echo "${path[*]:-}")"
export LD_LIBRARY_PATH="${joined}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
debug "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
exec "$exe" "$@"
