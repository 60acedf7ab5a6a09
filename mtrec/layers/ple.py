"""Progressive Layered Extraction: stacked CGC levels."""

import keras

from mtrec.layers.backbone import Backbone
from mtrec.layers.cgc import CGCBackbone
from mtrec.layers.mlp import check_batch_norm


@keras.saving.register_keras_serializable(package="mtrec.layers")
class PLEBackbone(Backbone):
    """`num_levels` CGC levels; every level but the last also keeps a
    shared output, mixed by a gate over all of that level's experts, which
    feeds the next level's shared experts (Tang et al., 2020, §4.3).

    With `modalities`, the first level's shared experts are grouped by
    modality (see `CGCBackbone`); the levels above it read the first
    level's mixtures and are plain CGC levels. With `num_levels=1` this
    computes what `CGCBackbone` does (its gate level is named `level_0`).

    Args:
        num_tasks: int. Number of tasks.
        num_levels: int. Number of extraction levels (>= 1).
        num_specific_experts: int. Experts per task per level.
        num_shared_experts: int. Shared experts per level (per modality
            group in the first level when `modalities` is given).
        expert_units: list of int. Widths of each expert's layers.
        modalities: list of str, or None. Group names, in input order.
            Defaults to `None`.
        dropout: float. Dropout inside experts. Defaults to `0.0`.
        batch_norm: bool. Batch normalisation inside every level's experts
            (see `CGCBackbone`). Defaults to `False`.

    Call arguments:
        inputs: tensor `(batch, input_dim)`, or with `modalities` a list of
            `len(modalities)` tensors `(batch, dim_g)`.
        return_gate_weights: bool. Also return the gate weights of every
            level (a list, one `(batch, gates, experts)` tensor per level).

    Returns:
        list of `num_tasks` tensors `(batch, expert_units[-1])`.

    Reference: Tang et al., RecSys 2020, "Progressive Layered Extraction
    (PLE): A Novel Multi-Task Learning (MTL) Model for Personalized
    Recommendations".
    """

    def __init__(self, num_tasks, num_levels, num_specific_experts, num_shared_experts,
                 expert_units, modalities=None, dropout=0.0, batch_norm=False, **kwargs):
        super().__init__(num_tasks, modalities=modalities, **kwargs)
        if num_levels < 1:
            raise ValueError(f"num_levels must be >= 1, got {num_levels}.")
        self.num_levels = int(num_levels)
        self.num_specific_experts = int(num_specific_experts)
        self.num_shared_experts = int(num_shared_experts)
        self.expert_units = [int(u) for u in expert_units]
        self.dropout = dropout
        self.batch_norm = check_batch_norm(batch_norm)
        self.levels = [
            self.level_class(level)(
                self.num_tasks, self.num_specific_experts, self.num_shared_experts,
                self.expert_units, modalities=self.modalities if level == 0 else None,
                dropout=dropout, output_shared=level < self.num_levels - 1,
                batch_norm=self.batch_norm,
                dtype=self.dtype_policy, name=f"level_{level}")
            for level in range(self.num_levels)]

    def level_class(self, level):
        """The class of level `level`. Saved weights are filed under the
        snake-cased class name of each level, so the 0.1.0 aliases
        (`layers/legacy_aliases.py`) return the old class names here."""
        return CGCBackbone

    def build(self, input_shape):
        self.levels[0].build(input_shape)
        shape = (None, self.expert_units[-1])
        for level in self.levels[1:]:
            level.build(shape)
        self.built = True

    def call(self, inputs, training=False, return_gate_weights=False):
        x, all_weights = inputs, []
        for level in self.levels:
            x, weights = level(x, training=training, return_gate_weights=True)
            all_weights += weights
        return (x, all_weights) if return_gate_weights else x

    def gate_structure(self, task_names):
        return [(f"level_{i}", *level.level_structure(task_names))
                for i, level in enumerate(self.levels)]

    def gate_masks(self):
        return [mask for level in self.levels for mask in level.gate_masks()]

    def shared_variables(self):
        return self.levels[-1].shared_variables()

    def get_config(self):
        return {**super().get_config(), "num_levels": self.num_levels,
                "num_specific_experts": self.num_specific_experts,
                "num_shared_experts": self.num_shared_experts,
                "expert_units": self.expert_units, "dropout": self.dropout,
                "batch_norm": self.batch_norm}
