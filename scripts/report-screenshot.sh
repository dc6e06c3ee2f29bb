#!/usr/bin/env bash
# A screenshot of a run's report page in headless Chromium, as the README shows it:
#   scripts/report-screenshot.sh RUN OUT.png [WIDTHxHEIGHT]
# Writes RUN/report.html (train-iaf report), then OUT.png at half scale (a 1280-pixel-wide
# page becomes a 640-pixel-wide picture). Needs Debian's chromium (apt-get install chromium)
# or VAEKIT_CHROMIUM naming a Chromium binary. apps/train-iaf/tests/report.rs runs the same
# browser with the same flags and checks what it renders.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 RUN OUT.png [WIDTHxHEIGHT]" >&2
  exit 2
fi
run=$(realpath "$1")
out=$(realpath -m "$2")
size=${3:-1280x1500}
browser=${VAEKIT_CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$browser" ]; then
  echo "error: no chromium found (apt-get install chromium, or set VAEKIT_CHROMIUM)" >&2
  exit 1
fi
cd "$(dirname "$0")/.."
cargo run --quiet --release -p train-iaf -- report "$run"
page=$(cd "$run" && pwd)/report.html
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --virtual-time-budget=10000 --user-data-dir="$profile" \
  --window-size="${size/x/,}" --force-device-scale-factor=0.5 \
  --screenshot="$out" "file://$page" 2>/dev/null
echo "wrote $out"
