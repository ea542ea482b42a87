#!/usr/bin/env bash
# The GPU check, for anyone with a GPU: builds kiln with its GPU backends, runs kiln's tests of
# the wgpu backend, trains the digits CNN and a larger MLP on every backend whose device
# computes (checking their accuracy), and prints samples/s against PyTorch on CUDA and trials
# per hour with 1, 2 and 4 trials sharing the GPU.
#
#   scripts/gpu-check.sh            # wgpu, and cuda where an NVIDIA driver is loaded
#   KILN_GPU_FEATURES=wgpu scripts/gpu-check.sh
#
# PyTorch's figures need `pip install torch` (a CUDA build); without it they say skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
features="${KILN_GPU_FEATURES:-}"
if [ -z "$features" ]; then
  features=wgpu
  if [ -d /proc/driver/nvidia/gpus ]; then features=wgpu,cuda; fi
fi
echo "== kiln with --features $features"
if ! cargo build --release --features "$features" && [ "$features" != wgpu ]; then
  # burn's cuda backend downloads an LLVM bundle (tracel-llvm) while it builds.
  echo "WARNING: the build with $features failed (the cuda feature needs network access while it builds); going on with wgpu only"
  features=wgpu
  cargo build --release --features "$features"
fi
echo "== the devices kiln finds"
cat > /tmp/kiln-gpu-check.toml <<TOML
name = "gpu-check"
[data]
path = "$PWD/experiments/data/digits.csv"
target = "label"
task = "classification"
[train]
backend = "${features##*,}"
[space]
learning_rate = { log_uniform = [1e-4, 1e-2] }
TOML
cargo run --release --quiet --features "$features" -- check /tmp/kiln-gpu-check.toml | sed -n '/^devices/,$p' || true
echo "== kiln's tests of the wgpu backend"
cargo test --release --features "$features" --test all gpu::
echo "== samples/s and trials/hour"
cargo bench --features "$features" --bench sweep -- gpu
