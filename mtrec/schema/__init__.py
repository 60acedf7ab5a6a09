"""Feature and task specifications, and the Schema that holds them.

A `Schema` is a list of feature specs (what each input column is) and task
specs (what each label is). Specs are small frozen dataclasses without
weights. `Schema.adapt(df)` learns what preprocessing needs from a training
table (vocabularies, normalisation statistics, sequence lengths) and keeps it
in `schema.stats`, so the whole schema, learned state included, serialises
to JSON and rebuilds the identical in-graph preprocessing anywhere.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import re
from collections import Counter
from typing import ClassVar

import numpy as np
import pandas as pd

TASK_KINDS = ("binary", "regression", "multiclass")
MODALITIES = ("tabular", "text", "image", "audio", "other")
# Keys of encoded (preprocessed) feature dicts start with this; raw feature
# names may not, so raw and encoded inputs can never be confused.
ENCODED_PREFIX = "mtrec:"
# Integer categoricals use this for missing values (pandas NA, None).
MISSING_INT = -1
TEXT_STANDARDIZE = "lower_and_strip_punctuation"


# --------------------------------------------------------------------------
# Feature specs
# --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Categorical:
    """A single-valued categorical column (strings or integers).

    The vocabulary is learned in `Schema.adapt` (values seen at least
    `min_frequency` times, at most `max_tokens` of them, most frequent
    first); any other value maps to one out-of-vocabulary bucket. With
    `num_hash_bins` set, values are hashed instead (no vocabulary; use it
    for huge cardinalities such as user ids). Missing values (NaN/None)
    are the token `""` for strings and `-1` for integers: a category of
    their own when seen in training, the OOV bucket otherwise.
    """

    name: str
    embedding_dim: int = 16
    max_tokens: int | None = None
    min_frequency: int = 1
    num_hash_bins: int | None = None
    dtype: str = "string"
    modality: str = "tabular"
    kind: ClassVar[str] = "categorical"


@dataclasses.dataclass(frozen=True)
class Numeric:
    """A float column, standardised with statistics learned in `adapt`.

    NaN is imputed with the training mean and flagged by a missing
    indicator, so the model sees `(value, is_missing)` per column.
    `log1p` first maps `sign(x) * log(1 + |x|)`, for heavy-tailed money
    columns.
    """

    name: str
    log1p: bool = False
    modality: str = "tabular"
    kind: ClassVar[str] = "numeric"


@dataclasses.dataclass(frozen=True)
class MultiHot:
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


@dataclasses.dataclass(frozen=True)
class Text:
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


@dataclasses.dataclass(frozen=True)
class Vector:
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


TEXT_ENCODERS = ("bag", "cnn", "transformer")
TEXT_POOLINGS = ("mean", "max", "attention")


def collapse_vector_columns(df, prefix, name=None):
    """Collapse fixed-width float columns into one `Vector` column.

    Columns named `<prefix><i>` (`img_0`, `img_1`, ..., `img_63`) become one
    column of float32 arrays, ordered by the integer `i` (so `img_10` comes
    after `img_9`); a row with any NaN becomes None, a missing vector.

    Args:
        df: pandas DataFrame.
        prefix: str. Common prefix of the columns, e.g. `"img_"`.
        name: str. Name of the new column; defaults to `prefix` without
            trailing `_`, `-` or `.` (`"img"`).

    Returns:
        A new DataFrame: the `<prefix><i>` columns replaced, at the place of
        the first one, by the column `name`.

    Example:
        >>> df = collapse_vector_columns(df, "img_")       # img_0..img_63 -> img
        >>> schema = Schema.infer(df, tasks, img=Vector("img", modality="image"))
    """
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"collapse_vector_columns expects a pandas DataFrame, got "
                         f"{type(df).__name__}.")
    if not isinstance(prefix, str) or not prefix:
        raise ValueError(f"prefix must be a non-empty string such as 'img_', got "
                         f"{prefix!r}.")
    name = name or prefix.rstrip("_-.")
    if not name:
        raise ValueError(f"prefix {prefix!r} leaves no column name; pass name=...")
    pattern = re.compile(re.escape(prefix) + r"(\d+)$")
    found = sorted((int(m.group(1)), c) for c in df.columns
                   if isinstance(c, str) and (m := pattern.match(c)))
    if not found:
        raise ValueError(
            f"No columns named '{prefix}<i>' (e.g. '{prefix}0') in the data; "
            f"columns: {list(df.columns)[:20]}{'...' if len(df.columns) > 20 else ''}.")
    indices = [i for i, _ in found]
    if indices != list(range(len(found))):
        gaps = sorted(set(range(max(indices) + 1)) - set(indices))[:5]
        raise ValueError(
            f"Columns '{prefix}<i>' must be numbered 0..n-1 without gaps or "
            f"repeats; found indices {indices[:10]}{'...' if len(indices) > 10 else ''}"
            f"{f' (missing {gaps})' if gaps else ''}. Rename the columns so the "
            f"vector order is unambiguous.")
    columns = [c for _, c in found]
    if name in df.columns and name not in columns:
        raise ValueError(f"Column '{name}' already exists; pass another name=.")
    not_numeric = [c for c in columns if not pd.api.types.is_numeric_dtype(df[c])]
    if not_numeric:
        raise ValueError(
            f"Columns {not_numeric[:5]} are not numeric "
            f"({df[not_numeric[0]].dtype}); a vector needs float columns. "
            f"Convert them with pd.to_numeric(..., errors='coerce').")
    matrix = df[columns].to_numpy(dtype=np.float32, na_value=np.nan)
    missing = ~np.isfinite(matrix).all(axis=1)
    values = [None if m else row for m, row in zip(missing, matrix)]
    chosen = set(columns)
    first = next(i for i, c in enumerate(df.columns) if c in chosen)
    position = sum(1 for c in list(df.columns)[:first] if c not in chosen)
    out = df.drop(columns=columns)
    out.insert(position, name, pd.Series(values, index=df.index, dtype=object))
    return out


FEATURE_KINDS = {cls.kind: cls for cls in (Categorical, Numeric, MultiHot, Text, Vector)}


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One prediction task.

    Args:
        name: str. Output name, e.g. `"ctr"`.
        kind: str. `"binary"` (labels 0/1), `"regression"` or
            `"multiclass"` (integer labels in `[0, num_classes)`).
        label: str. Label column; defaults to `name`.
        num_classes: int. Multiclass only; learned in `adapt` when None.
        mask: str. Optional column: where it is 0, False or NaN the
            example has no label for this task (e.g. CVR counted only where
            `click == 1`). A NaN label has the same effect.
    """

    name: str
    kind: str = "binary"
    label: str | None = None
    num_classes: int | None = None
    mask: str | None = None

    def __post_init__(self):
        if self.kind not in TASK_KINDS:
            close = difflib.get_close_matches(str(self.kind), TASK_KINDS, n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ValueError(
                f"Task '{self.name}' has kind '{self.kind}'; expected one of "
                f"{list(TASK_KINDS)}.{hint}")
        if self.label is None:
            object.__setattr__(self, "label", self.name)


# --------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------
class Schema:
    """Feature specs + task specs + what `adapt` learned.

    Args:
        features: list of feature specs (`Categorical`, `Numeric`,
            `MultiHot`, `Text`, `Vector`). The spec name is the column.
        tasks: list of `TaskSpec`, or a dict `{task_name: kind}`.
        stats: dict. Learned state from `adapt`; normally left to `adapt`
            or `from_dict`.

    Example:
        >>> schema = Schema.infer(df, tasks={"income": "binary"})
        >>> schema.adapt(df)
        >>> Schema.from_json(schema.to_json()) == schema
        True
    """

    def __init__(self, features, tasks, stats=None):
        self.features = list(features)
        self.tasks = _as_task_specs(tasks)
        self.stats = dict(stats or {})
        self._validate()

    # -- construction ------------------------------------------------------
    @classmethod
    def infer(cls, df, tasks, exclude=(), verbose=True, **overrides):
        """Pick a feature kind for every column of `df` that is not a label.

        Rules, by dtype: bool, string and category columns are
        `Categorical`, unless their values are long free text (mean of more
        than 4 words, many distinct values), which makes them `Text`; list
        columns are `MultiHot` (strings) or `Vector` (numbers); floats are
        `Numeric`; integers are `Numeric` unless the column name ends in
        the word "id" ("id", "user_id", "item-id", "itemId", "itemID"; not
        "paid"), which makes them `Categorical`.

        Args:
            df: pandas DataFrame.
            tasks: dict `{task_name: kind}` or list of `TaskSpec`.
            exclude: columns to leave out (ids, timestamps, ...).
            verbose: bool. Print the kind picked for each column.
            **overrides: `column=spec` to replace an inferred spec.

        Returns:
            Schema (not yet adapted).
        """
        if not isinstance(df, pd.DataFrame):
            raise ValueError(
                f"Schema.infer expects a pandas DataFrame, got "
                f"{type(df).__name__}; wrap it with pd.DataFrame(...).")
        not_str = [c for c in df.columns if not isinstance(c, str)]
        if not_str:
            raise ValueError(
                f"Column names must be strings, got {not_str[:5]!r}; rename "
                f"them, e.g. df.columns = df.columns.astype(str).")
        if isinstance(exclude, str):
            exclude = [exclude]
        exclude = set(exclude)
        task_specs = _as_task_specs(tasks)
        labels = {t.label for t in task_specs} | {t.mask for t in task_specs if t.mask}
        _require_columns(df, sorted(labels), what="label column")
        unknown = set(overrides) - set(df.columns)
        if unknown:
            raise ValueError(
                f"Overrides name columns that are not in the data: "
                f"{sorted(unknown)}; available: {list(df.columns)}.")
        for column, spec in overrides.items():
            if column in labels:
                raise ValueError(
                    f"Override for column '{column}', but '{column}' is a "
                    f"task label; a label cannot also be a feature. Drop the "
                    f"override.")
            if getattr(spec, "name", column) != column:
                raise ValueError(
                    f"Override for column '{column}' is a spec named "
                    f"'{spec.name}'; the spec name is the column it reads. "
                    f"Pass {column}={type(spec).__name__}('{column}', ...).")
        features, lines = [], []
        for column in df.columns:
            if column in labels or column in exclude:
                continue
            spec = overrides.get(column) or _infer_spec(column, df[column])
            why = "override" if column in overrides else str(df[column].dtype)
            features.append(spec)
            lines.append(f"  {column!r:<45} {spec.kind:<12} ({why})")
        if verbose:
            print(f"Schema.infer: {len(features)} features, "
                  f"{len(task_specs)} tasks "
                  f"({', '.join(f'{t.name}:{t.kind}' for t in task_specs)})")
            print("\n".join(lines))
        return cls(features, task_specs)

    # -- learned state -------------------------------------------------------
    def adapt(self, df):
        """Learn vocabularies, normalisation statistics and lengths from `df`.

        Validates the data against the schema first (every column present,
        dtypes that fit the declared kinds, labels valid for the task kind).

        Returns:
            self, for chaining.
        """
        self.validate(df, labels=True)
        stats = {}
        for spec in self.features:
            stats[spec.name] = _adapt_feature(spec, df[spec.name])
        for task in self.tasks:
            if task.kind == "multiclass":
                labels = pd.to_numeric(df[task.label], errors="coerce").dropna()
                if task.num_classes is None and not len(labels):
                    raise ValueError(
                        f"Label column '{task.label}' of multiclass task "
                        f"'{task.name}' has no labels (all missing), so the "
                        f"number of classes cannot be learned; set "
                        f"TaskSpec('{task.name}', 'multiclass', "
                        f"num_classes=...) or adapt on labelled rows.")
                num_classes = task.num_classes or int(labels.max()) + 1
                stats[f"task:{task.name}"] = {"num_classes": num_classes}
        self.stats = stats
        return self

    @property
    def adapted(self):
        return all(spec.name in self.stats for spec in self.features)

    def feature_stats(self, name):
        if name not in self.stats:
            raise ValueError(
                f"Feature '{name}' has no learned statistics: call "
                f"schema.adapt(train_df) before building a model or dataset.")
        return self.stats[name]

    def num_classes(self, task):
        if task.kind != "multiclass":
            return 1
        return task.num_classes or self.stats[f"task:{task.name}"]["num_classes"]

    # -- lookups ---------------------------------------------------------------
    @property
    def feature_names(self):
        return [spec.name for spec in self.features]

    @property
    def task_names(self):
        return [task.name for task in self.tasks]

    def features_of(self, kind):
        return [spec for spec in self.features if spec.kind == kind]

    def feature(self, name):
        for spec in self.features:
            if spec.name == name:
                return spec
        raise KeyError(f"No feature named '{name}' in the schema; "
                       f"features: {self.feature_names}.")

    # -- validation ------------------------------------------------------------
    def _validate(self):
        for spec in self.features:
            if type(spec) not in FEATURE_KINDS.values():
                raise ValueError(
                    f"Feature {spec!r} is not a feature spec; use one of "
                    f"{[c.__name__ for c in FEATURE_KINDS.values()]}.")
            if not isinstance(spec.name, str) or not spec.name:
                raise ValueError(
                    f"Feature {spec!r} has name {spec.name!r}; the name is "
                    f"the column it reads and must be a non-empty string.")
            _check_sizes(spec)
            if spec.name.startswith(ENCODED_PREFIX):
                raise ValueError(
                    f"Feature name '{spec.name}' starts with the reserved "
                    f"prefix '{ENCODED_PREFIX}'; rename the column.")
        names = [spec.name for spec in self.features]
        _reject_duplicates(names, "feature")
        _reject_duplicates([t.name for t in self.tasks], "task")
        if not self.tasks:
            raise ValueError("A schema needs at least one task.")
        for task in self.tasks:
            if task.label in names:
                raise ValueError(
                    f"Column '{task.label}' is the label of task '{task.name}' "
                    f"and is also listed as a feature; a label used as an "
                    f"input leaks the answer. Remove the feature "
                    f"'{task.label}' from the schema (or pass it in "
                    f"`exclude=` to Schema.infer).")
        for spec in self.features:
            if spec.kind == "categorical" and spec.dtype not in ("string", "int64"):
                raise ValueError(
                    f"Categorical '{spec.name}' has dtype '{spec.dtype}'; "
                    f"expected 'string' or 'int64'.")
            if spec.kind == "text":
                _check_text(spec)
            if spec.kind == "vector" and not isinstance(spec.normalize, (bool, np.bool_)):
                raise ValueError(
                    f"Vector '{spec.name}' has normalize={spec.normalize!r}; "
                    f"expected True or False.")

    def validate(self, df, labels=False):
        """Check that `df` fits the schema; raise ValueError naming the column.

        Args:
            df: pandas DataFrame.
            labels: bool. Also check every task's label column.
        """
        if not isinstance(df, pd.DataFrame):
            raise ValueError(
                f"Expected a pandas DataFrame, got {type(df).__name__}.")
        _require_columns(df, self.feature_names, what="feature column")
        for spec in self.features:
            _check_dtype(spec, df[spec.name])
        if labels:
            for task in self.tasks:
                _require_columns(df, [task.label],
                                 what=f"label column of task '{task.name}'")
                _check_label(task, df[task.label])
                if task.mask is not None:
                    _require_columns(df, [task.mask],
                                     what=f"mask column of task '{task.name}'")

    # -- serialisation ---------------------------------------------------------
    def to_dict(self):
        return {
            "features": [{"kind": s.kind, **dataclasses.asdict(s)} for s in self.features],
            "tasks": [dataclasses.asdict(t) for t in self.tasks],
            "stats": self.stats,
        }

    @classmethod
    def from_dict(cls, config):
        features = []
        for item in config["features"]:
            item = dict(item)
            kind = item.pop("kind")
            if kind not in FEATURE_KINDS:
                raise ValueError(f"Unknown feature kind '{kind}' in schema; "
                                 f"expected one of {list(FEATURE_KINDS)}.")
            features.append(FEATURE_KINDS[kind](**item))
        tasks = [TaskSpec(**t) for t in config["tasks"]]
        return cls(features, tasks, stats=config.get("stats"))

    def to_json(self, path=None, indent=None):
        text = json.dumps(self.to_dict(), indent=indent)
        if path is not None:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        return text

    @classmethod
    def from_json(cls, text_or_path):
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            with open(text, encoding="utf-8") as f:
                text = f.read()
        return cls.from_dict(json.loads(text))

    def __eq__(self, other):
        return isinstance(other, Schema) and self.to_dict() == other.to_dict()

    def __repr__(self):
        kinds = Counter(spec.kind for spec in self.features)
        return (f"Schema({len(self.features)} features {dict(kinds)}, tasks="
                f"{[f'{t.name}:{t.kind}' for t in self.tasks]}, "
                f"adapted={self.adapted})")

    # -- pandas -> numpy -----------------------------------------------------
    def raw_features(self, df):
        """Raw feature arrays in the dtypes the model's inputs take.

        Returns:
            dict `{feature_name: np.ndarray}`: strings as object arrays of
            str, numbers as float32 (NaN kept, the graph imputes), integer
            categoricals as int64, vectors as float32 `(rows, dim)`.
        """
        self.validate(df)
        return {spec.name: _column_to_array(spec, df[spec.name], self)
                for spec in self.features}

    def raw_labels(self, df):
        """Label arrays `{task_name: float32 (rows,)}`; NaN marks a missing label."""
        out = {}
        for task in self.tasks:
            _require_columns(df, [task.label], what=f"label column of task '{task.name}'")
            labels = pd.to_numeric(df[task.label], errors="coerce").to_numpy(
                dtype=np.float32, na_value=np.nan)
            if task.mask is not None:
                _require_columns(df, [task.mask], what=f"mask column of task '{task.name}'")
                keep = pd.to_numeric(df[task.mask], errors="coerce").fillna(0).to_numpy() != 0
                labels = np.where(keep, labels, np.nan).astype(np.float32)
            out[task.name] = labels
        return out


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _as_task_specs(tasks):
    if isinstance(tasks, dict):
        return [TaskSpec(name=name, kind=kind) for name, kind in tasks.items()]
    specs = list(tasks)
    for task in specs:
        if not isinstance(task, TaskSpec):
            raise ValueError(f"Expected TaskSpec objects or a dict "
                             f"{{name: kind}}, got {task!r}.")
    return specs


# Size arguments that must be positive integers (None: learned in adapt).
_POSITIVE = ("embedding_dim", "max_tokens", "min_frequency", "num_hash_bins",
             "max_items", "max_length", "dim", "projection_dim", "encoder_layers")


def _check_sizes(spec):
    for field in _POSITIVE:
        value = getattr(spec, field, None)
        if value is None:
            continue
        if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
                or value < 1):
            raise ValueError(
                f"{type(spec).__name__} '{spec.name}' has {field}={value!r}; "
                f"expected a positive integer"
                f"{' or None (learned in adapt)' if field in _LEARNED else ''}.")
    if spec.kind == "text" and spec.max_tokens < 3:
        raise ValueError(
            f"Text '{spec.name}' has max_tokens={spec.max_tokens}; it counts "
            f"the padding and out-of-vocabulary tokens too, so it must be "
            f">= 3.")


_LEARNED = ("max_tokens", "max_items", "max_length", "dim")


def _check_text(spec):
    if spec.pooling not in TEXT_POOLINGS:
        close = difflib.get_close_matches(str(spec.pooling), TEXT_POOLINGS, n=1)
        raise ValueError(
            f"Text '{spec.name}' has pooling '{spec.pooling}'; expected 'mean' or "
            f"'max' (over the non-padding tokens) or 'attention' (a learned query "
            f"scores each token).{f' Did you mean {close[0]!r}?' if close else ''}")
    if spec.encoder not in TEXT_ENCODERS:
        close = difflib.get_close_matches(str(spec.encoder), TEXT_ENCODERS, n=1)
        raise ValueError(
            f"Text '{spec.name}' has encoder '{spec.encoder}'; expected one of "
            f"{list(TEXT_ENCODERS)}.{f' Did you mean {close[0]!r}?' if close else ''}")
    if spec.encoder == "transformer" and spec.encoder_layers > 4:
        raise ValueError(
            f"Text '{spec.name}' has encoder_layers={spec.encoder_layers} with the "
            f"transformer encoder; side-feature encoders are kept small (1-4 "
            f"blocks). Use a precomputed Vector for a large text model.")


def _reject_duplicates(names, what):
    seen = [name for name, count in Counter(names).items() if count > 1]
    if seen:
        raise ValueError(
            f"Duplicate {what} name(s) {seen}: each {what} needs a unique "
            f"name; rename or drop the repeats.")


def _require_columns(df, columns, what):
    missing = [c for c in columns if c not in df.columns]
    if missing:
        hints = []
        for column in missing:
            close = difflib.get_close_matches(column, [str(c) for c in df.columns], n=1)
            if close:
                hints.append(f"'{column}' -> did you mean '{close[0]}'?")
        raise ValueError(
            f"Missing {what}(s) {missing} in the data (it has "
            f"{len(df.columns)} columns: {list(df.columns)[:20]}"
            f"{'...' if len(df.columns) > 20 else ''}). "
            f"{' '.join(hints)} Add the column(s) or remove them from the schema.")


def _is_list_column(series):
    sample = series.dropna().head(20)
    return len(sample) > 0 and all(
        isinstance(v, (list, tuple, np.ndarray)) for v in sample)


def _names_an_id(name):
    """Whether a column name ends in the word "id": the whole name, after a
    separator (`user_id`, `item-id`, `user.id`) or camel case (`itemId`,
    `itemID`); `paid` and `valid` are not ids."""
    return bool(re.search(r"(^|[_\-\s.])id$", name, flags=re.IGNORECASE)
                or re.search(r"[a-z0-9](Id|ID)$", name))


def _is_stringish(series):
    return (pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series)
            or isinstance(series.dtype, pd.CategoricalDtype))


def _infer_spec(column, series):
    if _is_list_column(series):
        first = next(iter(series.dropna()))
        if len(first) and all(isinstance(v, (int, float, np.number)) for v in first):
            return Vector(column, dim=len(first))
        return MultiHot(column)
    if pd.api.types.is_bool_dtype(series):
        return Categorical(column)
    if _is_stringish(series):
        values = series.dropna().astype(str)
        if len(values):
            words = values.head(2000).str.split().str.len().mean()
            distinct = values.nunique() / len(values)
            if words > 4 and distinct > 0.2:
                return Text(column)
        return Categorical(column)
    if pd.api.types.is_integer_dtype(series):
        if _names_an_id(str(column)):
            return Categorical(column, dtype="int64")
        return Numeric(column)
    if pd.api.types.is_float_dtype(series):
        return Numeric(column)
    raise ValueError(
        f"Cannot infer a feature kind for column '{column}' of dtype "
        f"{series.dtype}; pass an explicit spec, e.g. "
        f"Schema.infer(df, tasks, **{{'{column}': Categorical('{column}')}}), "
        f"or exclude it.")


def _check_dtype(spec, series):
    name, dtype = spec.name, series.dtype
    if spec.kind == "categorical":
        if spec.dtype == "int64":
            if not pd.api.types.is_integer_dtype(series) and not series.isna().all():
                raise ValueError(
                    f"Column '{name}' is {dtype} in the data but the schema "
                    f"declares it an integer Categorical; cast it to int64 "
                    f"(or pandas 'Int64' when it has missing values), or "
                    f"declare Categorical('{name}') for strings.")
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
        elif _is_list_column(series):
            raise ValueError(
                f"Column '{name}' holds lists but the schema declares it "
                f"Categorical; declare it MultiHot('{name}').")
    elif spec.kind == "numeric":
        if not (pd.api.types.is_numeric_dtype(series) or series.isna().all()):
            bad = _first_non_numeric(series)
            raise ValueError(
                f"Column '{name}' is {dtype} in the data (e.g. {_plain(bad)!r}) but "
                f"the schema declares it Numeric; declare it Categorical or "
                f"convert it with pd.to_numeric(df['{name}'], errors='coerce').")
    elif spec.kind in ("multihot", "text"):
        if not (_is_stringish(series) or series.isna().all()):
            raise ValueError(
                f"Column '{name}' is {dtype} in the data but the schema "
                f"declares it {type(spec).__name__}, which takes strings"
                f"{' or lists' if spec.kind == 'multihot' else ''}; cast it "
                f"with df['{name}'].astype(str) or declare another kind.")
        if spec.kind == "multihot" and pd.api.types.is_object_dtype(series):
            for index, value in series.items():
                if isinstance(value, (list, tuple, np.ndarray)) and any(
                        spec.delimiter in str(item) for item in value):
                    raise ValueError(
                        f"Column '{name}' row {index!r} holds a list item "
                        f"containing the delimiter {spec.delimiter!r} "
                        f"({list(value)!r}); lists are joined with it for "
                        f"the model, so the item would be split. Remove it "
                        f"from the items or set MultiHot('{name}', "
                        f"delimiter=...) to a character they never contain.")
    elif spec.kind == "vector":
        for index, value in series.items():
            if _is_missing(value):
                continue
            if not isinstance(value, (list, tuple, np.ndarray)):
                raise ValueError(
                    f"Column '{name}' is {dtype} in the data (row {index!r} "
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


def _is_missing(value):
    """True for a scalar missing value (None, NaN, pd.NA, NaT)."""
    if value is None:
        return True
    if isinstance(value, (list, tuple, np.ndarray, dict, set)):
        return False
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _plain(value):
    """numpy scalars as Python ones, so messages read 2, not np.int64(2)."""
    return value.item() if isinstance(value, np.generic) else value


def _first_non_numeric(series):
    for value in series.dropna().head(1000):
        try:
            float(value)
        except (TypeError, ValueError):
            return value
    return series.dropna().iloc[0] if series.notna().any() else None


def _check_label(task, series):
    values = pd.to_numeric(series, errors="coerce")
    bad = series[values.isna() & series.notna()]
    if len(bad):
        raise ValueError(
            f"Label column '{task.label}' of task '{task.name}' has "
            f"non-numeric values (e.g. {_plain(bad.iloc[0])!r}); labels must be "
            f"numbers (NaN marks a missing label).")
    observed = values.dropna()
    # Labels travel as float32: beyond its range a label becomes inf.
    infinite = observed[~(observed.astype("float64").abs() <= _FLOAT32_MAX)]
    if len(infinite):
        raise ValueError(
            f"Label column '{task.label}' of task '{task.name}' has infinite "
            f"values (e.g. {_plain(infinite.iloc[0])!r}); labels must be "
            f"finite float32 numbers (|x| <= {_FLOAT32_MAX:.3g}). Replace "
            f"them with NaN (a missing label), clip or rescale them.")
    if task.kind == "binary":
        wrong = observed[~observed.isin([0, 1])]
        if len(wrong):
            raise ValueError(
                f"Label column '{task.label}' of binary task '{task.name}' "
                f"has values other than 0/1 (e.g. {_plain(wrong.iloc[0])!r}); map it "
                f"to 0/1 or declare the task 'regression'/'multiclass'.")
    elif task.kind == "multiclass":
        wrong = observed[(observed < 0) | (observed != observed.round())]
        if len(wrong) or (task.num_classes and (observed >= task.num_classes).any()):
            raise ValueError(
                f"Label column '{task.label}' of multiclass task "
                f"'{task.name}' must hold integers in [0, num_classes); map "
                f"class names to integers first.")


def _top_tokens(counter, max_tokens, min_frequency=1):
    # Most frequent first; ties broken by token so adapt is deterministic.
    items = sorted(((c, t) for t, c in counter.items() if c >= min_frequency),
                   key=lambda ct: (-ct[0], ct[1]))
    tokens = [t for _, t in items]
    return tokens if max_tokens is None else tokens[:max_tokens]


def _adapt_feature(spec, series):
    if spec.kind == "categorical":
        if spec.num_hash_bins:
            return {"num_hash_bins": int(spec.num_hash_bins)}
        values = _categorical_values(spec, series)
        if spec.dtype == "int64":
            counter = Counter(int(v) for v in values)
            return {"vocabulary": _top_tokens(counter, spec.max_tokens, spec.min_frequency)}
        counter = Counter(values.tolist())
        return {"vocabulary": _top_tokens(counter, spec.max_tokens, spec.min_frequency)}
    if spec.kind == "numeric":
        values = pd.to_numeric(series, errors="coerce").astype("float64")
        # The model gets float32: larger values arrive as inf and are
        # imputed as missing, so they must not enter the statistics either.
        values = values[values.abs() <= _FLOAT32_MAX]
        if spec.log1p:
            values = np.sign(values) * np.log1p(np.abs(values))
        mean = float(values.mean()) if len(values) else 0.0
        variance = float(values.var(ddof=0)) if len(values) else 1.0
        return {"mean": mean, "variance": variance}
    if spec.kind == "multihot":
        rows = _multihot_lists(spec, series)
        counter = Counter(item for row in rows for item in row)
        counter.pop("", None)
        longest = max((len(r) for r in rows), default=1)
        return {"vocabulary": _top_tokens(counter, spec.max_tokens),
                "max_items": int(spec.max_items or min(max(longest, 1), 64))}
    if spec.kind == "text":
        tokens = [_text_tokens(t) for t in _string_values(series)]
        counter = Counter(tok for row in tokens for tok in row)
        lengths = [len(t) for t in tokens] or [1]
        # Round up: an interpolated 95th percentile of 11.2 must keep 12
        # tokens, or 95% of texts no longer fit.
        max_length = spec.max_length or int(min(max(math.ceil(np.percentile(lengths, 95)),
                                                    1), 256))
        return {"vocabulary": _top_tokens(counter, spec.max_tokens - 2),
                "max_length": int(max_length)}
    if spec.kind == "vector":
        lengths = {len(v) for v in series if not _is_missing(v)}
        if spec.dim is not None:
            lengths.discard(spec.dim)
            if lengths:
                raise ValueError(
                    f"Vector column '{spec.name}' has rows of length "
                    f"{sorted(lengths)[:5]}; the schema declares "
                    f"dim={spec.dim}. Pad or truncate every row to "
                    f"{spec.dim} values (None for a missing row), or change "
                    f"Vector('{spec.name}', dim=...).")
            return {"dim": int(spec.dim)}
        if not lengths or lengths == {0}:
            raise ValueError(
                f"Vector column '{spec.name}' has no non-empty rows, so its "
                f"length cannot be learned; set Vector('{spec.name}', dim=...) "
                f"or adapt on rows that have vectors.")
        if len(lengths) != 1:
            raise ValueError(
                f"Vector column '{spec.name}' has rows of lengths "
                f"{sorted(lengths)[:5]}; every row needs the same length "
                f"(pad or truncate), or set Vector('{spec.name}', dim=...).")
        return {"dim": lengths.pop()}
    raise ValueError(f"Unknown feature kind {spec.kind!r}")


_TEXT_PUNCTUATION = re.compile(r'[!"#$%&()\*\+,-\./:;<=>?@\[\\\]^_`{|}~\']')


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_ASCII_WHITESPACE = re.compile(r"[ \t\n\r\v\f]+")


def _text_tokens(text):
    # Same standardisation as keras TextVectorization's
    # "lower_and_strip_punctuation" + whitespace split (tf.strings.lower and
    # split touch ASCII only), so the vocabulary learned here is exactly
    # what the in-graph tokeniser produces.
    text = _TEXT_PUNCTUATION.sub("", text.translate(_ASCII_LOWER))
    return [t for t in _ASCII_WHITESPACE.split(text) if t]


def _string_values(series):
    """Object array of str; missing values (None, NaN, pd.NA) become ""."""
    values = series.astype(object).where(series.notna(), "")
    return values.astype(str).to_numpy(dtype=object)


def _categorical_values(spec, series):
    if spec.dtype == "int64":
        return series.astype("Int64").fillna(MISSING_INT).astype(np.int64).to_numpy()
    return _string_values(series)


def _multihot_lists(spec, series):
    # Items as the in-graph split sees them, empty pieces ("a||b") included
    # so the learned max_items never truncates a real item; "" is padding
    # and never enters the vocabulary.
    rows = []
    for value in series.tolist():
        if isinstance(value, (list, tuple, np.ndarray)):
            rows.append([str(v) for v in value])
        elif _is_missing(value):
            rows.append([])
        else:
            rows.append(str(value).split(spec.delimiter))
    return rows


def _column_to_array(spec, series, schema):
    if spec.kind == "categorical":
        return _categorical_values(spec, series)
    if spec.kind == "numeric":
        with np.errstate(over="ignore"):   # beyond float32: inf, i.e. missing
            return pd.to_numeric(series, errors="coerce").to_numpy(
                dtype=np.float32, na_value=np.nan)
    if spec.kind == "multihot":
        if pd.api.types.is_object_dtype(series) and any(
                isinstance(v, (list, tuple, np.ndarray)) for v in series.tolist()):
            rows = _multihot_lists(spec, series)
            return np.array([spec.delimiter.join(r) for r in rows], dtype=object)
        return _string_values(series)
    if spec.kind == "text":
        return _string_values(series)
    if spec.kind == "vector":
        dim = schema.feature_stats(spec.name)["dim"]
        out = np.full((len(series), dim), np.nan, dtype=np.float32)
        for i, value in enumerate(series.tolist()):
            if _is_missing(value):
                continue
            if len(value) != dim:
                raise ValueError(
                    f"Vector column '{spec.name}' row {series.index[i]!r} has "
                    f"length {len(value)}; expected {dim} (the length learned "
                    f"in adapt). Pad/truncate it or set it to None (missing).")
            out[i] = value
        return out
    raise ValueError(f"Unknown feature kind {spec.kind!r}")
