"""The base of the multi-scenario models: the backbone also reads scenario ids."""

from keras import ops

from mtrec.layers.feature_embedding import categorical_cardinality
from mtrec.layers.feature_preprocessing import CATEGORICAL_KEY
from mtrec.models.multi_task_model import MultiTaskModel


def scenario_name(schema, model_name, scenario=None):
    """The name of the scenario feature: `scenario` (a categorical feature
    of the schema) when given, else the schema's `Categorical(...,
    scenario=True)`; a ValueError saying how to name one when neither is."""
    categorical = [s.name for s in schema.features_of("categorical")]
    if scenario is not None:
        if scenario not in categorical:
            raise ValueError(
                f"{model_name} has scenario={scenario!r}, which is not a categorical "
                f"feature of the schema; expected one of {categorical}.")
        return scenario
    spec = schema.scenario_feature
    if spec is None:
        raise ValueError(
            f"{model_name} needs a scenario feature, and the schema marks none; declare "
            f"the categorical feature that names each example's scenario with "
            f"scenario=True, e.g. Categorical('department', scenario=True) (in a run "
            f"config: schema.features.department: {{kind: categorical, scenario: "
            f"true}}), or pass scenario='<feature>' to the model. The schema's "
            f"categorical features: {categorical}.")
    return spec.name


def context_cardinalities(schema, names):
    """Number of ids of each categorical feature in `names`."""
    return [categorical_cardinality(schema, schema.feature(n)) for n in names]


def check_prior_features(schema, prior_features, scenario, model_name):
    """`prior_features` as a list of categorical feature names other than
    the `scenario`; a ValueError naming the wrong ones."""
    names = [prior_features] if isinstance(prior_features, str) else list(prior_features)
    categorical = [s.name for s in schema.features_of("categorical")]
    wrong = [n for n in names if n not in categorical]
    if wrong:
        raise ValueError(f"{model_name} has prior_features {wrong}, which are not "
                         f"categorical features of the schema; expected some of "
                         f"{categorical}.")
    if scenario in names:
        raise ValueError(f"{model_name} has the scenario '{scenario}' in "
                         f"prior_features; the scenario is always the first prior. Drop it "
                         f"from prior_features.")
    if len(set(names)) != len(names):
        raise ValueError(f"{model_name} lists a feature twice in prior_features {names}.")
    return names


class MultiScenarioModel(MultiTaskModel):
    """A `MultiTaskModel` whose backbone is called as
    `backbone(fused, context_ids, training=...)`.

    `context_ids` are the encoded ids (after the categorical lookup, so an
    unseen value is the OOV id 0) of the features `context_features()`
    names, `(batch,)` for one feature and `(batch, k)` for several; the
    first is the scenario. Subclasses set `context_features`.
    """

    #: the multi-scenario backbones take one fused tensor, not modality groups
    supported_fusions = ("concat", "gated")

    def context_features(self):
        """Names of the categorical features whose ids the backbone reads."""
        raise NotImplementedError(f"{type(self).__name__} must implement context_features().")

    def context_ids(self, encoded):
        """int tensor `(batch, k)` of the `context_features()` ids."""
        order = [s.name for s in self.schema.features_of("categorical")]
        columns = [order.index(name) for name in self.context_features()]
        # (batch, num_categorical) -> (batch, k)
        return ops.take(encoded[CATEGORICAL_KEY], columns, axis=1)

    def task_inputs(self, encoded, training=False):
        return self.backbone(self.embed(encoded, training=training),
                             self.context_ids(encoded), training=training)
