"""Feature specs: what each input column is, and what its kind does.

A spec is a small frozen dataclass without weights (what `adapt` learns
lives in `Schema.stats`). Everything that differs between feature kinds
outside the Keras graph is a method or class attribute of its spec:

- `raw_dtype`, `raw_shape(stats)`, `missing_value`: the raw input as
  served and fed to the model (`"string"`, `"float32"` or `"int64"`), and
  the value that means "missing" in it;
- `serving_spec`, `parsing_spec`, `dummy`: the SavedModel signature, the
  `tf.Example` parsing spec and the all-missing batch that builds models,
  derived from the three above;
- `csv_dtype()`: the dtype `pandas.read_csv` reads the column with;
- `validate()`, `check(series)`, `adapt(series)`, `to_array(series, stats)`:
  the spec's own arguments, a column's dtype, learning the statistics, and
  column -> numpy array;
- `to_dict()`: the spec as `Schema.to_dict` writes it;
- `leakage_view`, `missing_embedding`: how `check_leakage` compares the
  column with a label, and whether the embedding stage has a learned
  "missing" embedding for it (modality dropout).

So a new feature kind is one class here (registered in `FEATURE_KINDS`)
plus its graph code in `FeaturePreprocessing` / `FeatureEmbedding`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import random
from collections import Counter
from typing import ClassVar

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from mtrec.schema.conversion import (
    FLOAT32_MAX, first_non_numeric, is_list_column, is_missing, is_stringish,
    string_values, to_float32)
from mtrec.schema.tokenizer import text_tokens
from mtrec.schema.validation import check_integer_column
from mtrec.utils.messages import plain
from mtrec.utils.suggestions import closest

__all__ = ["BINNED_ENCODINGS", "DEFAULT_EMBEDDINGS_INITIALIZER", "FEATURE_KINDS", "MISSING_INT",
           "MODALITIES", "NUMERIC_ENCODINGS", "TEXT_ENCODERS", "TEXT_POOLINGS", "Categorical",
           "FeatureSpec", "MultiHot", "Numeric", "Text", "Vector", "check_initializer",
           "not_adapted_error", "quantile_bin_edges"]

MODALITIES = ("tabular", "text", "image", "audio", "other")
# Integer categoricals use this for missing values (pandas NA, None).
MISSING_INT = -1
TEXT_ENCODERS = ("bag", "cnn", "transformer")
TEXT_POOLINGS = ("mean", "max", "attention")
#: How a Numeric reaches the model (see `Numeric`): one scaled value, or a
#: vector embedding of it (Gorishniy et al., NeurIPS 2022).
NUMERIC_ENCODINGS = ("standardize", "quantile_bins", "piecewise_linear", "periodic")
#: The encodings whose code is built from quantile bin edges learned in adapt.
BINNED_ENCODINGS = ("quantile_bins", "piecewise_linear")

# Size arguments that must be positive integers (None: learned in adapt).
_POSITIVE = ("embedding_dim", "max_tokens", "min_frequency", "num_hash_bins", "num_oov_buckets",
             "max_items", "max_length", "dim", "projection_dim", "encoder_layers",
             "num_bins", "num_frequencies")
_LEARNED = ("max_tokens", "max_items", "max_length", "dim")
# Fields added after schemas were first saved: `to_dict` writes them only
# when they differ from their default, so the dicts (and the .keras files and
# exports holding them) of schemas that do not use them stay byte-identical.
# A kind adds its own such fields in its `written_when_set`.
_WRITTEN_WHEN_SET = ("embeddings_initializer", "clip")

#: The initializer of embedding tables unless told otherwise: Keras'
#: `Embedding` default (uniform in [-0.05, 0.05]), which mtrec has always used.
DEFAULT_EMBEDDINGS_INITIALIZER = "uniform"
_INITIALIZER_EXAMPLES = (
    "a Keras initializer name such as 'uniform', 'glorot_uniform', 'truncated_normal' "
    "or 'zeros', or its config such as {'class_name': 'RandomNormal', 'config': "
    "{'stddev': 0.01}}")


def check_initializer(value, where):
    """`value` if Keras reads it as an initializer, else a ValueError.

    Args:
        value: an initializer name (`"glorot_uniform"`), its config dict
            (`{"class_name": ..., "config": {...}}`) or a
            `keras.initializers.Initializer`.
        where: str. What holds the value, for the message (e.g.
            `"Categorical 'color' has embeddings_initializer"`).

    Returns:
        `value`, unchanged.
    """
    if not isinstance(value, (str, dict, keras.initializers.Initializer)):
        raise ValueError(f"{where} {value!r} ({type(value).__name__}); expected "
                         f"{_INITIALIZER_EXAMPLES}.")
    # An unseeded random initializer draws its seed from Python's RNG when
    # made: checking must not draw, or seeded runs would get other weights.
    rng_state = random.getstate()
    try:
        # deserialising may consume the dict it reads
        initializer = keras.initializers.get(copy.deepcopy(value))
    except (ValueError, TypeError) as error:
        reason = str(error).splitlines()[0][:200]
        raise ValueError(f"{where} {value!r}, which Keras does not read as an initializer "
                         f"({reason}); expected {_INITIALIZER_EXAMPLES}.") from None
    finally:
        random.setstate(rng_state)
    if not isinstance(initializer, keras.initializers.Initializer):
        raise ValueError(f"{where} {value!r}, which Keras reads as a "
                         f"{type(initializer).__name__}, not an initializer; expected "
                         f"{_INITIALIZER_EXAMPLES}.")
    return value


def not_adapted_error(name):
    """The error for a feature whose statistics `adapt` has not learned yet."""
    return ValueError(
        f"Feature '{name}' has no learned statistics: call "
        f"schema.adapt(train_df) before building a model or dataset.")


def _top_tokens(counter, max_tokens, min_frequency=1):
    # Most frequent first; ties broken by token so adapt is deterministic.
    items = sorted(((c, t) for t, c in counter.items() if c >= min_frequency),
                   key=lambda ct: (-ct[0], ct[1]))
    tokens = [t for _, t in items]
    return tokens if max_tokens is None else tokens[:max_tokens]


class FeatureSpec:
    """Base of the feature specs (not itself a spec).

    Subclasses are frozen dataclasses whose fields are their arguments;
    they set `kind` and override what differs for their kind. The defaults
    here describe a string column (one value per row, `""` when missing).
    """

    kind: ClassVar[str]
    #: dtype of the raw input (served, and fed to `FeaturePreprocessing`).
    raw_dtype: ClassVar[str] = "string"
    #: the raw value that means "missing" (an absent tf.Example feature too).
    missing_value: ClassVar = ""
    #: how `check_leakage` compares the column with a label: `"number"`
    #: (ranks the values), `"category"` (positive rate per distinct value)
    #: or None (not checked).
    leakage_view: ClassVar[str | None] = "category"
    #: whether the embedding stage learns a "missing" embedding for it
    #: (the features modality dropout can drop).
    missing_embedding: ClassVar[bool] = False
    #: whether one cell holds a list of numbers (a Vector), which CSV cannot
    #: type; file scoring parses such cells itself.
    list_valued: ClassVar[bool] = False
    #: this kind's fields that `to_dict` writes only when not their default
    #: (besides `_WRITTEN_WHEN_SET`): fields added after schemas of this
    #: kind were first saved.
    written_when_set: ClassVar[tuple] = ()
    #: whether the feature is the schema's scenario (a field of `Categorical`
    #: only; the other kinds cannot be one).
    scenario: ClassVar[bool] = False

    # -- the raw input -------------------------------------------------------
    def raw_shape(self, stats):
        """Shape of one row of the raw input: `()`, or `(dim,)` for vectors."""
        return ()

    def serving_spec(self, stats, name=None):
        """`tf.TensorSpec` `(None, *raw_shape)` of the served input."""
        return tf.TensorSpec([None, *self.raw_shape(stats)], tf.as_dtype(self.raw_dtype),
                             name=name or self.name)

    def parsing_spec(self, stats):
        """`tf.io.FixedLenFeature` whose default (an absent feature) is missing."""
        shape = list(self.raw_shape(stats))
        default = ([self.missing_value] * int(np.prod(shape)) if shape
                   else self.missing_value)
        return tf.io.FixedLenFeature(shape, tf.as_dtype(self.raw_dtype),
                                     default_value=default)

    def dummy(self, stats, rows=2):
        """A raw array `(rows, *raw_shape)` of missing values."""
        dtype = object if self.raw_dtype == "string" else self.raw_dtype
        return np.full((rows, *self.raw_shape(stats)), self.missing_value, dtype=dtype)

    def csv_dtype(self):
        """dtype `pandas.read_csv` reads the column with (strings as `str`,
        so ids such as `007` keep their zeros)."""
        return str

    # -- checks --------------------------------------------------------------
    def validate(self):
        """Check the spec's own arguments; raise ValueError naming the field."""
        for field in _POSITIVE:
            value = getattr(self, field, None)
            if value is None:
                continue
            if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                    or value < 1):
                raise ValueError(
                    f"{type(self).__name__} '{self.name}' has {field}={value!r}; "
                    f"expected a positive integer"
                    f"{' or None (learned in adapt)' if field in _LEARNED else ''}.")

    def check(self, series):
        """Check that a pandas column fits this kind; raise ValueError if not."""

    def to_dict(self):
        """`{"kind": ..., field: value, ...}`: what `Schema.to_dict` writes
        (`_WRITTEN_WHEN_SET` and `written_when_set` fields only when not
        their default)."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        optional = _WRITTEN_WHEN_SET + self.written_when_set
        fields = {k: v for k, v in dataclasses.asdict(self).items()
                  if not (k in optional and v == defaults.get(k))}
        return {"kind": self.kind, **fields}

    # -- learned state and conversion ----------------------------------------
    def adapt(self, series):
        """The statistics learned from a training column (a JSON-able dict)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement adapt().")

    def to_array(self, series, stats):
        """A pandas column as the raw numpy array the model takes."""
        return string_values(series)


@dataclasses.dataclass(frozen=True)
class Categorical(FeatureSpec):
    """A single-valued categorical column (strings or integers).

    The vocabulary is learned in `Schema.adapt` (values seen at least
    `min_frequency` times, at most `max_tokens` of them, most frequent
    first); any other value maps to one out-of-vocabulary bucket. With
    `num_hash_bins` set, values are hashed instead (no vocabulary; use it
    for huge cardinalities such as user ids). Missing values (NaN/None)
    are the token `""` for strings and `-1` for integers: a category of
    their own when seen in training, the OOV bucket otherwise.

    `embeddings_initializer` (a Keras initializer name or config dict)
    initialises this feature's embedding rows; None (the default) leaves
    them to the model's `embeddings_initializer`.

    Cold start: a value unseen in training gets the OOV embedding, which
    training never updates unless some training values map to it too. Two
    ways to train it: `min_frequency` (at adapt: values seen fewer times
    than that are left out of the vocabulary, so their rows train the OOV
    bucket), and `oov_rate` (in the graph, while training only: each
    example's id is replaced by the OOV id with this probability, like
    word dropout; inference and serving never replace anything). The
    default `oov_rate=0.0` keeps every model trained before exactly as it
    was (no replacement, no extra random draws); 0.01-0.05 is a usual
    setting for a feature that meets new values in serving (new items,
    new users). Hashed features (`num_hash_bins`) have no OOV bucket and
    refuse `oov_rate`.

    Large vocabularies: `num_oov_buckets=N` (default 1) hashes every value
    outside the learned vocabulary into one of N buckets (Keras'
    `StringLookup` / `IntegerLookup` `num_oov_indices`) instead of one
    shared bucket: a capped vocabulary (`max_tokens`, `min_frequency`) for
    the frequent ids plus hash buckets for the long tail, so a tail id
    keeps an embedding of its own (shared with few others) and the tail's
    rows train the buckets. Ids then run 0..N-1 (buckets), N.. (vocabulary).
    It takes no `oov_rate` (which would train bucket 0 only) and no
    `num_hash_bins` (hash everything instead).

    Multi-scenario models: `scenario=True` marks this feature as the
    scenario (domain) of each example, e.g. the shop department or the
    country; at most one feature of a schema is. It is still embedded as
    any other feature; the multi-scenario models (`STAR`, `PEPNet`) also
    read its id (after the lookup above) to pick scenario-specific
    parameters. A scenario unseen in training gets the OOV id and so the
    OOV bucket's parameters.
    """

    name: str
    embedding_dim: int = 16
    max_tokens: int | None = None
    min_frequency: int = 1
    num_hash_bins: int | None = None
    dtype: str = "string"
    modality: str = "tabular"
    embeddings_initializer: str | dict | None = None
    oov_rate: float = 0.0
    num_oov_buckets: int = 1
    scenario: bool = False
    kind: ClassVar[str] = "categorical"
    written_when_set: ClassVar[tuple] = ("oov_rate", "num_oov_buckets", "scenario")

    @property
    def raw_dtype(self):
        return "int64" if self.dtype == "int64" else "string"

    @property
    def missing_value(self):
        return MISSING_INT if self.dtype == "int64" else ""

    def csv_dtype(self):
        return "Int64" if self.dtype == "int64" else str

    def validate(self):
        super().validate()
        if not isinstance(self.scenario, (bool, np.bool_)):
            # a YAML "false" string would otherwise mark the scenario
            raise ValueError(
                f"Categorical '{self.name}' has scenario={self.scenario!r} "
                f"({type(self.scenario).__name__}); expected True or False.")
        if self.dtype not in ("string", "int64"):
            raise ValueError(
                f"Categorical '{self.name}' has dtype '{self.dtype}'; "
                f"expected 'string' or 'int64'.")
        if self.embeddings_initializer is not None:
            if isinstance(self.embeddings_initializer, keras.initializers.Initializer):
                # the schema serialises to JSON, so it holds the config
                raise ValueError(
                    f"Categorical '{self.name}' has embeddings_initializer "
                    f"{self.embeddings_initializer!r}, an object; pass its name or "
                    f"config instead, e.g. keras.initializers.serialize(initializer).")
            check_initializer(self.embeddings_initializer,
                              f"Categorical '{self.name}' has embeddings_initializer")
        rate = self.oov_rate
        if (isinstance(rate, (bool, np.bool_)) or not isinstance(rate, (int, float, np.number))
                or not 0.0 <= float(rate) < 1.0):
            raise ValueError(
                f"Categorical '{self.name}' has oov_rate={rate!r}; expected a number in "
                f"[0, 1): the probability that a training example's id is replaced by "
                f"the out-of-vocabulary id (0 disables it).")
        if rate and self.num_hash_bins:
            raise ValueError(
                f"Categorical '{self.name}' has oov_rate={rate} and num_hash_bins="
                f"{self.num_hash_bins}; hashed values have no out-of-vocabulary bucket "
                f"to train. Drop oov_rate, or drop num_hash_bins to learn a vocabulary.")
        if self.num_oov_buckets != 1 and (self.num_hash_bins or rate):
            other = (f"num_hash_bins={self.num_hash_bins}" if self.num_hash_bins
                     else f"oov_rate={rate}")
            raise ValueError(
                f"Categorical '{self.name}' has num_oov_buckets={self.num_oov_buckets} and "
                f"{other}; hash buckets for the ids outside a learned vocabulary go with "
                f"neither (num_hash_bins hashes every id; oov_rate would train bucket 0 "
                f"only). Keep num_oov_buckets, or the other one.")

    def check(self, series):
        name, dtype = self.name, series.dtype
        if self.dtype == "int64":
            check_integer_column(series, name)
            if (pd.api.types.is_unsigned_integer_dtype(series) and len(series)
                    and series.max() > np.iinfo(np.int64).max):
                raise ValueError(
                    f"Column '{name}' is {dtype} with values above the int64 "
                    f"range, which an integer Categorical cannot hold; cast it "
                    f"with df['{name}'].astype(str) and declare "
                    f"Categorical('{name}') (add num_hash_bins=... for huge "
                    f"cardinalities).")
        elif pd.api.types.is_float_dtype(series):
            raise ValueError(
                f"Column '{name}' is {dtype} in the data but the schema "
                f"declares it Categorical; declare it Numeric or cast the "
                f"column to str (or to pandas 'Int64' with "
                f"Categorical('{name}', dtype='int64')).")
        elif is_list_column(series):
            raise ValueError(
                f"Column '{name}' holds lists but the schema declares it "
                f"Categorical; declare it MultiHot('{name}').")

    def adapt(self, series):
        if self.num_hash_bins:
            return {"num_hash_bins": int(self.num_hash_bins)}
        values = self.to_array(series, None)
        if self.dtype == "int64":
            counter = Counter(int(v) for v in values)
        else:
            counter = Counter(values.tolist())
        stats = {"vocabulary": _top_tokens(counter, self.max_tokens, self.min_frequency)}
        if self.num_oov_buckets > 1:   # absent for one bucket: older stats unchanged
            stats["num_oov_buckets"] = int(self.num_oov_buckets)
        return stats

    def to_array(self, series, stats):
        if self.dtype == "int64":
            return series.astype("Int64").fillna(MISSING_INT).astype(np.int64).to_numpy()
        return string_values(series)


@dataclasses.dataclass(frozen=True)
class Numeric(FeatureSpec):
    """A float column, standardised with statistics learned in `adapt`, and
    optionally embedded as a vector.

    NaN (and +-inf) is imputed with the training mean and flagged by a
    missing indicator, so the model sees `(value, is_missing)` per column.
    `log1p` first maps `sign(x) * log(1 + |x|)`, for heavy-tailed money
    columns.

    `adapt` also learns the training range (`min`, `max` of the finite raw
    values; `Schema.out_of_range(df)` reports values outside it). With
    `clip=True` the model clips raw values to that range before anything
    else, in the graph (so in serving too): a request with 1e30 for a
    feature trained on [0, 10] is read as 10, where unclipped it would be
    scaled to ~1e29 and produce a prediction far outside anything seen in
    training. The default, `False`, leaves values as they are (what every
    model trained before had), since a clip also hides real drift.

    `encoding` says what the model sees of the value (Gorishniy et al.,
    NeurIPS 2022, "On Embeddings for Numerical Features in Tabular Deep
    Learning"); every encoding keeps the missing indicator:

    - `"standardize"` (the default, what every model had before): the one
      standardised value.
    - `"quantile_bins"`: the one-hot code of the value's quantile bin.
    - `"piecewise_linear"` (PLE): per bin `t` with edges `[b_t, b_t+1)`, 1
      if `x >= b_t+1`, 0 if `x < b_t`, else `(x - b_t) / (b_t+1 - b_t)`.
      Unlike the paper's first and last bins, which extrapolate linearly,
      the code stays in [0, 1], so a value far outside the training range
      gets the code of the range's end, not a huge one.
    - `"periodic"`: `concat(sin(2 pi c x), cos(2 pi c x))` of the
      standardised value `x`, with `num_frequencies` trainable frequencies
      `c` initialised from a normal of standard deviation `frequency_sigma`
      (truncated at 2 sigma), then Linear + ReLU (the paper's "PLR").

    The bin edges are `num_bins + 1` quantiles of the finite training
    values (after `log1p`), learned in `adapt` and stored in the schema's
    statistics as `bin_edges` (so they travel with the schema JSON, the
    `.keras` file and the export); repeated edges of discrete columns are
    merged, so such a column may get fewer bins. As in the paper's "-L"
    variants, each encoded feature's code is projected by its own Linear
    layer to `embedding_dim` (ReLU after it for `periodic` only) and the
    vector replaces the standardised value. A missing value gets the
    all-zero code (so its vector is the projection's bias) and the
    indicator. Everything runs in the graph: serving still takes the raw
    float. `num_bins`, `embedding_dim`, `num_frequencies` and
    `frequency_sigma` are unused by the encodings that have no use for them.
    """

    name: str
    log1p: bool = False
    modality: str = "tabular"
    clip: bool = False
    encoding: str = "standardize"
    num_bins: int = 16
    embedding_dim: int = 16
    num_frequencies: int = 16
    frequency_sigma: float = 0.1
    kind: ClassVar[str] = "numeric"
    raw_dtype: ClassVar[str] = "float32"
    missing_value: ClassVar = np.nan
    leakage_view: ClassVar[str | None] = "number"
    written_when_set: ClassVar[tuple] = ("encoding", "num_bins", "embedding_dim",
                                         "num_frequencies", "frequency_sigma")

    def csv_dtype(self):
        return "float32"

    def validate(self):
        super().validate()
        for field in ("log1p", "clip"):
            if not isinstance(getattr(self, field), (bool, np.bool_)):
                raise ValueError(
                    f"Numeric '{self.name}' has {field}={getattr(self, field)!r}; "
                    f"expected True or False.")
        if self.encoding not in NUMERIC_ENCODINGS:
            raise ValueError(
                f"Numeric '{self.name}' has encoding {self.encoding!r}; expected one of "
                f"{list(NUMERIC_ENCODINGS)}.{_did_you_mean(self.encoding, NUMERIC_ENCODINGS)}")
        sigma = self.frequency_sigma
        if (isinstance(sigma, (bool, np.bool_)) or not isinstance(sigma, (int, float, np.number))
                or not 0.0 < float(sigma) < math.inf):
            raise ValueError(
                f"Numeric '{self.name}' has frequency_sigma={sigma!r}; expected a positive "
                f"number (the standard deviation of the periodic encoding's initial "
                f"frequencies, e.g. 0.1).")

    @property
    def binned(self):
        """Whether the encoding reads the quantile bin edges learned in adapt."""
        return self.encoding in BINNED_ENCODINGS

    def check(self, series):
        if not (pd.api.types.is_numeric_dtype(series) or series.isna().all()):
            bad = first_non_numeric(series)
            raise ValueError(
                f"Column '{self.name}' is {series.dtype} in the data (e.g. "
                f"{plain(bad)!r}) but the schema declares it Numeric; declare it "
                f"Categorical or convert it with pd.to_numeric(df['{self.name}'], "
                f"errors='coerce').")

    def adapt(self, series):
        values = pd.to_numeric(series, errors="coerce").astype("float64")
        # The model gets float32: larger values arrive as inf and are
        # imputed as missing, so they must not enter the statistics either.
        values = values[values.abs() <= FLOAT32_MAX]
        # the raw training range (float32, as the graph compares it)
        low = float(np.float32(values.min())) if len(values) else None
        high = float(np.float32(values.max())) if len(values) else None
        if self.log1p:
            values = np.sign(values) * np.log1p(np.abs(values))
        mean = float(values.mean()) if len(values) else 0.0
        variance = float(values.var(ddof=0)) if len(values) else 1.0
        stats = {"mean": mean, "variance": variance, "min": low, "max": high}
        if self.binned:
            stats["bin_edges"] = quantile_bin_edges(values.to_numpy(), self.num_bins)
        return stats

    def bin_edges(self, stats):
        """The learned bin edges, float32 `(bins + 1,)`; a clear error for
        statistics adapted without them."""
        if "bin_edges" not in stats:
            raise ValueError(
                f"Numeric '{self.name}' has encoding {self.encoding!r} but its "
                f"statistics have no bin_edges (adapted with another encoding, or by an "
                f"mtrec without them); adapt the schema again.")
        return np.asarray(stats["bin_edges"], "float32")

    def to_array(self, series, stats):
        return to_float32(series)


def quantile_bin_edges(values, num_bins):
    """Bin edges: the `num_bins + 1` quantiles (0, 1/num_bins, ..., 1) of
    the finite `values`, rounded to float32 (what the graph compares), with
    repeats merged (a discrete column gets fewer bins).

    Args:
        values: 1-D array of finite floats (possibly empty).
        num_bins: int >= 1.

    Returns:
        list of float, strictly increasing, at least 2 of them: a column
        with one distinct value `v` (or none: `v = 0`) gets the one bin
        `[v - h, v + h]`, `h = max(|v|, 1) / 2`.
    """
    values = np.asarray(values, "float64")
    if not len(values):
        values = np.zeros(1)
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, num_bins + 1))
                      .astype("float32"))
    if len(edges) < 2:
        v = float(edges[0])
        half = max(abs(v), 1.0) / 2
        edges = np.array([v - half, v + half], "float32")
    return [float(e) for e in edges]


def _check_strings(spec, series, what):
    if not (is_stringish(series) or series.isna().all()):
        raise ValueError(
            f"Column '{spec.name}' is {series.dtype} in the data but the schema "
            f"declares it {type(spec).__name__}, which takes {what}; cast it "
            f"with df['{spec.name}'].astype(str) or declare another kind.")


@dataclasses.dataclass(frozen=True)
class MultiHot(FeatureSpec):
    """A set-valued column: a delimited string (`"a|b|c"`) or a list.

    Items are looked up in a vocabulary learned in `adapt` and their
    embeddings mean-pooled. At most `max_items` items per row are kept
    (learned in `adapt` as the longest row, capped at 64, when None).
    """

    name: str
    embedding_dim: int = 16
    delimiter: str = "|"
    max_tokens: int | None = None
    max_items: int | None = None
    modality: str = "tabular"
    kind: ClassVar[str] = "multihot"

    def check(self, series):
        _check_strings(self, series, "strings or lists")
        if pd.api.types.is_object_dtype(series):
            for index, value in series.items():
                if isinstance(value, (list, tuple, np.ndarray)) and any(
                        self.delimiter in str(item) for item in value):
                    raise ValueError(
                        f"Column '{self.name}' row {index!r} holds a list item "
                        f"containing the delimiter {self.delimiter!r} "
                        f"({list(value)!r}); lists are joined with it for "
                        f"the model, so the item would be split. Remove it "
                        f"from the items or set MultiHot('{self.name}', "
                        f"delimiter=...) to a character they never contain.")

    def items(self, series):
        """Each row's items as the in-graph split sees them (list of lists of
        str), empty pieces (`"a||b"`) included so the learned `max_items`
        never truncates a real item; a missing row has none."""
        rows = []
        for value in series.tolist():
            if isinstance(value, (list, tuple, np.ndarray)):
                rows.append([str(v) for v in value])
            elif is_missing(value):
                rows.append([])
            else:
                rows.append(str(value).split(self.delimiter))
        return rows

    def adapt(self, series):
        rows = self.items(series)
        counter = Counter(item for row in rows for item in row)
        counter.pop("", None)   # "" is padding, never a token
        longest = max((len(r) for r in rows), default=1)
        return {"vocabulary": _top_tokens(counter, self.max_tokens),
                "max_items": int(self.max_items or min(max(longest, 1), 64))}

    def to_array(self, series, stats):
        if pd.api.types.is_object_dtype(series) and any(
                isinstance(v, (list, tuple, np.ndarray)) for v in series.tolist()):
            return np.array([self.delimiter.join(r) for r in self.items(series)],
                            dtype=object)
        return string_values(series)


@dataclasses.dataclass(frozen=True)
class Text(FeatureSpec):
    """A raw text column, tokenised in the graph (lower-cased, punctuation
    stripped, split on whitespace), embedded, encoded and pooled.

    `max_length` tokens are kept (learned in `adapt` as the 95th
    percentile of lengths, capped at 256, when None); the vocabulary holds
    the `max_tokens - 2` most frequent training tokens plus padding and one
    out-of-vocabulary token.

    `encoder` is what runs over the token embeddings before pooling:
    `"bag"` (nothing: a bag of words), `"cnn"` (`encoder_layers` 1-D
    convolutions of width 3) or `"transformer"` (`encoder_layers`
    self-attention blocks over learned positions). `pooling` is `"mean"`,
    `"max"` or `"attention"` (a learned query scores every token, softmax
    over the non-padding ones). Padding never reaches the result.

    Empty or missing text (no token left after standardisation) is
    replaced by a learned "missing" embedding of this feature, and by the
    same embedding when modality dropout drops the feature's modality.
    """

    name: str
    embedding_dim: int = 32
    max_tokens: int = 20000
    max_length: int | None = None
    pooling: str = "mean"
    modality: str = "text"
    encoder: str = "bag"
    encoder_layers: int = 1
    kind: ClassVar[str] = "text"
    missing_embedding: ClassVar[bool] = True

    def validate(self):
        super().validate()
        if self.max_tokens < 3:
            raise ValueError(
                f"Text '{self.name}' has max_tokens={self.max_tokens}; it counts "
                f"the padding and out-of-vocabulary tokens too, so it must be "
                f">= 3.")
        if self.pooling not in TEXT_POOLINGS:
            raise ValueError(
                f"Text '{self.name}' has pooling '{self.pooling}'; expected 'mean' or "
                f"'max' (over the non-padding tokens) or 'attention' (a learned query "
                f"scores each token).{_did_you_mean(self.pooling, TEXT_POOLINGS)}")
        if self.encoder not in TEXT_ENCODERS:
            raise ValueError(
                f"Text '{self.name}' has encoder '{self.encoder}'; expected one of "
                f"{list(TEXT_ENCODERS)}.{_did_you_mean(self.encoder, TEXT_ENCODERS)}")
        if self.encoder == "transformer" and self.encoder_layers > 4:
            raise ValueError(
                f"Text '{self.name}' has encoder_layers={self.encoder_layers} with the "
                f"transformer encoder; side-feature encoders are kept small (1-4 "
                f"blocks). Use a precomputed Vector for a large text model.")

    def check(self, series):
        _check_strings(self, series, "strings")

    def adapt(self, series):
        tokens = [text_tokens(t) for t in string_values(series)]
        counter = Counter(tok for row in tokens for tok in row)
        lengths = [len(t) for t in tokens] or [1]
        # Round up: an interpolated 95th percentile of 11.2 must keep 12
        # tokens, or 95% of texts no longer fit.
        max_length = self.max_length or int(
            min(max(math.ceil(np.percentile(lengths, 95)), 1), 256))
        return {"vocabulary": _top_tokens(counter, self.max_tokens - 2),
                "max_length": int(max_length)}


@dataclasses.dataclass(frozen=True)
class Vector(FeatureSpec):
    """A fixed-length float vector, e.g. a precomputed image or sentence
    embedding, projected to `projection_dim` (linear).

    Accepts a column of lists/arrays (Parquet list columns read this way).
    Fixed-width float columns (`img_0`, ..., `img_63`) are collapsed into
    one such column first with `collapse_vector_columns(df, "img_")`.
    `dim` is learned in `adapt` when None. With `normalize`, each vector
    is L2-normalised before the projection (for embeddings whose norm
    carries no meaning, e.g. CLIP or sentence encoders).

    A missing row (None, or any NaN) is replaced by a learned "missing"
    embedding of this feature and flagged by a missing indicator; the same
    happens when modality dropout drops the feature's modality.
    """

    name: str
    dim: int | None = None
    projection_dim: int = 32
    modality: str = "image"
    normalize: bool = False
    kind: ClassVar[str] = "vector"
    raw_dtype: ClassVar[str] = "float32"
    missing_value: ClassVar = np.nan
    leakage_view: ClassVar[str | None] = None
    missing_embedding: ClassVar[bool] = True
    list_valued: ClassVar[bool] = True

    def raw_shape(self, stats):
        if stats is None:
            raise not_adapted_error(self.name)
        return (int(stats["dim"]),)

    def csv_dtype(self):
        raise ValueError(
            f"Feature '{self.name}' is a Vector, which a CSV file cannot "
            f"hold (one list per cell); store the table as Parquet and use "
            f"from_parquet, or split the vector into Numeric columns.")

    def validate(self):
        super().validate()
        if not isinstance(self.normalize, (bool, np.bool_)):
            raise ValueError(
                f"Vector '{self.name}' has normalize={self.normalize!r}; "
                f"expected True or False.")

    def check(self, series):
        name = self.name
        for index, value in series.items():
            if is_missing(value):
                continue
            if not isinstance(value, (list, tuple, np.ndarray)):
                raise ValueError(
                    f"Column '{name}' is {series.dtype} in the data (row {index!r} "
                    f"is {value!r}) but the schema declares it Vector, which "
                    f"takes a list/array of numbers per row; store one array "
                    f"per row (e.g. df['{name}'] = list(matrix)), None for a "
                    f"missing row.")
            try:
                np.asarray(value, dtype=np.float32)
            except (TypeError, ValueError):
                raise ValueError(
                    f"Column '{name}' row {index!r} is {value!r}, which is "
                    f"not a flat list of numbers, but the schema declares it "
                    f"Vector; convert the items to floats (None or NaN for a "
                    f"missing row) or declare MultiHot('{name}').") from None
            if np.ndim(value) != 1:
                raise ValueError(
                    f"Column '{name}' row {index!r} has shape "
                    f"{np.shape(value)}; a Vector row must be 1-D. Flatten "
                    f"each row (e.g. np.ravel) first.")

    def adapt(self, series):
        lengths = {len(v) for v in series if not is_missing(v)}
        if self.dim is not None:
            lengths.discard(self.dim)
            if lengths:
                raise ValueError(
                    f"Vector column '{self.name}' has rows of length "
                    f"{sorted(lengths)[:5]}; the schema declares "
                    f"dim={self.dim}. Pad or truncate every row to "
                    f"{self.dim} values (None for a missing row), or change "
                    f"Vector('{self.name}', dim=...).")
            return {"dim": int(self.dim)}
        if not lengths or lengths == {0}:
            raise ValueError(
                f"Vector column '{self.name}' has no non-empty rows, so its "
                f"length cannot be learned; set Vector('{self.name}', dim=...) "
                f"or adapt on rows that have vectors.")
        if len(lengths) != 1:
            raise ValueError(
                f"Vector column '{self.name}' has rows of lengths "
                f"{sorted(lengths)[:5]}; every row needs the same length "
                f"(pad or truncate), or set Vector('{self.name}', dim=...).")
        return {"dim": lengths.pop()}

    def to_array(self, series, stats):
        (dim,) = self.raw_shape(stats)
        # (rows, dim), NaN rows where missing
        out = np.full((len(series), dim), np.nan, dtype=np.float32)
        for i, value in enumerate(series.tolist()):
            if is_missing(value):
                continue
            if len(value) != dim:
                raise ValueError(
                    f"Vector column '{self.name}' row {series.index[i]!r} has "
                    f"length {len(value)}; expected {dim} (the length learned "
                    f"in adapt). Pad/truncate it or set it to None (missing).")
            out[i] = value
        return out


def _did_you_mean(word, options):
    match = closest(word, options)
    return f" Did you mean {match!r}?" if match is not None else ""


#: Every feature kind by its `kind` string (what `Schema.to_dict` writes).
FEATURE_KINDS = {cls.kind: cls for cls in (Categorical, Numeric, MultiHot, Text, Vector)}
