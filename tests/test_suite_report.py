"""benchmarks/suite_report.py aggregates run records into mean ± std."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_report():
    spec = importlib.util.spec_from_file_location("suite_report",
                                                  ROOT / "benchmarks" / "suite_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_run(root, name, seed, auc):
    folder = root / "demo_suite" / f"{name}_seed{seed}"
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({
        "seed": seed, "parameters": 1234, "epochs_run": 2, "train_seconds": 1.5,
        "model_class": "MMoE", "metrics": {"test": {"ctr": {"auc": auc}}}}))


def test_mean_and_sample_std_per_config(tmp_path, monkeypatch):
    report = load_report()
    for seed, auc in ((1, 0.80), (2, 0.82), (3, 0.84)):
        write_run(tmp_path / "runs", "mmoe", seed, auc)
    write_run(tmp_path / "runs", "esmm", 1, 0.9)
    table = report.aggregate("demo_suite", [("ctr", "auc")], runs_root=tmp_path / "runs",
                             out=tmp_path / "out")
    assert "| mmoe | MMoE | 3 | 1,234 | 0.8200 ± 0.0200 |" in table
    assert "| esmm | MMoE | 1 | 1,234 | 0.9000 ± 0.0000 |" in table
    record = json.loads((tmp_path / "out" / "demo_suite.json").read_text())
    assert [r["seed"] for r in record["runs"]["mmoe"]] == [1, 2, 3]


def test_no_runs_is_an_error(tmp_path):
    with pytest.raises(SystemExit, match="No runs"):
        load_report().aggregate("nothing", [("ctr", "auc")], runs_root=tmp_path,
                                out=tmp_path / "out")
