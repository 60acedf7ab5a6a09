"""Analysis of trained and training models: which tasks help each other.

`task_affinity(model, data, steps)` measures the inter-task affinity of
TAG (Fifty et al., NeurIPS 2021) during a short joint training run, and
`group_tasks(affinity, num_groups)` picks the partition of the tasks into
groups that maximises it (tasks in one group would share one model).
"""

from mtrec.analysis.task_affinity import (
    TaskAffinity, lookahead, shared_parameters, task_affinity)
from mtrec.analysis.task_grouping import TaskGrouping, group_tasks

__all__ = ["TaskAffinity", "TaskGrouping", "group_tasks", "lookahead",
           "shared_parameters", "task_affinity"]
