"""Run configs: one YAML file says what to train, how, and where to write.

```yaml
dataset: {name: census_income, args: {group: 1}}
schema:                                  # optional: overrides of Schema.infer
  exclude: []
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
evaluation: {group_column: null}
output_dir: runs/census_income/mmoe      # default: runs/<dataset>-<model>-<time>
```

`load_config(path, overrides)` validates everything before anything runs:
unknown or misspelt keys (with the nearest valid key suggested), the model
and dataset names, and their arguments against the model class's and the
dataset function's signatures. All problems are reported together in one
`ConfigError`.
"""

from __future__ import annotations

import dataclasses
import inspect
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from mtrec.schema import FEATURE_KINDS, Schema, TaskSpec
from mtrec.utils.suggestions import closest as _closest

__all__ = ["ConfigError", "RunConfig", "apply_overrides", "check_task_references",
           "load_config", "parse_config", "task_reference_problems", "OPTIMIZERS"]

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


class DatasetConfig(_Strict):
    name: str
    args: dict[str, Any] = Field(default_factory=dict)


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


class SchemaConfig(_Strict):
    exclude: list[str] = Field(default_factory=list)
    features: dict[str, FeatureOverride] = Field(default_factory=dict)

    def feature_specs(self):
        """`{column: spec}` of the overrides, for `Schema.infer(**overrides)`."""
        return {column: FEATURE_KINDS[o.kind](name=column, **o.model_dump(exclude={"kind"}))
                for column, o in self.features.items()}


class ModelConfig(_Strict):
    name: str
    args: dict[str, Any] = Field(default_factory=dict)


class EarlyStoppingConfig(_Strict):
    monitor: str = "mean"
    patience: int = Field(default=2, ge=0)


class TrainingConfig(_Strict):
    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=1024, ge=1)
    optimizer: str = "adam"
    learning_rate: float = Field(default=0.001, gt=0)
    loss_weighting: Union[str, dict[str, Any]] = "fixed"
    loss_weights: dict[str, float] = Field(default_factory=dict)
    early_stopping: Optional[EarlyStoppingConfig] = Field(
        default_factory=EarlyStoppingConfig)
    seed: int = 0
    # Also checkpoint every this many steps (always at each epoch end).
    checkpoint_every_steps: Optional[int] = Field(default=None, ge=1)

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

    def to_dict(self):
        """The resolved config (defaults filled in), as plain YAML/JSON data."""
        return self.model_dump(mode="json", by_alias=True)

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

    Args:
        path: str or path of the YAML file.
        overrides: list of `"dotted.key=value"` strings (values parsed as
            YAML: `training.epochs=2`, `model.args.expert_units=[32]`).

    Returns:
        `RunConfig`.

    Raises:
        ConfigError: listing every problem, each with its key path.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError([f"the config file does not exist"
                           f"{' (it is a directory)' if path.is_dir() else ''}."],
                          source=path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise ConfigError([f"not valid YAML{line}: {problem}."], source=path) from None
    if data is None:
        raise ConfigError(["the config file is empty."], source=path)
    return parse_config(data, overrides=overrides, source=path)


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
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.get(part)
            if child is None:
                child = node[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[:depth + 1])
                raise ConfigError([f"override '{override}': {where} is {child!r}, not "
                                   f"a mapping, so it has no key '{parts[depth + 1]}'."],
                                  source=source)
            node = child
        node[parts[-1]] = value
    return data


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
    task_names = None
    if ok("dataset", "name") and "name" in dataset:
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
            problems += _argument_problems(model.get("args") or {},
                                           _init_arguments(MODELS[name], skip=("schema",)),
                                           f"model {name}", "model.args")

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
            weights if ok("training", "loss_weights") else {}, monitor, task_names)

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


def task_reference_problems(loss_weights, monitor, task_names):
    """Problems of the task names a config refers to.

    The one check of `training.loss_weights` and
    `training.early_stopping.monitor`: at validation time when the dataset
    declares its tasks, else by the runner once the schema is inferred
    (`check_task_references`).

    Args:
        loss_weights: `{task: weight}`.
        monitor: str, or None without early stopping.
        task_names: list of str, the dataset's tasks.

    Returns:
        list of str, one sentence per problem.
    """
    task_names = list(task_names)
    problems = [f"Unknown task '{task}' in training.loss_weights"
                f"{_suggestion(task, task_names, 'tasks')}"
                for task in loss_weights if task not in task_names]
    allowed = ["mean"] + task_names
    if monitor is not None and monitor not in allowed and not str(monitor).startswith("val_"):
        close = _closest(monitor, allowed)
        hint = f" Did you mean '{close}'?" if close else ""
        problems.append(
            f"training.early_stopping.monitor is '{monitor}'; early stopping "
            f"watches the validation split only: use one of {allowed}, or a "
            f"validation log key such as 'val_loss'.{hint}")
    return problems


def check_task_references(config, task_names):
    """Raise `ConfigError` when a validated `RunConfig` names a task the data
    does not have (for datasets that do not declare their tasks up front)."""
    stopping = config.training.early_stopping
    problems = task_reference_problems(config.training.loss_weights,
                                       stopping.monitor if stopping is not None else None,
                                       task_names)
    if problems:
        raise ConfigError(problems)


def _init_arguments(cls, skip=()):
    """`{argument: default}` of `cls.__init__`, less self, `skip` and **kwargs."""
    signature = inspect.signature(cls.__init__)
    return {p.name: p.default for p in signature.parameters.values()
            if p.name != "self" and p.name not in skip
            and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


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
