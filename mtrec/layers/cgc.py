"""Customized Gate Control: task-specific plus shared experts (one PLE level)."""

import numpy as np
import keras
from keras import ops

from mtrec.layers.backbone import Backbone
from mtrec.layers.expert_gates import ExpertGates, task_expert_mask
from mtrec.layers.experts import Experts
from mtrec.layers.grouped_experts import GroupedExperts, concat_groups
from mtrec.layers.mlp import check_batch_norm


@keras.saving.register_keras_serializable(package="mtrec.layers")
class CGCBackbone(Backbone):
    """Each task has its own experts; all tasks share some more.

    Task t's gate mixes its `num_specific_experts` experts and the shared
    ones. With `output_shared=True` (the inner levels of PLE) a further
    gate mixes *all* experts into a shared output for the next level.
    With `modalities`, the shared experts come as `num_shared_experts` per
    modality group (`GroupedExperts`: group g's experts read that modality
    plus the shared tabular features) while task experts and gates read
    all features; with one group this computes what the plain layer does.

    Args:
        num_tasks: int. Number of tasks.
        num_specific_experts: int. Experts owned by each task.
        num_shared_experts: int. Experts shared by all tasks (per modality
            group when `modalities` is given).
        expert_units: list of int. Widths of each expert's layers.
        modalities: list of str, or None. Group names, in input order.
            Defaults to `None`.
        dropout: float. Dropout inside experts. Defaults to `0.0`.
        batch_norm: bool. Batch normalisation inside the experts (per
            expert and unit; see `Experts`). Defaults to `False`.
        output_shared: bool. Also return the shared-gate mixture (PLE's
            inner levels). Defaults to `False`.

    Call arguments:
        inputs: tensor `(batch, input_dim)` seen by every expert and gate;
            with `modalities`, the list of group tensors `(batch, dim_g)`;
            in the inner levels of PLE, a list of `num_tasks + 1` tensors
            `(batch, input_dim)`: each task's input, then the shared input.
        return_gate_weights: bool. Also return the gate weights.

    Returns:
        list of `num_tasks` tensors `(batch, expert_units[-1])`, plus the
        shared output when `output_shared`; with `return_gate_weights`,
        also `[weights]`, one `(batch, num_gates, num_experts)` tensor,
        experts ordered task 0's, task 1's, ..., then the shared ones.

    Reference: Tang et al., RecSys 2020, "Progressive Layered Extraction
    (PLE): A Novel Multi-Task Learning (MTL) Model for Personalized
    Recommendations"; the modality grouping of the shared experts is mtrec's.
    """

    def __init__(self, num_tasks, num_specific_experts, num_shared_experts, expert_units,
                 modalities=None, dropout=0.0, output_shared=False, batch_norm=False,
                 **kwargs):
        super().__init__(num_tasks, modalities=modalities, **kwargs)
        if num_specific_experts < 0 or num_shared_experts < 0:
            raise ValueError(
                f"CGCBackbone needs non-negative expert counts, got num_specific_experts="
                f"{num_specific_experts}, num_shared_experts={num_shared_experts}.")
        if modalities is not None and num_shared_experts < 1:
            raise ValueError(
                f"CGCBackbone over modalities {self.modalities} needs num_shared_experts "
                f">= 1 (the experts of each modality group), got {num_shared_experts}.")
        if num_specific_experts + num_shared_experts < 1:
            raise ValueError("CGCBackbone needs at least one specific or shared expert.")
        self.num_specific_experts = int(num_specific_experts)
        self.num_shared_experts = int(num_shared_experts)
        self.expert_units = [int(u) for u in expert_units]
        self.dropout = dropout
        self.output_shared = bool(output_shared)
        self.batch_norm = check_batch_norm(batch_norm)
        t, s, h = self.num_tasks, self.num_specific_experts, self.num_shared_experts
        if self.modalities is None:
            # One bank: task 0's, ..., task t-1's, then the shared experts.
            self.experts = Experts(t * s + h, self.expert_units, dropout=dropout,
                                   batch_norm=self.batch_norm, dtype=self.dtype_policy,
                                   name="experts")
            # Which input (task index, or t for the shared input) each expert
            # reads when the level takes one input per task (PLE's inner levels).
            self._expert_group = np.array([i for i in range(t) for _ in range(s)] + [t] * h,
                                          dtype="int32")
            num_shared = h
        else:
            self.specific_experts = (Experts(t * s, self.expert_units, dropout=dropout,
                                             batch_norm=self.batch_norm,
                                             dtype=self.dtype_policy,
                                             name="specific_experts") if s else None)
            self.shared_experts = GroupedExperts(self.modalities, h, self.expert_units,
                                                 dropout=dropout, batch_norm=self.batch_norm,
                                                 dtype=self.dtype_policy,
                                                 name="shared_experts")
            num_shared = self.shared_experts.total_experts
        mask = task_expert_mask(t, s, num_shared, self.output_shared)
        self.gates = ExpertGates(mask.shape[0], mask.shape[1], expert_mask=mask,
                                 dtype=self.dtype_policy, name="gates")

    def build(self, input_shape):
        if self.modalities is not None:
            input_shape = [tuple(shape) for shape in input_shape]
            total = (None, sum(int(shape[-1]) for shape in input_shape))
            if self.specific_experts is not None:
                self.specific_experts.build(total)
            self.shared_experts.build(input_shape)
            self.gates.build(total)
        else:
            if isinstance(input_shape, (list, tuple)) and input_shape and \
                    isinstance(input_shape[0], (list, tuple)):
                input_shape = input_shape[0]
            self.experts.build(tuple(input_shape))
            self.gates.build(tuple(input_shape))
        self.built = True

    def call(self, inputs, training=False, return_gate_weights=False):
        if self.modalities is not None:
            expert_outputs, gate_inputs = self._grouped_experts(inputs, training)
        elif isinstance(inputs, (list, tuple)):
            if len(inputs) != self.num_tasks + 1:
                raise ValueError(
                    f"CGCBackbone takes one tensor or a list of num_tasks + 1 = "
                    f"{self.num_tasks + 1} tensors, got {len(inputs)}.")
            # (batch, tasks + 1, in)
            stacked = ops.stack(list(inputs), axis=1)
            # (batch, experts, in): each expert reads its group's input
            expert_outputs = self.experts(ops.take(stacked, self._expert_group, axis=1),
                                          training=training)
            # (batch, gates, in): task gates read their task's input, the
            # shared gate the shared input
            gate_inputs = stacked[:, : self.gates.num_gates, :]
        else:
            expert_outputs = self.experts(inputs, training=training)
            gate_inputs = inputs
        mixtures, weights = self.gates(gate_inputs, expert_outputs)
        outputs = [mixtures[:, g, :] for g in range(self.gates.num_gates)]
        return (outputs, [weights]) if return_gate_weights else outputs

    def _grouped_experts(self, groups, training):
        """`(expert outputs (batch, experts, units), gate input (batch, in))`."""
        x = concat_groups(groups)
        # (batch, modality groups * shared experts, units)
        expert_outputs = self.shared_experts(list(groups), training=training)
        if self.specific_experts is not None:
            # (batch, tasks * specific experts + groups * shared experts, units)
            expert_outputs = ops.concatenate(
                [self.specific_experts(x, training=training), expert_outputs], axis=1)
        return expert_outputs, x

    def level_structure(self, task_names):
        """`(gate_names, expert_names)` of this level."""
        task_names = list(task_names)
        specific = [f"{task}_{j}" for task in task_names
                    for j in range(self.num_specific_experts)]
        if self.modalities is None:
            shared = [f"shared_{j}" for j in range(self.num_shared_experts)]
        else:
            # a modality group named like a task is written shared_<modality>_<j>
            clash = set(self.modalities) & set(task_names)
            shared = [f"shared_{m}_{j}" if m in clash else f"{m}_{j}"
                      for m in self.modalities for j in range(self.num_shared_experts)]
        return task_names + (["shared"] if self.output_shared else []), specific + shared

    def gate_structure(self, task_names):
        return [("experts", *self.level_structure(task_names))]

    def gate_masks(self):
        return [np.asarray(self.gates.expert_mask, dtype=bool)]

    def shared_variables(self):
        """Kernels and biases of every expert's last layer."""
        if self.modalities is None:
            return self.experts.last_layer_variables()
        variables = self.shared_experts.last_layer_variables()
        if self.specific_experts is not None:
            variables += self.specific_experts.last_layer_variables()
        return variables

    def get_config(self):
        return {**super().get_config(),
                "num_specific_experts": self.num_specific_experts,
                "num_shared_experts": self.num_shared_experts,
                "expert_units": self.expert_units, "dropout": self.dropout,
                "output_shared": self.output_shared, "batch_norm": self.batch_norm}
