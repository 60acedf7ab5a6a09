"""Which tasks should share: the grouping of tasks that maximises affinity.

TAG (Fifty et al., NeurIPS 2021, §3.3) scores a set of groups by how much
each task is helped by the tasks it trains with. For a task `j` in group
`G`, its score is the mean affinity onto it from its group-mates,

    s(j, G) = 1 / (|G| - 1) * sum_{i in G, i != j} Z[i -> j],

0 for a task alone in its group (nothing is transferred to it), and the
score of the grouping is the mean of its tasks' scores.

`group_tasks` finds the best grouping exactly, by exhaustive search:

- by default over the set partitions of the tasks into `num_groups`
  non-empty, disjoint groups (each task trains in one model);
- with `overlapping=True`, as TAG does, over every choice of `num_groups`
  distinct non-empty groups that together cover the tasks, a task may sit
  in several groups, and each task counts its best group among them (the
  model that serves it). TAG searches this space by branch and bound; here
  it is enumerated, so it is limited to `MAX_OVERLAPPING_CHOICES` choices.
"""

from __future__ import annotations

import dataclasses
import itertools
import math

import numpy as np
import pandas as pd

from mtrec.analysis.task_affinity import TaskAffinity

__all__ = ["MAX_EXHAUSTIVE_TASKS", "MAX_OVERLAPPING_CHOICES", "TaskGrouping",
           "group_tasks", "grouping_score"]

#: Tasks the exhaustive partition search accepts (Bell(10) = 115,975
#: partitions; Bell(12) would be 4.2 million).
MAX_EXHAUSTIVE_TASKS = 10
#: Choices of groups the overlapping search enumerates at most.
MAX_OVERLAPPING_CHOICES = 2_000_000
# Choices scored per vectorised batch (bounds the temporary arrays).
_CHUNK = 50_000


@dataclasses.dataclass
class TaskGrouping:
    """What `group_tasks` chose.

    Attributes:
        groups: list of lists of task names, each in the affinity's task
            order; groups ordered by their first task.
        score: float. Mean over tasks of `task_scores` (TAG's objective).
        task_scores: dict `{task: s(task, its group)}`; with overlapping
            groups, the score of the task's best group.
        overlapping: bool. Whether groups could overlap.
    """

    groups: list
    score: float
    task_scores: dict
    overlapping: bool = False


def _affinity_matrix(affinity, task_names):
    """`(Z (T, T) float array, task names)` from a `TaskAffinity`, a
    DataFrame (index source, columns target) or an array."""
    if isinstance(affinity, pd.DataFrame):
        if list(affinity.index) != list(affinity.columns):
            raise ValueError(
                f"The affinity DataFrame must have the same tasks, in the same order, "
                f"as index (source) and columns (target); got index "
                f"{list(affinity.index)} and columns {list(affinity.columns)}.")
        names, matrix = list(affinity.index), affinity.to_numpy(dtype=float)
    elif isinstance(affinity, TaskAffinity):
        names, matrix = list(affinity.task_names), np.asarray(affinity.matrix, float)
    else:
        matrix = np.asarray(affinity, dtype=float)
        names = None
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] < 1:
        raise ValueError(f"The affinity must be a square (T, T) matrix, got shape "
                         f"{matrix.shape}.")
    if task_names is not None:
        names = [str(n) for n in task_names]
    if names is None:
        names = [f"task_{i}" for i in range(matrix.shape[0])]
    if len(names) != matrix.shape[0] or len(set(names)) != len(names):
        raise ValueError(f"task_names must be {matrix.shape[0]} distinct names (one per "
                         f"row of the affinity), got {names}.")
    bad = np.argwhere(~np.isfinite(matrix))
    if len(bad):
        i, j = bad[0]
        raise ValueError(f"The affinity of {names[i]} -> {names[j]} is {matrix[i, j]}; "
                         f"every entry must be a finite number.")
    return matrix, names


def _membership_scores(matrix, members):
    """`s(j, G)` for each group: `members` is a bool `(..., T)` array of
    groups; returns `(..., T)` scores, NaN where the task is not a member."""
    members = members.astype(float)
    # (..., T): sum over group-mates i of Z[i -> j], Z's diagonal excluded
    onto = members @ (matrix - np.diag(np.diag(matrix)))
    mates = members.sum(axis=-1, keepdims=True) - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        scores = np.where(mates > 0, onto / np.maximum(mates, 1.0), 0.0)
    return np.where(members > 0, scores, np.nan)


def grouping_score(affinity, groups, task_names=None):
    """TAG's score of given groups: `(score, {task: score})`.

    Args:
        affinity: `TaskAffinity`, DataFrame or `(T, T)` array (rows source).
        groups: list of lists of task names covering every task; a task in
            several groups counts its best one.
        task_names: names of the array's tasks (default `task_0`, ...).
    """
    matrix, names = _affinity_matrix(affinity, task_names)
    index = {n: i for i, n in enumerate(names)}
    members = np.zeros((len(groups), len(names)), bool)
    for g, group in enumerate(groups):
        unknown = [t for t in group if t not in index]
        if unknown or not group:
            raise ValueError(f"Group {list(group)} is empty or names unknown task(s) "
                             f"{unknown}; the tasks are {names}.")
        members[g, [index[t] for t in group]] = True
    uncovered = [n for n, covered in zip(names, members.any(axis=0)) if not covered]
    if uncovered:
        raise ValueError(f"The groups leave task(s) {uncovered} out; every task must be "
                         f"in a group.")
    best = np.nanmax(_membership_scores(matrix, members), axis=0)
    return float(best.mean()), dict(zip(names, best.tolist()))


def _partitions(num_tasks, num_groups):
    """Every partition of `range(num_tasks)` into exactly `num_groups`
    non-empty blocks, as restricted growth strings `(P, num_tasks)`:
    task t's block label is at most 1 + the largest label before it."""
    labels = []

    def grow(prefix, opened):
        position = len(prefix)
        if position == num_tasks:
            if opened == num_groups:
                labels.append(list(prefix))
            return
        # Enough tasks must remain to open the groups still missing.
        if num_groups - opened > num_tasks - position:
            return
        for label in range(min(opened + 1, num_groups)):
            grow(prefix + [label], max(opened, label + 1))

    grow([0], 1)
    return np.asarray(labels, dtype=int)


def group_tasks(affinity, num_groups, task_names=None, overlapping=False):
    """Split tasks into `num_groups` groups that maximise TAG's score.

    Args:
        affinity: a `TaskAffinity` (from `task_affinity`), a DataFrame
            (index source task, columns target task, as
            `TaskAffinity.to_frame()`) or a `(T, T)` array with
            `affinity[i, j] = Z[i -> j]`.
        num_groups: int in `[1, T]`. Number of groups.
        task_names: names of an array's tasks (default `task_0`, ...).
        overlapping: bool. False (default): disjoint groups, the exact best
            partition (`T <= MAX_EXHAUSTIVE_TASKS`). True: TAG's overlapping
            groups, each task counting its best group (see module docstring).

    Returns:
        `TaskGrouping`.

    Example:
        >>> z = [[0, .5, 0], [.5, 0, 0], [0, 0, 0]]
        >>> group_tasks(z, 2, task_names=["a", "b", "c"]).groups
        [['a', 'b'], ['c']]
    """
    matrix, names = _affinity_matrix(affinity, task_names)
    num_tasks = len(names)
    if (isinstance(num_groups, bool) or not isinstance(num_groups, (int, np.integer))
            or not 1 <= num_groups <= num_tasks):
        raise ValueError(f"num_groups must be an integer in [1, {num_tasks}] (the number "
                         f"of tasks {names}), got {num_groups!r}.")
    num_groups = int(num_groups)
    if overlapping:
        return _best_overlapping(matrix, names, num_groups)
    if num_tasks > MAX_EXHAUSTIVE_TASKS:
        raise ValueError(
            f"group_tasks searches every partition of the tasks, which is exact up to "
            f"{MAX_EXHAUSTIVE_TASKS} tasks (Bell(10) = 115,975 partitions); got "
            f"{num_tasks}. Group a subset of the tasks (e.g. the affinity's "
            f".to_frame().loc[tasks, tasks]), or merge tasks you know belong together.")
    labels = _partitions(num_tasks, num_groups)
    best_score, best_scores, best_labels = -np.inf, None, None
    for start in range(0, len(labels), _CHUNK):
        chunk = labels[start:start + _CHUNK]
        # (P, T, T): tasks i and j in the same group
        members = chunk[:, :, None] == chunk[:, None, :]
        # Each row j of `members` is task j's group; its own score sits at j.
        scores = np.diagonal(_membership_scores(matrix, members), axis1=1, axis2=2)
        totals = scores.mean(axis=1)
        k = int(np.argmax(totals))
        if totals[k] > best_score:
            best_score, best_scores, best_labels = totals[k], scores[k], chunk[k]
    groups = [[names[t] for t in range(num_tasks) if best_labels[t] == g]
              for g in range(num_groups)]
    return TaskGrouping(groups=groups, score=float(best_score),
                        task_scores=dict(zip(names, best_scores.tolist())))


def _best_overlapping(matrix, names, num_groups):
    num_tasks = len(names)
    candidates = np.array([[bool(mask >> t & 1) for t in range(num_tasks)]
                           for mask in range(1, 2 ** num_tasks)])
    choices = math.comb(len(candidates), num_groups)
    if choices > MAX_OVERLAPPING_CHOICES:
        raise ValueError(
            f"Overlapping groups: {num_groups} of the {len(candidates)} non-empty groups "
            f"of {num_tasks} tasks make {choices:,} choices, more than the "
            f"{MAX_OVERLAPPING_CHOICES:,} this exhaustive search enumerates. Use "
            f"overlapping=False (exact partitions up to {MAX_EXHAUSTIVE_TASKS} tasks), "
            f"fewer groups or fewer tasks.")
    # (G, T): s(j, G), -inf where j is not in G
    scores = np.nan_to_num(_membership_scores(matrix, candidates), nan=-np.inf)
    best_total, best_choice = -np.inf, None
    combos = itertools.combinations(range(len(candidates)), num_groups)
    while True:
        chunk = np.fromiter(itertools.chain.from_iterable(
            itertools.islice(combos, _CHUNK)), dtype=int).reshape(-1, num_groups)
        if not len(chunk):
            break
        # (C, T): each task's best chosen group; -inf where none covers it
        best = scores[chunk].max(axis=1)
        totals = np.where(np.isfinite(best).all(axis=1), best.mean(axis=1), -np.inf)
        k = int(np.argmax(totals))
        if totals[k] > best_total:
            best_total, best_choice = totals[k], chunk[k]
    groups = sorted(([names[t] for t in np.flatnonzero(candidates[g])] for g in best_choice),
                    key=lambda group: [names.index(t) for t in group])
    task_scores = scores[best_choice].max(axis=0)
    return TaskGrouping(groups=groups, score=float(best_total),
                        task_scores=dict(zip(names, task_scores.tolist())),
                        overlapping=True)
