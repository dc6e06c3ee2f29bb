#!/usr/bin/env bash
# Bundle a CUDA build of train-iaf with the CUDA runtime libraries it links, so that it runs
# on a Linux x86-64 machine that has an NVIDIA driver (libcuda.so.1) but no CUDA toolkit
# and no Rust toolchain. See docs/gpu.md.
#
# Usage: scripts/package-cuda.sh [TARGET_DIR] [OUT]
#   TARGET_DIR  cargo's target directory of the CUDA build (default: target)
#   OUT         the folder to create (default: dist/train-iaf-cuda); a .tar.gz beside it
#
# The folder holds bin/train-iaf, lib/ (cuBLAS, cuBLASLt, cuRAND, the CUDA runtime: whatever
# `ldd` resolves from the toolkit; never libcuda.so.1, which must come from the driver) and a
# `train-iaf` launcher that points the loader at lib/.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR="${1:-target}"
OUT="${2:-dist/train-iaf-cuda}"
BIN="$TARGET_DIR/release/train-iaf"
[ -x "$BIN" ] || { echo "no $BIN: build it with --features cuda first (docs/gpu.md)" >&2; exit 1; }
LDD="$(ldd "$BIN")"
if ! grep -q 'libcublas' <<<"$LDD"; then
  echo "$BIN does not link cuBLAS: was it built with --features cuda?" >&2
  exit 1
fi

rm -rf "$OUT"
mkdir -p "$OUT/bin" "$OUT/lib"
cp "$BIN" "$OUT/bin/train-iaf"
# The CUDA libraries ldd resolves (the driver's libcuda is the target machine's own).
awk '/=> \// {print $1, $3}' <<<"$LDD" | while read -r name path; do
  case "$name" in
    libcuda.so*) ;;
    libcublas*|libcurand*|libnvrtc*|libcudart*|libcudnn*|libnccl*) cp -L "$path" "$OUT/lib/$name" ;;
  esac
done
cat > "$OUT/train-iaf" <<'SH'
#!/usr/bin/env bash
# train-iaf with its bundled CUDA runtime libraries; needs the NVIDIA driver (libcuda.so.1).
here="$(cd "$(dirname "$0")" && pwd)"
export LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
exec "$here/bin/train-iaf" "$@"
SH
chmod +x "$OUT/train-iaf"
tar -C "$(dirname "$OUT")" -czf "$OUT.tar.gz" "$(basename "$OUT")"
echo "wrote $OUT and $OUT.tar.gz ($(du -sh "$OUT" | cut -f1) unpacked):"
ls -1 "$OUT/lib"
