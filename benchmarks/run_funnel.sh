#!/usr/bin/env bash
# The derived MovieLens funnel benchmark: 5 models x 3 seeds, one run folder
# each under runs/movielens_funnel/, then the table in benchmarks/results/.
# Usage: bash benchmarks/run_funnel.sh [seeds...]   (default: 1 2 3)
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=("${@:-1 2 3}")
export TF_CPP_MIN_LOG_LEVEL=3
start=$(date +%s)
for seed in ${seeds[@]}; do
  for model in shared_bottom mmoe ple esmm aitm; do
    out=runs/movielens_funnel/${model}_seed${seed}
    [ -f "$out/metrics.json" ] && continue
    .venv/bin/mtrec train benchmarks/configs/movielens_funnel/$model.yaml \
        --set training.seed=$seed --output "$out" > "$out.log" 2>&1 || { echo "failed: $out"; tail -5 "$out.log"; }
  done
done
echo "wall time: $(( $(date +%s) - start )) s"
.venv/bin/python benchmarks/funnel_report.py
