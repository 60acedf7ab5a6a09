#!/usr/bin/env bash
# Train every config of a suite (benchmarks/configs/<suite>/*.yaml) for each
# seed into runs/<suite>/<config>_seed<N>/ (skipping finished runs), then
# aggregate with benchmarks/suite_report.py.
# Usage: bash benchmarks/run_suite.sh SUITE COLUMNS [SEEDS...]
#   e.g. bash benchmarks/run_suite.sh clothing_reviews recommended:auc,rating:rmse 1 2 3
set -euo pipefail
cd "$(dirname "$0")/.."
suite=$1; columns=$2; shift 2
seeds=("${@:-1}")
export TF_CPP_MIN_LOG_LEVEL=3
start=$(date +%s)
mkdir -p "runs/$suite"
for seed in "${seeds[@]}"; do
  for config in benchmarks/configs/$suite/*.yaml; do
    out=runs/$suite/$(basename "$config" .yaml)_seed$seed
    [ -f "$out/metrics.json" ] && continue
    .venv/bin/mtrec train "$config" --set training.seed="$seed" --output "$out" \
        > "$out.log" 2>&1 || { echo "failed: $out"; tail -5 "$out.log"; }
  done
done
echo "suite $suite: wall time $(( $(date +%s) - start )) s"
.venv/bin/python benchmarks/suite_report.py --suite "$suite" --columns "$columns"
