"""The Schema: feature specs + task specs + what `adapt` learned."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd

from mtrec.schema.conversion import FLOAT32_MAX
from mtrec.schema.features import FEATURE_KINDS, not_adapted_error
from mtrec.schema.inference import infer_spec
from mtrec.schema.tasks import TaskSpec, as_task_specs
from mtrec.schema.validation import (
    check_adapt_frame, check_mask, check_tasks_labelled, check_unique_columns,
    out_of_range, warn_degenerate_features)
from mtrec.utils.messages import plain
from mtrec.utils.suggestions import closest

__all__ = ["ENCODED_PREFIX", "Schema"]

# Keys of encoded (preprocessed) feature dicts start with this; raw feature
# names may not, so raw and encoded inputs can never be confused.
ENCODED_PREFIX = "mtrec:"


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
        self.tasks = as_task_specs(tasks)
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
        task_specs = as_task_specs(tasks)
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
            spec = overrides.get(column) or infer_spec(column, df[column])
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
        dtypes that fit the declared kinds, labels and masks valid for the
        task kind), then refuses data a model cannot learn from: no rows, or
        a task without a single label (all NaN or masked out). Features
        that are all missing or constant get a `DataWarning` naming them
        (`mtrec.schema.validation`). Numeric features also learn their
        training range (`min`/`max`), which `out_of_range` reports against
        and `Numeric(clip=True)` clips to, and, with a binned `encoding`,
        their quantile bin edges.

        Returns:
            self, for chaining.

        Raises:
            DataValidationError (a ValueError): naming the column or task.
        """
        if isinstance(df, pd.DataFrame):
            check_adapt_frame(df)
        self.validate(df, labels=True)
        check_tasks_labelled(self, df, "Schema.adapt")
        warn_degenerate_features(self, df)
        stats = {}
        for spec in self.features:
            stats[spec.name] = spec.adapt(df[spec.name])
        for task in self.tasks:
            if task.kind_spec.per_class:
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
            raise not_adapted_error(name)
        return self.stats[name]

    def num_classes(self, task):
        if not task.kind_spec.per_class:
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

    @property
    def scenario_feature(self):
        """The `Categorical` marked `scenario=True`, or None."""
        for spec in self.features:
            if spec.scenario:
                return spec
        return None

    def feature(self, name):
        for spec in self.features:
            if spec.name == name:
                return spec
        raise KeyError(f"No feature named '{name}' in the schema; "
                       f"features: {self.feature_names}.")

    # -- validation ------------------------------------------------------------
    def _validate(self):
        for spec in self.features:
            if type(spec) is not FEATURE_KINDS.get(getattr(spec, "kind", None)):
                raise ValueError(
                    f"Feature {spec!r} is not a feature spec; use one of "
                    f"{[c.__name__ for c in FEATURE_KINDS.values()]}.")
            if not isinstance(spec.name, str) or not spec.name:
                raise ValueError(
                    f"Feature {spec!r} has name {spec.name!r}; the name is "
                    f"the column it reads and must be a non-empty string.")
            spec.validate()
            if spec.name.startswith(ENCODED_PREFIX):
                raise ValueError(
                    f"Feature name '{spec.name}' starts with the reserved "
                    f"prefix '{ENCODED_PREFIX}'; rename the column.")
        names = [spec.name for spec in self.features]
        _reject_duplicates(names, "feature")
        scenarios = [spec.name for spec in self.features if spec.scenario]
        if len(scenarios) > 1:
            raise ValueError(
                f"Features {scenarios} are all marked scenario=True; a schema has at "
                f"most one scenario feature. Keep the flag on one of them.")
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

    def validate(self, df, labels=False):
        """Check that `df` fits the schema; raise ValueError naming the column.

        Every feature column must be present and fit its kind (an integer
        Categorical holds integers; the values that are not are named with
        their rows). With `labels`, every task's label column must hold
        valid labels for its kind and its mask column (if any) 0/1,
        True/False or NaN. Values outside the training range are not an
        error here; see `out_of_range`.

        Args:
            df: pandas DataFrame.
            labels: bool. Also check every task's label and mask columns.

        Raises:
            ValueError (`mtrec.schema.validation.DataValidationError` for
            bad values): naming the column, the rows and the fix.
        """
        if not isinstance(df, pd.DataFrame):
            raise ValueError(
                f"Expected a pandas DataFrame, got {type(df).__name__}.")
        _require_columns(df, self.feature_names, what="feature column")
        check_unique_columns(df.columns, self._columns(labels))
        for spec in self.features:
            spec.check(df[spec.name])
        if labels:
            for task in self.tasks:
                _require_columns(df, [task.label],
                                 what=f"label column of task '{task.name}'")
                _check_label(task, df[task.label])
                if task.mask is not None:
                    _require_columns(df, [task.mask],
                                     what=f"mask column of task '{task.name}'")
                    check_mask(task, df[task.mask])

    def _columns(self, labels):
        """The columns `validate` reads: features, and labels and masks."""
        columns = list(self.feature_names)
        if labels:
            columns += [c for t in self.tasks for c in (t.label, t.mask) if c is not None]
        return columns

    def out_of_range(self, df):
        """Numeric values of `df` outside the range learned at adapt.

        A report, not an error (TFDV's out-of-range anomaly): serving data
        drifts, and a value beyond the training range is still a number.
        To bound what the model sees instead, declare the feature
        `Numeric(name, clip=True)`.

        Returns:
            `{feature: {"below": int, "above": int, "min": float, "max": float}}`
            for the Numeric features with values outside `[min, max]`
            (empty when none; schemas adapted before ranges were learned
            report nothing).
        """
        return out_of_range(self, df)

    # -- serialisation ---------------------------------------------------------
    def to_dict(self):
        return {
            "features": [s.to_dict() for s in self.features],
            "tasks": [t.to_dict() for t in self.tasks],
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
        """A schema from `to_json`'s text, or from the file at that path.

        Raises:
            ValueError: the text or file is not a schema (truncated or
                malformed JSON, a feature or task missing a field), naming
                the file and what is wrong.
        """
        text, source = str(text_or_path), "schema JSON"
        if not text.lstrip().startswith("{"):
            source = text
            with open(text, encoding="utf-8") as f:
                text = f.read()
        try:
            config = json.loads(text)
        except ValueError as error:
            raise ValueError(f"{source} is not valid JSON (corrupt or truncated: "
                             f"{error}); write it again with Schema.to_json, or "
                             f"re-train.") from None
        try:
            return cls.from_dict(config)
        except (KeyError, TypeError, AttributeError) as error:
            raise ValueError(f"{source} is not an mtrec schema ({type(error).__name__}: "
                             f"{error}); it needs 'features' and 'tasks' as "
                             f"Schema.to_json writes them.") from None

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
        return {spec.name: spec.to_array(df[spec.name], self.stats.get(spec.name))
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
            match = closest(column, [str(c) for c in df.columns])
            if match is not None:
                hints.append(f"'{column}' -> did you mean '{match}'?")
        raise ValueError(
            f"Missing {what}(s) {missing} in the data (it has "
            f"{len(df.columns)} columns: {list(df.columns)[:20]}"
            f"{'...' if len(df.columns) > 20 else ''}). "
            f"{' '.join(hints)} Add the column(s) or remove them from the schema.")


def _check_label(task, series):
    values = pd.to_numeric(series, errors="coerce")
    bad = series[values.isna() & series.notna()]
    if len(bad):
        raise ValueError(
            f"Label column '{task.label}' of task '{task.name}' has "
            f"non-numeric values (e.g. {plain(bad.iloc[0])!r}); labels must be "
            f"numbers (NaN marks a missing label).")
    observed = values.dropna()
    # Labels travel as float32: beyond its range a label becomes inf.
    infinite = observed[~(observed.astype("float64").abs() <= FLOAT32_MAX)]
    if len(infinite):
        raise ValueError(
            f"Label column '{task.label}' of task '{task.name}' has infinite "
            f"values (e.g. {plain(infinite.iloc[0])!r}); labels must be "
            f"finite float32 numbers (|x| <= {FLOAT32_MAX:.3g}). Replace "
            f"them with NaN (a missing label), clip or rescale them.")
    task.kind_spec.check_labels(task, observed)
