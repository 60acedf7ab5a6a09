"""TaskTowers: one tower and head per task."""

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


def test_task_towers_heads():
    towers = TaskTowers([{"name": "a", "kind": "binary"},
                         {"name": "b", "kind": "regression"},
                         {"name": "c", "kind": "multiclass", "num_classes": 4}],
                        tower_units=[3])
    x = np.random.default_rng(0).normal(size=(5, 6)).astype("float32")
    out = towers([x, x, x])
    assert out["a"].shape == (5,) and out["b"].shape == (5,) and out["c"].shape == (5, 4)
    a = np.asarray(out["a"])
    assert np.all((a > 0) & (a < 1))
    np.testing.assert_allclose(np.asarray(out["c"]).sum(1), 1.0, rtol=1e-5)
    assert TaskTowers.from_config(towers.get_config()).tasks == towers.tasks




def test_task_towers_contract(run_layer_test):
    x = np.ones((5, 6), "float32")
    run_layer_test(TaskTowers, dict(tasks=[{"name": "a", "kind": "binary"},
                                           {"name": "c", "kind": "multiclass",
                                            "num_classes": 4}], tower_units=[3]),
                   [x, x], [(5,), (5, 4)], expected_num_trainable_weights=8)


def test_task_towers_batch_norm(run_layer_test):
    tasks = [{"name": "a", "kind": "binary", "num_classes": 1},
             {"name": "b", "kind": "multiclass", "num_classes": 3}]
    x = np.random.default_rng(0).normal(size=(5, 6)).astype("float32")
    # per tower: kernel, bias, gamma, beta; per head: kernel, bias
    towers = run_layer_test(TaskTowers, dict(tasks=tasks, tower_units=[3], batch_norm=True),
                            [x, x], [(5,), (5, 3)], expected_num_trainable_weights=12,
                            expected_num_non_trainable_weights=4)
    assert all(tower.batch_norm for tower in towers.towers)
    training, inference = towers([x, x], training=True), towers([x, x], training=False)
    assert not np.allclose(np.asarray(training["a"]), np.asarray(inference["a"]))
    assert TaskTowers(tasks).get_config()["batch_norm"] is False
