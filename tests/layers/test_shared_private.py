"""SharedPrivateBackbone: shapes, the forward pass and both losses by hand, the
reversed gradient, the discriminator's accuracy metric."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec.layers import GradientReversal, SharedPrivateBackbone, orthogonality_penalty
from mtrec.layers.shared_private import DISCRIMINATOR_METRIC

X = np.random.default_rng(0).normal(size=(6, 5)).astype("float32")


def relu(x):
    return np.maximum(x, 0.0)


def log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def test_shared_private_contract(run_layer_test):
    # shared 2 x (kernel, bias), private (kernel, bias), the views,
    # discriminator hidden (kernel, bias) and logits (kernel, bias)
    layer = run_layer_test(SharedPrivateBackbone, dict(
        num_tasks=3, shared_units=[8, 4], private_units=[3], discriminator_units=[5]),
        X, [(6, 7)] * 3, expected_num_trainable_weights=11)
    assert layer.gate_structure(["a", "b", "c"]) == [] and layer.gate_masks() == []


def with_known_weights(layer, rng):
    """Random weights set by hand; returns them as NumPy arrays."""
    layer.build(X.shape)
    w = dict(k1=rng.normal(size=(5, 4)), b1=rng.normal(size=(4,)),
             pk=rng.normal(size=(2, 5, 3)), pb=rng.normal(size=(2, 3)),
             views=rng.normal(size=(2, 4, 4)),
             dk=rng.normal(size=(4, 5)), db=rng.normal(size=(5,)),
             lk=rng.normal(size=(5, 2)), lb=rng.normal(size=(2,)))
    w = {k: v.astype("float32") for k, v in w.items()}
    dense = layer.shared.dense_layers[0]
    dense.kernel.assign(w["k1"])
    dense.bias.assign(w["b1"])
    layer.private.kernels[0].assign(w["pk"])
    layer.private.biases[0].assign(w["pb"])
    layer.task_views.assign(w["views"])
    hidden = layer.discriminator_hidden.dense_layers[0]
    hidden.kernel.assign(w["dk"])
    hidden.bias.assign(w["db"])
    layer.discriminator_logits.kernel.assign(w["lk"])
    layer.discriminator_logits.bias.assign(w["lb"])
    return w


def by_hand(w):
    """Views `(6, 2, 4)`, private `(6, 2, 3)`, discriminator logits `(6, 2, 2)`."""
    shared = relu(X @ w["k1"] + w["b1"])
    views = np.stack([shared @ w["views"][t] for t in range(2)], axis=1)
    private = np.stack([relu(X @ w["pk"][t] + w["pb"][t]) for t in range(2)], axis=1)
    # the discriminator reads each view scaled to unit length
    unit = views / np.sqrt(np.sum(views ** 2, axis=-1, keepdims=True) + 1e-6)
    logits = relu(unit @ w["dk"] + w["db"]) @ w["lk"] + w["lb"]
    return views, private, logits


def test_forward_pass_matches_numpy_by_hand():
    layer = SharedPrivateBackbone(2, [4], [3], discriminator_units=[5])
    w = with_known_weights(layer, np.random.default_rng(1))
    views, private, _ = by_hand(w)
    outputs = layer(X)
    for t in range(2):
        np.testing.assert_allclose(np.asarray(outputs[t]),
                                   np.concatenate([views[:, t], private[:, t]], axis=-1),
                                   rtol=1e-5, atol=1e-5)


def test_losses_by_hand_in_training_only():
    layer = SharedPrivateBackbone(2, [4], [3], discriminator_units=[5],
                                  adversarial_weight=0.3, orthogonality_weight=0.02)
    w = with_known_weights(layer, np.random.default_rng(2))
    views, private, logits = by_hand(w)
    layer(X, training=False)
    assert layer.losses == []
    layer(X, training=True)
    adversarial, orthogonality = (float(v) for v in layer.losses)
    # cross-entropy of view t labelled t, mean over examples and tasks
    expected_ce = -np.mean([log_softmax(logits[:, t])[:, t] for t in range(2)])
    assert adversarial == pytest.approx(expected_ce, rel=1e-5)
    # 0.02 * sum_t ||S_t^T H_t / batch||_F^2
    expected_orth = 0.02 * sum(np.sum(np.square(views[:, t].T @ private[:, t] / 6))
                               for t in range(2))
    assert orthogonality == pytest.approx(expected_orth, rel=1e-5)


def test_orthogonality_penalty_on_a_tiny_input():
    # one task; S = [[1, 0], [0, 1]], H = [[2], [3]]: S^T H / 2 = [[1], [1.5]]
    shared = np.array([[[1.0, 0.0]], [[0.0, 1.0]]], "float32")
    private = np.array([[[2.0]], [[3.0]]], "float32")
    assert float(orthogonality_penalty(shared, private)) == pytest.approx(1.0 + 2.25)
    # orthogonal features over the batch: no penalty
    assert float(orthogonality_penalty(shared, np.array([[[0.0]], [[0.0]]], "float32"))) == 0
    layer = SharedPrivateBackbone(2, [3], [2], orthogonality_weight=0.0)
    layer(X, training=True)
    assert len(layer.losses) == 1  # the discriminator's only


@pytest.mark.parametrize("adversarial_weight", [0.5, 0.0])
def test_reversal_reaches_the_shared_side_only(adversarial_weight):
    layer = SharedPrivateBackbone(2, [4], [3], discriminator_units=[5],
                                  adversarial_weight=adversarial_weight,
                                  orthogonality_weight=0.0)
    with_known_weights(layer, np.random.default_rng(3))
    shared_side = [layer.task_views, *layer.shared.trainable_weights]
    discriminator = [*layer.discriminator_hidden.trainable_weights,
                     *layer.discriminator_logits.trainable_weights]
    x = tf.constant(X)
    with tf.GradientTape(persistent=True) as tape:
        layer(x, training=True)
        (reversed_loss,) = layer.losses
        # the same cross-entropy without the reversal
        logits = layer.discriminate(layer.shared_views(x))
        labels = tf.broadcast_to(tf.range(2)[None], (6, 2))
        plain = tf.reduce_mean(tf.keras.losses.sparse_categorical_crossentropy(
            labels, logits, from_logits=True))
    np.testing.assert_allclose(float(reversed_loss), float(plain), rtol=1e-6)
    for variable in shared_side:
        np.testing.assert_allclose(
            np.asarray(tape.gradient(reversed_loss, variable)),
            -adversarial_weight * np.asarray(tape.gradient(plain, variable)),
            rtol=1e-5, atol=1e-7)
    # the discriminator itself still minimises its loss (even at weight 0)
    for variable in discriminator:
        g = np.asarray(tape.gradient(reversed_loss, variable))
        np.testing.assert_allclose(g, np.asarray(tape.gradient(plain, variable)), rtol=1e-6)
        assert np.abs(g).sum() > 0
    # the private encoders are no part of the game
    assert tape.gradient(reversed_loss, layer.private.kernels[0]) is None


def test_identity_views_leave_the_discriminator_at_chance():
    layer = SharedPrivateBackbone(3, [4], [2])
    layer(X)
    np.testing.assert_array_equal(np.asarray(layer.task_views),
                                  np.broadcast_to(np.eye(4), (3, 4, 4)))
    views = np.asarray(layer.shared_views(X))
    np.testing.assert_allclose(views, np.repeat(np.asarray(layer.shared(X))[:, None], 3, 1))
    # identical views get the same class: exactly one of the 3 is right
    hits = np.asarray(layer.discriminator_hits(X))
    assert hits.shape == (6, 3)
    np.testing.assert_array_equal(hits.sum(axis=1), 1.0)


def test_accuracy_metric_is_updated_in_training_calls_only():
    layer = SharedPrivateBackbone(2, [4], [3], discriminator_units=[5])
    w = with_known_weights(layer, np.random.default_rng(4))
    _, _, logits = by_hand(w)
    assert [m.name for m in layer.metrics] == [DISCRIMINATOR_METRIC]
    layer(X, training=False)
    assert float(layer.accuracy_tracker.result()) == 0.0
    layer(X, training=True)
    expected = np.mean(logits.argmax(-1) == np.arange(2)[None])
    assert float(layer.accuracy_tracker.result()) == pytest.approx(expected)
    np.testing.assert_array_equal(np.asarray(layer.discriminator_hits(X)),
                                  logits.argmax(-1) == np.arange(2)[None])


def test_the_discriminator_ignores_the_scale_of_the_views():
    layer = SharedPrivateBackbone(2, [4], [3], discriminator_units=[5])
    w = with_known_weights(layer, np.random.default_rng(5))
    views, _, logits = by_hand(w)
    np.testing.assert_allclose(np.asarray(layer.discriminate(views)), logits, rtol=1e-5,
                               atol=1e-5)
    # growing the views (what the reversed gradient could do) changes nothing
    # but the epsilon's share of short views
    np.testing.assert_allclose(np.asarray(layer.discriminate(100.0 * views)), logits,
                               rtol=1e-3, atol=1e-3)
    # an all-zero view (dead ReLUs) has finite, bounded gradients: 1000 x
    # those of the unit-length input (ops.normalize's would be 1e6 x)
    zeros = tf.Variable(np.zeros((2, 2, 4), "float32"))
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(layer.discriminate(zeros))
    unit = tf.Variable(np.zeros((2, 2, 4), "float32"))
    with tf.GradientTape() as plain_tape:
        plain = tf.reduce_sum(layer.discriminator_logits(layer.discriminator_hidden(unit)))
    np.testing.assert_allclose(np.asarray(tape.gradient(total, zeros)),
                               1000.0 * np.asarray(plain_tape.gradient(plain, unit)),
                               rtol=1e-4)


def test_shared_variables_are_the_shared_encoders_last_layer():
    layer = SharedPrivateBackbone(2, [6, 4], [3])
    layer.build(X.shape)
    assert [v.path for v in layer.shared_variables()] == [
        v.path for v in layer.shared.dense_layers[-1].trainable_weights]
    assert isinstance(layer.reversal, GradientReversal)
    assert layer.reversal.scale == layer.adversarial_weight == 0.05


def test_batch_norm_and_dropout_reach_the_encoders():
    layer = SharedPrivateBackbone(2, [4], [3], dropout=0.5, batch_norm=True)
    layer(X, training=True)
    # moving mean and variance: shared and private
    assert len(layer.non_trainable_weights) == 4
    assert not np.allclose(np.asarray(layer(X, training=True)[0]),
                           np.asarray(layer(X, training=False)[0]))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="shared_units"):
        SharedPrivateBackbone(2, [], [3])
    with pytest.raises(ValueError, match="private_units"):
        SharedPrivateBackbone(2, [4], [0])
    with pytest.raises(ValueError, match="adversarial_weight >= 0"):
        SharedPrivateBackbone(2, [4], [3], adversarial_weight=-0.1)
    with pytest.raises(ValueError, match="orthogonality_weight >= 0"):
        SharedPrivateBackbone(2, [4], [3], orthogonality_weight=float("nan"))
    with pytest.raises(ValueError, match="batch_norm"):
        SharedPrivateBackbone(2, [4], [3], batch_norm="no")
