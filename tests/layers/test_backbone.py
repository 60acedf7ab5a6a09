"""The Backbone protocol, every public layer under the harness, and mixed precision."""

import re
from pathlib import Path

import keras
import numpy as np
import pytest

import mtrec
from mtrec.layers import Backbone

HERE = Path(__file__).resolve().parent


def test_every_public_layer_has_a_harness_test():
    public = [name for name in mtrec.layers.__all__
              if isinstance(getattr(mtrec.layers, name), type)
              and issubclass(getattr(mtrec.layers, name), keras.layers.Layer)
              and getattr(mtrec.layers, name) is not Backbone]
    tested = set()
    for path in HERE.glob("test_*.py"):
        tested |= set(re.findall(r"run_layer_test\((\w+),", path.read_text()))
    assert sorted(set(public) - tested) == []


def test_backbone_base_validates_and_describes_an_ungated_backbone():
    with pytest.raises(ValueError, match="num_tasks >= 1"):
        Backbone(0)
    with pytest.raises(ValueError, match="unique"):
        Backbone(2, modalities=["text", "text"])
    base = Backbone(2)
    assert base.gate_structure(["a", "b"]) == [] and base.gate_masks() == []
    assert base.modalities is None
    with pytest.raises(ValueError, match="no shared layer"):
        base.shared_variables()


def test_models_reject_a_layer_that_is_not_a_backbone(table, schema):
    funnel_like = mtrec.layers.Experts(2, [4])
    with pytest.raises(ValueError, match="subclassing mtrec.layers.Backbone"):
        mtrec.models.MultiTaskModel(schema, funnel_like)


def test_backbone_num_tasks_must_match_the_towers(schema):
    with pytest.raises(ValueError, match="num_tasks=3"):
        mtrec.models.MultiTaskModel(schema, mtrec.layers.SharedBottomBackbone(2, [4]))


def sublayers(layer):
    """Every layer nested in `layer`'s attributes (lists included), depth first."""
    found = []
    for value in vars(layer).values():
        for child in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(child, keras.layers.Layer) and child is not layer:
                found += [child] + sublayers(child)
    return found


@pytest.mark.parametrize("make", [
    lambda: mtrec.layers.MixtureOfExperts(2, 2, [3], modalities=["tabular", "text"],
                                          dropout=0.1, dtype="mixed_bfloat16"),
    lambda: mtrec.layers.PLEBackbone(2, 2, 1, 1, [3], modalities=["tabular", "text"],
                                     dtype="mixed_bfloat16"),
    lambda: mtrec.layers.SharedBottomBackbone(2, [3], dropout=0.1, dtype="mixed_bfloat16"),
    lambda: mtrec.layers.TaskTowers([{"name": "a", "kind": "binary"}], [3],
                                    dtype="mixed_bfloat16"),
    lambda: mtrec.layers.InformationTransfer(3, dtype="mixed_bfloat16"),
    lambda: mtrec.layers.ModalityFusion(["tabular", "text"], dtype="mixed_bfloat16"),
    lambda: mtrec.layers.TextEncoder(10, 4, 5, encoder="transformer",
                                     dtype="mixed_bfloat16"),
], ids=["moe", "ple", "shared_bottom", "towers", "ait", "fusion", "text"])
def test_layers_pass_their_dtype_policy_to_their_children(make):
    layer = make()
    children = sublayers(layer)
    assert children
    assert {child.dtype_policy.name for child in children} == {"mixed_bfloat16"}


@pytest.fixture
def mixed_bfloat16():
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_bfloat16")
    yield
    keras.config.set_dtype_policy(previous)


@pytest.mark.parametrize("model_name", ["MMoE", "PLE"])
def test_one_training_step_under_mixed_bfloat16(mixed_bfloat16, table, schema, model_name):
    kwargs = dict(num_experts=2, expert_units=[4]) if model_name == "MMoE" else dict(
        num_levels=2, num_specific_experts=1, num_shared_experts=1, expert_units=[4])
    model = getattr(mtrec.models, model_name)(schema, tower_units=[4], fusion="gated",
                                              **kwargs)
    assert {layer.dtype_policy.compute_dtype for layer in sublayers(model.backbone)} == {
        "bfloat16"}
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    data = mtrec.data.from_pandas(table.head(64), schema, batch_size=64)
    history = model.fit(data, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    out = model.predict_on_batch(schema.raw_features(table.head(5)))
    assert {str(np.asarray(v).dtype) for v in out.values()} == {"float32"}


def test_grouped_backbone_must_follow_the_schema_groups(schema):
    groups = mtrec.layers.feature_embedding.modality_groups(schema)
    assert groups == ["tabular", "text", "image"]
    with pytest.raises(ValueError, match=r"schema's groups are \['tabular', 'text', 'image'\]"):
        mtrec.models.MultiTaskModel(
            schema, mtrec.layers.MixtureOfExperts(3, 2, [4], modalities=groups[::-1]),
            fusion="modality_experts")
    with pytest.raises(ValueError, match="fusion='modality_experts', not 'concat'"):
        mtrec.models.MultiTaskModel(
            schema, mtrec.layers.MixtureOfExperts(3, 2, [4], modalities=groups))
    model = mtrec.models.MultiTaskModel(
        schema, mtrec.layers.MixtureOfExperts(3, 2, [4], modalities=groups),
        fusion="modality_experts")
    assert model.gate_structure()[0][2] == ["tabular_0", "tabular_1", "text_0", "text_1",
                                            "image_0", "image_1"]
