"""Banks of experts grouped by modality."""

import keras
from keras import ops

from mtrec.layers.experts import Experts
from mtrec.layers.mlp import check_batch_norm
from mtrec.utils.names import safe_name


@keras.saving.register_keras_serializable(package="mtrec.layers")
class GroupedExperts(keras.layers.Layer):
    """One bank of `num_experts` experts per modality group.

    The experts of group `g` read that group's features concatenated with
    the shared group's (`shared_modality`, `"tabular"` by default); the
    shared group's own experts read it alone. So a text expert sees the
    text with the user and item context, never the image. Each bank runs
    as one batched op (`Experts`); the banks' outputs are stacked along
    the expert axis, group after group, in the order of `modalities`.
    With one group this is `Experts(num_experts, expert_units)` over that
    group.

    Args:
        modalities: list of str. Group names, in input order.
        num_experts: int. Experts per group.
        expert_units: list of int. Widths of each expert's layers.
        shared_modality: str. The group every expert also reads; when it
            is not among `modalities`, each group reads only itself.
            Defaults to `"tabular"`.
        dropout: float. Dropout inside experts. Defaults to `0.0`.
        batch_norm: bool. Batch normalisation inside the experts (per
            expert and unit; see `Experts`). Defaults to `False`.

    Call arguments:
        groups: list of `len(modalities)` tensors `(batch, dim_g)`.

    Returns:
        tensor `(batch, len(modalities) * num_experts, expert_units[-1])`;
        expert `g * num_experts + j` is `expert_names[...]`, `"<group>_<j>"`.
    """

    def __init__(self, modalities, num_experts, expert_units, shared_modality="tabular",
                 dropout=0.0, batch_norm=False, **kwargs):
        super().__init__(**kwargs)
        self.modalities = [str(m) for m in modalities]
        if not self.modalities or len(set(self.modalities)) != len(self.modalities):
            raise ValueError(f"modalities must be a non-empty list of unique names, "
                             f"got {modalities!r}.")
        if int(num_experts) < 1:
            raise ValueError(f"num_experts (per modality) must be >= 1, got {num_experts}.")
        self.num_experts = int(num_experts)
        self.expert_units = [int(u) for u in expert_units]
        self.shared_modality = shared_modality
        self.dropout = dropout
        self.batch_norm = check_batch_norm(batch_norm)
        self.banks = [Experts(self.num_experts, self.expert_units, dropout=dropout,
                              batch_norm=self.batch_norm,
                              dtype=self.dtype_policy, name=f"experts_{safe_name(m)}")
                      for m in self.modalities]

    @property
    def total_experts(self):
        return len(self.modalities) * self.num_experts

    @property
    def expert_names(self):
        return [f"{m}_{j}" for m in self.modalities for j in range(self.num_experts)]

    def _shared_index(self):
        if self.shared_modality in self.modalities:
            return self.modalities.index(self.shared_modality)
        return None

    def build(self, input_shape):
        dims = [int(shape[-1]) for shape in input_shape]
        if len(dims) != len(self.modalities):
            raise ValueError(f"GroupedExperts over {self.modalities} takes "
                             f"{len(self.modalities)} group tensors, got {len(dims)}.")
        shared = self._shared_index()
        for g, bank in enumerate(self.banks):
            extra = dims[shared] if shared is not None and g != shared else 0
            bank.build((None, dims[g] + extra))
        self.built = True

    def call(self, groups, training=False):
        groups = list(groups)
        shared = self._shared_index()
        outputs = []
        for g, bank in enumerate(self.banks):
            x = groups[g]
            if shared is not None and g != shared:
                # (batch, shared_dim + dim_g): the context, then the modality
                x = ops.concatenate([groups[shared], x], axis=1)
            # (batch, num_experts, units)
            outputs.append(bank(x, training=training))
        # (batch, groups * num_experts, units)
        return outputs[0] if len(outputs) == 1 else ops.concatenate(outputs, axis=1)

    def last_layer_variables(self):
        """Kernels and biases of every bank's last layer (GradNorm's W)."""
        return [v for bank in self.banks for v in bank.last_layer_variables()]

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.total_experts, self.expert_units[-1])

    def get_config(self):
        return {**super().get_config(), "modalities": self.modalities,
                "num_experts": self.num_experts, "expert_units": self.expert_units,
                "shared_modality": self.shared_modality, "dropout": self.dropout,
                "batch_norm": self.batch_norm}


def concat_groups(groups):
    """`(batch, sum(dim_g))` from a list of `(batch, dim_g)` group tensors."""
    groups = list(groups)
    return groups[0] if len(groups) == 1 else ops.concatenate(groups, axis=1)
