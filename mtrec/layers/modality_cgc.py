"""A CGC level whose shared experts are grouped by modality."""

import numpy as np
import keras
from keras import ops

from mtrec.layers.expert_gates import ExpertGates
from mtrec.layers.experts import Experts
from mtrec.layers.modality_experts import ModalityExperts


@keras.saving.register_keras_serializable(package="mtrec.layers")
class ModalityCGC(keras.layers.Layer):
    """Customized Gate Control with modality expert groups.

    Each task keeps `num_specific_experts` experts of its own, which read
    all features; the shared experts come in one group of
    `num_shared_experts` per modality (`ModalityExperts`: a group reads its
    modality plus the shared tabular features). Task t's gate mixes its
    own experts and every modality group; with `output_shared=True` (the
    first level of a multi-level PLE) one more gate mixes all experts into
    the shared input of the next level. All gates read all features.

    Args:
        num_tasks: int. Number of tasks.
        modalities: list of str. Group names, in input order.
        num_specific_experts: int. Experts owned by each task (may be 0).
        num_shared_experts: int. Shared experts per modality group (>= 1).
        expert_units: list of int. Widths of each expert's layers.
        output_shared: bool. Also return the shared-gate mixture.
            Defaults to `False`.
        dropout: float. Dropout inside experts. Defaults to `0.0`.

    Call arguments:
        groups: list of `len(modalities)` tensors `(batch, dim_g)`.
        return_gate_weights: bool. Also return the gate weights.

    Returns:
        list of `num_tasks` tensors `(batch, expert_units[-1])`, plus the
        shared output when `output_shared`; with `return_gate_weights`,
        also `(batch, num_gates, num_experts)`, experts ordered task 0's,
        task 1's, ..., then the modality groups (`expert_names`).

    Reference: Tang et al., RecSys 2020 (CGC); the modality grouping of the
    shared experts is mtrec's.
    """

    def __init__(self, num_tasks, modalities, num_specific_experts, num_shared_experts,
                 expert_units, output_shared=False, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if num_tasks < 1 or num_specific_experts < 0 or num_shared_experts < 1:
            raise ValueError(
                f"ModalityCGC needs num_tasks >= 1, num_specific_experts >= 0 and "
                f"num_shared_experts >= 1 (the experts of each modality group), got "
                f"num_tasks={num_tasks}, num_specific_experts={num_specific_experts}, "
                f"num_shared_experts={num_shared_experts}.")
        self.num_tasks = int(num_tasks)
        self.modalities = [str(m) for m in modalities]
        self.num_specific_experts = int(num_specific_experts)
        self.num_shared_experts = int(num_shared_experts)
        self.expert_units = [int(u) for u in expert_units]
        self.output_shared = bool(output_shared)
        self.dropout = dropout
        t, s = self.num_tasks, self.num_specific_experts
        self.specific_experts = (Experts(t * s, self.expert_units, dropout=dropout,
                                         name="specific_experts") if s else None)
        self.shared_experts = ModalityExperts(self.modalities, self.num_shared_experts,
                                              self.expert_units, dropout=dropout,
                                              name="shared_experts")
        num_experts = t * s + self.shared_experts.total_experts
        mask = np.zeros((t + int(self.output_shared), num_experts), dtype="int32")
        for task in range(t):
            mask[task, task * s:(task + 1) * s] = 1
            mask[task, t * s:] = 1
        if self.output_shared:
            mask[t, :] = 1
        self.gates = ExpertGates(mask.shape[0], num_experts, expert_mask=mask,
                                 name="gates")

    def expert_names(self, task_names):
        """`["<task>_<j>", ..., "<modality>_<j>", ...]` in gate-weight order.

        A modality group named like a task is written `shared_<modality>_<j>`.
        """
        specific = [f"{task}_{j}" for task in task_names
                    for j in range(self.num_specific_experts)]
        clash = set(self.modalities) & set(task_names)
        shared = [f"shared_{m}_{j}" if m in clash else f"{m}_{j}"
                  for m in self.modalities for j in range(self.num_shared_experts)]
        return specific + shared

    def build(self, input_shape):
        input_shape = [tuple(shape) for shape in input_shape]
        total = sum(int(shape[-1]) for shape in input_shape)
        if self.specific_experts is not None:
            self.specific_experts.build((None, total))
        self.shared_experts.build(input_shape)
        self.gates.build((None, total))
        self.built = True

    def call(self, groups, training=False, return_gate_weights=False):
        groups = list(groups)
        x = groups[0] if len(groups) == 1 else ops.concatenate(groups, axis=1)
        # (batch, modality groups * shared experts, units)
        expert_outputs = self.shared_experts(groups, training=training)
        if self.specific_experts is not None:
            # (batch, tasks * specific experts + groups * shared experts, units)
            expert_outputs = ops.concatenate(
                [self.specific_experts(x, training=training), expert_outputs], axis=1)
        mixtures, weights = self.gates(x, expert_outputs)
        outputs = [mixtures[:, g, :] for g in range(self.gates.num_gates)]
        return (outputs, weights) if return_gate_weights else outputs

    def last_layer_variables(self):
        """Kernels and biases of every expert's last layer (GradNorm's W)."""
        variables = self.shared_experts.last_layer_variables()
        if self.specific_experts is not None:
            variables += [self.specific_experts.kernels[-1], self.specific_experts.biases[-1]]
        return variables

    def get_config(self):
        return {**super().get_config(), "num_tasks": self.num_tasks,
                "modalities": self.modalities,
                "num_specific_experts": self.num_specific_experts,
                "num_shared_experts": self.num_shared_experts,
                "expert_units": self.expert_units,
                "output_shared": self.output_shared, "dropout": self.dropout}
