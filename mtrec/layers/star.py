"""STAR: a star-topology network, shared weights times scenario weights."""

import keras
from keras import ops

from mtrec.layers.backbone import Backbone
from mtrec.layers.mlp import check_batch_norm
from mtrec.layers.partitioned_normalization import PartitionedNormalization
from mtrec.layers.random_draws import Dropout


@keras.saving.register_keras_serializable(package="mtrec.layers")
class StarBackbone(Backbone):
    """A star-topology MLP (STAR's FCN) shared by every task.

    Each layer has a shared kernel `W` and bias `b` (the star's centre) and
    one kernel `W_p` and bias `b_p` per scenario `p` (its points). An
    example of scenario `p` goes through

        h' = activation(h @ (W * W_p) + (b + b_p))

    (`*` element-wise). `W_p` starts at ones and `b_p` at zeros, so every
    scenario starts as the shared network and training moves each away
    from it only as far as its own data asks. With `partitioned_norm`, the
    input first goes through `PartitionedNormalization` (STAR's PN:
    scenario-specific scale, shift and statistics). Every task's tower
    reads the last layer's output (the star network is a shared bottom).

    A scenario id that training never saw (the OOV id of a department
    unseen in training, when no training example mapped to it) keeps its
    initial `W_p = 1`, `b_p = 0`: it gets exactly the shared network (and
    PN's global statistics).

    STAR's auxiliary network (a small MLP on the scenario embedding whose
    output is added to the logit) is not built: the towers' heads own the
    logits. The scenario feature is still an input of the star network
    through its embedding, which plays that role additively.

    Args:
        num_tasks: int. Number of task inputs returned (the same tensor).
        units: list of int. Widths of the star layers.
        num_scenarios: int. Number of scenario ids (the scenario feature's
            cardinality, OOV buckets included).
        partitioned_norm: bool. Partitioned normalisation of the input.
            Defaults to `True`.
        activation: str. Defaults to `"relu"`.
        dropout: float. Dropout after each layer. Defaults to `0.0`.
        batch_norm: bool. Plain batch normalisation (shared by the
            scenarios) of each layer's pre-activation, as `MLP` does.
            Defaults to `False`.

    Call arguments:
        inputs: tensor `(batch, input_dim)`.
        scenario_ids: int tensor `(batch,)`.
        training: bool.
        return_gate_weights: bool. Also return `[]` (no gates).

    Returns:
        list of `num_tasks` tensors `(batch, units[-1])`.

    Reference: Sheng et al., CIKM 2021, "One Model to Serve All: Star
    Topology Adaptive Recommender for Multi-Domain CTR Prediction".
    """

    def __init__(self, num_tasks, units, num_scenarios, partitioned_norm=True,
                 activation="relu", dropout=0.0, batch_norm=False, **kwargs):
        super().__init__(num_tasks, **kwargs)
        self.units = [int(u) for u in units]
        if not self.units or any(u < 1 for u in self.units):
            raise ValueError(f"StarBackbone needs units listing at least one layer width "
                             f">= 1, got {list(units)}.")
        if int(num_scenarios) < 1:
            raise ValueError(f"StarBackbone needs num_scenarios >= 1 (the scenario "
                             f"feature's cardinality), got {num_scenarios}.")
        if not isinstance(partitioned_norm, bool):
            raise ValueError(f"partitioned_norm must be True or False, got "
                             f"{partitioned_norm!r}.")
        self.num_scenarios = int(num_scenarios)
        self.partitioned_norm = partitioned_norm
        self.activation = activation
        self.dropout = dropout
        self.batch_norm = check_batch_norm(batch_norm)
        self.batch_norm_layers = [
            keras.layers.BatchNormalization(dtype=self.dtype_policy, name=f"batch_norm_{i}")
            for i in range(len(self.units))] if self.batch_norm else []
        self.activation_fn = keras.activations.get(activation)
        self.normalization = (PartitionedNormalization(self.num_scenarios,
                                                       dtype=self.dtype_policy,
                                                       name="partitioned_norm")
                              if partitioned_norm else None)
        self.dropout_layer = (Dropout(dropout, dtype=self.dtype_policy)
                              if dropout else None)

    def build(self, inputs_shape, scenario_ids_shape=None):
        if self.normalization is not None:
            self.normalization.build(tuple(inputs_shape))
        fan_in, s = int(inputs_shape[-1]), self.num_scenarios
        self.kernels, self.biases = [], []
        self.scenario_kernels, self.scenario_biases = [], []
        for i, units in enumerate(self.units):
            self.kernels.append(self.add_weight(name=f"kernel_{i}", shape=(fan_in, units),
                                                initializer="glorot_uniform"))
            self.biases.append(self.add_weight(name=f"bias_{i}", shape=(units,),
                                               initializer="zeros"))
            self.scenario_kernels.append(self.add_weight(
                name=f"scenario_kernel_{i}", shape=(s, fan_in, units), initializer="ones"))
            self.scenario_biases.append(self.add_weight(
                name=f"scenario_bias_{i}", shape=(s, units), initializer="zeros"))
            if self.batch_norm:
                self.batch_norm_layers[i].build((inputs_shape[0], units))
            fan_in = units
        self.built = True

    def effective_weights(self, layer, scenario):
        """`(W * W_p, b + b_p)` of star layer `layer` for scenario id
        `scenario`: the dense layer that scenario's examples go through."""
        return (self.kernels[layer] * self.scenario_kernels[layer][scenario],
                self.biases[layer] + self.scenario_biases[layer][scenario])

    def call(self, inputs, scenario_ids, training=False, return_gate_weights=False):
        ids = ops.cast(ops.reshape(scenario_ids, (-1,)), "int32")
        x = inputs
        if self.normalization is not None:
            x = self.normalization(x, ids, training=training)
        # (batch, 1, 1): which scenario's layer each example goes through
        pick = ids[:, None, None]
        for i, (kernel, bias, s_kernel, s_bias) in enumerate(zip(
                self.kernels, self.biases, self.scenario_kernels, self.scenario_biases)):
            # (scenarios, in, out): every scenario's effective kernel. Running
            # all of them and picking one per example costs scenarios x one
            # dense layer but only (batch, scenarios, out) memory; gathering a
            # kernel per example would hold (batch, in, out).
            w = ops.cast(kernel[None] * s_kernel, x.dtype)
            y = ops.take_along_axis(ops.einsum("bi,sio->bso", x, w), pick, axis=1)[:, 0]
            b = ops.cast(bias[None] + ops.take(s_bias, ids, axis=0), x.dtype)
            x = y + b
            if self.batch_norm:
                x = self.batch_norm_layers[i](x, training=training)
            x = self.activation_fn(x)
            if self.dropout_layer is not None:
                x = self.dropout_layer(x, training=training)
        outputs = [x] * self.num_tasks
        return (outputs, []) if return_gate_weights else outputs

    def compute_output_shape(self, inputs_shape, scenario_ids_shape=None):
        return [(inputs_shape[0], self.units[-1])] * self.num_tasks

    def shared_variables(self):
        # the star's centre of the last layer: what every scenario shares
        return [self.kernels[-1], self.biases[-1]]

    def get_config(self):
        config = {**super().get_config(), "units": self.units,
                  "num_scenarios": self.num_scenarios,
                  "partitioned_norm": self.partitioned_norm,
                  "activation": self.activation, "dropout": self.dropout,
                  "batch_norm": self.batch_norm}
        config.pop("modalities")
        return config
