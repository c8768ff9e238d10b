#!/usr/bin/env bash
# Scaling benchmark on one CUDA GPU (make bench-gpu): every mixer, one layer and the small
# model, fp32 and bf16 (autocast), N = 256..65536 doubling (a mixer stops growing at its first
# out-of-memory or over-budget length) -> results/scaling.{csv,md,png}.
# Extra arguments are passed to experiments.bench (e.g. --lengths 1024 4096 --scopes layer).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

python -m experiments.bench --device cuda --batch 4 --hidden 256 --heads 4 \
    --dtypes fp32,bf16 --scopes layer,model --repeats 10 --budget 20 \
    --out results "$@"
