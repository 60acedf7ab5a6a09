"""Run a benchmark suite: every config of the suite x every seed, one record.

    python benchmarks/run.py --suite census_g1 --jobs 2          # tune, then 5 seeds
    python benchmarks/run.py --suite synthetic --seeds 1,2,3
    python benchmarks/run.py --suite census_g1 --no-run --check-baseline   # compare only
    python benchmarks/run.py --smoke --out-dir /tmp/smoke           # tiny, all suites

A suite is a folder of run configs (one YAML per dataset and model, validated
by `mtrec.experiments.config.load_config`) plus overrides applied to each (the epoch
budget; for the synthetic sweep, the correlation). For each config and seed
the runner calls `mtrec.experiments.runner.train` with `training.seed` overridden, into a
raw run folder under `runs/bench/<suite>/` (git-ignored), and collects the
run's `metrics.json` into one aggregated record,
`benchmarks/results/<suite>.json` (rewritten after every run, so an
interrupted suite keeps what finished; `--resume` skips runs already there).

Hyperparameters are chosen on the validation split only: a suite with a
`tune` grid first trains every model at every grid value at the first seed
and keeps, per model, the value with the best mean validation AUC (the
record's `tuning` section lists every grid run); the first seed's result is
that tuning run, the other seeds run at the chosen value. A suite with
`tuned_from` reuses another suite's choice. The test split is only read
after training, for the record.

`--jobs N` trains N runs side by side in spawned worker processes (each
with its share of the cores and its own dataset cache); these models are
small enough that one run does not keep two cores busy.

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
        "overrides": ["training.epochs=10", "training.early_stopping.patience=2"],
        "seeds": [1, 2, 3, 4, 5],
        # Chosen per model on the validation split at the first seed; the
        # chosen value's run is that seed's run.
        "tune": {"training.learning_rate": [0.001, 0.002, 0.005]},
        "description": "UCI Census-Income (KDD), group 1: income > 50K, never married",
    },
    "census_g2": {
        "configs": "census_income_g2",
        "overrides": ["training.epochs=10", "training.early_stopping.patience=2"],
        "seeds": [1, 2, 3, 4, 5],
        # Same features, same models: reuse group 1's validation choice.
        "tuned_from": "census_g1",
        "description": "UCI Census-Income (KDD), group 2: education >= college, "
                       "never married",
    },
    "synthetic": {
        "configs": "synthetic",
        "overrides": [],
        "seeds": [1, 2, 3],
        # MMoE paper §5 (0.5, 0.9, 1.0) and PLE paper §5.2 (0.2, 0.4, 0.75).
        "sweep": {"correlation": [0.2, 0.4, 0.5, 0.75, 0.9, 1.0]},
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
SMOKE_TUNE = {"census_g1": {"training.learning_rate": [0.002, 0.005]}}


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


def _base_overrides(suite, smoke):
    """Overrides every run of a suite gets (epoch budget; smoke sizes)."""
    return list(SUITES[suite]["overrides"]) + (SMOKE[suite] if smoke else [])


def _configs(suite):
    """`[(path, model name)]` of a suite in report order."""
    from mtrec.experiments.config import load_config

    configs = [(path, load_config(path).model.name) for path in suite_configs(suite)]
    configs.sort(key=lambda item: (MODEL_ORDER.index(item[1])
                                   if item[1] in MODEL_ORDER else len(MODEL_ORDER),
                                   item[0].name))
    return configs


def _planned(suite, path, model, label, overrides, seed, tune=None):
    from mtrec.experiments.config import load_config

    load_config(path, overrides)  # validated before anything runs
    return {"config_path": str(path.relative_to(ROOT)), "model": model,
            "variant": label, "seed": seed, "overrides": overrides, "tune": tune}


def plan(suite, seeds, smoke=False, models=None, chosen=None):
    """The runs of a suite: dicts with config path, model, variant, seed,
    overrides. `chosen` maps a model to extra overrides (the tuned values)."""
    _register_datasets()
    runs = []
    base = _base_overrides(suite, smoke)
    configs = _configs(suite)
    # Seeds outermost: an interrupted suite has every model at the first seeds.
    for seed in seeds:
        for label, extra in variants(suite, smoke):
            for path, model in configs:
                if models and model not in models:
                    continue
                overrides = (base + extra + list((chosen or {}).get(model, []))
                             + [f"training.seed={seed}"])
                runs.append(_planned(suite, path, model, label, overrides, seed))
    return runs


def tuning_grid(suite, smoke=False):
    """`(parameter, values)` a suite tunes on validation, or None."""
    grid = (SMOKE_TUNE.get(suite) if smoke else None) or SUITES[suite].get("tune")
    if not grid:
        return None
    (parameter, values), = grid.items()
    return parameter, list(values)


def tuning_plan(suite, seed, smoke=False, models=None):
    """One run per (model, grid value) at `seed`, the sweep variants left
    out (suites that tune have none)."""
    _register_datasets()
    parameter, values = tuning_grid(suite, smoke)
    base = _base_overrides(suite, smoke)
    configs = _configs(suite)
    runs = []
    for value in values:
        for path, model in configs:
            if models and model not in models:
                continue
            overrides = base + [f"{parameter}={value}", f"training.seed={seed}"]
            runs.append(_planned(suite, path, model, None, overrides, seed,
                                 tune=f"{parameter}={value}"))
    return runs


def validation_score(entry):
    """What tuning maximises: the mean over tasks of the validation AUC
    (minus the MSE for regression tasks)."""
    scores = []
    for metrics in entry["metrics"]["valid"].values():
        if metrics.get("auc") is not None:
            scores.append(metrics["auc"])
        elif metric_value(metrics, "mse") is not None:
            scores.append(-metric_value(metrics, "mse"))
    return float(sum(scores) / len(scores)) if scores else float("-inf")


def choose(tuning_runs):
    """`{model: "parameter=value"}` with the best validation score (ties:
    the first value of the grid)."""
    best = {}
    for entry in tuning_runs:
        score = validation_score(entry)
        if entry["model"] not in best or score > best[entry["model"]][0]:
            best[entry["model"]] = (score, entry["tune"])
    return {model: tune for model, (_, tune) in best.items()}


def run_key(run):
    return (run["model"], run.get("variant"), run["seed"])


def label_correlations(suite, smoke=False):
    """Pearson correlation of each pair of task labels on the training split,
    per variant (the papers report it)."""
    import numpy as np

    from mtrec.experiments.config import load_config
    from mtrec.data.registry import load_dataset

    path = suite_configs(suite)[0]
    out = {}
    base = _base_overrides(suite, smoke)
    for label, extra in variants(suite, smoke):
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


# --------------------------------------------------------------------------
# Executing runs (in this process, or in a pool of worker processes)
# --------------------------------------------------------------------------
_LOADED = {}   # (dataset name, args) -> DatasetSplits, per process


def _init_worker(threads):
    """Pool initializer: quiet TensorFlow, a share of the cores each."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if threads:
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)


def _dataset(config):
    """The run's dataset, loaded once per process (the splits are seeded by
    the dataset's own arguments, not the run seed, so seeds and models of a
    suite share them); at most two are kept."""
    from mtrec.data.registry import load_dataset

    key = (config.dataset.name, json.dumps(config.dataset.args, sort_keys=True,
                                           default=str))
    if key not in _LOADED:
        while len(_LOADED) >= 2:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = load_dataset(config.dataset.name, **config.dataset.args)
    return _LOADED[key]


def execute(run, folder):
    """Train one planned run into `folder`; its entry for the record."""
    import keras

    from mtrec.experiments.config import load_config
    from mtrec.experiments.runner import train

    _register_datasets()
    keras.backend.clear_session()
    config = load_config(ROOT / run["config_path"], run["overrides"])
    t0 = time.perf_counter()
    train(config, output_dir=folder, verbose=0, log=None, data=_dataset(config))
    wall = time.perf_counter() - t0
    metrics = json.loads((Path(folder) / "metrics.json").read_text(encoding="utf-8"))
    return _run_entry(run, metrics, wall, folder)


class Executor:
    """Runs planned runs, `jobs` at a time: in this process when `jobs` is
    1, else in a pool of spawned worker processes (each trains one run at a
    time with `cpu_count // jobs` TensorFlow threads; small models train
    faster side by side than one at a time on all cores)."""

    def __init__(self, jobs=1):
        self.jobs = max(1, int(jobs))
        self._pool = None
        if self.jobs > 1:
            import concurrent.futures
            import multiprocessing

            threads = max(1, (os.cpu_count() or 1) // self.jobs)
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=self.jobs, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=(threads,))

    def map(self, jobs):
        """Yield `(run, entry)` for `[(run, folder)]` as runs finish."""
        if self._pool is None:
            for run, folder in jobs:
                yield run, execute(run, folder)
            return
        import concurrent.futures

        futures = {self._pool.submit(execute, run, folder): run for run, folder in jobs}
        for future in concurrent.futures.as_completed(futures):
            yield futures[future], future.result()

    def close(self):
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None


def _folder(runs_dir, suite, run):
    folder = runs_dir / suite
    if run.get("tune"):
        parameter, _, value = run["tune"].partition("=")
        folder = folder / "tune" / f"{parameter.rpartition('.')[2]}{value}"
    folder = folder / Path(run["config_path"]).stem
    if run["variant"]:
        folder = folder / run["variant"].replace("=", "")
    return folder / f"seed{run['seed']}"


def _sorted_runs(entries):
    return sorted(entries, key=lambda r: (r["seed"], str(r.get("variant")),
                                          MODEL_ORDER.index(r["model"])
                                          if r["model"] in MODEL_ORDER else 99,
                                          str(r.get("tune"))))


def _describe(run):
    return " ".join(str(x) for x in (run["model"], run.get("variant") or "",
                                      run.get("tune") or "", f"seed {run['seed']}") if x)


def _log_entry(log, suite, i, n, entry):
    test = entry["metrics"]["test"]
    log(f"[{suite}] {i}/{n} {_describe(entry)}: {entry['parameters']:,} params, "
        f"{entry['epochs_run']} epochs (best {entry['best_epoch']}), "
        f"{entry['wall_seconds']:.1f} s; valid score {validation_score(entry):.4f}; test "
        + ", ".join(f"{t}: " + _headline(m) for t, m in test.items()))


def tuned_choice(suite, out_dir, record, seeds, smoke, models, executor, runs_dir, save,
                 log):
    """The per-model overrides of the tuned values (`{model: [override]}`),
    running the suite's tuning grid first (or reading the suite it borrows
    its choice from); `{}` for suites without tuning."""
    source = SUITES[suite].get("tuned_from")
    if source and not smoke:
        path = out_dir / f"{source}.json"
        tuning = (json.loads(path.read_text(encoding="utf-8")).get("tuning")
                  if path.is_file() else None)
        if not tuning or not tuning.get("chosen"):
            raise SystemExit(f"Suite '{suite}' uses the learning rates chosen on "
                             f"'{source}' validation, but {path} has no tuning result; "
                             f"run --suite {source} first.")
        record["tuned_from"] = {"suite": source, "parameter": tuning["parameter"],
                                "chosen": tuning["chosen"]}
        return {m: [t] for m, t in tuning["chosen"].items()}
    grid = tuning_grid(suite, smoke)
    if grid is None:
        return {}
    parameter, values = grid
    seed = seeds[0]
    tuning = record.setdefault("tuning", {"parameter": parameter, "values": values,
                                          "seed": seed, "runs": []})
    tuning["criterion"] = "mean over tasks of the validation AUC (-MSE for regression)"
    done = {(r["model"], r["tune"]) for r in tuning["runs"]}
    todo = [r for r in tuning_plan(suite, seed, smoke, models)
            if (r["model"], r["tune"]) not in done]
    log(f"[{suite}] tuning {parameter} over {values} at seed {seed} on validation: "
        f"{len(todo)} runs")
    for i, (run, entry) in enumerate(
            executor.map([(r, _folder(runs_dir, suite, r)) for r in todo]), 1):
        tuning["runs"] = _sorted_runs(tuning["runs"] + [entry])
        _log_entry(log, suite, f"tune {i}", len(todo), entry)
        save()
    tuning["chosen"] = choose(tuning["runs"])
    log(f"[{suite}] chosen on validation: "
        + ", ".join(f"{m} {t}" for m, t in tuning["chosen"].items()))
    save()
    return {m: [t] for m, t in tuning["chosen"].items()}


def run_suite(suite, seeds=None, out_dir=None, runs_dir=None, smoke=False, resume=False,
              models=None, argv=None, log=print, executor=None):
    """Run a suite and write its aggregated record; the record (dict).

    Suites with a tuning grid first train every model at every grid value
    at the first seed and keep, per model, the value with the best
    validation score; the other seeds then run at that value, and the
    first seed's run is the tuning run itself (same config)."""
    out_dir = Path(out_dir) if out_dir is not None else RESULTS
    runs_dir = Path(runs_dir) if runs_dir is not None else RUNS
    seeds = list(seeds or SUITES[suite]["seeds"])
    own_executor = executor is None
    executor = executor or Executor(1)
    out_dir.mkdir(parents=True, exist_ok=True)
    record_path = out_dir / f"{suite}.json"
    record = None
    if resume and record_path.is_file():
        record = json.loads(record_path.read_text(encoding="utf-8"))
    if record is None:
        record = {"suite": suite, "description": SUITES[suite]["description"],
                  "smoke": smoke, "created": _now(), "command": command_line(argv),
                  "machine": machine(), "seeds": list(seeds), "jobs": executor.jobs,
                  "runs": []}
    else:
        record["command"] = record.get("command", "") + " ; " + command_line(argv)
        record["seeds"] = sorted(set(record.get("seeds", [])) | set(seeds))
    started = time.perf_counter()
    previous_wall = record.get("wall_seconds", 0.0) if resume else 0.0

    def save():
        record["wall_seconds"] = round(previous_wall + time.perf_counter() - started, 1)
        record["finished"] = _now()
        _write_json(record_path, record)

    try:
        if "label_correlation" not in record:
            record["label_correlation"] = label_correlations(suite, smoke)
            for variant, info in record["label_correlation"].items():
                log(f"[{suite}] label correlation ({variant}): "
                    + ", ".join(f"{k} = {v:.4f}" for k, v in info["pearson"].items()))
        chosen = tuned_choice(suite, out_dir, record, seeds, smoke, models, executor,
                              runs_dir, save, log)
        done = {run_key(r) for r in record["runs"]}
        todo = plan(suite, seeds, smoke=smoke, models=models, chosen=chosen)
        # The tuning run of the chosen value is the first seed's run.
        reused = {(e["model"], e["seed"]): e
                  for e in record.get("tuning", {}).get("runs", [])
                  if chosen.get(e["model"]) == [e["tune"]]}
        for run in todo:
            entry = reused.get((run["model"], run["seed"]))
            if entry is not None and run_key(run) not in done:
                record["runs"].append({**entry, "tune": None, "overrides": run["overrides"],
                                       "reused_from_tuning": True})
                done.add(run_key(run))
                log(f"[{suite}] {_describe(run)}: the tuning run of {entry['tune']}")
        todo = [r for r in todo if run_key(r) not in done]
        log(f"[{suite}] {len(todo)} runs to train ({executor.jobs} at a time)")
        for i, (run, entry) in enumerate(
                executor.map([(r, _folder(runs_dir, suite, r)) for r in todo]), 1):
            record["runs"] = _sorted_runs(record["runs"] + [entry])
            _log_entry(log, suite, i, len(todo), entry)
            save()
        record["runs"] = _sorted_runs(record["runs"])
        save()
    finally:
        if own_executor:
            executor.close()
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
        "tune": run.get("tune"),
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
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds (default: the suite's, "
                             "census 1-5, synthetic 1-3)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs trained side by side in worker processes "
                             "(default 1; 2 on a 2-core machine roughly halves "
                             "the wall time of these small models)")
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
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()] if args.seeds else None
    if args.smoke:
        seeds = (seeds or [1])[:1]
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
        started = time.perf_counter()
        executor = Executor(args.jobs)
        try:
            for suite in suites:
                run_suite(suite, seeds, out_dir=out_dir, runs_dir=runs_dir,
                          smoke=args.smoke, resume=args.resume, models=models, argv=argv,
                          executor=executor)
        finally:
            executor.close()
        print(f"Ran {', '.join(suites)} in {time.perf_counter() - started:.0f} s "
              f"({args.jobs} job(s) at a time).")
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
