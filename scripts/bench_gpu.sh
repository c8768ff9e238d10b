#!/usr/bin/env bash
# Scaling benchmark on one CUDA GPU (make bench-gpu): every mixer, one layer and the small
# model, fp32 and bf16 (autocast), N = 256..65536 doubling (a mixer stops growing at its first
# out-of-memory or over-budget length) -> results/scaling.{csv,md,png}; then the layers in bf16
# timed as CUDA-graph replays (device time, no host launches: --timing graph)
# -> results/scaling_graph/scaling.{csv,md,png}.
# Extra arguments are passed to both runs of experiments.bench (e.g. --lengths 1024 4096).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

python -m experiments.bench --device cuda --batch 4 --hidden 256 --heads 4 \
    --dtypes fp32,bf16 --scopes layer,model --repeats 10 --budget 20 \
    --out results "$@"

python -m experiments.bench --device cuda --batch 8 --hidden 256 --heads 4 \
    --dtypes bf16 --scopes layer --timing graph --repeats 10 --budget 10 \
    --out results/scaling_graph "$@"
