"""The `tune` section of a run config: what `mtrec tune` searches and how.

```yaml
tune:
  metric: mean              # default; or a task name, or a validation log key
  direction: maximize       # optional: inferred from the metric
  trials: 20                # optional: `mtrec tune --trials N` wins
  sampler: {name: tpe, seed: 0}          # default tpe, seed = training.seed
  pruner: {name: median, n_warmup_steps: 2}   # default median; none: no pruning
  space:                    # keys: the dotted paths `mtrec train --set` takes
    model.args.num_experts: {int: [2, 16]}
    model.args.expert_units: {choice: [[16], [32], [64, 32]]}
    training.learning_rate: {float: [1.0e-4, 1.0e-2], log: true}
    training.batch_size: {choice: [256, 1024]}
```

The metric is one early stopping can watch (`training.early_stopping.
monitor`): `mean` (`val_mean_score`, the mean over tasks of each task's
validation score), a task name (its kind's metric, e.g. `val_click_auc`), or
a validation log key (`val_loss`, `val_<task>_loss`, `val_<task>_auc`, ...).
Only validation keys: the test split is never read while tuning.

Keys may also nest (`model: {args: {num_experts: {int: [2, 16]}}}`), as
`--set tune.space.model.args.num_experts=...` writes them.

Distributions: `{int: [low, high]}` (optionally `step`, `log`), `{float:
[low, high]}` (optionally `step` or `log`), `{choice: [a, b, ...]}` (any
YAML values, lists too). Bounds are inclusive, as Optuna's `suggest_*`.

`parse_tune(section, config)` checks everything before anything trains and
reports every problem at once (`ConfigError`): unknown keys with the nearest
valid one, unknown distributions, samplers and pruners and their arguments,
bad ranges, and each parameter's bounds and choices applied to the run
config and validated as `mtrec train --set` would (so `model.args.num_expert`
or `{int: [0, 4]}` for a count are refused by name). Combinations of
parameters are not checked ahead: a trial whose combination is invalid
fails, and the study goes on.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
from typing import Any

import yaml

from mtrec.experiments.config import (
    ConfigError, load_config_sections, monitor_keys, parse_config, set_values)
from mtrec.schema.task_kinds import TASK_KIND_TABLE, task_kind
from mtrec.utils.suggestions import closest

__all__ = ["DISTRIBUTIONS", "PRUNERS", "SAMPLERS", "Parameter", "TuneSpec",
           "load_tune_config", "parse_tune"]

#: Distribution name -> the other keys its mapping may have.
DISTRIBUTIONS = {"int": ("step", "log"), "float": ("step", "log"), "choice": ()}
#: `sampler.name` -> (optuna.samplers class, the package it needs beyond optuna).
SAMPLERS = {"tpe": ("TPESampler", None), "random": ("RandomSampler", None),
            "qmc": ("QMCSampler", None), "gp": ("GPSampler", "torch"),
            "cmaes": ("CmaEsSampler", "cmaes")}
#: `pruner.name` -> optuna.pruners class.
PRUNERS = {"median": "MedianPruner", "percentile": "PercentilePruner",
           "successive_halving": "SuccessiveHalvingPruner",
           "hyperband": "HyperbandPruner", "threshold": "ThresholdPruner",
           "none": "NopPruner"}
_KEYS = ("metric", "direction", "trials", "sampler", "pruner", "space")
_DIRECTIONS = ("maximize", "minimize")
# Config paths a trial may not change, and why.
_FIXED = {
    "dataset": "every trial must train and validate on the same data",
    "output_dir": "each trial's run folder is trials/NNN in the tune folder",
    "training.seed": "every trial trains with the config's seed (tuning the seed "
                     "would select on noise); set it in the config",
    "training.strategy": "trials train one at a time in this process",
}


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One searched config value.

    Attributes:
        key: str, the dotted config path (`model.args.num_experts`).
        kind: `"int"`, `"float"` or `"choice"`.
        low, high: the inclusive bounds of an int or float.
        step: the grid step of an int or float, or None.
        log: bool, sample on a log scale.
        choices: tuple of the values of a choice.
    """

    key: str
    kind: str
    low: Any = None
    high: Any = None
    step: Any = None
    log: bool = False
    choices: tuple = ()

    def suggest(self, trial):
        """The value `optuna.Trial` `trial` suggests (a config value)."""
        if self.kind == "int":
            return trial.suggest_int(self.key, self.low, self.high, step=self.step or 1,
                                     log=self.log)
        if self.kind == "float":
            return trial.suggest_float(self.key, self.low, self.high, step=self.step,
                                       log=self.log)
        return self.value(trial.suggest_categorical(self.key, self.labels()))

    def labels(self):
        """The choices as Optuna stores them: the values themselves when all
        are scalars, else their YAML text (Optuna's categorical parameters
        are None, bool, int, float or str)."""
        if all(_is_scalar(c) for c in self.choices):
            return list(self.choices)
        return [_yaml_text(c) for c in self.choices]

    def value(self, param):
        """The config value of an Optuna parameter value of this parameter."""
        if self.kind != "choice" or all(_is_scalar(c) for c in self.choices):
            return param
        return dict(zip(self.labels(), self.choices))[param]

    def candidates(self):
        """The values validated ahead: the bounds, or every choice."""
        return [self.low, self.high] if self.kind != "choice" else list(self.choices)

    def describe(self):
        if self.kind == "choice":
            return f"choice of {len(self.choices)}"
        extra = "".join([", log" if self.log else "",
                         f", step {self.step}" if self.step is not None else ""])
        return f"{self.kind} [{self.low}, {self.high}]{extra}"


@dataclasses.dataclass(frozen=True)
class TuneSpec:
    """A validated `tune` section.

    Attributes:
        metric: str, as the config names it (`mean`, a task, a log key).
        key: str, the validation log key it reads (`val_mean_score`).
        direction: `"maximize"` or `"minimize"`.
        trials: int or None (`mtrec tune --trials` then required).
        sampler: dict `{name, **arguments}` (seed filled in).
        pruner: dict `{name, **arguments}`.
        space: tuple of `Parameter`.
    """

    metric: str
    key: str
    direction: str
    trials: int | None
    sampler: dict
    pruner: dict
    space: tuple

    def make_sampler(self, seed_offset=0):
        """The Optuna sampler, its seed moved by `seed_offset` (the trials
        already in a resumed study, so a rerun does not draw the first
        process's points again)."""
        import optuna

        args = {k: v for k, v in self.sampler.items() if k != "name"}
        if args.get("seed") is not None:
            args["seed"] = int(args["seed"]) + int(seed_offset)
        return getattr(optuna.samplers, SAMPLERS[self.sampler["name"]][0])(**args)

    def make_pruner(self):
        """The Optuna pruner."""
        import optuna

        args = {k: v for k, v in self.pruner.items() if k != "name"}
        return getattr(optuna.pruners, PRUNERS[self.pruner["name"]])(**args)

    def values(self, params):
        """`{config key: value}` of an Optuna trial's `params`."""
        by_key = {p.key: p for p in self.space}
        return {key: by_key[key].value(value) for key, value in params.items()
                if key in by_key}

    def fingerprint_data(self):
        """What identifies the study (all but `trials`), as plain data."""
        data = dataclasses.asdict(self)
        data.pop("trials")
        return data


def load_tune_config(path, overrides=None):
    """Read a config YAML with a `tune` section.

    Args:
        path: str or path of the YAML file.
        overrides: list of `"dotted.key=value"` strings, applied to the
            whole file (`tune.trials=5` too).

    Returns:
        `(RunConfig, TuneSpec)`: the run without its tune section, and the
        section.

    Raises:
        ConfigError: every problem of the run config, or of the tune
            section, or a file without a tune section.
    """
    config, extra = load_config_sections(path, overrides)
    if "tune" not in extra:
        raise ConfigError(["has no tune section, so there is nothing to search; add "
                           "e.g. tune: {space: {training.learning_rate: {float: "
                           "[1.0e-4, 1.0e-2], log: true}}} (see mtrec.tuning.space)."],
                          source=path)
    return config, parse_tune(extra["tune"], config, source=path)


def parse_tune(section, config, source="config"):
    """Validate a `tune` section against its run config.

    Args:
        section: the section's raw data (a mapping, as read from YAML).
        config: the validated `RunConfig` the trials start from.
        source: str, the config's name for messages.

    Returns:
        `TuneSpec`.

    Raises:
        ConfigError: listing every problem, each with its key path.
    """
    if not isinstance(section, dict):
        raise ConfigError([f"tune is {_short(section)}; it is a mapping with keys "
                           f"{', '.join(_KEYS)} (space at least)."], source=source)
    problems = [f"Unknown key '{key}' in tune{_suggest(key, _KEYS, 'valid keys')}"
                for key in section if key not in _KEYS]
    task_names, task_kinds = _tasks(config)

    metric = section.get("metric", "mean")
    key, inferred = None, None
    if not isinstance(metric, str):
        problems.append(f"tune.metric is {_short(metric)}; expected a name such as "
                        f"'mean', a task name or 'val_loss'.")
    else:
        metric_problems, key, inferred = _metric(metric, task_names, task_kinds)
        problems += metric_problems

    direction = section.get("direction")
    if direction is not None and direction not in _DIRECTIONS:
        close = closest(str(direction), _DIRECTIONS)
        problems.append(f"tune.direction is {_short(direction)}; expected maximize or "
                        f"minimize, or leave it out (it follows from the metric)"
                        f"{f'; did you mean {close!r}?' if close else '.'}")
    elif direction is not None and inferred is not None and direction != inferred:
        problems.append(f"tune.direction is {direction}, but '{metric}' ({key}) is "
                        f"better when {'larger' if inferred == 'maximize' else 'smaller'}"
                        f"; write direction: {inferred} or leave it out.")
    direction = direction or inferred

    trials = section.get("trials")
    if trials is not None and (not _is_int(trials) or trials < 1):
        problems.append(f"tune.trials is {_short(trials)}; expected an integer >= 1.")

    sampler, sampler_problems = _component(section.get("sampler", "tpe"), "sampler",
                                           SAMPLERS, default_seed=config.training.seed)
    pruner, pruner_problems = _component(section.get("pruner", "median"), "pruner",
                                         PRUNERS)
    problems += sampler_problems + pruner_problems

    space = section.get("space")
    parameters = []
    if space is None:
        problems.append("tune.space is missing: name what to search, e.g. space: "
                        "{training.learning_rate: {float: [1.0e-4, 1.0e-2], log: true}}.")
    elif not isinstance(space, dict) or not space:
        problems.append(f"tune.space is {_short(space)}; expected a non-empty mapping "
                        f"of config keys to distributions, e.g. "
                        f"model.args.num_experts: {{int: [2, 16]}}.")
    else:
        base = config.to_dict(as_written=True)
        for path, spec in _flatten(space).items():
            parameter, found = _parameter(str(path), spec)
            problems += found
            if parameter is not None:
                problems += _applied_problems(parameter, base)
                parameters.append(parameter)
    if problems:
        raise ConfigError(_unique(problems), source=source)
    return TuneSpec(metric=metric, key=key, direction=direction, trials=trials,
                    sampler=sampler, pruner=pruner, space=tuple(parameters))


# --------------------------------------------------------------------------
# metric
# --------------------------------------------------------------------------
def _tasks(config):
    """`(task names, {task: kind})` the config's dataset declares (None, None
    when it says only once loaded)."""
    dataset = config.dataset
    if dataset.tasks is not None:
        return ([t.name for t in dataset.task_specs()],
                {t.name: t.kind for t in dataset.task_specs()})
    from mtrec.data import registry
    return (registry.dataset_task_names(dataset.name, dataset.args),
            registry.dataset_task_kinds(dataset.name, dataset.args))


def _metric(metric, task_names, task_kinds):
    """`(problems, log key, inferred direction)` of `tune.metric`."""
    names = list(task_names or [])
    if metric == "mean":
        return [], "val_mean_score", "maximize"
    if metric in names:
        kind = (task_kinds or {}).get(metric)
        if kind in TASK_KIND_TABLE:
            entry = task_kind(kind)
            return [], f"val_{metric}_{entry.monitor}", _direction(entry.monitor_mode)
        return ([f"tune.metric '{metric}' is a task whose kind is not known before "
                 f"the data loads; name its validation key, e.g. 'val_{metric}_auc'."],
                None, None)
    allowed = ["mean"] + names
    keys = monitor_keys(names, task_kinds) if task_names is not None else []
    if task_names is None and metric.startswith("val_"):
        return [], metric, _key_direction(metric)  # checked when the data loads
    if metric in keys:
        return [], metric, _key_direction(metric)
    close = closest(metric, allowed + keys)
    hint = f" Did you mean '{close}'?" if close else ""
    why = ("the test split is never evaluated while tuning; " if "test" in metric
           else "")
    return ([f"tune.metric '{metric}' is not a validation metric of this config; "
             f"{why}use one of {allowed} or {keys}.{hint}"], None, None)


def _key_direction(key):
    """Whether a larger validation log value is better: losses and errors
    are minimised, the task kinds' metrics follow the task-kind table."""
    if key.endswith("loss"):
        return "minimize"
    for entry in TASK_KIND_TABLE.values():
        if key.endswith(f"_{entry.monitor}"):
            return _direction(entry.monitor_mode)
    return "minimize" if "rmse" in key else "maximize"


def _direction(mode):
    return "maximize" if mode == "max" else "minimize"


# --------------------------------------------------------------------------
# sampler and pruner
# --------------------------------------------------------------------------
def _component(value, what, table, default_seed=None):
    """`({name, **arguments}, problems)` of `tune.sampler` or `tune.pruner`,
    given as a name or `{name: ..., argument: value}`; the arguments are
    checked against the Optuna class and the object built once."""
    import optuna

    where = f"tune.{what}"
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        return None, [f"{where} is {_short(value)}; expected a name or a mapping with "
                      f"'name', e.g. {{name: {next(iter(table))}}}; {what}s: "
                      f"{', '.join(table)}."]
    args = {k: v for k, v in value.items() if k != "name"}
    name = value["name"]
    if name not in table:
        return None, [f"Unknown {what} '{name}' in {where}.name"
                      f"{_suggest(name, list(table), what + 's')}"]
    class_name, package = table[name] if isinstance(table[name], tuple) else (table[name],
                                                                              None)
    if package is not None and importlib.util.find_spec(package) is None:
        return None, [f"{where} '{name}' needs the package '{package}', which is not "
                      f"installed (pip install {package}), or use another {what}."]
    cls = getattr(optuna.samplers if what == "sampler" else optuna.pruners, class_name)
    accepted = [p.name for p in inspect.signature(cls).parameters.values()
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
    unknown = [f"Unknown argument '{arg}' in {where} ({class_name} takes "
               f"{', '.join(accepted) or 'no arguments'})"
               f"{_suggest(arg, accepted, 'arguments')}" for arg in args
               if arg not in accepted]
    if unknown:
        return None, unknown
    if "seed" in accepted and args.get("seed") is None:
        args["seed"] = default_seed  # the config's seed: a rerun samples alike
    try:
        cls(**args)
    except (TypeError, ValueError) as error:
        return None, [f"{where}: {class_name}({_arguments(args)}): {error}"]
    return {"name": name, **args}, []


# --------------------------------------------------------------------------
# space
# --------------------------------------------------------------------------
def _parameter(path, spec):
    """`(Parameter or None, problems)` of one `tune.space` entry."""
    where = f"tune.space.{path}"
    parts = path.split(".")
    if not all(parts):
        return None, [f"{where}: '{path}' is not a dotted config key such as "
                      f"model.args.num_experts."]
    for fixed, why in _FIXED.items():
        if path == fixed or path.startswith(fixed + "."):
            return None, [f"{where}: {fixed} cannot be tuned: {why}."]
    if parts[0] == "tune":
        return None, [f"{where}: the tune section cannot tune itself."]
    example = "{int: [2, 16]}, {float: [1.0e-4, 1.0e-2], log: true} or {choice: [a, b]}"
    if not isinstance(spec, dict):
        return None, [f"{where} is {_short(spec)}; expected a distribution: {example}."]
    kinds = [key for key in spec if key in DISTRIBUTIONS]
    if len(kinds) != 1:
        unknown = [key for key in spec if key not in DISTRIBUTIONS
                   and not any(key in extra for extra in DISTRIBUTIONS.values())]
        if unknown and not kinds:
            key = str(unknown[0])
            return None, [f"{where}: unknown distribution '{key}'"
                          f"{_suggest(key, DISTRIBUTIONS, 'distributions', ';')} "
                          f"write e.g. {example}."]
        return None, [f"{where} needs exactly one distribution (int, float or choice), "
                      f"got {kinds or 'none'}; write e.g. {example}."]
    kind = kinds[0]
    allowed = DISTRIBUTIONS[kind]
    problems = [f"Unknown key '{key}' in {where} ({kind} takes "
                f"{', '.join(allowed) or 'nothing else'})"
                f"{_suggest(str(key), allowed, 'keys') if allowed else '.'}"
                for key in spec if key != kind and key not in allowed]
    if kind == "choice":
        choices = spec["choice"]
        if not isinstance(choices, list) or not choices:
            return None, problems + [f"{where}.choice is {_short(choices)}; expected a "
                                     f"non-empty list of values, e.g. [256, 1024]."]
        texts = [_yaml_text(c) for c in choices]
        twice = sorted({t for t in texts if texts.count(t) > 1})
        if twice:
            problems.append(f"{where}.choice lists {', '.join(twice)} more than once; "
                            f"keep one of each.")
        return (None if problems else Parameter(path, "choice", choices=tuple(choices)),
                problems)
    bounds, log, step = spec[kind], spec.get("log", False), spec.get("step")
    number = _is_int if kind == "int" else _is_number
    words = "integers" if kind == "int" else "numbers"
    if not isinstance(bounds, list) or len(bounds) != 2 or not all(map(number, bounds)):
        hint = ""
        if isinstance(bounds, list) and any(isinstance(b, str) for b in bounds):
            hint = (" (YAML reads 1e-4 as text: write 1.0e-4)" if kind == "float"
                    else " (write the numbers without quotes)")
        if kind == "int" and isinstance(bounds, list) and all(map(_is_number, bounds)):
            hint = " (for a range of non-integers use {float: [low, high]})"
        return None, problems + [f"{where}.{kind} is {_short(bounds)}; expected [low, "
                                 f"high], two {words}{hint}."]
    low, high = bounds
    if not low < high:
        problems.append(f"{where}.{kind} is [{low}, {high}]; low must be below high "
                        f"(for one value, set it in the config instead of tuning it).")
    if not isinstance(log, bool):
        problems.append(f"{where}.log is {_short(log)}; expected true or false.")
    elif log and low <= 0:
        problems.append(f"{where}: a log scale needs low > 0, got [{low}, {high}].")
    if step is not None:
        if not number(step) or step <= 0:
            problems.append(f"{where}.step is {_short(step)}; expected "
                            f"{'an integer' if kind == 'int' else 'a number'} > 0.")
        elif log is True and (kind == "float" or step != 1):
            problems.append(f"{where}: give step or log, not both (Optuna samples a "
                            f"log scale without a grid).")
    if problems:
        return None, problems
    return Parameter(path, kind, low=low, high=high, step=step, log=log), []


def _flatten(space, prefix=""):
    """`tune.space` with nested levels joined into dotted keys, so that
    `{model: {args: {num_experts: {int: [2, 8]}}}}` (what `--set
    tune.space.model.args.num_experts=...` makes) is `model.args.num_experts`.
    A level is a mapping of mappings none of whose keys a distribution uses."""
    words = set(DISTRIBUTIONS) | {w for extra in DISTRIBUTIONS.values() for w in extra}
    flat = {}
    for key, value in space.items():
        path = f"{prefix}{key}"
        if (isinstance(value, dict) and value and not words & set(value)
                and all(isinstance(v, dict) for v in value.values())):
            flat.update(_flatten(value, prefix=path + "."))
        else:
            flat[path] = value
    return flat


def _applied_problems(parameter, base):
    """Problems of the run config with each of the parameter's bounds or
    choices set, as `mtrec train --set` would set it (first one per problem)."""
    problems = []
    seen = set()
    for value in parameter.candidates():
        try:
            parse_config(set_values(base, {parameter.key: value}))
        except ConfigError as error:
            for problem in error.problems:
                if problem not in seen:
                    seen.add(problem)
                    problems.append(f"tune.space.{parameter.key} = {_yaml_text(value)}: "
                                    f"{problem}")
    return problems


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_scalar(value):
    return value is None or isinstance(value, (bool, int, float, str))


def _yaml_text(value):
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...")


def _arguments(args):
    return ", ".join(f"{k}={v!r}" for k, v in args.items())


def _suggest(word, options, what, end="."):
    """"; did you mean 'x'?" or "; <what>: a, b." (ended by `end`)."""
    options = [str(o) for o in options]
    close = closest(word, options)
    if close is not None:
        return f"; did you mean '{close}'?"
    return f"; {what}: {', '.join(options)}{end}"


def _short(value):
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _unique(items):
    return list(dict.fromkeys(items))
