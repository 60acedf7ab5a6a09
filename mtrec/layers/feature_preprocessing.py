"""Raw features -> ids and scaled floats, inside the graph."""

import numpy as np
import keras
import tensorflow as tf

from mtrec.layers.numeric_encoding import BIN_CODES
from mtrec.schema import ENCODED_PREFIX, MISSING_INT, TEXT_STANDARDIZE, Schema
from mtrec.utils.names import safe_name

# Keys of the encoded dict. Per-kind tensors are stacked so the embedding
# stage does one gather per embedding width instead of one per feature.
CATEGORICAL_KEY = ENCODED_PREFIX + "categorical"
NUMERIC_KEY = ENCODED_PREFIX + "numeric"


def numeric_code_key(name):
    return f"{ENCODED_PREFIX}numeric_code:{name}"


def multihot_key(name):
    return f"{ENCODED_PREFIX}multihot:{name}"


def text_key(name):
    return f"{ENCODED_PREFIX}text:{name}"


def vector_key(name):
    return f"{ENCODED_PREFIX}vector:{name}"


def is_encoded(inputs):
    """True when `inputs` is an encoded dict (output of FeaturePreprocessing)."""
    return isinstance(inputs, dict) and bool(inputs) and all(
        str(k).startswith(ENCODED_PREFIX) for k in inputs)


# Fingerprints of the fused lookup: `tf.strings.to_hash_bucket_fast(x, B)`
# is FarmHash Fingerprint64(x) mod B, stable across processes, platforms and
# TF versions; B = 2**63 - 1 keeps them non-negative int64.
_FINGERPRINT_BUCKETS = 2**63 - 1

# Stand-in token for a vocabulary that adapt found empty (lookup layers
# refuse an empty vocabulary); it never matches real data.
_EMPTY_VOCAB = ["[mtrec-empty-vocabulary]"]


@keras.saving.register_keras_serializable(package="mtrec.layers")
class FeaturePreprocessing(keras.layers.Layer):
    """Turns raw feature columns into the tensors the embedding stage reads.

    Runs in the exported model (so serving takes raw strings, NaN and
    text) and, for speed, once over the training table in
    `mtrec.data.from_pandas`; both use this same layer built from the same
    adapted schema, so training and serving cannot drift.

    Args:
        schema: adapted `Schema` (or its dict form).

    Call arguments:
        inputs: dict `{feature_name: tensor (batch,)}`; vectors
            `(batch, dim)`. Strings for string categoricals, multi-hot and
            text; float32 for numerics (NaN allowed); int64 for integer
            categoricals (-1 = missing).

    Returns:
        dict of encoded tensors:
        - `"mtrec:categorical"`: int64 `(batch, num_categorical)`, per
          feature ids in `[0, vocabulary_size)`, 0 the OOV bucket.
        - `"mtrec:numeric"`: float32 `(batch, 2 * num_numeric)`: the
          standardised values, then the missing indicators.
        - `"mtrec:numeric_code:<name>"`: float32 `(batch, bins)`, for a
          Numeric with a binned `encoding`: its one-hot or piecewise-linear
          code over the learned bin edges (all zero where missing).
        - `"mtrec:multihot:<name>"`: int64 `(batch, max_items)`, 0 padding,
          1 OOV.
        - `"mtrec:text:<name>"`: int64 `(batch, max_length)`, 0 padding,
          1 OOV.
        - `"mtrec:vector:<name>"`: float32 `(batch, dim + 1)`: the values
          (NaN rows zero-filled), then the missing indicator.
    """

    def __init__(self, schema, **kwargs):
        super().__init__(**kwargs)
        self.schema = schema if isinstance(schema, Schema) else Schema.from_dict(schema)
        for spec in self.schema.features:
            self.schema.feature_stats(spec.name)  # raises if not adapted
        s = self.schema
        self.categorical = s.features_of("categorical")
        self.numeric = s.features_of("numeric")
        self.multihot = s.features_of("multihot")
        self.text = s.features_of("text")
        self.vector = s.features_of("vector")

        # String categoricals with a vocabulary share ONE int64 lookup keyed
        # by each value's 63-bit fingerprint salted by its column: a handful
        # of ops per batch (one lookup per feature dominated batch-1 serving
        # latency), and no per-value string building (joining
        # "<position>/<token>" keys was the largest cost of a 1024-row
        # batch). The others (integer ids, hashing, hashed OOV buckets) keep
        # a layer each.
        self._fused_positions = [i for i, spec in enumerate(self.categorical)
                                 if spec.dtype == "string"
                                 and "num_hash_bins" not in s.stats[spec.name]
                                 and "num_oov_buckets" not in s.stats[spec.name]]
        self.fused_table, self._fused_salts = None, None
        if self._fused_positions:
            self.fused_table, self._fused_salts = _fingerprint_table(
                [self.categorical[i].name for i in self._fused_positions], s.stats)
        self.categorical_lookups = [
            None if i in self._fused_positions else self._categorical_lookup(spec)
            for i, spec in enumerate(self.categorical)]
        # Column order of the fused + per-feature ids -> schema order.
        others = [i for i in range(len(self.categorical)) if i not in self._fused_positions]
        self._categorical_order = np.argsort(self._fused_positions + others).astype("int32")
        self.multihot_lookups = [
            keras.layers.StringLookup(
                vocabulary=s.stats[spec.name]["vocabulary"] or _EMPTY_VOCAB,
                mask_token="", num_oov_indices=1, name=f"lookup_{safe_name(spec.name)}")
            for spec in self.multihot]
        self.text_vectorizers = [
            keras.layers.TextVectorization(
                standardize=TEXT_STANDARDIZE, split="whitespace",
                output_mode="int",
                output_sequence_length=s.stats[spec.name]["max_length"],
                vocabulary=s.stats[spec.name]["vocabulary"] or _EMPTY_VOCAB,
                name=f"tokenize_{safe_name(spec.name)}")
            for spec in self.text]
        if self.numeric:
            means = np.array([s.stats[f.name]["mean"] for f in self.numeric], "float32")
            stds = np.sqrt(np.array([s.stats[f.name]["variance"] for f in self.numeric],
                                    "float32"))
            self._numeric_mean = means
            self._numeric_std = np.where(stds > 1e-6, stds, 1.0).astype("float32")
            self._numeric_log1p = np.array([f.log1p for f in self.numeric])
            # Numeric(clip=True): raw values clipped to the training range
            # (+-inf bounds leave the others as they are).
            self._numeric_clip = any(f.clip for f in self.numeric)
            if self._numeric_clip:
                self._numeric_low, self._numeric_high = _clip_bounds(s, self.numeric)
            # Numeric(encoding=binned): (column, spec, edges (bins + 1,)) each
            self._numeric_binned = [(i, spec, spec.bin_edges(s.stats[spec.name]))
                                    for i, spec in enumerate(self.numeric) if spec.binned]

    def _categorical_lookup(self, spec):
        stats = self.schema.stats[spec.name]
        name = f"lookup_{safe_name(spec.name)}"
        if "num_hash_bins" in stats:
            return keras.layers.Hashing(num_bins=stats["num_hash_bins"], name=name)
        # Categorical(num_oov_buckets=N): ids outside the vocabulary hashed
        # into N buckets (ids 0..N-1), the vocabulary after them.
        buckets = int(stats.get("num_oov_buckets", 1))
        if spec.dtype == "int64":
            return keras.layers.IntegerLookup(
                vocabulary=np.array(stats["vocabulary"] or [MISSING_INT - 1], "int64"),
                num_oov_indices=buckets, mask_token=None, output_mode="int", name=name)
        return keras.layers.StringLookup(
            vocabulary=stats["vocabulary"] or _EMPTY_VOCAB, num_oov_indices=buckets,
            mask_token=None, output_mode="int", name=name)

    def build(self, input_shape=None):
        self.built = True

    @property
    def fused_feature_names(self):
        """The string categoricals read by the one fused lookup, in the
        column order `encode_columns`' `fused_strings` takes."""
        return [self.categorical[i].name for i in self._fused_positions]

    def call(self, inputs):
        missing = [n for n in self.schema.feature_names if n not in inputs]
        if missing:
            raise ValueError(
                f"Inputs lack feature(s) {missing}; the model takes every "
                f"schema feature: {self.schema.feature_names}. Send missing "
                f"values as '' (strings), NaN (numbers) or -1 (integer ids).")
        inputs = checked_raw_inputs(self.schema, inputs)
        fused = numeric = None
        if self._fused_positions:
            # (batch, fused) strings
            fused = tf.stack([_column(inputs[name], "string")
                              for name in self.fused_feature_names], axis=1)
        if self.numeric:
            # (batch, num_numeric)
            numeric = tf.stack([_column(inputs[f.name], "float32") for f in self.numeric],
                               axis=1)
        return self.encode_columns(lambda name: inputs[name], fused, numeric)

    def encode_columns(self, column, fused_strings=None, numeric=None):
        """The encoded dict (see the class) from raw columns already
        gathered: what `call` does after checking its inputs, and what the
        export's packed signature calls with slices of its few matrices
        (`mtrec.export.packed_inputs`), so that neither stacks per-feature
        string columns (copying each string; 1024 rows x 31 Census columns
        cost about as much as the fused lookup itself).

        Args:
            column: `column(feature) -> tensor (batch,)` (or `(batch, 1)`;
                `(batch, dim)` for vectors) of one raw feature. Asked only
                for the features not passed as a matrix below.
            fused_strings: string `(batch, len(fused_feature_names))`, the
                fused categoricals' columns in that order; required when
                there are any.
            numeric: float32 `(batch, num_numeric)`, the Numeric features in
                schema order (NaN = missing); required when there are any.

        Returns:
            dict of encoded tensors, as `call`.
        """
        out = {}
        if self.categorical:
            columns = []
            if self.fused_table is not None:
                # (batch, fused) strings -> salted fingerprints -> per-feature
                # ids (0 = OOV, the table's default), in one lookup
                keys = tf.bitwise.bitwise_xor(
                    tf.strings.to_hash_bucket_fast(fused_strings, _FINGERPRINT_BUCKETS),
                    self._fused_salts)
                columns.append(self.fused_table.lookup(keys))
            for spec, lookup in zip(self.categorical, self.categorical_lookups):
                if lookup is not None:
                    ids = lookup(_column(column(spec.name), spec.raw_dtype))
                    columns.append(tf.cast(ids, "int64")[:, None])
            ids = columns[0] if len(columns) == 1 else tf.concat(columns, axis=1)
            if len(columns) > 1:
                ids = tf.gather(ids, self._categorical_order, axis=1)
            # (batch, num_categorical)
            out[CATEGORICAL_KEY] = ids
        if self.numeric:
            # (batch, num_numeric)
            x = numeric
            is_missing = tf.math.logical_not(tf.math.is_finite(x))
            if self._numeric_clip:  # no ops for schemas without clip
                x = tf.clip_by_value(x, self._numeric_low, self._numeric_high)
            if self._numeric_log1p.any():  # no ops for schemas without log1p
                logged = tf.sign(x) * tf.math.log1p(tf.abs(x))
                x = logged if self._numeric_log1p.all() else tf.where(
                    self._numeric_log1p, logged, x)
            x = tf.where(is_missing, self._numeric_mean, x)
            scaled = (x - self._numeric_mean) / self._numeric_std
            out[NUMERIC_KEY] = tf.concat([scaled, tf.cast(is_missing, "float32")], axis=1)
            for i, spec, edges in self._numeric_binned:
                # (batch, bins) over the (clipped, log1p) value, as the edges
                # were learned; all zero where missing
                code = BIN_CODES[spec.encoding](x[:, i], edges)
                out[numeric_code_key(spec.name)] = tf.where(
                    is_missing[:, i:i + 1], tf.zeros_like(code), code)
        for spec, lookup in zip(self.multihot, self.multihot_lookups):
            max_items = self.schema.stats[spec.name]["max_items"]
            items = tf.strings.split(_column(column(spec.name), "string"), spec.delimiter)
            # (batch, max_items), "" pads and looks up as 0
            items = items.to_tensor(default_value="", shape=[None, max_items])
            out[multihot_key(spec.name)] = tf.cast(lookup(items), "int64")
        for spec, vectorize in zip(self.text, self.text_vectorizers):
            out[text_key(spec.name)] = tf.cast(
                vectorize(_column(column(spec.name), "string")), "int64")
        for spec in self.vector:
            dim = self.schema.stats[spec.name]["dim"]
            x = tf.cast(tf.convert_to_tensor(column(spec.name)), "float32")
            x = tf.reshape(x, [-1, dim])
            row_missing = tf.reduce_any(tf.math.logical_not(tf.math.is_finite(x)),
                                        axis=1, keepdims=True)
            x = tf.where(row_missing, tf.zeros_like(x), x)
            out[vector_key(spec.name)] = tf.concat(
                [x, tf.cast(row_missing, "float32")], axis=1)
        return out

    def get_config(self):
        return {**super().get_config(), "schema": self.schema.to_dict()}


def _clip_bounds(schema, numeric):
    """float32 `(low, high)` arrays `(num_numeric,)`: the training range of
    each `Numeric(clip=True)` feature, +-inf for the others."""
    low = np.full(len(numeric), -np.inf, "float32")
    high = np.full(len(numeric), np.inf, "float32")
    for i, spec in enumerate(numeric):
        if not spec.clip:
            continue
        stats = schema.stats[spec.name]
        if "min" not in stats:
            raise ValueError(
                f"Numeric '{spec.name}' has clip=True but its statistics have no "
                f"training range (adapted by an mtrec without ranges); adapt the "
                f"schema again, or set clip=False.")
        if stats["min"] is not None:   # None: no finite training value
            low[i], high[i] = stats["min"], stats["max"]
    return low, high


def _fingerprints(strings):
    """int64 fingerprints (`_FINGERPRINT_BUCKETS`) of a list of strings,
    computed eagerly (the layer may be built inside a graph)."""
    with tf.init_scope():
        return tf.strings.to_hash_bucket_fast(
            tf.constant(list(strings), tf.string), _FINGERPRINT_BUCKETS).numpy()


def _fingerprint_table(names, stats):
    """The fused lookup of string categoricals `names` (in column order).

    Column `j`'s token `vocabulary[k]` is keyed `fingerprint(token) XOR
    salt[j]` and maps to `k + 1`; any other key maps to 0 (OOV). Distinct
    keys are checked here, so every vocabulary token gets exactly its id; an
    unseen value is read as a token only if its 63-bit key equals one of the
    V vocabulary keys (probability about V / 2**63 per value).

    Returns:
        `(tf.lookup.StaticHashTable int64 -> int64, salts int64 (len(names),))`.
    """
    salts = _fingerprints(f"mtrec-fused-column-{j}" for j in range(len(names)))
    # (feature, token, key, id) of every vocabulary token
    entries = [(name, token, int(key), k + 1)
               for j, name in enumerate(names) if stats[name]["vocabulary"]
               for k, (token, key) in enumerate(zip(
                   stats[name]["vocabulary"],
                   np.bitwise_xor(_fingerprints(stats[name]["vocabulary"]), salts[j])))]
    keys = np.array([key for _, _, key, _ in entries], "int64")
    ids = np.array([i for _, _, _, i in entries], "int64")
    if len(np.unique(keys)) < len(keys):
        # Two tokens sharing a 63-bit key is astronomically unlikely; name
        # them rather than give one token the other's id.
        seen, clashes = {}, []
        for name, token, key, _ in entries:
            if key in seen:
                clashes.append((seen[key], (name, token)))
            seen.setdefault(key, (name, token))
        raise ValueError(
            f"The (feature, token) pairs {clashes} share a 63-bit lookup key; "
            f"declare one of these features with num_hash_bins, or rename one of "
            f"the tokens.")
    table = tf.lookup.StaticHashTable(
        tf.lookup.KeyValueTensorInitializer(keys, ids, key_dtype=tf.int64,
                                            value_dtype=tf.int64),
        default_value=0)
    return table, salts


def _column(x, dtype):
    """A `(batch,)` tensor of `dtype` from `(batch,)` or `(batch, 1)` input."""
    x = tf.convert_to_tensor(x)
    if x.shape.rank == 2:
        x = tf.squeeze(x, axis=1)
    if dtype == "string":
        if x.dtype != tf.string:
            raise ValueError(f"Expected a string tensor, got {x.dtype.name}.")
        return x
    return tf.cast(x, dtype)


def checked_raw_inputs(schema, inputs):
    """The schema's raw inputs as tensors, checked so that an error names the
    input rather than an op deep in the graph (TF's "input #1 (zero-based)
    was expected to be a float tensor", a ConcatOp shape error).

    Static checks (free: they run once, when the graph is traced, or per
    eager call): each input's dtype kind (text for string features, numbers
    for the others; numbers of another numeric dtype are cast, as
    documented in `FeaturePreprocessing`), its rank (`(batch,)` or
    `(batch, 1)`; `(batch, dim)` for vectors), and, when the sizes are
    known, that every input has the same number of rows. Batch sizes known
    only at run time (the serving signatures) are not compared in the
    graph: an assertion there cost about 0.05 ms per batch-1 request (4%,
    MMoE on Census, 1 core), so a mismatch there still fails in the op that
    first combines the inputs (TF's "Shapes of all inputs must match").

    Args:
        schema: the adapted `Schema`.
        inputs: dict `{feature: array-like}` holding every schema feature
            (other keys are ignored).

    Returns:
        dict `{feature: tf.Tensor}`.

    Raises:
        ValueError: naming the input, the dtype/shape found and expected.
    """
    tensors = {}
    for spec in schema.features:
        name, value = spec.name, inputs[spec.name]
        try:
            x = tf.convert_to_tensor(value)
        except (TypeError, ValueError) as error:
            raise ValueError(
                f"Input '{name}' cannot be read as a tensor ({error}); pass an array "
                f"of {_EXPECTED[spec.raw_dtype]} (Schema.raw_features converts a "
                f"DataFrame).") from None
        is_text = x.dtype == tf.string
        if is_text != (spec.raw_dtype == "string") or not (
                is_text or x.dtype.is_floating or x.dtype.is_integer or x.dtype.is_bool):
            raise ValueError(
                f"Input '{name}' is {x.dtype.name} but feature '{name}' "
                f"({type(spec).__name__}) takes {_EXPECTED[spec.raw_dtype]}; convert "
                f"it (Schema.raw_features does) or check that it is the column the "
                f"model was trained on.")
        row = spec.raw_shape(schema.stats.get(name))
        rank = x.shape.rank
        fits = (rank == 2 and x.shape[1] in (None, *row)) if row else (
            rank == 1 or (rank == 2 and x.shape[1] in (None, 1)))
        if rank is not None and not fits:
            expected = f"(batch, {row[0]})" if row else "(batch,) or (batch, 1)"
            raise ValueError(
                f"Input '{name}' has shape {tuple(x.shape)} but feature '{name}' "
                f"takes {expected}: one {'vector' if row else 'value'} per row.")
        tensors[name] = x
    sizes = {name: x.shape[0] for name, x in tensors.items()}
    known = {s for s in sizes.values() if s is not None}
    if len(known) > 1:
        raise ValueError(batch_size_message(sizes))
    return tensors


def batch_size_message(sizes):
    """The error for inputs of different numbers of rows, `sizes` `{input:
    rows}`, listing each (None: unknown)."""
    listed = ", ".join(f"'{name}': {size}" for name, size in sizes.items())
    return (f"Inputs have different numbers of rows ({listed}); every input needs "
            f"one value per row, all of the same batch.")


# What each raw dtype takes, as error messages say it.
_EXPECTED = {"string": "strings (str or bytes)", "float32": "numbers (float32; NaN = missing)",
             "int64": "integer ids (int64; -1 = missing)"}


def dummy_raw_batch(schema, rows=2):
    """A tiny raw batch (all values missing) used to build models eagerly.

    Returns:
        dict `{feature: np.ndarray (rows, *raw_shape)}` of each spec's
        missing value in its raw dtype.
    """
    return {spec.name: spec.dummy(schema.stats.get(spec.name), rows=rows)
            for spec in schema.features}
