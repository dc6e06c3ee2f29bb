#!/usr/bin/env bash
# The prepared GPU check: one call on a lent GPU machine (no Rust, no network), under 8
# minutes, writing logs and one JSON summary into OUT.
#
#   scripts/gpu-check.sh [--dry-run] [--minutes M] [--bin DIR] [--data DIR] [--pack DIR] OUT
#
#   --bin DIR    the binaries: train-iaf, vaekit-bench and, in tests/, the CUDA op-test
#                binaries (default: dist/gpu-bundle/bin, what scripts/build-gpu-bundle.sh
#                makes, unpacked from dist/gpu-bundle.tar.xz when only the archive is there;
#                with --dry-run: target/release, built by cargo here)
#   --data DIR   the four MNIST IDX files (default: the first of ../shared/datasets/mnist,
#                shared/datasets/mnist and dist/mnist, where build-gpu-bundle.sh copies them)
#   --pack DIR   also write DIR/summary.json and DIR/logs.tar.gz (the logs and the run's
#                metrics, configuration and results, no checkpoints): what a lent machine's
#                $OUT can send back (8 files at most)
#   --minutes M  iaf-resnet training time on the full training set (default 3)
#   --dry-run    everything on the CPU with tiny sizes: checks the script end to end on a
#                machine without a GPU (CI runs it)
#
# Steps, each logged in OUT/logs and its exit status kept (a failing step does not stop the
# others; the script exits non-zero if any failed):
#   1. the device (nvidia-smi);
#   2. the op tests: every executable in BIN/tests, one thread;
#   3. vaekit-bench on the device against PyTorch on the device (the GPU's own PyTorch);
#   4. iaf-resnet trained for M minutes (time per epoch, images/s, peak GPU memory), then its
#      IS-1000 on 300 test images;
#   5. OUT/summary.json.
set -uo pipefail
dry=0
minutes=3
bin=""
data=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry-run) dry=1 ;;
    --minutes) minutes="$2"; shift ;;
    --bin) bin="$2"; shift ;;
    --data) data="$2"; shift ;;
    --pack) pack="$2"; shift ;;
    -h|--help) sed -n '2,/^set /{/^#/p}' "$0"; exit 0 ;;
    -*) echo "gpu-check: unknown option $1" >&2; exit 2 ;;
    *) out="$1" ;;
  esac
  shift
done
if [ -z "${out:-}" ]; then
  echo "usage: $0 [--dry-run] [--minutes M] [--bin DIR] [--data DIR] [--pack DIR] OUT" >&2
  exit 2
fi
if ! [[ "$minutes" =~ ^[0-9]+([.][0-9]+)?$ ]] || [ "$minutes" = 0 ]; then
  echo "gpu-check: --minutes $minutes: must be a positive number" >&2
  exit 2
fi
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "$bin" ]; then
  if [ "$dry" = 1 ]; then bin="$root/target/release"; else bin="$root/dist/gpu-bundle/bin"; fi
  if [ "$dry" = 0 ] && [ ! -d "$bin" ] && [ -f "$root/dist/gpu-bundle.tar.xz" ]; then
    echo "gpu-check: unpacking dist/gpu-bundle.tar.xz"
    tar -C "$root/dist" -xJf "$root/dist/gpu-bundle.tar.xz" || exit 1
  fi
fi
if [ -z "$data" ]; then
  for d in "$root/../shared/datasets/mnist" "$root/shared/datasets/mnist" "$root/dist/mnist"; do
    [ -d "$d" ] && data="$d" && break
  done
fi
for b in train-iaf vaekit-bench; do
  [ -x "$bin/$b" ] || { echo "gpu-check: no $bin/$b" >&2; exit 1; }
done
[ -n "$data" ] && [ -d "$data" ] || { echo "gpu-check: no MNIST directory (--data)" >&2; exit 1; }
mkdir -p "$out/logs"
out="$(cd "$out" && pwd)"
declare -A status
step() { # step NAME COMMAND...: run, log, keep the status
  local name="$1"; shift
  local t0=$SECONDS
  echo "== $name: $*" | tee -a "$out/logs/steps.log"
  "$@" >"$out/logs/$name.log" 2>&1
  status[$name]=$?
  echo "   exit ${status[$name]} after $((SECONDS - t0)) s" | tee -a "$out/logs/steps.log"
}

if [ "$dry" = 1 ]; then
  device=cpu
  bench_args=(--no-torch --no-jax --rounds 1 --reps 1 --min-sample-s 0.05 --warmup 0
    --only dense_vae_step_b20,hais_leapfrog_b100_c16)
  train_args=(--limit-train 200 --limit-test 20 --is-samples 10 --epochs 1 --time-budget 1)
  echo "gpu-check: dry run on the CPU with $bin" | tee "$out/logs/steps.log"
  echo '{"dry_run": true}' >"$out/device.json"
else
  device=cuda
  bench_args=(--python python3 --no-jax --rounds 2
    --only dense_vae_step_b100,iwae50_step_b100,resblock_c64_b32_14x14,iaf_step_b100_d64_w1920,hais_leapfrog_b100_c16)
  train_args=(--limit-test 300 --is-samples 1000 --time-budget "$minutes")
  : >"$out/logs/steps.log"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader \
    >"$out/logs/device.log" 2>&1
  status[device]=$?
  # Peak memory: nvidia-smi sampled every second while the steps run.
  nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 1000 \
    >"$out/logs/memory.log" 2>/dev/null &
  mem_pid=$!
fi

# 2. The op tests (the CUDA build's test binaries; none in a dry run unless given).
tests_run=0
for t in "$bin"/tests/*; do
  [ -x "$t" ] || continue
  tests_run=$((tests_run + 1))
  step "test-$(basename "$t")" "$t" --test-threads 1
done

# 3. The bench on the device.
step bench "$bin/vaekit-bench" --device "$device" --threads "$(nproc)" "${bench_args[@]}" \
  --json "$out/bench.json"

# 4. Training, then the run's own IS.
rm -rf "$out/run"
step train "$bin/train-iaf" --device "$device" train --preset iaf-resnet --data-dir "$data" \
  --out "$out/run" --tensorboard false "${train_args[@]}"

[ -n "${mem_pid:-}" ] && kill "$mem_pid" 2>/dev/null

# 5. The summary.
python3 - "$out" "$device" "$tests_run" "$(for k in "${!status[@]}"; do echo "$k=${status[$k]}"; done)" <<'PY'
import json, os, sys
out, device, tests_run, statuses = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None
status = dict(line.split("=", 1) for line in statuses.split() if "=" in line)
metrics = []
try:
    with open(os.path.join(out, "run", "metrics.jsonl")) as f:
        metrics = [json.loads(l) for l in f if l.strip()]
except OSError:
    pass
config = load(os.path.join(out, "run", "config.json")) or {}
train_images = config.get("limit_train") or 60000
memory = []
try:
    with open(os.path.join(out, "logs", "memory.log")) as f:
        memory = [int(l) for l in f if l.strip().isdigit()]
except OSError:
    pass
summary = {
    "device": device,
    "device_info": open(os.path.join(out, "logs", "device.log")).read().strip()
    if os.path.exists(os.path.join(out, "logs", "device.log")) else None,
    "steps": {k: int(v) for k, v in status.items()},
    "op_test_binaries": tests_run,
    "bench": load(os.path.join(out, "bench.json")),
    "epochs": [{"epoch": m["epoch"], "seconds": m["seconds"],
                "images_per_second": train_images / m["seconds"] if m["seconds"] else None,
                "test_neg_elbo": m["test_neg_elbo"]} for m in metrics],
    "results": load(os.path.join(out, "run", "results.json")),
    "peak_gpu_memory_mib": max(memory) if memory else None,
}
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(summary, f, indent=2)
print(f"wrote {os.path.join(out, 'summary.json')}: steps {summary['steps']}")
PY
if [ -n "${pack:-}" ]; then
  pack="$(mkdir -p "$pack" && cd "$pack" && pwd)"
  if cp "$out/summary.json" "$pack/summary.json" &&
     (cd "$out" && tar -czf "$pack/logs.tar.gz" logs $(ls run/*.json run/*.jsonl run/*.log run/*.txt 2>/dev/null)); then
    echo "packed $pack/summary.json and $pack/logs.tar.gz"
  else
    echo "gpu-check: packing into $pack failed" >&2
    status[pack]=1
  fi
fi
failed=0
for k in "${!status[@]}"; do
  [ "${status[$k]}" = 0 ] || failed=1
done
exit $failed
