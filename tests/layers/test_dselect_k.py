"""DSelectKBackbone: MixtureOfExperts' experts with DSelect-k gates."""

import numpy as np

from mtrec.layers import DSelectKBackbone, DSelectKGates, MixtureOfExperts

X = np.random.default_rng(0).normal(size=(6, 5)).astype("float32")


def test_dselect_k_contract(run_layer_test):
    # experts: 2 layers x (kernel, bias); gates: z and w logits
    run_layer_test(DSelectKBackbone, dict(num_tasks=2, num_experts=4, expert_units=[8, 3],
                                          num_nonzeros=2),
                   X, [(6, 3), (6, 3), (6, 2, 4)], expected_num_trainable_weights=6,
                   call_kwargs=dict(return_gate_weights=True))


def test_grouped_dselect_k_contract(run_layer_test, groups, modalities):
    layer = run_layer_test(DSelectKBackbone,
                           dict(num_tasks=3, num_experts=2, expert_units=[4],
                                modalities=modalities, per_example=True),
                           groups, [(6, 4)] * 3, expected_num_trainable_weights=10)
    assert layer.gate_structure(["a", "b", "c"])[0][2] == [
        "tabular_0", "tabular_1", "text_0", "text_1", "image_0", "image_1"]


def test_it_is_mixture_of_experts_with_other_gates():
    layer = DSelectKBackbone(2, 4, [3], num_nonzeros=1, gamma=2.0)
    outputs, (weights,) = layer(X, return_gate_weights=True)
    assert isinstance(layer, MixtureOfExperts) and isinstance(layer.gates, DSelectKGates)
    assert layer.gates.num_nonzeros == 1 and layer.gates.gamma == 2.0
    # static gates: the same weights for every example
    np.testing.assert_allclose(np.asarray(weights), np.asarray(weights)[:1].repeat(6, 0))
    # the mixture is the weighted sum of the experts
    experts = np.asarray(layer.experts(X))
    np.testing.assert_allclose(np.asarray(outputs[1]),
                               np.einsum("be,beu->bu", np.asarray(weights)[:, 1], experts),
                               rtol=1e-5, atol=1e-6)
    assert layer.gate_structure(["a", "b"]) == [
        ("experts", ["a", "b"], ["expert_0", "expert_1", "expert_2", "expert_3"])]
    assert [m.shape for m in layer.gate_masks()] == [(2, 4)] and layer.gate_masks()[0].all()
    assert [v.path for v in layer.shared_variables()] == [
        v.path for v in layer.experts.last_layer_variables()]


def test_regularisers_are_added_in_training_only():
    layer = DSelectKBackbone(2, 3, [3])
    layer(X, training=False)
    assert layer.losses == []
    layer(X, training=True)
    # the entropy, and the penalty of 3 experts on 4 codes
    assert len(layer.losses) == 2 and all(float(loss) > 0 for loss in layer.losses)


def test_selected_experts_names_them():
    layer = DSelectKBackbone(3, 4, [3], num_nonzeros=2, num_gates=1)
    layer.build(X.shape)
    layer.gates.z_logits.assign([[[5.0, -5.0], [5.0, 5.0]]])  # experts 1 and 3
    assert layer.selected_experts(["a", "b", "c"]) == {"all_tasks": ["expert_1", "expert_3"]}
    config = layer.get_config()
    assert config["num_nonzeros"] == 2 and config["num_gates"] == 1
    assert DSelectKBackbone.from_config(config).get_config() == config
