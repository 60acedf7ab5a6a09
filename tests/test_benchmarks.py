"""Tests of the benchmark runner and report (benchmarks/run.py, report.py).

The smoke suite (`make bench-smoke`: 1 seed, 1 epoch, a few thousand rows)
runs here in-process, into tmp_path.
"""

import copy
import importlib.util
import json
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


sys.path.insert(0, str(BENCH))
run = _load("run")
report = _load("report")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """One smoke run of the synthetic suite, with report and baseline check."""
    out = tmp_path_factory.mktemp("bench-smoke")
    # Two worker processes, as `make bench` runs.
    status = run.main(["--smoke", "--suite", "synthetic", "--out-dir", str(out),
                       "--jobs", "2", "--report", "--check-baseline"])
    return out, status


def test_every_suite_config_validates():
    from mtrec.experiments.config import load_config

    for suite in run.SUITES:
        runs = run.plan(suite, seeds=[1, 2])
        models = {r["model"] for r in runs}
        configs = [load_config(ROOT / r["config_path"], r["overrides"]) for r in runs]
        assert runs and all(c.training.seed == r["seed"] for c, r in zip(configs, runs))
        if suite.startswith("census"):
            assert models == set(run.MODEL_ORDER)
            assert all(c.training.epochs == 10 for c in configs)
        else:
            assert models == {"SharedBottom", "OMoE", "MMoE"}
            # MMoE paper's and PLE paper's correlations
            assert {r["variant"] for r in runs} == {
                f"correlation={p}" for p in (0.2, 0.4, 0.5, 0.75, 0.9, 1.0)}
        # seeds outermost: an interrupted suite has every model at seed 1
        assert [r["seed"] for r in runs] == sorted(r["seed"] for r in runs)
    grid = run.tuning_plan("census_g1", seed=1)
    assert len(grid) == 3 * len(run.MODEL_ORDER)
    assert {r["tune"] for r in grid} == {"training.learning_rate=0.001",
                                         "training.learning_rate=0.002",
                                         "training.learning_rate=0.005"}


TINY = ["training.epochs=1", "dataset.args.num_samples=1500", "dataset.args.dim=8"]


def test_tuning_picks_on_validation_and_reuses_the_tuning_run(tmp_path, monkeypatch):
    """A suite with a grid: every grid value trains at the first seed, the best
    validation score wins per model, the first seed's run is the tuning run,
    the other seeds run at the chosen value; a suite tuned_from it reuses the
    choice; without the source record it stops and says what to run."""
    monkeypatch.setitem(run.SUITES, "tiny_tune", {
        "configs": "synthetic", "overrides": TINY, "seeds": [1, 2],
        "tune": {"training.learning_rate": [0.0001, 0.01]}, "description": "tiny"})
    monkeypatch.setitem(run.SUITES, "tiny_tuned", {
        "configs": "synthetic", "overrides": TINY, "seeds": [1],
        "tuned_from": "tiny_tune", "description": "tiny, tuned from tiny_tune"})
    with pytest.raises(SystemExit, match="run --suite tiny_tune first"):
        run.run_suite("tiny_tuned", out_dir=tmp_path, runs_dir=tmp_path / "runs",
                      models=["SharedBottom"], log=lambda *a: None)
    record = run.run_suite("tiny_tune", out_dir=tmp_path, runs_dir=tmp_path / "runs",
                           models=["SharedBottom"], log=lambda *a: None)
    tuning = record["tuning"]
    assert tuning["parameter"] == "training.learning_rate" and len(tuning["runs"]) == 2
    scores = {r["tune"]: run.validation_score(r) for r in tuning["runs"]}
    best = max(scores, key=scores.get)
    assert tuning["chosen"] == {"SharedBottom": best}
    by_seed = {r["seed"]: r for r in record["runs"]}
    assert sorted(by_seed) == [1, 2]
    assert by_seed[1]["reused_from_tuning"] is True
    assert by_seed[1]["metrics"] == next(r for r in tuning["runs"]
                                         if r["tune"] == best)["metrics"]
    assert best in by_seed[2]["overrides"] and not by_seed[2].get("reused_from_tuning")
    assert (tmp_path / "runs" / "tiny_tune" / "tune").is_dir()
    tuned = run.run_suite("tiny_tuned", out_dir=tmp_path, runs_dir=tmp_path / "runs",
                          models=["SharedBottom"], log=lambda *a: None)
    assert tuned["tuned_from"]["chosen"] == {"SharedBottom": best}
    assert best in tuned["runs"][0]["overrides"]


def test_choose_takes_the_best_mean_validation_auc():
    def entry(model, tune, aucs):
        return {"model": model, "tune": tune,
                "metrics": {"valid": {f"t{i}": {"auc": a} for i, a in enumerate(aucs)}}}
    runs = [entry("MMoE", "lr=1", [0.90, 0.99]), entry("MMoE", "lr=2", [0.92, 0.98]),
            entry("PLE", "lr=1", [0.80, 0.80]), entry("PLE", "lr=2", [0.80, 0.80])]
    # MMoE: 0.945 vs 0.950; PLE: a tie keeps the first grid value
    assert run.choose(runs) == {"MMoE": "lr=2", "PLE": "lr=1"}


def test_smoke_suite_writes_record_report_and_figures(smoke):
    out, status = smoke
    assert status == 0  # the smoke baseline check passed
    record = json.loads((out / "synthetic.json").read_text())
    assert record["smoke"] is True and record["command"].startswith("python benchmarks/run.py")
    assert record["machine"]["cpu_count"] >= 1
    assert set(record["label_correlation"]) == {"correlation=0.5", "correlation=1.0"}
    assert len(record["runs"]) == 6
    for entry in record["runs"]:
        for key in ("git", "versions", "seed", "config", "parameters", "epochs_run",
                    "train_seconds", "metrics", "history"):
            assert key in entry, key
        assert entry["seed"] == 1 and entry["config"]["training"]["seed"] == 1
        assert entry["epochs_run"] == 1
        assert set(entry["metrics"]["valid"]) == set(entry["metrics"]["test"]) == {"y1", "y2"}
        assert entry["history"][0]["loss"] > 0
        assert Path(entry["run_dir"], "metrics.json").is_file()  # raw run kept apart
    text = (out / "RESULTS.md").read_text()
    assert "Census-Income group 1" in text and "**Not run**" in text
    assert "synthetic (smoke)" in text and "label Pearson" in text
    for name in ("synthetic_loss_vs_correlation.png", "synthetic_loss_curves.png"):
        assert (out / "figures" / name).stat().st_size > 1000


def test_check_baseline_fails_on_a_doctored_record(smoke, tmp_path, capsys):
    out, _ = smoke
    record = json.loads((out / "synthetic.json").read_text())
    doctored = copy.deepcopy(record)
    for entry in doctored["runs"]:
        if entry["model"] == "MMoE" and entry["variant"] == "correlation=0.5":
            entry["metrics"]["test"]["y1"]["rmse"] *= 10  # a 100x worse MSE
    (tmp_path / "synthetic.json").write_text(json.dumps(doctored))
    status = run.main(["--smoke", "--suite", "synthetic", "--out-dir", str(tmp_path),
                       "--no-run", "--check-baseline"])
    assert status != 0
    message = capsys.readouterr().out
    assert "BASELINE FAIL synthetic: MMoE@correlation=0.5 / y1 / test mse" in message
    assert "expected" in message and "(regression)" in message
    # the undoctored record passes the same check
    assert run.check_suite("synthetic", out_dir=out,
                           baseline_dir=BENCH / "baselines" / "smoke") == 0


def test_check_baseline_on_auc_names_model_task_value_and_expected():
    record = {"runs": [
        {"model": "MMoE", "variant": None, "seed": s, "parameters": 10,
         "epochs_run": 1, "train_seconds": 1.0,
         "metrics": {"test": {"income": {"auc": auc}, "marital": {"auc": 0.99}}}}
        for s, auc in ((1, 0.90), (2, 0.91))]}
    baseline = {"expected": {"MMoE": {"income": {"auc": {"mean": 0.94, "tol": 0.01}},
                                      "marital": {"auc": {"mean": 0.99, "tol": 0.01}}}}}
    problems = run.check_baseline(record, baseline)
    assert len(problems) == 1
    assert problems[0].startswith("MMoE / income / test auc: 0.9050")
    assert "expected 0.9400 ± 0.0100 (regression)" in problems[0]
    baseline["expected"]["CGC"] = {"income": {"auc": {"mean": 0.9, "tol": 0.1}}}
    assert any(p.startswith("CGC: no runs") for p in run.check_baseline(record, baseline))


def test_committed_baselines_name_known_models_and_tasks():
    for path in sorted((BENCH / "baselines").rglob("*.yaml")):
        baseline = yaml.safe_load(path.read_text())
        assert baseline["suite"] in run.SUITES, path
        for name, tasks in baseline["expected"].items():
            assert name.partition("@")[0] in run.MODEL_ORDER, (path, name)
            for task, metrics in tasks.items():
                for metric, want in metrics.items():
                    assert metric in ("auc", "mse", "logloss", "rmse")
                    assert want["tol"] > 0


def test_report_says_which_suites_were_not_run(tmp_path):
    path = report.write_report(tmp_path / "empty", tmp_path / "R.md", tmp_path / "fig")
    text = path.read_text()
    assert text.count("**Not run**") == 3
    assert "| census_g1 | 0 | — | — | not run |" in text


def test_merge_records_of_parallel_processes(smoke, tmp_path):
    out, _ = smoke
    record = json.loads((out / "synthetic.json").read_text())
    other = copy.deepcopy(record)
    for entry in other["runs"]:
        entry["seed"] = 2
    duplicate = copy.deepcopy(record)  # same keys as `record`: dropped
    paths = []
    for i, r in enumerate((record, other, duplicate)):
        paths.append(tmp_path / f"part{i}.json")
        paths[-1].write_text(json.dumps(r))
    merged = run.merge_records("synthetic", paths, out_dir=tmp_path / "merged")
    assert len(merged["runs"]) == 12 and merged["seeds"] == [1, 2]
    assert merged["parallel_processes"] == 3 and merged["wall_seconds"] >= 0
    assert json.loads((tmp_path / "merged" / "synthetic.json").read_text()) == merged
    with pytest.raises(SystemExit, match="not 'census_g1'"):
        run.merge_records("census_g1", paths[:1], out_dir=tmp_path)
