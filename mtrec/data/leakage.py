"""A guard against label leakage, run on the training table before training.

A feature that *is* the label (a copy, a renamed copy, a rescaled copy)
makes every metric perfect and the model useless; one that nearly is
(a post-outcome field, a timestamp of the conversion) is almost as bad.
`check_leakage` raises for the first kind and warns for the second.

Rules, per task and per feature (Vector features are skipped). Let *L* be
the rows where the task has a label (label not NaN and, with a
`TaskSpec.mask`, mask non-zero) and *R* the rows of *L* where the feature
is not missing (NaN, None, ""):

1. **Deterministic recoding -> ValueError.** The label takes at most
   `max_categories` distinct values on *R* (binary, multiclass, star
   ratings), each of them on at least 5 rows, *R* has at least 20 rows,
   the feature takes at most `max_categories` distinct values on *R*, and
   every feature value goes with one single label value. This catches an
   identical copy, a renamed copy (0/1 -> "no"/"yes") and any many-to-one
   recoding of the label (codes A, B -> 1; C -> 0). The cardinality and
   support limits keep chance out: a feature with few values, each seen on
   many rows, does not fall into pure label groups by accident, whereas a
   near-unique id trivially would and is not reported.
2. **Monotone copy -> ValueError.** For a label with more than
   `max_categories` distinct values (regression), a Numeric feature whose
   values map one-to-one onto the label's values, strictly increasing or
   strictly decreasing, on at least 20 rows of *R*: the label up to a
   strictly monotone transform (identity, affine, log, ...).
3. **Near-perfect single feature -> warning** (`LeakageWarning`, naming
   feature, task and AUC), binary tasks only, on the rows of *L*: the AUC
   of the feature alone exceeds `auc_threshold`. Numeric: the ROC AUC of
   the raw value over the rows where it is finite, taken as
   `max(auc, 1 - auc)` (either direction separates). Categorical (also
   MultiHot and Text, whose whole string is the category): the AUC of the
   per-category positive rate computed on the same rows (in-sample target
   encoding; missing is a category of its own), where a category seen on
   fewer than 10 rows gets the overall rate, so that near-unique ids,
   which fit their own rows perfectly, do not look predictive. No AUC is
   computed (NaN) with fewer than 20 rows or fewer than 5 of either class.

Tables larger than `max_rows` are checked on a seeded random sample of
`max_rows` rows.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

__all__ = ["LeakageWarning", "check_leakage", "feature_auc"]

_MIN_ROWS = 20
_MIN_ROWS_PER_LABEL = 5
_MIN_CATEGORY_ROWS = 10


class LeakageWarning(UserWarning):
    """A single feature predicts a label almost perfectly."""


def check_leakage(df, schema, auc_threshold=0.99, max_rows=200_000, max_categories=10,
                  seed=0):
    """Raise on features that copy a label; warn on near-perfect ones.

    See the module docstring for the exact rules.

    Args:
        df: pandas DataFrame, normally the training split.
        schema: `mtrec.Schema` (adapted or not).
        auc_threshold: float. Warn when a single feature's AUC for a binary
            label exceeds it. Defaults to `0.99`.
        max_rows: int. Check a seeded sample of this many rows at most.
        max_categories: int. Cardinality limit of rule 1 (see above).
        seed: int. Seed of the row sample.

    Returns:
        dict `{task_name: {feature_name: auc}}` for the binary tasks (AUC as
        `max(auc, 1 - auc)`; NaN where it cannot be computed).

    Raises:
        ValueError: naming every feature that is a deterministic copy of a
        label, with the task and the rule.
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"check_leakage expects a pandas DataFrame, got "
                         f"{type(df).__name__}.")
    if not 0.5 <= auc_threshold <= 1:
        raise ValueError(f"auc_threshold must be in [0.5, 1], got {auc_threshold!r}.")
    if isinstance(max_rows, bool) or not isinstance(max_rows, (int, np.integer)) or max_rows < 1:
        raise ValueError(f"max_rows must be an integer >= 1, got {max_rows!r}.")
    schema.validate(df, labels=True)
    if len(df) > max_rows:
        df = df.sample(n=max_rows, random_state=seed)
    df = df.reset_index(drop=True)

    labels = schema.raw_labels(df)   # NaN where unlabelled or masked out
    # Each feature is encoded once (integer codes, -1 = missing) and reused
    # for every task: string conversions of object columns dominate the cost.
    checked = [spec for spec in schema.features if spec.leakage_view is not None]
    encoded = {spec.name: _encode(spec, df[spec.name]) for spec in checked}
    errors, report = [], {}
    for task in schema.tasks:
        y = labels[task.name].astype("float64")
        labelled = ~np.isnan(y)
        aucs = report.setdefault(task.name, {}) if task.kind == "binary" else None
        for spec in checked:
            feature = encoded[spec.name]
            rows = labelled & (feature.codes >= 0)
            reason = _deterministic(spec, feature, rows, y, max_categories)
            if reason:
                errors.append(f"feature '{spec.name}' {reason} of task '{task.name}' "
                              f"(label column '{task.label}')")
                if aucs is not None:
                    aucs[spec.name] = 1.0
                continue
            if aucs is None:
                continue
            if spec.leakage_view == "number":
                keep = labelled & (feature.codes >= 0)
                auc = _rank_auc(feature.values[keep], y[keep])
            else:
                auc = _category_auc(feature.codes[labelled], y[labelled])
            aucs[spec.name] = auc
            if auc > auc_threshold:
                warnings.warn(
                    f"Feature '{spec.name}' alone predicts task '{task.name}' (label "
                    f"'{task.label}') with AUC {auc:.4f} > {auc_threshold}: it may "
                    f"leak the label (recorded after the outcome, or derived from "
                    f"it). Check how the column is produced; drop it if it is not "
                    f"known at prediction time.", LeakageWarning, stacklevel=2)
    if errors:
        raise ValueError(
            "Label leakage: " + "; ".join(errors) + ". A feature that copies a label "
            "makes the model learn nothing usable; remove it from the schema (or "
            "from the table) before training.")
    return report


def feature_auc(values, y, numeric):
    """AUC of one feature for a 0/1 label, as `max(auc, 1 - auc)`.

    Args:
        values: pandas Series of the feature on labelled rows (float for
            numerics, objects for categories; NaN/None is missing).
        y: array of 0/1 labels, same length.
        numeric: bool. Rank the raw values (rows with a missing value are
            left out) instead of target-encoding categories.

    Returns:
        float, NaN when fewer than 20 rows or fewer than 5 rows of either
        class remain (too few to tell a leak from chance).
    """
    values = pd.Series(values).reset_index(drop=True)
    y = np.asarray(y, dtype="float64")
    if numeric:
        score = values.to_numpy(dtype="float64", na_value=np.nan)
        keep = np.isfinite(score)
        return _rank_auc(score[keep], y[keep])
    codes, _ = pd.factorize(values.astype(object), use_na_sentinel=True)
    return _category_auc(codes, y)


class _Encoded:
    """One feature column as integer codes (`-1` = missing: NaN, None, inf,
    "") plus, for numerics, the float values (shapes `(rows,)`)."""

    def __init__(self, codes, values=None):
        self.codes = codes
        self.values = values


def _encode(spec, series):
    if spec.leakage_view == "number":
        values = pd.to_numeric(series, errors="coerce").to_numpy("float64", na_value=np.nan)
        codes, _ = pd.factorize(values, use_na_sentinel=True)
        codes[~np.isfinite(values)] = -1
        return _Encoded(codes, values)
    objects = series.astype(object).to_numpy()
    codes, _ = pd.factorize(objects, use_na_sentinel=True)
    empty = np.fromiter((isinstance(v, str) and v == "" for v in objects), bool,
                        count=len(objects))
    codes[empty] = -1
    return _Encoded(codes)


def _category_auc(codes, y):
    """AUC of the in-sample positive rate per category (missing, code -1, is
    a category of its own); categories on fewer than 10 rows get the
    overall rate, so singletons (ids) cannot fit their own label."""
    if len(y) == 0:
        return float("nan")
    shifted = np.asarray(codes) + 1
    size = np.bincount(shifted)
    positives = np.bincount(shifted, weights=y)
    rate = np.where(size >= _MIN_CATEGORY_ROWS, positives / np.maximum(size, 1), y.mean())
    return _rank_auc(rate[shifted], y)


def _rank_auc(score, y):
    """Mann-Whitney AUC of `score` for 0/1 `y`, as `max(auc, 1 - auc)`; NaN
    with too few rows or too few of either class."""
    positives = int((y == 1).sum())
    negatives = len(y) - positives
    if len(y) < _MIN_ROWS or min(positives, negatives) < _MIN_ROWS_PER_LABEL:
        return float("nan")
    ranks = pd.Series(score).rank(method="average").to_numpy()
    auc = (ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    return float(max(auc, 1 - auc))


def _deterministic(spec, feature, rows, y, max_categories):
    """The reason the feature (on `rows`, a boolean mask: labelled and
    present) is a deterministic copy of the label `y`, or None."""
    if rows.sum() < _MIN_ROWS:
        return None
    x, y = feature.codes[rows], y[rows]
    labels, label_codes = np.unique(y, return_inverse=True)
    if len(labels) < 2:
        return None
    # Distinct label values per feature value, from the distinct pairs.
    pairs = np.unique(x.astype(np.int64) * len(labels) + label_codes)
    labels_per_value = np.bincount(pairs // len(labels))
    labels_per_value = labels_per_value[labels_per_value > 0]
    if len(labels) <= max_categories:
        if np.bincount(label_codes).min() < _MIN_ROWS_PER_LABEL:
            return None
        if len(labels_per_value) <= max_categories and (labels_per_value == 1).all():
            kind = ("is an identical copy" if _identical(feature, rows, y)
                    else f"is a deterministic recoding (each of its "
                         f"{len(labels_per_value)} values goes with a single label value)")
            return f"{kind} of the label"
        return None
    if spec.leakage_view != "number" or (labels_per_value > 1).any():
        return None
    # One-to-one: as many distinct feature values as label values.
    if len(labels_per_value) != len(labels):
        return None
    values = feature.values[rows]
    order = np.argsort(values, kind="stable")
    _, first = np.unique(values[order], return_index=True)
    steps = np.diff(y[order][first])
    if (steps > 0).all() or (steps < 0).all():
        kind = ("is an identical copy" if _identical(feature, rows, y)
                else "equals the label up to a strictly monotone transform")
        return f"{kind} of the label"
    return None


def _identical(feature, rows, y):
    return bool(feature.values is not None
                and np.allclose(feature.values[rows], y))
