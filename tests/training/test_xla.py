"""XLA-compiled step functions: the same math as uncompiled steps, for every
model family, feature kind and loss weighting; when "auto" compiles; raw
columns refused under jit_compile=True."""

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import mtrec
from helpers import SMALL_MODEL_ARGS, error_of
from mtrec.layers.feature_preprocessing import ENCODED_PREFIX
from mtrec.models import AITM, ESMM, MODELS, funnel_tasks
from mtrec.training import xla

SMALL = SMALL_MODEL_ARGS


def encoded_batch(df, schema, rows=64):
    """One encoded batch `(features, labels)` of the first `rows` rows."""
    return next(iter(mtrec.data.from_pandas(df.head(rows), schema, batch_size=rows)))


def one_step_weights(make, batch, jit_compile):
    """The weights after one training step on `batch` from seed-0 weights."""
    keras.utils.set_random_seed(0)
    model = make()
    model.compile(optimizer=keras.optimizers.Adam(0.01), jit_compile=jit_compile)
    model.train_on_batch(*batch) if jit_compile is False else model.fit(
        tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0)
    return model, [w.numpy() for w in model.weights]


def assert_compiled_step_matches(make, batch):
    """One compiled step gives the weights of one uncompiled step, and the
    compiled predict the eager outputs."""
    compiled, after_xla = one_step_weights(make, batch, True)
    assert compiled.__dict__["_xla_plan"]["train"] is True
    _, after_plain = one_step_weights(make, batch, False)
    for a, b in zip(after_xla, after_plain):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-4)
    predicted = compiled.predict(batch[0], verbose=0)
    eager = compiled(batch[0], training=False)
    for task, value in eager.items():
        np.testing.assert_allclose(predicted[task], np.asarray(value), atol=1e-5)


# Each case compiles two XLA programs (~5-10 s on 2 cores): the default run
# covers MMoE (with every feature kind), the rest run with `make test-slow`.
DEFAULT_RUN = ("MMoE",)


@pytest.mark.parametrize("name", [n if n in DEFAULT_RUN else pytest.param(n, marks=pytest.mark.slow)
                                  for n in MODELS])
def test_compiled_step_matches_uncompiled(table, schema, name):
    # The shared table has every feature kind: categorical, numeric with
    # NaN, multi-hot, text and a vector; three task kinds.
    # STAR without PN: PN subtracts each scenario's mean, so the gradient of
    # a bias just before it (the vector projection's) is zero up to float
    # noise, which Adam's first step scales to +-learning rate either way.
    extra = {"STAR": dict(partitioned_norm=False)}.get(name, {})
    assert_compiled_step_matches(
        lambda: MODELS[name](schema, tower_units=[4], **{**SMALL[name], **extra}),
        encoded_batch(table, schema))


@pytest.mark.slow
@pytest.mark.parametrize("fusion", ["gated", "modality_experts"])
def test_compiled_step_with_fusions(table, schema, fusion):
    batch = encoded_batch(table, schema)
    assert_compiled_step_matches(
        lambda: mtrec.models.MMoE(schema, num_experts=2, expert_units=[4],
                                  tower_units=[4], fusion=fusion), batch)


@pytest.mark.slow
def test_modality_dropout_trains_compiled(table, schema):
    # Random masks inside the compiled step (no parity: the draws differ).
    keras.utils.set_random_seed(0)
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4], tower_units=[4],
                              modality_dropout=0.5)
    model.compile(jit_compile=True)
    history = model.fit(mtrec.data.from_pandas(table, schema, batch_size=64), epochs=2,
                        verbose=0)
    assert np.isfinite(history.history["loss"]).all()


@pytest.mark.parametrize("cls", [ESMM, pytest.param(AITM, marks=pytest.mark.slow)])
def test_compiled_funnel_heads(cls):
    rng = np.random.default_rng(0)
    rows = 256
    frame = pd.DataFrame({"item": rng.choice(list("abcdef"), rows).astype(object),
                          "price": rng.normal(size=rows).astype("float32")})
    frame["click"] = (rng.random(rows) < 0.4).astype(int)
    frame["conversion"] = frame["click"] * (rng.random(rows) < 0.5).astype(int)
    schema = mtrec.Schema.infer(frame, tasks=funnel_tasks(), verbose=False).adapt(frame)
    assert_compiled_step_matches(lambda: cls(schema, tower_units=[4]),
                                 encoded_batch(frame, schema))


@pytest.mark.parametrize("weighting", [pytest.param("uncertainty", marks=pytest.mark.slow),
                                       pytest.param("dwa", marks=pytest.mark.slow),
                                       pytest.param("gradnorm", marks=pytest.mark.slow),
                                       pytest.param("pcgrad", marks=pytest.mark.slow)])
def test_compiled_step_with_loss_weighting(table, schema, weighting):
    batch = encoded_batch(table, schema)

    def weights_after_step(jit_compile):
        keras.utils.set_random_seed(0)
        model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4], tower_units=[4])
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss_weighting=weighting,
                      jit_compile=jit_compile)
        history = model.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"]).all()
        return [w.numpy() for w in model.weights]

    for a, b in zip(weights_after_step(True), weights_after_step(False)):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-4)


def dataset_of(batches, encoded=True, batch_size=8):
    """A dataset of `batches` batches of encoded (or raw) one-column features."""
    key = ENCODED_PREFIX + "numeric" if encoded else "age"
    rows = batches * batch_size
    return tf.data.Dataset.from_tensor_slices(
        ({key: np.zeros((rows, 1), "float32")}, {"click": np.zeros(rows)})).batch(batch_size)


@pytest.fixture(scope="module")
def model(schema):
    model = mtrec.models.SharedBottom(schema, bottom_units=[4], tower_units=[4])
    model.compile()
    return model


def test_auto_compiles_long_encoded_training_only(model):
    long = dataset_of(xla.AUTO_MIN_TRAIN_STEPS)
    assert xla.plan_train("auto", model, long) == {"train": True, "test": False}
    # Steps count over epochs; a few batches do not repay the compilation.
    assert xla.plan_train("auto", model, dataset_of(10), epochs=xla.AUTO_MIN_TRAIN_STEPS // 10)[
        "train"]
    assert not xla.plan_train("auto", model, dataset_of(10), epochs=2)["train"]
    # A stream of unknown length counts as long.
    stream = long.filter(lambda x, y: True)
    assert int(stream.cardinality()) < 0
    assert xla.plan_train("auto", model, stream)["train"]
    # Raw columns run the lookups: never compiled under "auto".
    assert not xla.plan_train("auto", model, dataset_of(xla.AUTO_MIN_TRAIN_STEPS, False))[
        "train"]
    assert not xla.plan_train(False, model, long)["train"]
    assert not xla.plan_inference("auto", model, long, "predict")


def test_auto_does_not_compile_distributed_or_eager(schema):
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = mtrec.models.SharedBottom(schema, bottom_units=[4], tower_units=[4])
        model.compile()
    assert not xla.plan_train("auto", model, dataset_of(xla.AUTO_MIN_TRAIN_STEPS))["train"]
    eager = mtrec.models.SharedBottom(schema, bottom_units=[4], tower_units=[4])
    eager.compile(run_eagerly=True)
    assert not xla.plan_train(True, eager, dataset_of(xla.AUTO_MIN_TRAIN_STEPS))["train"]


def test_jit_true_refuses_raw_columns(model, table, schema):
    raw = dataset_of(2, encoded=False)
    message = error_of(lambda: xla.plan_train(True, model, raw))
    assert "raw feature columns" in message and "from_pandas" in message
    message = error_of(lambda: xla.plan_train(True, model, dataset_of(2), validation=raw))
    assert "validation_data" in message
    message = error_of(lambda: xla.plan_inference(True, model, schema.raw_features(table),
                                                  "predict"))
    assert "predict" in message and "columns ['color'" in message


def test_plan_switch_rebuilds_step_functions(table, schema, monkeypatch):
    # Encoded (compiled) then raw (uncompiled) training and predictions
    # from one model.
    monkeypatch.setattr(xla, "AUTO_MIN_TRAIN_STEPS", 1)
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4], tower_units=[4])
    model.compile(jit_compile="auto")
    batch = encoded_batch(table, schema, rows=32)
    model.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0)
    assert model.__dict__["_xla_plan"]["train"] is True
    model.fit(schema.raw_features(table.head(32)), batch[1], epochs=1, verbose=0)
    assert model.__dict__["_xla_plan"]["train"] is False
    raw = model.predict(schema.raw_features(table.head(32)), verbose=0)
    encoded = model.predict(batch[0], verbose=0)
    for task in raw:
        np.testing.assert_allclose(raw[task], encoded[task], atol=1e-6)


def test_bad_jit_compile_value(schema):
    model = mtrec.models.SharedBottom(schema, bottom_units=[4], tower_units=[4])
    assert "'auto', True or False" in error_of(lambda: model.compile(jit_compile="yes"))


def test_saved_model_keeps_jit_choice(table, schema, tmp_path):
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4], tower_units=[4])
    model.compile(jit_compile=True)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded._requested_jit_compile is True
    assert xla.plan_train(loaded._requested_jit(), loaded, dataset_of(2))["train"]
