"""Exact metrics on arrays of labels and predictions, one concept per function.

Every function takes plain array-likes (labels first, predictions second)
that are already free of missing labels; `mtrec.evaluate` masks NaN labels
per task before calling them. scikit-learn computes the standard metrics
(AUC, log loss, RMSE, MAE, accuracy, top-k accuracy); GAUC and ECE, which
scikit-learn does not provide, are written here and documented below.

A metric that is undefined on its input is NaN, never 0.0 and never an
exception: AUC (and GAUC) over labels of one class, any metric over no
example at all (a task without labels in the evaluated split).
"""

import numpy as np
import pandas as pd
from sklearn import metrics as skm

# Probabilities are clipped to [EPSILON, 1 - EPSILON] before log loss, so a
# confident wrong float32 prediction costs -log(1e-7) ~ 16 nats, not inf.
EPSILON = 1e-7


def _as_1d(values, name):
    array = np.asarray(values, dtype="float64")
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}.")
    return array


def _check_same_length(y_true, y_pred):
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"Labels and predictions differ in length: {len(y_true)} labels, "
            f"{len(y_pred)} predictions.")


# --------------------------------------------------------------------------
# binary
# --------------------------------------------------------------------------
def auc(y_true, y_pred):
    """ROC AUC (scikit-learn); NaN when the labels hold a single class."""
    y_true, y_pred = _as_1d(y_true, "y_true"), _as_1d(y_pred, "y_pred")
    _check_same_length(y_true, y_pred)
    if len(np.unique(y_true)) < 2:
        return float("nan")
    return float(skm.roc_auc_score(y_true, y_pred))


def binary_logloss(y_true, y_pred):
    """Mean binary cross-entropy in nats (scikit-learn), predictions clipped
    to `[1e-7, 1 - 1e-7]`."""
    y_true, y_pred = _as_1d(y_true, "y_true"), _as_1d(y_pred, "y_pred")
    _check_same_length(y_true, y_pred)
    if len(y_true) == 0:
        return float("nan")
    return float(skm.log_loss(y_true, np.clip(y_pred, EPSILON, 1 - EPSILON),
                              labels=[0, 1]))


def calibration(y_true, y_pred):
    """PCOC: mean prediction / observed positive rate. 1 is calibrated,
    above 1 over-predicts; NaN when there is no positive label."""
    y_true, y_pred = _as_1d(y_true, "y_true"), _as_1d(y_pred, "y_pred")
    _check_same_length(y_true, y_pred)
    positive_rate = y_true.mean() if len(y_true) else 0.0
    if positive_rate == 0:
        return float("nan")
    return float(y_pred.mean() / positive_rate)


def expected_calibration_error(y_true, y_pred, num_bins=10):
    """Expected calibration error over equal-width probability bins.

    The interval `[0, 1]` is cut into `num_bins` bins of equal width;
    bin `b` holds predictions in `[b / num_bins, (b + 1) / num_bins)`, and
    the last bin also holds 1.0. With `n_b` examples in bin `b` out of `n`,

        ECE = sum_b (n_b / n) * | mean(y_true in b) - mean(y_pred in b) |,

    i.e. the gap between observed and predicted positive rate, averaged
    over bins weighted by their share of examples (Naeini et al., AAAI
    2015; Guo et al., ICML 2017). Empty bins contribute nothing. 0 is
    perfectly calibrated; the value is bounded by 1.

    Args:
        y_true: array `(n,)` of 0/1 labels.
        y_pred: array `(n,)` of probabilities (clipped to `[0, 1]`).
        num_bins: int. Number of bins. Defaults to `10`.

    Returns:
        float; NaN for empty input.
    """
    if isinstance(num_bins, bool) or not isinstance(num_bins, (int, np.integer)) \
            or num_bins < 1:
        raise ValueError(f"num_bins must be an integer >= 1, got {num_bins!r}.")
    y_true, y_pred = _as_1d(y_true, "y_true"), _as_1d(y_pred, "y_pred")
    _check_same_length(y_true, y_pred)
    if len(y_true) == 0:
        return float("nan")
    y_pred = np.clip(y_pred, 0.0, 1.0)
    bins = np.minimum((y_pred * num_bins).astype("int64"), num_bins - 1)
    counts = np.bincount(bins, minlength=num_bins)
    label_sums = np.bincount(bins, weights=y_true, minlength=num_bins)
    pred_sums = np.bincount(bins, weights=y_pred, minlength=num_bins)
    used = counts > 0
    gaps = np.abs(label_sums[used] - pred_sums[used]) / counts[used]
    return float(np.sum(counts[used] / len(y_true) * gaps))


def group_auc(y_true, y_pred, groups):
    """GAUC: impression-weighted mean of the AUC within each group.

    A group (typically a user) counts only when its examples hold both a
    positive and a negative label, since AUC is undefined otherwise:

        GAUC = sum_g n_g * AUC_g / sum_g n_g   over groups with both classes,

    where `n_g` is the number of examples (impressions) of group `g`
    (Zhou et al., KDD 2018, "Deep Interest Network for Click-Through Rate
    Prediction", eq. 9; Zhu et al., KDD 2017). Unlike the global AUC it
    only compares items shown to the same user, which is what a per-user
    ranking needs.

    Each `AUC_g` is the Mann-Whitney statistic, exactly what
    `sklearn.metrics.roc_auc_score` returns (tied scores count one half):
    `(sum of positive ranks - P (P + 1) / 2) / (P N)` with ranks averaged
    over ties within the group. Ranks of all groups are computed in one
    vectorised pandas pass, so millions of rows and users take seconds.
    Examples whose group is missing (NaN/None) are left out.

    Args:
        y_true: array `(n,)` of 0/1 labels.
        y_pred: array `(n,)` of scores.
        groups: array `(n,)` of group ids (any hashable values).

    Returns:
        `(gauc, num_groups)`: the float (NaN when no group has both
        classes) and the number of groups it averages over.
    """
    y_true, y_pred = _as_1d(y_true, "y_true"), _as_1d(y_pred, "y_pred")
    groups = np.asarray(groups)
    if groups.ndim != 1:
        raise ValueError(f"groups must be one-dimensional, got shape {groups.shape}.")
    _check_same_length(y_true, y_pred)
    if len(groups) != len(y_true):
        raise ValueError(
            f"groups has {len(groups)} entries but there are {len(y_true)} "
            f"labels; pass one group id per example.")
    frame = pd.DataFrame({"group": groups, "label": y_true, "score": y_pred})
    frame = frame[frame["group"].notna()]
    frame["rank"] = frame.groupby("group", sort=False)["score"].rank(method="average")
    frame["positive_rank"] = frame["rank"] * frame["label"]
    per_group = frame.groupby("group", sort=False).agg(
        count=("label", "size"), positives=("label", "sum"),
        positive_rank=("positive_rank", "sum"))
    negatives = per_group["count"] - per_group["positives"]
    usable = (per_group["positives"] > 0) & (negatives > 0)
    if not usable.any():
        return float("nan"), 0
    per_group, negatives = per_group[usable], negatives[usable]
    positives = per_group["positives"]
    group_aucs = ((per_group["positive_rank"] - positives * (positives + 1) / 2)
                  / (positives * negatives))
    gauc = np.average(group_aucs, weights=per_group["count"])
    return float(gauc), int(usable.sum())


def binary_metrics(y_true, y_pred, groups=None, num_bins=10):
    """Every binary metric as a dict (the columns of `mtrec.evaluate`).

    Keys: `count`, `auc`, `logloss`, `calibration` (PCOC), `ece`,
    `positive_rate`, `mean_prediction`; with `groups`, also `gauc` and
    `gauc_groups` (the number of groups with both classes).
    """
    y_true, y_pred = _as_1d(y_true, "y_true"), _as_1d(y_pred, "y_pred")
    row = {"count": len(y_true), "auc": auc(y_true, y_pred)}
    if groups is not None:
        row["gauc"], row["gauc_groups"] = group_auc(y_true, y_pred, groups)
    row.update(logloss=binary_logloss(y_true, y_pred),
               calibration=calibration(y_true, y_pred),
               ece=expected_calibration_error(y_true, y_pred, num_bins),
               positive_rate=float(y_true.mean()) if len(y_true) else float("nan"),
               mean_prediction=float(y_pred.mean()) if len(y_pred) else float("nan"))
    return row


# --------------------------------------------------------------------------
# regression
# --------------------------------------------------------------------------
def rmse(y_true, y_pred):
    """Root mean squared error (scikit-learn); NaN without examples."""
    if len(y_true) == 0:
        return float("nan")
    return float(np.sqrt(skm.mean_squared_error(y_true, y_pred)))


def mae(y_true, y_pred):
    """Mean absolute error (scikit-learn); NaN without examples."""
    if len(y_true) == 0:
        return float("nan")
    return float(skm.mean_absolute_error(y_true, y_pred))


def regression_metrics(y_true, y_pred):
    """`count`, `rmse` and `mae` as a dict."""
    y_true, y_pred = _as_1d(y_true, "y_true"), _as_1d(y_pred, "y_pred")
    _check_same_length(y_true, y_pred)
    return {"count": len(y_true), "rmse": rmse(y_true, y_pred),
            "mae": mae(y_true, y_pred)}


# --------------------------------------------------------------------------
# multiclass
# --------------------------------------------------------------------------
def _class_probabilities(y_true, y_prob):
    y_true = np.asarray(y_true, dtype="float64")
    y_prob = np.asarray(y_prob, dtype="float64")
    if y_prob.ndim != 2:
        raise ValueError(
            f"Multiclass predictions must be (examples, classes), got shape "
            f"{y_prob.shape}.")
    _check_same_length(y_true, y_prob)
    num_classes = y_prob.shape[1]
    if len(y_true) and (np.any(y_true != np.round(y_true)) or y_true.min() < 0
                        or y_true.max() >= num_classes):
        raise ValueError(
            f"Multiclass labels must be integers in [0, {num_classes}), got "
            f"values from {y_true.min()} to {y_true.max()}.")
    return y_true.astype("int64"), y_prob


def accuracy(y_true, y_prob):
    """Share of examples whose most probable class is the label; NaN without
    examples."""
    y_true, y_prob = _class_probabilities(y_true, y_prob)
    if len(y_true) == 0:
        return float("nan")
    return float(skm.accuracy_score(y_true, y_prob.argmax(axis=1)))


def top_k_accuracy(y_true, y_prob, k):
    """Share of examples whose label is among the `k` most probable classes
    (scikit-learn's `top_k_accuracy_score`); 1.0 when `k >= num_classes`."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}.")
    y_true, y_prob = _class_probabilities(y_true, y_prob)
    num_classes = y_prob.shape[1]
    if len(y_true) == 0:
        return float("nan")
    if k >= num_classes:
        return 1.0
    # scikit-learn takes the positive class's score alone for two classes
    scores = y_prob[:, 1] if num_classes == 2 else y_prob
    return float(skm.top_k_accuracy_score(y_true, scores, k=int(k),
                                          labels=np.arange(num_classes)))


def multiclass_logloss(y_true, y_prob):
    """Mean categorical cross-entropy in nats (scikit-learn); probabilities
    clipped to `[1e-7, 1]` and renormalised per row."""
    y_true, y_prob = _class_probabilities(y_true, y_prob)
    if len(y_true) == 0:
        return float("nan")
    y_prob = np.clip(y_prob, EPSILON, 1.0)
    y_prob = y_prob / y_prob.sum(axis=1, keepdims=True)
    return float(skm.log_loss(y_true, y_prob, labels=np.arange(y_prob.shape[1])))


def multiclass_metrics(y_true, y_prob, top_k=(1, 3)):
    """`count`, `accuracy`, `logloss` and `top_{k}_accuracy` per k, as a dict."""
    row = {"count": len(y_true), "accuracy": accuracy(y_true, y_prob),
           "logloss": multiclass_logloss(y_true, y_prob)}
    for k in top_k:
        row[f"top_{k}_accuracy"] = top_k_accuracy(y_true, y_prob, k)
    return row
