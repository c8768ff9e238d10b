#!/usr/bin/env bash
# LRA ListOps on one GPU with the experiment/lra presets.
#
#   bash scripts/gpu_listops_campaign.sh TAG MAX_TIME "VARIANT:SEED[:MAX_TIME] ..."
#
# e.g.  SEQUENTIAL=1 bash scripts/gpu_listops_campaign.sh a 00:00:05:40 "softmax:0 fnet:0:00:00:02:30"
#
# Runs share the GPU unless SEQUENTIAL=1 (shared runs' throughput numbers are not clean: use
# results/scaling.md for speed). trainer.max_time stops a run cleanly inside a 10-minute
# device command (status "incomplete" in metrics.json, resumable with resume=<run dir>).
# The run records (no checkpoints) are packed into ${OUT:-outputs/gpu}/runs_TAG.tgz after
# every run, so a command cut short still returns what finished.
set -u
tag=$1; max_time=$2; specs=$3
out=${OUT:-outputs/gpu}
mkdir -p "$out"
if [ -d .wheels ]; then
  python3 -m pip install -q --no-index --find-links .wheels hydra-core omegaconf pydantic
fi
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu_$tag.txt"
start=$(date +%s)
python3 -m experiments.data listops --size full --workers 16 --data-dir data \
  --out data/listops-1000 > "$out/data_$tag.log" 2>&1
echo "data ready after $(( $(date +%s) - start )) s"

pack() {
  tar czf "$out/runs_$tag.tgz" --exclude='*.ckpt' runs_gpu "$out"/train_"$tag"_*.log 2>/dev/null
  for f in runs_gpu/*/*/metrics.json; do
    python3 -c "import json; r=json.load(open('$f')); print(r['variant'], r['seed'], r['status'], r['steps'], r.get('val_acc_best'), r.get('test_acc'), round(r.get('train_tokens_per_s') or 0), round(r.get('wall_time_s') or 0))"
  done
}

for spec in $specs; do
  IFS=: read -r variant seed run_time <<< "$spec"
  run_time=${run_time:-$max_time}
  IFS=: read -r _ h m s <<< "$run_time"
  guard=$(( 10#$h * 3600 + 10#$m * 60 + 10#$s + 120 ))  # hard stop: max_time + 2 min
  SPECTRANS_GIT_COMMIT=${SPECTRANS_GIT_COMMIT:-unknown} timeout "$guard" \
    python3 train.py experiment=lra/"$variant"-listops trainer=gpu seed="$seed" \
    paths.data_dir=data paths.output_dir=runs_gpu data.num_workers=3 \
    trainer.max_time="$run_time" trainer.enable_progress_bar=false \
    > "$out/train_${tag}_${variant}_${seed}.log" 2>&1 &
  if [ "${SEQUENTIAL:-0}" = 1 ]; then
    wait
    echo "$variant:$seed done after $(( $(date +%s) - start )) s"
    pack
  fi
done
wait
echo "runs done after $(( $(date +%s) - start )) s"
pack
