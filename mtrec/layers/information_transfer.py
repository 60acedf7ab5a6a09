"""AITM's Adaptive Information Transfer module and behavioural calibrator."""

import keras
from keras import ops

from mtrec.layers.mlp import MLP


@keras.saving.register_keras_serializable(package="mtrec.layers")
class InformationTransfer(keras.layers.Layer):
    """Attention over "what the previous task passes on" and "what this task
    sees" (Xi et al., KDD 2021, §3.2).

    `p = transfer(q_prev)` (one Dense layer) is the information moved from
    the earlier task; the output is the attention-weighted sum over the two
    candidates `u in {p, q}`:

        w_u = softmax_u( <h1(u), h2(u)> / sqrt(units) ),   z = sum_u w_u h3(u)

    Args:
        units: int. Width of the representations.

    Call arguments:
        previous: tensor `(batch, units)`, the earlier task's tower output.
        current: tensor `(batch, units)`, this task's tower output.

    Returns:
        tensor `(batch, units)`.
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.transfer = MLP([self.units], dtype=self.dtype_policy, name="transfer")
        self.query = keras.layers.Dense(self.units, use_bias=False, dtype=self.dtype_policy,
                                         name="query")
        self.key = keras.layers.Dense(self.units, use_bias=False, dtype=self.dtype_policy,
                                         name="key")
        self.value = keras.layers.Dense(self.units, use_bias=False, dtype=self.dtype_policy,
                                         name="value")

    def build(self, previous_shape, current_shape=None):
        shape = (None, self.units)
        self.transfer.build(tuple(previous_shape))
        for layer in (self.query, self.key, self.value):
            layer.build(shape)
        self.built = True

    def call(self, previous, current):
        # (batch, 2, units): the transferred and the own representation
        candidates = ops.stack([self.transfer(previous), current], axis=1)
        scores = ops.sum(self.query(candidates) * self.key(candidates), axis=-1)
        weights = ops.softmax(scores / (self.units ** 0.5), axis=1)   # (batch, 2)
        return ops.sum(weights[..., None] * self.value(candidates), axis=1)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


def calibration_penalty(p_earlier, p_later):
    """AITM's behavioural expectation calibrator: the mean of
    `max(p_later - p_earlier, 0)`; zero when every later-step probability
    (conversion) is at most the earlier one (click)."""
    return ops.mean(ops.relu(p_later - p_earlier))
