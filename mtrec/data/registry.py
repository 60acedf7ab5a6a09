"""Named datasets for configs and the CLI: `register_dataset` and `load_dataset`.

A dataset is a function returning `DatasetSplits` (train, validation and
test DataFrames plus the tasks), registered under a name:

```python
@register_dataset("my_clicks", tasks={"click": "binary"})
def my_clicks(day=1):
    train, valid, test = ...
    return DatasetSplits(train, valid, test, tasks={"click": "binary"},
                         description="My clicks, day 1")
```

A run config then says `dataset: {name: my_clicks, args: {day: 2}}`; the
config is checked against the function's signature before anything runs.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable

import numpy as np
import pandas as pd

from mtrec.utils.suggestions import did_you_mean

__all__ = ["DATASETS", "DatasetSplits", "dataset_arguments", "dataset_names",
           "dataset_task_kinds", "dataset_task_names", "load_dataset", "register_dataset"]


@dataclasses.dataclass
class DatasetSplits:
    """What a registered dataset returns.

    Attributes:
        train: DataFrame. Training rows (the schema is adapted on it).
        valid: DataFrame. Validation rows (model selection, early stopping).
        test: DataFrame. Test rows (evaluated once, at the end).
        tasks: dict `{task_name: kind}` or list of `mtrec.TaskSpec`.
        group_column: str or None. Column of group ids (e.g. the user id)
            for GAUC.
        description: str. One line saying what the data is.
        features: list of feature specs the dataset knows better than
            `Schema.infer` would guess (e.g. MultiHot genres, Text titles);
            a run config's `schema.features` still overrides them.
    """

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame
    tasks: dict | list
    group_column: str | None = None
    description: str = ""
    features: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class _Entry:
    loader: Callable[..., DatasetSplits]
    tasks: Any = None


DATASETS: dict[str, _Entry] = {}


def register_dataset(name, tasks=None):
    """Register a function returning `DatasetSplits` under `name`.

    Args:
        name: str. The name configs use (`dataset: {name: ...}`).
        tasks: optional. The tasks the dataset yields, so configs can be
            checked (loss weights, early stopping monitor) before any data
            is read: a dict `{task: kind}`, a list of TaskSpecs or of task
            names, or a function taking the dataset's arguments and
            returning one of those.

    Returns:
        A decorator that registers the function and returns it unchanged.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"Dataset name must be a non-empty string, got {name!r}.")

    def decorator(loader):
        if not callable(loader):
            raise ValueError(f"register_dataset('{name}') decorates a function, "
                             f"got {loader!r}.")
        previous = DATASETS.get(name)
        if previous is not None and _qualified(previous.loader) != _qualified(loader):
            raise ValueError(
                f"Dataset '{name}' is already registered by "
                f"{_qualified(previous.loader)}; pick another name for "
                f"{_qualified(loader)}.")
        DATASETS[name] = _Entry(loader, tasks)
        return loader

    return decorator


def dataset_names():
    """Registered dataset names, sorted."""
    return sorted(DATASETS)


def _entry(name):
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset '{name}'{did_you_mean(name, DATASETS)}; "
                         f"registered: {dataset_names()}.")
    return DATASETS[name]


def dataset_arguments(name):
    """`{argument: default}` of a registered dataset's loader
    (`inspect.Parameter.empty` for required ones)."""
    signature = inspect.signature(_entry(name).loader)
    return {p.name: p.default for p in signature.parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def dataset_task_names(name, args=None):
    """Task names a dataset declares for `args`, or None if it does not say."""
    tasks = _entry(name).tasks
    if tasks is None:
        return None
    if callable(tasks):
        tasks = tasks(**(args or {}))
    if isinstance(tasks, dict):
        return list(tasks)
    return [getattr(t, "name", t) for t in tasks]


def dataset_task_kinds(name, args=None):
    """`{task: kind}` a dataset declares for `args`, or None when it
    declares names only (or nothing)."""
    tasks = _entry(name).tasks
    if callable(tasks):
        tasks = tasks(**(args or {}))
    if isinstance(tasks, dict):
        return dict(tasks)
    if tasks and all(hasattr(t, "kind") for t in tasks):
        return {t.name: t.kind for t in tasks}
    return None


def load_dataset(name, **args):
    """Load a registered dataset.

    Args:
        name: str. A registered name (see `dataset_names()`).
        **args: the dataset function's arguments.

    Returns:
        `DatasetSplits`.
    """
    entry = _entry(name)
    accepted = dataset_arguments(name)
    unknown = [a for a in args if a not in accepted]
    if unknown:
        hints = "".join(did_you_mean(a, accepted) for a in unknown)
        raise ValueError(f"Dataset '{name}' takes no argument(s) {unknown}{hints}; "
                         f"it takes {list(accepted)}.")
    splits = entry.loader(**args)
    if not isinstance(splits, DatasetSplits):
        raise ValueError(f"Dataset '{name}' returned {type(splits).__name__}; a "
                         f"registered dataset must return DatasetSplits.")
    for split in ("train", "valid", "test"):
        frame = getattr(splits, split)
        if not isinstance(frame, pd.DataFrame) or frame.empty:
            raise ValueError(f"Dataset '{name}' returned an empty or non-DataFrame "
                             f"'{split}' split.")
    return splits


def _qualified(fn):
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"



# --------------------------------------------------------------------------
# Built-in datasets
# --------------------------------------------------------------------------
def _census_tasks(group=1, **_):
    from mtrec.data import census_income
    if group not in census_income.TASKS:
        raise ValueError(f"census_income group must be 1 or 2, got {group!r}.")
    return {task: "binary" for task in census_income.TASKS[group]}


@register_dataset("census_income", tasks=_census_tasks)
def census_income(group=1, seed=0, data_dir=None, max_rows=None):
    """UCI Census-Income (KDD) with the MMoE paper's protocol.

    Args:
        group: 1 (income, marital) or 2 (education, marital).
        seed: int. Seed of the 1:1 validation/test split of the test file.
        data_dir: folder of the raw files; default `$MTREC_DATA_DIR`.
        max_rows: int or None. Training rows to read (validation and test
            get `max_rows // 4` each; see `census_income.load`). For smoke
            runs; `None` reads everything.
    """
    from mtrec.data import census_income as census

    train, valid, test = census.load(group=group, data_dir=data_dir, seed=seed,
                                     max_rows=max_rows)
    tasks = {name: "binary" for name in census.TASKS[group]}
    what = {1: "income > 50K, never married",
            2: "education >= college, never married"}[group]
    return DatasetSplits(
        train, valid, test, tasks=tasks, group_column=None,
        description=f"UCI Census-Income (KDD), group {group} ({what}); MMoE paper "
                    f"protocol, validation/test split seed {seed}"
                    + ("" if max_rows is None else f"; first {max_rows} training rows"))


@register_dataset("synthetic_tiny", tasks={"click": "binary", "like": "binary"})
def synthetic_tiny(rows=3000, seed=0):
    """A small generated table for fast tests: one categorical (`color`),
    two numerics (`x1`, `x2`, the latter with 5% missing) and two binary
    tasks (`click`, `like`) whose labels depend on the features; split
    70/15/15.

    Args:
        rows: int. Rows in all. Defaults to `3000`.
        seed: int. Defaults to `0`.
    """
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 20:
        raise ValueError(f"synthetic_tiny rows must be an integer >= 20, got {rows!r}.")
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "green", "blue", "yellow"], rows).astype(object)
    x1 = rng.normal(size=rows).astype("float32")
    x2 = rng.normal(size=rows).astype("float32")
    click_logit = 1.5 * x1 + 1.0 * (color == "red") - 0.5
    like_logit = -1.2 * np.nan_to_num(x2) + 1.0 * (color == "blue") + 0.5 * x1
    x2[rng.random(rows) < 0.05] = np.nan
    frame = pd.DataFrame({
        "color": color,
        "x1": x1,
        "x2": x2,
        "click": (rng.random(rows) < 1 / (1 + np.exp(-click_logit))).astype("int32"),
        "like": (rng.random(rows) < 1 / (1 + np.exp(-like_logit))).astype("int32"),
    })
    cut1, cut2 = int(rows * 0.7), int(rows * 0.85)
    train = frame.iloc[:cut1].reset_index(drop=True)
    valid = frame.iloc[cut1:cut2].reset_index(drop=True)
    test = frame.iloc[cut2:].reset_index(drop=True)
    return DatasetSplits(train, valid, test, tasks={"click": "binary", "like": "binary"},
                         description=f"synthetic_tiny: {rows} generated rows, seed {seed}")
