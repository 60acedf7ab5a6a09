# Every target does its own set-up: a fresh clone needs nothing but python3.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export MTREC_DATA_DIR ?= $(abspath ../shared/data)
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv test test-slow demo clean

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

venv: $(VENV)/.installed

test: venv
	$(PY) -m pytest -q --durations=20

test-slow: venv
	$(PY) -m pytest -q -m slow

demo: venv
	$(PY) -m mtrec.demo

clean:
	rm -rf $(VENV) build *.egg-info

# Benchmarks (benchmarks/run.py, benchmarks/report.py; results in
# benchmarks/results/*.json, report in benchmarks/RESULTS.md). `bench` runs,
# two runs at a time (BENCH_JOBS), Census-Income group 1 (learning rate
# chosen per model on validation over {1e-3, 2e-3, 5e-3} at seed 1, then
# seeds 2-5 at the chosen rate), group 2 (5 seeds at group 1's choice) and
# the synthetic correlation sweep (3 models x 6 correlations x 3 seeds),
# then writes the report and checks the baselines: 53 min on 2 cores from a
# fresh checkout (per-suite wall times in benchmarks/RESULTS.md). `bench-smoke` is the tiny
# version (1 seed, 1 epoch, 2,000 synthetic rows), under a minute.
BENCH_JOBS ?= 2
.PHONY: bench bench-smoke

bench: venv
	time $(PY) benchmarks/run.py --suite census_g1,census_g2,synthetic --jobs $(BENCH_JOBS) --report
	$(PY) benchmarks/run.py --suite census_g1,census_g2,synthetic --no-run --check-baseline

bench-smoke: venv
	$(PY) benchmarks/run.py --smoke --jobs $(BENCH_JOBS) --out-dir runs/bench-smoke --report --check-baseline

# The CTR->CVR funnel on the derived MovieLens funnel (5 models x 3 seeds),
# and the text-vs-tabular comparisons (MMoE/PLE x 3 input variants x 3 seeds).
# Each run lands in runs/<suite>/; tables in benchmarks/results/<suite>.md.
.PHONY: bench-funnel bench-text
bench-funnel: venv
	time bash benchmarks/run_suite.sh movielens_funnel ctr:auc,cvr:auc,ctcvr:auc,ctr:gauc,ctcvr:gauc 1 2 3

bench-text: venv
	time bash benchmarks/run_suite.sh clothing_reviews recommended:auc,recommended:logloss,rating:rmse,rating:mae 1 2 3
	time bash benchmarks/run_suite.sh movielens_ratings like:auc,like:gauc,rating:rmse,rating:mae 1 2 3
