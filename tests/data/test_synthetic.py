"""Tests for mtrec.data.synthetic: the MMoE paper's §3.2 generator."""

import numpy as np
import pytest

from mtrec.experiments.config import ConfigError, parse_config
from mtrec.data import synthetic
from mtrec.data.registry import DATASETS, load_dataset


@pytest.mark.parametrize("p", [0.0, 0.5, 0.9, 1.0, -0.3])
def test_task_weights_have_cosine_p_and_norm_c(p):
    w1, w2 = synthetic.task_weights(p, dim=100, scale=2.0, seed=3)
    assert np.linalg.norm(w1) == pytest.approx(2.0)
    assert np.linalg.norm(w2) == pytest.approx(2.0)
    assert w1 @ w2 / (np.linalg.norm(w1) * np.linalg.norm(w2)) == pytest.approx(p, abs=1e-12)


def test_u1_u2_are_orthogonal_unit_vectors():
    # p = 0: w2 = c * u2, so w1 and w2 are c * (u1, u2).
    w1, w2 = synthetic.task_weights(0.0, dim=50, scale=1.0, seed=7)
    assert w1 @ w2 == pytest.approx(0.0, abs=1e-12)
    assert np.linalg.norm(w1) == pytest.approx(1.0)
    assert np.linalg.norm(w2) == pytest.approx(1.0)


def test_labels_follow_the_formula_exactly():
    x, y = synthetic.generate(500, correlation=0.7, dim=20, scale=1.5, num_sines=4,
                              noise_std=0.0, seed=11, function_seed=5)
    assert x.shape == (500, 20) and y.shape == (500, 2)
    w1, w2 = synthetic.task_weights(0.7, dim=20, scale=1.5, seed=11)
    params = np.random.default_rng(5)
    alpha, beta = params.standard_normal(4), params.standard_normal(4)
    for k, w in enumerate((w1, w2)):
        z = x @ w
        expected = z + sum(np.sin(a * z + b) for a, b in zip(alpha, beta))
        np.testing.assert_allclose(y[:, k], expected, rtol=1e-10, atol=1e-10)


def test_noise_has_the_given_std():
    _, clean = synthetic.generate(20000, 0.5, noise_std=0.0, seed=1)
    _, noisy = synthetic.generate(20000, 0.5, noise_std=0.1, seed=1)
    assert (noisy - clean).std() == pytest.approx(0.1, rel=0.05)


def test_inputs_are_standard_normal_and_seeded():
    x, y = synthetic.generate(5000, 0.5, seed=2)
    assert abs(x.mean()) < 0.02 and x.std() == pytest.approx(1.0, rel=0.02)
    x2, y2 = synthetic.generate(5000, 0.5, seed=2)
    np.testing.assert_array_equal(y, y2)
    _, y3 = synthetic.generate(5000, 0.5, seed=3)
    assert not np.allclose(y, y3)


def test_label_correlation_is_measured_not_p():
    _, y_one = synthetic.generate(20000, 1.0, seed=0)
    _, y_half = synthetic.generate(20000, 0.5, seed=0)
    assert synthetic.label_correlation(y_one) > 0.98  # only the noise differs
    measured = synthetic.label_correlation(y_half)
    assert 0.2 < measured < 0.8
    assert measured != pytest.approx(0.5, abs=1e-3)


def test_registered_dataset_splits_and_tasks():
    assert "synthetic" in DATASETS
    data = load_dataset("synthetic", correlation=0.9, num_samples=1000, dim=8, seed=4)
    assert (len(data.train), len(data.valid), len(data.test)) == (800, 100, 100)
    assert data.tasks == {"y1": "regression", "y2": "regression"}
    assert list(data.train.columns) == [f"x{i}" for i in range(8)] + ["y1", "y2"]
    assert all(data.train[c].dtype == np.float32 for c in data.train.columns)
    assert "label Pearson correlation" in data.description
    assert "p = 0.9" in data.description


def test_config_accepts_synthetic_and_rejects_unknown_arguments():
    config = {"dataset": {"name": "synthetic",
                          "args": {"correlation": 0.5, "num_samples": 2000}},
              "model": {"name": "MMoE", "args": {"num_experts": 2, "expert_units": [4]}},
              "training": {"early_stopping": {"monitor": "y1", "patience": 1}}}
    assert parse_config(config).dataset.args["correlation"] == 0.5
    config["dataset"]["args"]["corelation"] = 0.5
    with pytest.raises(ConfigError, match="corelation"):
        parse_config(config)


@pytest.mark.parametrize("args, message", [
    ({"correlation": 1.5}, "correlation"),
    ({"num_samples": 0}, "num_samples"),
    ({"num_samples": 4}, "empty split"),
    ({"valid_fraction": 0.6, "test_fraction": 0.5}, "valid_fraction"),
    ({"noise_std": -1.0}, "noise_std"),
])
def test_invalid_arguments_are_reported(args, message):
    with pytest.raises(ValueError, match=message):
        load_dataset("synthetic", **args)


@pytest.mark.parametrize("p", [0.0, 0.5, -0.3])
def test_generate_tasks_with_two_tasks_is_generate(p):
    x, y = synthetic.generate(300, correlation=p, dim=12, num_sines=3, seed=4,
                              function_seed=2)
    x2, y2 = synthetic.generate_tasks(300, [[1.0, p], [p, 1.0]], dim=12, num_sines=3,
                                      seed=4, function_seed=2)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_allclose(y, y2, rtol=1e-12, atol=1e-12)


def test_generate_tasks_weights_have_the_given_cosines():
    c = np.array([[1.0, 0.9, 0.0, 0.1], [0.9, 1.0, 0.0, 0.0],
                  [0.0, 0.0, 1.0, 0.8], [0.1, 0.0, 0.8, 1.0]])
    x, y = synthetic.generate_tasks(4000, c, dim=30, scale=2.0, num_sines=0,
                                    noise_std=0.0, seed=1)
    assert x.shape == (4000, 30) and y.shape == (4000, 4)
    # Without sines or noise y = x W, so W is recovered by least squares.
    w, *_ = np.linalg.lstsq(x, y, rcond=None)
    norms = np.linalg.norm(w, axis=0)
    np.testing.assert_allclose(norms, 2.0, rtol=1e-9)
    np.testing.assert_allclose(w.T @ w / np.outer(norms, norms), c, atol=1e-9)


@pytest.mark.parametrize("c, message", [
    ([[1.0, 0.5, 0.2]], "square"),
    ([[1.0, 0.5], [0.4, 1.0]], "symmetric"),
    ([[1.0, 1.0], [1.0, 1.0]], "not positive definite"),
])
def test_generate_tasks_rejects_bad_correlations(c, message):
    with pytest.raises(ValueError, match=message):
        synthetic.generate_tasks(10, c, dim=5)
