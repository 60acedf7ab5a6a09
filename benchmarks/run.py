"""Run a benchmark suite: every config of the suite x every seed, one record.

    python benchmarks/run.py --suite census_g1 --seeds 1,2,3,4,5
    python benchmarks/run.py --suite synthetic --seeds 1,2,3
    python benchmarks/run.py --suite census_g1 --check-baseline   # compare only
    python benchmarks/run.py --smoke --out-dir /tmp/smoke           # tiny, all suites

A suite is a folder of run configs (one YAML per dataset and model, validated
by `mtrec.config.load_config`) plus overrides applied to each (the epoch
budget; for the synthetic sweep, the correlation). For each config and seed
the runner calls `mtrec.runner.train` with `training.seed` overridden, into a
raw run folder under `runs/bench/<suite>/` (git-ignored), and collects the
run's `metrics.json` into one aggregated record,
`benchmarks/results/<suite>.json` (rewritten after every run, so an
interrupted suite keeps what finished; `--resume` skips runs already there).

`--check-baseline` compares a suite's record with
`benchmarks/baselines/<suite>.yaml` (expected means with tolerances) and exits
non-zero naming model, task, metric, value and expected value on a
regression. `benchmarks/report.py` turns the records into
`benchmarks/RESULTS.md` and PNG figures.

Code is not edited between the runs of a record: every run stores its git
commit and dirty flag.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIGS = HERE / "configs"
RESULTS = HERE / "results"
BASELINES = HERE / "baselines"
RUNS = ROOT / "runs" / "bench"

# Models in report order.
MODEL_ORDER = ["SingleTask", "SharedBottom", "OMoE", "MMoE", "CGC", "PLE"]

# suite -> (config folder, overrides for every config, sweep of extra
# overrides: each entry is a list of overrides, one variant per entry).
SUITES = {
    "census_g1": {
        "configs": "census_income",
        "overrides": ["training.epochs=8", "training.early_stopping.patience=2"],
        "description": "UCI Census-Income (KDD), group 1: income > 50K, never married",
    },
    "census_g2": {
        "configs": "census_income_g2",
        "overrides": ["training.epochs=8", "training.early_stopping.patience=2"],
        "description": "UCI Census-Income (KDD), group 2: education >= college, "
                       "never married",
    },
    "synthetic": {
        "configs": "synthetic",
        "overrides": [],
        "sweep": {"correlation": [0.5, 0.9, 1.0]},
        "description": "MMoE paper §3.2 synthetic regression tasks, correlation sweep",
    },
}

# What --smoke changes: 1 epoch, a few thousand rows. Census needs a
# row-limit argument of the `census_income` dataset (`max_rows`); without it
# the census suites are left out of the smoke run (with a message).
SMOKE = {
    "census_g1": ["training.epochs=1", "dataset.args.max_rows=3000"],
    "census_g2": ["training.epochs=1", "dataset.args.max_rows=3000"],
    "synthetic": ["training.epochs=1", "dataset.args.num_samples=2000", "dataset.args.dim=10"],
}
SMOKE_SWEEP = {"synthetic": {"correlation": [0.5, 1.0]}}


def _register_datasets():
    """Make sure every dataset the suites use is registered."""
    import mtrec.data  # noqa: F401
    import mtrec.data.synthetic  # noqa: F401  (registers 'synthetic')


def smoke_supported(suite):
    """Whether a suite can run in smoke size (census: a `max_rows` argument)."""
    if not suite.startswith("census"):
        return True
    _register_datasets()
    from mtrec.data.registry import dataset_arguments

    return "max_rows" in dataset_arguments("census_income")


# --------------------------------------------------------------------------
# Machine and command (for the record and the report)
# --------------------------------------------------------------------------
def machine():
    """The machine, from platform and os.cpu_count."""
    info = {"platform": platform.platform(), "processor": platform.processor() or None,
            "machine": platform.machine(), "cpu_count": os.cpu_count(),
            "python": platform.python_version()}
    try:
        info["cpu_affinity"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return info


def command_line(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    return "python benchmarks/run.py " + " ".join(shlex.quote(a) for a in argv)


# --------------------------------------------------------------------------
# Suites
# --------------------------------------------------------------------------
def suite_configs(suite):
    """Sorted config files of a suite, checked to exist."""
    if suite not in SUITES:
        raise SystemExit(f"Unknown suite '{suite}'; suites: {sorted(SUITES)}.")
    folder = CONFIGS / SUITES[suite]["configs"]
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise SystemExit(f"Suite '{suite}' has no configs in {folder}.")
    return files


def variants(suite, smoke=False):
    """`[(variant_label or None, overrides)]` of a suite's sweep."""
    sweep = (SMOKE_SWEEP.get(suite) if smoke else None) or SUITES[suite].get("sweep")
    if not sweep:
        return [(None, [])]
    (key, values), = sweep.items()
    return [(f"{key}={v}", [f"dataset.args.{key}={v}"]) for v in values]


def plan(suite, seeds, smoke=False, models=None):
    """The runs of a suite: dicts with config path, model, variant, seed,
    overrides."""
    _register_datasets()
    from mtrec.config import load_config

    runs = []
    # Seeds outermost: an interrupted suite has every model at the first seeds.
    configs = []
    for path in suite_configs(suite):
        configs.append((path, load_config(path).model.name))
    configs.sort(key=lambda item: (MODEL_ORDER.index(item[1])
                                   if item[1] in MODEL_ORDER else len(MODEL_ORDER),
                                   item[0].name))
    base = list(SUITES[suite]["overrides"]) + (SMOKE[suite] if smoke else [])
    for seed in seeds:
        for label, extra in variants(suite, smoke):
            for path, model in configs:
                if models and model not in models:
                    continue
                overrides = base + extra + [f"training.seed={seed}"]
                config = load_config(path, overrides)  # validated before anything runs
                runs.append({"config_path": str(path.relative_to(ROOT)), "model": model,
                             "variant": label, "seed": seed, "overrides": overrides,
                             "config": config})
    return runs


def run_key(run):
    return (run["model"], run.get("variant"), run["seed"])


def label_correlations(suite, smoke=False):
    """Pearson correlation of each pair of task labels on the training split,
    per variant (the papers report it)."""
    import numpy as np

    from mtrec.config import load_config
    from mtrec.data.registry import load_dataset

    path = suite_configs(suite)[0]
    out = {}
    for label, extra in variants(suite, smoke):
        base = list(SUITES[suite]["overrides"]) + (SMOKE[suite] if smoke else [])
        config = load_config(path, base + extra)
        data = load_dataset(config.dataset.name, **config.dataset.args)
        tasks = list(data.tasks) if isinstance(data.tasks, dict) else [
            getattr(t, "name", t) for t in data.tasks]
        pairs = {}
        for i, a in enumerate(tasks):
            for b in tasks[i + 1:]:
                pairs[f"{a}~{b}"] = float(np.corrcoef(
                    data.train[a].to_numpy(float), data.train[b].to_numpy(float))[0, 1])
        out[label or "all"] = {"train_rows": len(data.train), "pearson": pairs}
    return out


def run_suite(suite, seeds, out_dir=None, runs_dir=None, smoke=False, resume=False,
              models=None, argv=None, log=print):
    """Run a suite and write its aggregated record; the record (dict)."""
    from mtrec.runner import train

    out_dir = Path(out_dir) if out_dir is not None else RESULTS
    runs_dir = Path(runs_dir) if runs_dir is not None else RUNS
    out_dir.mkdir(parents=True, exist_ok=True)
    record_path = out_dir / f"{suite}.json"
    todo = plan(suite, seeds, smoke=smoke, models=models)
    record = None
    if resume and record_path.is_file():
        record = json.loads(record_path.read_text(encoding="utf-8"))
    if record is None:
        record = {"suite": suite, "description": SUITES[suite]["description"],
                  "smoke": smoke, "created": _now(), "command": command_line(argv),
                  "machine": machine(), "seeds": list(seeds), "runs": []}
    else:
        record["command"] = record.get("command", "") + " ; " + command_line(argv)
        record["seeds"] = sorted(set(record.get("seeds", [])) | set(seeds))
    done = {run_key(r) for r in record["runs"]}
    started = time.perf_counter()
    previous_wall = record.get("wall_seconds", 0.0) if resume else 0.0
    if "label_correlation" not in record:
        record["label_correlation"] = label_correlations(suite, smoke)
        for variant, info in record["label_correlation"].items():
            log(f"[{suite}] label correlation ({variant}): "
                + ", ".join(f"{k} = {v:.4f}" for k, v in info["pearson"].items()))
    for i, run in enumerate(todo, 1):
        if run_key(run) in done:
            log(f"[{suite}] {i}/{len(todo)} {run['model']} {run['variant'] or ''} "
                f"seed {run['seed']}: already in the record, skipped")
            continue
        name = Path(run["config_path"]).stem
        folder = runs_dir / suite / name
        if run["variant"]:
            folder = folder / run["variant"].replace("=", "")
        folder = folder / f"seed{run['seed']}"
        log(f"[{suite}] {i}/{len(todo)} {run['model']} {run['variant'] or ''} "
            f"seed {run['seed']} -> {folder}")
        t0 = time.perf_counter()
        result = train(run["config"], output_dir=folder, verbose=0, log=None)
        wall = time.perf_counter() - t0
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        record["runs"].append(_run_entry(run, metrics, wall, folder))
        test = result.record["metrics"]["test"]
        log(f"    {metrics['parameters']:,} params, {metrics['epochs_run']} epochs "
            f"(best {metrics['best_epoch']}), {wall:.1f} s; test "
            + ", ".join(f"{t}: " + _headline(m) for t, m in test.items()))
        record["wall_seconds"] = round(previous_wall + time.perf_counter() - started, 1)
        record["finished"] = _now()
        _write_json(record_path, record)
    record["wall_seconds"] = round(previous_wall + time.perf_counter() - started, 1)
    record["finished"] = _now()
    _write_json(record_path, record)
    log(f"[{suite}] wrote {record_path} ({len(record['runs'])} runs, "
        f"{record['wall_seconds']:.0f} s)")
    return record


def _run_entry(run, metrics, wall, folder):
    """What the aggregated record keeps of one run's metrics.json."""
    history = [{k: v for k, v in epoch.items()
                if k == "epoch" or "loss" in k or k.startswith("val_")}
               for epoch in metrics.get("history", [])]
    return {
        "model": run["model"], "variant": run["variant"], "seed": run["seed"],
        "config_path": run["config_path"], "overrides": run["overrides"],
        "run_dir": _relative(folder), "git": metrics.get("git"),
        "versions": metrics.get("versions"), "config": metrics.get("config"),
        "dataset": metrics.get("dataset"), "parameters": metrics.get("parameters"),
        "epochs_run": metrics.get("epochs_run"), "best_epoch": metrics.get("best_epoch"),
        "stopped_early": metrics.get("stopped_early"),
        "train_seconds": metrics.get("train_seconds"), "wall_seconds": round(wall, 2),
        "metrics": metrics.get("metrics"), "history": history,
    }


def _relative(path):
    """A path relative to the repository root when it lies inside it."""
    try:
        return Path(path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def _headline(m):
    if m.get("auc") is not None:
        return f"AUC {m['auc']:.4f}"
    if m.get("rmse") is not None:
        return f"MSE {m['rmse'] ** 2:.4f}"
    return "?"


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _write_json(path, data):
    tmp = Path(str(path) + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_default), encoding="utf-8")
    tmp.replace(path)


def _default(value):
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def merge_records(suite, paths, out_dir=None, log=print):
    """Merge records of one suite run in parallel processes (e.g. different
    seeds) into `<out_dir>/<suite>.json`; a (model, variant, seed) present
    twice keeps its first run. The merged wall time is the span from the
    earliest start to the latest finish."""
    out_dir = Path(out_dir) if out_dir is not None else RESULTS
    records = [json.loads(Path(p).read_text(encoding="utf-8")) for p in paths]
    if not records:
        raise SystemExit("--merge needs at least one record.")
    for path, record in zip(paths, records):
        if record.get("suite") != suite:
            raise SystemExit(f"{path} is a record of suite {record.get('suite')!r}, "
                             f"not {suite!r}.")
    merged = dict(records[0])
    merged["runs"], seen = [], set()
    for record in records:
        for entry in record["runs"]:
            if run_key(entry) not in seen:
                seen.add(run_key(entry))
                merged["runs"].append({**entry, "run_dir": _relative(entry["run_dir"])})
    merged["runs"].sort(key=lambda r: (r["seed"], str(r.get("variant")),
                                       MODEL_ORDER.index(r["model"])
                                       if r["model"] in MODEL_ORDER else 99))
    if len(records) > 1:
        merged["command"] = " & ".join(r.get("command", "?") for r in records) + \
            " (parallel processes, merged with --merge)"
    merged["seeds"] = sorted({r["seed"] for r in merged["runs"]})
    starts = [datetime.datetime.fromisoformat(r["created"]) for r in records]
    ends = [datetime.datetime.fromisoformat(r["finished"]) for r in records
            if r.get("finished")]
    merged["created"] = min(starts).isoformat(timespec="seconds")
    if ends:
        merged["finished"] = max(ends).isoformat(timespec="seconds")
        merged["wall_seconds"] = round((max(ends) - min(starts)).total_seconds(), 1)
    if len(records) > 1:
        merged["parallel_processes"] = len(records)
        merged["process_wall_seconds"] = [r.get("wall_seconds") for r in records]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{suite}.json"
    _write_json(path, merged)
    log(f"[{suite}] merged {len(merged['runs'])} runs from {len(records)} records "
        f"into {path}")
    return merged


# --------------------------------------------------------------------------
# Aggregation and baselines
# --------------------------------------------------------------------------
def metric_value(task_metrics, metric):
    """A metric of one task's test row; `mse` is rmse squared."""
    if metric == "mse":
        rmse = task_metrics.get("rmse")
        return None if rmse is None else rmse ** 2
    return task_metrics.get(metric)


def aggregate(record, split="test"):
    """`{(model, variant): {"n", "parameters", "tasks": {task: {metric:
    (mean, std, min, max, n)}}}}` over seeds."""
    import numpy as np

    groups = {}
    for run in record["runs"]:
        groups.setdefault((run["model"], run.get("variant")), []).append(run)
    out = {}
    for key, runs in groups.items():
        tasks = {}
        for task in runs[0]["metrics"][split]:
            stats = {}
            for metric in ("auc", "logloss", "mse", "rmse"):
                values = [metric_value(r["metrics"][split][task], metric) for r in runs]
                values = [v for v in values if v is not None and math.isfinite(v)]
                if values:
                    a = np.asarray(values, float)
                    stats[metric] = {"mean": float(a.mean()),
                                     "std": float(a.std(ddof=1)) if len(a) > 1 else 0.0,
                                     "min": float(a.min()), "max": float(a.max()),
                                     "n": len(a)}
            tasks[task] = stats
        out[key] = {"n": len(runs), "parameters": runs[0]["parameters"],
                    "epochs": [r["epochs_run"] for r in runs],
                    "train_seconds": [r["train_seconds"] for r in runs],
                    "tasks": tasks}
    return out


def check_baseline(record, baseline, log=print):
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
    stats = aggregate(record, split)
    for name, tasks in (baseline.get("expected") or {}).items():
        model, _, variant = str(name).partition("@")
        entry = stats.get((model, variant or None))
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
                    worse = (value < mean) if metric == "auc" else (value > mean)
                    problems.append(
                        f"{name} / {task} / {split} {metric}: {value:.4f} "
                        f"(mean of {got['n']} seeds), expected {mean:.4f} ± {tol:.4f}"
                        f"{' (regression)' if worse else ' (better than expected)'}")
    return problems


def check_suite(suite, out_dir=None, baseline_dir=None, log=print):
    """0 when the suite's record matches its baseline, else 1 (messages
    logged)."""
    out_dir = Path(out_dir) if out_dir is not None else RESULTS
    baseline_dir = Path(baseline_dir) if baseline_dir is not None else BASELINES
    record_path, baseline_path = out_dir / f"{suite}.json", baseline_dir / f"{suite}.yaml"
    if not record_path.is_file():
        log(f"baseline check {suite}: no record {record_path}")
        return 1
    if not baseline_path.is_file():
        log(f"baseline check {suite}: no baseline {baseline_path}")
        return 1
    record = json.loads(record_path.read_text(encoding="utf-8"))
    baseline = yaml.safe_load(baseline_path.read_text(encoding="utf-8"))
    problems = check_baseline(record, baseline)
    for problem in problems:
        log(f"BASELINE FAIL {suite}: {problem}")
    if not problems:
        log(f"baseline check {suite}: OK ({baseline_path.name})")
    return 1 if problems else 0


def write_baseline(suite, out_dir=None, baseline_dir=None, floor=None, relative=0.1,
                   log=print):
    """Write `baselines/<suite>.yaml` from a suite's record: each model's
    (and variant's) mean per task, tolerance max(3 x std over seeds, floor)
    (for losses also at least `relative` x the mean).
    Run once after a reviewed benchmark; later runs are checked against it."""
    out_dir = Path(out_dir) if out_dir is not None else RESULTS
    baseline_dir = Path(baseline_dir) if baseline_dir is not None else BASELINES
    record = json.loads((out_dir / f"{suite}.json").read_text(encoding="utf-8"))
    expected = {}
    for (model, variant), entry in sorted(aggregate(record).items(),
                                          key=lambda kv: (str(kv[0][1]), kv[0][0])):
        name = model if variant is None else f"{model}@{variant}"
        tasks = {}
        for task, stats in entry["tasks"].items():
            metric = "auc" if "auc" in stats else "mse"
            if metric not in stats:
                continue
            if metric == "auc":
                low = 0.005 if floor is None else floor
            else:  # losses: a floor relative to the mean
                low = max(floor or 0.0, relative * stats[metric]["mean"])
            tasks[task] = {metric: {"mean": round(stats[metric]["mean"], 4),
                                    "tol": round(max(3 * stats[metric]["std"], low), 4)}}
        expected[name] = tasks
    seeds = sorted({r["seed"] for r in record["runs"]})
    baseline = {"suite": suite, "split": "test",
                "note": f"means over seeds {seeds} of {record.get('command')}; "
                        f"tol = max(3 x std over seeds, floor; losses "
                        f"{relative:g} x mean)",
                "expected": expected}
    baseline_dir.mkdir(parents=True, exist_ok=True)
    path = baseline_dir / f"{suite}.yaml"
    path.write_text(yaml.safe_dump(baseline, sort_keys=False, default_flow_style=None,
                                   width=100), encoding="utf-8")
    log(f"wrote {path}")
    return path


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", action="append",
                        help=f"suite(s) to run: {', '.join(SUITES)} (repeatable or "
                             f"comma-separated); default all with --smoke")
    parser.add_argument("--seeds", default="1,2,3,4,5",
                        help="comma-separated seeds (default 1,2,3,4,5)")
    parser.add_argument("--models", default=None,
                        help="comma-separated model class names to run (default all)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny version: 1 seed, 1 epoch, a few thousand rows")
    parser.add_argument("--out-dir", default=None,
                        help="where the aggregated records go (default "
                             "benchmarks/results, or OUT/results with --smoke)")
    parser.add_argument("--runs-dir", default=None,
                        help="raw run folders (default runs/bench)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs already in the record, run the rest")
    parser.add_argument("--check-baseline", action="store_true",
                        help="compare the record(s) with benchmarks/baselines/"
                             "<suite>.yaml; non-zero exit on a regression")
    parser.add_argument("--baseline-dir", default=None)
    parser.add_argument("--no-run", action="store_true",
                        help="run nothing; only report / write or check baselines "
                             "from existing records")
    parser.add_argument("--write-baseline", action="store_true",
                        help="write baselines/<suite>.yaml from the record(s)")
    parser.add_argument("--baseline-rel-tol", type=float, default=0.1,
                        help="with --write-baseline: least tolerance of a loss, as "
                             "a fraction of its mean (default 0.1)")
    parser.add_argument("--merge", nargs="+", metavar="RECORD", default=None,
                        help="merge records of --suite written by parallel processes "
                             "into the suite's record (runs nothing)")
    parser.add_argument("--report", action="store_true",
                        help="write RESULTS.md and figures afterwards")
    args = parser.parse_args(argv)

    suites = [s for item in (args.suite or []) for s in item.split(",") if s]
    if not suites:
        suites = ["synthetic", "census_g1"] if args.smoke else list(SUITES)
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    if args.smoke:
        seeds = seeds[:1]
    models = [m for m in (args.models or "").split(",") if m] or None
    out_dir = Path(args.out_dir) if args.out_dir else None
    runs_dir = Path(args.runs_dir) if args.runs_dir else None
    if args.smoke and out_dir is not None and runs_dir is None:
        runs_dir = out_dir / "runs"

    status = 0
    if args.merge:
        if len(suites) != 1:
            raise SystemExit("--merge takes exactly one --suite.")
        merge_records(suites[0], args.merge, out_dir=out_dir)
        args.no_run = True
    if args.smoke:
        for suite in [s for s in suites if not smoke_supported(s)]:
            print(f"[{suite}] left out of the smoke run: the census_income dataset "
                  f"takes no max_rows argument to subsample with.")
            suites.remove(suite)
    if not args.no_run:
        for suite in suites:
            run_suite(suite, seeds, out_dir=out_dir, runs_dir=runs_dir,
                      smoke=args.smoke, resume=args.resume, models=models, argv=argv)
    if args.report:
        sys.path.insert(0, str(HERE))
        import report

        report.main(["--results-dir", str(out_dir or RESULTS)]
                    + (["--out", str(out_dir / "RESULTS.md"),
                        "--figures-dir", str(out_dir / "figures")] if out_dir else []))
    baseline_dir = args.baseline_dir
    if baseline_dir is None and args.smoke:
        baseline_dir = BASELINES / "smoke"
    if args.write_baseline:
        for suite in suites:
            write_baseline(suite, out_dir=out_dir, baseline_dir=baseline_dir,
                           relative=args.baseline_rel_tol)
    if args.check_baseline:
        for suite in suites:
            status |= check_suite(suite, out_dir=out_dir, baseline_dir=baseline_dir)
    return status


if __name__ == "__main__":
    sys.exit(main())
