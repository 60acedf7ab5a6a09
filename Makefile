# Every target does its own set-up: a fresh clone needs nothing but python3.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Dataset copies: $MTREC_DATA_DIR when set, else ../shared/data beside the
# repository when it exists, else the loaders' per-user cache
# (~/.cache/mtrec, downloads md5-checked; see data/README.md).
SHARED_DATA := $(abspath ../shared/data)
ifneq ($(wildcard $(SHARED_DATA)/.),)
export MTREC_DATA_DIR ?= $(SHARED_DATA)
endif
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv test test-slow demo clean

$(VENV)/.installed: setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

venv: $(VENV)/.installed

# Tests run in TEST_WORKERS processes (pytest-xdist; a file's tests stay in
# one process, so its module fixtures are built once), each TensorFlow on one
# thread (tests/conftest.py): most of a test's time is Python tracing on one
# core, so two processes on two cores finish in about half the time of one.
# TEST_WORKERS=0 runs everything in this process.
TEST_WORKERS ?= 2

test: venv
	$(PY) -m pytest -q --durations=20 -n $(TEST_WORKERS) --dist loadfile

test-slow: venv
	$(PY) -m pytest -q -m slow -n $(TEST_WORKERS) --dist loadfile

demo: venv
	$(PY) -m mtrec.demo

clean:
	rm -rf $(VENV) build *.egg-info

# Benchmarks: suites are benchmarks/suites/<suite>.yaml, run by one runner
# (benchmarks/run.py) into one record each (benchmarks/results/<suite>.json),
# reported by benchmarks/report.py into benchmarks/RESULTS.md. `bench` runs,
# two runs at a time (BENCH_JOBS), Census-Income group 1 (learning rate
# chosen per model on validation over {1e-3, 2e-3, 5e-3} at seed 1, then
# seeds 2-5 at the chosen rate), group 2 (5 seeds at group 1's choice) and
# the synthetic correlation sweep (3 models x 6 correlations x 3 seeds),
# then writes the report and checks the baselines: 53 min on 2 cores from a
# fresh checkout (per-suite wall times in benchmarks/RESULTS.md).
# `bench-smoke` runs every suite's smoke section (1 seed, 1-2 epochs, a few
# thousand rows; census with a 2-value tuning grid) and checks the smoke
# baselines (benchmarks/baselines/smoke/): about a minute on 2 idle cores.
BENCH_JOBS ?= 2
BENCH := $(PY) benchmarks/run.py
.PHONY: bench bench-smoke bench-funnel bench-text bench-multimodal bench-scenarios

bench: venv
	time $(BENCH) --suite census_g1,census_g2,synthetic --jobs $(BENCH_JOBS) --report
	$(BENCH) --suite census_g1,census_g2,synthetic --no-run --check-baseline

bench-smoke: venv
	time $(BENCH) --smoke --jobs $(BENCH_JOBS) --out-dir runs/bench-smoke --report --check-baseline

# The CTR->CVR funnel on the derived MovieLens funnel (5 models x 3 seeds),
# and the text-vs-tabular comparisons (MMoE/PLE x 3 input variants x 3 seeds).
bench-funnel: venv
	time $(BENCH) --suite movielens_funnel --jobs $(BENCH_JOBS) --report
	$(BENCH) --suite movielens_funnel --no-run --check-baseline

bench-text: venv
	time $(BENCH) --suite clothing_reviews,movielens_ratings --jobs $(BENCH_JOBS) --report
	$(BENCH) --suite clothing_reviews,movielens_ratings --no-run --check-baseline

# Issue 17: the clothing reviews with a precomputed review vector and the
# MovieLens ratings with precomputed title and tags vectors (MMoE/PLE x
# tabular, text, text + modality dropout, + reconstruction / alignment /
# both auxiliary losses, + reconstruction imputing the text x 3 seeds); every
# run is exported and the test split served through its SavedModel with and
# without the text.
bench-multimodal: venv
	time $(BENCH) --suite clothing_multimodal,movielens_multimodal --jobs $(BENCH_JOBS) --report
	$(BENCH) --suite clothing_multimodal,movielens_multimodal --no-run --check-baseline

# Multi-scenario models (STAR, PEPNet vs SharedBottom, MMoE) on the clothing
# reviews with departments as scenarios (a derived split, not AliExpress).
bench-scenarios: venv
	time $(BENCH) --suite clothing_scenarios --jobs $(BENCH_JOBS) --report
	$(BENCH) --suite clothing_scenarios --no-run --check-baseline

# Side by side with DeepCTR 0.9.4 (TF 2.15) and torch-rechub 0.9.0 (torch CPU)
# on Census-Income group 1: creates their pinned venvs under .venv-peers/
# (benchmarks/peers/requirements-*.txt) when missing, encodes the rows once
# (checksummed, runs/peers/data/), runs 3 models x 3 seeds with the libraries
# interleaved, one job at a time, writes benchmarks/results/peers.json and
# the table into benchmarks/RESULTS.md. PEERS_ARGS=--smoke for a quick check
# (1 seed, 2 epochs, 3,000 rows; record in runs/peers/).
PEERS_ARGS ?=
.PHONY: bench-peers

bench-peers: venv
	time $(PY) benchmarks/peers/run.py $(PEERS_ARGS) --report

# Scaling curves against DeepCTR (issue 12), benchmarks/peers/sweep.py: MMoE
# train examples/s of mtrec and DeepCTR-reseeded vs batch size (8 experts)
# and vs experts (batch 1024), 2 seeds, 4 epochs each without early stopping
# (ex/s from the median epoch after the first), libraries interleaved per
# point; writes benchmarks/results/peers_sweep.json and its RESULTS.md
# section (~40 min on 2 shared cores). PEERS_SWEEP replaces the curves
# (e.g. PEERS_SWEEP="--sweep experts=4,64"); PEERS_SWEEP_ARGS adds options
# (e.g. --smoke, --libraries mtrec,deepctr-reseeded,deepctr).
PEERS_SWEEP ?= --sweep batch_size=256,1024,4096,8192 --sweep experts=4,8,16,32,64 --seeds 1,2
PEERS_SWEEP_ARGS ?=
.PHONY: bench-peers-sweep

bench-peers-sweep: venv
	time $(PY) benchmarks/peers/run.py $(PEERS_SWEEP) $(PEERS_SWEEP_ARGS) --report

# Scale on this host (issue 14), benchmarks/scale.py: Census-Income group 1
# training examples/s through `mtrec train` with 1 process, mirrored and
# --local-workers 2 (same global batch), the 2-worker overhead per step and
# peak RSS per process; peak RSS of from_files streaming over Census x1 and
# x10 as Parquet shards (cached in runs/scale/cache/); infer+adapt seconds
# per million rows. Writes benchmarks/results/scale.json and the Scale
# section of benchmarks/RESULTS.md: 15m40s on 2 shared cores (load ~4).
# SCALE_ARGS=--quick for a smoke run (3m35s; record in runs/scale/scale-quick.json),
# --with-100x for the x100 table (~20 M rows) too.
SCALE_ARGS ?=
.PHONY: bench-scale

bench-scale: venv
	time $(PY) benchmarks/scale.py $(SCALE_ARGS) --report
