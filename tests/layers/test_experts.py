import numpy as np

from mtrec.layers import Experts


def test_experts_contract(run_layer_test):
    run_layer_test(Experts, dict(num_experts=3, expert_units=[4, 2], dropout=0.1),
                   np.ones((5, 6), "float32"), (5, 3, 2),
                   expected_num_trainable_weights=4)


def test_experts_exact_value_and_per_expert_inputs():
    experts = Experts(3, [2], kernel_initializer="ones")
    x = np.arange(8, dtype="float32").reshape(2, 4)
    y = np.asarray(experts(x))
    assert y.shape == (2, 3, 2)
    # every expert sums the row: row 0 -> 6, row 1 -> 22
    np.testing.assert_allclose(y[:, 0, 0], [6.0, 22.0])
    per_expert = np.stack([x, 2 * x, 3 * x], axis=1)  # (batch, experts, in)
    y2 = np.asarray(experts(per_expert))
    np.testing.assert_allclose(y2[0, :, 0], [6.0, 12.0, 18.0])
    assert len(experts.trainable_weights) == 2  # one kernel + bias for all experts
    assert len(experts.last_layer_variables()) == 2


def test_experts_are_independent_after_init():
    experts = Experts(4, [5])
    experts.build((None, 6))
    kernel = np.asarray(experts.kernels[0])
    assert kernel.shape == (4, 6, 5)
    assert not np.allclose(kernel[0], kernel[1])


def test_experts_batch_norm_contract(run_layer_test):
    layer = run_layer_test(Experts, dict(num_experts=3, expert_units=[4, 2],
                                         batch_norm=True),
                           np.ones((5, 6), "float32"), (5, 3, 2),
                           expected_num_trainable_weights=8,
                           expected_num_non_trainable_weights=4)
    # statistics of their own per expert and unit
    assert [tuple(w.shape) for w in layer.non_trainable_weights] == [
        (12,), (12,), (6,), (6,)]
    assert len(layer.last_layer_variables()) == 2


def test_experts_batch_norm_normalises_each_expert_on_its_own():
    # Two experts read inputs of different scale and offset; each is
    # normalised with its own batch statistics: relu((z - mean) / sqrt(var +
    # eps)), mean 2.5 and var 1.25 for the first, 30 and 125 for the second
    # (shared statistics would leave the first expert's outputs all zero).
    experts = Experts(2, [1], kernel_initializer="ones", batch_norm=True)
    x = np.array([[1.0], [2.0], [3.0], [4.0]], "float32")
    y = np.asarray(experts(np.stack([x, 10 * x + 5], axis=1), training=True))
    eps = experts.batch_norm_layers[0].epsilon
    np.testing.assert_allclose(y[:, 0], np.maximum((x - 2.5) / np.sqrt(1.25 + eps), 0),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(y[:, 1], np.maximum((10 * x + 5 - 30) / np.sqrt(125 + eps), 0),
                               rtol=1e-5, atol=1e-6)
    inference = np.asarray(experts(np.stack([x, 10 * x + 5], axis=1), training=False))
    assert not np.allclose(inference, y)


def test_experts_without_batch_norm_have_no_statistics():
    experts = Experts(3, [4])
    experts.build((None, 2))
    assert experts.non_trainable_weights == []
    assert experts.get_config()["batch_norm"] is False


def test_shared_input_matmul_is_the_einsum_it_replaces():
    from keras import ops

    from mtrec.layers.experts import shared_input_matmul

    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 5)).astype("float32")
    kernel = rng.normal(size=(3, 5, 4)).astype("float32")
    got = np.asarray(shared_input_matmul(x, kernel))
    want = np.asarray(ops.einsum("bi,nio->bno", x, kernel))
    assert got.shape == (7, 3, 4)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    # each expert's slice is its own matrix product
    np.testing.assert_allclose(got[:, 1], x @ kernel[1], rtol=1e-6, atol=1e-6)
