"""One network shared by all tasks (the hard-parameter-sharing baseline)."""

import keras

from mtrec.layers.backbone import Backbone
from mtrec.layers.mlp import MLP, check_batch_norm


@keras.saving.register_keras_serializable(package="mtrec.layers")
class SharedBottomBackbone(Backbone):
    """An MLP shared by every task; each task's tower reads its output.

    Args:
        num_tasks: int. Number of task inputs returned (the same tensor
            each time).
        units: list of int. Widths of the shared layers.
        dropout: float. Defaults to `0.0`.
        batch_norm: bool. Batch normalisation in the shared MLP (see
            `MLP`). Defaults to `False`.

    Call arguments:
        inputs: tensor `(batch, input_dim)`.

    Returns:
        list of `num_tasks` tensors `(batch, units[-1])`.

    Reference: Caruana, 1997, "Multitask Learning".
    """

    def __init__(self, num_tasks, units, dropout=0.0, batch_norm=False, **kwargs):
        super().__init__(num_tasks, **kwargs)
        self.units = [int(u) for u in units]
        if not self.units:
            raise ValueError("SharedBottomBackbone needs at least one layer width in units.")
        self.dropout = dropout
        self.batch_norm = check_batch_norm(batch_norm)
        self.mlp = MLP(self.units, dropout=dropout, batch_norm=self.batch_norm,
                       dtype=self.dtype_policy, name="mlp")

    def build(self, input_shape):
        self.mlp.build(tuple(input_shape))
        self.built = True

    def call(self, inputs, training=False, return_gate_weights=False):
        outputs = [self.mlp(inputs, training=training)] * self.num_tasks
        return (outputs, []) if return_gate_weights else outputs

    def shared_variables(self):
        return self.mlp.dense_layers[-1].trainable_weights

    def get_config(self):
        config = {**super().get_config(), "units": self.units, "dropout": self.dropout,
                  "batch_norm": self.batch_norm}
        config.pop("modalities")
        return config
