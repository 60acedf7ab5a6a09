"""A per-task gradient-boosted-tree baseline for every benchmark suite.

    python benchmarks/gbdt_baseline.py --suite census_g1          # into its record
    python benchmarks/gbdt_baseline.py --suite synthetic --seeds 1 --max-iter 50
    python benchmarks/run.py --suite census_g1 --jobs 2           # deep models, then HGB

What a user would fit instead of a multi-task network: one scikit-learn
`HistGradientBoostingClassifier` per binary or multiclass task
(`HistGradientBoostingRegressor` per regression task), on the suite's own
data: the same loader, the same train / validation / test split, the same
tasks, the same label masks (a row whose label is masked or NaN is left out
of that task's fit, selection and metrics) and the same per-task metrics
(`mtrec`'s task-kind evaluation: AUC, logloss, GAUC by the suite's group
column, RMSE, MAE, ...).

Inputs, from the feature kinds `Schema.infer` picks for the suite's
configs (`FeatureEncoder`, every statistic learned on the training split):

- Categorical: ordinal codes learned on train (`OrdinalEncoder`, at most
  255 categories, the rarest grouped into one), given to the trees as
  native categoricals; a category unseen in training, and a missing value,
  is missing (HGB sends it down the side learned for missing values).
- Numeric: as is (NaN stays missing).
- Vector: one numeric column per component.
- MultiHot: one 0/1 column per item of the training vocabulary (the
  `MULTIHOT_ITEMS` most frequent).
- Text: TF-IDF (word unigrams and bigrams) then `TruncatedSVD` to
  `TEXT_COMPONENTS` numeric columns, both fit on the training split only
  (`mtrec.data.text_vectors.TextVectorizer`, which the clothing-reviews
  loader's `text_vectors` also uses), or left out with `text="skip"`.

A suite whose configs see different feature sets (the text suites exclude
title and review in their `tabular` configs) gets one HGB row per set.

The number of boosting iterations is chosen on the validation split only:
the model grows `CHUNK` trees at a time (`warm_start`) up to `max_iter`,
every stage is scored on validation with `staged_predict_proba` /
`staged_predict` (AUC for binary tasks, -MSE for regression, -logloss for
multiclass: the criterion the suites tune the deep models with), growth
stops once the best stage is `PATIENCE` trees old, and the best stage is
the model. The test split is predicted once, at that stage.
`early_stopping=False`: HGB's own early stopping would carve its
validation set out of the training rows.

Each run's entry has the shape of the deep models' (`benchmarks/records.py`,
so the report reads it the same way) and lives in the record's
`baselines` section, apart from the deep runs, so adding the baseline to a
record leaves every deep-model number, count and wall time as it was.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import records  # noqa: E402  (benchmarks/records.py)

KIND = "hgb"
ROW = records.BASELINE_ROWS[KIND]
MODEL = "HistGradientBoosting"
MAX_ITER = 500          # trees per task at most
SMOKE_MAX_ITER = 20     # `run.py --smoke`: a broken pipeline, not a number
CHUNK = 25              # trees grown between two validation checks
PATIENCE = 50           # stop once the best validation stage is this many trees old
LEARNING_RATE = 0.1
MAX_CATEGORIES = 255    # HGB's limit on a native categorical (max_bins)
MULTIHOT_ITEMS = 64
# Threads per fit. One: on a shared 2-core machine two OpenMP threads ran
# a census fit 5x slower than one (each waits for the other's core).
THREADS = 1
TEXT_COMPONENTS = 32
TEXT_MAX_FEATURES = 50_000


# --------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------
class FeatureEncoder:
    """Raw columns -> one float matrix for HGB, learned on the training split.

    Args:
        specs: list of feature specs (`mtrec.schema` Categorical, Numeric,
            MultiHot, Text, Vector), e.g. `Schema.infer(...).features`.
        text: `"svd"` (TF-IDF -> TruncatedSVD) or `"skip"`.
        seed: int. TruncatedSVD's random_state.

    After `fit(train_df)`, `transform(df)` returns a float64 array `(rows,
    columns)` whose columns are `self.columns`; `self.categorical` is the
    boolean mask of the native categorical columns (codes in
    `[0, MAX_CATEGORIES)`, NaN for missing or unseen).
    """

    def __init__(self, specs, text="svd", seed=0):
        if text not in ("svd", "skip"):
            raise ValueError(f"text must be 'svd' or 'skip', got {text!r}.")
        self.specs = list(specs)
        self.text = text
        self.seed = seed
        self._fitted = []      # (spec, kind, state)
        self.columns = []
        self.categorical = np.zeros(0, bool)

    def fit(self, df):
        from sklearn.preprocessing import OrdinalEncoder

        from mtrec.data.text_vectors import TextVectorizer

        self._fitted, columns, categorical = [], [], []
        for spec in self.specs:
            kind = spec.kind
            if kind == "categorical":
                encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=np.nan,
                                         encoded_missing_value=np.nan,
                                         max_categories=MAX_CATEGORIES)
                encoder.fit(_strings(df[spec.name]))
                state, names = encoder, [spec.name]
            elif kind == "numeric":
                state, names = None, [spec.name]
            elif kind == "vector":
                dim = _vectors(df[spec.name]).shape[1]
                state, names = dim, [f"{spec.name}[{i}]" for i in range(dim)]
            elif kind == "multihot":
                counts = {}
                for row in spec.items(df[spec.name]):
                    for item in set(row) - {""}:
                        counts[item] = counts.get(item, 0) + 1
                vocabulary = sorted(counts, key=lambda k: (-counts[k], k))[:MULTIHOT_ITEMS]
                state, names = vocabulary, [f"{spec.name}={v}" for v in vocabulary]
            elif kind == "text":
                if self.text == "skip":
                    continue
                state = TextVectorizer(TEXT_COMPONENTS, seed=self.seed,
                                       max_features=TEXT_MAX_FEATURES).fit(df[spec.name])
                names = [f"{spec.name}:svd{i}" for i in range(state.components)]
            else:
                raise ValueError(f"Column '{spec.name}' has feature kind '{kind}', which the "
                                 f"HGB baseline does not encode; expected categorical, "
                                 f"numeric, vector, multihot or text.")
            self._fitted.append((spec, kind, state))
            columns += names
            categorical += [kind == "categorical"] * len(names)
        self.columns, self.categorical = columns, np.asarray(categorical, bool)
        return self

    def transform(self, df):
        blocks = []
        for spec, kind, state in self._fitted:
            series = df[spec.name]
            if kind == "categorical":
                blocks.append(state.transform(_strings(series)).astype(np.float64))
            elif kind == "numeric":
                blocks.append(pd.to_numeric(series, errors="coerce").to_numpy(
                    np.float64, na_value=np.nan).reshape(-1, 1))
            elif kind == "vector":
                values = _vectors(series)
                if values.shape[1] != state:
                    raise ValueError(f"Vector column '{spec.name}' has {values.shape[1]} "
                                     f"components here, {state} in training.")
                blocks.append(values)
            elif kind == "multihot":
                rows = spec.items(series)
                index = {item: i for i, item in enumerate(state)}
                out = np.zeros((len(rows), len(state)))
                for r, row in enumerate(rows):
                    for item in row:
                        if item in index:
                            out[r, index[item]] = 1.0
                blocks.append(out)
            else:  # text: a text without a training term is all zeros
                blocks.append(state.transform(series)[0])
        if not blocks:
            return np.zeros((len(df), 0))
        return np.hstack(blocks)

    def describe(self):
        """`{kind: number of input columns}` and how text was handled."""
        counts = {}
        for (_, kind, _), n in zip(self._fitted, self._widths()):
            counts[kind] = counts.get(kind, 0) + n
        skipped = [s.name for s in self.specs if s.kind == "text"
                   and s.name not in {spec.name for spec, _, _ in self._fitted}]
        return {"columns": counts, "text": self.text,
                "text_columns": [s.name for s, k, _ in self._fitted if k == "text"],
                "skipped": skipped}

    def _widths(self):
        widths = []
        for spec, kind, state in self._fitted:
            widths.append({"categorical": 1, "numeric": 1}.get(kind) or (
                state if kind == "vector" else len(state) if kind == "multihot"
                else state.components))
        return widths


def _strings(series):
    """A categorical column as an object array (rows, 1): str, or NaN when missing."""
    out = series.astype(str).to_numpy(dtype=object)
    out[pd.isna(series).to_numpy()] = np.nan
    return out.reshape(-1, 1)


def _vectors(series):
    return np.asarray([np.asarray(v, np.float64) for v in series.tolist()], np.float64)


# --------------------------------------------------------------------------
# One task
# --------------------------------------------------------------------------
@dataclasses.dataclass
class TaskFit:
    """One task's fitted model and how its size was chosen.

    Attributes:
        model: the fitted HGB estimator (`max_iter` grown trees; only the
            first `iterations` are used).
        iterations: int. Stages chosen on validation (1-based).
        valid_curve: list of float. Validation score after each stage
            (higher is better); `valid_curve[iterations - 1]` is its max.
        grown: int. Trees grown before the patience stopped growth.
        seconds: float. Wall time of the fit and the selection.
    """

    model: object
    kind: str
    iterations: int
    valid_curve: list
    grown: int
    seconds: float

    def predict(self, X):
        """Predictions at the chosen stage: P(1) for binary `(rows,)`, class
        probabilities for multiclass `(rows, classes)`, values for regression."""
        return _stage(_staged(self.model, self.kind, X), self.iterations)


def _staged(model, kind, X):
    if kind == "regression":
        return model.staged_predict(X)
    if kind == "binary":
        return (p[:, 1] for p in model.staged_predict_proba(X))
    return model.staged_predict_proba(X)


def _stage(stages, k):
    for i, prediction in enumerate(stages, 1):
        if i == k:
            return prediction
    raise ValueError(f"the model has fewer than {k} stages")


def selection_score(kind, y_true, y_pred):
    """What the stage is chosen by (higher is better): AUC (binary), -MSE
    (regression), -logloss (multiclass)."""
    from sklearn import metrics

    if kind == "binary":
        if len(np.unique(y_true)) < 2:
            return float("nan")
        return float(metrics.roc_auc_score(y_true, y_pred))
    if kind == "regression":
        return -float(np.mean((np.asarray(y_true) - np.asarray(y_pred)) ** 2))
    return -float(metrics.log_loss(y_true, np.clip(y_pred, 1e-7, 1),
                                   labels=np.arange(y_pred.shape[1])))


def fit_task(kind, X_train, y_train, X_valid, y_valid, categorical, seed,
             max_iter=MAX_ITER, chunk=CHUNK, patience=PATIENCE,
             learning_rate=LEARNING_RATE):
    """Fit one task's HGB, choosing the number of stages on validation.

    Args:
        kind: `"binary"`, `"multiclass"` or `"regression"`.
        X_train, X_valid: float arrays `(rows, columns)`.
        y_train, y_valid: labels `(rows,)`, masked rows already removed.
        categorical: bool array `(columns,)`, the native categorical columns.
        seed: int. HGB's `random_state`.
        max_iter, chunk, patience: trees at most, grown per check, and how
            many trees past the best stage growth goes on.

    Returns:
        `TaskFit`.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    started = time.perf_counter()
    cls = HistGradientBoostingRegressor if kind == "regression" else \
        HistGradientBoostingClassifier
    categorical = np.asarray(categorical, bool)
    model = cls(max_iter=0, learning_rate=learning_rate, early_stopping=False,
                warm_start=True, random_state=seed,
                categorical_features=categorical if categorical.any() else None)
    y_train = y_train.astype(int) if kind != "regression" else y_train
    y_valid = y_valid.astype(int) if kind != "regression" else y_valid
    curve = []
    while len(curve) < max_iter:
        model.max_iter = min(max_iter, len(curve) + chunk)
        model.fit(X_train, y_train)
        grown = model.n_iter_
        if grown <= len(curve):
            break  # nothing more to grow (a perfect fit)
        for i, prediction in enumerate(_staged(model, kind, X_valid), 1):
            if i > len(curve):
                curve.append(selection_score(kind, y_valid, prediction))
        best = int(np.nanargmax(curve)) if np.isfinite(curve).any() else len(curve) - 1
        if len(curve) - 1 - best >= patience:
            break
    finite = np.where(np.isfinite(curve), curve, -np.inf)
    iterations = int(np.argmax(finite)) + 1
    return TaskFit(model, kind, iterations, curve, len(curve),
                   time.perf_counter() - started)


def task_metrics(kind, y_true, y_pred, groups=None):
    """The per-task metrics the deep models report (mtrec's task-kind
    evaluation), JSON-ready."""
    from mtrec.experiments.record import plain
    from mtrec.schema.task_kinds import task_kind

    if len(y_true) == 0:
        return {"kind": kind, "count": 0}
    row = task_kind(kind).evaluate(np.asarray(y_true, np.float64), y_pred, groups=groups)
    return {"kind": kind, **{k: plain(v) for k, v in row.items()}}


# --------------------------------------------------------------------------
# One run: every task of a dataset at one seed
# --------------------------------------------------------------------------
def run_hgb(data, schema, seed, max_iter=MAX_ITER, group_column=None, text="svd",
            log=None, threads=THREADS, encoded=None):
    """HGB per task on a dataset's splits; the per-run record fields.

    Args:
        data: `DatasetSplits` (train, valid, test DataFrames).
        schema: `mtrec.Schema` of the features and tasks (need not be adapted).
        seed: int. HGB's and TruncatedSVD's random_state.
        max_iter: int. Trees per task at most.
        group_column: str. Column of group ids for GAUC, or None.
        text: `"svd"` or `"skip"` (see `FeatureEncoder`).
        threads: int. OpenMP threads of the fits (threadpoolctl); None: all.
        encoded: dict or None. A cache of encoded inputs shared by calls on
            the same data and schema: filled here, reused when the encoding
            does not depend on the seed (no text column to project).

    Returns:
        dict with `metrics` (`{"valid": {task: {...}}, "test": {...}}`),
        `iterations` (`{task: {"chosen", "grown", "max_iter", "valid_score"}}`),
        `task_seconds` (`{task: s}`, the fit and selection; the encoding
        of the inputs is `encode_seconds`), `train_seconds` (their sum
        plus the encoding) and `features` (the encoder's description).
    """
    from threadpoolctl import threadpool_limits

    log = log or (lambda *a: None)
    started = time.perf_counter()
    seeded = text == "svd" and bool(schema.features_of("text"))
    key = seed if seeded else None
    if encoded is None or key not in encoded:
        encoder = FeatureEncoder(schema.features, text=text, seed=seed).fit(data.train)
        X = {split: encoder.transform(getattr(data, split))
             for split in ("train", "valid", "test")}
        if encoded is not None:
            encoded.clear()  # one entry at most: these matrices are large
            encoded[key] = (encoder, X)
    else:
        encoder, X = encoded[key]
    labels = {split: schema.raw_labels(getattr(data, split))
              for split in ("train", "valid", "test")}
    encode_seconds = time.perf_counter() - started
    metrics, iterations, seconds = {"valid": {}, "test": {}}, {}, {}
    with threadpool_limits(limits=threads):
        for task in schema.tasks:
            _one_task(task, data, X, labels, encoder, seed, max_iter, group_column,
                      metrics, iterations, seconds, log)
    return {"metrics": metrics, "iterations": iterations, "task_seconds": seconds,
            "encode_seconds": round(encode_seconds, 2), "threads": threads,
            "train_seconds": round(time.perf_counter() - started, 2),
            "features": encoder.describe()}


def _one_task(task, data, X, labels, encoder, seed, max_iter, group_column, metrics,
              iterations, seconds, log):
    """Fit, select and score one task into `metrics`, `iterations`, `seconds`."""
    keep = {s: ~np.isnan(labels[s][task.name]) for s in X}
    if not keep["train"].any():
        raise ValueError(f"Task '{task.name}' has no training label (all masked or "
                         f"NaN); the HGB baseline cannot fit it.")
    fit = fit_task(task.kind, X["train"][keep["train"]],
                   labels["train"][task.name][keep["train"]],
                   X["valid"][keep["valid"]], labels["valid"][task.name][keep["valid"]],
                   encoder.categorical, seed, max_iter=max_iter)
    for split in ("valid", "test"):
        frame = getattr(data, split)
        groups = (frame[group_column].to_numpy()[keep[split]]
                  if group_column is not None else None)
        y_pred = fit.predict(X[split][keep[split]])
        metrics[split][task.name] = task_metrics(
            task.kind, labels[split][task.name][keep[split]], y_pred, groups)
    iterations[task.name] = {"chosen": fit.iterations, "grown": fit.grown,
                             "max_iter": max_iter,
                             "valid_score": fit.valid_curve[fit.iterations - 1]}
    seconds[task.name] = round(fit.seconds, 2)
    log(f"  {task.name}: {fit.iterations} of {fit.grown} trees grown, "
        f"{fit.seconds:.1f} s")


# --------------------------------------------------------------------------
# A suite's baseline runs
# --------------------------------------------------------------------------
def feature_sets(suite, smoke=False, load=None):
    """The distinct input sets of a suite's configs, in config order:
    `[(row name, config path, schema section)]`. One set: the row is
    "HGB (per task)"; several (the text suites' tabular and text configs):
    one row each, "HGB (per task, tabular)" / "HGB (per task, text)" by
    whether the set holds a Text column (else by the first config's name).
    `load(config)` returns a config's `DatasetSplits` (to see the kinds)."""
    import run  # benchmarks/run.py

    from mtrec.experiments.config import load_config

    sets = {}
    for path in suite.config_files():
        config = load_config(path, suite.base_overrides(smoke))
        key = json.dumps(config.schema_.model_dump(mode="json"), sort_keys=True)
        sets.setdefault(key, (path, config))
    if len(sets) == 1:
        (path, config), = sets.values()
        return [(ROW, path, config.schema_)]
    out = []
    for path, config in sets.values():
        schema = schema_for((load or run._dataset)(config), config.schema_)
        label = "text" if schema.features_of("text") else "tabular"
        out.append((f"{ROW[:-1]}, {label})", path, config.schema_))
    if len({name for name, _, _ in out}) < len(out):
        out = [(f"{ROW[:-1]}, as {path.stem})", path, s) for _, path, s in out]
    return out


def schema_for(data, schema_section):
    """The schema a run config sees (the runner's rule: the dataset's own
    specs, the config's overrides, inference for the rest), not adapted."""
    from mtrec.schema import Schema

    specs = {spec.name: spec for spec in data.features if spec.name in data.train.columns}
    specs.update(schema_section.feature_specs())
    return Schema.infer(data.train, tasks=data.tasks, exclude=schema_section.exclude,
                        verbose=False, **specs)


def plan(suite, seeds, smoke=False, load=None):
    """Baseline runs of a suite: dicts name, variant, seed, config_path,
    overrides, schema (section), seeds outermost (as the deep runs)."""
    import run  # benchmarks/run.py (the variants)

    sets = feature_sets(suite, smoke, load)
    runs = []
    for seed in seeds:
        for label, extra in run.variants(suite, smoke):
            for name, path, section in sets:
                runs.append({"name": name, "model": MODEL, "variant": label, "seed": seed,
                             "config_path": str(path.relative_to(records.ROOT)),
                             "overrides": suite.base_overrides(smoke) + extra,
                             "schema": section})
    return runs


def settings(smoke=False, max_iter=None, text="svd", threads=THREADS):
    from mtrec.data.text_vectors import TFIDF_SETTINGS

    return {"max_iter": max_iter or (SMOKE_MAX_ITER if smoke else MAX_ITER),
            "threads": threads,
            "learning_rate": LEARNING_RATE, "chunk": CHUNK, "patience": PATIENCE,
            "max_categories": MAX_CATEGORIES, "multihot_items": MULTIHOT_ITEMS,
            "text": text, "text_components": TEXT_COMPONENTS,
            "text_tfidf": {**TFIDF_SETTINGS, "max_features": TEXT_MAX_FEATURES,
                           "ngram_range": list(TFIDF_SETTINGS["ngram_range"])},
            "selection": "validation AUC (binary), -MSE (regression), -logloss "
                         "(multiclass), every stage; the test split read once"}


def run_baselines(suite, record, seeds, smoke=False, save=None, log=print, max_iter=None,
                  text="svd", load=None, argv=None, replace=False, threads=THREADS):
    """Add the suite's HGB runs to `record["baselines"]["hgb"]` (those of a
    (row, variant, seed) already there are kept unless `replace`); `save()`
    after each run. `load(config)` returns the config's `DatasetSplits`."""
    import run  # benchmarks/run.py

    from mtrec.experiments.config import load_config
    from mtrec.experiments.record import git_state

    run._register_datasets()
    load = load or run._dataset
    section = record.setdefault("baselines", {}).setdefault(KIND, {"runs": []})
    if replace:
        section["runs"] = []
    section.update({"model": MODEL, "settings": settings(smoke, max_iter, text, threads),
                    "machine": run.machine(), "command": _command(argv),
                    "versions": _versions()})
    section.setdefault("created", run._now())
    done = {records.run_key(r) for r in section["runs"]}
    todo = [r for r in plan(suite, seeds, smoke, load) if records.run_key(r) not in done]
    # Seeds innermost here (the record is sorted anyway): the seeds of one
    # input set share its encoded matrices.
    todo.sort(key=lambda r: (str(r["variant"]), r["name"], r["seed"]))
    log(f"[{suite.name}] HGB baseline: {len(todo)} runs (max_iter "
        f"{section['settings']['max_iter']}, text {text})")
    started = time.perf_counter()
    previous = section.get("wall_seconds", 0.0) if not replace else 0.0
    caches = {}
    for i, planned in enumerate(todo, 1):
        config = load_config(records.ROOT / planned["config_path"], planned["overrides"])
        data = load(config)
        schema = schema_for(data, planned["schema"])
        inputs = (planned["name"], planned["variant"])
        if inputs not in caches:
            caches.clear()
            caches[inputs] = {}
        t0 = time.perf_counter()
        result = run_hgb(data, schema, planned["seed"],
                         max_iter=section["settings"]["max_iter"],
                         group_column=config.evaluation.group_column or data.group_column,
                         text=text, log=log, threads=threads, encoded=caches[inputs])
        entry = {
            "name": planned["name"], "model": MODEL, "variant": planned["variant"],
            "seed": planned["seed"], "tune": None, "baseline": KIND,
            "config_path": planned["config_path"], "overrides": planned["overrides"],
            "git": git_state(ignore=run.BENCHMARK_OUTPUTS), "versions": section["versions"],
            "dataset": {"name": config.dataset.label, "args": dict(config.dataset.args),
                        "rows": {s: len(getattr(data, s)) for s in ("train", "valid", "test")}},
            "parameters": None, "epochs_run": None, "best_epoch": None,
            "wall_seconds": round(time.perf_counter() - t0, 2), "history": [], **result}
        section["runs"] = records.sort_runs(section["runs"] + [entry])
        section["wall_seconds"] = round(previous + time.perf_counter() - started, 1)
        section["finished"] = run._now()
        test = entry["metrics"]["test"]
        log(f"[{suite.name}] HGB {i}/{len(todo)} {planned['name']} "
            f"{planned['variant'] or ''} seed {planned['seed']}: "
            f"{entry['train_seconds']:.1f} s; test "
            + ", ".join(f"{t}: {records.headline(m)}" for t, m in test.items()))
        if save is not None:
            save()
    return section


def _versions():
    import sklearn

    return {"scikit-learn": sklearn.__version__, "numpy": np.__version__,
            "pandas": pd.__version__, "python": sys.version.split()[0]}


def _command(argv):
    import shlex

    argv = sys.argv[1:] if argv is None else argv
    return f"python {Path(sys.argv[0]).name if sys.argv[0] else 'gbdt_baseline.py'} " + \
        " ".join(shlex.quote(a) for a in argv)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", action="append", required=True,
                        help="suite(s) whose record gets the HGB rows (comma-separated "
                             "or repeated)")
    parser.add_argument("--seeds", default=None, help="comma-separated (default the suite's)")
    parser.add_argument("--smoke", action="store_true",
                        help="the suite's smoke data, 1 seed, max_iter "
                             f"{SMOKE_MAX_ITER}")
    parser.add_argument("--max-iter", type=int, default=None,
                        help=f"trees per task at most (default {MAX_ITER})")
    parser.add_argument("--text", choices=("svd", "skip"), default="svd",
                        help="raw text: TF-IDF -> TruncatedSVD (default) or left out")
    parser.add_argument("--threads", type=int, default=THREADS,
                        help=f"OpenMP threads per fit (default {THREADS})")
    parser.add_argument("--out-dir", default=None,
                        help="where the records are (default benchmarks/results); a "
                             "missing record is started with the baseline alone")
    parser.add_argument("--replace", action="store_true",
                        help="drop the record's HGB runs first (default: keep them, run "
                             "the missing ones)")
    args = parser.parse_args(argv)
    import run  # benchmarks/run.py

    out_dir = Path(args.out_dir) if args.out_dir else records.RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in [s for item in args.suite for s in item.split(",") if s]:
        suite = run.load_suite(name)
        if not suite.baselines or KIND not in suite.baselines:
            print(f"[{name}] the suite file turns the HGB baseline off (baselines: "
                  f"{list(suite.baselines)}); skipped.")
            continue
        seeds = ([int(s) for s in args.seeds.split(",") if s.strip()] if args.seeds
                 else list(suite.seeds))
        if args.smoke:
            seeds = seeds[:1]
        path = out_dir / f"{name}.json"
        record = records.read_record(path) if path.is_file() else {
            "suite": name, "description": suite.description, "smoke": args.smoke,
            "created": run._now(), "machine": run.machine(), "seeds": seeds, "runs": []}
        run_baselines(suite, record, seeds, smoke=args.smoke,
                      save=lambda: records.write_record(path, record),
                      max_iter=args.max_iter, text=args.text, argv=argv,
                      replace=args.replace, threads=args.threads)
        records.write_record(path, record)
        print(f"[{name}] wrote {path}")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
