"""ModalityFusion: a softmax weight per modality group and example."""

import json

import keras
import numpy as np
import pandas as pd
import pytest

import mtrec
from mtrec.layers import FeatureEmbedding, FeaturePreprocessing, ModalityFusion, TaskTowers
from mtrec.layers.feature_embedding import modality_groups
from mtrec.layers.feature_preprocessing import (
    CATEGORICAL_KEY, NUMERIC_KEY, multihot_key, text_key, vector_key)

RNG = np.random.default_rng(0)
# tabular 5, text 3, image 2 (a projection of 1 + its missing indicator)
GROUPS = [RNG.normal(size=(6, 5)).astype("float32"),
          RNG.normal(size=(6, 3)).astype("float32"),
          RNG.normal(size=(6, 2)).astype("float32")]
MODALITIES = ["tabular", "text", "image"]


def test_modality_fusion_contract(run_layer_test):
    run_layer_test(ModalityFusion, dict(modalities=MODALITIES), GROUPS, [(6, 10), (6, 3)],
                   expected_num_trainable_weights=2,
                   call_kwargs=dict(return_gate_weights=True))


def test_gated_fusion_starts_as_concatenation():
    fusion = ModalityFusion(MODALITIES)
    out, weights = fusion(GROUPS, return_gate_weights=True)
    np.testing.assert_allclose(np.asarray(out), np.concatenate(GROUPS, axis=1), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(weights), 1 / 3, rtol=1e-6)


def test_gated_fusion_weights_by_hand():
    fusion = ModalityFusion(MODALITIES)
    fusion.build([g.shape for g in GROUPS])
    kernel = np.random.default_rng(1).normal(size=(10, 3)).astype("float32")
    bias = np.array([0.1, -0.2, 0.3], "float32")
    fusion.gate.set_weights([kernel, bias])
    out, weights = (np.asarray(t) for t in fusion(GROUPS, return_gate_weights=True))
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


