"""Synthetic two-task regression data with controlled task relatedness.

Ma et al., "Modeling Task Relationships in Multi-task Learning with
Multi-gate Mixture-of-Experts", KDD 2018, §3.2:

1. Draw two orthogonal unit vectors `u1, u2` in R^d.
2. Given a scale `c` and a correlation `p`, the task weights are
   `w1 = c·u1` and `w2 = c·(p·u1 + sqrt(1 − p²)·u2)`, so `cos(w1, w2) = p`.
3. Draw inputs `x ~ N(0, I_d)`.
4. `y_k = w_kᵀx + Σ_{i=1..m} sin(α_i·w_kᵀx + β_i) + ε_k`, `k = 1, 2`, with
   the same `α_i, β_i` for both tasks and `ε_k ~ N(0, 0.01)`.

`generate_tasks` draws any number of tasks the same way from a matrix of
weight cosines `C` (`W = c·U·Lᵀ` with `U` orthonormal columns and
`C = L·Lᵀ`, which for two tasks is the construction above, draw for draw).

`p` is the cosine of the two weight vectors, not the Pearson correlation
of the labels: the sine terms make the labels' correlation differ from it
(the paper says so too). `label_correlation` measures the latter, and the
registered dataset's description states both.

Defaults follow the paper: d = 100, c = 1, m = 10, α and β drawn once from
N(0, 1) (with `function_seed`, so every data seed shares one function), and
noise variance 0.01 (`noise_std = 0.1`).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from mtrec.data.registry import DatasetSplits, register_dataset

__all__ = ["TASKS", "generate", "generate_tasks", "label_correlation", "synthetic",
           "task_weights"]

logger = logging.getLogger(__name__)

TASKS = ("y1", "y2")


def _check(name, value, low=None, high=None, integer=False):
    kind = (int, np.integer) if integer else (int, float, np.integer, np.floating)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ValueError(f"synthetic {name} must be {'an integer' if integer else 'a number'}"
                         f", got {value!r}.")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"synthetic {name} must be {bounds}, got {value!r}.")


def task_weights(correlation, dim=100, scale=1.0, seed=0):
    """`(w1, w2)`: the two task weight vectors of §3.2 (steps 1–2).

    Args:
        correlation: float in [-1, 1]. `p`, the cosine of `w1` and `w2`.
        dim: int >= 2. Input dimension `d`.
        scale: float. `c`, the norm of both vectors.
        seed: int. Seed of `u1, u2`.
    """
    _check("correlation", correlation, -1.0, 1.0)
    _check("dim", dim, 2, integer=True)
    rng = np.random.default_rng(seed)
    # Orthonormal columns of a Gaussian matrix: two orthogonal unit vectors.
    q, _ = np.linalg.qr(rng.standard_normal((dim, 2)))
    u1, u2 = q[:, 0], q[:, 1]
    w1 = scale * u1
    w2 = scale * (correlation * u1 + np.sqrt(1.0 - correlation ** 2) * u2)
    return w1, w2


def generate(num_samples=10000, correlation=0.5, dim=100, scale=1.0, num_sines=10,
             noise_std=0.1, seed=0, function_seed=0):
    """Inputs and labels of the §3.2 generator.

    Args:
        num_samples: int. Rows.
        correlation: float in [-1, 1]. `p` (cosine of the task weights).
        dim: int. Input dimension `d` (default 100).
        scale: float. `c` (default 1).
        num_sines: int >= 0. `m`, sine terms per label (default 10).
        noise_std: float >= 0. Standard deviation of `ε` (default 0.1, i.e.
            the paper's variance 0.01).
        seed: int. Seed of `u1, u2`, of `x` and of the noise.
        function_seed: int. Seed of `α_i, β_i ~ N(0, 1)` (default 0).

    Returns:
        `(x, y)`: float64 arrays of shape `(num_samples, dim)` and
        `(num_samples, 2)`.
    """
    _check("num_samples", num_samples, 1, integer=True)
    _check("num_sines", num_sines, 0, integer=True)
    _check("noise_std", noise_std, 0.0)
    _check("scale", scale)
    w1, w2 = task_weights(correlation, dim=dim, scale=scale, seed=seed)
    return _inputs_and_labels(num_samples, (w1, w2), num_sines, noise_std, seed,
                              function_seed)


def generate_tasks(num_samples=10000, correlations=((1.0, 0.5), (0.5, 1.0)), dim=100,
                   scale=1.0, num_sines=10, noise_std=0.1, seed=0, function_seed=0):
    """Inputs and labels of `T` tasks whose weights have the given cosines.

    The §3.2 generator for more than two tasks: `u_1 .. u_T` are orthonormal
    (the QR of one Gaussian `(dim, T)` matrix), `W = c·U·Lᵀ` with `L` the
    Cholesky factor of `correlations`, so `cos(w_i, w_j) = correlations[i][j]`
    and `|w_i| = c`; the labels are drawn as in `generate`, one task after the
    other. With the 2 x 2 matrix `[[1, p], [p, 1]]` this returns `generate(...,
    correlation=p)`'s arrays (same seeds, same draws).

    Args:
        num_samples: int. Rows.
        correlations: `(T, T)` symmetric positive definite matrix with a unit
            diagonal (array or nested lists): the cosines of the task weights.
            E.g. two pairs, close within and unrelated across:
            `[[1, .9, 0, 0], [.9, 1, 0, 0], [0, 0, 1, .9], [0, 0, .9, 1]]`.
        dim, scale, num_sines, noise_std, seed, function_seed: see `generate`;
            `dim >= T`.

    Returns:
        `(x, y)`: float64 arrays `(num_samples, dim)` and `(num_samples, T)`.
    """
    _check("num_samples", num_samples, 1, integer=True)
    _check("num_sines", num_sines, 0, integer=True)
    _check("noise_std", noise_std, 0.0)
    _check("scale", scale)
    _check("dim", dim, 2, integer=True)
    c = np.asarray(correlations, dtype=float)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] < 1:
        raise ValueError(f"synthetic correlations must be a square (T, T) matrix, got "
                         f"shape {c.shape}.")
    num_tasks = c.shape[0]
    if num_tasks > dim:
        raise ValueError(f"synthetic generate_tasks needs dim >= the number of tasks "
                         f"({num_tasks}) for orthogonal directions, got dim={dim}.")
    if not np.allclose(c, c.T) or not np.allclose(np.diag(c), 1.0) or np.abs(c).max() > 1:
        raise ValueError(f"synthetic correlations must be symmetric with a unit diagonal "
                         f"and entries in [-1, 1] (cosines), got {c.tolist()}.")
    try:
        lower = np.linalg.cholesky(c)
    except np.linalg.LinAlgError:
        raise ValueError(
            f"synthetic correlations {c.tolist()} are not positive definite (no set of "
            f"task weights has these cosines, or two tasks are identical, cosine 1); "
            f"lower the cosines, or use generate(correlation=1.0) for identical "
            f"tasks.") from None
    rng = np.random.default_rng(seed)
    # As task_weights: orthonormal columns of a Gaussian matrix.
    q, _ = np.linalg.qr(rng.standard_normal((dim, num_tasks)))
    # (dim, T): column i is c * sum_k L[i, k] u_k
    weights = scale * q @ lower.T
    return _inputs_and_labels(num_samples, weights.T, num_sines, noise_std, seed,
                              function_seed)


def _inputs_and_labels(num_samples, weights, num_sines, noise_std, seed, function_seed):
    """`x ~ N(0, I)` and `y_k = w_kᵀx + Σ sin(α_i·w_kᵀx + β_i) + ε_k` for each
    weight vector `w_k` (§3.2 steps 3-4)."""
    params = np.random.default_rng(function_seed)
    alpha = params.standard_normal(num_sines)
    beta = params.standard_normal(num_sines)
    rng = np.random.default_rng([seed, 1])
    x = rng.standard_normal((num_samples, len(weights[0])))
    labels = []
    for w in weights:
        z = x @ w
        y = z + np.sin(np.outer(z, alpha) + beta).sum(axis=1)
        labels.append(y + noise_std * rng.standard_normal(num_samples))
    return x, np.stack(labels, axis=1)


def label_correlation(y):
    """Pearson correlation of the two label columns of `y` (or of a
    DataFrame's `y1`, `y2`)."""
    if isinstance(y, pd.DataFrame):
        y = y[list(TASKS)].to_numpy(float)
    y = np.asarray(y, float)
    return float(np.corrcoef(y[:, 0], y[:, 1])[0, 1])


@register_dataset("synthetic", tasks={task: "binary" for task in TASKS})
def synthetic(correlation=0.5, num_samples=12000, dim=100, scale=1.0, num_sines=10,
              noise_std=0.1, seed=0, function_seed=0, valid_fraction=0.1,
              test_fraction=0.1):
    """The MMoE paper's synthetic two-task regression data (§3.2).

    Columns `x0 .. x{d-1}` (float32) and the regression labels `y1`, `y2`;
    rows split at random into train / validation / test.

    Args:
        correlation: float in [-1, 1]. `p`, the cosine of the task weights.
        num_samples: int. Rows in all splits together.
        dim, scale, num_sines, noise_std, seed, function_seed: see `generate`.
        valid_fraction: float. Share of rows for validation (default 0.1).
        test_fraction: float. Share of rows for test (default 0.1).
    """
    _check("valid_fraction", valid_fraction, 0.0, 1.0)
    _check("test_fraction", test_fraction, 0.0, 1.0)
    if valid_fraction + test_fraction >= 1.0:
        raise ValueError(f"synthetic valid_fraction + test_fraction must be < 1, got "
                         f"{valid_fraction} + {test_fraction}.")
    x, y = generate(num_samples, correlation, dim=dim, scale=scale, num_sines=num_sines,
                    noise_std=noise_std, seed=seed, function_seed=function_seed)
    width = len(str(dim - 1))
    frame = pd.DataFrame(x.astype("float32"),
                         columns=[f"x{i:0{width}d}" for i in range(dim)])
    frame["y1"] = y[:, 0].astype("float32")
    frame["y2"] = y[:, 1].astype("float32")
    n_valid = int(round(num_samples * valid_fraction))
    n_test = int(round(num_samples * test_fraction))
    n_train = num_samples - n_valid - n_test
    if min(n_train, n_valid, n_test) < 1:
        raise ValueError(f"synthetic num_samples={num_samples} leaves an empty split "
                         f"({n_train}/{n_valid}/{n_test}); use more samples.")
    # Rows are i.i.d.; a contiguous split is a random split.
    train = frame.iloc[:n_train].reset_index(drop=True)
    valid = frame.iloc[n_train:n_train + n_valid].reset_index(drop=True)
    test = frame.iloc[n_train + n_valid:].reset_index(drop=True)
    measured = label_correlation(train)
    logger.info("synthetic: p = %.3f (cosine of the task weights), measured label "
                "Pearson correlation %.4f on %d training rows", correlation, measured,
                n_train)
    return DatasetSplits(
        train, valid, test, tasks={"y1": "regression", "y2": "regression"},
        group_column=None,
        description=(f"MMoE §3.2 synthetic regression, p = {correlation} (weight "
                     f"cosine), label Pearson correlation {measured:.4f}; d = {dim}, "
                     f"c = {scale}, m = {num_sines}, noise std {noise_std}, "
                     f"{num_samples} rows, seed {seed}"))
