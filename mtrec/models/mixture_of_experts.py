"""OMoE and MMoE: shared experts mixed by one gate, or by one gate per task."""

import keras

from mtrec.layers.mixture_of_experts import MixtureOfExperts
from mtrec.models.multi_task_model import FORMAT_VERSION, MultiTaskModel, as_adapted_schema
from mtrec.schema.features import DEFAULT_EMBEDDINGS_INITIALIZER


class _MoEModel(MultiTaskModel):
    _one_gate_per_task = True

    def __init__(self, schema, num_experts=8, expert_units=(16,), tower_units=(8,),
                 dropout=0.0, fusion="concat", modality_dropout=0.0, batch_norm=False,
                 embeddings_initializer=DEFAULT_EMBEDDINGS_INITIALIZER, **kwargs):
        schema = as_adapted_schema(schema)
        num_tasks = len(schema.tasks)
        backbone = self.named_backbone(
            MixtureOfExperts, schema, fusion, kwargs.get("format_version", FORMAT_VERSION),
            num_tasks, num_experts, list(expert_units),
            num_gates=num_tasks if self._one_gate_per_task else 1, dropout=dropout,
            batch_norm=batch_norm, name="mixture_of_experts")
        super().__init__(schema, backbone, tower_units=tower_units, dropout=dropout,
                         fusion=fusion, modality_dropout=modality_dropout,
                         batch_norm=batch_norm,
                         embeddings_initializer=embeddings_initializer, **kwargs)
        self.num_experts = int(num_experts)
        self.expert_units = [int(u) for u in expert_units]

    def get_config(self):
        return {**super().get_config(), "num_experts": self.num_experts,
                "expert_units": self.expert_units}


@keras.saving.register_keras_serializable(package="mtrec")
class MMoE(_MoEModel):
    """Multi-gate Mixture-of-Experts: shared experts, one softmax gate per task.

    Args:
        schema: adapted `mtrec.Schema`.
        num_experts: int. Defaults to `8`.
        expert_units: list of int. Widths of each expert. Defaults to `[16]`.
        tower_units: list of int. Widths of each tower. Defaults to `[8]`.
        dropout: float.
        fusion: str. `"concat"` (default), `"gated"` or
            `"modality_experts"`: `num_experts` experts per modality group,
            each reading its modality plus the tabular features, named
            `"<modality>_<j>"` in `gate_structure()` (see `MultiTaskModel`).
        modality_dropout: float. See `MultiTaskModel`.
        batch_norm: bool. Batch normalisation in the experts (per expert and
            unit) and the towers (Dense -> BatchNorm -> activation ->
            dropout). Defaults to `False`.
        embeddings_initializer: Keras initializer name or config for the
            embedding tables (a `Categorical` spec's own takes precedence).
            Defaults to `"uniform"`.

    Reference: Ma et al., KDD 2018.
    """

    _one_gate_per_task = True


@keras.saving.register_keras_serializable(package="mtrec")
class OMoE(_MoEModel):
    """One-gate Mixture-of-Experts: shared experts, one gate for all tasks.

    Same arguments as `MMoE`.

    Reference: Ma et al., KDD 2018 (the OMoE baseline).
    """

    _one_gate_per_task = False
