"""TextEncoder: every encoder x pooling, padding, the missing embedding, exact values."""

import itertools

import keras
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import mtrec
from mtrec.layers import FeatureEmbedding, FeaturePreprocessing, TextEncoder
from mtrec.layers.feature_preprocessing import text_key

ENCODERS = ["bag", "cnn", "transformer"]
POOLINGS = ["mean", "max", "attention"]
COMBINATIONS = list(itertools.product(ENCODERS, POOLINGS))
VOCABULARY, DIM, LENGTH = 12, 4, 6

# Row 2 is all padding (an empty text).
IDS = np.array([[3, 5, 2, 0, 0, 0],
                [7, 0, 0, 0, 0, 0],
                [0, 0, 0, 0, 0, 0],
                [1, 4, 4, 9, 11, 6]], dtype="int64")


def make_encoder(encoder, pooling, **kwargs):
    keras.utils.set_random_seed(0)
    layer = TextEncoder(VOCABULARY, DIM, LENGTH, encoder=encoder, pooling=pooling, **kwargs)
    layer.build((None, LENGTH))
    rng = np.random.default_rng(1)
    # non-zero attention query and missing embedding, so both matter
    if pooling == "attention":
        layer.pooling_query.assign(rng.normal(size=DIM).astype("float32"))
    layer.missing.assign(rng.normal(size=DIM).astype("float32"))
    return layer


@pytest.fixture(scope="module", params=COMBINATIONS, ids=lambda c: f"{c[0]}-{c[1]}")
def encoder(request):
    return make_encoder(*request.param)


def test_output_shape_and_finite(encoder):
    out = np.asarray(encoder(IDS))
    assert out.shape == (4, DIM)
    assert np.isfinite(out).all()
    assert encoder.compute_output_shape((4, LENGTH)) == (4, DIM)


def test_config_round_trip_gives_the_same_layer(encoder):
    config = encoder.get_config()
    again = TextEncoder.from_config(config)
    again.build((None, LENGTH))
    assert again.get_config() == config
    assert [w.shape for w in again.weights] == [w.shape for w in encoder.weights]
    again.set_weights(encoder.get_weights())
    np.testing.assert_allclose(np.asarray(again(IDS)), np.asarray(encoder(IDS)), rtol=1e-6)


def test_padding_is_ignored(encoder):
    expected = np.asarray(encoder(IDS))
    # whatever the padding id's embedding is, it never reaches the output
    table = encoder.token_embedding.embeddings
    saved = np.asarray(table).copy()
    noisy = saved.copy()
    noisy[0] = np.random.default_rng(2).normal(scale=50.0, size=DIM)
    table.assign(noisy)
    try:
        np.testing.assert_allclose(np.asarray(encoder(IDS)), expected, rtol=1e-5, atol=1e-6)
    finally:
        table.assign(saved)
    # and neither does the amount of trailing padding
    short = np.asarray(encoder(IDS[:2, :3]))
    np.testing.assert_allclose(short, expected[:2], rtol=1e-5, atol=1e-6)


def test_empty_text_and_dropped_rows_get_the_learned_missing_embedding(encoder):
    out, missing = encoder(IDS, return_missing=True)
    out, missing = np.asarray(out), np.asarray(missing)
    np.testing.assert_array_equal(missing, [False, False, True, False])
    missing_embedding = np.asarray(encoder.missing)
    assert np.abs(missing_embedding).sum() > 0
    np.testing.assert_array_equal(out[2], missing_embedding)
    assert not np.allclose(out[0], missing_embedding)
    dropped = np.asarray(encoder(IDS, drop=np.array([True, False, False, True])))
    np.testing.assert_array_equal(dropped[[0, 2, 3]], np.tile(missing_embedding, (3, 1)))
    np.testing.assert_allclose(dropped[1], out[1], rtol=1e-6)


def test_missing_gradient_reaches_the_missing_embedding():
    layer = make_encoder("bag", "mean")
    with tf.GradientTape() as tape:
        loss = keras.ops.sum(layer(IDS) ** 2)
    grads = tape.gradient(loss, [layer.missing, layer.token_embedding.embeddings])
    assert np.abs(np.asarray(grads[0])).sum() > 0  # only the empty row feeds it
    assert np.isfinite(np.asarray(tf.convert_to_tensor(grads[1]))).all()


def test_bag_pooling_exact_values():
    rng = np.random.default_rng(3)
    table = rng.normal(size=(VOCABULARY, DIM)).astype("float32")
    for pooling in POOLINGS:
        layer = make_encoder("bag", pooling)
        layer.token_embedding.embeddings.assign(table)
        out = np.asarray(layer(IDS))
        rows = [table[[3, 5, 2]], table[[7]], None, table[[1, 4, 4, 9, 11, 6]]]
        for i, tokens in enumerate(rows):
            if tokens is None:
                continue
            if pooling == "mean":
                expected = tokens.mean(0)
            elif pooling == "max":
                expected = tokens.max(0)
            else:
                scores = tokens @ np.asarray(layer.pooling_query) / np.sqrt(DIM)
                weights = np.exp(scores - scores.max())
                expected = (weights / weights.sum()) @ tokens
            np.testing.assert_allclose(out[i], expected, rtol=1e-5, atol=1e-6)


def test_attention_pooling_starts_as_mean_pooling():
    layer = TextEncoder(VOCABULARY, DIM, LENGTH, pooling="attention")
    mean = TextEncoder(VOCABULARY, DIM, LENGTH, pooling="mean")
    layer.build((None, LENGTH))
    mean.build((None, LENGTH))
    mean.token_embedding.embeddings.assign(layer.token_embedding.embeddings)
    np.testing.assert_allclose(np.asarray(layer(IDS)), np.asarray(mean(IDS)), rtol=1e-5)


def test_encoder_sizes():
    cnn = make_encoder("cnn", "mean", num_layers=2)
    assert [c.name for c in cnn.convolutions] == ["conv_0", "conv_1"]
    transformer = make_encoder("transformer", "mean", num_layers=2)
    assert len(transformer.attentions) == 2 and transformer.num_heads == 2
    assert transformer.position_embedding.embeddings.shape == (LENGTH, DIM)
    with pytest.raises(ValueError, match="encoder must be one of"):
        TextEncoder(VOCABULARY, DIM, LENGTH, encoder="rnn")
    with pytest.raises(ValueError, match="pooling must be one of"):
        TextEncoder(VOCABULARY, DIM, LENGTH, pooling="sum")
    with pytest.raises(ValueError, match="divisible by num_heads"):
        TextEncoder(VOCABULARY, 5, LENGTH, encoder="transformer", num_heads=2)


def _error(fn):
    with pytest.raises(ValueError) as info:
        fn()
    return str(info.value)


def test_schema_validates_encoder_and_pooling():
    def schema(**kwargs):
        return mtrec.Schema([mtrec.Text("t", **kwargs)], {"y": "binary"})

    assert "Did you mean 'transformer'" in _error(lambda: schema(encoder="transfomer"))
    assert "'attention'" in _error(lambda: schema(pooling="atention"))
    assert "encoder_layers=0" in _error(lambda: schema(encoder_layers=0))
    assert "1-4 blocks" in _error(lambda: schema(encoder="transformer", encoder_layers=8))
    spec = mtrec.Text("t", encoder="cnn", pooling="attention", encoder_layers=2)
    again = mtrec.Schema.from_json(mtrec.Schema([spec], {"y": "binary"}).to_json())
    assert again.features[0] == spec


@pytest.mark.parametrize("encoder,pooling", [("bag", "mean"), ("transformer", "attention")])
def test_raw_text_through_preprocessing_and_embedding(encoder, pooling):
    df = pd.DataFrame({"t": ["Runs small!", None, "", "!!!", "lovely soft fabric"],
                       "y": [0, 1, 0, 1, 1]})
    schema = mtrec.Schema([mtrec.Text("t", embedding_dim=DIM, encoder=encoder,
                                      pooling=pooling)], {"y": "binary"}).adapt(df)
    encoded = FeaturePreprocessing(schema)(schema.raw_features(df))
    layer = FeatureEmbedding(schema)
    layer.build()
    missing = np.arange(DIM, dtype="float32") + 1.0
    layer.text_encoders[0].missing.assign(missing)
    out = np.asarray(layer(encoded))
    # NaN, "" and punctuation only: no token, the learned missing embedding
    np.testing.assert_array_equal(np.asarray(encoded[text_key("t")])[1:4], 0)
    np.testing.assert_array_equal(out[1:4], np.tile(missing, (3, 1)))
    assert not np.allclose(out[0], missing) and not np.allclose(out[4], missing)


def test_text_encoder_contract(run_layer_test):
    run_layer_test(TextEncoder, dict(vocabulary_size=VOCABULARY, embedding_dim=DIM,
                                     max_length=LENGTH, encoder="cnn", pooling="attention"),
                   IDS, (IDS.shape[0], DIM), expected_num_trainable_weights=5)
