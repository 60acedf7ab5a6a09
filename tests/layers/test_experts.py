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
