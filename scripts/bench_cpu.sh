#!/usr/bin/env bash
# Scaling benchmark on this machine's CPU (make bench).
#
# Default: the CPU scaling configuration (2 threads, batch 4, hidden 256, 4 heads,
# N = 1024..8192, fp32, one layer) -> results/cpu/scaling.{csv,md,png}.
# BENCH_FULL=1: every mixer, layer and model scope, fp32 and bf16, N = 256..8192
# -> results/cpu_full/. Extra arguments are passed to experiments.bench.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [[ "${BENCH_FULL:-0}" == "1" ]]; then
    python -m experiments.bench --device cpu --threads 2 --batch 4 --hidden 256 --heads 4 \
        --dtypes fp32,bf16 --scopes layer,model --repeats 3 --budget 60 \
        --out results/cpu_full "$@"
else
    python -m experiments.bench --device cpu --threads 2 --batch 4 --hidden 256 --heads 4 \
        --lengths 1024 2048 4096 8192 --dtypes fp32 --scopes layer --repeats 3 --budget 60 \
        --out results/cpu "$@"
fi
