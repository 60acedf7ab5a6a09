import numpy as np
import pytest

from mtrec.layers import ExpertGates
from mtrec.layers.expert_gates import task_expert_mask

X = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
EXPERTS = np.random.default_rng(1).normal(size=(5, 3, 2)).astype("float32")


def test_expert_gates_contract(run_layer_test):
    run_layer_test(ExpertGates, dict(num_gates=2, num_experts=3,
                                     expert_mask=[[1, 0, 1], [0, 1, 1]]),
                   (X, EXPERTS), [(5, 2, 2), (5, 2, 3)],
                   expected_num_trainable_weights=2)


def test_expert_gates_mask_and_normalisation():
    gates = ExpertGates(2, 3, expert_mask=[[1, 0, 1], [0, 1, 1]])
    mixtures, weights = gates(X, EXPERTS)
    weights = np.asarray(weights)
    assert mixtures.shape == (5, 2, 2) and weights.shape == (5, 2, 3)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
    assert np.all(weights[:, 0, 1] < 1e-12) and np.all(weights[:, 1, 0] < 1e-12)
    expected = np.einsum("bge,beu->bgu", weights, EXPERTS)
    np.testing.assert_allclose(np.asarray(mixtures), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="expert_mask"):
        ExpertGates(2, 3, expert_mask=[[0, 0, 0], [1, 1, 1]])


def test_task_expert_mask_by_hand():
    # experts [t0, t0, t1, t1, shared]; the shared gate (last row) sees all
    np.testing.assert_array_equal(task_expert_mask(2, 2, 1, output_shared=True), [
        [1, 1, 0, 0, 1], [0, 0, 1, 1, 1], [1, 1, 1, 1, 1]])
    assert task_expert_mask(3, 0, 2).tolist() == [[1, 1]] * 3


def test_unmasked_gates_are_the_softmax_of_each_gates_logits():
    # No mask: the offset is skipped, so the weights must still be exactly
    # softmax(x @ kernel_g + bias_g) for each gate g.
    gates = ExpertGates(2, 3)
    mixtures, weights = gates(X, EXPERTS)
    kernel, bias = np.asarray(gates.kernel), np.asarray(gates.bias)
    logits = np.einsum("bi,gie->bge", X, kernel) + bias
    expected = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    np.testing.assert_allclose(np.asarray(weights), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(mixtures),
                               np.einsum("bge,beu->bgu", expected, EXPERTS),
                               rtol=1e-5, atol=1e-6)
