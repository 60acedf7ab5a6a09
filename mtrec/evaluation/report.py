"""`mtrec.evaluate`: exact per-task metrics of a model on a dataset."""

import numpy as np
import pandas as pd
import tensorflow as tf

from mtrec.data.pandas_dataset import DATAFRAME_BATCH_SIZE, from_pandas
from mtrec.evaluation.metrics import expected_calibration_error
from mtrec.schema.task_kinds import task_kind

__all__ = ["evaluate", "predict_with_labels", "expected_calibration_error"]

# Column order of the report; a column appears only when some task has it.
_COLUMNS = ("kind", "count", "auc", "gauc", "gauc_groups", "logloss", "calibration",
            "ece", "positive_rate", "mean_prediction", "rmse", "mae", "accuracy")


def _split_batch(batch):
    """`(features, labels[, weights])` -> `(features, labels)`."""
    if isinstance(batch, (tuple, list)) and len(batch) in (2, 3) \
            and isinstance(batch[1], dict):
        return batch[0], batch[1]
    raise ValueError(
        "Evaluation needs batches of (features, labels), labels a dict "
        "{task: tensor}; got a batch without labels. Build the dataset with "
        "mtrec.data.from_pandas(df, schema) (labels=True), or pass the "
        "DataFrame itself.")


def _collect(model, data, group_feature=None):
    """One pass over `data`: predictions, labels and, optionally, the raw
    feature `group_feature` of every row, in order."""
    preds, labels, groups = {}, {}, []
    for batch in data:
        features, batch_labels = _split_batch(batch)
        if group_feature is not None:
            if not isinstance(features, dict) or group_feature not in features:
                raise ValueError(
                    f"group_column '{group_feature}' is not among the raw "
                    f"features of the batches (datasets from "
                    f"mtrec.data.from_pandas hold encoded features, in which "
                    f"ids unseen in training share one bucket). Pass the "
                    f"DataFrame itself, mtrec.evaluate(model, df, "
                    f"group_column='{group_feature}'), or the ids explicitly, "
                    f"mtrec.evaluate(model, dataset, groups=df['{group_feature}']).")
            groups.append(np.asarray(features[group_feature]).reshape(-1))
        missing = [t for t in model.task_names if t not in batch_labels]
        if missing:
            raise ValueError(
                f"The batches have no labels for task(s) {missing}; labels "
                f"hold {sorted(batch_labels)}.")
        out = model.predict_on_batch(features)
        for task in model.task_names:
            preds.setdefault(task, []).append(np.asarray(out[task]))
            labels.setdefault(task, []).append(
                np.asarray(batch_labels[task], dtype="float64").reshape(-1))
    if not preds:
        raise ValueError("The dataset is empty; there is nothing to evaluate.")
    preds = {t: np.concatenate(v) for t, v in preds.items()}
    labels = {t: np.concatenate(v) for t, v in labels.items()}
    return preds, labels, (np.concatenate(groups) if groups else None)


def predict_with_labels(model, data):
    """Predictions and labels over a dataset, in one pass (order preserved).

    Args:
        model: an mtrec model.
        data: iterable of `(features, labels)` batches, e.g. from
            `mtrec.data.from_pandas`.

    Returns:
        `(predictions, labels)`: dicts `{task: np.ndarray}`.
    """
    preds, labels, _ = _collect(model, data)
    return preds, labels


def _is_shuffled(data):
    """Whether a tf.data pipeline shuffles (any shuffle op in its graph).

    Reads the pipeline's serialised graph through public ops; other
    iterables (lists of batches, generators) are taken as ordered.
    """
    if not isinstance(data, tf.data.Dataset):
        return False
    variant = tf.data.experimental.to_variant(data)
    # external_state_policy=1 (ignore): stateful functions (generators,
    # py_function) need not serialise faithfully; only op names are read.
    graph = tf.compat.v1.GraphDef.FromString(tf.raw_ops.DatasetToGraphV2(
        input_dataset=variant, external_state_policy=1).numpy())
    ops = [node.op for node in graph.node]
    ops += [node.op for function in graph.library.function for node in function.node_def]
    return any("Shuffle" in op for op in ops)


def task_rows(schema, labels, predictions, groups=None, top_k=(1, 3), num_bins=10):
    """Exact per-task metrics of predictions already made: what `evaluate`
    reports, one dict per task.

    Args:
        schema: the model's `Schema` (its tasks and their kinds).
        labels: `{task: (rows,) float array}`, NaN where unlabelled.
        predictions: `{task: array (rows,) or (rows, 1) or (rows, classes)}`.
        groups: optional `(rows,)` group ids (GAUC of binary tasks).
        top_k, num_bins: as in `evaluate`.

    Returns:
        `{task: {"kind", "count", <metrics>}}`; a task without labelled
        rows gets `{"kind", "count": 0}`. Unlabelled rows are left out of
        their task only.
    """
    rows = {}
    for task in schema.tasks:
        y_true, y_pred = labels[task.name], predictions[task.name]
        kind = task_kind(task.kind)
        if not kind.per_class:
            y_pred = y_pred.reshape(len(y_pred), -1)[:, 0] if y_pred.ndim > 1 else y_pred
        keep = ~np.isnan(y_true)
        if not keep.any():
            rows[task.name] = {"kind": task.kind, "count": 0}
            continue
        y_true, y_pred = y_true[keep], y_pred[keep]
        row = kind.evaluate(y_true, y_pred, groups=None if groups is None else groups[keep],
                            top_k=top_k, num_bins=num_bins)
        rows[task.name] = {"kind": task.kind, **row}
    return rows


def _check_top_k(top_k):
    if isinstance(top_k, (int, np.integer)) and not isinstance(top_k, bool):
        top_k = (top_k,)
    top_k = tuple(top_k)
    for k in top_k:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(
                f"top_k must hold integers >= 1, e.g. (1, 3); got {top_k!r}.")
    return tuple(int(k) for k in top_k)


def evaluate(model, data, group_column=None, top_k=(1, 3), groups=None,
             num_bins=10):
    """Exact per-task metrics (scikit-learn, plus GAUC and ECE) of `model`.

    Examples whose label is NaN are left out of that task's row only.

    Group ids for GAUC (usually the user id) need not be a model feature.
    They come from, in order of preference:

    - `groups`: an array with one id per row of `data`, in the order the
      dataset yields them (so the dataset must not be shuffled);
    - `group_column` with a DataFrame `data`: `data[group_column]`;
    - `group_column` with a dataset of *raw* features: that feature.

    Args:
        model: an mtrec model (`model.schema` and `model.task_names`).
        data: a pandas DataFrame (batched with `mtrec.data.from_pandas(df,
            model.schema, batch_size=4096)`), or an iterable of
            `(features, labels)` batches, e.g. from `mtrec.data.from_pandas`.
        group_column: str. Column (or raw feature) holding the group ids;
            adds `gauc` and `gauc_groups` to binary tasks.
        top_k: tuple of int. Multiclass tasks report `top_{k}_accuracy` for
            each k. Defaults to `(1, 3)`.
        groups: array-like of group ids aligned with the rows of `data`;
            adds `gauc` and `gauc_groups` to binary tasks.
        num_bins: int. Equal-width bins of the ECE. Defaults to `10`.

    Returns:
        pandas DataFrame, one row per task (index `task`), with `kind`,
        `count` and, by kind:
        binary: `auc`, `logloss`, `calibration` (mean prediction / positive
        rate, PCOC), `ece`, `positive_rate`, `mean_prediction`, and with
        groups `gauc` (impression-weighted mean of per-group AUC over the
        groups holding both classes) and `gauc_groups` (how many groups);
        regression: `rmse`, `mae`;
        multiclass: `accuracy`, `logloss`, `top_{k}_accuracy`.
        Metrics a task does not have are NaN.
    """
    top_k = _check_top_k(top_k)
    if groups is not None and group_column is not None:
        raise ValueError(
            f"Pass either groups (an array of ids) or group_column "
            f"('{group_column}'), not both.")
    group_feature = None
    if isinstance(data, pd.DataFrame):
        if group_column is not None:
            if group_column not in data.columns:
                raise ValueError(
                    f"group_column '{group_column}' is not a column of the "
                    f"DataFrame; columns: {list(data.columns)}.")
            groups = data[group_column]
        if groups is not None and len(groups) != len(data):
            raise ValueError(
                f"groups has {len(groups)} entries but the DataFrame has "
                f"{len(data)} rows; pass one group id per row.")
        data = from_pandas(data, model.schema, batch_size=DATAFRAME_BATCH_SIZE)
    elif group_column is not None:
        group_feature = group_column
    if groups is not None:
        if isinstance(groups, (pd.Series, pd.Index)):
            groups = groups.to_numpy()
        groups = np.asarray(groups)
        if groups.ndim != 1:
            raise ValueError(
                f"groups must be one-dimensional (one id per row), got shape "
                f"{groups.shape}.")
        if _is_shuffled(data):
            raise ValueError(
                "groups are matched to rows by position, but the dataset is "
                "shuffled, so they would pair with the wrong rows. Build it "
                "with shuffle=False (the default of mtrec.data.from_pandas), "
                "or pass the DataFrame itself with group_column.")

    preds, labels, feature_groups = _collect(model, data, group_feature)
    num_rows = len(next(iter(labels.values())))
    if feature_groups is not None:
        groups = feature_groups
    if groups is not None and len(groups) != num_rows:
        raise ValueError(
            f"groups has {len(groups)} entries but the data has {num_rows} "
            f"rows; pass one group id per row, in the order of the "
            f"(unshuffled) data.")

    rows = task_rows(model.schema, labels, preds, groups=groups, top_k=top_k,
                     num_bins=num_bins)
    table = pd.DataFrame.from_dict(rows, orient="index")
    present = [c for c in table.columns if c not in _COLUMNS]
    table = table[[c for c in _COLUMNS if c in table.columns] + present]
    if "gauc_groups" in table.columns:
        table["gauc_groups"] = table["gauc_groups"].astype("Int64")
    table.index.name = "task"
    return table
