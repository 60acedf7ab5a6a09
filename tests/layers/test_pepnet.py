"""PEPNetBackbone and GateNU: shapes, gate range, the stop-gradients, the
gated layers by hand, scenarios apart."""

import numpy as np
import pytest
import tensorflow as tf

from mtrec.layers import GateNU, PEPNetBackbone

RNG = np.random.default_rng(0)
X = RNG.normal(size=(6, 5)).astype("float32")
# scenario (3 ids), then a user id (7 ids)
IDS = np.array([[0, 1], [1, 2], [2, 3], [1, 4], [2, 5], [1, 6]], "int64")


def test_pepnet_contract(run_layer_test):
    # 2 prior tables; EPNet gate (2 Dense = 4); per task and layer a Dense
    # (2) and a gate (4): 2 tasks x 2 layers x 6
    run_layer_test(PEPNetBackbone, dict(num_tasks=2, units=[8, 4], cardinalities=[3, 7],
                                        prior_dim=2, gate_units=4),
                   (X, IDS), [(6, 4)] * 2, expected_num_trainable_weights=2 + 4 + 24)


def test_gate_nu_contract(run_layer_test):
    run_layer_test(GateNU, dict(units=3, hidden_units=4), X, (6, 3),
                   expected_num_trainable_weights=4)


def test_gates_lie_in_zero_two_even_for_large_logits():
    layer = PEPNetBackbone(2, [4, 3], [3, 7], prior_dim=2, gate_units=4)
    _, gates = layer.gates(X, IDS)
    assert set(gates) == {"epnet", "task_0_gate_0", "task_0_gate_1", "task_1_gate_0",
                          "task_1_gate_1"}
    assert gates["epnet"].shape == (6, 5) and gates["task_1_gate_0"].shape == (6, 4)
    for gate in gates.values():
        gate = np.asarray(gate)
        assert np.all((gate > 0) & (gate < 2))
    # near 1 at initialisation, so the input passes almost unchanged
    assert abs(float(np.mean(np.asarray(gates["epnet"]))) - 1.0) < 0.5
    gate = GateNU(2, hidden_units=3)
    values = np.asarray(gate(X * 10.0))
    assert np.all((values >= 0) & (values <= 2))
    gate.gate.bias.assign([50.0, -50.0])
    np.testing.assert_allclose(np.asarray(gate(X))[:, 0], 2.0)
    np.testing.assert_allclose(np.asarray(gate(X))[:, 1], 0.0, atol=1e-12)


def test_epnet_gate_passes_no_gradient_into_the_input():
    layer = PEPNetBackbone(1, [3], [3, 7], prior_dim=2, gate_units=4)
    x = tf.constant(X)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        gated, gates = layer.gates(x, IDS)
        gate_sum = tf.reduce_sum(gates["epnet"])
        ppnet_sum = tf.reduce_sum(gates["task_0_gate_0"])
        gated_sum = tf.reduce_sum(gated)
    # the gates see the input through a stop-gradient ...
    assert tape.gradient(gate_sum, x) is None
    assert tape.gradient(ppnet_sum, x) is None
    # ... but the gated input reaches it through the product, gate * x
    np.testing.assert_allclose(np.asarray(tape.gradient(gated_sum, x)),
                               np.asarray(gates["epnet"]), rtol=1e-6)
    # the gates do train the scenario (and prior) embeddings
    scenario_table = layer.prior_embeddings[0].embeddings
    grad = tf.convert_to_tensor(tape.gradient(gate_sum, scenario_table))
    assert float(tf.reduce_sum(tf.abs(grad))) > 0
    # the EPNet gate reads the scenario only, not the user id
    assert tape.gradient(gate_sum, layer.prior_embeddings[1].embeddings) is None
    user = tf.convert_to_tensor(tape.gradient(ppnet_sum, layer.prior_embeddings[1].embeddings))
    assert float(tf.reduce_sum(tf.abs(user))) > 0


def test_gated_layers_match_by_hand():
    layer = PEPNetBackbone(2, [4, 3], [3, 7], prior_dim=2, gate_units=4)
    gated, gates = layer.gates(X, IDS)
    gated, gates = np.asarray(gated), {k: np.asarray(v) for k, v in gates.items()}
    np.testing.assert_allclose(gated, gates["epnet"] * X, rtol=1e-6)
    outputs = layer(X, IDS)
    for t in range(2):
        h = gated
        for l, dense in enumerate(layer.task_layers[t]):
            h = np.maximum(h @ np.asarray(dense.kernel) + np.asarray(dense.bias), 0.0)
            h = gates[f"task_{t}_gate_{l}"] * h
        np.testing.assert_allclose(np.asarray(outputs[t]), h, rtol=1e-5, atol=1e-6)


def test_scenarios_differ_and_one_scenario_is_deterministic():
    layer = PEPNetBackbone(1, [4], [3], prior_dim=2, gate_units=4)
    scenario = np.zeros((6, 1), "int64")
    a = np.asarray(layer(X, scenario)[0])
    np.testing.assert_array_equal(a, np.asarray(layer(X, scenario)[0]))
    assert not np.allclose(a, np.asarray(layer(X, scenario + 2)[0]))


def test_batch_norm_dropout_and_shared_variables():
    layer = PEPNetBackbone(2, [4, 3], [3], batch_norm=True, dropout=0.5)
    layer(X, IDS[:, :1], training=True)
    # moving mean and variance per task and layer
    assert len(layer.non_trainable_weights) == 8
    assert not np.allclose(np.asarray(layer(X, IDS[:, :1], training=True)[0]),
                           np.asarray(layer(X, IDS[:, :1], training=False)[0]))
    assert [v.path for v in layer.shared_variables()] == [
        layer.epnet.gate.kernel.path, layer.epnet.gate.bias.path]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="units"):
        PEPNetBackbone(2, [], [3])
    with pytest.raises(ValueError, match="cardinalities"):
        PEPNetBackbone(2, [4], [])
    with pytest.raises(ValueError, match="scale"):
        GateNU(3, scale=0.0)
