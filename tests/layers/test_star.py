"""StarBackbone and PartitionedNormalization: shapes, the star weights and PN
by hand, scenarios apart, an untrained scenario is the shared network."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec.layers import PartitionedNormalization, StarBackbone

RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 5)).astype("float32")
IDS = np.array([0, 1, 2, 1, 2, 1], "int64")


def test_star_contract(run_layer_test):
    # per layer: shared kernel, bias, scenario kernels, scenario biases;
    # PN: gamma, beta, scenario gamma, scenario beta (+ 5 statistics)
    run_layer_test(StarBackbone, dict(num_tasks=2, units=[8, 4], num_scenarios=3),
                   (X, IDS), [(6, 4)] * 2, expected_num_trainable_weights=12,
                   expected_num_non_trainable_weights=5)


def test_partitioned_norm_contract(run_layer_test):
    run_layer_test(PartitionedNormalization, dict(num_scenarios=3), (X, IDS), (6, 5),
                   expected_num_trainable_weights=4, expected_num_non_trainable_weights=5)


def star_with(kernels, biases, s_kernels, s_biases):
    layer = StarBackbone(1, [k.shape[1] for k in kernels], num_scenarios=3,
                         partitioned_norm=False)
    layer.build(X.shape)
    for var, value in zip(layer.kernels + layer.biases + layer.scenario_kernels
                          + layer.scenario_biases,
                          kernels + biases + s_kernels + s_biases):
        var.assign(value.astype("float32"))
    return layer


def test_effective_weight_is_shared_times_scenario_by_hand():
    # one 5 -> 2 layer with small integer weights: W * W_p, b + b_p
    w = np.arange(10, dtype="float32").reshape(5, 2) - 4.0
    w_s = np.stack([np.ones((5, 2)), np.full((5, 2), 2.0),
                    np.tile([[0.0, -1.0]], (5, 1))]).astype("float32")
    b, b_s = np.array([0.5, -0.5]), np.array([[0.0, 0.0], [1.0, 1.0], [-1.0, 3.0]])
    layer = star_with([w], [b], [w_s], [b_s])
    kernel, bias = layer.effective_weights(0, 2)
    np.testing.assert_array_equal(np.asarray(kernel), w * w_s[2])
    np.testing.assert_array_equal(np.asarray(kernel)[:, 0], 0.0)
    np.testing.assert_array_equal(np.asarray(kernel)[:, 1], -w[:, 1])
    np.testing.assert_array_equal(np.asarray(bias), [-0.5, 2.5])
    # the call: each example through its scenario's layer, then ReLU
    expected = np.stack([np.maximum(X[i] @ (w * w_s[s]) + b + b_s[s], 0.0)
                         for i, s in enumerate(IDS)])
    np.testing.assert_allclose(np.asarray(layer(X, IDS)[0]), expected, rtol=1e-5, atol=1e-6)


def test_two_layers_match_numpy():
    kernels = [RNG.normal(size=(5, 4)), RNG.normal(size=(4, 3))]
    biases = [RNG.normal(size=4), RNG.normal(size=3)]
    s_kernels = [RNG.normal(size=(3, 5, 4)), RNG.normal(size=(3, 4, 3))]
    s_biases = [RNG.normal(size=(3, 4)), RNG.normal(size=(3, 3))]
    layer = star_with(kernels, biases, s_kernels, s_biases)
    h = X.astype("float64")
    rows = []
    for i, s in enumerate(IDS):
        x = h[i]
        for k, b, sk, sb in zip(kernels, biases, s_kernels, s_biases):
            x = np.maximum(x @ (k * sk[s]) + b + sb[s], 0.0)
        rows.append(x)
    np.testing.assert_allclose(np.asarray(layer(X, IDS)[0]), np.stack(rows),
                               rtol=1e-4, atol=1e-5)


def test_scenarios_differ_and_one_scenario_is_deterministic():
    layer = StarBackbone(2, [4], num_scenarios=3)
    layer.build(X.shape)
    layer.scenario_kernels[0].assign(RNG.normal(size=(3, 5, 4)).astype("float32"))
    same = np.zeros(6, "int64")
    a = np.asarray(layer(X, same)[0])
    np.testing.assert_array_equal(a, np.asarray(layer(X, same)[0]))
    b = np.asarray(layer(X, same + 1)[0])
    assert not np.allclose(a, b)
    # every task reads the same shared bottom
    outputs = layer(X, IDS)
    np.testing.assert_array_equal(np.asarray(outputs[0]), np.asarray(outputs[1]))


def test_untrained_scenario_gets_the_shared_network():
    layer = StarBackbone(1, [4, 3], num_scenarios=4, partitioned_norm=False)
    layer.build(X.shape)
    kernels = [np.asarray(k) for k in layer.kernels]
    x = X
    for k in kernels:  # biases start at zero
        x = np.maximum(x @ k, 0.0)
    np.testing.assert_allclose(np.asarray(layer(X, np.full(6, 3))[0]), x, rtol=1e-5,
                               atol=1e-6)


def test_partitioned_norm_by_hand_in_training():
    layer = PartitionedNormalization(3, momentum=0.5)
    layer.build(X.shape)
    gamma, beta = RNG.normal(size=5), RNG.normal(size=5)
    s_gamma, s_beta = RNG.normal(size=(3, 5)), RNG.normal(size=(3, 5))
    for var, value in zip([layer.gamma, layer.beta, layer.scenario_gamma,
                           layer.scenario_beta], [gamma, beta, s_gamma, s_beta]):
        var.assign(value.astype("float32"))
    out = np.asarray(layer(X, IDS, training=True))
    for i, s in enumerate(IDS):
        rows = X[IDS == s]
        expected = (gamma * s_gamma[s] * (X[i] - rows.mean(0))
                    / np.sqrt(rows.var(0) + 1e-3) + beta + s_beta[s])
        np.testing.assert_allclose(out[i], expected, rtol=1e-4, atol=1e-5)
    # scenario 0's first batch (one row) set its statistics; scenarios 1 and
    # 2 likewise; the global ones are the whole batch's
    np.testing.assert_allclose(np.asarray(layer.scenario_moving_mean)[1],
                               X[IDS == 1].mean(0), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(layer.global_variance), X.var(0), rtol=1e-5)
    np.testing.assert_array_equal(np.asarray(layer.seen), [1, 1, 1])
    # a second batch of scenario 1 only: momentum 0.5 for it, 0 and 2 unchanged
    before = np.asarray(layer.scenario_moving_mean).copy()
    layer(X[:2] + 1.0, np.array([1, 1]), training=True)
    after = np.asarray(layer.scenario_moving_mean)
    np.testing.assert_allclose(after[1], 0.5 * before[1] + 0.5 * (X[:2] + 1.0).mean(0),
                               rtol=1e-5)
    np.testing.assert_array_equal(after[[0, 2]], before[[0, 2]])


def test_partitioned_norm_inference_uses_moving_and_global_statistics():
    layer = PartitionedNormalization(4)
    layer.build(X.shape)
    layer(X, IDS, training=True)  # scenario 3 is never seen
    mean, var = np.asarray(layer.scenario_moving_mean), np.asarray(
        layer.scenario_moving_variance)
    out = np.asarray(layer(X, np.array([1, 1, 2, 3, 0, 3]), training=False))
    np.testing.assert_allclose(out[0], (X[0] - mean[1]) / np.sqrt(var[1] + 1e-3), rtol=1e-5)
    np.testing.assert_allclose(out[3], (X[3] - X.mean(0)) / np.sqrt(X.var(0) + 1e-3),
                               rtol=1e-4, atol=1e-6)


def test_partitioned_norm_trains_scenario_parameters_apart():
    layer = StarBackbone(1, [3], num_scenarios=3)
    x = tf.constant(X)
    with tf.GradientTape() as tape:
        out = layer(x, np.zeros(6, "int64"), training=True)[0]
    grads = tape.gradient(out, [layer.normalization.scenario_gamma,
                                layer.scenario_kernels[0]])
    for grad in grads:
        grad = np.asarray(tf.convert_to_tensor(grad))  # gathers give IndexedSlices
        assert np.abs(grad[0]).sum() > 0 and np.abs(grad[1:]).sum() == 0


def test_batch_norm_and_shared_variables():
    layer = StarBackbone(2, [4, 3], num_scenarios=3, batch_norm=True, dropout=0.5)
    layer(X, IDS, training=True)
    # PN's 5 statistics + 2 per batch norm layer
    assert len(layer.non_trainable_weights) == 9
    assert [v.path for v in layer.shared_variables()] == [
        layer.kernels[-1].path, layer.biases[-1].path]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="units"):
        StarBackbone(2, [], num_scenarios=3)
    with pytest.raises(ValueError, match="num_scenarios"):
        StarBackbone(2, [4], num_scenarios=0)
    with pytest.raises(ValueError, match="partitioned_norm"):
        StarBackbone(2, [4], num_scenarios=3, partitioned_norm="yes")
    with pytest.raises(ValueError, match="momentum"):
        PartitionedNormalization(3, momentum=1.0)
