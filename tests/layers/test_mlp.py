import numpy as np
import pytest

from mtrec.layers import MLP


def test_mlp_contract(run_layer_test):
    run_layer_test(MLP, dict(units=[3, 2], dropout=0.1), np.ones((4, 5), "float32"),
                   (4, 2), expected_num_trainable_weights=4)


def test_mlp_exact_value():
    mlp = MLP([3, 2], kernel_initializer="ones")
    y = mlp(np.ones((4, 5), "float32"))
    # relu(5 ones) = 5 per unit, then 3 * 5 = 15 per unit (biases zero)
    np.testing.assert_allclose(np.asarray(y), np.full((4, 2), 15.0))
    again = MLP.from_config(mlp.get_config())
    assert again.units == [3, 2] and again.get_config()["kernel_initializer"]


def test_mlp_rejects_bad_units():
    with pytest.raises(ValueError, match="units"):
        MLP([4, 0])


def test_mlp_batch_norm_contract(run_layer_test):
    # per layer: kernel, bias, gamma, beta trainable; moving mean, variance not
    layer = run_layer_test(MLP, dict(units=[3, 2], dropout=0.1, batch_norm=True),
                           np.ones((4, 5), "float32"), (4, 2),
                           expected_num_trainable_weights=8,
                           expected_num_non_trainable_weights=4)
    assert layer.get_config()["batch_norm"] is True
    assert sorted(w.name for w in layer.non_trainable_weights) == [
        "moving_mean", "moving_mean", "moving_variance", "moving_variance"]


def test_mlp_without_batch_norm_has_no_normalisation():
    mlp = MLP([3, 2])
    mlp.build((None, 5))
    assert mlp.batch_norm_layers == [] and mlp.non_trainable_weights == []
    assert len(mlp.trainable_weights) == 4
    assert mlp.get_config()["batch_norm"] is False


def test_mlp_batch_norm_comes_before_the_activation():
    # Dense with kernel ones and zero bias is the identity on one column, so
    # the output is relu(batch_norm(x)): in training (x - mean) / sqrt(var +
    # eps) over the batch, negative below the mean and cut to 0 by the relu;
    # in inference the moving statistics, at their start (0, 1), which a
    # training call moves by 1 - momentum towards the batch's.
    mlp = MLP([1], kernel_initializer="ones", batch_norm=True)
    x = np.array([[1.0], [2.0], [3.0], [4.0]], "float32")
    norm = mlp.batch_norm_layers[0]
    eps = norm.epsilon
    np.testing.assert_allclose(np.asarray(mlp(x, training=False)),
                               x / np.sqrt(1.0 + eps), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(mlp(x, training=True)),
                               np.maximum((x - 2.5) / np.sqrt(1.25 + eps), 0.0),
                               rtol=1e-5, atol=1e-6)
    step = 1 - norm.momentum
    np.testing.assert_allclose(np.asarray(norm.moving_mean), [step * 2.5], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(norm.moving_variance),
                               [(1 - step) * 1.0 + step * 1.25], rtol=1e-5)


def test_mlp_rejects_a_non_bool_batch_norm():
    with pytest.raises(ValueError, match="batch_norm must be True or False, got 'true'"):
        MLP([4], batch_norm="true")
