"""Benchmark records: `benchmarks/results/<suite>.json`, read, written, aggregated.

One record per suite, written by `benchmarks/run.py` and read by
`benchmarks/report.py` (neither imports the other):

```
{"suite", "description", "smoke", "created", "finished", "command",
 "machine": {...}, "seeds": [...], "jobs", "wall_seconds",
 "label_correlation": {variant: {"train_rows", "pearson": {"a~b": r}}},  # optional
 "tuning": {"parameter", "values", "seed", "criterion", "runs": [entry],
            "chosen": {row: "parameter=value"}},                        # optional
 "tuned_from": {"suite", "parameter", "chosen"},                        # optional
 "runs": [entry],
 "baselines": {"hgb": {"model", "settings", "machine", "command", "versions",
                       "created", "finished", "wall_seconds",
                       "runs": [entry]}}}                               # optional
entry = {"name" (the row: model class or config stem), "model", "variant",
         "seed", "tune", "config_path", "overrides", "run_dir", "git",
         "versions", "config", "dataset", "parameters", "epochs_run",
         "best_epoch", "stopped_early", "train_seconds", "wall_seconds",
         "metrics": {"valid": {task: {metric: value}}, "test": {...}},
         "history": [{"epoch", "loss", ...}]}
```

A run of a suite with `ablations` (`benchmarks/ablations.py`) also has
`metrics["test_served"]` (the test split served through its SavedModel)
and `metrics["test_<ablation>"]` (served with the ablation's columns
blanked), both shaped as `metrics["test"]`, and `ablations` ({name:
{"blank", "blanked"}}), `saved_model` (its path) and `serving_seconds`.

A baseline entry (`benchmarks/gbdt_baseline.py`: one tree ensemble per
task, no network) has the same keys, with `"baseline": "hgb"`,
`parameters` / `epochs_run` / `best_epoch` None, `history` empty, and
`iterations` ({task: {"chosen", "grown", "max_iter", "valid_score"}}),
`task_seconds`, `encode_seconds` and `features` besides. Baseline runs stay
out of `runs` (so a record's deep-model counts and times do not move when a
baseline is added); `baseline_runs` lists them.

Baselines (`benchmarks/baselines/*.yaml`) hold expected means with
tolerances per row, task and metric; `check_baseline` compares.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"

# Model classes in report order; rows that are not model classes (config
# stems) follow, sorted.
MODEL_ORDER = ["SingleTask", "SharedBottom", "OMoE", "MMoE", "CGC", "PLE", "CrossStitch",
               "DSelectK", "STAR", "PEPNet",
               "SharedPrivate"]
# Baseline kinds a suite file may name (`baselines: [hgb]`) and their row
# names; rows of a kind with several input sets add ", <set>)" to the name.
BASELINE_ROWS = {"hgb": "HGB (per task)"}


def is_baseline_row(name):
    """Whether a row name is a baseline's (e.g. "HGB (per task, text)")."""
    return any(str(name).startswith(row[:-1]) for row in BASELINE_ROWS.values())


def row_rank(name):
    """Sort key of a row name: models in MODEL_ORDER, then the rest by name,
    baselines last."""
    if is_baseline_row(name):
        return (len(MODEL_ORDER) + 1, name)
    return (MODEL_ORDER.index(name) if name in MODEL_ORDER else len(MODEL_ORDER), name)


def baseline_runs(record, kind=None):
    """The entries of a record's baselines (of `kind`, else every kind)."""
    return [entry for name, section in (record.get("baselines") or {}).items()
            if kind is None or name == kind for entry in section.get("runs", [])]


def row_name(entry):
    """The row a run entry belongs to."""
    return entry["name"]


def run_key(entry):
    """What identifies a run within a record: (row, variant, seed)."""
    return (row_name(entry), entry.get("variant"), entry["seed"])


def sort_runs(entries):
    """Entries by seed, variant, row, tuning value (the record's order)."""
    return sorted(entries, key=lambda r: (r["seed"], str(r.get("variant")),
                                          row_rank(row_name(r)), str(r.get("tune"))))


def read_record(path):
    """A record (dict) from its JSON file."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def write_record(path, record):
    """Write a record whole: to a temporary sibling, then renamed into place
    (an interrupted write never leaves half a record)."""
    path = Path(path)
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=_default), encoding="utf-8")
    tmp.replace(path)


def _default(value):
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def load_records(results_dir, suites):
    """`{suite: record}` of the suites that have a record in `results_dir`."""
    records = {}
    for suite in suites:
        path = Path(results_dir) / f"{suite}.json"
        if path.is_file():
            records[suite] = read_record(path)
    return records


def metric_value(task_metrics, metric):
    """A metric of one task's row; `mse` is rmse squared."""
    if metric == "mse":
        rmse = task_metrics.get("rmse")
        return None if rmse is None else rmse ** 2
    return task_metrics.get(metric)


def _numeric_metrics(task_metrics):
    names = [k for k, v in task_metrics.items()
             if isinstance(v, (int, float)) and not isinstance(v, bool)]
    return names + (["mse"] if task_metrics.get("rmse") is not None else [])


def aggregate(record, split="test", baselines=False):
    """Statistics over seeds per row and variant (`baselines`: the
    baseline rows too).

    Returns:
        `{(row, variant): {"n", "model", "parameters", "epochs",
        "train_seconds", "tasks": {task: {metric: {"mean", "std" (sample),
        "min", "max", "n"}}}}}`, every numeric metric of the split included
        (`mse` from `rmse`).
    """
    import numpy as np

    groups = {}
    for run in record["runs"] + (baseline_runs(record) if baselines else []):
        groups.setdefault((row_name(run), run.get("variant")), []).append(run)
    out = {}
    for key, runs in groups.items():
        tasks = {}
        for task, first in runs[0]["metrics"][split].items():
            stats = {}
            for metric in _numeric_metrics(first):
                values = [metric_value(r["metrics"][split][task], metric) for r in runs]
                values = [v for v in values if v is not None and math.isfinite(v)]
                if values:
                    a = np.asarray(values, float)
                    stats[metric] = {"mean": float(a.mean()),
                                     "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
                                     "min": float(a.min()), "max": float(a.max()),
                                     "n": len(a)}
            tasks[task] = stats
        out[key] = {"n": len(runs), "model": runs[0]["model"],
                    "parameters": runs[0]["parameters"],
                    "epochs": [r["epochs_run"] for r in runs],
                    "train_seconds": [r["train_seconds"] for r in runs],
                    "tasks": tasks}
    return out


def rows_in(stats):
    """Row names of `aggregate`'s output in report order."""
    return sorted({row for row, _ in stats}, key=row_rank)


def validation_score(entry):
    """What tuning maximises: the mean over tasks of the validation AUC
    (minus the MSE for regression tasks); -inf without validation metrics."""
    scores = []
    for metrics in (entry.get("metrics") or {}).get("valid", {}).values():
        if metrics.get("auc") is not None:
            scores.append(metrics["auc"])
        elif metric_value(metrics, "mse") is not None:
            scores.append(-metric_value(metrics, "mse"))
    return float(sum(scores) / len(scores)) if scores else float("-inf")


# --------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------
LOWER_IS_BETTER = ("mse", "rmse", "mae", "logloss", "ece")


def read_baseline(path):
    """A baseline (dict) from its YAML file."""
    return yaml.safe_load(Path(path).read_text(encoding="utf-8"))


def check_baseline(record, baseline):
    """Problems (strings) where the record's means fall outside the baseline.

    A baseline YAML:

        suite: census_g1
        split: test
        expected:
          MMoE: {income: {auc: {mean: 0.94, tol: 0.01}}, ...}
          # variants: "MMoE@correlation=0.5": {y1: {mse: {mean: .., tol: ..}}}
    """
    problems = []
    split = baseline.get("split", "test")
    stats = aggregate(record, split, baselines=True)
    for name, tasks in (baseline.get("expected") or {}).items():
        row, _, variant = str(name).partition("@")
        entry = stats.get((row, variant or None))
        if entry is None:
            problems.append(f"{name}: no runs in the record (expected by the baseline)")
            continue
        for task, metrics in tasks.items():
            for metric, want in metrics.items():
                got = entry["tasks"].get(task, {}).get(metric)
                if got is None:
                    problems.append(f"{name} / {task} / {metric}: missing from the record")
                    continue
                mean, tol = float(want["mean"]), float(want["tol"])
                value = got["mean"]
                if abs(value - mean) > tol:
                    worse = (value > mean) if metric in LOWER_IS_BETTER else (value < mean)
                    problems.append(
                        f"{name} / {task} / {split} {metric}: {value:.4f} "
                        f"(mean of {got['n']} seeds), expected {mean:.4f} ± {tol:.4f}"
                        f"{' (regression)' if worse else ' (better than expected)'}")
    return problems


def baseline_from_record(record, note, metrics=None, floor=0.005, relative=0.1):
    """A baseline (dict) from a record: each row's (and variant's) mean per
    task, tolerance max(3 x std over seeds, floor) for scores and max(3 x
    std, `relative` x the mean) for losses.

    `metrics` (`{task: [metric]}`) picks what is checked; default the AUC
    of binary tasks, else the MSE."""
    expected = {}
    for (row, variant), entry in sorted(aggregate(record, baselines=True).items(),
                                        key=lambda kv: (str(kv[0][1]), row_rank(kv[0][0]))):
        name = row if variant is None else f"{row}@{variant}"
        tasks = {}
        for task, stats in entry["tasks"].items():
            wanted = (metrics or {}).get(task) or (["auc"] if "auc" in stats else ["mse"])
            checks = {}
            for metric in wanted:
                if metric not in stats:
                    continue
                low = (relative * stats[metric]["mean"] if metric in LOWER_IS_BETTER
                       else floor)
                checks[metric] = {"mean": round(stats[metric]["mean"], 4),
                                  "tol": round(max(3 * stats[metric]["std"], low), 4)}
            if checks:
                tasks[task] = checks
        expected[name] = tasks
    return {"suite": record["suite"], "split": "test", "note": note, "expected": expected}


def write_baseline(path, baseline):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(baseline, sort_keys=False, default_flow_style=None,
                                   width=100), encoding="utf-8")
    return path


def headline(metrics):
    """One task's test metrics in a progress line: AUC, else MSE."""
    if metrics.get("auc") is not None:
        return f"AUC {metrics['auc']:.4f}"
    if metrics.get("rmse") is not None:
        return f"MSE {metrics['rmse'] ** 2:.4f}"
    return "?"
