import numpy as np
import pytest

from mtrec.layers import CGCBackbone, PLEBackbone

X = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")


def test_ple_contract(run_layer_test):
    run_layer_test(PLEBackbone, dict(num_tasks=2, num_levels=2, num_specific_experts=1,
                                     num_shared_experts=1, expert_units=[3]),
                   X, [(4, 3), (4, 3), (4, 3, 3), (4, 2, 3)],
                   expected_num_trainable_weights=8,
                   call_kwargs=dict(return_gate_weights=True))


def test_grouped_ple_contract(run_layer_test, tmp_path, groups, modalities):
    run_layer_test(PLEBackbone, dict(num_tasks=2, num_levels=2, num_specific_experts=1,
                                     num_shared_experts=1, expert_units=[4],
                                     modalities=modalities),
                   groups, [(6, 4), (6, 4)], expected_num_trainable_weights=14,
                   tmp_path=tmp_path)


def test_ple_levels_and_equivalence_to_cgc_with_one_level():
    ple = PLEBackbone(num_tasks=3, num_levels=3, num_specific_experts=1,
                      num_shared_experts=2, expert_units=[5])
    outs, weights = ple(X, return_gate_weights=True)
    assert len(outs) == 3 and all(o.shape == (4, 5) for o in outs)
    assert [w.shape for w in weights] == [(4, 4, 5), (4, 4, 5), (4, 3, 5)]
    assert [level for level, _, _ in ple.gate_structure(["a", "b", "c"])] == [
        "level_0", "level_1", "level_2"]
    assert [m.shape for m in ple.gate_masks()] == [(4, 5), (4, 5), (3, 5)]
    one, cgc = PLEBackbone(2, 1, 1, 1, [3]), CGCBackbone(2, 1, 1, [3])
    one.build(X.shape)
    cgc.build(X.shape)
    for src, dst in zip(one.weights, cgc.weights):
        dst.assign(src)
    for a, b in zip(one(X), cgc(X)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    with pytest.raises(ValueError, match="num_levels"):
        PLEBackbone(2, 0, 1, 1, [3])


def test_grouped_ple_groups_only_the_first_level(groups, modalities):
    layer = PLEBackbone(2, 2, 1, 1, [4], modalities=modalities)
    outputs, weights = layer(groups, return_gate_weights=True)
    assert len(outputs) == 2 and outputs[0].shape == (6, 4)
    assert layer.levels[0].modalities == modalities and layer.levels[1].modalities is None
    assert [w.shape for w in weights] == [(6, 3, 5), (6, 2, 3)]
    first, second = layer.gate_structure(["click", "spend"])
    assert first == ("level_0", ["click", "spend", "shared"],
                     ["click_0", "spend_0", "tabular_0", "text_0", "image_0"])
    assert second[0] == "level_1" and second[2][-1] == "shared_0"
    assert len(layer.shared_variables()) == 2  # the last level: one plain bank


def test_one_modality_group_computes_the_plain_layer():
    plain = PLEBackbone(2, 2, 1, 1, [3])
    grouped = PLEBackbone(2, 2, 1, 1, [3], modalities=["tabular"])
    plain.build(X.shape)
    grouped.build([X.shape])
    k, b = (np.asarray(v) for v in (plain.levels[0].experts.kernels[0],
                                    plain.levels[0].experts.biases[0]))
    first = grouped.levels[0]
    first.specific_experts.kernels[0].assign(k[:2])
    first.specific_experts.biases[0].assign(b[:2])
    first.shared_experts.banks[0].kernels[0].assign(k[2:])
    first.shared_experts.banks[0].biases[0].assign(b[2:])
    first.gates.kernel.assign(plain.levels[0].gates.kernel)
    first.gates.bias.assign(plain.levels[0].gates.bias)
    for src, dst in zip(plain.levels[1].weights, grouped.levels[1].weights):
        dst.assign(src)
    for a, b in zip(plain(X), grouped([X])):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_ple_batch_norm_in_every_level(run_layer_test):
    layer = run_layer_test(PLEBackbone, dict(num_tasks=2, num_levels=2,
                                             num_specific_experts=1, num_shared_experts=1,
                                             expert_units=[3], batch_norm=True),
                           X, [(4, 3), (4, 3)], expected_num_trainable_weights=12,
                           expected_num_non_trainable_weights=4)
    assert [level.batch_norm for level in layer.levels] == [True, True]
    assert PLEBackbone(2, 2, 1, 1, [3]).get_config()["batch_norm"] is False
