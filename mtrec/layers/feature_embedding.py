"""Encoded features -> one dense vector per example (or one per modality)."""

import copy

import numpy as np
import keras
import keras_rs
from keras import ops

from mtrec.layers.feature_preprocessing import (
    CATEGORICAL_KEY, NUMERIC_KEY, multihot_key, numeric_code_key, text_key, vector_key)
from mtrec.layers.numeric_encoding import NumericEmbedding
from mtrec.layers.random_draws import uniform
from mtrec.layers.text_encoder import TextEncoder
from mtrec.schema import MODALITIES, Schema
from mtrec.schema.features import DEFAULT_EMBEDDINGS_INITIALIZER, check_initializer

TABULAR = "tabular"


def categorical_cardinality(schema, spec):
    """Number of ids a categorical feature can take (OOV buckets included)."""
    stats = schema.feature_stats(spec.name)
    if "num_hash_bins" in stats:
        return int(stats["num_hash_bins"])
    return len(stats["vocabulary"]) + int(stats.get("num_oov_buckets", 1))


def modality_groups(schema):
    """The modality tags of a schema's features, in group order: `"tabular"`
    first, then `mtrec.schema.MODALITIES` order, then any other tag
    alphabetically."""
    tags = {spec.modality for spec in schema.features}
    known = [m for m in MODALITIES if m in tags]
    return known + sorted(tags - set(known))


@keras.saving.register_keras_serializable(package="mtrec.layers")
class FeatureEmbedding(keras.layers.Layer):
    """Embeds every encoded feature and concatenates the results.

    - Categorical features of the same `embedding_dim` share one table,
      indexed with per-feature offsets: one gather per width, not one per
      feature. Each feature's rows are initialised with its spec's
      `embeddings_initializer`, or this layer's when the spec has none.
      When every feature of a table resolves to the same initializer, the
      table is initialised in one call (as a plain `Embedding`); otherwise
      block by block, each feature's initializer seeing its own rows'
      shape `(rows_f, dim)` (`RowBlockInitializer`). While training
      (`training=True` only), a feature's ids are replaced by its OOV id
      with the probability of its spec's `oov_rate` (so the OOV row,
      which serves values unseen in training, is trained too).
    - Numeric values and missing indicators pass through; a Numeric with
      another `encoding` than `"standardize"` is embedded instead by its
      own `NumericEmbedding` (its vector replaces the value; its missing
      indicator stays in the numeric block).
    - Multi-hot items are embedded and mean-pooled
      (`keras_rs.layers.EmbedReduce`, initialised with this layer's
      `embeddings_initializer`); an empty row pools to zeros.
    - Text tokens go through a `TextEncoder` per feature (the spec's
      `encoder` and `pooling`); a text without tokens gets the feature's
      learned missing embedding. (Text token tables keep `TextEncoder`'s
      own initializer.)
    - Vectors are L2-normalised when the spec says `normalize`, projected
      to `projection_dim` (linear), replaced by the feature's learned
      missing embedding when missing, and their missing indicator appended.

    Modality dropout: during training (`training=True` only), for every
    non-tabular modality tag of a Text or Vector feature and every example,
    with probability `modality_dropout` all the Text and Vector features
    with that tag are treated as missing (their missing embeddings, their
    missing indicators set), so the model learns to predict without that
    modality. Other kinds tagged with a modality have no missing embedding
    and are left as they are.

    Args:
        schema: adapted `Schema` (or its dict form).
        embeddings_regularizer: optional regularizer for the categorical
            tables.
        embeddings_initializer: Keras initializer name, config dict or
            object: the default of the categorical and multi-hot tables.
            Defaults to `"uniform"` (Keras' `Embedding` default).
        modality_dropout: float in `[0, 1]`. Defaults to `0.0`.
        seed: optional int seed of the modality dropout.

    Call arguments:
        inputs: encoded dict from `FeaturePreprocessing`.
        training: bool. Modality dropout applies only when True.
        grouped: bool. Return one tensor per modality group instead of
            their concatenation. (mtrec's call flags named `return_<x>` add
            `<x>` to the output, as `(output, x)`; this one changes the
            output's form, hence its name.)
        return_present: bool. Also return, per modality, which examples
            have it: `{modality: bool (batch,)}` for every tag in
            `modalities`. A modality of `droppable_modalities` (a
            non-tabular tag of Text or Vector features) is present in an
            example when at least one of its Text / Vector features is (a
            Text with a token, a Vector without its missing indicator) and
            modality dropout did not drop it this step; the others
            (`"tabular"` among them) are always present.

    Returns:
        tensor `(batch, output_dim)`; `output_dim` is an attribute. With
        `grouped`, a list of tensors `(batch, group_dims[i])`, one
        per tag in `modalities` (`"tabular"` first), each the features of
        that tag in the same order as in the concatenation (`ungroup`
        puts them back in the concatenation's column order). With
        `return_present`, `(output, present)`.
    """

    def __init__(self, schema, embeddings_regularizer=None, modality_dropout=0.0,
                 seed=None, embeddings_initializer=DEFAULT_EMBEDDINGS_INITIALIZER,
                 **kwargs):
        super().__init__(**kwargs)
        self.schema = schema if isinstance(schema, Schema) else Schema.from_dict(schema)
        self.embeddings_regularizer = embeddings_regularizer
        self.embeddings_initializer = check_initializer(
            embeddings_initializer, "FeatureEmbedding has embeddings_initializer")
        if (isinstance(modality_dropout, bool)
                or not isinstance(modality_dropout, (int, float, np.floating))
                or not 0.0 <= float(modality_dropout) <= 1.0):
            raise ValueError(
                f"modality_dropout must be a float in [0, 1], got "
                f"{modality_dropout!r}; 0 disables it.")
        self.modality_dropout = float(modality_dropout)
        self.seed = seed
        s = self.schema
        categorical = s.features_of("categorical")
        # Group categorical features by width: one table per width.
        self.categorical_groups = []
        for dim in sorted({spec.embedding_dim for spec in categorical}):
            positions = [i for i, spec in enumerate(categorical) if spec.embedding_dim == dim]
            sizes = [categorical_cardinality(s, categorical[i]) for i in positions]
            offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype("int64")
            table = keras.layers.Embedding(
                int(sum(sizes)), dim,
                embeddings_initializer=self._table_initializer(
                    [categorical[i] for i in positions], sizes),
                embeddings_regularizer=embeddings_regularizer,
                dtype=self.dtype_policy, name=f"categorical_{dim}")
            self.categorical_groups.append((np.array(positions, "int32"), offsets, table))
        self.multihot_embeddings = [
            keras_rs.layers.EmbedReduce(
                len(s.stats[spec.name]["vocabulary"]) + 2, spec.embedding_dim,
                embeddings_initializer=initializer_object(self.embeddings_initializer),
                dtype=self.dtype_policy, combiner="mean", name=f"multihot_{i}")
            for i, spec in enumerate(s.features_of("multihot"))]
        self.text_encoders = [
            TextEncoder(len(s.stats[spec.name]["vocabulary"]) + 2, spec.embedding_dim,
                        s.stats[spec.name]["max_length"], encoder=spec.encoder,
                        pooling=spec.pooling, num_layers=spec.encoder_layers,
                        dtype=self.dtype_policy, name=f"text_{i}")
            for i, spec in enumerate(s.features_of("text"))]
        self.vector_projections = [
            keras.layers.Dense(spec.projection_dim, dtype=self.dtype_policy, name=f"vector_{i}")
            for i, spec in enumerate(s.features_of("vector"))]
        numeric = s.features_of("numeric")
        # (column in the numeric block, its NumericEmbedding) of each
        # encoded Numeric
        self.numeric_embeddings = [
            (i, NumericEmbedding(spec.encoding, spec.embedding_dim,
                                 num_frequencies=spec.num_frequencies,
                                 frequency_sigma=spec.frequency_sigma,
                                 dtype=self.dtype_policy, name=f"numeric_{i}"))
            for i, spec in enumerate(numeric) if spec.encoding != "standardize"]
        # Columns of "mtrec:numeric" the numeric block keeps: the values of
        # the standardised features, then every missing indicator.
        encoded = {i for i, _ in self.numeric_embeddings}
        self._numeric_columns = np.array(
            [i for i in range(len(numeric)) if i not in encoded]
            + [len(numeric) + i for i in range(len(numeric))], "int32")
        # Categorical(oov_rate=...): the rates of each table's features, or
        # None for a table without any (no random draws at all).
        self._oov_rates = []
        for positions, _, _ in self.categorical_groups:
            rates = np.array([categorical[i].oov_rate for i in positions], "float32")
            self._oov_rates.append(rates if rates.any() else None)
        self.oov_seed_generator = (
            keras.random.SeedGenerator(None if seed is None else seed + 1)
            if any(r is not None for r in self._oov_rates) else None)
        # Column blocks of the concatenation, in order, with the modality of
        # every column: (kind, index, per-column modality array).
        self._blocks = self._column_blocks()
        modalities = np.concatenate([m for _, _, m in self._blocks]) if self._blocks \
            else np.array([], dtype=object)
        self.output_dim = int(len(modalities))
        if self.output_dim == 0:
            raise ValueError("The schema has no features; add at least one.")
        self.modalities = modality_groups(s)
        self.group_dims = [int((modalities == m).sum()) for m in self.modalities]
        # Column j of the groups' concatenation is column grouped_order[j]
        # of the ungrouped output; ungroup() gathers with the inverse (None
        # when the two orders agree).
        grouped_order = np.concatenate([np.flatnonzero(modalities == m)
                                        for m in self.modalities])
        self._ungroup_order = (None if (grouped_order == np.arange(self.output_dim)).all()
                               else np.argsort(grouped_order).astype("int32"))
        # Modalities that modality dropout can drop: non-tabular tags of
        # features with a learned missing embedding (Text and Vector).
        self.droppable_modalities = [
            m for m in self.modalities if m != TABULAR and any(
                spec.modality == m and spec.missing_embedding for spec in s.features)]
        self.seed_generator = (keras.random.SeedGenerator(seed)
                               if self.modality_dropout and self.droppable_modalities
                               else None)

    def _table_initializer(self, specs, sizes):
        """The initializer of one categorical table: `specs` (sharing it, in
        row order) own `sizes` rows each."""
        identifiers = [self.embeddings_initializer if spec.embeddings_initializer is None
                       else spec.embeddings_initializer for spec in specs]
        configs = [initializer_config(i) for i in identifiers]
        if all(c == configs[0] for c in configs):
            # One call over the whole table, as before per-feature initializers.
            return initializer_object(identifiers[0])
        return RowBlockInitializer(configs, sizes)

    def _column_blocks(self):
        s = self.schema
        blocks = []
        categorical = s.features_of("categorical")
        for g, (positions, _, table) in enumerate(self.categorical_groups):
            blocks.append(("categorical", g, np.repeat(
                np.array([categorical[i].modality for i in positions], dtype=object),
                table.output_dim)))
        numeric = s.features_of("numeric")
        if numeric:
            tags = np.array([spec.modality for spec in numeric], dtype=object)
            # the kept columns of (values, indicators)
            blocks.append(("numeric", 0, np.concatenate([tags, tags])[self._numeric_columns]))
        for j, (i, layer) in enumerate(self.numeric_embeddings):
            blocks.append(("numeric_embedding", j, np.array(
                [numeric[i].modality] * layer.embedding_dim, dtype=object)))
        for kind, width in (("multihot", lambda spec: spec.embedding_dim),
                            ("text", lambda spec: spec.embedding_dim),
                            ("vector", lambda spec: spec.projection_dim + 1)):
            for i, spec in enumerate(s.features_of(kind)):
                blocks.append((kind, i, np.array([spec.modality] * width(spec), dtype=object)))
        return blocks

    def build(self, input_shape=None):
        for _, _, table in self.categorical_groups:
            table.build((None, None))
        for layer, spec in zip(self.multihot_embeddings, self.schema.features_of("multihot")):
            layer.build((None, self.schema.stats[spec.name]["max_items"]))
        for layer, spec in zip(self.text_encoders, self.schema.features_of("text")):
            layer.build((None, self.schema.stats[spec.name]["max_length"]))
        self.vector_missing = []
        for i, (layer, spec) in enumerate(zip(self.vector_projections,
                                              self.schema.features_of("vector"))):
            layer.build((None, self.schema.stats[spec.name]["dim"]))
            self.vector_missing.append(self.add_weight(
                name=f"vector_{i}_missing", shape=(spec.projection_dim,),
                initializer="zeros"))
        numeric = self.schema.features_of("numeric")
        for i, layer in self.numeric_embeddings:
            spec = numeric[i]
            layer.build((None, len(spec.bin_edges(self.schema.stats[spec.name])) - 1)
                        if spec.binned else (None,))
        self.built = True

    def dropped_modalities(self, inputs, training=False):
        """`{modality: bool (batch,)}`: the examples whose modality is dropped
        this step; empty unless training with `modality_dropout > 0`."""
        if not training or self.seed_generator is None:
            return {}
        batch = ops.shape(next(iter(inputs.values())))[0]
        # (batch, droppable modalities)
        draws = uniform((batch, len(self.droppable_modalities)), self.seed_generator)
        return {m: draws[:, j] < self.modality_dropout
                for j, m in enumerate(self.droppable_modalities)}

    def call(self, inputs, training=False, grouped=False, return_present=False):
        dropped = self.dropped_modalities(inputs, training=training)
        parts = []
        # (modality, bool (batch,) missing) of every Text and Vector feature
        missing_of = []
        for (positions, offsets, table), rates in zip(self.categorical_groups,
                                                      self._oov_rates):
            # (batch, features_in_group) per-feature ids, 0 the OOV bucket
            ids = inputs[CATEGORICAL_KEY]
            if len(self.categorical_groups) > 1:  # one group: every column, in order
                ids = ops.take(ids, positions, axis=1)
            if training and rates is not None:
                draws = uniform(ops.shape(ids), self.oov_seed_generator)
                ids = ops.where(draws < rates, ops.zeros_like(ids), ids)
            # ids into the group's shared table
            ids = ids + offsets
            # (batch, features_in_group, dim) -> (batch, features_in_group * dim)
            vectors = table(ids)
            parts.append(ops.reshape(vectors, (-1, len(positions) * table.output_dim)))
        if NUMERIC_KEY in inputs:
            numeric = ops.cast(inputs[NUMERIC_KEY], "float32")
            if self.numeric_embeddings:  # no ops for schemas without encodings
                specs = self.schema.features_of("numeric")
                parts.append(ops.take(numeric, self._numeric_columns, axis=1))
                for i, layer in self.numeric_embeddings:
                    if specs[i].binned:
                        parts.append(layer(inputs[numeric_code_key(specs[i].name)]))
                    else:
                        parts.append(layer(numeric[:, i],
                                           missing=numeric[:, len(specs) + i] > 0.5))
            else:
                parts.append(numeric)
        for layer, spec in zip(self.multihot_embeddings, self.schema.features_of("multihot")):
            ids = inputs[multihot_key(spec.name)]
            parts.append(layer(ids, weights=ops.cast(ids > 0, "float32")))
        for layer, spec in zip(self.text_encoders, self.schema.features_of("text")):
            encoded, missing = layer(inputs[text_key(spec.name)],
                                     drop=dropped.get(spec.modality), return_missing=True,
                                     training=training)
            parts.append(encoded)
            missing_of.append((spec.modality, missing))
        for i, (layer, spec) in enumerate(zip(self.vector_projections,
                                              self.schema.features_of("vector"))):
            x = ops.cast(inputs[vector_key(spec.name)], "float32")
            dim = self.schema.stats[spec.name]["dim"]
            values, missing = x[:, :dim], x[:, dim] > 0.5
            if spec.normalize:
                norm = ops.sqrt(ops.maximum(ops.sum(ops.square(values), axis=1,
                                                    keepdims=True), 1e-12))
                values = values / norm
            if spec.modality in dropped:
                missing = ops.logical_or(missing, dropped[spec.modality])
            missing_of.append((spec.modality, missing))
            projected = ops.where(missing[:, None], self.vector_missing[i][None, :],
                                  layer(values))
            parts.append(ops.concatenate(
                [projected, ops.cast(missing, "float32")[:, None]], axis=1))
        if not grouped:
            out = parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=1)
        else:
            out = self._groups(parts)
        if not return_present:
            return out
        return out, self._presence(parts[0], missing_of)

    def _presence(self, reference, missing_of):
        """`{modality: bool (batch,)}`: a droppable modality is present
        unless every Text / Vector feature of it is missing (or dropped)."""
        # (batch,) all True, the presence of modalities without such features
        everywhere = ops.ones_like(reference[:, 0], dtype="bool")
        present = {}
        for m in self.modalities:
            flags = [ops.logical_not(missing) for tag, missing in missing_of if tag == m]
            if m not in self.droppable_modalities or not flags:
                present[m] = everywhere
                continue
            any_present = flags[0]
            for flag in flags[1:]:
                any_present = ops.logical_or(any_present, flag)
            present[m] = any_present
        return present

    def ungroup(self, groups):
        """The modality groups (`grouped=True`'s output, possibly edited)
        concatenated in the column order of the ungrouped output.

        Args:
            groups: list of tensors `(batch, group_dims[i])`, in
                `modalities` order.

        Returns:
            tensor `(batch, output_dim)`.
        """
        x = groups[0] if len(groups) == 1 else ops.concatenate(list(groups), axis=1)
        if self._ungroup_order is None:
            return x
        return ops.take(x, self._ungroup_order, axis=1)

    def embedding_tables(self):
        """The embedding tables: categorical, multi-hot and text token
        tables (not the learned missing embeddings, the numeric encodings or
        the vector projections), as variables."""
        return ([table.embeddings for _, _, table in self.categorical_groups]
                + [layer.embeddings for layer in self.multihot_embeddings]
                + [encoder.token_embedding.embeddings for encoder in self.text_encoders])

    def _groups(self, parts):
        """Per-block tensors -> one tensor per modality, order kept."""
        pieces = {m: [] for m in self.modalities}
        for part, (_, _, tags) in zip(parts, self._blocks):
            if (tags == tags[0]).all():
                pieces[tags[0]].append(part)
                continue
            for m in self.modalities:
                columns = np.flatnonzero(tags == m).astype("int32")
                if len(columns):
                    pieces[m].append(ops.take(part, columns, axis=1))
        return [p[0] if len(p) == 1 else ops.concatenate(p, axis=1)
                for p in (pieces[m] for m in self.modalities)]

    def compute_output_shape(self, input_shape=None):
        return (None, self.output_dim)

    def get_config(self):
        return {**super().get_config(), "schema": self.schema.to_dict(),
                "embeddings_regularizer": keras.regularizers.serialize(
                    self.embeddings_regularizer) if self.embeddings_regularizer else None,
                "modality_dropout": self.modality_dropout, "seed": self.seed,
                "embeddings_initializer": initializer_config(self.embeddings_initializer)}


@keras.saving.register_keras_serializable(package="mtrec.layers")
class RowBlockInitializer(keras.initializers.Initializer):
    """Initialises a table `(sum(rows), dim)` block of rows by block of rows,
    block `k` with its own initializer on shape `(rows[k], dim)`: the
    features sharing a `FeatureEmbedding` table each get their own
    initializer (so fan-based ones see the feature's rows, not the table's).

    Args:
        initializers: list of initializer names or config dicts, one per
            block.
        rows: list of int. Rows of each block, in table order.
    """

    def __init__(self, initializers, rows):
        if len(initializers) != len(rows):
            raise ValueError(f"RowBlockInitializer needs one initializer per block, got "
                             f"{len(initializers)} initializers for {len(rows)} blocks.")
        self.initializers = [initializer_config(i) for i in initializers]
        self.rows = [int(r) for r in rows]
        # One object per block, made once: unseeded random initializers draw
        # their own seed, so blocks differ and repeated calls agree.
        self._objects = [initializer_object(i) for i in self.initializers]

    def __call__(self, shape, dtype=None):
        if len(shape) != 2 or int(shape[0]) != sum(self.rows):
            raise ValueError(f"RowBlockInitializer covers {sum(self.rows)} rows "
                             f"({self.rows}), got a table of shape {tuple(shape)}.")
        return ops.concatenate([init((rows, int(shape[1])), dtype=dtype)
                                for init, rows in zip(self._objects, self.rows)], axis=0)

    def get_config(self):
        return {"initializers": copy.deepcopy(self.initializers), "rows": self.rows}


def initializer_config(value):
    """The JSON form of an initializer identifier: names and config dicts as
    given, initializer objects serialised."""
    if isinstance(value, (str, dict)):
        return copy.deepcopy(value)
    return keras.initializers.serialize(keras.initializers.get(value))


def initializer_object(value):
    """A new initializer from a name, config dict or object. An object is
    rebuilt from its config: an unseeded Keras initializer returns the same
    values on every call, so tables sharing one would start out equal."""
    return keras.initializers.get(initializer_config(value))
