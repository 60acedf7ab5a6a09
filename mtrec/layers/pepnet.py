"""PEPNet: scenario- and user-conditioned gates on the input and the task layers."""

import keras
from keras import ops

from mtrec.layers.backbone import Backbone
from mtrec.layers.gate_nu import GateNU
from mtrec.layers.mlp import check_batch_norm
from mtrec.layers.random_draws import Dropout


@keras.saving.register_keras_serializable(package="mtrec.layers")
class PEPNetBackbone(Backbone):
    """EPNet gates the fused input by scenario; PPNet gates every hidden layer
    of every task's network by the scenario and the other prior features.

    The backbone embeds the ids it is given (its own tables, `prior_dim`
    wide): column 0 is the scenario, the others optional prior features
    such as the user id. Then, with `sg` the stop-gradient:

    - EPNet: `x = GateNU(concat(e_scenario, sg(inputs))) * inputs`, one gate
      in `(0, 2)` per input unit (so per unit of each feature's embedding).
    - PPNet: per task, an MLP of widths `units` on `x`; after each layer
      `h_l = GateNU_{task,l}(concat(e_priors, sg(x))) * h_l`.

    The stop-gradients keep the gates from changing the representations
    they read (the paper's point: the gates personalise, the input and
    the networks learn the general task); the gates' own inputs, the
    prior embeddings, do get gradients through the gates.

    Args:
        num_tasks: int. Number of tasks (task networks).
        units: list of int. Widths of each task network's layers.
        cardinalities: list of int. Number of ids of the scenario, then of
            each other prior feature (OOV buckets included).
        prior_dim: int. Width of the scenario and prior embeddings.
            Defaults to `8`.
        gate_units: int. Hidden width of every gate. Defaults to `32`.
        dropout: float. Dropout after each gated layer. Defaults to `0.0`.
        batch_norm: bool. Batch normalisation of each task layer's
            pre-activation (Dense -> BatchNorm -> ReLU -> gate). Defaults to
            `False`.

    Call arguments:
        inputs: tensor `(batch, input_dim)`.
        prior_ids: int tensor `(batch, len(cardinalities))`.
        training: bool.
        return_gate_weights: bool. Also return `[]` (no expert gates;
            `gates()` returns PEPNet's).

    Returns:
        list of `num_tasks` tensors `(batch, units[-1])`.

    Reference: Chang et al., KDD 2023, "PEPNet: Parameter and Embedding
    Personalized Network for Infusing with Personalized Prior Information".
    """

    def __init__(self, num_tasks, units, cardinalities, prior_dim=8, gate_units=32,
                 dropout=0.0, batch_norm=False, **kwargs):
        super().__init__(num_tasks, **kwargs)
        self.units = [int(u) for u in units]
        if not self.units or any(u < 1 for u in self.units):
            raise ValueError(f"PEPNetBackbone needs units listing at least one layer "
                             f"width >= 1, got {list(units)}.")
        self.cardinalities = [int(c) for c in cardinalities]
        if not self.cardinalities or any(c < 1 for c in self.cardinalities):
            raise ValueError(f"PEPNetBackbone needs cardinalities of the scenario (first) "
                             f"and any prior features, each >= 1, got "
                             f"{list(cardinalities)}.")
        self.prior_dim = int(prior_dim)
        self.gate_units = int(gate_units)
        self.dropout = dropout
        self.batch_norm = check_batch_norm(batch_norm)
        self.prior_embeddings = [
            keras.layers.Embedding(c, self.prior_dim, dtype=self.dtype_policy,
                                   name=f"prior_embedding_{i}")
            for i, c in enumerate(self.cardinalities)]
        self.task_layers = [
            [keras.layers.Dense(u, activation=None if self.batch_norm else "relu",
                                dtype=self.dtype_policy, name=f"task_{t}_dense_{l}")
             for l, u in enumerate(self.units)]
            for t in range(self.num_tasks)]
        self.task_batch_norms = [
            [keras.layers.BatchNormalization(dtype=self.dtype_policy,
                                             name=f"task_{t}_batch_norm_{l}")
             for l in range(len(self.units))]
            for t in range(self.num_tasks)] if self.batch_norm else []
        self.task_gates = [
            [GateNU(u, self.gate_units, dtype=self.dtype_policy, name=f"task_{t}_gate_{l}")
             for l, u in enumerate(self.units)]
            for t in range(self.num_tasks)]
        self.dropout_layer = (Dropout(dropout, dtype=self.dtype_policy)
                              if dropout else None)

    def build(self, inputs_shape, prior_ids_shape=None):
        dim = int(inputs_shape[-1])
        batch = (inputs_shape[0],)
        for embedding in self.prior_embeddings:
            embedding.build(batch)
        # the input's width is known only now
        self.epnet = GateNU(dim, self.gate_units, dtype=self.dtype_policy, name="epnet")
        self.epnet.build(batch + (self.prior_dim + dim,))
        gate_in = batch + (self.prior_dim * len(self.cardinalities) + dim,)
        for t, (layers, gates) in enumerate(zip(self.task_layers, self.task_gates)):
            shape = batch + (dim,)
            for l, (layer, gate) in enumerate(zip(layers, gates)):
                layer.build(shape)
                gate.build(gate_in)
                shape = batch + (layer.units,)
                if self.batch_norm:
                    self.task_batch_norms[t][l].build(shape)
        self.built = True

    def gates(self, inputs, prior_ids, training=False):
        """The gated representations and every gate.

        Returns:
            `(x, gates)`: `x` the EPNet-gated input `(batch, input_dim)`,
            `gates` a dict `{"epnet": (batch, input_dim),
            "task_<t>_gate_<l>": (batch, units[l])}`, values in `(0, 2)`.
        """
        if not self.built:  # called before the layer was
            self.build(tuple(inputs.shape), tuple(prior_ids.shape))
        ids = ops.cast(prior_ids, "int32")
        priors = [embedding(ids[:, i]) for i, embedding in enumerate(self.prior_embeddings)]
        # EPNet: the scenario's gate on the input, blind to the input's gradient
        epnet_gate = self.epnet(ops.concatenate(
            [priors[0], ops.stop_gradient(inputs)], axis=-1))
        x = epnet_gate * inputs
        gate_in = ops.concatenate(priors + [ops.stop_gradient(x)], axis=-1)
        gates = {"epnet": epnet_gate}
        for gate_row in self.task_gates:
            for gate in gate_row:
                gates[gate.name] = gate(gate_in)
        return x, gates

    def call(self, inputs, prior_ids, training=False, return_gate_weights=False):
        x, gates = self.gates(inputs, prior_ids, training=training)
        outputs = []
        for t, (layers, gate_row) in enumerate(zip(self.task_layers, self.task_gates)):
            h = x
            for l, (layer, gate) in enumerate(zip(layers, gate_row)):
                h = layer(h)
                if self.batch_norm:
                    h = ops.relu(self.task_batch_norms[t][l](h, training=training))
                # PPNet: the layer, scaled per unit by its prior-conditioned gate
                h = gates[gate.name] * h
                if self.dropout_layer is not None:
                    h = self.dropout_layer(h, training=training)
            outputs.append(h)
        return (outputs, []) if return_gate_weights else outputs

    def compute_output_shape(self, inputs_shape, prior_ids_shape=None):
        return [(inputs_shape[0], self.units[-1])] * self.num_tasks

    def shared_variables(self):
        # the EPNet gate's output layer: the last layer every task reads
        return self.epnet.gate.trainable_weights

    def get_config(self):
        config = {**super().get_config(), "units": self.units,
                  "cardinalities": self.cardinalities, "prior_dim": self.prior_dim,
                  "gate_units": self.gate_units, "dropout": self.dropout,
                  "batch_norm": self.batch_norm}
        config.pop("modalities")
        return config
