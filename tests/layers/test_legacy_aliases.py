"""The registered names of mtrec 0.1.0 still resolve and read old configs
(the `.keras` files themselves: tests/models/test_legacy_models.py)."""

import keras
import numpy as np
import pytest

from mtrec.layers import (
    CGCBackbone, GroupedExperts, MixtureOfExperts, PLEBackbone, SharedBottomBackbone)

MODALITIES = ["tabular", "text"]

# (registered name, 0.1.0 config, class it must now build)
OLD_CONFIGS = [
    ("mtrec.layers>CGC", {"num_tasks": 2, "num_specific_experts": 1,
                          "num_shared_experts": 1, "expert_units": [3],
                          "output_shared": False, "dropout": 0.0}, CGCBackbone),
    ("mtrec.layers>PLE", {"num_tasks": 2, "num_levels": 2, "num_specific_experts": 1,
                          "num_shared_experts": 1, "expert_units": [3], "dropout": 0.0},
     PLEBackbone),
    ("mtrec.layers>SharedBottom", {"units": [4], "num_outputs": 3, "dropout": 0.0},
     SharedBottomBackbone),
    ("mtrec.layers>ModalityExperts", {"modalities": MODALITIES, "num_experts": 2,
                                      "expert_units": [3], "shared_modality": "tabular",
                                      "dropout": 0.0}, GroupedExperts),
    ("mtrec.layers>ModalityMixtureOfExperts", {
        "modalities": MODALITIES, "num_experts": 1, "expert_units": [3], "num_gates": 2,
        "num_outputs": 2, "dropout": 0.0}, MixtureOfExperts),
    ("mtrec.layers>ModalityCGC", {"num_tasks": 2, "modalities": MODALITIES,
                                  "num_specific_experts": 1, "num_shared_experts": 1,
                                  "expert_units": [3], "output_shared": True,
                                  "dropout": 0.0}, CGCBackbone),
    ("mtrec.layers>ModalityPLE", {"num_tasks": 2, "modalities": MODALITIES,
                                  "num_levels": 2, "num_specific_experts": 1,
                                  "num_shared_experts": 1, "expert_units": [3],
                                  "dropout": 0.0}, PLEBackbone),
]


@pytest.mark.parametrize("name,config,new_class", OLD_CONFIGS, ids=[c[0] for c in OLD_CONFIGS])
def test_old_registered_names_read_old_configs(name, config, new_class):
    cls = keras.saving.get_registered_object(name)
    assert cls is not None, f"{name} no longer resolves"
    layer = keras.saving.deserialize_keras_object(
        {"module": None, "class_name": name.split(">")[1], "registered_name": name,
         "config": {"name": "old", **config}})
    assert isinstance(layer, new_class)


def test_old_ple_files_its_levels_under_the_old_names():
    # Keras files a list of layers by snake-cased class name: levels/cgc, ...
    modality_ple = keras.saving.get_registered_object("mtrec.layers>ModalityPLE")
    layer = modality_ple(2, 2, 1, 1, [3], modalities=MODALITIES)
    assert [type(level).__name__ for level in layer.levels] == ["ModalityCGC", "CGC"]
    plain = keras.saving.get_registered_object("mtrec.layers>PLE")(2, 2, 1, 1, [3])
    assert [type(level).__name__ for level in plain.levels] == ["CGC", "CGC"]
    new = PLEBackbone(2, 2, 1, 1, [3])
    assert [type(level).__name__ for level in new.levels] == ["CGCBackbone"] * 2


def test_the_aliases_compute_what_the_new_layers_do():
    x = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    old = keras.saving.get_registered_object("mtrec.layers>PLE")(2, 2, 1, 1, [3])
    new = PLEBackbone(2, 2, 1, 1, [3])
    old.build(x.shape)
    new.build(x.shape)
    for src, dst in zip(old.weights, new.weights):
        dst.assign(src)
    for a, b in zip(old(x), new(x)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
