"""OMoE/MMoE whose experts are grouped by modality."""

import keras
from keras import ops

from mtrec.layers.expert_gates import ExpertGates, gate_and_output_counts
from mtrec.layers.modality_experts import ModalityExperts


@keras.saving.register_keras_serializable(package="mtrec.layers")
class ModalityMixtureOfExperts(keras.layers.Layer):
    """Mixture-of-Experts over modality expert groups.

    Like `MixtureOfExperts`, but the experts come in one group per
    modality (`ModalityExperts`): group `g`'s `num_experts` experts read
    that modality's features plus the shared tabular ones. Every gate
    reads all features and mixes across all groups, so the gate weights
    summed per group say how much each task relies on each modality.

    Args:
        modalities: list of str. Group names, in input order
            (`FeatureEmbedding.modalities`).
        num_experts: int. Experts per modality group.
        expert_units: list of int. Widths of each expert's layers.
        num_gates: int. 1 (OMoE) or `num_outputs` (MMoE). Defaults to `2`.
        num_outputs: int. Task inputs returned; defaults to `num_gates`.
        dropout: float. Dropout inside experts. Defaults to `0.0`.

    Call arguments:
        groups: list of `len(modalities)` tensors `(batch, dim_g)`.
        return_gate_weights: bool. Also return the gate weights.

    Returns:
        list of `num_outputs` tensors `(batch, expert_units[-1])`; with
        `return_gate_weights`, also `(batch, num_gates, len(modalities) *
        num_experts)`, experts ordered as `expert_names`.
    """

    def __init__(self, modalities, num_experts, expert_units, num_gates=2,
                 num_outputs=None, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.modalities = [str(m) for m in modalities]
        self.num_experts = int(num_experts)
        self.expert_units = [int(u) for u in expert_units]
        self.num_gates, self.num_outputs = gate_and_output_counts(num_gates, num_outputs)
        self.dropout = dropout
        self.experts = ModalityExperts(self.modalities, self.num_experts,
                                       self.expert_units, dropout=dropout, name="experts")
        self.gates = ExpertGates(self.num_gates, self.experts.total_experts, name="gates")

    @property
    def expert_names(self):
        return self.experts.expert_names

    def build(self, input_shape):
        input_shape = [tuple(shape) for shape in input_shape]
        self.experts.build(input_shape)
        self.gates.build((None, sum(int(shape[-1]) for shape in input_shape)))
        self.built = True

    def call(self, groups, training=False, return_gate_weights=False):
        groups = list(groups)
        # (batch, groups * experts, units)
        expert_outputs = self.experts(groups, training=training)
        x = groups[0] if len(groups) == 1 else ops.concatenate(groups, axis=1)
        mixtures, weights = self.gates(x, expert_outputs)
        outputs = [mixtures[:, min(i, self.num_gates - 1), :]
                   for i in range(self.num_outputs)]
        return (outputs, weights) if return_gate_weights else outputs

    def get_config(self):
        return {**super().get_config(), "modalities": self.modalities,
                "num_experts": self.num_experts, "expert_units": self.expert_units,
                "num_gates": self.num_gates, "num_outputs": self.num_outputs,
                "dropout": self.dropout}
