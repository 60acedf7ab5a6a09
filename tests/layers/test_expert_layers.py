import numpy as np
import keras
import pytest

from mtrec.layers import CGC, MLP, PLE, ExpertGates, Experts, MixtureOfExperts, SharedBottom


def roundtrip(layer):
    return layer.__class__.from_config(layer.get_config())


def test_mlp_shapes_config_and_exact_value():
    mlp = MLP([3, 2], kernel_initializer="ones")
    x = np.ones((4, 5), "float32")
    y = mlp(x)
    assert y.shape == (4, 2)
    # relu(5 ones) = 5 per unit, then 3 * 5 = 15 per unit (biases zero)
    np.testing.assert_allclose(np.asarray(y), np.full((4, 2), 15.0))
    again = roundtrip(mlp)
    assert again.units == [3, 2] and again.get_config()["kernel_initializer"]


def test_mlp_rejects_bad_units():
    with pytest.raises(ValueError, match="units"):
        MLP([4, 0])


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
    assert roundtrip(experts).num_experts == 3


def test_experts_are_independent_after_init():
    experts = Experts(4, [5])
    experts.build((None, 6))
    kernel = np.asarray(experts.kernels[0])
    assert kernel.shape == (4, 6, 5)
    assert not np.allclose(kernel[0], kernel[1])


def test_expert_gates_mask_and_normalisation():
    mask = [[1, 0, 1], [0, 1, 1]]
    gates = ExpertGates(2, 3, expert_mask=mask)
    x = np.random.default_rng(0).normal(size=(5, 4)).astype("float32")
    experts = np.random.default_rng(1).normal(size=(5, 3, 2)).astype("float32")
    mixtures, weights = gates(x, experts)
    weights = np.asarray(weights)
    assert mixtures.shape == (5, 2, 2) and weights.shape == (5, 2, 3)
    np.testing.assert_allclose(weights.sum(-1), 1.0, rtol=1e-6)
    assert np.all(weights[:, 0, 1] < 1e-12) and np.all(weights[:, 1, 0] < 1e-12)
    expected = np.einsum("bge,beu->bgu", weights, experts)
    np.testing.assert_allclose(np.asarray(mixtures), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="expert_mask"):
        ExpertGates(2, 3, expert_mask=[[0, 0, 0], [1, 1, 1]])


def test_mixture_of_experts_mmoe_and_omoe():
    x = np.random.default_rng(0).normal(size=(6, 5)).astype("float32")
    mmoe = MixtureOfExperts(4, [8, 3], num_gates=2)
    outs, weights = mmoe(x, return_gate_weights=True)
    assert [o.shape for o in outs] == [(6, 3), (6, 3)]
    assert weights.shape == (6, 2, 4)
    omoe = MixtureOfExperts(4, [3], num_gates=1, num_outputs=3)
    outs = omoe(x)
    assert len(outs) == 3
    np.testing.assert_allclose(np.asarray(outs[0]), np.asarray(outs[2]))
    with pytest.raises(ValueError, match="num_gates"):
        MixtureOfExperts(4, [3], num_gates=2, num_outputs=3)
    again = roundtrip(mmoe)
    assert again.get_config() == mmoe.get_config()


def test_mixture_with_equal_experts_equals_one_expert():
    # With identical experts ("ones") any gate mixture equals each expert.
    moe = MixtureOfExperts(3, [2], num_gates=2)
    x = np.ones((2, 4), "float32")
    moe.build(x.shape)
    for k in moe.experts.kernels:
        k.assign(np.ones(k.shape, "float32"))
    outs = moe(x)
    np.testing.assert_allclose(np.asarray(outs[0]), np.full((2, 2), 4.0), rtol=1e-6)


def test_cgc_gate_sees_own_and_shared_experts_only():
    cgc = CGC(num_tasks=2, num_specific_experts=2, num_shared_experts=1, expert_units=[4])
    x = np.random.default_rng(0).normal(size=(3, 5)).astype("float32")
    outs, weights = cgc(x, return_gate_weights=True)
    weights = np.asarray(weights)
    assert len(outs) == 2 and weights.shape == (3, 2, 5)
    # experts: [t0, t0, t1, t1, shared]
    assert np.all(weights[:, 0, 2:4] < 1e-12) and np.all(weights[:, 1, 0:2] < 1e-12)
    assert np.all(weights[:, :, 4] > 0)


def test_cgc_inner_level_takes_task_and_shared_inputs():
    cgc = CGC(2, 1, 1, [3], output_shared=True)
    xs = [np.full((2, 4), v, "float32") for v in (1.0, 2.0, 3.0)]
    outs, weights = cgc(xs, return_gate_weights=True)
    assert len(outs) == 3 and weights.shape == (2, 3, 3)
    assert np.all(np.asarray(weights)[:, 2, :] > 0)  # shared gate sees all
    with pytest.raises(ValueError, match="num_tasks \\+ 1"):
        cgc(xs[:2])


def test_ple_levels_and_equivalence_to_cgc_with_one_level():
    x = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")
    ple = PLE(num_tasks=3, num_levels=3, num_specific_experts=1, num_shared_experts=2,
              expert_units=[5])
    outs, weights = ple(x, return_gate_weights=True)
    assert len(outs) == 3 and all(o.shape == (4, 5) for o in outs)
    assert [w.shape for w in weights] == [(4, 4, 5), (4, 4, 5), (4, 3, 5)]
    one = PLE(2, 1, 1, 1, [3])
    cgc = CGC(2, 1, 1, [3])
    one.build(x.shape)
    cgc.build(x.shape)
    for src, dst in zip(one.weights, cgc.weights):
        dst.assign(src)
    for a, b in zip(one(x), cgc(x)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
    with pytest.raises(ValueError, match="num_levels"):
        PLE(2, 0, 1, 1, [3])


def test_shared_bottom_returns_one_tensor_per_task():
    layer = SharedBottom([4], num_outputs=3)
    outs = layer(np.ones((2, 3), "float32"))
    assert len(outs) == 3 and outs[0].shape == (2, 4)


@pytest.mark.parametrize("layer", [
    MLP([3]), Experts(2, [3]), MixtureOfExperts(2, [3]), CGC(2, 1, 1, [3]),
    PLE(2, 2, 1, 1, [3]), SharedBottom([3]), ExpertGates(2, 3)])
def test_layers_are_registered_for_serialisation(layer):
    config = keras.saving.serialize_keras_object(layer)
    assert config["registered_name"].startswith("mtrec.layers>")
    again = keras.saving.deserialize_keras_object(config)
    assert type(again) is type(layer)
