"""Task specs, and the three tasks of a conversion funnel."""

from __future__ import annotations

import dataclasses

from mtrec.schema.task_kinds import TASK_KIND_TABLE, TASK_KINDS, task_kind
from mtrec.utils.suggestions import closest

__all__ = ["FUNNEL_TASKS", "TaskSpec", "as_task_specs", "funnel_tasks"]

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
    """

    name: str
    kind: str = "binary"
    label: str | None = None
    num_classes: int | None = None
    mask: str | None = None

    def __post_init__(self):
        if not isinstance(self.kind, str) or self.kind not in TASK_KIND_TABLE:
            match = closest(self.kind, TASK_KINDS)
            hint = f" Did you mean '{match}'?" if match else ""
            raise ValueError(
                f"Task '{self.name}' has kind '{self.kind}'; expected one of "
                f"{list(TASK_KINDS)}.{hint}")
        if self.label is None:
            object.__setattr__(self, "label", self.name)

    @property
    def kind_spec(self):
        """This task's entry of the task-kind table (`TaskKind`)."""
        return task_kind(self.kind)


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
