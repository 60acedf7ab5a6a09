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
