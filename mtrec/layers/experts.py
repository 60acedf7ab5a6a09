"""A bank of independent MLP experts computed with one einsum per layer."""

import numpy as np
import keras
from keras import ops

from mtrec.layers.mlp import check_batch_norm
from mtrec.layers.random_draws import Dropout


@keras.saving.register_keras_serializable(package="mtrec.layers")
class Experts(keras.layers.Layer):
    """`num_experts` MLPs with the same widths and separate weights.

    All experts run in one batched op per layer (einsum over an expert
    axis) instead of a Python list of small Dense layers; the same layer
    serves MoE experts, CGC/PLE experts and the per-task bottoms of the
    single-task baseline.

    Args:
        num_experts: int. Number of experts.
        expert_units: list of int. Widths of each expert's layers.
        activation: str. Defaults to `"relu"`.
        dropout: float. Dropout after each layer. Defaults to `0.0`.
        kernel_initializer: initializer for the `(experts, in, out)`
            kernels. Defaults to `"glorot_uniform"` (fans computed per
            expert).
        batch_norm: bool. Batch-normalise each layer's pre-activation, with
            statistics (and `gamma`, `beta`) of their own for every expert
            and unit; per layer: einsum + bias -> BatchNormalization ->
            activation -> Dropout (see `MLP`). Defaults to `False`.

    Call arguments:
        inputs: tensor `(batch, input_dim)` seen by every expert, or
            `(batch, num_experts, input_dim)`: one input per expert.
        training: bool. Batch statistics and dropout apply only when True.

    Returns:
        tensor `(batch, num_experts, expert_units[-1])`.
    """

    def __init__(self, num_experts, expert_units, activation="relu",
                 dropout=0.0, kernel_initializer="glorot_uniform", batch_norm=False,
                 **kwargs):
        super().__init__(**kwargs)
        if num_experts < 1:
            raise ValueError(f"num_experts must be >= 1, got {num_experts}.")
        if not expert_units:
            raise ValueError("expert_units must list at least one width.")
        self.num_experts = int(num_experts)
        self.expert_units = [int(u) for u in expert_units]
        self.activation = activation
        self.dropout = dropout
        self.kernel_initializer = kernel_initializer
        self.batch_norm = check_batch_norm(batch_norm)
        self.activation_fn = keras.activations.get(activation)
        # Keras' BatchNormalization takes one axis: each layer normalises the
        # flattened (experts * units) axis, i.e. per expert and unit.
        self.batch_norm_layers = [
            keras.layers.BatchNormalization(dtype=self.dtype_policy,
                                            name=f"batch_norm_{i}")
            for i in range(len(self.expert_units))] if self.batch_norm else []
        self.dropout_layer = (Dropout(dropout, dtype=self.dtype_policy)
                              if dropout else None)

    def build(self, input_shape):
        input_dim = int(input_shape[-1])
        initializer = keras.initializers.get(self.kernel_initializer)
        self.kernels, self.biases = [], []
        for i, units in enumerate(self.expert_units):
            # Initialise each expert's (in, out) slice as a Dense layer would.
            kernel = self.add_weight(
                name=f"kernel_{i}", shape=(self.num_experts, input_dim, units),
                initializer=_per_expert(initializer, input_dim, units))
            bias = self.add_weight(name=f"bias_{i}",
                                   shape=(self.num_experts, units),
                                   initializer="zeros")
            self.kernels.append(kernel)
            self.biases.append(bias)
            if self.batch_norm:
                self.batch_norm_layers[i].build((None, self.num_experts * units))
            input_dim = units
        self.built = True

    def call(self, inputs, training=False):
        x = inputs
        for i, (kernel, bias) in enumerate(zip(self.kernels, self.biases)):
            if i == 0 and len(x.shape) == 2:
                # (batch, in) x (experts, in, out) -> (batch, experts, out)
                x = shared_input_matmul(x, kernel)
            else:
                # (batch, experts, in) x (experts, in, out) -> (batch, experts, out)
                x = ops.einsum("bei,eio->beo", x, kernel)
            x = x + bias
            if self.batch_norm:
                units = self.expert_units[i]
                # (batch, experts, units) -> (batch, experts * units) and back
                flat = ops.reshape(x, (-1, self.num_experts * units))
                flat = self.batch_norm_layers[i](flat, training=training)
                x = ops.reshape(flat, (-1, self.num_experts, units))
            x = self.activation_fn(x)
            if self.dropout_layer is not None:
                x = self.dropout_layer(x, training=training)
        return x

    def last_layer_variables(self):
        """The kernel and bias of the experts' last layer."""
        return [self.kernels[-1], self.biases[-1]]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_experts, self.expert_units[-1])

    def get_config(self):
        return {**super().get_config(), "num_experts": self.num_experts,
                "expert_units": self.expert_units,
                "activation": self.activation, "dropout": self.dropout,
                "kernel_initializer": keras.initializers.serialize(
                    keras.initializers.get(self.kernel_initializer)),
                "batch_norm": self.batch_norm}


def shared_input_matmul(x, kernel):
    """`einsum("bi,nio->bno", x, kernel)`: one input through `n` matrices.

    Computed as the einsum computes it (the kernel laid out `(in, n * out)`,
    one MatMul), so the values are the same to the bit, but written out:
    TF's Einsum op plans its contraction on every call, which cost about
    0.05 ms of a 0.3 ms batch-1 expert layer and 7-20% at batch 1024 (MMoE
    8 x [16] on Census, one core, `benchmarks/serving.py`).

    Args:
        x: tensor `(batch, in)`.
        kernel: tensor `(n, in, out)`.

    Returns:
        tensor `(batch, n, out)`.
    """
    n, fan_in, fan_out = kernel.shape
    # (n, in, out) -> (in, n * out)
    flat = ops.reshape(ops.transpose(kernel, (1, 0, 2)), (fan_in, n * fan_out))
    # (batch, n * out) -> (batch, n, out)
    return ops.reshape(ops.matmul(x, flat), (-1, n, fan_out))


def _per_expert(initializer, fan_in, fan_out):
    """Wrap a Dense initializer so fans are those of one expert's matrix.

    Keras initializers return the same values on every call, so each
    expert gets its own copy with its own seed (derived from the given seed,
    or drawn from numpy's global RNG, which `keras.utils.set_random_seed`
    also seeds).
    """
    config = initializer.get_config()

    def init(shape, dtype=None):
        num_experts = shape[0]
        if "seed" in config:
            base = config["seed"]
            if base is None:
                base = int(np.random.randint(0, 2**31 - 1 - num_experts))
            copies = [initializer.__class__.from_config({**config, "seed": base + i})
                      for i in range(num_experts)]
        else:
            copies = [initializer] * num_experts
        return ops.stack([c((fan_in, fan_out), dtype=dtype) for c in copies], axis=0)

    return init
