"""DSelect-k: shared experts, each task's gate selecting at most k of them."""

import keras

from mtrec.layers.dselect_k import DSelectKBackbone
from mtrec.models.multi_task_model import FORMAT_VERSION, MultiTaskModel, as_adapted_schema
from mtrec.schema.features import DEFAULT_EMBEDDINGS_INITIALIZER


@keras.saving.register_keras_serializable(package="mtrec")
class DSelectK(MultiTaskModel):
    """MMoE with DSelect-k gates: each task mixes at most `num_nonzeros` (k)
    of the shared experts, selected through smooth-step binary codes
    (`mtrec.layers.DSelectKGates`).

    The gates are static (one learned selection per task, the paper's
    multi-task variant) unless `per_example=True`. An entropy regulariser
    (`entropy_weight`, added to the training loss) drives each selector to
    a single expert; once trained, each task's gate weight is exactly 0 on
    all but at most k experts (`selected_experts()`, and the zeros of the
    gate diagnostics' usage table).

    Args:
        schema: adapted `mtrec.Schema`.
        num_experts: int. Defaults to `8`.
        num_nonzeros: int. k. Defaults to `2`.
        expert_units: list of int. Widths of each expert. Defaults to `[16]`.
        tower_units: list of int. Widths of each tower. Defaults to `[8]`.
        gamma: float. Smooth-step width. Defaults to `1.0`.
        entropy_weight: float. Defaults to `0.001`. The selectors must
            saturate for the selection to be exact: if `selected_experts()`
            still lists more than k experts after training, raise it (on
            Census-Income at learning rate 0.002, 0.05 did; 0.001 did not).
        per_example: bool. Per-example gates. Defaults to `False`.
        dropout, fusion, modality_dropout, batch_norm, embeddings_initializer:
            as `MMoE` (`fusion="modality_experts"` groups the experts by
            modality and the gates select among all groups' experts).

    Reference: Hazimeh et al., NeurIPS 2021.
    """

    def __init__(self, schema, num_experts=8, num_nonzeros=2, expert_units=(16,),
                 tower_units=(8,), gamma=1.0, entropy_weight=0.001, per_example=False,
                 dropout=0.0, fusion="concat", modality_dropout=0.0, batch_norm=False,
                 embeddings_initializer=DEFAULT_EMBEDDINGS_INITIALIZER, **kwargs):
        schema = as_adapted_schema(schema)
        backbone = self.named_backbone(
            DSelectKBackbone, schema, fusion, kwargs.get("format_version", FORMAT_VERSION),
            len(schema.tasks), num_experts, list(expert_units), num_nonzeros=num_nonzeros,
            gamma=gamma, entropy_weight=entropy_weight, per_example=per_example,
            dropout=dropout, batch_norm=batch_norm, name="dselect_k")
        super().__init__(schema, backbone, tower_units=tower_units, dropout=dropout,
                         fusion=fusion, modality_dropout=modality_dropout,
                         batch_norm=batch_norm,
                         embeddings_initializer=embeddings_initializer, **kwargs)
        self.num_experts = int(num_experts)
        self.num_nonzeros = int(num_nonzeros)
        self.expert_units = [int(u) for u in expert_units]
        self.gamma = float(gamma)
        self.entropy_weight = float(entropy_weight)
        self.per_example = self.backbone.per_example

    def selected_experts(self):
        """`{task_name: [expert names]}`: the experts each task's static gate
        gives a nonzero weight (at most `num_nonzeros` once trained)."""
        return self.backbone.selected_experts(self.tower_task_names)

    def get_config(self):
        return {**super().get_config(), "num_experts": self.num_experts,
                "num_nonzeros": self.num_nonzeros, "expert_units": self.expert_units,
                "gamma": self.gamma, "entropy_weight": self.entropy_weight,
                "per_example": self.per_example}
