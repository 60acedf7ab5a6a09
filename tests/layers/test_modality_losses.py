"""The modality losses by hand (InfoNCE, reconstruction), their masks, the
specs' validation, and the ModalityLosses layer under the harness."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec.layers import Alignment, ModalityLosses, Reconstruction, info_nce, \
    reconstruction_loss
from mtrec.layers.modality_losses import parse_modality_losses, spec_to_dict


def numpy_info_nce(a, b, temperature):
    """CLIP's symmetric loss over all rows, written out in NumPy."""
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    s = a @ b.T / temperature

    def cross_entropy(logits):
        logits = logits - logits.max(axis=1, keepdims=True)
        log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        return -np.diag(log_softmax).mean()

    return 0.5 * (cross_entropy(s) + cross_entropy(s.T))


def value(x):
    return float(np.asarray(x))


@pytest.fixture
def pairs():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(5, 3)).astype("float32"),
            rng.normal(size=(5, 3)).astype("float32"))


# -- InfoNCE --------------------------------------------------------------------------
def test_info_nce_known_similarities():
    # unit rows: s = a b^T / t is [[1, 0], [0, 1]] / 0.5
    a = np.eye(2, dtype="float32")
    loss = value(info_nce(a, a, np.array([True, True]), 0.5))
    expected = np.log(np.exp(2.0) + 1.0) - 2.0  # -log(e^2 / (e^2 + e^0)), both ways
    np.testing.assert_allclose(loss, expected, rtol=1e-6)


def test_info_nce_matches_numpy(pairs):
    a, b = pairs
    loss = value(info_nce(a, b, np.ones(5, bool), 0.1))
    np.testing.assert_allclose(loss, numpy_info_nce(a, b, 0.1), rtol=1e-5)
    # scaling rows changes nothing (L2-normalised); swapping sides neither
    np.testing.assert_allclose(value(info_nce(3 * a, b, np.ones(5, bool), 0.1)), loss,
                               rtol=1e-5)
    np.testing.assert_allclose(value(info_nce(b, a, np.ones(5, bool), 0.1)), loss,
                               rtol=1e-5)


def test_info_nce_drops_invalid_rows_and_columns(pairs):
    a, b = pairs
    valid = np.array([True, False, True, True, False])
    loss = value(info_nce(a, b, valid, 0.2))
    np.testing.assert_allclose(loss, numpy_info_nce(a[valid], b[valid], 0.2), rtol=1e-5)
    # whatever the invalid rows hold, the loss is the same
    a2, b2 = a.copy(), b.copy()
    a2[~valid], b2[~valid] = 100.0, -7.0
    np.testing.assert_allclose(value(info_nce(a2, b2, valid, 0.2)), loss, rtol=1e-6)


def test_info_nce_is_zero_below_two_valid_rows(pairs):
    a, b = pairs
    for valid in (np.zeros(5, bool), np.eye(5, dtype=bool)[2]):
        assert value(info_nce(a, b, valid, 0.1)) == 0.0
    # and its gradient is finite (zero), not NaN
    x = tf.Variable(a)
    with tf.GradientTape() as tape:
        loss = info_nce(x, b, np.eye(5, dtype=bool)[2], 0.1)
    assert np.isfinite(tape.gradient(loss, x).numpy()).all()


# -- reconstruction -------------------------------------------------------------------
def test_reconstruction_is_zero_on_the_target(pairs):
    target, _ = pairs
    present = np.ones(5, bool)
    assert value(reconstruction_loss(target, target, present, "mse")) == 0.0
    assert abs(value(reconstruction_loss(target, target, present, "cosine"))) < 1e-6


def test_reconstruction_values_by_hand():
    prediction = np.array([[1.0, 0.0], [1.0, 1.0], [3.0, 4.0]], "float32")
    target = np.array([[0.0, 1.0], [2.0, 2.0], [0.0, 0.0]], "float32")
    present = np.array([True, True, False])
    # mse: row 0 (1 + 1) / 2 = 1, row 1 (1 + 1) / 2 = 1; row 2 left out
    assert value(reconstruction_loss(prediction, target, present, "mse")) == 1.0
    # cosine: row 0 orthogonal (1 - 0), row 1 parallel (1 - 1): mean 0.5
    np.testing.assert_allclose(
        value(reconstruction_loss(prediction, target, present, "cosine")), 0.5, rtol=1e-6)
    # no row present: 0, not NaN
    assert value(reconstruction_loss(prediction, target, np.zeros(3, bool), "mse")) == 0.0


def test_missing_rows_change_nothing(pairs):
    prediction, target = pairs
    present = np.array([True, False, True, False, True])
    for loss in ("mse", "cosine"):
        before = value(reconstruction_loss(prediction, target, present, loss))
        changed = target.copy()
        changed[~present] = 50.0
        assert value(reconstruction_loss(prediction, changed, present, loss)) == before


# -- specs ----------------------------------------------------------------------------
MODALITIES = ["tabular", "text", "image"]


def test_specs_from_dicts_fill_defaults_and_round_trip():
    specs = parse_modality_losses(
        [{"kind": "reconstruction", "modality": "text", "weight": 0.1},
         {"kind": "alignment", "modalities": ["text", "tabular"], "weight": 0.2,
          "learn_temperature": True}], MODALITIES)
    assert specs == [Reconstruction("text", 0.1, "cosine", "fused"),
                     Alignment(("text", "tabular"), 0.2, 0.1, True, 16)]
    assert [s.log_name for s in specs] == ["text_reconstruction_loss",
                                           "text_tabular_alignment_loss"]
    dicts = [spec_to_dict(s) for s in specs]
    assert dicts[0] == {"kind": "reconstruction", "modality": "text", "weight": 0.1,
                        "loss": "cosine", "source": "fused"}
    assert parse_modality_losses(dicts, MODALITIES) == specs
    # spec objects are taken as they are
    assert parse_modality_losses(specs, MODALITIES) == specs


@pytest.mark.parametrize("spec, message", [
    ({"kind": "contrast", "modality": "text"}, r"kind 'contrast'; .*\['reconstruction', "
                                               r"'alignment'\]"),
    ({"kind": "reconstruction", "modality": "audio"},
     r"modality 'audio', but the schema's modality groups are \['tabular', 'text', 'image'\]"),
    ({"kind": "reconstruction", "modality": "text", "weight": -0.1}, "weight -0.1"),
    ({"kind": "reconstruction", "modality": "text", "loss": "l1"}, "loss 'l1'"),
    ({"kind": "reconstruction", "modality": "text", "source": "all"}, "source 'all'"),
    ({"kind": "reconstruction", "modality": "text", "wieght": 1}, r"unknown keys \['wieght'\]"),
    ({"kind": "reconstruction"}, r"needs \['modality'\]"),
    ({"kind": "alignment", "modalities": ["text", "text"]}, "two different modalities"),
    ({"kind": "alignment", "modalities": ["text", "image"], "temperature": 0},
     "temperature 0"),
    ({"kind": "alignment", "modalities": ["text", "image"], "temperature": 5.0,
      "learn_temperature": True}, r"clipped to \[0.01, 1.0\]"),
])
def test_spec_errors(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_modality_losses([spec], MODALITIES)


def test_a_loss_declared_twice_is_refused():
    with pytest.raises(ValueError, match="more than once"):
        parse_modality_losses([{"kind": "reconstruction", "modality": "text"}] * 2)


def test_one_modality_is_refused():
    with pytest.raises(ValueError, match=r"only the modality group \['tabular'\]"):
        ModalityLosses([{"kind": "reconstruction", "modality": "tabular"}],
                       ["tabular"], [4])


# -- the layer ------------------------------------------------------------------------
def test_modality_losses_layer(run_layer_test, groups, modalities):
    present = {m: np.array([True, False, True, True, True, False]) for m in modalities}
    specs = [{"kind": "reconstruction", "modality": "image", "loss": "mse",
              "source": "others"},
             {"kind": "alignment", "modalities": ["text", "tabular"], "dim": 4,
              "learn_temperature": True}]
    sources = {"image": np.concatenate(groups[:2], axis=1)}
    # head (W, b), two projections (W, b each), one log-temperature
    layer = run_layer_test(ModalityLosses, dict(modality_losses=specs,
                                                modalities=modalities,
                                                group_dims=[5, 3, 2]),
                           (groups, present, sources), [(), ()], 7,
                           model_round_trip=False)
    values = layer(groups, present, sources)
    assert list(values) == ["image_reconstruction_loss", "text_tabular_alignment_loss"]
    # the head's loss is the hand-written one on its own prediction
    prediction = layer.reconstruct("image", sources["image"])
    np.testing.assert_allclose(
        value(values["image_reconstruction_loss"]),
        value(reconstruction_loss(prediction, groups[2], present["image"], "mse")), rtol=1e-6)
    np.testing.assert_allclose(value(layer.temperature(0)), 0.1, rtol=1e-6)
    # the learned temperature is clipped to [0.01, 1]
    layer.log_temperatures[0].assign(5.0)
    np.testing.assert_allclose(value(layer.temperature(0)), 1.0, rtol=1e-6)
    layer.log_temperatures[0].assign(-9.0)
    np.testing.assert_allclose(value(layer.temperature(0)), 0.01, rtol=1e-5)
    values = layer(groups, present, sources)
    weighted = value(layer.weighted_sum(values))
    np.testing.assert_allclose(weighted, sum(value(v) for v in values.values()), rtol=1e-6)
    assert [t.name for t in layer.loss_trackers] == list(values)


def test_the_target_gets_no_gradient(groups, modalities):
    layer = ModalityLosses([{"kind": "reconstruction", "modality": "text",
                             "source": "others"}], modalities, [5, 3, 2])
    layer.build()
    text = tf.Variable(groups[1])
    present = {m: np.ones(6, bool) for m in modalities}
    with tf.GradientTape() as tape:
        loss = layer([groups[0], text, groups[2]], present,
                     {"text": np.concatenate([groups[0], groups[2]], axis=1)})[
            "text_reconstruction_loss"]
    assert tape.gradient(loss, text) is None
