"""PLE whose first level groups the shared experts by modality."""

import keras

from mtrec.layers.cgc import CGC
from mtrec.layers.modality_cgc import ModalityCGC


@keras.saving.register_keras_serializable(package="mtrec.layers")
class ModalityPLE(keras.layers.Layer):
    """Progressive Layered Extraction over modality groups.

    The first level is a `ModalityCGC` (task experts over all features,
    shared experts grouped by modality); the `num_levels - 1` levels above
    it are plain `CGC` levels over the first level's mixtures, as in `PLE`.
    With `num_levels=1` this is a `ModalityCGC`.

    Args:
        num_tasks: int. Number of tasks.
        modalities: list of str. Group names, in input order.
        num_levels: int. Extraction levels (>= 1).
        num_specific_experts: int. Experts per task per level.
        num_shared_experts: int. Shared experts per modality group in the
            first level, shared experts per level above it.
        expert_units: list of int. Widths of each expert's layers.
        dropout: float. Dropout inside experts. Defaults to `0.0`.

    Call arguments:
        groups: list of `len(modalities)` tensors `(batch, dim_g)`.
        return_gate_weights: bool. Also return the gate weights of every
            level (a list of `(batch, gates, experts)` tensors).

    Returns:
        list of `num_tasks` tensors `(batch, expert_units[-1])`.
    """

    def __init__(self, num_tasks, modalities, num_levels, num_specific_experts,
                 num_shared_experts, expert_units, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if num_levels < 1:
            raise ValueError(f"num_levels must be >= 1, got {num_levels}.")
        self.num_tasks = int(num_tasks)
        self.modalities = [str(m) for m in modalities]
        self.num_levels = int(num_levels)
        self.num_specific_experts = int(num_specific_experts)
        self.num_shared_experts = int(num_shared_experts)
        self.expert_units = [int(u) for u in expert_units]
        self.dropout = dropout
        self.levels = [ModalityCGC(
            self.num_tasks, self.modalities, self.num_specific_experts,
            self.num_shared_experts, self.expert_units,
            output_shared=self.num_levels > 1, dropout=dropout, name="level_0")]
        self.levels += [
            CGC(self.num_tasks, self.num_specific_experts, self.num_shared_experts,
                self.expert_units, output_shared=level < self.num_levels - 1,
                dropout=dropout, name=f"level_{level}")
            for level in range(1, self.num_levels)]

    def build(self, input_shape):
        self.levels[0].build(input_shape)
        shape = (None, self.expert_units[-1])
        for level in self.levels[1:]:
            level.build(shape)
        self.built = True

    def call(self, groups, training=False, return_gate_weights=False):
        x, all_weights = list(groups), []
        for level in self.levels:
            x, weights = level(x, training=training, return_gate_weights=True)
            all_weights.append(weights)
        return (x, all_weights) if return_gate_weights else x

    def get_config(self):
        return {**super().get_config(), "num_tasks": self.num_tasks,
                "modalities": self.modalities, "num_levels": self.num_levels,
                "num_specific_experts": self.num_specific_experts,
                "num_shared_experts": self.num_shared_experts,
                "expert_units": self.expert_units, "dropout": self.dropout}
