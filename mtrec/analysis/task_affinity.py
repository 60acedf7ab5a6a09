"""Inter-task affinity: how much a step on one task's loss helps each other task.

TAG (Fifty et al., NeurIPS 2021, "Efficiently Identifying Task Groupings
for Multi-Task Learning", §3) measures, during one joint training run,

    Z[i -> j] = 1 - L_j(θ_s - η ∇_θs L_i, θ_j) / L_j(θ_s, θ_j)

on each batch: the relative change of task j's loss after a lookahead SGD
step on the shared parameters `θ_s` taken with task i's gradient alone.
Positive: training on i lowers j's loss (i helps j); negative: it raises it.
Averaged over the steps of a short run, `Z` is what `group_tasks` reads.

`task_affinity` runs that measurement inside a real training run: at each
measured step it takes the lookahead for every task, restores the shared
parameters exactly, then applies the model's own update (its optimizer on
its combined loss, `train_on_batch`, loss weighting included).

Which parameters are shared: the trainable variables of the layers every
task reads before its tower, i.e. the embedding, the modality fusion (if
any) and the backbone (`shared_parameters`). This is more than
`model.shared_variables()` (only the last shared layer, GradNorm's W): a
lookahead on that layer alone would ignore the embedding tables and the
lower expert layers, where most of the sharing happens. Task-specific
parts of a backbone (MMoE's gates, CGC's task experts) are included too;
task i's gradient on task j's gate is zero, so they change nothing for
other tasks. The towers, heads and loss-weighting state are never shared.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from mtrec.data.pandas_dataset import FIT_BATCH_SIZE, from_pandas
from mtrec.models.raw_inputs import encoded_in_pipeline
from mtrec.training.losses import TaskLoss

__all__ = ["TaskAffinity", "lookahead", "shared_parameters", "task_affinity"]


@dataclasses.dataclass
class TaskAffinity:
    """What `task_affinity` measured.

    Attributes:
        matrix: np.ndarray `(T, T)`. `matrix[i, j]` is the mean lookahead
            affinity `Z[i -> j]`: rows are the source task (whose gradient
            steps), columns the target task (whose loss is measured). The
            diagonal is each task's own relative loss decrease.
        task_names: list of the `T` trained task names, in matrix order.
        gradient_cosine: np.ndarray `(T, T)`. Mean over the measured steps
            of the cosine similarity of the per-task gradients on the shared
            parameters (the cheaper signal: one backward pass per task, no
            lookahead forward passes). Symmetric, 1 on the diagonal.
        stderr: np.ndarray `(T, T)`. Standard error of each `matrix` entry
            over the measured steps (how far to trust a difference).
        num_steps: int. Training steps run.
        num_measured: int. Steps at which the lookaheads were measured.
        learning_rate: float. Step size of the lookahead.
        num_shared_parameters: int. Scalars in the shared variables.
    """

    matrix: np.ndarray
    task_names: list
    gradient_cosine: np.ndarray
    stderr: np.ndarray
    num_steps: int
    num_measured: int
    learning_rate: float
    num_shared_parameters: int

    def to_frame(self, which="affinity"):
        """`matrix` (or `gradient_cosine` with `which="gradient_cosine"`) as a
        DataFrame: index `source` task, columns `target` task."""
        values = {"affinity": self.matrix, "gradient_cosine": self.gradient_cosine,
                  "stderr": self.stderr}
        if which not in values:
            raise ValueError(f"to_frame(which=...) takes one of {list(values)}, got "
                             f"{which!r}.")
        return pd.DataFrame(values[which],
                            index=pd.Index(self.task_names, name="source"),
                            columns=pd.Index(self.task_names, name="target"))

    def plot(self, path):
        """Write two heatmaps to `path` (PNG): the affinity `Z[i -> j]`
        (rows source, columns target, values annotated) and the gradient
        cosine, each on a diverging scale centred on 0.

        Returns:
            `pathlib.Path` of the written file.
        """
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg
            from matplotlib.figure import Figure
        except ImportError as error:  # pragma: no cover - depends on the env
            raise ImportError(
                "TaskAffinity.plot needs matplotlib; install it with "
                "`pip install matplotlib`.") from error
        path = Path(path)
        n = len(self.task_names)
        side = 1.6 + 0.7 * n
        # A bare Figure on the Agg canvas: no pyplot, no global backend change.
        figure = Figure(figsize=(2 * side + 1.5, side), layout="constrained")
        FigureCanvasAgg(figure)
        axes = figure.subplots(1, 2)
        panels = [(self.matrix, "affinity Z[source -> target]", "target task"),
                  (self.gradient_cosine, "gradient cosine", "task")]
        for ax, (values, title, xlabel) in zip(axes, panels):
            finite = np.abs(values[np.isfinite(values)])
            scale = float(finite.max()) if finite.size and finite.max() > 0 else 1.0
            image = ax.imshow(values, cmap="RdBu", vmin=-scale, vmax=scale)
            for (row, col), value in np.ndenumerate(values):
                ax.text(col, row, f"{value:.3g}", ha="center", va="center", fontsize=8,
                        color="white" if abs(value) > 0.6 * scale else "black")
            ax.set_xticks(range(n), labels=self.task_names, rotation=45, ha="right",
                          fontsize=8)
            ax.set_yticks(range(n), labels=self.task_names, fontsize=8)
            ax.set_xlabel(xlabel)
            ax.set_ylabel("source task" if values is self.matrix else "task")
            ax.set_title(title, fontsize=10)
            figure.colorbar(image, ax=ax, shrink=0.8)
        figure.savefig(path, dpi=100)
        return path


def shared_parameters(model):
    """The trainable variables every task reads before its tower.

    Those of `model.embedding`, `model.modality_fusion` (when the model has
    one) and `model.backbone`, each once, in that order. See the module
    docstring for why this is wider than `model.shared_variables()`.

    Args:
        model: a built `mtrec.models.MultiTaskModel`.

    Returns:
        list of Keras variables.
    """
    seen, shared = set(), []
    for layer in (model.embedding, model.modality_fusion, model.backbone):
        if layer is None:
            continue
        for variable in layer.trainable_variables:
            if id(variable) not in seen:
                seen.add(id(variable))
                shared.append(variable)
    return shared


class _Lookahead:
    """One compiled measurement: losses before, after each task's lookahead,
    and the per-task gradient cosines, on one batch; the variables are left
    as they were."""

    def __init__(self, model, tasks, variables):
        self.model = model
        self.tasks = list(tasks)
        self.variables = list(variables)
        # Own loss objects: the model's compiled ones remember their last
        # value for the loss weighting, which a trace here must not replace.
        self.losses = [TaskLoss(t.kind) for t in self.tasks]
        self.function = tf.function(self._measure, reduce_retracing=True)

    def _task_losses(self, x, y, sample_weight):
        # training=False: no dropout noise in the comparison and no update of
        # batch-norm statistics (non-trainable state the restore would miss).
        y_pred = self.model(x, training=False)
        values = []
        for task, loss in zip(self.tasks, self.losses):
            weight = (sample_weight.get(task.name) if isinstance(sample_weight, dict)
                      else sample_weight)
            values.append(loss(y[task.name], y_pred[task.name], sample_weight=weight))
        return values

    def _measure(self, x, y, sample_weight, learning_rate):
        num_tasks = len(self.tasks)
        with tf.GradientTape(persistent=True) as tape:
            # A list, not a stack: a slice taken after the tape closes would
            # not be recorded and would have no gradient.
            before = self._task_losses(x, y, sample_weight)
        grads = []
        for i in range(num_tasks):
            g = tape.gradient(before[i], self.variables)
            # None where task i does not reach a variable (another task's
            # gate); embedding gradients come as IndexedSlices: the step and
            # the cosine need them dense.
            grads.append([tf.zeros(v.shape, v.dtype) if part is None
                          else tf.convert_to_tensor(part)
                          for v, part in zip(self.variables, g)])
        del tape
        saved = [tf.identity(v.value) for v in self.variables]
        after = []
        for i in range(num_tasks):
            for variable, g in zip(self.variables, grads[i]):
                variable.assign_sub(tf.cast(learning_rate, g.dtype) * g)
            after.append(tf.stack(self._task_losses(x, y, sample_weight)))
            # The saved values themselves: the restore is exact, not a
            # subtraction undone by an addition.
            for variable, value in zip(self.variables, saved):
                variable.assign(value)
        # (T, num_shared_parameters)
        flat = tf.stack([tf.concat([tf.reshape(tf.cast(g, "float32"), [-1]) for g in gs], 0)
                         for gs in grads])
        norms = tf.norm(flat, axis=1)
        # (T, T); a task with a zero gradient has cosine 0 with every task
        cosine = tf.matmul(flat, flat, transpose_b=True) / tf.maximum(
            tf.tensordot(norms, norms, axes=0), 1e-30)
        return tf.stack(before), tf.stack(after), cosine

    def __call__(self, x, y, sample_weight, learning_rate):
        before, after, cosine = self.function(
            x, y, sample_weight, tf.constant(learning_rate, "float32"))
        return before.numpy(), after.numpy(), cosine.numpy()


def lookahead(model, x, y, sample_weight=None, learning_rate=0.01, variables=None):
    """The lookahead measurement of one batch (the variables are left as
    they were, exactly).

    Args:
        model: a built `MultiTaskModel`.
        x: feature dict (raw or encoded) of one batch.
        y: dict `{task: (batch,) labels}`, NaN where missing.
        sample_weight: None, a `(batch,)` array or a dict `{task: (batch,)}`.
        learning_rate: float. SGD step size of the lookahead.
        variables: the variables stepped; default `shared_parameters(model)`.

    Returns:
        `(affinity, cosine, before)`: `affinity (T, T)` with
        `affinity[i, j] = 1 - L_j(after i's step) / L_j(before)` (NaN where
        `L_j(before)` is 0, e.g. no label of j in the batch), the gradient
        cosines `(T, T)` and the losses before `(T,)`, trained tasks in
        schema order.
    """
    tasks = _trained_tasks(model)
    variables = _check_variables(model, variables)
    measure = _Lookahead(model, tasks, variables)
    before, after, cosine = measure(x, y, sample_weight, float(learning_rate))
    return _relative_change(before, after), cosine, before


def _relative_change(before, after):
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(before[None, :] > 0, 1.0 - after / before[None, :], np.nan)


def task_affinity(model, data, steps=100, learning_rate=None, every=1, variables=None,
                  batch_size=FIT_BATCH_SIZE, seed=None):
    """Measure inter-task affinity (TAG) during a short joint training run.

    At every `every`-th of `steps` training steps, for each trained task i
    the shared parameters take an SGD step `θ_s - learning_rate * ∇L_i` and
    every task's loss on the same batch is compared with its loss before
    (`Z[i -> j] = 1 - L_j(after) / L_j(before)`); the parameters are then
    restored. Every step then applies the model's real update
    (`model.train_on_batch`: its optimizer on its combined loss), so the
    model trains as it would in `fit`.

    Args:
        model: a compiled `mtrec.models.MultiTaskModel` with at least two
            trained tasks. Its weights are trained by this call.
        data: a `tf.data.Dataset` of `(features, labels)` or `(features,
            labels, sample_weights)` batches (e.g. `mtrec.data.from_pandas`;
            raw or encoded features), repeated when shorter than `steps`;
            or a pandas DataFrame, batched here by `from_pandas` with
            `batch_size`, shuffled with `seed`.
        steps: int >= 1. Training steps.
        learning_rate: float > 0 or None. Lookahead step size; None: the
            optimizer's current learning rate (TAG's choice). With Adam the
            optimizer's rate is small for an SGD step and the affinities
            are small too (their ranking is what grouping reads).
        every: int >= 1. Measure at steps 0, every, 2 * every, ... (TAG
            notes that measuring every 10th step loses little).
        variables: the shared variables to step; default
            `shared_parameters(model)`.
        batch_size: int. Batch size when `data` is a DataFrame.
        seed: int or None. Shuffle seed when `data` is a DataFrame.

    Returns:
        `TaskAffinity`.
    """
    _check_count("steps", steps)
    _check_count("every", every)
    if getattr(model, "optimizer", None) is None:
        raise ValueError(f"task_affinity needs a compiled model (its optimizer makes the "
                         f"joint update); call {type(model).__name__}.compile(...) first.")
    if learning_rate is None:
        learning_rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    if not (isinstance(learning_rate, (int, float, np.floating)) and learning_rate > 0):
        raise ValueError(f"learning_rate must be a number > 0 or None (the optimizer's), "
                         f"got {learning_rate!r}.")
    tasks = _trained_tasks(model)
    variables = _check_variables(model, variables)
    if isinstance(data, pd.DataFrame):
        data = from_pandas(data, model.schema, batch_size=batch_size, shuffle=True,
                           seed=seed)
    if not isinstance(data, tf.data.Dataset):
        raise ValueError(f"task_affinity reads a tf.data.Dataset of (features, labels) "
                         f"batches or a pandas DataFrame, got {type(data).__name__}.")
    data = encoded_in_pipeline(model, data)
    measure = _Lookahead(model, tasks, variables)
    affinities, cosines = [], []
    for step, batch in enumerate(data.repeat().take(steps)):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(batch)
        if step == 0:
            _check_labels(tasks, y)
        if step % every == 0:
            before, after, cosine = measure(x, y, sample_weight, learning_rate)
            affinities.append(_relative_change(before, after))
            cosines.append(cosine)
        model.train_on_batch(x, y, sample_weight=sample_weight)
    affinities, cosines = np.stack(affinities), np.stack(cosines)
    names = [t.name for t in tasks]
    missing = np.isnan(affinities).all(axis=0)
    if missing.any():
        raise ValueError(
            f"No measured batch had a label of task(s) "
            f"{sorted({names[j] for _, j in zip(*np.nonzero(missing))})}; their losses "
            f"were 0 before every lookahead. Use larger batches or more steps.")
    counts = np.sum(~np.isnan(affinities), axis=0)
    mean = np.nanmean(affinities, axis=0)
    spread = np.sqrt(np.nansum((affinities - mean) ** 2, axis=0) / np.maximum(counts - 1, 1))
    return TaskAffinity(
        matrix=mean, task_names=names, gradient_cosine=cosines.mean(axis=0),
        stderr=spread / np.sqrt(counts), num_steps=int(steps),
        num_measured=len(affinities), learning_rate=float(learning_rate),
        num_shared_parameters=int(sum(math.prod(v.shape) for v in variables)))


def _trained_tasks(model):
    tasks = [t for t in model.schema.tasks if t.name not in model.untrained_tasks]
    if len(tasks) < 2:
        raise ValueError(f"Task affinity compares tasks: {type(model).__name__} trains "
                         f"{[t.name for t in tasks]}; it needs at least two trained tasks.")
    return tasks


def _check_variables(model, variables):
    variables = shared_parameters(model) if variables is None else list(variables)
    if not variables:
        raise ValueError(f"{type(model).__name__} has no trainable variables shared by "
                         f"its tasks (embedding, fusion, backbone), so no lookahead "
                         f"can move one task's loss through another's; pass "
                         f"variables=[...] or use a model with shared layers.")
    return variables


def _check_labels(tasks, y):
    names = [t.name for t in tasks]
    if not isinstance(y, dict) or any(n not in y for n in names):
        found = sorted(y) if isinstance(y, dict) else type(y).__name__
        raise ValueError(f"task_affinity needs batches of (features, {{task: labels}}) "
                         f"with every trained task {names}; the labels have {found}. "
                         f"Build the dataset with mtrec.data.from_pandas(df, schema).")


def _check_count(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
