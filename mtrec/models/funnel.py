"""The CTR -> CVR funnel: ESMM and AITM chained heads over any backbone.

Both use the three tasks of `funnel_tasks()`:

- `ctr`   = P(click | impression), label `click`, every impression;
- `cvr`   = P(conversion | click), label `conversion` where `click == 1`
  only (a mask), reported but never trained directly;
- `ctcvr` = P(click and conversion | impression), label `conversion`,
  every impression.

Serving returns all three.
"""

import keras
from keras import ops

from mtrec.layers.information_transfer import InformationTransfer, calibration_penalty
from mtrec.layers.mixture_of_experts import MixtureOfExperts
from mtrec.layers.mlp import MLP, check_batch_norm
from mtrec.layers.ple import PLEBackbone
from mtrec.layers.shared_bottom import SharedBottomBackbone
from mtrec.models.multi_task_model import MultiTaskModel, as_adapted_schema, float32_outputs
# The funnel tasks are defined once, in the schema; re-exported here.
from mtrec.schema import FUNNEL_TASKS, funnel_tasks
from mtrec.schema.features import DEFAULT_EMBEDDINGS_INITIALIZER


def _check_funnel_schema(schema):
    tasks = {t.name: t for t in schema.tasks}
    missing = [n for n in FUNNEL_TASKS if n not in tasks]
    if missing or any(tasks[n].kind != "binary" for n in FUNNEL_TASKS if n in tasks):
        raise ValueError(
            f"Funnel models need binary tasks {list(FUNNEL_TASKS)}; the schema has "
            f"{[f'{t.name}:{t.kind}' for t in schema.tasks]} (missing {missing}). Build "
            f"the schema with tasks=mtrec.models.funnel_tasks(click=..., conversion=...).")
    if tasks["cvr"].mask is None:
        raise ValueError("Task 'cvr' needs mask=<click column>: CVR is only defined on "
                         "clicked impressions. Use mtrec.models.funnel_tasks(...).")


# Named backbones for configs: two outputs (the two towers of the funnel),
# built with the model's batch_norm.
BACKBONES = {
    "mmoe": lambda batch_norm: MixtureOfExperts(2, 8, [16], batch_norm=batch_norm,
                                                name="mixture_of_experts"),
    "shared_bottom": lambda batch_norm: SharedBottomBackbone(
        2, [64], batch_norm=batch_norm, name="shared_bottom"),
    "ple": lambda batch_norm: PLEBackbone(2, 2, 2, 2, [16], batch_norm=batch_norm,
                                          name="ple"),
}


def _make_backbone(backbone, batch_norm=False):
    if backbone is None:
        backbone = "mmoe"
    if isinstance(backbone, str):
        if backbone not in BACKBONES:
            raise ValueError(f"Unknown backbone '{backbone}'; expected a layer or one of "
                             f"{list(BACKBONES)}.")
        return BACKBONES[backbone](check_batch_norm(batch_norm))
    if isinstance(backbone, dict):
        return keras.saving.deserialize_keras_object(backbone)
    return backbone


class _FunnelModel(MultiTaskModel):
    def __init__(self, schema, backbone=None, tower_units=(8,), dropout=0.0,
                 batch_norm=False, embeddings_initializer=DEFAULT_EMBEDDINGS_INITIALIZER,
                 **kwargs):
        schema = as_adapted_schema(schema)
        _check_funnel_schema(schema)
        super().__init__(schema, _make_backbone(backbone, batch_norm),
                         tower_units=tower_units, dropout=dropout,
                         tower_tasks=self._tower_tasks, batch_norm=batch_norm,
                         embeddings_initializer=embeddings_initializer, **kwargs)

    def get_config(self):
        return {**super().get_config(),
                "backbone": keras.saving.serialize_keras_object(self.backbone)}


@keras.saving.register_keras_serializable(package="mtrec")
class ESMM(_FunnelModel):
    """Entire Space Multi-task Model (Ma et al., SIGIR 2018).

    Towers for `ctr` and `cvr` over a shared backbone; `ctcvr = ctr * cvr`.
    Trained on the CTR and CTCVR losses over all impressions, so the CVR
    tower learns from the entire space without sample selection bias; CVR
    itself has no loss (its label exists on clicks only) and its metrics are
    computed on clicked impressions.

    Args:
        schema: adapted Schema with `funnel_tasks()`.
        backbone: a `mtrec.layers.Backbone` with `num_tasks=2` (ctr, cvr),
            e.g. `mtrec.layers.MixtureOfExperts(2, 8, [16])`, or
            one of the names `"mmoe"` (the default: ESMM on MMoE, 8 experts
            of [16]), `"shared_bottom"` ([64]), `"ple"` (2 levels, 2+2
            experts of [16]).
        tower_units: list of int.
        dropout: float.
        batch_norm: bool. Batch normalisation in the towers and in a named
            backbone (a backbone layer passed in is used as it was built).
            Defaults to `False`.
        embeddings_initializer: Keras initializer name or config for the
            embedding tables (a `Categorical` spec's own takes precedence).
            Defaults to `"uniform"`.
    """

    _tower_tasks = ["ctr", "cvr"]
    untrained_tasks = ("cvr",)

    def derive_outputs(self, outputs, training=False):
        return {"ctr": outputs["ctr"], "cvr": outputs["cvr"],
                "ctcvr": outputs["ctr"] * outputs["cvr"]}


@keras.saving.register_keras_serializable(package="mtrec")
class AITM(_FunnelModel):
    """Adaptive Information Transfer Multi-task (Xi et al., KDD 2021).

    The click tower's representation is passed to the conversion tower
    through `InformationTransfer` (attention); heads give `ctr` and
    `ctcvr` (conversion per impression). The behavioural expectation
    calibrator adds `calibrator_weight * mean(max(ctcvr - ctr, 0))` to the
    training loss so that P(conversion) <= P(click). `cvr` is reported as
    `ctcvr / ctr` (clipped to [0, 1]), not trained.

    Args:
        schema: adapted Schema with `funnel_tasks()`.
        backbone: a `mtrec.layers.Backbone` with `num_tasks=2` (click,
            conversion), or a name as for ESMM. Default `"mmoe"`.
        tower_units: list of int. Widths of each task's tower.
        calibrator_weight: float. Weight of the calibrator loss (the paper's
            alpha). Defaults to `0.6`.
        dropout: float.
        batch_norm: bool. As for ESMM. Defaults to `False`.
        embeddings_initializer: As for ESMM. Defaults to `"uniform"`.
    """

    _tower_tasks = ["ctr", "ctcvr"]
    untrained_tasks = ("cvr",)

    def __init__(self, schema, backbone=None, tower_units=(32,), calibrator_weight=0.6,
                 dropout=0.0, batch_norm=False,
                 embeddings_initializer=DEFAULT_EMBEDDINGS_INITIALIZER, **kwargs):
        self.calibrator_weight = float(calibrator_weight)
        super().__init__(schema, backbone=backbone, tower_units=tower_units,
                         dropout=dropout, batch_norm=batch_norm,
                         embeddings_initializer=embeddings_initializer, **kwargs)

    def make_towers(self, tasks):
        units = self.tower_units
        self.click_tower = MLP(units, dropout=self.dropout, batch_norm=self.batch_norm,
                               name="tower_ctr")
        self.conversion_tower = MLP(units, dropout=self.dropout, batch_norm=self.batch_norm,
                                    name="tower_ctcvr")
        self.information_transfer = InformationTransfer(units[-1], name="ait")
        self.click_head = keras.layers.Dense(1, activation="sigmoid", name="head_ctr")
        self.conversion_head = keras.layers.Dense(1, activation="sigmoid", name="head_ctcvr")
        return None

    def call(self, inputs, training=False):
        click_in, conversion_in = self.task_inputs(self.encode(inputs), training=training)
        q_click = self.click_tower(click_in, training=training)
        q_conversion = self.conversion_tower(conversion_in, training=training)
        z = self.information_transfer(q_click, q_conversion)
        ctr = ops.squeeze(self.click_head(q_click), -1)
        ctcvr = ops.squeeze(self.conversion_head(z), -1)
        if training and self.calibrator_weight:
            self.add_loss(self.calibrator_weight * calibration_penalty(ctr, ctcvr))
        cvr = ops.clip(ctcvr / ops.maximum(ctr, 1e-7), 0.0, 1.0)
        return float32_outputs({"ctr": ctr, "cvr": cvr, "ctcvr": ctcvr})

    def get_config(self):
        return {**super().get_config(), "calibrator_weight": self.calibrator_weight}
