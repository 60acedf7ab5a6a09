import numpy as np

from mtrec.layers import Experts, GroupedExperts


def test_grouped_experts_contract(run_layer_test, groups, modalities):
    run_layer_test(GroupedExperts, dict(modalities=modalities, num_experts=2,
                                        expert_units=[4, 3]),
                   groups, (6, 6, 3), expected_num_trainable_weights=12)


def test_grouped_experts_read_their_group_plus_tabular(groups, modalities):
    experts = GroupedExperts(modalities, num_experts=2, expert_units=[4, 3])
    out = np.asarray(experts(groups))
    assert experts.expert_names == ["tabular_0", "tabular_1", "text_0", "text_1",
                                    "image_0", "image_1"]
    # input widths: tabular 5; text 5 + 3; image 5 + 2
    assert [bank.kernels[0].shape[1] for bank in experts.banks] == [5, 8, 7]
    # changing the image group moves only the image experts
    moved = np.asarray(experts([groups[0], groups[1], groups[2] + 1.0]))
    np.testing.assert_array_equal(moved[:, :4], out[:, :4])
    assert not np.allclose(moved[:, 4:], out[:, 4:])
    assert len(experts.last_layer_variables()) == 6


def test_grouped_experts_without_tabular_group_read_their_own(groups):
    experts = GroupedExperts(["text", "image"], 1, [2])
    experts(groups[1:])
    assert [bank.kernels[0].shape[1] for bank in experts.banks] == [3, 2]


def test_one_group_is_the_plain_bank(groups):
    grouped = GroupedExperts(["tabular"], 3, [4])
    plain = Experts(3, [4])
    out = grouped([groups[0]])
    plain.build(groups[0].shape)
    for src, dst in zip(grouped.weights, plain.weights):
        dst.assign(src)
    np.testing.assert_array_equal(np.asarray(out), np.asarray(plain(groups[0])))


def test_grouped_experts_batch_norm_contract(run_layer_test, groups, modalities):
    layer = run_layer_test(GroupedExperts, dict(modalities=modalities, num_experts=2,
                                                expert_units=[4, 3], batch_norm=True),
                           groups, (6, 6, 3), expected_num_trainable_weights=24,
                           expected_num_non_trainable_weights=12)
    assert all(bank.batch_norm for bank in layer.banks)
    assert len(layer.last_layer_variables()) == 6
