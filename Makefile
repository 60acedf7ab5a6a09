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
# benchmarks/results/*.json, report in benchmarks/RESULTS.md). `bench` runs
# Census-Income groups 1 and 2 (6 models x 5 seeds) and the synthetic
# correlation sweep (3 models x 3 correlations x 3 seeds): about 3 h on
# 2 shared cores (census ~3 min a run, synthetic ~1 min). `bench-smoke` is
# the tiny version (1 seed, 1 epoch, 2,000 synthetic rows; census too when
# the census_income dataset takes max_rows), under a minute.
BENCH_SEEDS ?= 1,2,3,4,5
.PHONY: bench bench-smoke

bench: venv
	time $(PY) benchmarks/run.py --suite census_g1 --seeds $(BENCH_SEEDS)
	time $(PY) benchmarks/run.py --suite synthetic --seeds 1,2,3
	time $(PY) benchmarks/run.py --suite census_g2 --seeds $(BENCH_SEEDS)
	$(PY) benchmarks/report.py
	$(PY) benchmarks/run.py --suite census_g1,census_g2,synthetic --no-run --check-baseline

bench-smoke: venv
	$(PY) benchmarks/run.py --smoke --out-dir runs/bench-smoke --report --check-baseline

# The CTR->CVR funnel on the derived MovieLens funnel (5 models x 3 seeds),
# and the text-vs-tabular comparisons (MMoE/PLE x 3 input variants x 3 seeds).
# Each run lands in runs/<suite>/; tables in benchmarks/results/<suite>.md.
.PHONY: bench-funnel bench-text
bench-funnel: venv
	time bash benchmarks/run_suite.sh movielens_funnel ctr:auc,cvr:auc,ctcvr:auc,ctr:gauc,ctcvr:gauc 1 2 3

bench-text: venv
	time bash benchmarks/run_suite.sh clothing_reviews recommended:auc,recommended:logloss,rating:rmse,rating:mae 1 2 3
	time bash benchmarks/run_suite.sh movielens_ratings like:auc,like:gauc,rating:rmse,rating:mae 1 2 3
