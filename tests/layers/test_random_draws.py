"""Dropout and the training-time draws of mtrec layers (Philox, fast under XLA)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtrec.layers.random_draws import Dropout, uniform


def test_uniform_draws_compile_and_repeat_with_the_seed():
    # XLA lays Philox's counter out its own way, so compiled draws differ
    # from uncompiled ones; each is uniform and repeatable by seed.
    draws = {}
    for name, jit in [("plain", False), ("compiled", True), ("compiled again", True)]:
        generator = keras.random.SeedGenerator(7)
        draws[name] = tf.function(lambda: uniform((4000, 5), generator),
                                  jit_compile=jit)().numpy()
    np.testing.assert_array_equal(draws["compiled"], draws["compiled again"])
    for values in draws.values():
        assert values.dtype == np.float32 and values.shape == (4000, 5)
        assert values.min() >= 0.0 and values.max() < 1.0
        assert abs(values.mean() - 0.5) < 0.01
    # each call takes the generator's next seed
    generator = keras.random.SeedGenerator(7)
    assert not np.array_equal(uniform((8,), generator).numpy(), uniform((8,), generator).numpy())


@pytest.mark.parametrize("rate", [0.1, 0.5])
def test_dropout_zeroes_at_its_rate_and_keeps_the_mean(rate):
    layer = Dropout(rate, seed=3)
    x = np.ones((2000, 50), "float32")
    out = layer(x, training=True).numpy()
    zeroed = float(np.mean(out == 0))
    assert abs(zeroed - rate) < 0.01
    np.testing.assert_allclose(out[out != 0], 1.0 / (1.0 - rate), rtol=1e-6)
    assert abs(out.mean() - 1.0) < 0.02
    np.testing.assert_array_equal(layer(x, training=False).numpy(), x)
    np.testing.assert_array_equal(Dropout(0.0)(x, training=True).numpy(), x)


def test_dropout_noise_shape_and_serialisation():
    layer = Dropout(0.5, noise_shape=(None, 1), seed=1)
    out = layer(np.ones((100, 4), "float32"), training=True).numpy()
    # one draw per row: a row is kept or dropped whole
    assert set(np.unique(out.std(axis=1))) == {0.0}
    again = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(again) is Dropout and again.rate == 0.5 and again.noise_shape == (None, 1)
    # the same variables as Keras' Dropout: its seed generator's state only
    assert [v.shape for v in layer.variables] == \
        [v.shape for v in keras.layers.Dropout(0.5, seed=1).variables]
