"""CGC and PLE: task-specific plus shared experts, in one or more levels."""

import keras

from mtrec.layers.ple import PLEBackbone
from mtrec.models.multi_task_model import FORMAT_VERSION, MultiTaskModel, as_adapted_schema
from mtrec.schema.features import DEFAULT_EMBEDDINGS_INITIALIZER


@keras.saving.register_keras_serializable(package="mtrec")
class PLE(MultiTaskModel):
    """Progressive Layered Extraction.

    Args:
        schema: adapted `mtrec.Schema`.
        num_levels: int. Extraction levels. Defaults to `2`.
        num_specific_experts: int. Experts per task per level. Defaults to `2`.
        num_shared_experts: int. Shared experts per level. Defaults to `2`.
        expert_units: list of int. Defaults to `[16]`.
        tower_units: list of int. Defaults to `[8]`.
        dropout: float.
        fusion: str. `"concat"` (default), `"gated"` or
            `"modality_experts"`: in the first level the shared experts
            come as `num_shared_experts` per modality group, each reading
            its modality plus the tabular features, named
            `"<modality>_<j>"` in `gate_structure()`; task experts read
            everything (see `mtrec.layers.PLEBackbone`).
        modality_dropout: float. See `MultiTaskModel`.
        batch_norm: bool. Batch normalisation in every level's experts (per
            expert and unit) and the towers (Dense -> BatchNorm ->
            activation -> dropout). Defaults to `False`.
        embeddings_initializer: Keras initializer name or config for the
            embedding tables (a `Categorical` spec's own takes precedence).
            Defaults to `"uniform"`.

    Reference: Tang et al., RecSys 2020.
    """

    def __init__(self, schema, num_levels=2, num_specific_experts=2,
                 num_shared_experts=2, expert_units=(16,), tower_units=(8,),
                 dropout=0.0, fusion="concat", modality_dropout=0.0, batch_norm=False,
                 embeddings_initializer=DEFAULT_EMBEDDINGS_INITIALIZER, **kwargs):
        schema = as_adapted_schema(schema)
        backbone = self.named_backbone(
            PLEBackbone, schema, fusion, kwargs.get("format_version", FORMAT_VERSION),
            len(schema.tasks), num_levels, num_specific_experts, num_shared_experts,
            list(expert_units), dropout=dropout, batch_norm=batch_norm, name="ple")
        super().__init__(schema, backbone, tower_units=tower_units, dropout=dropout,
                         fusion=fusion, modality_dropout=modality_dropout,
                         batch_norm=batch_norm,
                         embeddings_initializer=embeddings_initializer, **kwargs)
        self.num_levels = int(num_levels)
        self.num_specific_experts = int(num_specific_experts)
        self.num_shared_experts = int(num_shared_experts)
        self.expert_units = [int(u) for u in expert_units]

    def get_config(self):
        return {**super().get_config(), "num_levels": self.num_levels,
                "num_specific_experts": self.num_specific_experts,
                "num_shared_experts": self.num_shared_experts,
                "expert_units": self.expert_units}


@keras.saving.register_keras_serializable(package="mtrec")
class CGC(PLE):
    """Customized Gate Control: PLE with a single level.

    Same arguments as `PLE`, without `num_levels`.
    """

    def __init__(self, schema, num_specific_experts=2, num_shared_experts=2,
                 expert_units=(16,), tower_units=(8,), dropout=0.0, fusion="concat",
                 modality_dropout=0.0, batch_norm=False,
                 embeddings_initializer=DEFAULT_EMBEDDINGS_INITIALIZER, **kwargs):
        kwargs.pop("num_levels", None)
        super().__init__(schema, num_levels=1,
                         num_specific_experts=num_specific_experts,
                         num_shared_experts=num_shared_experts,
                         expert_units=expert_units, tower_units=tower_units,
                         dropout=dropout, fusion=fusion,
                         modality_dropout=modality_dropout, batch_norm=batch_norm,
                         embeddings_initializer=embeddings_initializer, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("num_levels")
        return config
