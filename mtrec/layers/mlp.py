"""A stack of Dense layers."""

import keras
import numpy as np

from mtrec.layers.random_draws import Dropout


@keras.saving.register_keras_serializable(package="mtrec.layers")
class MLP(keras.layers.Layer):
    """Dense layers, each followed by optional batch normalisation, an
    activation and optional dropout.

    Per layer the order is Dense -> BatchNormalization -> activation ->
    Dropout, as in DeepCTR's `DNN(use_bn=True)`. The Dense bias is kept
    with batch normalisation (as DeepCTR does, so parameter counts compare
    with it), although the normalisation's `beta` makes it redundant.

    Args:
        units: list of int. Width of each layer.
        activation: str. Activation of every layer. Defaults to `"relu"`.
        dropout: float. Dropout rate after each layer. Defaults to `0.0`.
        kernel_initializer: str or initializer. Defaults to
            `"glorot_uniform"`.
        batch_norm: bool. Batch-normalise each layer's pre-activation
            (batch statistics in training, moving statistics in inference;
            the moving statistics are non-trainable weights). Defaults to
            `False`.

    Call arguments:
        inputs: tensor `(batch, input_dim)`.
        training: bool. Batch statistics and dropout apply only when True.

    Returns:
        tensor `(batch, units[-1])`, or the inputs unchanged if `units` is
        empty.
    """

    def __init__(self, units, activation="relu", dropout=0.0,
                 kernel_initializer="glorot_uniform", batch_norm=False, **kwargs):
        super().__init__(**kwargs)
        self.units = [int(u) for u in units]
        if any(u < 1 for u in self.units):
            raise ValueError(f"MLP units must all be >= 1, got {self.units}.")
        self.activation = activation
        self.dropout = dropout
        self.kernel_initializer = kernel_initializer
        self.batch_norm = check_batch_norm(batch_norm)
        # Without batch norm the activation stays inside Dense (the layout of
        # earlier releases); with it, it comes after the normalisation.
        self.dense_layers = [
            keras.layers.Dense(u, activation=None if self.batch_norm else activation,
                               kernel_initializer=kernel_initializer,
                               dtype=self.dtype_policy, name=f"dense_{i}")
            for i, u in enumerate(self.units)]
        self.batch_norm_layers = [
            keras.layers.BatchNormalization(dtype=self.dtype_policy,
                                            name=f"batch_norm_{i}")
            for i in range(len(self.units))] if self.batch_norm else []
        self.activation_fn = keras.activations.get(activation)
        self.dropout_layer = (Dropout(dropout, dtype=self.dtype_policy)
                              if dropout else None)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for i, layer in enumerate(self.dense_layers):
            layer.build(shape)
            shape = shape[:-1] + (layer.units,)
            if self.batch_norm:
                self.batch_norm_layers[i].build(shape)
        self.built = True

    def call(self, inputs, training=False):
        x = inputs
        for i, layer in enumerate(self.dense_layers):
            x = layer(x)
            if self.batch_norm:
                x = self.activation_fn(self.batch_norm_layers[i](x, training=training))
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
                    keras.initializers.get(self.kernel_initializer)),
                "batch_norm": self.batch_norm}


def check_batch_norm(batch_norm):
    """`batch_norm` if it is a bool, else a ValueError saying so (a YAML
    `"false"` string would otherwise switch batch normalisation on)."""
    if isinstance(batch_norm, np.bool_):
        batch_norm = bool(batch_norm)
    if not isinstance(batch_norm, bool):
        raise ValueError(f"batch_norm must be True or False, got {batch_norm!r} "
                         f"({type(batch_norm).__name__}).")
    return batch_norm
