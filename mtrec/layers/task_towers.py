"""One tower and output head per task."""

import keras
from keras import ops

from mtrec.layers.mlp import MLP, check_batch_norm
from mtrec.schema.task_kinds import task_kind
from mtrec.schema.tasks import TaskSpec
from mtrec.utils.names import safe_name


@keras.saving.register_keras_serializable(package="mtrec.layers")
class TaskTowers(keras.layers.Layer):
    """A small MLP tower and an output head per task.

    Heads come from the task-kind table (`mtrec.schema.task_kinds`):
    `binary` -> sigmoid probability `(batch,)`; `regression` -> linear
    `(batch,)`, or `low + (high - low) * sigmoid(z)` with an
    `output_range`; `multiclass` -> softmax `(batch, num_classes)`.

    Args:
        tasks: list of dicts `{"name", "kind", "num_classes"}`, in output
            order, each optionally with `"output_range": [low, high]`
            (kinds with `bounded_output` only, see `TaskSpec`).
        tower_units: list of int. Widths of each tower. Defaults to `[8]`.
        dropout: float. Defaults to `0.0`.
        batch_norm: bool. Batch normalisation in every tower (see `MLP`;
            never in the heads). Defaults to `False`.

    Call arguments:
        inputs: list of `len(tasks)` tensors `(batch, units)`, one per task.

    Returns:
        dict `{task_name: prediction}`.
    """

    def __init__(self, tasks, tower_units=(8,), dropout=0.0, batch_norm=False, **kwargs):
        super().__init__(**kwargs)
        self.tasks = [_task_entry(t) for t in tasks]
        self.tower_units = [int(u) for u in tower_units]
        self.dropout = dropout
        self.batch_norm = check_batch_norm(batch_norm)
        self.towers = [MLP(self.tower_units, dropout=dropout, batch_norm=self.batch_norm,
                           dtype=self.dtype_policy, name=f"tower_{safe_name(t['name'])}")
                       for t in self.tasks]
        self._kinds = [task_kind(t["kind"]) for t in self.tasks]
        self.heads = [keras.layers.Dense(kind.head_units(t["num_classes"]),
                                         activation=kind.head_activation,
                                         dtype=self.dtype_policy,
                                         name=f"head_{safe_name(t['name'])}")
                      for t, kind in zip(self.tasks, self._kinds)]

    def build(self, input_shape):
        shapes = list(input_shape)
        for tower, head, shape in zip(self.towers, self.heads, shapes):
            tower.build(tuple(shape))
            head.build(tower.compute_output_shape(tuple(shape)))
        self.built = True

    def call(self, inputs, training=False):
        if len(inputs) != len(self.tasks):
            raise ValueError(f"TaskTowers expects {len(self.tasks)} inputs "
                             f"(one per task), got {len(inputs)}.")
        outputs = {}
        for task, kind, tower, head, x in zip(self.tasks, self._kinds, self.towers,
                                              self.heads, inputs):
            y = head(tower(x, training=training))
            if "output_range" in task:
                low, high = task["output_range"]
                y = low + (high - low) * ops.sigmoid(y)
            # (batch, num_classes) per class, else (batch, 1) -> (batch,)
            outputs[task["name"]] = y if kind.per_class else ops.squeeze(y, -1)
        return outputs

    def get_config(self):
        return {**super().get_config(), "tasks": self.tasks,
                "tower_units": self.tower_units, "dropout": self.dropout,
                "batch_norm": self.batch_norm}


def _task_entry(task):
    """One task of `TaskTowers(tasks=...)` as the layer stores it (and its
    config holds): `output_range` only when set, so configs without one are
    what they always were."""
    entry = dict(name=task["name"], kind=task["kind"],
                 num_classes=int(task.get("num_classes") or 1))
    if task.get("output_range") is not None:
        spec = TaskSpec(task["name"], task["kind"], output_range=task["output_range"])
        entry["output_range"] = list(spec.output_range)
    return entry
