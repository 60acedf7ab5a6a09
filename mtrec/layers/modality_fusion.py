"""Gated fusion of modality groups: a softmax weight per group and example."""

import keras
from keras import ops

from mtrec.layers.grouped_experts import concat_groups


@keras.saving.register_keras_serializable(package="mtrec.layers")
class ModalityFusion(keras.layers.Layer):
    """Scales each modality group by a learned per-example softmax weight,
    then concatenates the groups.

    A linear gate reads the concatenation of all groups and gives one
    logit per group; `w = softmax(logits)` (rows sum to 1), and group `g`
    is multiplied by `num_groups * w_g`, so a uniform gate leaves the
    concatenation unchanged. The gate starts at zero, i.e. uniform: a new
    model starts as plain concatenation and learns, per example, to lean on
    the modalities that help (e.g. away from an image that is missing).

    Args:
        modalities: list of str. The group names, in input order (e.g.
            `FeatureEmbedding.modalities`).

    Call arguments:
        groups: list of `len(modalities)` tensors `(batch, dim_g)`.
        return_gate_weights: bool. Also return the gate's weights (the
            flag backbones take, for the same kind of output).

    Returns:
        tensor `(batch, sum(dim_g))`; with `return_gate_weights`,
        `(output, weights)`, the weights `(batch, num_groups)`.
    """

    def __init__(self, modalities, **kwargs):
        super().__init__(**kwargs)
        self.modalities = [str(m) for m in modalities]
        if not self.modalities:
            raise ValueError("ModalityFusion needs at least one modality group.")
        if len(set(self.modalities)) != len(self.modalities):
            raise ValueError(f"Modality names must be unique, got {self.modalities}.")
        self.gate = keras.layers.Dense(len(self.modalities), kernel_initializer="zeros",
                                       dtype=self.dtype_policy, name="gate")

    def build(self, input_shape):
        input_shape = list(input_shape)
        if len(input_shape) != len(self.modalities):
            raise ValueError(
                f"ModalityFusion over {self.modalities} takes "
                f"{len(self.modalities)} group tensors, got {len(input_shape)}.")
        self.gate.build((None, sum(int(shape[-1]) for shape in input_shape)))
        self.built = True

    def call(self, groups, return_gate_weights=False):
        groups = list(groups)
        x = concat_groups(groups)
        # (batch, groups), rows sum to 1
        weights = ops.softmax(self.gate(x), axis=-1)
        scale = float(len(groups)) * weights
        fused = [g * scale[:, i:i + 1] for i, g in enumerate(groups)]
        out = concat_groups(fused)
        return (out, weights) if return_gate_weights else out

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], sum(int(shape[-1]) for shape in input_shape))

    def get_config(self):
        return {**super().get_config(), "modalities": self.modalities}
