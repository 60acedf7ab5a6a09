"""PEPNet's Gate Neural Unit: a small MLP whose output scales another tensor."""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="mtrec.layers")
class GateNU(keras.layers.Layer):
    """`scale * sigmoid(Dense(ReLU(Dense(x))))`: a per-unit gate in `(0, scale)`.

    With the default `scale=2` a gate starts near 1 (the sigmoid of a small
    logit is near 1/2), so the tensor it scales starts almost unchanged,
    and training can both damp (`< 1`) and amplify (`> 1`) each unit.

    Args:
        units: int. Width of the gate (of the tensor it scales).
        hidden_units: int. Width of the hidden ReLU layer. Defaults to `32`.
        scale: float. Upper bound of the gate (PEPNet's gamma). Defaults to `2.0`.

    Call arguments:
        inputs: tensor `(batch, input_dim)`: what the gate is conditioned on.

    Returns:
        tensor `(batch, units)` in `(0, scale)`.

    Reference: Chang et al., KDD 2023, "PEPNet: Parameter and Embedding
    Personalized Network for Infusing with Personalized Prior Information".
    """

    def __init__(self, units, hidden_units=32, scale=2.0, **kwargs):
        super().__init__(**kwargs)
        if int(units) < 1 or int(hidden_units) < 1:
            raise ValueError(f"GateNU needs units >= 1 and hidden_units >= 1, got "
                             f"units={units}, hidden_units={hidden_units}.")
        if not float(scale) > 0:
            raise ValueError(f"GateNU needs scale > 0, got {scale}.")
        self.units = int(units)
        self.hidden_units = int(hidden_units)
        self.scale = float(scale)
        self.hidden = keras.layers.Dense(self.hidden_units, activation="relu",
                                         dtype=self.dtype_policy, name="hidden")
        self.gate = keras.layers.Dense(self.units, activation="sigmoid",
                                       dtype=self.dtype_policy, name="gate")

    def build(self, input_shape):
        self.hidden.build(tuple(input_shape))
        self.gate.build(tuple(input_shape)[:-1] + (self.hidden_units,))
        self.built = True

    def call(self, inputs):
        return self.scale * self.gate(self.hidden(inputs))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "hidden_units": self.hidden_units, "scale": self.scale}
