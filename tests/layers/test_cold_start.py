"""Trained cold-start buckets and bounded regression heads:
`Categorical(oov_rate=...)` trains the out-of-vocabulary embedding row
(training only); `TaskSpec(output_range=...)` bounds the head."""

import keras
import numpy as np
import pandas as pd
import pytest

import mtrec
from mtrec.layers import FeatureEmbedding, FeaturePreprocessing, TaskTowers
from mtrec.layers.feature_preprocessing import CATEGORICAL_KEY
from mtrec.schema import Categorical, Numeric


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    n = 256
    color = rng.choice(["red", "green", "blue"], n)
    return pd.DataFrame({"color": color, "x": rng.normal(size=n).astype("float32"),
                         "click": (color == "red").astype(int),
                         "spend": rng.uniform(2.0, 4.0, n)})


def oov_row_after_training(table, oov_rate):
    """The OOV row of `color`'s table before and after 3 steps of training."""
    schema = mtrec.Schema([Categorical("color", embedding_dim=4, oov_rate=oov_rate),
                           Numeric("x")], {"click": "binary"}).adapt(table)
    keras.utils.set_random_seed(1)
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4], tower_units=[4])
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    # one table of width 4; color's ids start at row 0, and id 0 is its OOV
    (_, _, table_layer), = model.embedding.categorical_groups
    before = np.asarray(table_layer.embeddings)[0].copy()
    model.fit(mtrec.data.from_pandas(table, schema, batch_size=64).take(3), epochs=1,
              verbose=0)
    return before, np.asarray(table_layer.embeddings)[0], model


@pytest.mark.slow
@pytest.mark.parametrize("oov_rate", [0.0, 0.3])
def test_oov_row_trains_in_fit_only_with_oov_rate(table, oov_rate):
    before, after, _ = oov_row_after_training(table, oov_rate)
    if oov_rate:
        assert np.abs(after - before).max() > 1e-4
    else:
        np.testing.assert_array_equal(after, before)


@pytest.mark.parametrize("oov_rate", [0.0, 0.3])
def test_oov_row_trains_in_a_few_steps_only_with_oov_rate(table, oov_rate):
    import tensorflow as tf
    schema = mtrec.Schema([Categorical("color", embedding_dim=3, oov_rate=oov_rate)],
                          {"click": "binary"}).adapt(table)
    embedding = FeatureEmbedding(schema, seed=0)
    embedding.build()
    encoded = FeaturePreprocessing(schema)(schema.raw_features(table))
    labels = tf.constant(table["click"].to_numpy("float32"))[:, None]
    (_, _, layer), = embedding.categorical_groups
    before = np.asarray(layer.embeddings).copy()
    optimizer = keras.optimizers.SGD(0.5)
    for _ in range(3):
        with tf.GradientTape() as tape:
            vectors = embedding(encoded, training=True)
            loss = tf.reduce_mean(tf.square(tf.reduce_sum(vectors, 1, keepdims=True) - labels))
        optimizer.apply_gradients(zip(tape.gradient(loss, [layer.embeddings]),
                                      [layer.embeddings]))
    after = np.asarray(layer.embeddings)
    assert np.abs(after[1:] - before[1:]).max() > 1e-3   # the seen values train
    if oov_rate:
        assert np.abs(after[0] - before[0]).max() > 1e-3
    else:
        np.testing.assert_array_equal(after[0], before[0])


def test_oov_replacement_happens_in_training_only(table):
    schema = mtrec.Schema([Categorical("color", embedding_dim=2, oov_rate=0.5)],
                          {"click": "binary"}).adapt(table)
    embedding = FeatureEmbedding(schema, seed=3)
    embedding.build()
    encoded = FeaturePreprocessing(schema)(schema.raw_features(table))
    assert (np.asarray(encoded[CATEGORICAL_KEY]) > 0).all()
    (_, _, layer), = embedding.categorical_groups
    oov = np.asarray(layer.embeddings)[0]
    # inference: every row is its own value's vector
    served = np.asarray(embedding(encoded, training=False))
    assert not np.isclose(served, oov).all(axis=1).any()
    np.testing.assert_array_equal(served, np.asarray(embedding(encoded)))
    # training: about half the rows get the OOV vector
    trained = np.asarray(embedding(encoded, training=True))
    share = np.isclose(trained, oov).all(axis=1).mean()
    assert 0.35 < share < 0.65


def test_towers_bound_a_regression_head_by_hand():
    towers = TaskTowers([dict(name="y", kind="regression", output_range=(1, 5))],
                        tower_units=[2])
    x = np.random.default_rng(0).normal(size=(3, 4)).astype("float32") * 100
    towers.build([x.shape])
    for w in towers.heads[0].weights:
        w.assign(np.zeros(w.shape, "float32"))
    # z = 0 -> 1 + 4 * sigmoid(0)
    np.testing.assert_allclose(np.asarray(towers([x])["y"]), [3.0, 3.0, 3.0])
    assert towers.get_config()["tasks"][0]["output_range"] == [1.0, 5.0]
    assert "output_range" not in TaskTowers(
        [dict(name="y", kind="regression")]).get_config()["tasks"][0]


def test_towers_refuse_a_range_on_a_binary_task():
    with pytest.raises(ValueError, match="regression head only"):
        TaskTowers([dict(name="c", kind="binary", output_range=(0, 1))])


def test_output_range_bounds_predictions_and_survives_saving(table, tmp_path):
    schema = mtrec.Schema([Categorical("color"), Numeric("x")],
                          [mtrec.TaskSpec("click"),
                           mtrec.TaskSpec("spend", "regression", output_range=(2, 4))]
                          ).adapt(table)
    unbounded = mtrec.Schema(schema.features, [mtrec.TaskSpec("click"),
                                               mtrec.TaskSpec("spend", "regression")],
                             stats=schema.stats)
    raw = {"color": np.array(["red", "nope", "blue"], object),
           "x": np.array([1e30, -1e30, 0.0], "float32")}
    keras.utils.set_random_seed(0)
    free = mtrec.models.MMoE(unbounded, num_experts=2, expert_units=[4], tower_units=[4])
    # unscaled 1e30 inputs: the linear head goes far outside [2, 4]
    assert np.abs(free.predict(raw, verbose=0)["spend"][:2]).max() > 1e6
    keras.utils.set_random_seed(0)
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4], tower_units=[4])
    spend = model.predict(raw, verbose=0)["spend"]
    # float32's sigmoid reaches 0 and 1 for large |z|: the ends are included
    assert ((spend >= 2) & (spend <= 4)).all() and 2 < spend[2] < 4
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert loaded.schema.tasks[1].output_range == (2.0, 4.0)
    np.testing.assert_array_equal(loaded.predict(raw, verbose=0)["spend"], spend)
