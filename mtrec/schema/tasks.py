"""Task specs, and the three tasks of a conversion funnel."""

from __future__ import annotations

import dataclasses
import math
import numbers

from mtrec.schema.task_kinds import TASK_KIND_TABLE, TASK_KINDS, task_kind
from mtrec.utils.suggestions import closest

__all__ = ["FUNNEL_TASKS", "TaskSpec", "as_task_specs", "check_output_range",
           "funnel_tasks"]

#: Task names of a funnel (impression -> click -> conversion), in model order.
FUNNEL_TASKS = ("ctr", "cvr", "ctcvr")


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One prediction task.

    Args:
        name: str. Output name, e.g. `"ctr"`.
        kind: str. `"binary"` (labels 0/1), `"regression"` or
            `"multiclass"` (integer labels in `[0, num_classes)`); see
            `mtrec.schema.task_kinds`.
        label: str. Label column; defaults to `name`.
        num_classes: int. Multiclass only; learned in `adapt` when None.
        mask: str. Optional column: where it is 0, False or NaN the
            example has no label for this task (e.g. CVR counted only where
            `click == 1`). A NaN label has the same effect.
        output_range: `(low, high)`. Regression only: the head predicts
            `low + (high - low) * sigmoid(z)` instead of `z`, so every
            prediction lies in `[low, high]` (e.g. `(1, 5)` for ratings;
            leave a margin beyond the labels' range: the ends are reached
            only as the float32 sigmoid saturates, `|z| > ~17`, where the
            gradient vanishes). None (the default) keeps the linear head.
    """

    name: str
    kind: str = "binary"
    label: str | None = None
    num_classes: int | None = None
    mask: str | None = None
    output_range: tuple[float, float] | None = None

    def __post_init__(self):
        if not isinstance(self.kind, str) or self.kind not in TASK_KIND_TABLE:
            match = closest(self.kind, TASK_KINDS)
            hint = f" Did you mean '{match}'?" if match else ""
            raise ValueError(
                f"Task '{self.name}' has kind '{self.kind}'; expected one of "
                f"{list(TASK_KINDS)}.{hint}")
        if self.label is None:
            object.__setattr__(self, "label", self.name)
        if self.output_range is not None:
            object.__setattr__(self, "output_range", check_output_range(self))

    def to_dict(self):
        """The fields as `Schema.to_dict` writes them (`output_range` only
        when set, so schemas without it keep the dict they always had)."""
        fields = dataclasses.asdict(self)
        if fields["output_range"] is None:
            del fields["output_range"]
        else:
            fields["output_range"] = list(fields["output_range"])
        return fields

    @property
    def kind_spec(self):
        """This task's entry of the task-kind table (`TaskKind`)."""
        return task_kind(self.kind)


def check_output_range(task):
    """`task.output_range` as a tuple of two floats `(low, high)`, low < high;
    a ValueError naming the task otherwise."""
    value = task.output_range
    if not task.kind_spec.bounded_output:
        raise ValueError(
            f"Task '{task.name}' is {task.kind} but has output_range={value!r}; an "
            f"output range bounds a regression head only ({task.kind} outputs are "
            f"already probabilities). Drop output_range, or declare the task "
            f"'regression'.")
    if (not isinstance(value, (list, tuple)) or len(value) != 2 or any(
            isinstance(v, bool) or not isinstance(v, numbers.Real) for v in value)):
        raise ValueError(
            f"Task '{task.name}' has output_range={value!r}; expected two numbers "
            f"(low, high), e.g. (1, 5).")
    low, high = (float(v) for v in value)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(
            f"Task '{task.name}' has output_range=({low}, {high}); expected finite "
            f"low < high.")
    return (low, high)


def funnel_tasks(click="click", conversion="conversion"):
    """TaskSpecs `ctr`, `cvr` (masked to clicks) and `ctcvr` for a funnel.

    Args:
        click: str. The click label column (0/1).
        conversion: str. The conversion label column (0/1, on every impression).

    Returns:
        list of three binary `TaskSpec`, named as `FUNNEL_TASKS`.
    """
    return [TaskSpec("ctr", "binary", label=click),
            TaskSpec("cvr", "binary", label=conversion, mask=click),
            TaskSpec("ctcvr", "binary", label=conversion)]


def as_task_specs(tasks):
    """A list of TaskSpec from a list of TaskSpec or a dict `{name: kind}`."""
    if isinstance(tasks, dict):
        return [TaskSpec(name=name, kind=kind) for name, kind in tasks.items()]
    specs = list(tasks)
    for task in specs:
        if not isinstance(task, TaskSpec):
            raise ValueError(f"Expected TaskSpec objects or a dict "
                             f"{{name: kind}}, got {task!r}.")
    return specs
