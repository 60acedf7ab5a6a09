"""Tests for mtrec.schema.tasks: TaskSpec, funnel_tasks, FUNNEL_TASKS."""

import pytest

from mtrec import Numeric, Schema, TaskSpec
from mtrec.data import ali_ccp, aliexpress, movielens
from mtrec.schema import FUNNEL_TASKS, funnel_tasks
from helpers import error_of


def test_unknown_task_kind_suggests_the_closest():
    message = error_of(lambda: TaskSpec("ctr", kind="binery"))
    assert "Task 'ctr' has kind 'binery'" in message and "Did you mean 'binary'?" in message
    message = error_of(lambda: Schema([Numeric("price")], {"spend": "regresion"}))
    assert "Did you mean 'regression'?" in message


def test_task_label_defaults_to_the_name_and_kind_spec_is_the_table_entry():
    from mtrec.schema import task_kind
    task = TaskSpec("spend", "regression")
    assert task.label == "spend" and task.kind_spec is task_kind("regression")


def test_funnel_tasks_default_and_named_columns():
    assert FUNNEL_TASKS == ("ctr", "cvr", "ctcvr")
    assert funnel_tasks() == [TaskSpec("ctr", "binary", label="click"),
                              TaskSpec("cvr", "binary", label="conversion", mask="click"),
                              TaskSpec("ctcvr", "binary", label="conversion")]
    tasks = funnel_tasks(click="clicked", conversion="bought")
    assert [t.name for t in tasks] == list(FUNNEL_TASKS)
    assert [(t.label, t.mask) for t in tasks] == [("clicked", None), ("bought", "clicked"),
                                                  ("bought", None)]


def test_the_models_and_the_funnel_datasets_use_the_same_tasks():
    from mtrec.models import funnel as funnel_models
    assert tuple(funnel_models.FUNNEL_TASKS) == FUNNEL_TASKS
    assert funnel_models.funnel_tasks(click="a", conversion="b") == funnel_tasks("a", "b")
    assert aliexpress.TASKS == funnel_tasks()
    assert movielens.FUNNEL_TASKS == funnel_tasks()
    assert ali_ccp.TASKS == funnel_tasks(conversion="purchase")
