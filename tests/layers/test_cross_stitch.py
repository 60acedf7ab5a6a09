"""CrossStitchBackbone: shapes, the stitch by hand, identity keeps columns apart."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec.layers import CrossStitchBackbone

X = np.random.default_rng(0).normal(size=(6, 5)).astype("float32")


def test_cross_stitch_contract(run_layer_test):
    # per layer: column kernels, biases and the stitch
    run_layer_test(CrossStitchBackbone, dict(num_tasks=3, column_units=[8, 4]),
                   X, [(6, 4)] * 3 + [(6, 3, 3)] * 2, expected_num_trainable_weights=6,
                   call_kwargs=dict(return_gate_weights=True))


def test_initial_stitch_is_near_identity():
    layer = CrossStitchBackbone(3, [4, 2])
    _, weights = layer(X, return_gate_weights=True)
    expected = np.array([[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]])
    for w in weights:
        # the same matrix for every example
        np.testing.assert_allclose(np.asarray(w), np.broadcast_to(expected, (6, 3, 3)),
                                   rtol=1e-6)
    two = CrossStitchBackbone(2, [3], stitch_diagonal=0.6)
    two.build(X.shape)
    np.testing.assert_allclose(np.asarray(two.stitches[0]), [[0.6, 0.4], [0.4, 0.6]],
                               rtol=1e-6)


def test_fixed_stitch_matches_numpy_by_hand():
    rng = np.random.default_rng(1)
    layer = CrossStitchBackbone(2, [3, 2])
    layer.build(X.shape)
    kernels = [rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 3, 2))]
    biases = [rng.normal(size=(2, 3)), rng.normal(size=(2, 2))]
    alphas = [np.array([[0.7, 0.3], [-0.2, 1.1]]), np.array([[0.5, 0.5], [0.0, 1.0]])]
    for columns, kernel, bias in zip(layer.columns, kernels, biases):
        columns.kernels[0].assign(kernel.astype("float32"))
        columns.biases[0].assign(bias.astype("float32"))
    for stitch, alpha in zip(layer.stitches, alphas):
        stitch.assign(alpha.astype("float32"))
    # by hand: column t's layer, ReLU, then h_i' = sum_j alpha[i, j] h_j
    h = [X, X]
    for kernel, bias, alpha in zip(kernels, biases, alphas):
        h = [np.maximum(h[t] @ kernel[t] + bias[t], 0.0) for t in range(2)]
        h = [alpha[i, 0] * h[0] + alpha[i, 1] * h[1] for i in range(2)]
    outputs = layer(X)
    for t in range(2):
        np.testing.assert_allclose(np.asarray(outputs[t]), h[t], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("diagonal, separate", [(1.0, True), (0.9, False)])
def test_identity_stitch_keeps_columns_separate(diagonal, separate):
    layer = CrossStitchBackbone(3, [4, 4], stitch_diagonal=diagonal)
    x = tf.constant(X)
    with tf.GradientTape() as tape:
        first = layer(x)[0]
    # task 0 reads nothing of column 1 (kernels of both levels)
    grads = tape.gradient(first, [c.kernels[0] for c in layer.columns])
    other_columns = [np.abs(np.asarray(g)[1]).sum() for g in grads]
    own_column = [np.abs(np.asarray(g)[0]).sum() for g in grads]
    assert all(v > 0 for v in own_column)
    assert all(v == 0 for v in other_columns) is separate


def test_gate_structure_masks_and_shared_variables():
    layer = CrossStitchBackbone(2, [4, 2])
    layer.build(X.shape)
    assert layer.gate_structure(["ctr", "cvr"]) == [
        ("stitch_0", ["ctr", "cvr"], ["ctr_column", "cvr_column"]),
        ("stitch_1", ["ctr", "cvr"], ["ctr_column", "cvr_column"])]
    assert [m.shape for m in layer.gate_masks()] == [(2, 2), (2, 2)]
    assert all(m.all() for m in layer.gate_masks())
    assert [v.path for v in layer.shared_variables()] == [s.path for s in layer.stitches]


def test_batch_norm_and_dropout_reach_the_columns():
    layer = CrossStitchBackbone(2, [4, 3], dropout=0.5, batch_norm=True)
    layer(X, training=True)
    # moving mean and variance per level
    assert len(layer.non_trainable_weights) == 4
    assert not np.allclose(np.asarray(layer(X, training=True)[0]),
                           np.asarray(layer(X, training=False)[0]))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="column_units"):
        CrossStitchBackbone(2, [])
    with pytest.raises(ValueError, match="batch_norm"):
        CrossStitchBackbone(2, [4], batch_norm="no")
