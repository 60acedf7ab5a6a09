"""Exact per-task metrics on a model's predictions."""

import numpy as np
import pandas as pd
from sklearn import metrics as skm


def predict_with_labels(model, data):
    """Predictions and labels over a dataset, in one pass (order preserved).

    Args:
        model: an mtrec model.
        data: iterable of `(features, labels)` batches, e.g. from
            `mtrec.data.from_pandas`.

    Returns:
        `(predictions, labels)`: dicts `{task: np.ndarray}`.
    """
    preds, labels = {}, {}
    for features, batch_labels in data:
        out = model.predict_on_batch(features)
        for task in model.task_names:
            preds.setdefault(task, []).append(np.asarray(out[task]))
            labels.setdefault(task, []).append(np.asarray(batch_labels[task]))
    if not preds:
        raise ValueError("The dataset is empty; there is nothing to evaluate.")
    return ({t: np.concatenate(v) for t, v in preds.items()},
            {t: np.concatenate(v) for t, v in labels.items()})


def binary_metrics(y_true, y_pred, num_bins=10):
    """AUC, logloss and calibration of probabilities against 0/1 labels."""
    row = {"count": len(y_true), "positive_rate": float(np.mean(y_true)),
           "mean_prediction": float(np.mean(y_pred))}
    row["auc"] = (float(skm.roc_auc_score(y_true, y_pred))
                  if len(np.unique(y_true)) == 2 else np.nan)
    row["logloss"] = float(skm.log_loss(y_true, np.clip(y_pred, 1e-7, 1 - 1e-7),
                                        labels=[0, 1]))
    # predicted / observed positive rate (PCOC); 1 is calibrated
    row["calibration"] = (row["mean_prediction"] / row["positive_rate"]
                          if row["positive_rate"] > 0 else np.nan)
    row["ece"] = expected_calibration_error(y_true, y_pred, num_bins)
    return row


def expected_calibration_error(y_true, y_pred, num_bins=10):
    """Mean |observed - predicted| rate over equal-width probability bins,
    weighted by the share of examples in each bin."""
    bins = np.minimum((np.asarray(y_pred) * num_bins).astype(int), num_bins - 1)
    total, error = len(y_true), 0.0
    for b in np.unique(bins):
        in_bin = bins == b
        error += in_bin.sum() / total * abs(y_true[in_bin].mean() - y_pred[in_bin].mean())
    return float(error)


def regression_metrics(y_true, y_pred):
    return {"count": len(y_true),
            "rmse": float(np.sqrt(skm.mean_squared_error(y_true, y_pred))),
            "mae": float(skm.mean_absolute_error(y_true, y_pred))}


def multiclass_metrics(y_true, y_prob):
    y_true = y_true.astype(int)
    classes = np.arange(y_prob.shape[1])
    return {"count": len(y_true),
            "accuracy": float(skm.accuracy_score(y_true, y_prob.argmax(axis=1))),
            "logloss": float(skm.log_loss(y_true, np.clip(y_prob, 1e-7, 1.0),
                                          labels=classes))}


def evaluate(model, data):
    """Exact per-task metrics (scikit-learn) of `model` on `data`.

    Examples whose label is NaN are left out of that task's row only.

    Args:
        model: an mtrec model.
        data: dataset of `(features, labels)` batches.

    Returns:
        pandas DataFrame, one row per task (index: task name), with
        `kind`, `count` and, by kind: binary `auc`, `logloss`,
        `calibration` (mean prediction / positive rate), `ece`;
        regression `rmse`, `mae`; multiclass `accuracy`, `logloss`.
    """
    preds, labels = predict_with_labels(model, data)
    rows = {}
    for task in model.schema.tasks:
        y_true, y_pred = labels[task.name], preds[task.name]
        keep = ~np.isnan(y_true)
        y_true, y_pred = y_true[keep], y_pred[keep]
        if not keep.any():
            rows[task.name] = {"kind": task.kind, "count": 0}
            continue
        if task.kind == "binary":
            row = binary_metrics(y_true, y_pred)
        elif task.kind == "regression":
            row = regression_metrics(y_true, y_pred)
        else:
            row = multiclass_metrics(y_true, y_pred)
        rows[task.name] = {"kind": task.kind, **row}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "task"
    return table
