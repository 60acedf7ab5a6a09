"""Experts shared by all tasks, mixed per task by softmax gates (OMoE/MMoE)."""

import keras

from mtrec.layers.expert_gates import ExpertGates, gate_and_output_counts
from mtrec.layers.experts import Experts


@keras.saving.register_keras_serializable(package="mtrec.layers")
class MixtureOfExperts(keras.layers.Layer):
    """Experts shared by all tasks, mixed per task by a softmax gate.

    With `num_gates=1` this is OMoE (one mixture copied to every task);
    with one gate per task, MMoE.

    Args:
        num_experts: int. Number of expert networks.
        expert_units: list of int. Widths of each expert's layers.
        num_gates: int. Number of gates. Defaults to `2`.
        num_outputs: int. Number of task inputs returned; defaults to
            `num_gates`. With one gate, the mixture is repeated.
        dropout: float. Dropout inside experts. Defaults to `0.0`.

    Call arguments:
        inputs: tensor `(batch, input_dim)`.
        return_gate_weights: bool. Also return the gate weights.

    Returns:
        list of `num_outputs` tensors `(batch, expert_units[-1])`; with
        `return_gate_weights`, also `(batch, num_gates, num_experts)`.

    Reference: Ma et al., KDD 2018, "Modeling Task Relationships in
    Multi-task Learning with Multi-gate Mixture-of-Experts".
    """

    def __init__(self, num_experts, expert_units, num_gates=2,
                 num_outputs=None, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_experts = int(num_experts)
        self.expert_units = [int(u) for u in expert_units]
        self.num_gates, self.num_outputs = gate_and_output_counts(num_gates, num_outputs)
        self.dropout = dropout
        self.experts = Experts(self.num_experts, self.expert_units,
                               dropout=dropout, name="experts")
        self.gates = ExpertGates(self.num_gates, self.num_experts, name="gates")

    def build(self, input_shape):
        self.experts.build(input_shape)
        self.gates.build(input_shape)
        self.built = True

    def call(self, inputs, training=False, return_gate_weights=False):
        # (batch, experts, units)
        expert_outputs = self.experts(inputs, training=training)
        mixtures, weights = self.gates(inputs, expert_outputs)
        outputs = [mixtures[:, min(i, self.num_gates - 1), :]
                   for i in range(self.num_outputs)]
        return (outputs, weights) if return_gate_weights else outputs

    def get_config(self):
        return {**super().get_config(), "num_experts": self.num_experts,
                "expert_units": self.expert_units,
                "num_gates": self.num_gates, "num_outputs": self.num_outputs,
                "dropout": self.dropout}
