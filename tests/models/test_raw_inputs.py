"""Raw-column datasets are encoded in the input pipeline by the model's own
preprocessing: the same training and predictions as encoded batches."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import mtrec
from mtrec.layers.feature_preprocessing import is_encoded
from mtrec.models.raw_inputs import encoded_in_pipeline


def raw_dataset(table, schema, batch_size=64, labels=True):
    features = schema.raw_features(table)
    element = (features, schema.raw_labels(table)) if labels else features
    return tf.data.Dataset.from_tensor_slices(element).batch(batch_size)


def make_model(schema):
    keras.utils.set_random_seed(0)
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4], tower_units=[4])
    model.compile(optimizer=keras.optimizers.Adam(0.01), jit_compile=False)
    return model


def test_raw_dataset_trains_like_encoded_batches(table, schema):
    encoded = make_model(schema)
    encoded.fit(mtrec.data.from_pandas(table, schema, batch_size=64), epochs=2, verbose=0)
    raw = make_model(schema)
    history = raw.fit(raw_dataset(table, schema), epochs=2, verbose=0,
                      validation_data=raw_dataset(table, schema))
    assert "val_loss" in history.history
    for a, b in zip(raw.weights, encoded.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)


def test_raw_dataset_predicts_and_evaluates_like_encoded(table, schema):
    model = make_model(schema)
    from_raw = model.predict(raw_dataset(table, schema, labels=False), verbose=0)
    from_encoded = model.predict(mtrec.data.from_pandas(table, schema, labels=False),
                                 verbose=0)
    for task in from_raw:
        np.testing.assert_allclose(from_raw[task], from_encoded[task], atol=1e-6)
    raw_logs = model.evaluate(raw_dataset(table, schema), verbose=0, return_dict=True)
    encoded_logs = model.evaluate(mtrec.data.from_pandas(table, schema, batch_size=64),
                                  verbose=0, return_dict=True)
    for name, value in encoded_logs.items():
        np.testing.assert_allclose(raw_logs[name], value, rtol=1e-5)


def test_pipeline_encoding_keeps_element_structure(table, schema):
    model = make_model(schema)
    weights = np.ones(len(table), "float32")
    features, labels = schema.raw_features(table), schema.raw_labels(table)
    data = tf.data.Dataset.from_tensor_slices((features, labels, weights)).batch(32)
    x, y, w = next(iter(encoded_in_pipeline(model, data)))
    assert is_encoded(x) and set(y) == set(labels) and w.shape == (32,)
    # Encoded datasets and non-datasets pass through untouched.
    encoded = mtrec.data.from_pandas(table, schema)
    assert encoded_in_pipeline(model, encoded) is encoded
    assert encoded_in_pipeline(model, features) is features


@pytest.mark.slow  # an XLA compile of the raw graph (~27 s); make test-slow
def test_raw_dataset_compiles_under_jit(table, schema):
    model = make_model(schema)
    model.compile(jit_compile=True)
    model.fit(raw_dataset(table, schema), epochs=1, verbose=0)
    assert model.__dict__["_xla_plan"]["train"] is True
