"""Modality groups, vectors, modality dropout, gated fusion and modality experts."""

import json

import keras
import numpy as np
import pandas as pd
import pytest

import mtrec
from mtrec.layers import (
    CGC, FeatureEmbedding, FeaturePreprocessing, ModalityCGC, ModalityExperts,
    ModalityFusion, ModalityMixtureOfExperts, ModalityPLE)
from mtrec.layers.feature_embedding import modality_groups

RNG = np.random.default_rng(0)
# tabular 5, text 3, image 2 (a projection of 1 + its missing indicator)
GROUPS = [RNG.normal(size=(6, 5)).astype("float32"),
          RNG.normal(size=(6, 3)).astype("float32"),
          RNG.normal(size=(6, 2)).astype("float32")]
MODALITIES = ["tabular", "text", "image"]


@pytest.fixture(scope="module")
def tiny():
    df = pd.DataFrame({
        "c": ["x", "y", "x", None],
        "n": np.array([1.0, 3.0, np.nan, 2.0], "float32"),
        "t": ["Good fit!", "bad", "", "good GOOD"],
        "cap": ["a photo", "", "two cats", "a dog"],
        "v": [np.array([3.0, 4.0]), np.array([30.0, 40.0]), None, np.array([0.0, 1.0])],
        "y": [0, 1, 1, 0],
    })
    schema = mtrec.Schema(
        [mtrec.Categorical("c", embedding_dim=2), mtrec.Numeric("n"),
         mtrec.Text("t", embedding_dim=2),
         # a caption, tagged as part of the image modality
         mtrec.Text("cap", embedding_dim=3, modality="image"),
         mtrec.Vector("v", projection_dim=2, normalize=True)],
        {"y": "binary"}).adapt(df)
    encoded = FeaturePreprocessing(schema)(schema.raw_features(df))
    return df, schema, encoded


def embedding_with_missing_values(schema, **kwargs):
    layer = FeatureEmbedding(schema, **kwargs)
    layer.build()
    for i, encoder in enumerate(layer.text_encoders):
        encoder.missing.assign(np.full(encoder.embedding_dim, 10.0 + i, "float32"))
    for i, weight in enumerate(layer.vector_missing):
        weight.assign(np.full(weight.shape, -7.0 - i, "float32"))
    return layer


# -- FeatureEmbedding: groups, vectors, modality dropout ------------------------
def test_groups_follow_the_modality_tags(tiny):
    _, schema, encoded = tiny
    layer = embedding_with_missing_values(schema)
    assert modality_groups(schema) == layer.modalities == ["tabular", "text", "image"]
    # tabular: c 2 + n 2; text: t 2; image: cap 3 + v (2 + 1)
    assert layer.group_dims == [4, 2, 6] and layer.output_dim == 12
    groups = [np.asarray(g) for g in layer(encoded, return_groups=True)]
    assert [g.shape for g in groups] == [(4, 4), (4, 2), (4, 6)]
    # the groups hold exactly the columns of the concatenation
    np.testing.assert_array_equal(np.concatenate(groups, axis=1), np.asarray(layer(encoded)))


def test_mixed_modalities_in_one_categorical_table_are_split():
    df = pd.DataFrame({"a": ["p", "q"], "b": ["u", "v"], "y": [0, 1]})
    schema = mtrec.Schema([mtrec.Categorical("a", embedding_dim=2),
                           mtrec.Categorical("b", embedding_dim=2, modality="text")],
                          {"y": "binary"}).adapt(df)
    layer = FeatureEmbedding(schema)
    encoded = FeaturePreprocessing(schema)(schema.raw_features(df))
    x = np.asarray(layer(encoded))
    tabular, text = (np.asarray(g) for g in layer(encoded, return_groups=True))
    np.testing.assert_array_equal(tabular, x[:, :2])
    np.testing.assert_array_equal(text, x[:, 2:])


def test_vectors_normalized_missing_embedding_and_flag(tiny):
    _, schema, encoded = tiny
    layer = embedding_with_missing_values(schema)
    x = np.asarray(layer(encoded))
    vector = x[:, -3:]
    # [3, 4] and [30, 40] normalise to the same vector
    np.testing.assert_allclose(vector[0], vector[1], rtol=1e-6)
    # the missing row: the learned missing embedding, flag 1
    np.testing.assert_array_equal(vector[2], [-7.0, -7.0, 1.0])
    np.testing.assert_array_equal(vector[[0, 1, 3], 2], 0.0)
    # empty text -> that feature's missing embedding
    np.testing.assert_array_equal(x[2, 4:6], [10.0, 10.0])
    np.testing.assert_array_equal(x[1, 6:9], [11.0, 11.0, 11.0])


def test_modality_dropout_only_in_training(tiny):
    _, schema, encoded = tiny
    plain = embedding_with_missing_values(schema)
    dropping = embedding_with_missing_values(schema, modality_dropout=0.5, seed=3)
    dropping.set_weights(plain.get_weights())
    expected = np.asarray(plain(encoded))
    for _ in range(2):  # deterministic and unaffected
        np.testing.assert_array_equal(np.asarray(dropping(encoded, training=False)), expected)
    assert dropping.droppable_modalities == ["text", "image"]
    # in training some rows differ, and only in their non-tabular columns
    changed = np.zeros(expected.shape, bool)
    for _ in range(6):
        changed |= np.asarray(dropping(encoded, training=True)) != expected
    assert changed.any() and not changed[:, :4].any()


def test_modality_dropout_one_drops_every_example(tiny):
    _, schema, encoded = tiny
    layer = embedding_with_missing_values(schema, modality_dropout=1.0)
    tabular, text, image = (np.asarray(g) for g in
                            layer(encoded, training=True, return_groups=True))
    np.testing.assert_array_equal(tabular, np.asarray(layer(encoded))[:, :4])
    np.testing.assert_array_equal(text, np.full((4, 2), 10.0))
    np.testing.assert_array_equal(image, np.tile([11.0, 11.0, 11.0, -7.0, -7.0, 1.0], (4, 1)))


def test_embedding_config_round_trip(tiny):
    _, schema, _ = tiny
    layer = FeatureEmbedding(schema, modality_dropout=0.25, seed=5)
    config = layer.get_config()
    json.dumps(config)
    again = FeatureEmbedding.from_config(config)
    assert again.get_config() == config and again.modality_dropout == 0.25
    with pytest.raises(ValueError, match=r"modality_dropout must be a float in \[0, 1\]"):
        FeatureEmbedding(schema, modality_dropout=1.5)


# -- ModalityFusion ------------------------------------------------------------------
def test_gated_fusion_starts_as_concatenation():
    fusion = ModalityFusion(MODALITIES)
    out, weights = fusion(GROUPS, return_weights=True)
    np.testing.assert_allclose(np.asarray(out), np.concatenate(GROUPS, axis=1), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(weights), 1 / 3, rtol=1e-6)


def test_gated_fusion_weights_by_hand():
    fusion = ModalityFusion(MODALITIES)
    fusion.build([g.shape for g in GROUPS])
    kernel = RNG.normal(size=(10, 3)).astype("float32")
    bias = np.array([0.1, -0.2, 0.3], "float32")
    fusion.gate.set_weights([kernel, bias])
    out, weights = (np.asarray(t) for t in fusion(GROUPS, return_weights=True))
    logits = np.concatenate(GROUPS, axis=1) @ kernel + bias
    expected = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    np.testing.assert_allclose(weights, expected, rtol=1e-5)
    np.testing.assert_allclose(weights.sum(1), 1.0, rtol=1e-6)
    scaled = [g * 3 * expected[:, [i]] for i, g in enumerate(GROUPS)]
    np.testing.assert_allclose(out, np.concatenate(scaled, axis=1), rtol=1e-5)
    again = ModalityFusion.from_config(fusion.get_config())
    assert again.modalities == MODALITIES
    assert fusion.compute_output_shape([g.shape for g in GROUPS]) == (6, 10)


def test_fusion_rejects_wrong_number_of_groups():
    with pytest.raises(ValueError, match="takes 3 group tensors, got 2"):
        ModalityFusion(MODALITIES)(GROUPS[:2])


# -- modality experts -----------------------------------------------------------
def test_modality_experts_read_their_group_plus_tabular():
    experts = ModalityExperts(MODALITIES, num_experts=2, expert_units=[4, 3])
    out = np.asarray(experts(GROUPS))
    assert out.shape == (6, 6, 3)
    assert experts.expert_names == ["tabular_0", "tabular_1", "text_0", "text_1",
                                    "image_0", "image_1"]
    # input widths: tabular 5; text 5 + 3; image 5 + 2
    assert [bank.kernels[0].shape[1] for bank in experts.banks] == [5, 8, 7]
    # changing the image group moves only the image experts
    moved = np.asarray(experts([GROUPS[0], GROUPS[1], GROUPS[2] + 1.0]))
    np.testing.assert_array_equal(moved[:, :4], out[:, :4])
    assert not np.allclose(moved[:, 4:], out[:, 4:])
    again = ModalityExperts.from_config(experts.get_config())
    assert again.get_config() == experts.get_config()
    assert len(experts.last_layer_variables()) == 6


def test_modality_experts_without_tabular_group_read_their_own():
    experts = ModalityExperts(["text", "image"], 1, [2])
    experts(GROUPS[1:])
    assert [bank.kernels[0].shape[1] for bank in experts.banks] == [3, 2]


def test_modality_mixture_of_experts():
    layer = ModalityMixtureOfExperts(MODALITIES, num_experts=2, expert_units=[4],
                                     num_gates=3)
    outputs, weights = layer(GROUPS, return_gate_weights=True)
    assert len(outputs) == 3 and outputs[0].shape == (6, 4)
    assert weights.shape == (6, 3, 6)
    np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, rtol=1e-5)
    again = ModalityMixtureOfExperts.from_config(layer.get_config())
    again(GROUPS)
    assert again.count_params() == layer.count_params()
    omoe = ModalityMixtureOfExperts(MODALITIES, 1, [4], num_gates=1, num_outputs=2)
    first, second = omoe(GROUPS)
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))


def test_modality_cgc_gates_see_own_and_modality_experts():
    layer = ModalityCGC(2, MODALITIES, num_specific_experts=1, num_shared_experts=2,
                        expert_units=[4], output_shared=True)
    outputs, weights = layer(GROUPS, return_gate_weights=True)
    assert len(outputs) == 3 and weights.shape == (6, 3, 8)
    weights = np.asarray(weights)
    assert layer.expert_names(["a", "b"]) == [
        "a_0", "b_0", "tabular_0", "tabular_1", "text_0", "text_1", "image_0", "image_1"]
    # task a's gate never uses task b's expert; the shared gate sees all
    np.testing.assert_array_equal(weights[:, 0, 1], 0.0)
    np.testing.assert_array_equal(weights[:, 1, 0], 0.0)
    assert (weights[:, 2] > 0).all()
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    # a modality named like a task keeps expert names unique
    assert layer.expert_names(["text", "b"])[2:4] == ["tabular_0", "tabular_1"]
    assert "shared_text_0" in layer.expert_names(["text", "b"])
    with pytest.raises(ValueError, match="num_shared_experts >= 1"):
        ModalityCGC(2, MODALITIES, 1, 0, [4])


def test_modality_ple_levels():
    layer = ModalityPLE(2, MODALITIES, num_levels=2, num_specific_experts=1,
                        num_shared_experts=1, expert_units=[4])
    outputs, weights = layer(GROUPS, return_gate_weights=True)
    assert len(outputs) == 2 and outputs[0].shape == (6, 4)
    assert isinstance(layer.levels[0], ModalityCGC) and isinstance(layer.levels[1], CGC)
    assert [w.shape for w in weights] == [(6, 3, 5), (6, 2, 3)]
    again = ModalityPLE.from_config(layer.get_config())
    again(GROUPS)
    assert again.count_params() == layer.count_params()
    assert len(ModalityPLE(2, MODALITIES, 1, 1, 1, [4]).levels) == 1


def test_modality_layers_round_trip_in_a_keras_model(tmp_path):
    inputs = [keras.Input((g.shape[1],)) for g in GROUPS]
    fused = ModalityFusion(MODALITIES)(inputs)
    mixed = ModalityMixtureOfExperts(MODALITIES, 1, [3], num_gates=1, num_outputs=1)(inputs)
    model = keras.Model(inputs, [fused, mixed[0]])
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    for a, b in zip(model.predict_on_batch(GROUPS), again.predict_on_batch(GROUPS)):
        np.testing.assert_array_equal(a, b)
