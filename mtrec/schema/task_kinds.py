"""The task-kind table: everything that differs between "binary",
"regression" and "multiclass" tasks, in one place.

Towers (`mtrec.layers.TaskTowers`), losses (`mtrec.training.TaskLoss`),
metrics (`default_metrics`), callbacks (early stopping, the mean validation
score), loss weighting (`UncertaintyWeighting`), label checks (`Schema`) and
reports (`mtrec.evaluate`) read `task_kind(kind)` instead of switching on
the string. A new task kind is one `TaskKind` entry in `TASK_KIND_TABLE`
plus the graph code its entries name (a loss, a Keras metric).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from keras import ops

from mtrec.utils.messages import plain
from mtrec.utils.suggestions import closest

__all__ = ["TASK_KINDS", "TASK_KIND_TABLE", "TaskKind", "task_kind"]

_EPSILON = 1e-7


@dataclasses.dataclass(frozen=True)
class TaskKind:
    """What one task kind does.

    Attributes:
        name: str. The kind, as `TaskSpec.kind` spells it.
        head_activation: str or None. Activation of the output head.
        per_class: bool. The prediction is `(batch, num_classes)` (one
            probability per class) instead of `(batch,)`; `num_classes` is
            learned in `Schema.adapt`.
        loss: `(labels, y_pred) -> (batch,)` per-example loss; `labels`
            float32 `(batch,)` with missing labels already replaced by 0.
        metrics: `() -> list of keras.metrics.Metric`, the streaming metrics
            `compile()` attaches (they skip missing labels).
        monitor: str. Name of the metric (one of `metrics()`) that early
            stopping and the mean validation score read.
        monitor_mode: `"max"` or `"min"`: whether a larger `monitor` is better.
        evaluate: `(y_true, y_pred, groups, top_k, num_bins) -> dict`, the
            exact metrics of `mtrec.evaluate` over labelled examples.
        check_labels: `(task, observed) -> None`, raising ValueError when a
            float64 Series of (non-missing) labels does not fit the kind.
        uncertainty_scale: float. Factor of `exp(-s)` in uncertainty
            weighting (Kendall et al.: 1/2 for a Gaussian likelihood, 1 for
            a classification likelihood).
        bounded_output: bool. Whether `TaskSpec.output_range` may bound
            the head (`low + (high - low) * sigmoid(z)`); only a head
            without an activation of its own can be bounded so.
    """

    name: str
    head_activation: str | None
    per_class: bool
    loss: Callable
    metrics: Callable
    monitor: str
    monitor_mode: str
    evaluate: Callable
    check_labels: Callable
    uncertainty_scale: float = 1.0
    bounded_output: bool = False

    def head_units(self, num_classes=1):
        """Width of the output head."""
        return int(num_classes) if self.per_class else 1

    def score(self, value):
        """`value` of `monitor` as a score where larger is better."""
        return value if self.monitor_mode == "max" else -value


# -- per-example losses (probabilities in, nats out) --------------------------
def _binary_crossentropy(labels, y_pred):
    p = ops.clip(ops.reshape(y_pred, (-1,)), _EPSILON, 1.0 - _EPSILON)
    return -(labels * ops.log(p) + (1.0 - labels) * ops.log(1.0 - p))


def _squared_error(labels, y_pred):
    return ops.square(labels - ops.reshape(y_pred, (-1,)))


def _sparse_crossentropy(labels, y_pred):
    p = ops.clip(y_pred, _EPSILON, 1.0)
    # (batch, 1): the probability of each example's label
    picked = ops.take_along_axis(p, ops.expand_dims(ops.cast(labels, "int32"), -1), axis=-1)
    return -ops.log(ops.squeeze(picked, -1))


# -- streaming Keras metrics ------------------------------------------------
# Imported on call: mtrec.training imports this table.
def _auc():
    from mtrec.training.metrics import MaskedAUC
    return [MaskedAUC(name="auc", num_thresholds=1000)]


def _rmse():
    from mtrec.training.metrics import MaskedRMSE
    return [MaskedRMSE(name="rmse")]


def _accuracy():
    from mtrec.training.metrics import MaskedAccuracy
    return [MaskedAccuracy(name="accuracy")]


# -- exact evaluation metrics ------------------------------------------------
# Imported on call: mtrec.evaluation imports the data pipeline, which
# imports the schema.
def _evaluate_binary(y_true, y_pred, groups=None, top_k=(1, 3), num_bins=10):
    from mtrec.evaluation.metrics import binary_metrics
    return binary_metrics(y_true, y_pred, groups=groups, num_bins=num_bins)


def _evaluate_regression(y_true, y_pred, groups=None, top_k=(1, 3), num_bins=10):
    from mtrec.evaluation.metrics import regression_metrics
    return regression_metrics(y_true, y_pred)


def _evaluate_multiclass(y_true, y_pred, groups=None, top_k=(1, 3), num_bins=10):
    from mtrec.evaluation.metrics import multiclass_metrics
    return multiclass_metrics(y_true, y_pred, top_k=top_k)


# -- label checks ------------------------------------------------------------
def _check_binary(task, observed):
    wrong = observed[~observed.isin([0, 1])]
    if len(wrong):
        raise ValueError(
            f"Label column '{task.label}' of binary task '{task.name}' "
            f"has values other than 0/1 (e.g. {plain(wrong.iloc[0])!r}); map it "
            f"to 0/1 or declare the task 'regression'/'multiclass'.")


def _check_regression(task, observed):
    """Any finite number is a regression label (finiteness is checked for all kinds)."""


def _check_multiclass(task, observed):
    wrong = observed[(observed < 0) | (observed != observed.round())]
    if len(wrong) or (task.num_classes and (observed >= task.num_classes).any()):
        raise ValueError(
            f"Label column '{task.label}' of multiclass task "
            f"'{task.name}' must hold integers in [0, num_classes); map "
            f"class names to integers first.")


#: Every task kind, by name.
TASK_KIND_TABLE = {kind.name: kind for kind in (
    TaskKind("binary", head_activation="sigmoid", per_class=False,
             loss=_binary_crossentropy, metrics=_auc, monitor="auc", monitor_mode="max",
             evaluate=_evaluate_binary, check_labels=_check_binary),
    TaskKind("regression", head_activation=None, per_class=False,
             loss=_squared_error, metrics=_rmse, monitor="rmse", monitor_mode="min",
             evaluate=_evaluate_regression, check_labels=_check_regression,
             uncertainty_scale=0.5, bounded_output=True),
    TaskKind("multiclass", head_activation="softmax", per_class=True,
             loss=_sparse_crossentropy, metrics=_accuracy, monitor="accuracy",
             monitor_mode="max", evaluate=_evaluate_multiclass,
             check_labels=_check_multiclass),
)}

TASK_KINDS = tuple(TASK_KIND_TABLE)


def task_kind(kind):
    """The `TaskKind` entry of `kind` (a name such as `"binary"`, or a TaskKind).

    Raises:
        ValueError naming the kinds, with the closest as a suggestion.
    """
    if isinstance(kind, TaskKind):
        return kind
    entry = TASK_KIND_TABLE.get(kind) if isinstance(kind, str) else None
    if entry is None:
        match = closest(kind, TASK_KINDS)
        raise ValueError(
            f"Unknown task kind {kind!r}; expected one of {list(TASK_KINDS)}."
            f"{f' Did you mean {match!r}?' if match else ''}")
    return entry
