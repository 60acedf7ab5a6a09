"""Customized Gate Control: task-specific plus shared experts (one PLE level)."""

import numpy as np
import keras
from keras import ops

from mtrec.layers.expert_gates import ExpertGates
from mtrec.layers.experts import Experts


@keras.saving.register_keras_serializable(package="mtrec.layers")
class CGC(keras.layers.Layer):
    """Each task has its own experts; all tasks share some more.

    Task t's gate mixes its `num_specific_experts` experts and the
    `num_shared_experts` shared ones. With `output_shared=True` (the inner
    levels of PLE) a further gate mixes *all* experts into a shared output
    for the next level. All experts run in one batched op.

    Args:
        num_tasks: int. Number of tasks.
        num_specific_experts: int. Experts owned by each task.
        num_shared_experts: int. Experts shared by all tasks.
        expert_units: list of int. Widths of each expert's layers.
        output_shared: bool. Also return the shared-gate mixture.
            Defaults to `False`.
        dropout: float. Dropout inside experts. Defaults to `0.0`.

    Call arguments:
        inputs: tensor `(batch, input_dim)` seen by every expert and gate
            (the first level), or a list of `num_tasks + 1` tensors
            `(batch, input_dim)`: each task's input, then the shared input
            (inner levels of PLE).
        return_gate_weights: bool. Also return the gate weights.

    Returns:
        list of `num_tasks` tensors `(batch, expert_units[-1])`, plus the
        shared output when `output_shared`; with `return_gate_weights`,
        also `(batch, num_gates, num_experts)` where experts are ordered
        task 0's, task 1's, ..., then the shared ones.

    Reference: Tang et al., RecSys 2020, "Progressive Layered Extraction
    (PLE): A Novel Multi-Task Learning (MTL) Model for Personalized
    Recommendations".
    """

    def __init__(self, num_tasks, num_specific_experts, num_shared_experts,
                 expert_units, output_shared=False, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if num_tasks < 1 or num_specific_experts < 0 or num_shared_experts < 0:
            raise ValueError(
                f"CGC needs num_tasks >= 1 and non-negative expert counts, got "
                f"num_tasks={num_tasks}, num_specific_experts="
                f"{num_specific_experts}, num_shared_experts={num_shared_experts}.")
        if num_specific_experts + num_shared_experts < 1:
            raise ValueError("CGC needs at least one specific or shared expert.")
        self.num_tasks = int(num_tasks)
        self.num_specific_experts = int(num_specific_experts)
        self.num_shared_experts = int(num_shared_experts)
        self.expert_units = [int(u) for u in expert_units]
        self.output_shared = bool(output_shared)
        self.dropout = dropout

        s, h, t = self.num_specific_experts, self.num_shared_experts, self.num_tasks
        num_experts = t * s + h
        # Which input (task index, or t for the shared input) each expert reads.
        self._expert_group = np.array([i for i in range(t) for _ in range(s)] + [t] * h,
                                      dtype="int32")
        mask = np.zeros((t + int(self.output_shared), num_experts), dtype="int32")
        for task in range(t):
            mask[task, task * s:(task + 1) * s] = 1
            mask[task, t * s:] = 1
        if self.output_shared:
            mask[t, :] = 1
        self.experts = Experts(num_experts, self.expert_units, dropout=dropout,
                               name="experts")
        self.gates = ExpertGates(mask.shape[0], num_experts, expert_mask=mask,
                                 name="gates")

    def build(self, input_shape):
        if isinstance(input_shape, (list, tuple)) and input_shape and \
                isinstance(input_shape[0], (list, tuple)):
            input_shape = input_shape[0]
        self.experts.build(tuple(input_shape))
        self.gates.build(tuple(input_shape))
        self.built = True

    def call(self, inputs, training=False, return_gate_weights=False):
        if isinstance(inputs, (list, tuple)):
            if len(inputs) != self.num_tasks + 1:
                raise ValueError(
                    f"CGC takes one tensor or a list of num_tasks + 1 = "
                    f"{self.num_tasks + 1} tensors, got {len(inputs)}.")
            # (batch, tasks + 1, in)
            stacked = ops.stack(list(inputs), axis=1)
            # (batch, experts, in): each expert reads its group's input
            expert_inputs = ops.take(stacked, self._expert_group, axis=1)
            # (batch, gates, in): task gates read their task's input, the
            # shared gate the shared input
            gate_inputs = stacked[:, : self.gates.num_gates, :]
        else:
            expert_inputs = gate_inputs = inputs
        expert_outputs = self.experts(expert_inputs, training=training)
        mixtures, weights = self.gates(gate_inputs, expert_outputs)
        outputs = [mixtures[:, g, :] for g in range(self.gates.num_gates)]
        return (outputs, weights) if return_gate_weights else outputs

    def get_config(self):
        return {**super().get_config(), "num_tasks": self.num_tasks,
                "num_specific_experts": self.num_specific_experts,
                "num_shared_experts": self.num_shared_experts,
                "expert_units": self.expert_units,
                "output_shared": self.output_shared, "dropout": self.dropout}
