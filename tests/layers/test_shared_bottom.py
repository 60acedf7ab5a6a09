import numpy as np
import pytest

from mtrec.layers import SharedBottomBackbone


def test_shared_bottom_contract(run_layer_test):
    run_layer_test(SharedBottomBackbone, dict(num_tasks=3, units=[4, 2]),
                   np.ones((2, 3), "float32"), [(2, 2)] * 3,
                   expected_num_trainable_weights=4)


def test_shared_bottom_returns_one_tensor_per_task_and_no_gates():
    layer = SharedBottomBackbone(3, [4])
    outs, weights = layer(np.ones((2, 3), "float32"), return_gate_weights=True)
    assert len(outs) == 3 and outs[0].shape == (2, 4) and weights == []
    assert layer.gate_structure(["a", "b", "c"]) == [] and layer.gate_masks() == []
    assert [v.shape for v in layer.shared_variables()] == [(3, 4), (4,)]
    with pytest.raises(ValueError, match="num_tasks >= 1"):
        SharedBottomBackbone(0, [4])


def test_shared_bottom_batch_norm_contract(run_layer_test):
    layer = run_layer_test(SharedBottomBackbone, dict(num_tasks=3, units=[4, 2],
                                                      batch_norm=True),
                           np.ones((2, 3), "float32"), [(2, 2)] * 3,
                           expected_num_trainable_weights=8,
                           expected_num_non_trainable_weights=4)
    assert layer.mlp.batch_norm
    # GradNorm's W stays the last Dense layer
    assert [v.shape for v in layer.shared_variables()] == [(4, 2), (2,)]
