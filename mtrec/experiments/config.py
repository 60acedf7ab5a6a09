"""Run configs: one YAML file says what to train, how, and where to write.

```yaml
dataset: {name: census_income, args: {group: 1}}
# or your own files (mtrec.data.user_files), relative to this file:
#   dataset:
#     files: {train: "data/train-*.parquet", valid: data/valid.parquet, test: data/test.parquet}
#     tasks: {click: binary, spend: {kind: regression, mask: click}}
#   or one table and a rule: files: data/all.csv, split: {valid: 0.15, test: 0.15, seed: 0}
#   (also {time_column: ts, valid_from: 2024-06-01, test_from: 2024-06-15} or {column: split})
schema:                                  # optional: overrides of Schema.infer
  exclude: []
  defaults: {categorical: {embedding_dim: 32}}   # per kind: fields every feature of it takes unless it sets them
  features: {age: {kind: categorical, embedding_dim: 8}}
model: {name: MMoE, args: {num_experts: 8, expert_units: [16], tower_units: [8]}}
training:
  epochs: 10
  batch_size: 1024
  optimizer: adam
  learning_rate: 0.001
  loss_weighting: fixed                  # or {name: gradnorm, alpha: 1.5}
  loss_weights: {}
  early_stopping: {monitor: mean, patience: 2}
  seed: 1
  checkpoint_every_steps: null           # also checkpoint every N steps
  steps_per_execution: null              # null: up to 16 training steps per call, 1 to evaluate; or N (Keras')
  strategy: none                         # mirrored | multi_worker (TF_CONFIG)
  tensorboard: true                      # logs/ in the run folder
evaluation: {group_column: null}
output_dir: runs/census_income/mmoe      # default: runs/<dataset>-<model>-<time>
tune: {...}                              # mtrec tune's search space (mtrec.tuning.space);
                                         # not part of the run, left out by load_config
```

`load_config(path, overrides)` validates everything before anything runs:
unknown or misspelt keys (with the nearest valid key suggested), keys given
twice, the model and dataset names, their arguments against the model
class's and the dataset function's signatures (and the model arguments'
types and ranges), task names in loss weights, and early-stopping monitors
against the keys the validation logs will have. All problems are reported
together in one `ConfigError`. `dataset_file_problems(config)` (what
`mtrec validate` adds) checks that the files exist and have the columns.
"""

from __future__ import annotations

import dataclasses
import datetime
import inspect
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import yaml
from pydantic import (BaseModel, ConfigDict, Discriminator, Field, PrivateAttr, Tag,
                      ValidationError, create_model, field_validator, model_serializer,
                      model_validator)

from mtrec.schema import FEATURE_KINDS, Schema, TaskSpec
from mtrec.utils.suggestions import closest as _closest

__all__ = ["ConfigError", "EXTRA_SECTIONS", "RunConfig", "apply_overrides",
           "check_task_references", "dataset_file_problems", "load_config",
           "load_config_sections", "model_argument_problems", "monitor_keys",
           "parse_config", "set_values", "task_reference_problems", "OPTIMIZERS"]

# Optimizers a config may name (keras.optimizers classes).
OPTIMIZERS = {"adam": "Adam", "adamw": "AdamW", "nadam": "Nadam", "adamax": "Adamax",
              "rmsprop": "RMSprop", "sgd": "SGD", "adagrad": "Adagrad"}


class ConfigError(ValueError):
    """A run config is invalid; `problems` lists every problem found."""

    def __init__(self, problems, source="config"):
        self.problems = list(problems)
        self.source = str(source)
        if len(self.problems) == 1:
            message = f"{self.source}: {self.problems[0]}"
        else:
            message = (f"{self.source}: {len(self.problems)} problems: "
                       + "; ".join(self.problems))
        super().__init__(message)


# --------------------------------------------------------------------------
# The config models
# --------------------------------------------------------------------------
class _Strict(BaseModel):
    # Unknown keys are errors; no silent coercion ("8" is not 8).
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)


def _by_shape(mapping_tag):
    """A pydantic discriminator picking a union member by the YAML value's
    shape (mapping, list or scalar), so an error is reported once, against
    the member the user meant, not once per member."""
    def shape(value):
        if isinstance(value, (dict, BaseModel)):
            return mapping_tag
        return "list" if isinstance(value, list) else "scalar"
    return Discriminator(shape)


#: A path, glob pattern or folder, or a list of them.
Paths = Annotated[Union[Annotated[str, Tag("scalar")], Annotated[list[str], Tag("list")]],
                  _by_shape("list")]


class SplitFilesConfig(_Strict):
    """`dataset.files` per split; a missing valid/test split is cut from the
    train files by `dataset.split`."""

    train: Paths
    valid: Optional[Paths] = None
    test: Optional[Paths] = None


class SplitConfig(_Strict):
    """`dataset.split`: how one table (or the train files) is cut into
    splits; see `mtrec.data.user_files` for the three kinds of rule."""

    valid: Optional[float] = Field(default=None, gt=0, lt=1)
    test: Optional[float] = Field(default=None, gt=0, lt=1)
    seed: int = Field(default=0, ge=0)
    time_column: Optional[str] = None
    valid_from: Optional[Union[datetime.datetime, datetime.date, int, float, str]] = None
    test_from: Optional[Union[datetime.datetime, datetime.date, int, float, str]] = None
    column: Optional[str] = None

    @model_validator(mode="after")
    def _one_rule(self):
        fractions = self.valid is not None or self.test is not None
        cut_offs = self.valid_from is not None or self.test_from is not None
        if self.column is not None and (fractions or cut_offs or self.time_column):
            raise ValueError("split.column names each row's split, so it takes no "
                             "fractions, time_column or cut-offs; keep one rule")
        if cut_offs and self.time_column is None:
            raise ValueError("valid_from / test_from are cut-offs on a time column; "
                             "add time_column")
        if cut_offs and fractions:
            raise ValueError("give cut-offs (valid_from / test_from) or fractions "
                             "(valid / test), not both")
        if self.column is None and not fractions and not cut_offs:
            raise ValueError("a split rule needs fractions (e.g. {valid: 0.1, test: "
                             "0.1, seed: 0}), a time_column with cut-offs or "
                             "fractions, or a column naming each row's split")
        if (self.valid or 0) + (self.test or 0) >= 1:
            raise ValueError("valid + test must be below 1, leaving rows to train on")
        return self

    def rule(self):
        """The `mtrec.data.user_files.SplitRule`."""
        from mtrec.data.user_files import SplitRule
        return SplitRule(**self.model_dump())


class StreamConfig(_Strict):
    """`dataset.stream`: read the files as streams instead of loading them
    (`mtrec.data.streamed_splits`); `stream: true` takes these defaults."""

    chunk_rows: int = Field(default=100_000, ge=1)
    shuffle_buffer: int = Field(default=100_000, ge=0)
    sample_rows: int = Field(default=100_000, ge=1)


class TaskConfig(_Strict):
    """A task of `dataset.tasks` given as a mapping (`mtrec.TaskSpec`'s
    fields); a plain string is its kind."""

    kind: str = "binary"
    label: Optional[str] = None
    num_classes: Optional[int] = Field(default=None, ge=2)
    mask: Optional[str] = None
    # a YAML list [low, high] (regression only; TaskSpec checks it)
    output_range: Optional[list[float]] = Field(default=None, min_length=2, max_length=2)

    @model_validator(mode="after")
    def _range_fits_kind(self):
        from mtrec.schema.task_kinds import TASK_KIND_TABLE
        if self.output_range is None or self.kind not in TASK_KIND_TABLE:
            return self
        if not TASK_KIND_TABLE[self.kind].bounded_output:
            raise ValueError(f"output_range bounds a regression head only; a {self.kind} "
                             f"task's outputs are probabilities already. Drop "
                             f"output_range or set kind: regression")
        low, high = self.output_range
        if not low < high:
            raise ValueError(f"output_range is [low, high] with low < high, got "
                             f"[{low}, {high}]")
        return self


class DatasetConfig(_Strict):
    """`dataset`: a registered dataset (`name`, `args`) or the user's own
    CSV / Parquet / TFRecord files (`files`, `tasks`, optionally `split`,
    `format`, `read_options`)."""

    name: Optional[str] = None
    args: dict[str, Any] = Field(default_factory=dict)
    files: Optional[Annotated[Union[Annotated[str, Tag("scalar")],
                                    Annotated[list[str], Tag("list")],
                                    Annotated[SplitFilesConfig, Tag("splits")]],
                              _by_shape("splits")]] = None
    split: Optional[SplitConfig] = None
    tasks: Optional[dict[str, Annotated[Union[Annotated[str, Tag("scalar")],
                                              Annotated[TaskConfig, Tag("task")]],
                                        _by_shape("task")]]] = None
    format: Optional[Literal["csv", "parquet", "tfrecord"]] = None
    read_options: dict[str, Any] = Field(default_factory=dict)
    description: Optional[str] = None
    stream: Optional[Union[bool, StreamConfig]] = None

    @field_validator("stream", mode="after")
    @classmethod
    def _stream_defaults(cls, value):
        if value is True:
            return StreamConfig()
        return None if value is False else value

    @model_validator(mode="after")
    def _name_or_files(self):
        if (self.name is None) == (self.files is None):
            raise ValueError(
                "give either name (a registered dataset, with args) or files (your "
                "own CSV/Parquet files, with tasks), not both and not neither")
        if self.name is not None:
            extra = [key for key in ("split", "tasks", "format", "description", "stream")
                     if getattr(self, key) is not None]
            if self.read_options:
                extra.append("read_options")
            if extra:
                raise ValueError(f"{', '.join(extra)} apply to dataset.files only; a "
                                 f"registered dataset takes args")
        else:
            if self.args:
                raise ValueError("args apply to a registered dataset (name); for "
                                 "files, use split / format / read_options")
            if not self.tasks:
                raise ValueError("files need tasks: the label columns to predict, "
                                 "e.g. tasks: {click: binary, spend: regression}")
        if self.stream is not None:
            given = self.split_files() if self.files is not None else {}
            if self.split is not None or set(given) != {"train", "valid", "test"}:
                raise ValueError(
                    "stream reads train, valid and test as files, each in one pass; "
                    "give all three under files: {train: ..., valid: ..., test: ...} "
                    "and no split rule (cut one table into split files first, e.g. "
                    "with mtrec data shard or pandas)")
        return self

    @property
    def label(self):
        """A short name for logs and run folders: the registered name, or
        the (first) train file's stem."""
        if self.name is not None:
            return self.name
        first = self.split_files()["train"]
        first = first[0] if isinstance(first, list) else first
        stem = Path(str(first)).name.split(".")[0]
        return "".join(c for c in stem if c.isalnum() or c in "-_").strip("-_") or "files"

    def split_files(self):
        """`{split: path, glob or list}` of the files given (train at least)."""
        if isinstance(self.files, SplitFilesConfig):
            return {k: v for k, v in self.files.model_dump().items() if v is not None}
        return {"train": self.files}

    def task_specs(self):
        """The files' tasks as `mtrec.TaskSpec`s."""
        return [TaskSpec(name, kind=task) if isinstance(task, str)
                else TaskSpec(name, **task.model_dump())
                for name, task in (self.tasks or {}).items()]

    def task_names(self):
        """Task names, when known without reading data (else None)."""
        if self.tasks is not None:
            return list(self.tasks)
        from mtrec.data import registry
        return registry.dataset_task_names(self.name, self.args)

    def load(self):
        """The `DatasetSplits` this section names."""
        from mtrec.data import registry, user_files
        if self.name is not None:
            return registry.load_dataset(self.name, **self.args)
        files = (self.split_files() if isinstance(self.files, SplitFilesConfig)
                 else self.files)
        if self.stream is not None:
            return self._streamed(files)
        return user_files.load_files(
            files, tasks=self.task_specs(),
            split=self.split.rule() if self.split is not None else None,
            format=self.format, read_options=dict(self.read_options),
            description=self.description)

    def _streamed(self, files):
        from mtrec.data import shards
        from mtrec.data.streamed_splits import StreamedSplits

        expanded = {split: shards.expand_shards(paths, f"dataset.files.{split}")
                    for split, paths in files.items()}
        formats = {split: self.format or shards.file_format(paths)
                   for split, paths in expanded.items()}
        if len(set(formats.values())) > 1:
            raise ValueError(f"dataset.files: the splits are in different formats "
                             f"({formats}); a stream reads one format (set format).")
        description = self.description or "; ".join(
            f"{split}: {len(paths)} file(s) streamed" for split, paths in expanded.items())
        return StreamedSplits(expanded, tasks=self.task_specs(),
                              format=formats["train"], read_options=dict(self.read_options),
                              description=description, **self.stream.model_dump())

    def with_paths_under(self, folder):
        """A copy whose relative file paths are made absolute under `folder`
        (a config's files are relative to the config file's folder)."""
        if self.files is None:
            return self

        def absolute(paths):
            if isinstance(paths, list):
                return [absolute(p) for p in paths]
            path = Path(paths).expanduser()
            return str(path if path.is_absolute() else (Path(folder) / path).absolute())

        if isinstance(self.files, SplitFilesConfig):
            files = SplitFilesConfig(**{k: absolute(v) if v is not None else None
                                        for k, v in self.files.model_dump().items()})
        else:
            files = absolute(self.files)
        return self.model_copy(update={"files": files})


def _feature_override_model(spec_cls):
    """A pydantic model of a feature spec's fields (less `name`, the key)."""
    hints = typing.get_type_hints(spec_cls)
    fields = {"kind": (Literal[spec_cls.kind], ...)}
    for field in dataclasses.fields(spec_cls):
        if field.name == "name":
            continue
        fields[field.name] = (hints[field.name], field.default)
    return create_model(f"{spec_cls.__name__}Override", __base__=_Strict, **fields)


FEATURE_OVERRIDES = {kind: _feature_override_model(cls)
                     for kind, cls in FEATURE_KINDS.items()}
FeatureOverride = Annotated[Union[tuple(FEATURE_OVERRIDES.values())],
                            Field(discriminator="kind")]


#: Fields `schema.defaults` may not set: they name or place one column only.
_PER_COLUMN_FIELDS = {"name", "kind", "dtype", "scenario"}


class SchemaConfig(_Strict):
    """`schema`: columns to leave out, per-kind defaults, per-column specs.

    ```yaml
    schema:
      exclude: [user_id]
      defaults:                 # fields every feature of a kind takes
        categorical: {embedding_dim: 32}
        numeric: {encoding: periodic, frequency_sigma: 0.3}
      features:                 # per column; the defaults fill the fields it leaves unset
        age: {kind: numeric, encoding: piecewise_linear}
    ```

    `defaults` sets the fields it names on every inferred or
    loader-declared feature of that kind, and on the entries of
    `features` of that kind that do not set them (`capital_gains: {kind:
    numeric, log1p: true}` takes the numeric defaults too). Parsing writes
    the defaults into those entries; the written-out config leaves them
    out of the entries again (they stay in `defaults`), so it trains the
    same schema when read back, and a later change to `defaults` (a tune
    key such as `schema.defaults.numeric.frequency_sigma`) reaches them.
    """

    exclude: list[str] = Field(default_factory=list)
    defaults: dict[str, dict[str, Any]] = Field(default_factory=dict)
    features: dict[str, FeatureOverride] = Field(default_factory=dict)

    @field_validator("defaults")
    @classmethod
    def _check_defaults(cls, value):
        problems = []
        for kind, fields in value.items():
            if kind not in FEATURE_OVERRIDES:
                problems.append(f"'{kind}' is not a feature kind"
                                f"{_suggestion(kind, FEATURE_OVERRIDES, 'kinds')}")
                continue
            per_column = sorted(set(fields) & _PER_COLUMN_FIELDS)
            if per_column:
                problems.append(f"{kind}: {per_column} describe one column; set them "
                                f"under schema.features.<column> instead")
                continue
            try:
                FEATURE_OVERRIDES[kind](kind=kind, **fields)
            except ValidationError as error:
                for item in error.errors():
                    field = ".".join(str(part) for part in item["loc"])
                    valid = [f for f in FEATURE_OVERRIDES[kind].model_fields
                             if f not in _PER_COLUMN_FIELDS]
                    hint = (_suggestion(field, valid, "fields")
                            if item["type"] == "extra_forbidden" else "")
                    problems.append(f"{kind}.{field}: {item['msg']}{hint}")
        if problems:
            raise ValueError("; ".join(problems))
        return value

    # {column: the fields its entry set itself}. The dump leaves the others
    # that `defaults` fill out of the entry, so the written config reads them
    # from `defaults` again and an override of `schema.defaults.<kind>.<field>`
    # (`--set`, a tune key) reaches these columns instead of meeting a copy
    # pinned in the entry; `as_written` keeps the entry's own fields only.
    _own_fields: dict[str, frozenset[str]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _defaults_fill_the_named_features(self):
        for column, entry in self.features.items():
            self._own_fields[column] = frozenset(entry.model_fields_set | {"kind"})
            unset = {field: value for field, value in self.defaults.get(entry.kind, {}).items()
                     if field not in entry.model_fields_set}
            if unset:
                self.features[column] = entry.model_copy(update=unset)
        return self

    def __eq__(self, other):
        # The same schema, however its entries were written (the private
        # bookkeeping above differs between a config and its re-read dump).
        if not isinstance(other, SchemaConfig):
            return NotImplemented
        return (self.exclude, self.defaults, self.features) == \
            (other.exclude, other.defaults, other.features)

    @model_serializer(mode="wrap")
    def _dump_entries(self, handler, info):
        """The entries without the fields `defaults` filled in; with
        `context={"as_written": True}`, with only the fields they set."""
        data = handler(self)
        as_written = (info.context or {}).get("as_written", False)
        for column, entry in data.get("features", {}).items():
            own = self._own_fields.get(column)
            if own is None:
                continue
            if as_written:
                data["features"][column] = {k: v for k, v in entry.items() if k in own}
            else:
                filled = set(self.defaults.get(entry["kind"], {})) - own
                data["features"][column] = {k: v for k, v in entry.items()
                                            if k not in filled}
        return data

    def feature_specs(self):
        """`{column: spec}` of the overrides, for `Schema.infer(**overrides)`."""
        return {column: FEATURE_KINDS[o.kind](name=column, **o.model_dump(exclude={"kind"}))
                for column, o in self.features.items()}

    def with_defaults(self, specs):
        """`specs` (a list of feature specs) with `defaults` applied to each
        spec of a defaulted kind that `features` does not name (the named
        ones have them already).

        Raises:
            ValueError: naming the column whose spec refuses a default.
        """
        out = []
        for spec in specs:
            fields = self.defaults.get(spec.kind)
            if fields and spec.name not in self.features:
                try:
                    spec = dataclasses.replace(spec, **fields)
                except (TypeError, ValueError) as error:
                    raise ValueError(f"schema.defaults.{spec.kind} does not suit column "
                                     f"'{spec.name}': {error}; name that column under "
                                     f"schema.features to give it its own spec.") from None
            out.append(spec)
        return out


class ModelConfig(_Strict):
    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class EarlyStoppingConfig(_Strict):
    monitor: str = "mean"
    patience: int = Field(default=2, ge=0)


class LearningRateScheduleConfig(_Strict):
    """`training.learning_rate_schedule`: a name, or a mapping with the
    name and its settings (see `mtrec.training.schedules.learning_rate`)."""
    name: Literal["constant", "cosine"] = "constant"  # mtrec.training.schedules.SCHEDULES
    # Linear warm-up, in epochs (fractions allowed); cosine only.
    warmup_epochs: float = Field(default=0.0, ge=0)
    # The rate at the last epoch's end, as a fraction of learning_rate.
    final_fraction: float = Field(default=0.0, ge=0, le=1)

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value):
        return {"name": value} if isinstance(value, str) else value

    def is_default(self):
        return self == LearningRateScheduleConfig()


class TrainingConfig(_Strict):
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=1024, ge=1)
    optimizer: str = "adam"
    learning_rate: float = Field(default=0.001, gt=0)
    learning_rate_schedule: LearningRateScheduleConfig = Field(
        default_factory=LearningRateScheduleConfig)
    # Decoupled weight decay (the optimizer's `weight_decay`); None: off.
    weight_decay: Optional[float] = Field(default=None, ge=0)
    loss_weighting: Union[str, dict[str, Any]] = "fixed"
    loss_weights: dict[str, float] = Field(default_factory=dict)
    early_stopping: Optional[EarlyStoppingConfig] = Field(
        default_factory=EarlyStoppingConfig)
    seed: int = Field(default=0, ge=0)
    # Also checkpoint every this many steps (always at each epoch end).
    checkpoint_every_steps: Optional[int] = Field(default=None, ge=1)
    # Keras' steps_per_execution: this many steps per call of the compiled
    # step in training, validation and prediction (fewer Python round trips;
    # callbacks see every N-th step; the runner takes the largest divisor of
    # the epoch's steps up to N). null (default): the model's "auto", up to
    # 16 training steps per call dividing the epoch and
    # checkpoint_every_steps, validation and prediction one batch per call
    # (faster there), 1 under a distribution strategy
    # (`mtrec.training.steps_per_execution`).
    steps_per_execution: Optional[int] = Field(default=None, ge=1)
    # none | mirrored | multi_worker (TF_CONFIG); batch_size is per replica.
    strategy: Literal["none", "mirrored", "multi_worker"] = "none"
    # Keras' TensorBoard callback, logs in the run folder's logs/ (watch
    # them while training in OUT.work/logs/).
    tensorboard: bool = True

    @model_validator(mode="after")
    def _warmup_within_run(self):
        warmup = self.learning_rate_schedule.warmup_epochs
        if warmup and self.learning_rate_schedule.name != "cosine":
            raise ValueError(f"training.learning_rate_schedule.warmup_epochs applies to the "
                             f"cosine schedule only; set name: cosine or remove warmup_epochs.")
        if warmup >= self.epochs:
            raise ValueError(f"training.learning_rate_schedule.warmup_epochs is {warmup}, "
                             f"not less than training.epochs ({self.epochs}); the warm-up "
                             f"must end before the run does.")
        return self

    def loss_weighting_argument(self):
        """What `model.compile(loss_weighting=...)` takes."""
        return (dict(self.loss_weighting) if isinstance(self.loss_weighting, dict)
                else self.loss_weighting)


class EvaluationConfig(_Strict):
    group_column: Optional[str] = None
    batch_size: int = Field(default=4096, ge=1)


class RunConfig(_Strict):
    """A validated run config (see the module docstring for the YAML)."""

    dataset: DatasetConfig
    schema_: SchemaConfig = Field(default_factory=SchemaConfig, alias="schema")
    model: ModelConfig
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    # None: a folder of its own per run, runs/<dataset>-<model>-<timestamp>.
    output_dir: Optional[str] = None

    def to_dict(self, as_written=False):
        """The resolved config (defaults filled in), as plain YAML/JSON data.

        With `as_written`, each `schema.features` entry holds only the
        fields its YAML set: the base that `mtrec tune` sets a trial's values
        on, so a `schema.defaults.<kind>.<field>` key reaches the named
        columns that leave the field unset (the resolved entries pin the
        spec's default value of every field).
        """
        data = self.model_dump(mode="json", by_alias=True,
                               context={"as_written": as_written})
        # Only the dataset keys that apply: {name, args} or files and theirs.
        data["dataset"] = {key: value for key, value in data["dataset"].items()
                           if value is not None and (value != {} or key == "args")
                           and not (key == "args" and self.dataset.files is not None)}
        return data

    def to_yaml(self, path=None):
        text = yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text


# --------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------
def load_config(path, overrides=None):
    """Read, override and validate a run config YAML.

    A top-level `tune` section (`mtrec tune`'s search space) is not part of
    the run: it is left out here, and `mtrec.tuning.load_tune_config` reads
    it (`load_config_sections` returns both).

    Args:
        path: str or path of the YAML file.
        overrides: list of `"dotted.key=value"` strings (values parsed as
            YAML: `training.epochs=2`, `model.args.expert_units=[32]`).

    Returns:
        `RunConfig`.

    Raises:
        ConfigError: listing every problem, each with its key path.
    """
    return load_config_sections(path, overrides)[0]


#: Top-level sections of a config file that are not the run's own: they
#: belong to the command that reads them (`tune`: `mtrec tune`).
EXTRA_SECTIONS = ("tune",)


def load_config_sections(path, overrides=None):
    """`load_config`, also returning the file's `EXTRA_SECTIONS`.

    Overrides apply to the whole file first, so `--set tune.trials=5`
    reaches the tune section.

    Returns:
        `(RunConfig, {section: raw value})`, the sections the file has.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError([f"the config file does not exist"
                           f"{' (it is a directory)' if path.is_dir() else ''}."],
                          source=path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except UnicodeDecodeError as error:
        raise ConfigError([f"not UTF-8 text (byte {error.start}: {error.reason}); "
                           f"save the config as UTF-8."], source=path) from None
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError([f"not valid YAML{line}: {problem}."], source=path) from None
    if data is None:
        raise ConfigError(["the config file is empty."], source=path)
    extra = {}
    if isinstance(data, dict):
        data = apply_overrides(data, overrides or [], source=path)
        overrides = None
        extra = {name: data.pop(name) for name in EXTRA_SECTIONS if name in data}
    config = parse_config(data, overrides=overrides, source=path)
    # Files are relative to the config's folder; the run folder's copy of
    # the config holds them absolute, so `mtrec evaluate RUN` finds them.
    config = config.model_copy(update={"dataset": config.dataset.with_paths_under(
        path.resolve().parent)})
    return config, extra


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (plain
    YAML keeps the last value silently)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)
            seen = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=deep)
                try:
                    first = seen.setdefault(key, key_node)
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                if first is not key_node:
                    raise yaml.constructor.ConstructorError(
                        None, None,
                        f"duplicate key '{key}' (first given at line "
                        f"{first.start_mark.line + 1}); keep one",
                        key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


def parse_config(data, overrides=None, source="config"):
    """Validate a config mapping (as read from YAML); see `load_config`."""
    if not isinstance(data, dict):
        raise ConfigError([f"a config is a mapping of sections (dataset, model, ...), "
                           f"got {type(data).__name__}."], source=source)
    data = apply_overrides(data, overrides or [], source=source)
    problems, bad_paths = [], []
    try:
        config = RunConfig.model_validate(data)
    except ValidationError as error:
        config = None
        for item in error.errors():
            path, message = _describe_pydantic_error(item)
            bad_paths.append(path)
            problems.append(message)
    problems += _semantic_problems(data, bad_paths)
    if problems:
        raise ConfigError(_unique(problems), source=source)
    return config


def apply_overrides(data, overrides, source="config"):
    """A copy of `data` with `"a.b.c=value"` overrides applied (values as YAML)."""
    data = _deep_copy(data)
    if isinstance(overrides, str):
        overrides = [overrides]
    for override in overrides:
        key, sep, text = str(override).partition("=")
        parts = key.strip().split(".")
        if not sep or not all(parts):
            raise ConfigError([f"override '{override}' is not of the form "
                               f"dotted.key=value, e.g. training.epochs=2."],
                              source=source)
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        _set_in(data, parts, value, f"override '{override}'", source)
    return data


def set_values(data, values, source="config"):
    """A copy of `data` with `{dotted key: value}` set, as `--set` sets
    them (missing mappings on the way are created), the values given as
    data rather than YAML text (what `mtrec tune` applies per trial)."""
    data = _deep_copy(data)
    for key, value in values.items():
        _set_in(data, str(key).split("."), _deep_copy(value), f"key '{key}'", source)
    return data


def _set_in(data, parts, value, what, source):
    node = data
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[:depth + 1])
            raise ConfigError([f"{what}: {where} is {child!r}, not "
                               f"a mapping, so it has no key '{parts[depth + 1]}'."],
                              source=source)
        node = child
    node[parts[-1]] = value


# --------------------------------------------------------------------------
# Turning pydantic's errors into sentences that say how to fix them
# --------------------------------------------------------------------------
def _describe_pydantic_error(item):
    """`(path parts, message)` for one pydantic error dict."""
    loc = item["loc"]
    kind = item["type"]
    # Walk the models along the location: which keys are valid there, and
    # which parts of the location are union tags (not keys of the YAML).
    node, path = RunConfig, []
    for part in loc[:-1] if kind == "extra_forbidden" else loc:
        node, is_tag = _step(node, part)
        if not is_tag:
            path.append(str(part))
    where = ".".join(path)
    if kind == "extra_forbidden":
        key = str(loc[-1])
        valid = _keys_of(node)
        place = f"in {where}" if where else "at the top level"
        return path + [key], (f"Unknown key '{key}' {place}"
                              f"{_suggestion(key, valid, valid_word='valid keys')}")
    if kind == "missing":
        parent = ".".join(path[:-1])
        place = f"in {parent}" if parent else "at the top level"
        return path, f"Missing required key '{path[-1]}' {place}."
    if kind == "union_tag_invalid":
        tag = item.get("ctx", {}).get("tag")
        kinds = list(FEATURE_KINDS)
        return path, (f"Unknown feature kind '{tag}' for {where}"
                      f"{_suggestion(str(tag), kinds, valid_word='kinds')}")
    if kind == "union_tag_not_found":
        return path, (f"{where} needs a 'kind': one of {list(FEATURE_KINDS)}.")
    message = item["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    return path, f"{where or 'config'}: {message} (got {_short(item.get('input'))})."


def _unwrap(tp):
    """Strip Annotated and Optional."""
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
            continue
        if origin in (Union, types.UnionType):
            members = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(members) == 1:
                tp = members[0]
                continue
        return tp


def _step(tp, part):
    """The type found at key `part` of `tp`, and whether `part` is a union tag."""
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, field in tp.model_fields.items():
            if (field.alias or name) == part or name == part:
                return field.annotation, False
        return None, False
    origin = typing.get_origin(tp)
    if origin is dict:
        return typing.get_args(tp)[1], False
    if origin is list:
        return typing.get_args(tp)[0], False
    if origin in (Union, types.UnionType):
        for member in typing.get_args(tp):
            if typing.get_origin(member) is Annotated and any(
                    isinstance(m, Tag) and m.tag == part
                    for m in member.__metadata__):
                return typing.get_args(member)[0], True
            member = _unwrap(member)
            if isinstance(member, type) and issubclass(member, BaseModel):
                kind = member.model_fields.get("kind")
                if kind is not None and typing.get_args(kind.annotation) == (part,):
                    return member, True
        return None, True
    return None, False


def _keys_of(tp):
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [field.alias or name for name, field in tp.model_fields.items()]
    return []


def _suggestion(word, options, valid_word="valid"):
    """'; did you mean 'x'?' or '; valid keys: a, b.'"""
    options = [str(o) for o in options]
    close = _closest(word, options)
    if close is not None:
        return f"; did you mean '{close}'?"
    return f"; {valid_word}: {', '.join(options)}." if options else "."


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --------------------------------------------------------------------------
# Checks that need the registries: model, dataset, loss weighting, ...
# --------------------------------------------------------------------------
def _semantic_problems(data, bad_paths):
    """Problems pydantic cannot see; parts already reported are skipped."""

    def ok(*path):
        # Nothing at, above or below `path` failed the structural checks.
        path = [str(p) for p in path]
        return not any(b[:len(path)] == path or path[:len(b)] == b for b in bad_paths)

    def section(name):
        value = data.get(name)
        return value if isinstance(value, dict) else {}

    problems = []
    dataset, model = section("dataset"), section("model")
    training, schema = section("training"), section("schema")

    # dataset: registered name, accepted arguments; its tasks if it says.
    task_names = task_kinds = None
    tasks = dataset.get("tasks")
    if ok("dataset", "tasks") and isinstance(tasks, dict) and tasks:
        task_names = list(tasks)
        task_kinds = {name: task if isinstance(task, str) else task.get("kind", "binary")
                      for name, task in tasks.items()}
        problems += _task_kind_problems(task_kinds)
    if ok("dataset", "name") and dataset.get("name") is not None:
        from mtrec.data import registry
        name = dataset["name"]
        if name not in registry.DATASETS:
            problems.append(f"Unknown dataset '{name}' in dataset.name"
                            f"{_suggestion(name, registry.dataset_names(), 'registered')}")
        else:
            accepted = registry.dataset_arguments(name)
            args = dataset.get("args") or {}
            if ok("dataset", "args"):
                problems += _argument_problems(args, accepted, f"dataset '{name}'",
                                               "dataset.args")
                try:
                    task_names = registry.dataset_task_names(name, args)
                    task_kinds = registry.dataset_task_kinds(name, args)
                except (TypeError, ValueError) as error:
                    problems.append(f"dataset.args: {error}")

    # model: a registered class, arguments its __init__ takes.
    if ok("model", "name") and "name" in model:
        from mtrec.models import ALL_MODELS as MODELS
        name = model["name"]
        if name not in MODELS:
            problems.append(f"Unknown model '{name}' in model.name"
                            f"{_suggestion(name, list(MODELS), 'models')}")
        elif ok("model", "args"):
            accepted = _model_arguments(MODELS[name])
            problems += _argument_problems(model.get("args") or {}, accepted,
                                           f"model {name}", "model.args")
            problems += model_argument_problems(model.get("args") or {}, accepted)

    # training: optimizer, loss weighting and its arguments, weights, monitor.
    if ok("training", "optimizer") and "optimizer" in training:
        name = training["optimizer"]
        if name not in OPTIMIZERS:
            problems.append(f"Unknown optimizer '{name}' in training.optimizer"
                            f"{_suggestion(name, list(OPTIMIZERS), 'optimizers')}")
    weighting = training.get("loss_weighting", "fixed")
    weighting_name = None
    if ok("training", "loss_weighting"):
        problems_lw, weighting_name = _loss_weighting_problems(weighting)
        problems += problems_lw
    weights = training.get("loss_weights") or {}
    if ok("training", "loss_weights") and weights:
        if weighting_name not in (None, "fixed"):
            problems.append(f"training.loss_weights applies to loss_weighting 'fixed' "
                            f"only, but loss_weighting is '{weighting_name}'; remove "
                            f"loss_weights or use loss_weighting: fixed.")
        for task, weight in weights.items():
            if weight < 0:
                problems.append(f"training.loss_weights.{task} is {weight}; weights "
                                f"must be >= 0.")
    stopping = training.get("early_stopping")
    monitor = None
    if ok("training", "early_stopping") and isinstance(stopping, dict):
        monitor = stopping.get("monitor", "mean")
    if task_names is not None:  # else checked by the runner, once it knows them
        problems += task_reference_problems(
            weights if ok("training", "loss_weights") else {}, monitor, task_names,
            task_kinds)

    # schema defaults: each kind's fields valid on a spec of that kind.
    if ok("schema", "defaults"):
        for kind, fields in (schema.get("defaults") or {}).items():
            try:
                Schema([FEATURE_KINDS[kind](name="<default>", **fields)],
                       tasks=[TaskSpec("__config_check__")])
            except ValueError as error:
                problems.append(f"schema.defaults.{kind}: {error}")
    # schema overrides: each spec valid, not also excluded, not a label.
    features = schema.get("features") or {}
    exclude = schema.get("exclude") or []
    for column, override in features.items():
        if ok("schema", "features", column):
            spec = FEATURE_KINDS[override["kind"]](
                name=column, **{k: v for k, v in override.items() if k != "kind"})
            try:
                Schema([spec], tasks=[TaskSpec("__config_check__")])
            except ValueError as error:
                problems.append(f"schema.features.{column}: {error}")
        if ok("schema", "exclude") and column in exclude:
            problems.append(f"schema.features.{column}: column '{column}' is both "
                            f"overridden and listed in schema.exclude; keep one.")
        if task_names is not None and column in task_names:
            problems.append(f"schema.features.{column}: '{column}' is a task label "
                            f"of this dataset and cannot be a feature.")
    return problems


def _task_kind_problems(task_kinds):
    from mtrec.schema.task_kinds import TASK_KINDS
    return [f"dataset.tasks.{name}: unknown task kind '{kind}'"
            f"{_suggestion(str(kind), list(TASK_KINDS), 'kinds')}"
            for name, kind in task_kinds.items() if kind not in TASK_KINDS]


def monitor_keys(task_names, task_kinds=None):
    """The validation log keys early stopping can watch: `val_loss`,
    `val_mean_score`, and per task `val_<task>_loss` and
    `val_<task>_<metric>` (the metric of its kind: auc, rmse, accuracy; any
    of them when the kind is not known)."""
    from mtrec.schema.task_kinds import TASK_KIND_TABLE, task_kind

    keys = ["val_loss", "val_mean_score"]
    for task in task_names:
        kind = (task_kinds or {}).get(task)
        metrics = ([task_kind(kind).monitor] if kind in TASK_KIND_TABLE
                   else sorted({k.monitor for k in TASK_KIND_TABLE.values()}))
        keys += [f"val_{task}_loss"] + [f"val_{task}_{metric}" for metric in metrics]
    return keys


def task_reference_problems(loss_weights, monitor, task_names, task_kinds=None):
    """Problems of the task names a config refers to.

    The one check of `training.loss_weights` and
    `training.early_stopping.monitor`: at validation time when the dataset
    declares its tasks, else by the runner once the schema is inferred
    (`check_task_references`).

    Args:
        loss_weights: `{task: weight}`.
        monitor: str, or None without early stopping.
        task_names: list of str, the dataset's tasks.
        task_kinds: optional `{task: kind}`, for the exact metric log keys.

    Returns:
        list of str, one sentence per problem.
    """
    task_names = list(task_names)
    problems = [f"Unknown task '{task}' in training.loss_weights"
                f"{_suggestion(task, task_names, 'tasks')}"
                for task in loss_weights if task not in task_names]
    allowed = ["mean"] + task_names
    if monitor is None or monitor in allowed:
        return problems
    keys = monitor_keys(task_names, task_kinds)
    if not str(monitor).startswith("val_"):
        close = _closest(monitor, allowed + keys)
        hint = f" Did you mean '{close}'?" if close else ""
        problems.append(
            f"training.early_stopping.monitor is '{monitor}'; early stopping "
            f"watches the validation split only: use one of {allowed}, or a "
            f"validation log key such as 'val_loss'.{hint}")
    elif monitor not in keys:
        # Keras' EarlyStopping only warns on a key no epoch logs, and then
        # never stops: refuse it here.
        close = _closest(monitor, keys)
        hint = f" Did you mean '{close}'?" if close else ""
        problems.append(
            f"training.early_stopping.monitor '{monitor}' is not a key the "
            f"validation logs have, so early stopping would never stop.{hint} "
            f"Use one of {allowed} or {keys}.")
    return problems


def check_task_references(config, task_names, task_kinds=None):
    """Raise `ConfigError` when a validated `RunConfig` names a task the data
    does not have (for datasets that do not declare their tasks up front)."""
    stopping = config.training.early_stopping
    problems = task_reference_problems(config.training.loss_weights,
                                       stopping.monitor if stopping is not None else None,
                                       task_names, task_kinds)
    if problems:
        raise ConfigError(problems)


def dataset_file_problems(config):
    """Problems of a files dataset found by reading only the files' headers:
    every path or pattern matches files, and each file has the columns the
    config names (labels, masks, split-rule columns, feature overrides,
    the GAUC group column). Empty for a registered dataset.

    Args:
        config: `RunConfig`.

    Returns:
        list of str, one sentence per problem.
    """
    from mtrec.data import user_files

    dataset = config.dataset
    if dataset.files is None:
        return []
    needed = {}
    for task in dataset.task_specs():
        needed[task.label] = f"the label of task '{task.name}'"
        if task.mask is not None:
            needed[task.mask] = f"the mask of task '{task.name}'"
    for column in (dataset.split.rule().columns() if dataset.split is not None else []):
        needed[column] = "a column of the split rule"
    for column in config.schema_.features:
        needed.setdefault(column, "overridden in schema.features")
    if config.evaluation.group_column is not None:
        needed.setdefault(config.evaluation.group_column, "evaluation.group_column")
    problems = []
    for split, paths in dataset.split_files().items():
        try:
            headers = user_files.table_columns(paths, format=dataset.format,
                                               read_options=dict(dataset.read_options),
                                               what=f"dataset.files.{split}")
        except (OSError, ValueError) as error:
            problems.append(str(error))
            continue
        for path, columns in headers.items():
            for column, why in needed.items():
                if column in columns:
                    continue
                if split != "train" and dataset.split is not None and \
                        column in dataset.split.rule().columns():
                    continue  # the rule cuts the train files only
                problems.append(
                    f"{path} has no column '{column}' ({why})"
                    f"{_suggestion(column, columns, 'columns')}")
    return problems


def _init_arguments(cls, skip=()):
    """`{argument: default}` of `cls.__init__`, less self, `skip` and **kwargs."""
    signature = inspect.signature(cls.__init__)
    return {p.name: p.default for p in signature.parameters.values()
            if p.name != "self" and p.name not in skip
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def _model_arguments(cls):
    """`{argument: default}` a model class takes: its `__init__`'s, plus the
    objective's arguments every `MultiTaskModel` takes through `**kwargs`
    (`modality_losses`, `embedding_l2`, `kernel_l2`, `impute_missing`)."""
    from mtrec.models.multi_task_model import OBJECTIVE_ARGUMENTS, MultiTaskModel

    accepted = _init_arguments(cls, skip=("schema",))
    if issubclass(cls, MultiTaskModel):
        accepted.update({k: v for k, v in OBJECTIVE_ARGUMENTS.items() if k not in accepted})
    return accepted


def _argument_problems(args, accepted, owner, where):
    problems = []
    for arg in args:
        if arg not in accepted:
            problems.append(f"Unknown argument '{arg}' in {where} ({owner} takes "
                            f"{', '.join(accepted) or 'no arguments'})"
                            f"{_suggestion(arg, list(accepted), 'arguments')}")
    for arg, default in accepted.items():
        if default is inspect.Parameter.empty and arg not in args:
            problems.append(f"Missing required argument '{arg}' in {where} ({owner}).")
    return problems


def model_argument_problems(args, accepted):
    """Type and range problems of `model.args`, found before data loads.

    Types follow each argument's default (an int default takes ints, a
    tuple default a list, a bool default true/false), ranges the argument
    names shared by every model: `num_*` counts are >= 1, `*_units` lists
    of widths >= 1, `*dropout` rates in [0, 1).

    Args:
        args: `{argument: value}` from the config.
        accepted: `{argument: default}` of the model class.

    Returns:
        list of str, one sentence per problem.
    """
    problems = []
    for arg, value in args.items():
        if arg not in accepted:
            continue
        where = f"model.args.{arg}"
        expected = _expected_type(accepted[arg], arg)
        if expected is not None and not expected[0](value):
            problems.append(f"{where} is {_short(value)}; expected {expected[1]}.")
            continue
        if arg.startswith("num_") and isinstance(value, int) and value < 1:
            problems.append(f"{where} is {value}; a count must be >= 1.")
        elif arg.endswith("_units") and isinstance(value, list) and (
                not value or any(not _is_int(u) or u < 1 for u in value)):
            problems.append(f"{where} is {_short(value)}; expected a non-empty list of "
                            f"layer widths >= 1, e.g. [16].")
        elif arg.endswith("dropout") and _is_number(value) and not 0 <= value < 1:
            problems.append(f"{where} is {value}; a dropout rate is in [0, 1), e.g. 0.1.")
        elif arg.endswith("_l2") and _is_number(value) and value < 0:
            problems.append(f"{where} is {value}; an L2 coefficient is >= 0 (0: off).")
        elif arg == "modality_losses":
            problems += _modality_loss_problems(value, where)
        elif arg == "impute_missing" and not (
                isinstance(value, list) and all(isinstance(m, str) for m in value)):
            problems.append(f"{where} is {_short(value)}; expected a list of modality "
                            f"names, e.g. [text].")
    return problems


def _modality_loss_problems(value, where):
    """Problems of `model.args.modality_losses` found without the data (the
    modality names are checked when the model is built)."""
    from mtrec.layers.modality_losses import parse_modality_losses

    if not isinstance(value, list):
        return [f"{where} is {_short(value)}; expected a list of losses, e.g. "
                f"[{{kind: reconstruction, modality: text, weight: 0.1}}]."]
    try:
        parse_modality_losses(value)
    except (TypeError, ValueError) as error:
        return [f"{where}: {error}"]
    return []


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _expected_type(default, arg):
    """`(test, words)` for an argument's value, from its default; None when
    the default says nothing (None, required, or another type)."""
    if isinstance(default, bool):
        return (lambda v: isinstance(v, bool)), "true or false"
    if _is_int(default) or arg.startswith("num_"):
        return _is_int, "an integer"
    if isinstance(default, float) or arg.endswith("dropout"):
        return _is_number, "a number"
    if isinstance(default, (tuple, list)) or arg.endswith("_units"):
        return (lambda v: isinstance(v, list)), "a list, e.g. [16]"
    return None


def _loss_weighting_problems(value):
    """Problems of `training.loss_weighting`, and the strategy's name."""
    from mtrec.training.loss_weighting import STRATEGIES

    where = "training.loss_weighting"
    if isinstance(value, dict):
        args = dict(value)
        name = args.pop("name", None)
        if name is None:
            return [f"{where} is a mapping without 'name'; write e.g. "
                    f"{{name: gradnorm, alpha: 1.5}}."], None
    else:
        name, args = value, {}
    if name not in STRATEGIES:
        return [f"Unknown loss weighting '{name}' in {where}"
                f"{_suggestion(str(name), list(STRATEGIES), 'strategies')}"], None
    accepted = _init_arguments(STRATEGIES[name], skip=("task_names", "task_kinds"))
    problems = []
    if name == "fixed" and "weights" in args:
        problems.append(f"{where}: give fixed weights as training.loss_weights "
                        f"{{task: weight}}, not as loss_weighting.weights.")
        args.pop("weights")
    accepted.pop("weights", None)
    problems += _argument_problems(args, accepted, f"loss weighting '{name}'", where)
    return problems, name


def _deep_copy(value):
    if isinstance(value, dict):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_copy(v) for v in value]
    return value


def _unique(items):
    return list(dict.fromkeys(items))
