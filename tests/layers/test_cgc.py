import numpy as np
import pytest

from mtrec.layers import CGCBackbone

X = np.random.default_rng(0).normal(size=(3, 5)).astype("float32")


def test_cgc_contract(run_layer_test):
    run_layer_test(CGCBackbone, dict(num_tasks=2, num_specific_experts=2,
                                     num_shared_experts=1, expert_units=[4]),
                   X, [(3, 4), (3, 4), (3, 2, 5)], expected_num_trainable_weights=4,
                   call_kwargs=dict(return_gate_weights=True))


def test_grouped_cgc_contract(run_layer_test, tmp_path, groups, modalities):
    run_layer_test(CGCBackbone, dict(num_tasks=2, num_specific_experts=1,
                                     num_shared_experts=2, expert_units=[4],
                                     modalities=modalities),
                   groups, [(6, 4), (6, 4)], expected_num_trainable_weights=10,
                   tmp_path=tmp_path)


def test_cgc_gate_sees_own_and_shared_experts_only():
    cgc = CGCBackbone(num_tasks=2, num_specific_experts=2, num_shared_experts=1,
                      expert_units=[4])
    outs, (weights,) = cgc(X, return_gate_weights=True)
    weights = np.asarray(weights)
    assert len(outs) == 2 and weights.shape == (3, 2, 5)
    # experts: [t0, t0, t1, t1, shared]
    assert np.all(weights[:, 0, 2:4] < 1e-12) and np.all(weights[:, 1, 0:2] < 1e-12)
    assert np.all(weights[:, :, 4] > 0)
    (level, gates, experts), = cgc.gate_structure(["a", "b"])
    assert (level, gates, experts) == ("experts", ["a", "b"],
                                       ["a_0", "a_1", "b_0", "b_1", "shared_0"])
    np.testing.assert_array_equal(cgc.gate_masks()[0], weights[0] > 0)


def test_cgc_inner_level_takes_task_and_shared_inputs():
    cgc = CGCBackbone(2, 1, 1, [3], output_shared=True)
    xs = [np.full((2, 4), v, "float32") for v in (1.0, 2.0, 3.0)]
    outs, (weights,) = cgc(xs, return_gate_weights=True)
    assert len(outs) == 3 and weights.shape == (2, 3, 3)
    assert np.all(np.asarray(weights)[:, 2, :] > 0)  # shared gate sees all
    with pytest.raises(ValueError, match="num_tasks \\+ 1"):
        cgc(xs[:2])


def test_grouped_cgc_gates_see_own_and_modality_experts(groups, modalities):
    layer = CGCBackbone(2, 1, 2, [4], modalities=modalities, output_shared=True)
    outputs, (weights,) = layer(groups, return_gate_weights=True)
    assert len(outputs) == 3 and weights.shape == (6, 3, 8)
    weights = np.asarray(weights)
    assert layer.level_structure(["a", "b"])[1] == [
        "a_0", "b_0", "tabular_0", "tabular_1", "text_0", "text_1", "image_0", "image_1"]
    # task a's gate never uses task b's expert; the shared gate sees all
    np.testing.assert_array_equal(weights[:, 0, 1], 0.0)
    np.testing.assert_array_equal(weights[:, 1, 0], 0.0)
    assert (weights[:, 2] > 0).all()
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-5)
    # a modality named like a task keeps expert names unique
    names = layer.level_structure(["text", "b"])[1]
    assert names[2:4] == ["tabular_0", "tabular_1"] and "shared_text_0" in names
    assert len(layer.shared_variables()) == 8  # 3 banks + the specific experts
    with pytest.raises(ValueError, match="num_shared_experts >= 1"):
        CGCBackbone(2, 1, 0, [4], modalities=modalities)


def test_one_modality_group_computes_the_plain_layer():
    # plain: one bank [t0, t1, shared]; grouped: specific [t0, t1] + group [shared]
    plain = CGCBackbone(2, 1, 2, [4])
    grouped = CGCBackbone(2, 1, 2, [4], modalities=["tabular"])
    plain.build(X.shape)
    grouped.build([X.shape])
    k, b = (np.asarray(v) for v in plain.experts.kernels + plain.experts.biases)
    grouped.specific_experts.kernels[0].assign(k[:2])
    grouped.specific_experts.biases[0].assign(b[:2])
    grouped.shared_experts.banks[0].kernels[0].assign(k[2:])
    grouped.shared_experts.banks[0].biases[0].assign(b[2:])
    grouped.gates.kernel.assign(plain.gates.kernel)
    grouped.gates.bias.assign(plain.gates.bias)
    for a, b in zip(plain(X), grouped([X])):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_cgc_batch_norm_contract(run_layer_test):
    layer = run_layer_test(CGCBackbone, dict(num_tasks=2, num_specific_experts=2,
                                             num_shared_experts=1, expert_units=[4],
                                             batch_norm=True),
                           X, [(3, 4), (3, 4)], expected_num_trainable_weights=6,
                           expected_num_non_trainable_weights=2)
    assert layer.experts.batch_norm
    training = np.asarray(layer(X, training=True)[0])
    assert not np.allclose(training, np.asarray(layer(X, training=False)[0]))


def test_grouped_cgc_batch_norm_in_task_and_shared_experts(run_layer_test, groups,
                                                           modalities):
    layer = run_layer_test(CGCBackbone, dict(num_tasks=2, num_specific_experts=1,
                                             num_shared_experts=2, expert_units=[4],
                                             modalities=modalities, batch_norm=True),
                           groups, [(6, 4), (6, 4)], expected_num_trainable_weights=18,
                           expected_num_non_trainable_weights=8)
    assert layer.specific_experts.batch_norm and layer.shared_experts.batch_norm
