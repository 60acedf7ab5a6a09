"""DSelectKGates: smooth-step and binary codes by hand, the regularisers, k-sparsity."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from mtrec.layers import DSelectKGates
from mtrec.layers.dselect_k_gates import binary_codes, smooth_step

X = np.random.default_rng(0).normal(size=(6, 5)).astype("float32")


def experts(n, units=3, seed=0):
    return np.random.default_rng(seed).normal(size=(6, n, units)).astype("float32")


def saturate(index, num_bits, scale=5.0):
    """Selector logits whose smooth-steps spell `index` in binary (LSB first)."""
    return [scale if (index >> b) & 1 else -scale for b in range(num_bits)]


def test_static_gates_contract(run_layer_test):
    run_layer_test(DSelectKGates, dict(num_gates=2, num_experts=4, num_nonzeros=2),
                   (X, experts(4)), [(6, 2, 3), (6, 2, 4)], expected_num_trainable_weights=2)


def test_per_example_gates_contract(run_layer_test):
    run_layer_test(DSelectKGates, dict(num_gates=2, num_experts=5, per_example=True),
                   (X, experts(5)), [(6, 2, 3), (6, 2, 5)], expected_num_trainable_weights=4)


def test_smooth_step_values_by_hand():
    z = np.array([-2.0, -0.5, -0.25, 0.0, 0.25, 0.5, 0.6], "float32")
    # -2 z^3 + 3 z / 2 + 1/2 with gamma = 1: 0.25 -> -1/32 + 3/8 + 1/2
    expected = [0.0, 0.0, 0.15625, 0.5, 0.84375, 1.0, 1.0]
    np.testing.assert_allclose(np.asarray(smooth_step(z)), expected, rtol=1e-6, atol=1e-7)
    # gamma scales the argument: S(z; 2) = S(z / 2; 1)
    np.testing.assert_allclose(np.asarray(smooth_step(2 * z, gamma=2.0)), expected,
                               rtol=1e-6, atol=1e-7)
    # exactly 0 / 1 with zero gradient outside [-gamma/2, gamma/2]
    t = tf.constant([-0.7, 0.0, 0.7])
    with tf.GradientTape() as tape:
        tape.watch(t)
        s = smooth_step(t)
    np.testing.assert_allclose(tape.gradient(s, t).numpy(), [0.0, 1.5, 0.0])


def test_binary_codes():
    np.testing.assert_array_equal(binary_codes(5), [[0, 0, 0], [1, 0, 0], [0, 1, 0],
                                                    [1, 1, 0], [0, 0, 1]])
    assert binary_codes(2).shape == (2, 1) and binary_codes(8).shape == (8, 3)


def test_selector_weights_by_hand():
    gates = DSelectKGates(1, 4, num_nonzeros=1)
    gates.build(X.shape)
    gates.z_logits.assign([[[0.25, -0.25]]])
    _, weights = gates(X, experts(4))
    s0, s1 = 0.84375, 0.15625  # S(0.25), S(-0.25)
    # expert i: bit 0 of i picks s0 or 1 - s0, bit 1 picks s1 or 1 - s1
    expected = [(1 - s0) * (1 - s1), s0 * (1 - s1), (1 - s0) * s1, s0 * s1]
    np.testing.assert_allclose(np.asarray(weights)[0, 0], expected, rtol=1e-6)


@pytest.mark.parametrize("num_experts", [2, 5, 8])
def test_saturated_logits_pick_one_expert(num_experts):
    gates = DSelectKGates(num_experts, num_experts, num_nonzeros=1)
    gates.build(X.shape)
    m = binary_codes(num_experts).shape[1]
    # gate i's selector spells i
    gates.z_logits.assign([[saturate(i, m)] for i in range(num_experts)])
    outputs = experts(num_experts)
    mixtures, weights = gates(X, outputs)
    np.testing.assert_array_equal(np.asarray(weights)[0], np.eye(num_experts))
    np.testing.assert_allclose(np.asarray(mixtures), outputs, rtol=1e-6)


def test_k_selectors_mix_by_their_softmax_weights():
    gates = DSelectKGates(1, 4, num_nonzeros=2)
    gates.build(X.shape)
    gates.z_logits.assign([[saturate(1, 2), saturate(3, 2)]])
    gates.w_logits.assign([[np.log(3.0), 0.0]])  # softmax: 0.75, 0.25
    outputs = experts(4)
    mixtures, weights = gates(X, outputs)
    np.testing.assert_allclose(np.asarray(weights)[0, 0], [0, 0.75, 0, 0.25], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(mixtures)[:, 0],
                               0.75 * outputs[:, 1] + 0.25 * outputs[:, 3], rtol=1e-5)
    assert gates.selected_experts().tolist() == [[False, True, False, True]]


def test_entropy_regulariser_by_hand_in_training_only():
    gates = DSelectKGates(1, 4, num_nonzeros=2, entropy_weight=0.1)
    gates.build(X.shape)
    z = np.array([[[0.25, -0.25], saturate(2, 2)]], "float32")
    gates.z_logits.assign(z)
    gates(X, experts(4), training=False)
    assert gates.losses == []
    gates(X, experts(4), training=True)
    s0, s1 = 0.84375, 0.15625
    r = np.array([(1 - s0) * (1 - s1), s0 * (1 - s1), (1 - s0) * s1, s0 * s1])
    # the saturated selector has entropy 0
    expected = 0.1 * -(r * np.log(r + 1e-6)).sum()
    (loss,) = gates.losses
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_unreachable_codes_are_penalised_when_not_a_power_of_2():
    gates = DSelectKGates(1, 3, num_nonzeros=1, entropy_weight=0.0)
    gates.build(X.shape)
    gates.z_logits.assign([[[0.0, 0.0]]])  # uniform over 4 codes, 3 of them experts
    gates(X, experts(3), training=True)
    (penalty,) = gates.losses
    assert float(penalty) == pytest.approx(1 / 0.75 - 1, rel=1e-5)
    gates.z_logits.assign([[saturate(2, 2)]])
    gates(X, experts(3), training=True)
    assert float(gates.losses[0]) == pytest.approx(0.0, abs=1e-5)
    four = DSelectKGates(1, 4, num_nonzeros=1, entropy_weight=0.0)
    four(X, experts(4), training=True)
    assert four.losses == []


# Per example, the selectors of each example saturate more slowly: more entropy.
@pytest.mark.parametrize("per_example, entropy_weight", [(False, 0.001), (True, 0.1)])
def test_training_leaves_at_most_k_experts(per_example, entropy_weight):
    # Fit a target mixture of experts 1 and 6: every selector saturates, so
    # each gate gives exactly 0 to all but at most k = 2 experts.
    keras.utils.set_random_seed(0)
    n, k = 8, 2
    gates = DSelectKGates(3, n, num_nonzeros=k, entropy_weight=entropy_weight,
                          per_example=per_example)
    outputs = tf.constant(experts(n, units=4))
    target = 0.5 * outputs[:, 1] + 0.5 * outputs[:, 6]
    x = tf.constant(X)
    gates(x, outputs)
    optimizer = keras.optimizers.Adam(0.05)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            mixtures, _ = gates(x, outputs, training=True)
            loss = tf.reduce_mean((mixtures - target[:, None]) ** 2) + sum(gates.losses)
        grads = tape.gradient(loss, gates.trainable_weights)
        optimizer.apply_gradients(zip(grads, gates.trainable_weights))

    _, before = gates(x, outputs)
    assert (np.asarray(before) > 0).all()  # every expert has weight at first
    for _ in range(150):
        step()
    _, weights = gates(x, outputs)
    nonzero = (np.asarray(weights) > 0).sum(-1)
    assert nonzero.max() <= k and nonzero.min() >= 1
    np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, rtol=1e-5)
    if not per_example:
        # the target's two experts, half each
        assert gates.selected_experts().tolist() == [[i in (1, 6) for i in range(n)]] * 3
        np.testing.assert_allclose(np.asarray(weights)[0][:, [1, 6]], 0.5, atol=1e-3)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="num_experts >= 2"):
        DSelectKGates(2, 1)
    with pytest.raises(ValueError, match="num_nonzeros"):
        DSelectKGates(2, 4, num_nonzeros=5)
    with pytest.raises(ValueError, match="gamma"):
        DSelectKGates(2, 4, gamma=0.0)
    with pytest.raises(ValueError, match="entropy_weight"):
        DSelectKGates(2, 4, entropy_weight=-1.0)
    with pytest.raises(ValueError, match="per_example"):
        DSelectKGates(2, 4, per_example="yes")
    with pytest.raises(ValueError, match="per_example=True"):
        DSelectKGates(2, 4, per_example=True).selected_experts()
