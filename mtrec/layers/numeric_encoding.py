"""Numeric values -> vectors: quantile bins, piecewise-linear and periodic
encodings (`Numeric(encoding=...)`).

Reference: Gorishniy, Rubachev and Babenko, NeurIPS 2022, "On Embeddings
for Numerical Features in Tabular Deep Learning".

The bin codes depend only on the bin edges learned in `Schema.adapt`, so
`FeaturePreprocessing` computes them (in tf.data while training, in the
exported graph while serving); the trainable part, the per-feature
projection (and the periodic frequencies), is `NumericEmbedding`, run by
`FeatureEmbedding`.
"""

import math

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from mtrec.schema.features import NUMERIC_ENCODINGS

__all__ = ["BIN_CODES", "NumericEmbedding", "piecewise_linear_code", "quantile_bin_code"]


def quantile_bin_code(x, edges):
    """One-hot code of each value's bin.

    Bin `t` holds `edges[t] <= x < edges[t + 1]`; values below the first
    edge fall in the first bin, values at or above the last in the last.

    Args:
        x: float32 tensor `(batch,)`, finite.
        edges: float32 array `(bins + 1,)`, strictly increasing.

    Returns:
        float32 tensor `(batch, bins)`.
    """
    edges = np.asarray(edges, "float32")
    bins = len(edges) - 1
    # (batch,): how many inner edges lie at or below x = the bin's index
    index = tf.reduce_sum(tf.cast(x[:, None] >= edges[1:-1], "int32"), axis=1)
    return tf.one_hot(index, bins, dtype="float32")


def piecewise_linear_code(x, edges):
    """Piecewise-linear code (PLE): per bin `t` with edges `[l, r)`, 1 if
    `x >= r`, 0 if `x < l`, else `(x - l) / (r - l)`.

    Args:
        x: float32 tensor `(batch,)`, finite.
        edges: float32 array `(bins + 1,)`, strictly increasing.

    Returns:
        float32 tensor `(batch, bins)` in [0, 1].
    """
    edges = np.asarray(edges, "float32")
    left, width = edges[:-1], np.diff(edges)
    # (batch, bins); x == r gives (r - l) / (r - l) == 1 exactly in float32
    return tf.clip_by_value((x[:, None] - left) / width, 0.0, 1.0)


#: The code of each binned encoding, `(x, edges) -> (batch, bins)`.
BIN_CODES = {"quantile_bins": quantile_bin_code, "piecewise_linear": piecewise_linear_code}


@keras.saving.register_keras_serializable(package="mtrec.layers")
class NumericEmbedding(keras.layers.Layer):
    """One encoded Numeric feature -> a vector of `embedding_dim`.

    - `"quantile_bins"`, `"piecewise_linear"`: the bin code (computed by
      `FeaturePreprocessing`) through a Linear layer (the paper's "-L"
      embeddings: a learned embedding per bin, interpolated between
      neighbouring bins for PLE).
    - `"periodic"`: `concat(sin(2 pi c x), cos(2 pi c x))` of the
      standardised value with `num_frequencies` trainable frequencies `c`
      (initialised from a normal of standard deviation `frequency_sigma`,
      truncated at 2 sigma), then Linear + ReLU (the paper's "PLR").

    A missing value has the all-zero code (the binned codes arrive so;
    the periodic one is zeroed here), so its vector is the projection's
    bias (through ReLU for periodic): in effect a learned "missing" vector.

    Args:
        encoding: str. `"quantile_bins"`, `"piecewise_linear"` or
            `"periodic"`.
        embedding_dim: int. Width of the output.
        num_frequencies: int. Periodic only. Defaults to `16`.
        frequency_sigma: float. Periodic only. Defaults to `0.1`.
        seed: optional int seed of the frequencies' initializer.

    Call arguments:
        inputs: binned: float32 `(batch, bins)` code; periodic: float32
            `(batch,)` standardised values.
        missing: bool `(batch,)` or None. Periodic only (binned codes are
            already zero where missing).

    Returns:
        float32 `(batch, embedding_dim)`.
    """

    def __init__(self, encoding, embedding_dim, num_frequencies=16, frequency_sigma=0.1,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        if encoding not in NUMERIC_ENCODINGS or encoding == "standardize":
            raise ValueError(
                f"NumericEmbedding has encoding {encoding!r}; expected one of "
                f"{[e for e in NUMERIC_ENCODINGS if e != 'standardize']} ('standardize' "
                f"has no embedding: the value passes through).")
        if not float(frequency_sigma) > 0:
            raise ValueError(f"frequency_sigma must be > 0, got {frequency_sigma!r}.")
        self.encoding = encoding
        self.embedding_dim = int(embedding_dim)
        self.num_frequencies = int(num_frequencies)
        self.frequency_sigma = float(frequency_sigma)
        self.seed = seed
        self.periodic = encoding == "periodic"
        self.projection = keras.layers.Dense(
            self.embedding_dim, activation="relu" if self.periodic else None,
            dtype=self.dtype_policy, name="projection")

    def build(self, input_shape):
        if self.periodic:
            self.frequencies = self.add_weight(
                name="frequencies", shape=(self.num_frequencies,),
                initializer=keras.initializers.TruncatedNormal(
                    stddev=self.frequency_sigma, seed=self.seed))
            self.projection.build((None, 2 * self.num_frequencies))
        else:
            self.projection.build((None, int(input_shape[-1])))
        self.built = True

    def call(self, inputs, missing=None):
        if not self.periodic:
            return self.projection(inputs)
        # (batch, num_frequencies)
        angles = (2 * math.pi) * ops.expand_dims(ops.cast(inputs, self.compute_dtype), -1) \
            * ops.cast(self.frequencies, self.compute_dtype)
        # (batch, 2 * num_frequencies)
        code = ops.concatenate([ops.sin(angles), ops.cos(angles)], axis=-1)
        if missing is not None:
            code = ops.where(ops.expand_dims(missing, -1), ops.zeros_like(code), code)
        return self.projection(code)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.embedding_dim)

    def get_config(self):
        return {**super().get_config(), "encoding": self.encoding,
                "embedding_dim": self.embedding_dim,
                "num_frequencies": self.num_frequencies,
                "frequency_sigma": self.frequency_sigma, "seed": self.seed}
