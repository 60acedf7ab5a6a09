"""Run benchmark suites: every config of a suite x every seed, one record.

    python benchmarks/run.py --suite census_g1 --jobs 2          # tune, then 5 seeds
    python benchmarks/run.py --suite synthetic --seeds 1,2,3
    python benchmarks/run.py --suite movielens_funnel            # make bench-funnel
    python benchmarks/run.py --suite census_g1 --no-run --check-baseline   # compare only
    python benchmarks/run.py --smoke --out-dir /tmp/smoke        # tiny, every suite

A suite is a YAML file, `benchmarks/suites/<suite>.yaml` (read and checked
by `benchmarks/suites.py`: unknown keys are rejected): a folder of run
configs (one YAML per dataset and model, validated by
`mtrec.experiments.config.load_config`), seeds, overrides applied to each
config, an optional tuning grid (or `tuned_from` another suite), an
optional sweep of a dataset argument, report columns and a baseline file.
The suite's `baselines` (default `[hgb]`: one gradient-boosted-tree model
per task, `benchmarks/gbdt_baseline.py`) run after the configs, on the
same splits, into the record's `baselines` section.
For each config and seed the runner calls `mtrec.experiments.runner.train`
with `training.seed` overridden, into a raw run folder under
`runs/bench/<suite>/` (git-ignored), and collects the run's `metrics.json`
into one record, `benchmarks/results/<suite>.json` (shape in
`benchmarks/records.py`; rewritten after every run, so an interrupted suite
keeps what finished; `--resume` skips runs already there). A suite with
`ablations` (e.g. `clothing_multimodal`: the text removed from every
request) then exports each run as a SavedModel into its run folder and
serves the test split through it, as is and per ablation
(`benchmarks/ablations.py`), into the run's entry.

Hyperparameters are chosen on the validation split only: a suite with a
`tune` grid first trains every model at every grid value at the first seed
and keeps, per row, the value with the best mean validation AUC (the
record's `tuning` section lists every grid run); the first seed's result is
that tuning run, the other seeds run at the chosen value. A suite with
`tuned_from` reuses another suite's choice. The test split is only read
after training, for the record.

`--jobs N` trains N runs side by side in spawned worker processes (each
with its share of the cores and its own dataset cache); these models are
small enough that one run does not keep two cores busy.

`--check-baseline` compares a suite's record with its baseline (expected
means with tolerances) and exits non-zero naming row, task, metric, value
and expected value on a regression. `--smoke` runs each suite's `smoke`
section instead (1 epoch, a few thousand rows, a subset of configs, a
smaller grid) and checks the smoke baselines. `benchmarks/report.py` turns
the records into `benchmarks/RESULTS.md` and PNG figures.

Code is not edited between the runs of a record: every run stores its git
commit and dirty flag.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import records  # noqa: E402  (benchmarks/records.py)
import suites as suite_files  # noqa: E402  (benchmarks/suites.py)
from records import MODEL_ORDER, RESULTS, ROOT, run_key, sort_runs  # noqa: E402,F401
from records import validation_score  # noqa: E402,F401

RUNS = ROOT / "runs" / "bench"
# What the benchmark itself writes: a tree whose only changes are these is
# not called dirty in the records.
BENCHMARK_OUTPUTS = ("benchmarks/results/", "benchmarks/RESULTS.md", "benchmarks/figures/")


def load_suite(name):
    """The checked suite `name`; a clear exit on a bad suite file."""
    try:
        return suite_files.load_suite(name)
    except suite_files.SuiteError as error:
        raise SystemExit(str(error)) from error


def _register_datasets():
    """Make sure every dataset the suites use is registered."""
    import mtrec.data  # noqa: F401
    import mtrec.data.synthetic  # noqa: F401  (registers 'synthetic')


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
# Planning
# --------------------------------------------------------------------------
def variants(suite, smoke=False):
    """`[(variant_label or None, overrides)]` of a suite's sweep."""
    sweep = suite.sweep_values(smoke)
    if sweep is None:
        return [(None, [])]
    key, values = sweep
    return [(f"{key}={v}", [f"dataset.args.{key}={v}"]) for v in values]


def _configs(suite, smoke=False):
    """`[(path, row name, model class)]` of a suite in report order (smoke:
    only the smoke section's configs). The model class is read from the
    file as written; a config is validated when a run of it is planned
    (`_planned`), so `--models` can leave out configs that do not load."""
    import yaml

    keep = set(suite.smoke.configs) if smoke and suite.smoke else set()
    configs = []
    for path in suite.config_files():
        if keep and path.stem not in keep:
            continue
        model = ((yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("model")
                 or {}).get("name")
        if not isinstance(model, str):
            raise SystemExit(f"{path}: no model.name; every config of a suite names "
                             f"its model class.")
        configs.append((path, model if suite.rows == "model" else path.stem, model))
    configs.sort(key=lambda item: (records.row_rank(item[1]), item[0].name))
    return configs


def _planned(path, name, model, label, overrides, seed, tune=None, ablations=None):
    from mtrec.experiments.config import load_config

    load_config(path, overrides)  # validated before anything runs
    planned = {"config_path": str(path.relative_to(ROOT)), "name": name, "model": model,
               "variant": label, "seed": seed, "overrides": overrides, "tune": tune}
    if ablations:
        planned["ablations"] = ablations
    return planned


def _ablations(suite):
    """`{name: [columns blanked]}` of a suite's ablations ({} for none)."""
    return {a.name: list(a.blank) for a in suite.ablations}


def _selected(name, model, models):
    return not models or name in models or model in models


def plan(suite, seeds, smoke=False, models=None, chosen=None):
    """The runs of a suite: dicts with config path, row name, model,
    variant, seed, overrides. `chosen` maps a row to extra overrides (the
    tuned values); `models` keeps the rows (or model classes) named."""
    _register_datasets()
    runs = []
    base = suite.base_overrides(smoke)
    configs = _configs(suite, smoke)
    # Seeds outermost: an interrupted suite has every model at the first seeds.
    for seed in seeds:
        for label, extra in variants(suite, smoke):
            for path, name, model in configs:
                if not _selected(name, model, models):
                    continue
                overrides = (base + extra + list((chosen or {}).get(name, []))
                             + [f"training.seed={seed}"])
                runs.append(_planned(path, name, model, label, overrides, seed,
                                     ablations=_ablations(suite)))
    return runs


def tuning_plan(suite, seed, smoke=False, models=None):
    """One run per (row, grid value) at `seed`, the sweep variants left
    out (suites that tune have none)."""
    _register_datasets()
    parameter, values = suite.tuning_grid(smoke)
    base = suite.base_overrides(smoke)
    runs = []
    for value in values:
        for path, name, model in _configs(suite, smoke):
            if not _selected(name, model, models):
                continue
            overrides = base + [f"{parameter}={value}", f"training.seed={seed}"]
            runs.append(_planned(path, name, model, None, overrides, seed,
                                 tune=f"{parameter}={value}"))
    return runs


def choose(tuning_runs):
    """`{row: "parameter=value"}` with the best validation score (ties:
    the first value of the grid)."""
    best = {}
    for entry in tuning_runs:
        score = validation_score(entry)
        if entry["name"] not in best or score > best[entry["name"]][0]:
            best[entry["name"]] = (score, entry["tune"])
    return {name: tune for name, (_, tune) in best.items()}


def label_correlations(suite, smoke=False):
    """Pearson correlation of each pair of task labels on the training split,
    per variant (the papers report it)."""
    import numpy as np

    from mtrec.data.registry import load_dataset
    from mtrec.experiments.config import load_config

    path = suite.config_files()[0]
    out = {}
    base = suite.base_overrides(smoke)
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
    """Train one planned run into `folder`; its entry for the record. A run
    with `ablations` is then exported and its test split served with and
    without the blanked columns (`benchmarks/ablations.py`): the entry's
    `metrics` gain `test_served` and `test_<ablation>`."""
    import keras

    from mtrec.experiments.config import load_config
    from mtrec.experiments.runner import train

    _register_datasets()
    keras.backend.clear_session()
    config = load_config(ROOT / run["config_path"], run["overrides"])
    data = _dataset(config)
    t0 = time.perf_counter()
    result = train(config, output_dir=folder, verbose=0, log=None, data=data,
                   ignore_changes=BENCHMARK_OUTPUTS)
    wall = time.perf_counter() - t0
    metrics = json.loads((Path(folder) / "metrics.json").read_text(encoding="utf-8"))
    entry = _run_entry(run, metrics, wall, folder)
    if run.get("ablations"):
        import ablations  # benchmarks/ablations.py

        served = ablations.served_ablations(
            result.model, data.test, run["ablations"], Path(folder) / ablations.EXPORT_DIR,
            group_column=config.evaluation.group_column or data.group_column)
        entry["metrics"] = {**entry["metrics"], **served.pop("metrics")}
        entry.update(served, saved_model=_relative(served["saved_model"]))
    return entry


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


def _describe(run):
    return " ".join(str(x) for x in (run["name"], run.get("variant") or "",
                                      run.get("tune") or "", f"seed {run['seed']}") if x)


def _log_entry(log, suite, i, n, entry):
    test = entry["metrics"]["test"]
    log(f"[{suite}] {i}/{n} {_describe(entry)}: {entry['parameters']:,} params, "
        f"{entry['epochs_run']} epochs (best {entry['best_epoch']}), "
        f"{entry['wall_seconds']:.1f} s; valid score {validation_score(entry):.4f}; test "
        + ", ".join(f"{t}: " + records.headline(m) for t, m in test.items()))
    for split, served in entry["metrics"].items():
        if split.startswith("test_"):
            label = ("all inputs" if split == suite_files.SERVED_SPLIT
                     else split[5:].replace("_", " "))
            log(f"[{suite}]     served, {label}: "
                + ", ".join(f"{t}: " + records.headline(m) for t, m in served.items()))


def tuned_choice(suite, out_dir, record, seeds, smoke, models, executor, runs_dir, save,
                 log):
    """The per-row overrides of the tuned values (`{row: [override]}`),
    running the suite's tuning grid first (or reading the suite it borrows
    its choice from); `{}` for suites without tuning."""
    source = suite.tuned_from
    if source and not smoke:
        path = out_dir / f"{source}.json"
        tuning = records.read_record(path).get("tuning") if path.is_file() else None
        if not tuning or not tuning.get("chosen"):
            raise SystemExit(f"Suite '{suite.name}' uses the learning rates chosen on "
                             f"'{source}' validation, but {path} has no tuning result; "
                             f"run --suite {source} first.")
        record["tuned_from"] = {"suite": source, "parameter": tuning["parameter"],
                                "chosen": tuning["chosen"]}
        return {m: [t] for m, t in tuning["chosen"].items()}
    grid = suite.tuning_grid(smoke)
    if grid is None:
        return {}
    parameter, values = grid
    seed = seeds[0]
    tuning = record.setdefault("tuning", {"parameter": parameter, "values": values,
                                          "seed": seed, "runs": []})
    tuning["criterion"] = "mean over tasks of the validation AUC (-MSE for regression)"
    done = {(r["name"], r["tune"]) for r in tuning["runs"]}
    todo = [r for r in tuning_plan(suite, seed, smoke, models)
            if (r["name"], r["tune"]) not in done]
    log(f"[{suite.name}] tuning {parameter} over {values} at seed {seed} on validation: "
        f"{len(todo)} runs")
    for i, (run, entry) in enumerate(
            executor.map([(r, _folder(runs_dir, suite.name, r)) for r in todo]), 1):
        tuning["runs"] = sort_runs(tuning["runs"] + [entry])
        _log_entry(log, suite.name, f"tune {i}", len(todo), entry)
        save()
    tuning["chosen"] = choose(tuning["runs"])
    log(f"[{suite.name}] chosen on validation: "
        + ", ".join(f"{m} {t}" for m, t in tuning["chosen"].items()))
    save()
    return {m: [t] for m, t in tuning["chosen"].items()}


def run_suite(suite, seeds=None, out_dir=None, runs_dir=None, smoke=False, resume=False,
              models=None, argv=None, log=print, executor=None):
    """Run a suite (a name or a `Suite`) and write its record; the record (dict).

    Suites with a tuning grid first train every model at every grid value
    at the first seed and keep, per row, the value with the best
    validation score; the other seeds then run at that value, and the
    first seed's run is the tuning run itself (same config)."""
    suite = load_suite(suite) if isinstance(suite, str) else suite
    out_dir = Path(out_dir) if out_dir is not None else RESULTS
    runs_dir = Path(runs_dir) if runs_dir is not None else RUNS
    seeds = list(seeds or suite.seeds)
    own_executor = executor is None
    executor = executor or Executor(1)
    out_dir.mkdir(parents=True, exist_ok=True)
    record_path = out_dir / f"{suite.name}.json"
    record = None
    if resume and record_path.is_file():
        record = records.read_record(record_path)
    if record is None:
        record = {"suite": suite.name, "description": suite.description,
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
        records.write_record(record_path, record)

    try:
        if suite.label_correlation and "label_correlation" not in record:
            record["label_correlation"] = label_correlations(suite, smoke)
            for variant, info in record["label_correlation"].items():
                log(f"[{suite.name}] label correlation ({variant}): "
                    + ", ".join(f"{k} = {v:.4f}" for k, v in info["pearson"].items()))
        chosen = tuned_choice(suite, out_dir, record, seeds, smoke, models, executor,
                              runs_dir, save, log)
        done = {run_key(r) for r in record["runs"]}
        todo = plan(suite, seeds, smoke=smoke, models=models, chosen=chosen)
        # The tuning run of the chosen value is the first seed's run.
        reused = {(e["name"], e["seed"]): e
                  for e in record.get("tuning", {}).get("runs", [])
                  if chosen.get(e["name"]) == [e["tune"]]}
        for run in todo:
            entry = reused.get((run["name"], run["seed"]))
            if entry is not None and run_key(run) not in done:
                record["runs"].append({**entry, "tune": None, "overrides": run["overrides"],
                                       "reused_from_tuning": True})
                done.add(run_key(run))
                log(f"[{suite.name}] {_describe(run)}: the tuning run of {entry['tune']}")
        todo = [r for r in todo if run_key(r) not in done]
        log(f"[{suite.name}] {len(todo)} runs to train ({executor.jobs} at a time)")
        for i, (run, entry) in enumerate(
                executor.map([(r, _folder(runs_dir, suite.name, r)) for r in todo]), 1):
            record["runs"] = sort_runs(record["runs"] + [entry])
            _log_entry(log, suite.name, i, len(todo), entry)
            save()
        record["runs"] = sort_runs(record["runs"])
        save()
        if _baselines_selected(suite, models):
            import gbdt_baseline  # benchmarks/gbdt_baseline.py

            # After the networks, in this process (HGB uses every core).
            gbdt_baseline.run_baselines(suite, record, seeds, smoke=smoke, save=save,
                                        log=log, argv=argv)
    finally:
        if own_executor:
            executor.close()
    log(f"[{suite.name}] wrote {record_path} ({len(record['runs'])} runs, "
        f"{record['wall_seconds']:.0f} s)")
    return record


def _baselines_selected(suite, models):
    """Whether the suite's baselines run: the suite names them and `--models`
    (when given) names `hgb` or a baseline row."""
    if not suite.baselines:
        return False
    return not models or any(m in suite.baselines or records.is_baseline_row(m)
                             for m in models)


def _run_entry(run, metrics, wall, folder):
    """What the record keeps of one run's metrics.json."""
    history = [{k: v for k, v in epoch.items()
                if k == "epoch" or "loss" in k or k.startswith("val_")}
               for epoch in metrics.get("history", [])]
    return {
        "name": run["name"], "model": run["model"], "variant": run["variant"],
        "seed": run["seed"], "tune": run.get("tune"),
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


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def merge_records(suite, paths, out_dir=None, log=print):
    """Merge records of one suite run in parallel processes (e.g. different
    seeds) into `<out_dir>/<suite>.json`; a (row, variant, seed) present
    twice keeps its first run. The merged wall time is the span from the
    earliest start to the latest finish."""
    out_dir = Path(out_dir) if out_dir is not None else RESULTS
    parts = [records.read_record(p) for p in paths]
    if not parts:
        raise SystemExit("--merge needs at least one record.")
    for path, record in zip(paths, parts):
        if record.get("suite") != suite:
            raise SystemExit(f"{path} is a record of suite {record.get('suite')!r}, "
                             f"not {suite!r}.")
    merged = dict(parts[0])
    merged["runs"], seen = [], set()
    for record in parts:
        for entry in record["runs"]:
            if run_key(entry) not in seen:
                seen.add(run_key(entry))
                merged["runs"].append({**entry, "run_dir": _relative(entry["run_dir"])})
    merged["runs"] = sort_runs(merged["runs"])
    if len(parts) > 1:
        merged["command"] = " & ".join(r.get("command", "?") for r in parts) + \
            " (parallel processes, merged with --merge)"
    merged["seeds"] = sorted({r["seed"] for r in merged["runs"]})
    starts = [datetime.datetime.fromisoformat(r["created"]) for r in parts]
    ends = [datetime.datetime.fromisoformat(r["finished"]) for r in parts
            if r.get("finished")]
    merged["created"] = min(starts).isoformat(timespec="seconds")
    if ends:
        merged["finished"] = max(ends).isoformat(timespec="seconds")
        merged["wall_seconds"] = round((max(ends) - min(starts)).total_seconds(), 1)
    if len(parts) > 1:
        merged["parallel_processes"] = len(parts)
        merged["process_wall_seconds"] = [r.get("wall_seconds") for r in parts]
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{suite}.json"
    records.write_record(path, merged)
    log(f"[{suite}] merged {len(merged['runs'])} runs from {len(parts)} records "
        f"into {path}")
    return merged


# --------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------
def _baseline_path(suite, smoke, baseline_dir):
    if baseline_dir is not None:
        return Path(baseline_dir) / f"{suite.name}.yaml"
    return suite.baseline_path(smoke)


def check_suite(suite, out_dir=None, baseline_dir=None, smoke=False, log=print):
    """0 when the suite's record matches its baseline, else 1 (messages
    logged). The baseline is the suite's (`smoke`: its smoke section's),
    or `<baseline_dir>/<suite>.yaml`."""
    suite = load_suite(suite) if isinstance(suite, str) else suite
    out_dir = Path(out_dir) if out_dir is not None else RESULTS
    record_path = out_dir / f"{suite.name}.json"
    baseline_path = _baseline_path(suite, smoke, baseline_dir)
    if not record_path.is_file():
        log(f"baseline check {suite.name}: no record {record_path}")
        return 1
    if baseline_path is None or not baseline_path.is_file():
        log(f"baseline check {suite.name}: no baseline "
            f"{baseline_path or '(the suite file names none)'}")
        return 1
    problems = records.check_baseline(records.read_record(record_path),
                                      records.read_baseline(baseline_path))
    for problem in problems:
        log(f"BASELINE FAIL {suite.name}: {problem}")
    if not problems:
        log(f"baseline check {suite.name}: OK ({baseline_path.name})")
    return 1 if problems else 0


def write_baseline(suite, out_dir=None, baseline_dir=None, smoke=False, floor=0.005,
                   relative=0.1, log=print):
    """Write a suite's baseline from its record: each row's (and variant's)
    mean per task, tolerance max(3 x std over seeds, floor) (losses:
    max(3 x std, `relative` x the mean)). Run once after a reviewed
    benchmark; later runs are checked against it."""
    suite = load_suite(suite) if isinstance(suite, str) else suite
    out_dir = Path(out_dir) if out_dir is not None else RESULTS
    record = records.read_record(out_dir / f"{suite.name}.json")
    seeds = sorted({r["seed"] for r in record["runs"]})
    baseline = records.baseline_from_record(
        record, note=f"means over seeds {seeds} of {record.get('command')}; tol = "
                     f"max(3 x std over seeds, {floor:g}; losses {relative:g} x mean)",
        floor=floor, relative=relative)
    path = _baseline_path(suite, smoke, baseline_dir)
    if path is None:
        raise SystemExit(f"Suite '{suite.name}' names no baseline file; add "
                         f"'baseline:' to its suite file or pass --baseline-dir.")
    records.write_baseline(path, baseline)
    log(f"wrote {path}")
    return path


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------
def default_suites(smoke):
    """Suites run without --suite: those of `make bench`, or with --smoke
    every suite with a smoke section."""
    loaded = [load_suite(name) for name in suite_files.suite_names()]
    return [s.name for s in loaded
            if (s.smoke is not None if smoke else s.report.make == "bench")]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", action="append",
                        help=f"suite(s) to run: {', '.join(suite_files.suite_names())} "
                             f"(repeatable or comma-separated); default the suites of "
                             f"`make bench`, or with --smoke every suite with a smoke "
                             f"section")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds (default: the suite's)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs trained side by side in worker processes "
                             "(default 1; 2 on a 2-core machine roughly halves "
                             "the wall time of these small models)")
    parser.add_argument("--models", default=None,
                        help="comma-separated rows (model classes or config stems; "
                             "hgb for the tree baseline) to run (default all)")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny version: 1 seed and each suite's smoke section")
    parser.add_argument("--out-dir", default=None,
                        help="where the records go (default benchmarks/results)")
    parser.add_argument("--runs-dir", default=None,
                        help="raw run folders (default runs/bench, or OUT/runs with "
                             "--smoke --out-dir OUT)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs already in the record, run the rest")
    parser.add_argument("--check-baseline", action="store_true",
                        help="compare the record(s) with the suite's baseline "
                             "(--smoke: its smoke baseline); non-zero exit on a "
                             "regression")
    parser.add_argument("--baseline-dir", default=None,
                        help="read/write baselines as DIR/<suite>.yaml instead")
    parser.add_argument("--no-run", action="store_true",
                        help="run nothing; only report / write or check baselines "
                             "from existing records")
    parser.add_argument("--write-baseline", action="store_true",
                        help="write the suite's baseline file from the record(s)")
    parser.add_argument("--baseline-floor", type=float, default=0.005,
                        help="with --write-baseline: least tolerance of a score "
                             "such as the AUC (default 0.005)")
    parser.add_argument("--baseline-rel-tol", type=float, default=0.1,
                        help="with --write-baseline: least tolerance of a loss, as "
                             "a fraction of its mean (default 0.1)")
    parser.add_argument("--merge", nargs="+", metavar="RECORD", default=None,
                        help="merge records of --suite written by parallel processes "
                             "into the suite's record (runs nothing)")
    parser.add_argument("--report", action="store_true",
                        help="write RESULTS.md and figures afterwards")
    args = parser.parse_args(argv)

    names = [s for item in (args.suite or []) for s in item.split(",") if s]
    suites = [load_suite(name) for name in (names or default_suites(args.smoke))]
    if args.smoke:
        missing = [s.name for s in suites if s.smoke is None]
        if missing:
            raise SystemExit(f"--smoke: suite(s) {missing} have no 'smoke' section in "
                             f"their suite file; smoke suites: {default_suites(True)}.")
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
        merge_records(suites[0].name, args.merge, out_dir=out_dir)
        args.no_run = True
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
        print(f"Ran {', '.join(s.name for s in suites)} in "
              f"{time.perf_counter() - started:.0f} s ({args.jobs} job(s) at a time).")
    if args.report:
        import report  # benchmarks/report.py (it does not import this module)

        report.main(["--results-dir", str(out_dir or RESULTS)]
                    + (["--out", str(out_dir / "RESULTS.md"),
                        "--figures-dir", str(out_dir / "figures")] if out_dir else []))
    if args.write_baseline:
        for suite in suites:
            write_baseline(suite, out_dir=out_dir, baseline_dir=args.baseline_dir,
                           smoke=args.smoke, floor=args.baseline_floor,
                           relative=args.baseline_rel_tol)
    if args.check_baseline:
        for suite in suites:
            status |= check_suite(suite, out_dir=out_dir, baseline_dir=args.baseline_dir,
                                  smoke=args.smoke)
    return status


if __name__ == "__main__":
    sys.exit(main())
