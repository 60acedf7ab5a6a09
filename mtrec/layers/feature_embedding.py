"""Encoded features -> one dense vector per example."""

import numpy as np
import keras
import keras_rs
from keras import ops

from mtrec.layers.feature_preprocessing import (
    CATEGORICAL_KEY, NUMERIC_KEY, multihot_key, text_key, vector_key)
from mtrec.schema import Schema


def categorical_cardinality(schema, spec):
    """Number of ids a categorical feature can take (OOV bucket included)."""
    stats = schema.feature_stats(spec.name)
    if "num_hash_bins" in stats:
        return int(stats["num_hash_bins"])
    return len(stats["vocabulary"]) + 1


@keras.saving.register_keras_serializable(package="mtrec.layers")
class FeatureEmbedding(keras.layers.Layer):
    """Embeds every encoded feature and concatenates the results.

    - Categorical features of the same `embedding_dim` share one table,
      indexed with per-feature offsets: one gather per width, not one per
      feature.
    - Numeric values and missing indicators pass through.
    - Multi-hot items and text tokens are embedded and pooled
      (`keras_rs.layers.EmbedReduce`, mean over non-padding ids; text may
      use max pooling); an empty row pools to zeros.
    - Vectors are projected to `projection_dim` (linear), and their missing
      indicator appended.

    Args:
        schema: adapted `Schema` (or its dict form).
        embeddings_regularizer: optional regularizer for the tables.

    Call arguments:
        inputs: encoded dict from `FeaturePreprocessing`.

    Returns:
        tensor `(batch, output_dim)`; `output_dim` is an attribute.
    """

    def __init__(self, schema, embeddings_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        self.schema = schema if isinstance(schema, Schema) else Schema.from_dict(schema)
        self.embeddings_regularizer = embeddings_regularizer
        s = self.schema
        categorical = s.features_of("categorical")
        # Group categorical features by width: one table per width.
        self.categorical_groups = []
        for dim in sorted({spec.embedding_dim for spec in categorical}):
            positions = [i for i, spec in enumerate(categorical) if spec.embedding_dim == dim]
            sizes = [categorical_cardinality(s, categorical[i]) for i in positions]
            offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype("int64")
            table = keras.layers.Embedding(
                int(sum(sizes)), dim, embeddings_regularizer=embeddings_regularizer,
                name=f"categorical_{dim}")
            self.categorical_groups.append((np.array(positions, "int32"), offsets, table))
        self.multihot_embeddings = [
            keras_rs.layers.EmbedReduce(
                len(s.stats[spec.name]["vocabulary"]) + 2, spec.embedding_dim,
                combiner="mean", name=f"multihot_{i}")
            for i, spec in enumerate(s.features_of("multihot"))]
        self.text_embeddings = [
            keras_rs.layers.EmbedReduce(
                len(s.stats[spec.name]["vocabulary"]) + 2, spec.embedding_dim,
                combiner="mean", name=f"text_{i}")
            for i, spec in enumerate(s.features_of("text"))]
        self.vector_projections = [
            keras.layers.Dense(spec.projection_dim, name=f"vector_{i}")
            for i, spec in enumerate(s.features_of("vector"))]
        self.output_dim = (
            sum(len(pos) * table.output_dim for pos, _, table in self.categorical_groups)
            + 2 * len(s.features_of("numeric"))
            + sum(spec.embedding_dim for spec in s.features_of("multihot"))
            + sum(spec.embedding_dim for spec in s.features_of("text"))
            + sum(spec.projection_dim + 1 for spec in s.features_of("vector")))
        if self.output_dim == 0:
            raise ValueError("The schema has no features; add at least one.")

    def build(self, input_shape=None):
        for _, _, table in self.categorical_groups:
            table.build((None, None))
        for layer, spec in zip(self.multihot_embeddings, self.schema.features_of("multihot")):
            layer.build((None, self.schema.stats[spec.name]["max_items"]))
        for layer, spec in zip(self.text_embeddings, self.schema.features_of("text")):
            layer.build((None, self.schema.stats[spec.name]["max_length"]))
        for layer, spec in zip(self.vector_projections, self.schema.features_of("vector")):
            layer.build((None, self.schema.stats[spec.name]["dim"]))
        self.built = True

    def call(self, inputs):
        parts = []
        for positions, offsets, table in self.categorical_groups:
            # (batch, features_in_group) ids into the group's shared table
            ids = ops.take(inputs[CATEGORICAL_KEY], positions, axis=1) + offsets
            # (batch, features_in_group, dim) -> (batch, features_in_group * dim)
            vectors = table(ids)
            parts.append(ops.reshape(vectors, (-1, len(positions) * table.output_dim)))
        if NUMERIC_KEY in inputs:
            parts.append(ops.cast(inputs[NUMERIC_KEY], "float32"))
        for layer, spec in zip(self.multihot_embeddings, self.schema.features_of("multihot")):
            ids = inputs[multihot_key(spec.name)]
            parts.append(layer(ids, weights=ops.cast(ids > 0, "float32")))
        for layer, spec in zip(self.text_embeddings, self.schema.features_of("text")):
            ids = inputs[text_key(spec.name)]
            not_pad = ops.cast(ids > 0, "float32")
            if spec.pooling == "max":
                # (batch, length, dim); padding pushed far below any value
                # EmbedReduce is an Embedding: its plain lookup, unpooled
                vectors = keras.layers.Embedding.call(layer, ids)
                vectors = vectors + (1.0 - not_pad[..., None]) * -1e9
                pooled = ops.max(vectors, axis=1)
                parts.append(ops.where(ops.sum(not_pad, axis=1, keepdims=True) > 0, pooled, 0.0))
            else:
                parts.append(layer(ids, weights=not_pad))
        for layer, spec in zip(self.vector_projections, self.schema.features_of("vector")):
            x = inputs[vector_key(spec.name)]
            dim = self.schema.stats[spec.name]["dim"]
            parts.append(ops.concatenate([layer(x[:, :dim]), x[:, dim:]], axis=1))
        return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=1)

    def compute_output_shape(self, input_shape=None):
        return (None, self.output_dim)

    def get_config(self):
        return {**super().get_config(), "schema": self.schema.to_dict(),
                "embeddings_regularizer": keras.regularizers.serialize(
                    self.embeddings_regularizer) if self.embeddings_regularizer else None}
