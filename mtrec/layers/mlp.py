"""A stack of Dense layers."""

import keras


@keras.saving.register_keras_serializable(package="mtrec.layers")
class MLP(keras.layers.Layer):
    """Dense layers with an activation and optional dropout after each.

    Args:
        units: list of int. Width of each layer.
        activation: str. Activation of every layer. Defaults to `"relu"`.
        dropout: float. Dropout rate after each layer. Defaults to `0.0`.
        kernel_initializer: str or initializer. Defaults to
            `"glorot_uniform"`.

    Call arguments:
        inputs: tensor `(batch, input_dim)`.

    Returns:
        tensor `(batch, units[-1])`, or the inputs unchanged if `units` is
        empty.
    """

    def __init__(self, units, activation="relu", dropout=0.0,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.units = [int(u) for u in units]
        if any(u < 1 for u in self.units):
            raise ValueError(f"MLP units must all be >= 1, got {self.units}.")
        self.activation = activation
        self.dropout = dropout
        self.kernel_initializer = kernel_initializer
        self.dense_layers = [
            keras.layers.Dense(u, activation=activation,
                               kernel_initializer=kernel_initializer,
                               dtype=self.dtype_policy, name=f"dense_{i}")
            for i, u in enumerate(self.units)]
        self.dropout_layer = (keras.layers.Dropout(dropout, dtype=self.dtype_policy)
                              if dropout else None)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.dense_layers:
            layer.build(shape)
            shape = shape[:-1] + (layer.units,)
        self.built = True

    def call(self, inputs, training=False):
        x = inputs
        for layer in self.dense_layers:
            x = layer(x)
            if self.dropout_layer is not None:
                x = self.dropout_layer(x, training=training)
        return x

    def compute_output_shape(self, input_shape):
        if not self.units:
            return tuple(input_shape)
        return tuple(input_shape)[:-1] + (self.units[-1],)

    def get_config(self):
        return {**super().get_config(), "units": self.units,
                "activation": self.activation, "dropout": self.dropout,
                "kernel_initializer": keras.initializers.serialize(
                    keras.initializers.get(self.kernel_initializer))}
