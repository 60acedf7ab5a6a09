"""mtrec.evaluation.gates: expert usage, entropy, collapse warnings, heatmap."""

import math
import warnings

import numpy as np
import pytest

import mtrec
from mtrec.evaluation import gate_diagnostics as diagnostics

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data(table, schema):
    return mtrec.data.from_pandas(table, schema, batch_size=64)


@pytest.fixture(scope="module")
def ple(schema):
    return mtrec.models.PLE(schema, num_levels=2, num_specific_experts=1,
                            num_shared_experts=1, expert_units=[4], tower_units=[4])


@pytest.fixture(scope="module")
def uniform_mmoe(schema):
    """An MMoE whose gates ignore their input (kernels zero): every gate
    mixes its experts uniformly until a test sets a bias."""
    model = mtrec.models.MMoE(schema, num_experts=2, expert_units=[4], tower_units=[4])
    model.backbone.gates.kernel.assign(np.zeros(model.backbone.gates.kernel.shape))
    return model


def test_mmoe_usage_index_and_rows(trained_mmoe, data):
    with warnings.catch_warnings():
        warnings.simplefilter("error", diagnostics.GateCollapseWarning)
        report = diagnostics.gates(trained_mmoe, data)
    assert report.usage.index.names == ["level", "gate"]
    assert list(report.usage.index) == [("experts", "click"), ("experts", "spend"),
                                        ("experts", "grade")]
    assert list(report.usage.columns) == ["expert_0", "expert_1"]
    np.testing.assert_allclose(report.usage.sum(axis=1), 1.0, rtol=1e-5)
    assert report.num_examples == 300
    assert report.collapsed == []
    assert list(report.entropy["num_experts"]) == [2, 2, 2]


def test_ple_usage_levels_gates_and_masks(ple, data):
    report = diagnostics.gates(ple, data)
    experts = ["click_0", "spend_0", "grade_0", "shared_0"]
    assert list(report.usage.columns) == experts
    assert list(report.usage.index) == [
        ("level_0", "click"), ("level_0", "spend"), ("level_0", "grade"),
        ("level_0", "shared"),
        ("level_1", "click"), ("level_1", "spend"), ("level_1", "grade")]
    np.testing.assert_allclose(report.usage.sum(axis=1), 1.0, rtol=1e-5)
    # a task gate sees its own expert and the shared one; the shared gate all
    assert report.usage.loc[("level_1", "click"), "spend_0"] == 0.0
    assert report.visible.loc[("level_0", "click")].tolist() == [True, False, False, True]
    assert report.visible.loc[("level_0", "shared")].all()
    assert report.entropy["num_experts"].tolist() == [2, 2, 2, 4, 2, 2, 2]


def test_entropy_bounds(trained_mmoe, ple, data):
    for model in (trained_mmoe, ple):
        report = diagnostics.gates(model, data)
        entropy = report.entropy
        assert entropy.index.equals(report.usage.index)
        assert (entropy["normalized_entropy"] >= 0).all()
        assert (entropy["normalized_entropy"] <= 1 + 1e-6).all()
        assert (entropy["entropy"] <= np.log(entropy["num_experts"]) + 1e-6).all()


def test_uniform_gates_have_entropy_one(uniform_mmoe, data):
    report = diagnostics.gates(uniform_mmoe, data, max_batches=2)
    assert report.num_examples == 128
    np.testing.assert_allclose(report.usage.to_numpy(), 0.5, rtol=1e-6)
    np.testing.assert_allclose(report.entropy["entropy"], math.log(2), rtol=1e-6)
    np.testing.assert_allclose(report.entropy["normalized_entropy"], 1.0, rtol=1e-6)


def test_collapse_warning(uniform_mmoe, data):
    gates_layer = uniform_mmoe.backbone.gates
    bias = np.zeros(gates_layer.bias.shape, "float32")  # (gates, experts)
    bias[0, 1] = 50.0  # the click gate routes everything to expert_1
    gates_layer.bias.assign(bias)
    try:
        with pytest.warns(diagnostics.GateCollapseWarning,
                          match="Gate 'click' of level 'experts' has collapsed"):
            report = diagnostics.gates(uniform_mmoe, data)
    finally:
        gates_layer.bias.assign(np.zeros(gates_layer.bias.shape, "float32"))
    assert report.collapsed == [("experts", "click", "expert_1")]
    assert report.usage.loc[("experts", "click"), "expert_1"] == pytest.approx(1.0)
    assert report.entropy.loc[("experts", "click"), "normalized_entropy"] < 1e-6
    # the threshold is respected: 1.0 can never be exceeded
    with warnings.catch_warnings():
        warnings.simplefilter("error", diagnostics.GateCollapseWarning)
        assert diagnostics.gates(uniform_mmoe, data, collapse_threshold=1.0).collapsed == []


def test_plot_writes_a_png(ple, table, tmp_path):
    path = tmp_path / "gates.png"
    report = diagnostics.gates(ple, table, plot_path=path)  # DataFrame input too
    assert report.num_examples == len(table)
    content = path.read_bytes()
    assert content[:8] == PNG_MAGIC and len(content) > 1000
    again = report.plot(tmp_path / "again.png")
    assert again.read_bytes()[:8] == PNG_MAGIC


def test_models_without_gates_raise(schema, data):
    model = mtrec.models.SharedBottom(schema, bottom_units=[4], tower_units=[4])
    with pytest.raises(ValueError, match="has no gates"):
        diagnostics.gates(model, data)


def test_argument_errors(trained_mmoe, data):
    with pytest.raises(ValueError, match="max_batches"):
        diagnostics.gates(trained_mmoe, data, max_batches=0)
    with pytest.raises(ValueError, match="collapse_threshold"):
        diagnostics.gates(trained_mmoe, data, collapse_threshold=1.5)
    with pytest.raises(ValueError, match="empty"):
        diagnostics.gates(trained_mmoe, data.take(0))
