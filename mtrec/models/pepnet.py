"""PEPNet: scenario-gated embeddings (EPNet) and prior-gated task networks (PPNet)."""

import keras

from mtrec.layers.pepnet import PEPNetBackbone
from mtrec.models.multi_scenario import (
    MultiScenarioModel, check_prior_features, context_cardinalities, scenario_name)
from mtrec.models.multi_task_model import as_adapted_schema
from mtrec.schema.features import DEFAULT_EMBEDDINGS_INITIALIZER


@keras.saving.register_keras_serializable(package="mtrec")
class PEPNet(MultiScenarioModel):
    """EPNet scales the fused embeddings by a scenario-conditioned gate;
    PPNet scales each hidden layer of each task's network by a gate on the
    scenario and the `prior_features` (e.g. the user id); see
    `mtrec.layers.PEPNetBackbone`. The gates read their main input through
    a stop-gradient.

    The scenario is the schema's `Categorical(..., scenario=True)`; the
    backbone embeds it (and the priors) in tables of its own. A scenario
    unseen in training maps to the OOV id: its embedding row, and so its
    gates, are the OOV row's (trained only if training rows map to it,
    e.g. with `min_frequency`).

    Args:
        schema: adapted `mtrec.Schema` with a scenario feature.
        ppnet_units: list of int. Widths of each task's gated network.
            Defaults to `[32, 16]`.
        tower_units: list of int. Ungated layers after it, before the head.
            Defaults to `[]` (the gated network is the tower, as in the paper).
        scenario: str or None. The categorical feature that is the
            scenario; None (the default): the schema's `scenario=True` one.
        prior_features: list of str. Categorical features besides the
            scenario that condition the PPNet gates. Defaults to none.
        prior_dim: int. Width of the scenario and prior embeddings of the
            gates. Defaults to `8`.
        gate_units: int. Hidden width of every gate. Defaults to `32`.
        dropout: float. In the task networks and towers.
        fusion: str. `"concat"` (default) or `"gated"`.
        modality_dropout: float. See `MultiTaskModel`.
        batch_norm: bool. Batch normalisation in the task networks (before
            each gate) and the towers. Defaults to `False`.
        embeddings_initializer: Keras initializer name or config for the
            embedding tables. Defaults to `"uniform"`.

    Reference: Chang et al., KDD 2023, "PEPNet: Parameter and Embedding
    Personalized Network for Infusing with Personalized Prior Information".
    """

    def __init__(self, schema, ppnet_units=(32, 16), tower_units=(), scenario=None,
                 prior_features=(), prior_dim=8, gate_units=32, dropout=0.0,
                 fusion="concat", modality_dropout=0.0, batch_norm=False,
                 embeddings_initializer=DEFAULT_EMBEDDINGS_INITIALIZER, **kwargs):
        schema = as_adapted_schema(schema)
        # set before the base class builds the model (its call reads them)
        self.scenario = scenario_name(schema, "PEPNet", scenario)
        self.prior_features = check_prior_features(schema, prior_features, self.scenario,
                                                   "PEPNet")
        backbone = PEPNetBackbone(len(schema.tasks), list(ppnet_units),
                                  context_cardinalities(schema, self.context_features()),
                                  prior_dim=prior_dim, gate_units=gate_units,
                                  dropout=dropout, batch_norm=batch_norm, name="pepnet")
        super().__init__(schema, backbone, tower_units=tower_units, dropout=dropout,
                         fusion=fusion, modality_dropout=modality_dropout,
                         batch_norm=batch_norm,
                         embeddings_initializer=embeddings_initializer, **kwargs)
        self.ppnet_units = [int(u) for u in ppnet_units]
        self.prior_dim = int(prior_dim)
        self.gate_units = int(gate_units)

    def context_features(self):
        return [self.scenario, *self.prior_features]

    def scenario_gates(self, inputs):
        """PEPNet's gates for a batch.

        Args:
            inputs: raw or encoded feature dict.

        Returns:
            dict `{"epnet": np.ndarray (batch, input_dim),
            "task_<t>_gate_<l>": (batch, ppnet_units[l])}`, values in `(0, 2)`.
        """
        encoded = self.encode(inputs)
        _, gates = self.backbone.gates(self.embed(encoded), self.context_ids(encoded))
        return {name: keras.ops.convert_to_numpy(g) for name, g in gates.items()}

    def get_config(self):
        return {**super().get_config(), "ppnet_units": self.ppnet_units,
                "scenario": self.scenario, "prior_features": self.prior_features, "prior_dim": self.prior_dim,
                "gate_units": self.gate_units}
