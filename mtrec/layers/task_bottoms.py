"""Separate bottom networks per task: the single-task baseline's backbone."""

import keras

from mtrec.layers.backbone import Backbone
from mtrec.layers.experts import Experts


@keras.saving.register_keras_serializable(package="mtrec.layers")
class TaskBottoms(Backbone, Experts):
    """One MLP per task, sharing nothing; all of them run as one batched
    op (`Experts` with one expert per task).

    Args:
        num_tasks: int. Number of tasks (and bottoms).
        units: list of int. Widths of each bottom's layers.
        dropout: float. Defaults to `0.0`.
        batch_norm: bool. Batch normalisation in every bottom (per task
            and unit; see `Experts`). Defaults to `False`.

    Call arguments:
        inputs: tensor `(batch, input_dim)` read by every bottom, or
            `(batch, num_tasks, input_dim)`: one input per task (e.g. the
            per-task embeddings of `mtrec.models.SingleTask`).

    Returns:
        list of `num_tasks` tensors `(batch, units[-1])`.
    """

    def __init__(self, num_tasks, units, dropout=0.0, batch_norm=False, **kwargs):
        # Backbone.__init__ -> Experts.__init__: the bottoms are the experts, so
        # their weights are this layer's own (as the 0.1.0 Experts backbone saved them).
        super().__init__(num_tasks, num_experts=int(num_tasks), expert_units=units,
                         dropout=dropout, batch_norm=batch_norm, **kwargs)
        self.units = self.expert_units

    def call(self, inputs, training=False, return_gate_weights=False):
        # (batch, tasks, units)
        x = Experts.call(self, inputs, training=training)
        outputs = [x[:, i, :] for i in range(self.num_tasks)]
        return (outputs, []) if return_gate_weights else outputs

    def compute_output_shape(self, input_shape):
        return [(input_shape[0], self.units[-1])] * self.num_tasks

    def get_config(self):
        config = keras.layers.Layer.get_config(self)
        return {**config, "num_tasks": self.num_tasks, "units": self.units,
                "dropout": self.dropout, "batch_norm": self.batch_norm}
