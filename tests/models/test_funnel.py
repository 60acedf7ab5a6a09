"""ESMM and AITM chained heads."""

import keras
import numpy as np
import pandas as pd
import pytest

import mtrec
from mtrec.layers import InformationTransfer, calibration_penalty
from mtrec.models import AITM, ESMM, funnel_tasks


@pytest.fixture(scope="module")
def funnel():
    rng = np.random.default_rng(0)
    rows = 600
    df = pd.DataFrame({"item": rng.choice(list("abcdef"), rows).astype(object),
                       "price": rng.normal(size=rows).astype("float32")})
    click = (rng.random(rows) < 0.3 + 0.4 * (df["item"] == "a")).astype(int)
    conversion = click * (rng.random(rows) < 0.5 + 0.3 * (df["price"] > 0)).astype(int)
    df["click"], df["conversion"] = click, conversion
    schema = mtrec.Schema.infer(df, tasks=funnel_tasks(), verbose=False).adapt(df)
    return df, schema


@pytest.mark.parametrize("cls", [ESMM, AITM])
def test_outputs_and_chain(funnel, cls):
    df, schema = funnel
    keras.utils.set_random_seed(0)
    model = cls(schema, tower_units=[8])
    model.compile(optimizer=keras.optimizers.Adam(0.01))
    history = model.fit(mtrec.data.from_pandas(df, schema, batch_size=64), epochs=2, verbose=0)
    assert "cvr_loss" not in history.history and "val_cvr_auc" not in history.history
    assert "cvr_auc" in history.history  # reported, on clicked impressions
    out = model.predict_on_batch(schema.raw_features(df.head(32)))
    assert set(out) == {"ctr", "cvr", "ctcvr"}
    if cls is ESMM:
        np.testing.assert_allclose(out["ctcvr"], out["ctr"] * out["cvr"], rtol=1e-6)
    else:
        np.testing.assert_allclose(out["cvr"], np.clip(out["ctcvr"] / out["ctr"], 0, 1),
                                   rtol=1e-5)


def test_esmm_cvr_metrics_count_clicked_impressions_only(funnel):
    df, schema = funnel
    model = ESMM(schema)
    model.compile()
    report = mtrec.evaluate(model, mtrec.data.from_pandas(df, schema))
    assert report.loc["cvr", "count"] == df["click"].sum()
    assert report.loc["ctr", "count"] == report.loc["ctcvr", "count"] == len(df)


def test_esmm_trains_ctr_and_ctcvr_losses_only(funnel):
    df, schema = funnel
    model = ESMM(schema)
    model.compile()
    x, y = next(iter(mtrec.data.from_pandas(df, schema, batch_size=100)))
    pred = model(x)
    bce = lambda t, p: float(mtrec.training.TaskLoss("binary")(t, p))
    expected = bce(y["ctr"], pred["ctr"]) + bce(y["ctcvr"], pred["ctcvr"])
    assert float(model.compute_loss(x, y, pred)) == pytest.approx(expected, rel=1e-5)


def test_calibration_penalty_zero_iff_conversion_below_click():
    click = np.array([0.5, 0.3, 0.9], "float32")
    assert float(calibration_penalty(click, click * 0.5)) == 0.0
    assert float(calibration_penalty(click, click)) == 0.0
    penalty = float(calibration_penalty(click, np.array([0.6, 0.3, 0.9], "float32")))
    assert penalty == pytest.approx(0.1 / 3, rel=1e-5)


def test_aitm_adds_the_calibrator_loss_in_training_only(funnel):
    df, schema = funnel
    model = AITM(schema, calibrator_weight=2.0)
    for w in model.conversion_head.weights[1:]:      # bias -> p_conversion > p_click
        w.assign(np.full(w.shape, 5.0, "float32"))
    for w in model.click_head.weights[1:]:
        w.assign(np.full(w.shape, -5.0, "float32"))
    raw = schema.raw_features(df.head(16))
    out = model(raw, training=True)
    expected = 2.0 * float(calibration_penalty(out["ctr"], out["ctcvr"]))
    assert expected > 0
    assert float(sum(model.losses)) == pytest.approx(expected, rel=1e-5)
    model(raw, training=False)
    assert not model.losses


def test_information_transfer_attention_shapes_and_weights():
    layer = InformationTransfer(4)
    previous, current = np.ones((3, 4), "float32"), np.zeros((3, 4), "float32")
    z = layer(previous, current)
    assert z.shape == (3, 4)
    assert InformationTransfer.from_config(layer.get_config()).units == 4


def test_funnel_models_require_funnel_tasks(table, schema):
    with pytest.raises(ValueError, match="funnel_tasks"):
        ESMM(schema)


@pytest.mark.parametrize("cls", [ESMM, AITM])
def test_funnel_round_trips_and_export(funnel, cls, tmp_path):
    df, schema = funnel
    backbone = mtrec.layers.SharedBottomBackbone(2, [8])
    model = cls(schema, backbone=backbone, tower_units=[4])
    model.compile()
    model.fit(mtrec.data.from_pandas(df, schema, batch_size=128), epochs=1, verbose=0)
    raw = schema.raw_features(df.head(10))
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    assert type(again) is cls and type(again.backbone).__name__ == "SharedBottomBackbone"
    expected = model.predict_on_batch(raw)
    for task, values in again.predict_on_batch(raw).items():
        np.testing.assert_allclose(values, expected[task], rtol=1e-6)
    import tensorflow as tf
    path = mtrec.export.saved_model(model, tmp_path / "export")
    served = tf.saved_model.load(str(path)).signatures["serving_default"](
        **{k: tf.constant(v.astype(str) if v.dtype == object else v) for k, v in raw.items()})
    assert set(served) == {"ctr", "cvr", "ctcvr"}
    for task in expected:
        np.testing.assert_allclose(served[task].numpy(), expected[task], atol=1e-6)


@pytest.mark.parametrize("cls", [ESMM, AITM])
def test_funnel_batch_norm_in_named_backbone_and_towers(funnel, cls, tmp_path):
    df, schema = funnel
    keras.utils.set_random_seed(0)
    model = cls(schema, backbone="mmoe", tower_units=[4], batch_norm=True,
                embeddings_initializer="glorot_uniform")
    assert model.backbone.batch_norm
    towers = ([model.towers] if cls is ESMM
              else [model.click_tower, model.conversion_tower])
    assert all(w.name in ("moving_mean", "moving_variance")
               for t in towers for w in t.non_trainable_weights)
    assert all(t.non_trainable_weights for t in towers)
    model.compile()
    model.fit(mtrec.data.from_pandas(df, schema, batch_size=128), epochs=1, verbose=0)
    means = [np.asarray(w) for w in model.non_trainable_weights if w.name == "moving_mean"]
    assert means and all(np.any(m != 0.0) for m in means)
    model.save(tmp_path / "m.keras")
    again = keras.saving.load_model(tmp_path / "m.keras")
    assert again.batch_norm and again.backbone.batch_norm
    assert again.get_config()["embeddings_initializer"] == "glorot_uniform"
    raw = schema.raw_features(df.head(10))
    expected = model.predict_on_batch(raw)
    for task, values in again.predict_on_batch(raw).items():
        np.testing.assert_array_equal(values, expected[task])


def test_funnel_keeps_a_given_backbone_as_built(funnel):
    _, schema = funnel
    backbone = mtrec.layers.SharedBottomBackbone(2, [8])
    model = ESMM(schema, backbone=backbone, batch_norm=True)
    assert not model.backbone.batch_norm and model.towers.batch_norm
