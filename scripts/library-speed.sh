#!/usr/bin/env bash
# A program built on the crates against the binary, same model, same data, same machine:
# the `vae_iaf` example (crates/models/examples) and `train-iaf train` with the example's
# model and training settings, run in turn ROUNDS times; prints each side's median epoch
# time (the trainer's own epoch clock on both sides: training steps only) and the ratio.
#
#   scripts/library-speed.sh MNIST_DIR [ROUNDS] [EPOCHS]
set -euo pipefail
dir=${1:?usage: scripts/library-speed.sh MNIST_DIR [ROUNDS] [EPOCHS]}
rounds=${2:-3}
epochs=${3:-2}
cd "$(dirname "$0")/.."
cargo build --release -q -p train-iaf --bin train-iaf
cargo build --release -q -p vaekit-models --example vae_iaf
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The example's model and settings as a train-iaf configuration.
cat > "$tmp/cfg.json" <<JSON
{"preset": "iwae-dense", "networks": {"context_dim": 50},
 "flow": {"kind": "iaf", "steps": 2, "hidden": [100, 100], "norm": "none",
          "variant": {"kind": "gated", "forget_bias": 1.0}},
 "optimizer": {"eps": 1e-8}, "batch_size": 100, "schedule": {"kind": "constant"}, "epochs": $epochs, "is_samples": 1,
 "limit_test": 1}
JSON
lib=() bin=()
for r in $(seq "$rounds"); do
  while read -r s; do lib+=("$s"); done < <(./target/release/examples/vae_iaf "$dir" "$epochs" \
    | sed -n 's/^epoch .*(\([0-9.]*\) s)$/\1/p')
  rm -rf "$tmp/run"
  ./target/release/train-iaf train --config "$tmp/cfg.json" --data-dir "$dir" --out "$tmp/run" > /dev/null
  while read -r s; do bin+=("$s"); done < <(python3 -c '
import json, sys
for line in open(sys.argv[1]):
    print(json.loads(line)["seconds"])' "$tmp/run/metrics.jsonl")
  echo "round $r: library ${lib[*]: -$epochs} s, binary ${bin[*]: -$epochs} s"
done
python3 - "${lib[*]}" "${bin[*]}" <<'PY'
import statistics, sys
lib = [float(v) for v in sys.argv[1].split()]
bin = [float(v) for v in sys.argv[2].split()]
ml, mb = statistics.median(lib), statistics.median(bin)
print(f"median epoch: library {ml:.3f} s ({len(lib)} epochs), binary {mb:.3f} s ({len(bin)} epochs), ratio {ml / mb:.3f}")
PY
