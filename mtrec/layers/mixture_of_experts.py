"""Experts shared by all tasks, mixed per task by softmax gates (OMoE/MMoE)."""

import numpy as np
import keras

from mtrec.layers.backbone import Backbone
from mtrec.layers.expert_gates import ExpertGates
from mtrec.layers.experts import Experts
from mtrec.layers.grouped_experts import GroupedExperts, concat_groups
from mtrec.layers.mlp import check_batch_norm


@keras.saving.register_keras_serializable(package="mtrec.layers")
class MixtureOfExperts(Backbone):
    """Experts shared by all tasks, mixed per task by a softmax gate.

    With `num_gates=1` this is OMoE (one mixture copied to every task);
    with one gate per task (the default), MMoE. With `modalities`, the
    experts come as `num_experts` per modality group (`GroupedExperts`:
    group g's experts read that modality plus the shared tabular
    features); every gate reads all features and mixes across all groups,
    so the gate weights summed per group say how much each task relies on
    each modality. With one group this computes what the plain layer does.

    Args:
        num_tasks: int. Number of task tensors returned.
        num_experts: int. Number of experts (per modality group when
            `modalities` is given).
        expert_units: list of int. Widths of each expert's layers.
        num_gates: int. 1 (OMoE) or `num_tasks` (MMoE). Defaults to
            `num_tasks`.
        modalities: list of str, or None. Group names, in input order
            (`FeatureEmbedding.modalities`). Defaults to `None`.
        dropout: float. Dropout inside experts. Defaults to `0.0`.
        batch_norm: bool. Batch normalisation inside the experts (per
            expert and unit; see `Experts`). Defaults to `False`.

    Call arguments:
        inputs: tensor `(batch, input_dim)`, or with `modalities` a list of
            `len(modalities)` tensors `(batch, dim_g)`.
        return_gate_weights: bool. Also return the gate weights.

    Returns:
        list of `num_tasks` tensors `(batch, expert_units[-1])`; with
        `return_gate_weights`, also `[weights]`, one `(batch, num_gates,
        total_experts)` tensor.

    Reference: Ma et al., KDD 2018, "Modeling Task Relationships in
    Multi-task Learning with Multi-gate Mixture-of-Experts".
    """

    def __init__(self, num_tasks, num_experts, expert_units, num_gates=None,
                 modalities=None, dropout=0.0, batch_norm=False, **kwargs):
        super().__init__(num_tasks, modalities=modalities, **kwargs)
        self.num_experts = int(num_experts)
        self.expert_units = [int(u) for u in expert_units]
        self.num_gates = self.num_tasks if num_gates is None else int(num_gates)
        if self.num_gates not in (1, self.num_tasks):
            raise ValueError(
                f"num_gates must be 1 (OMoE) or num_tasks ({self.num_tasks}, MMoE), "
                f"got {num_gates}.")
        self.dropout = dropout
        self.batch_norm = check_batch_norm(batch_norm)
        if self.modalities is None:
            self.experts = Experts(self.num_experts, self.expert_units, dropout=dropout,
                                   batch_norm=self.batch_norm, dtype=self.dtype_policy,
                                   name="experts")
            total = self.num_experts
        else:
            self.experts = GroupedExperts(self.modalities, self.num_experts,
                                          self.expert_units, dropout=dropout,
                                          batch_norm=self.batch_norm,
                                          dtype=self.dtype_policy, name="experts")
            total = self.experts.total_experts
        self.gates = self.make_gates(total)

    def make_gates(self, num_experts):
        """The gates over the `num_experts` experts: `num_gates` softmax
        gates (`ExpertGates`); a variant overrides this (`DSelectKBackbone`)."""
        return ExpertGates(self.num_gates, num_experts, dtype=self.dtype_policy,
                           name="gates")

    def build(self, input_shape):
        if self.modalities is None:
            self.experts.build(tuple(input_shape))
            self.gates.build(tuple(input_shape))
        else:
            input_shape = [tuple(shape) for shape in input_shape]
            self.experts.build(input_shape)
            self.gates.build((None, sum(int(shape[-1]) for shape in input_shape)))
        self.built = True

    def call(self, inputs, training=False, return_gate_weights=False):
        # (batch, experts, units)
        expert_outputs = self.experts(inputs, training=training)
        x = inputs if self.modalities is None else concat_groups(inputs)
        mixtures, weights = self.gates(x, expert_outputs)
        outputs = [mixtures[:, min(i, self.num_gates - 1), :]
                   for i in range(self.num_tasks)]
        return (outputs, [weights]) if return_gate_weights else outputs

    def expert_names(self):
        if self.modalities is None:
            return [f"expert_{i}" for i in range(self.num_experts)]
        # "<modality>_<j>": the weight per modality shows
        return self.experts.expert_names

    def gate_structure(self, task_names):
        gates = list(task_names) if self.num_gates > 1 else ["all_tasks"]
        return [("experts", gates, self.expert_names())]

    def gate_masks(self):
        return [np.asarray(self.gates.expert_mask, dtype=bool)]

    def shared_variables(self):
        return self.experts.last_layer_variables()

    def get_config(self):
        return {**super().get_config(), "num_experts": self.num_experts,
                "expert_units": self.expert_units, "num_gates": self.num_gates,
                "dropout": self.dropout, "batch_norm": self.batch_norm}

