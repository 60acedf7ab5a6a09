"""The run record: git state, versions, JSON-safe values."""

import json
import subprocess
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest

import mtrec
from mtrec.experiments import record


def fake_git(monkeypatch, status, commit="abc123\n", returncode=0):
    calls = []

    def run(args, **kwargs):
        calls.append((args, kwargs["cwd"]))
        out = commit if "rev-parse" in args else status
        return subprocess.CompletedProcess(args, returncode, stdout=out, stderr="")

    monkeypatch.setattr(record.subprocess, "run", run)
    return calls


BENCHMARK_OUTPUTS = ("benchmarks/results/", "benchmarks/RESULTS.md", "benchmarks/figures/")


@pytest.mark.parametrize("status, ignore, dirty", [
    ("", (), False),
    (" M benchmarks/results/census_g1.json\n M benchmarks/RESULTS.md\n"
     " M benchmarks/figures/census_g1_auc.png\n", BENCHMARK_OUTPUTS, False),
    (" M benchmarks/results/census_g1.json\n M mtrec/runner.py\n", BENCHMARK_OUTPUTS, True),
    # without ignored paths, any changed tracked file makes the tree dirty
    (" M benchmarks/results/census_g1.json\n", (), True),
])
def test_git_state_ignores_only_the_given_paths(monkeypatch, status, ignore, dirty):
    calls = fake_git(monkeypatch, status)
    state = record.git_state(ignore=ignore)
    assert state["commit"] == "abc123" and state["dirty"] is dirty
    assert len(state["changed"]) == status.count("\n")
    # the checkout mtrec is imported from
    assert calls[0][1] == Path(mtrec.__file__).resolve().parents[1]


def test_git_state_outside_a_repository(monkeypatch, tmp_path):
    fake_git(monkeypatch, "", commit="", returncode=128)
    assert record.git_state(root=tmp_path) == {"commit": None, "dirty": None,
                                               "changed": None}


def test_git_state_keeps_at_most_20_changed_paths(monkeypatch):
    fake_git(monkeypatch, "".join(f" M f{i}.py\n" for i in range(30)))
    state = record.git_state()
    assert state["dirty"] is True and state["changed"] == [f"f{i}.py" for i in range(20)]


def test_git_state_of_this_checkout():
    state = record.git_state()
    assert state["commit"] is None or len(state["commit"]) == 40


def test_versions():
    versions = record.versions()
    assert versions["mtrec"] == mtrec.__version__
    assert versions["keras"] == keras.__version__
    assert versions["numpy"] == np.__version__ and versions["pandas"] == pd.__version__


def test_plain_and_jsonable():
    assert record.plain(np.float32(0.5)) == 0.5 and type(record.plain(np.int64(3))) is int
    for missing in (None, pd.NA, float("nan"), np.float64("inf"), np.nan):
        assert record.plain(missing) is None
    value = {1: (np.arange(2), {"a": np.float64("nan")}), "b": [np.bool_(True), "x"]}
    out = record.jsonable(value)
    assert out == {"1": [[0, 1], {"a": None}], "b": [True, "x"]}
    json.dumps(out, allow_nan=False)  # strict JSON


def test_report_and_history_records():
    report = pd.DataFrame({"kind": ["binary", "regression"], "auc": [0.75, np.nan],
                           "count": np.array([3, 4], dtype="int64")},
                          index=pd.Index(["click", "spend"], name="task"))
    assert record.report_to_dict(report) == {
        "click": {"kind": "binary", "auc": 0.75, "count": 3},
        "spend": {"kind": "regression", "auc": None, "count": 4}}
    history = {"loss": [1.0, np.float32(0.5)], "val_loss": [2.0]}
    assert record.history_records(history) == [
        {"epoch": 1, "loss": 1.0, "val_loss": 2.0}, {"epoch": 2, "loss": 0.5}]
    assert record.history_records({}) == []
