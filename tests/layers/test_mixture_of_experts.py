import numpy as np
import pytest

from mtrec.layers import MixtureOfExperts

X = np.random.default_rng(0).normal(size=(6, 5)).astype("float32")


def test_mixture_of_experts_contract(run_layer_test):
    run_layer_test(MixtureOfExperts, dict(num_tasks=2, num_experts=4, expert_units=[8, 3]),
                   X, [(6, 3), (6, 3), (6, 2, 4)], expected_num_trainable_weights=6,
                   call_kwargs=dict(return_gate_weights=True))


def test_grouped_mixture_of_experts_contract(run_layer_test, tmp_path, groups, modalities):
    run_layer_test(MixtureOfExperts, dict(num_tasks=3, num_experts=2, expert_units=[4],
                                          modalities=modalities),
                   groups, [(6, 4)] * 3, expected_num_trainable_weights=8,
                   tmp_path=tmp_path)


def test_mmoe_and_omoe():
    mmoe = MixtureOfExperts(2, 4, [8, 3])
    outs, weights = mmoe(X, return_gate_weights=True)
    assert [o.shape for o in outs] == [(6, 3), (6, 3)]
    assert [w.shape for w in weights] == [(6, 2, 4)]
    assert mmoe.gate_structure(["a", "b"]) == [
        ("experts", ["a", "b"], ["expert_0", "expert_1", "expert_2", "expert_3"])]
    omoe = MixtureOfExperts(3, 4, [3], num_gates=1)
    outs = omoe(X)
    assert len(outs) == 3
    np.testing.assert_allclose(np.asarray(outs[0]), np.asarray(outs[2]))
    assert omoe.gate_structure(["a", "b", "c"])[0][1] == ["all_tasks"]
    assert omoe.gate_masks()[0].shape == (1, 4) and omoe.gate_masks()[0].all()
    assert len(omoe.shared_variables()) == 2
    with pytest.raises(ValueError, match="num_gates"):
        MixtureOfExperts(3, 4, [3], num_gates=2)


def test_mixture_with_equal_experts_equals_one_expert():
    # With identical experts ("ones") any gate mixture equals each expert.
    moe = MixtureOfExperts(2, 3, [2])
    x = np.ones((2, 4), "float32")
    moe.build(x.shape)
    for k in moe.experts.kernels:
        k.assign(np.ones(k.shape, "float32"))
    np.testing.assert_allclose(np.asarray(moe(x)[0]), np.full((2, 2), 4.0), rtol=1e-6)


def test_grouped_mixture_gates_mix_every_group(groups, modalities):
    layer = MixtureOfExperts(3, 2, [4], modalities=modalities)
    outputs, (weights,) = layer(groups, return_gate_weights=True)
    assert weights.shape == (6, 3, 6)
    np.testing.assert_allclose(np.asarray(weights).sum(-1), 1.0, rtol=1e-5)
    assert layer.gate_structure(["a", "b", "c"])[0][2] == [
        "tabular_0", "tabular_1", "text_0", "text_1", "image_0", "image_1"]
    assert len(layer.shared_variables()) == 6  # 3 banks x (W, b)
    first, second = MixtureOfExperts(2, 1, [4], num_gates=1, modalities=modalities)(groups)
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))


def test_one_modality_group_computes_the_plain_layer():
    plain = MixtureOfExperts(2, 3, [4, 2])
    grouped = MixtureOfExperts(2, 3, [4, 2], modalities=["tabular"])
    plain.build(X.shape)
    grouped.build([X.shape])
    assert [w.shape for w in plain.weights] == [w.shape for w in grouped.weights]
    for src, dst in zip(plain.weights, grouped.weights):
        dst.assign(src)
    for a, b in zip(plain(X), grouped([X])):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


def test_reads_the_0_1_0_config():
    old = {"name": "moe", "num_experts": 3, "expert_units": [4], "num_gates": 1,
           "num_outputs": 2, "dropout": 0.0}
    layer = MixtureOfExperts.from_config(old)
    assert (layer.num_tasks, layer.num_experts, layer.num_gates) == (2, 3, 1)


def test_mixture_of_experts_batch_norm_contract(run_layer_test):
    # experts' layers gain gamma and beta (trainable), moving mean and variance
    layer = run_layer_test(MixtureOfExperts, dict(num_tasks=2, num_experts=4,
                                                  expert_units=[8, 3], batch_norm=True),
                           X, [(6, 3), (6, 3)], expected_num_trainable_weights=10,
                           expected_num_non_trainable_weights=4)
    assert layer.experts.batch_norm and layer.get_config()["batch_norm"] is True


def test_grouped_mixture_of_experts_batch_norm(run_layer_test, groups, modalities):
    layer = run_layer_test(MixtureOfExperts, dict(num_tasks=3, num_experts=2,
                                                  expert_units=[4], modalities=modalities,
                                                  batch_norm=True),
                           groups, [(6, 4)] * 3, expected_num_trainable_weights=14,
                           expected_num_non_trainable_weights=6)
    assert all(bank.batch_norm for bank in layer.experts.banks)
    training = np.asarray(layer(groups, training=True)[0])
    assert not np.allclose(training, np.asarray(layer(groups, training=False)[0]))
