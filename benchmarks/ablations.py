"""Serve a trained run's test split through its SavedModel, with and without some inputs.

What `benchmarks/run.py` does after training a run of a suite with
`ablations` (see `benchmarks/suites.py`): the model is exported as a
SavedModel (`mtrec.export.saved_model`, written whole) into
`<run folder>/saved_model/`, loaded back as a client would load it
(`mtrec.export.file_scoring.load_scorer`: the `serving_default` signature,
raw features in), and the test split is scored

- as is: the record's `metrics["test_served"]` (equal to the Keras
  evaluation up to float error: a check that serving and training agree);
- once per ablation with its `blank` columns sent as a client sends an
  absent input, each feature's missing value (`spec.missing_value`: `""`
  for strings and text, NaN for numbers and vectors, -1 for integer ids):
  `metrics["test_<name>"]`.

Metrics are `mtrec`'s per-task evaluation (the task-kind table; NaN
labels left out), in the same shape as `metrics["test"]`, so
`benchmarks/records.py` aggregates them as any split.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from suites import SERVED_SPLIT  # benchmarks/suites.py: the record's split name

EXPORT_DIR = "saved_model"
BATCH_SIZE = 4096


def blank_columns(frame, schema, columns):
    """`(frame, blanked)`: a copy of `frame` whose `columns` that are schema
    features hold their spec's missing value, and the names blanked.

    Raises:
        ValueError: a column is not in `frame` (a typo in the suite file).
    """
    absent = [c for c in columns if c not in frame.columns]
    if absent:
        raise ValueError(f"Ablation columns {absent} are not columns of the test split "
                         f"(columns: {list(frame.columns)}); fix the suite's "
                         f"ablations.<name>.blank.")
    names = set(schema.feature_names)
    blanked = [c for c in columns if c in names]
    out = frame.copy()
    for column in blanked:
        missing = schema.feature(column).missing_value
        out[column] = pd.Series([missing] * len(out), index=out.index, dtype=object)
    return out, blanked


def predictions(score, schema, frame, batch_size=BATCH_SIZE):
    """`{task: np.ndarray}` of the served model on every row of `frame`."""
    parts = [score(schema.raw_features(frame.iloc[start:start + batch_size]))
             for start in range(0, len(frame), batch_size)]
    return {t: np.concatenate([np.asarray(p[t]) for p in parts]) for t in schema.task_names}


def task_metrics(schema, frame, predicted, group_column=None):
    """`{task: {metric: value}}` as `metrics.json` holds them (`mtrec`'s
    per-task evaluation, `mtrec.evaluation.report.task_rows`; rows whose
    label is NaN left out of that task), JSON-ready."""
    from mtrec.evaluation.report import task_rows
    from mtrec.experiments.record import plain

    labels = {task: values.astype(np.float64)
              for task, values in schema.raw_labels(frame).items()}
    groups = None if group_column is None else frame[group_column].to_numpy()
    return {task: {k: plain(v) for k, v in row.items()}
            for task, row in task_rows(schema, labels, predicted, groups=groups).items()}


def served_ablations(model, test, ablations, export_dir, group_column=None):
    """Export `model`, serve `test` as is and per ablation; the fields a
    run's record entry gets.

    Args:
        model: the trained mtrec model.
        test: DataFrame, the test split (features and labels).
        ablations: `{name: [columns to blank]}`.
        export_dir: where the SavedModel goes (replaced if there).
        group_column: str or None. Column of group ids for GAUC.

    Returns:
        dict: `metrics` (`{"test_served": ..., "test_<name>": ...}`),
        `ablations` (`{name: {"blank": [...], "blanked": [the model's
        inputs among them]}}`), `saved_model` (its path) and
        `serving_seconds` (export, load and scoring).
    """
    from mtrec.export.file_scoring import load_scorer
    from mtrec.export.saved_model import saved_model

    started = time.perf_counter()
    path = saved_model(model, Path(export_dir), overwrite=True)
    schema, score = load_scorer(path)
    metrics = {SERVED_SPLIT: task_metrics(schema, test, predictions(score, schema, test),
                                          group_column)}
    info = {}
    for name, columns in ablations.items():
        frame, blanked = blank_columns(test, schema, list(columns))
        metrics[f"test_{name}"] = (metrics[SERVED_SPLIT] if not blanked else task_metrics(
            schema, frame, predictions(score, schema, frame), group_column))
        info[name] = {"blank": list(columns), "blanked": blanked}
    return {"metrics": metrics, "ablations": info, "saved_model": str(path),
            "serving_seconds": round(time.perf_counter() - started, 2)}
