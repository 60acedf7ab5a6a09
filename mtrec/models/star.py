"""STAR: one star-topology network serving every scenario, then per-task towers."""

import keras

from mtrec.layers.star import StarBackbone
from mtrec.models.multi_scenario import (
    MultiScenarioModel, context_cardinalities, scenario_name)
from mtrec.models.multi_task_model import as_adapted_schema
from mtrec.schema.features import DEFAULT_EMBEDDINGS_INITIALIZER


@keras.saving.register_keras_serializable(package="mtrec")
class STAR(MultiScenarioModel):
    """A star-topology shared bottom (`mtrec.layers.StarBackbone`): each
    layer's weights are the shared ones times the example's scenario's,
    after partitioned normalisation; then one tower per task.

    The scenario is the schema's `Categorical(..., scenario=True)`; its id
    after the lookup picks the scenario parameters. A value unseen in
    training maps to the OOV id, whose parameters stay at their initial
    values unless training rows map there too (`min_frequency`): the
    shared network and PN's global statistics. (`oov_rate` replaces the
    scenario's embedding in training, not the id the star layers read.)

    Args:
        schema: adapted `mtrec.Schema` with a scenario feature.
        star_units: list of int. Widths of the star layers. Defaults to `[32]`.
        tower_units: list of int. Widths of each tower. Defaults to `[8]`.
        scenario: str or None. The categorical feature that is the
            scenario; None (the default): the schema's `scenario=True` one.
        partitioned_norm: bool. Partitioned normalisation of the star
            network's input. Defaults to `True`.
        dropout: float. In the star layers and the towers.
        fusion: str. `"concat"` (default) or `"gated"` (see `MultiTaskModel`).
        modality_dropout: float. See `MultiTaskModel`.
        batch_norm: bool. Batch normalisation (shared by the scenarios) after
            each star layer and in the towers, besides PN. Defaults to `False`.
        embeddings_initializer: Keras initializer name or config for the
            embedding tables. Defaults to `"uniform"`.

    Reference: Sheng et al., CIKM 2021, "One Model to Serve All: Star
    Topology Adaptive Recommender for Multi-Domain CTR Prediction".
    """

    def __init__(self, schema, star_units=(32,), tower_units=(8,), scenario=None,
                 partitioned_norm=True, dropout=0.0, fusion="concat", modality_dropout=0.0,
                 batch_norm=False, embeddings_initializer=DEFAULT_EMBEDDINGS_INITIALIZER,
                 **kwargs):
        schema = as_adapted_schema(schema)
        # set before the base class builds the model (its call reads it)
        self.scenario = scenario_name(schema, "STAR", scenario)
        backbone = StarBackbone(len(schema.tasks), list(star_units),
                                context_cardinalities(schema, [self.scenario])[0],
                                partitioned_norm=partitioned_norm, dropout=dropout,
                                batch_norm=batch_norm, name="star")
        super().__init__(schema, backbone, tower_units=tower_units, dropout=dropout,
                         fusion=fusion, modality_dropout=modality_dropout,
                         batch_norm=batch_norm,
                         embeddings_initializer=embeddings_initializer, **kwargs)
        self.star_units = [int(u) for u in star_units]
        self.partitioned_norm = partitioned_norm

    def context_features(self):
        return [self.scenario]

    def get_config(self):
        return {**super().get_config(), "star_units": self.star_units,
                "scenario": self.scenario, "partitioned_norm": self.partitioned_norm}
