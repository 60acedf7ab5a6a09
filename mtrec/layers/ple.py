"""Progressive Layered Extraction: stacked CGC levels."""

import keras

from mtrec.layers.cgc import CGC


@keras.saving.register_keras_serializable(package="mtrec.layers")
class PLE(keras.layers.Layer):
    """`num_levels` CGC levels; every level but the last also keeps a
    shared output, mixed by a gate over all of that level's experts, which
    feeds the next level's shared experts (Tang et al., 2020, §4.3).

    With `num_levels=1` this is exactly CGC.

    Args:
        num_tasks: int. Number of tasks.
        num_levels: int. Number of extraction levels (>= 1).
        num_specific_experts: int. Experts per task per level.
        num_shared_experts: int. Shared experts per level.
        expert_units: list of int. Widths of each expert's layers.
        dropout: float. Dropout inside experts. Defaults to `0.0`.

    Call arguments:
        inputs: tensor `(batch, input_dim)`.
        return_gate_weights: bool. Also return the gate weights of every
            level (a list, one `(batch, gates, experts)` tensor per level).

    Returns:
        list of `num_tasks` tensors `(batch, expert_units[-1])`.

    Reference: Tang et al., RecSys 2020, "Progressive Layered Extraction
    (PLE): A Novel Multi-Task Learning (MTL) Model for Personalized
    Recommendations".
    """

    def __init__(self, num_tasks, num_levels, num_specific_experts,
                 num_shared_experts, expert_units, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        if num_levels < 1:
            raise ValueError(f"num_levels must be >= 1, got {num_levels}.")
        self.num_tasks = int(num_tasks)
        self.num_levels = int(num_levels)
        self.num_specific_experts = int(num_specific_experts)
        self.num_shared_experts = int(num_shared_experts)
        self.expert_units = [int(u) for u in expert_units]
        self.dropout = dropout
        self.levels = [
            CGC(self.num_tasks, self.num_specific_experts,
                self.num_shared_experts, self.expert_units,
                output_shared=level < self.num_levels - 1, dropout=dropout,
                name=f"level_{level}")
            for level in range(self.num_levels)]

    def build(self, input_shape):
        shape = tuple(input_shape)
        for level in self.levels:
            level.build(shape)
            shape = shape[:-1] + (self.expert_units[-1],)
        self.built = True

    def call(self, inputs, training=False, return_gate_weights=False):
        x, all_weights = inputs, []
        for level in self.levels:
            x, weights = level(x, training=training, return_gate_weights=True)
            all_weights.append(weights)
        return (x, all_weights) if return_gate_weights else x

    def get_config(self):
        return {**super().get_config(), "num_tasks": self.num_tasks,
                "num_levels": self.num_levels,
                "num_specific_experts": self.num_specific_experts,
                "num_shared_experts": self.num_shared_experts,
                "expert_units": self.expert_units, "dropout": self.dropout}
