import numpy as np
import pytest

from mtrec.layers import TaskBottoms


def test_task_bottoms_contract(run_layer_test):
    run_layer_test(TaskBottoms, dict(num_tasks=3, units=[4, 2]),
                   np.ones((5, 3, 6), "float32"), [(5, 2)] * 3,
                   expected_num_trainable_weights=4)


def test_each_task_reads_its_own_input_and_shares_nothing():
    bottoms = TaskBottoms(2, [3])
    x = np.random.default_rng(0).normal(size=(4, 2, 5)).astype("float32")
    first, second = bottoms(x)
    moved_first, moved_second = bottoms(np.stack([x[:, 0], x[:, 1] + 1.0], axis=1))
    np.testing.assert_array_equal(np.asarray(first), np.asarray(moved_first))
    assert not np.allclose(np.asarray(second), np.asarray(moved_second))
    assert bottoms.gate_structure(["a", "b"]) == []
    with pytest.raises(ValueError, match="no shared layer"):
        bottoms.shared_variables()


def test_task_bottoms_batch_norm_contract(run_layer_test):
    layer = run_layer_test(TaskBottoms, dict(num_tasks=3, units=[4, 2], batch_norm=True),
                           np.ones((5, 3, 6), "float32"), [(5, 2)] * 3,
                           expected_num_trainable_weights=8,
                           expected_num_non_trainable_weights=4)
    assert layer.get_config()["batch_norm"] is True
