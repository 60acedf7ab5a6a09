"""One network shared by all tasks (the hard-parameter-sharing baseline)."""

import keras

from mtrec.layers.mlp import MLP


@keras.saving.register_keras_serializable(package="mtrec.layers")
class SharedBottom(keras.layers.Layer):
    """An MLP shared by every task; each task's tower reads its output.

    Args:
        units: list of int. Widths of the shared layers.
        num_outputs: int. Number of task inputs returned (the same tensor
            each time). Defaults to `2`.
        dropout: float. Defaults to `0.0`.

    Call arguments:
        inputs: tensor `(batch, input_dim)`.

    Returns:
        list of `num_outputs` tensors `(batch, units[-1])`.

    Reference: Caruana, 1997, "Multitask Learning".
    """

    def __init__(self, units, num_outputs=2, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.units = [int(u) for u in units]
        self.num_outputs = int(num_outputs)
        self.dropout = dropout
        self.mlp = MLP(self.units, dropout=dropout, name="mlp")

    def build(self, input_shape):
        self.mlp.build(input_shape)
        self.built = True

    def call(self, inputs, training=False):
        x = self.mlp(inputs, training=training)
        return [x] * self.num_outputs

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "num_outputs": self.num_outputs, "dropout": self.dropout}
