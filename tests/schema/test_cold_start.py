"""Categorical(oov_rate=...) and TaskSpec(output_range=...): arguments,
errors and their place in the schema dict (only when set)."""

import pytest

from helpers import base_schema, error_of
from mtrec import Schema, TaskSpec
from mtrec.schema import Categorical


def test_oov_rate_is_written_only_when_set():
    assert "oov_rate" not in Categorical("c").to_dict()
    spec = Categorical("c", oov_rate=0.05)
    assert spec.to_dict()["oov_rate"] == 0.05
    schema = base_schema(spec)
    assert Schema.from_dict(schema.to_dict()).feature("c").oov_rate == 0.05


@pytest.mark.parametrize("rate", [-0.1, 1.0, "0.1", True])
def test_oov_rate_outside_0_1_is_refused(rate):
    assert "oov_rate" in error_of(lambda: base_schema(Categorical("c", oov_rate=rate)))


def test_oov_rate_with_hashing_is_refused():
    message = error_of(lambda: base_schema(Categorical("c", num_hash_bins=8, oov_rate=0.1)))
    assert "no out-of-vocabulary bucket" in message


def test_output_range_is_a_tuple_kept_in_the_dict_only_when_set():
    task = TaskSpec("y", "regression", output_range=[1, 5])
    assert task.output_range == (1.0, 5.0)
    assert task.to_dict()["output_range"] == [1.0, 5.0]
    assert "output_range" not in TaskSpec("y", "regression").to_dict()
    schema = base_schema(Categorical("c"), tasks=[task])
    assert Schema.from_dict(schema.to_dict()).tasks[0] == task


@pytest.mark.parametrize("kind", ["binary", "multiclass"])
def test_output_range_is_refused_for_classification(kind):
    message = error_of(lambda: TaskSpec("t", kind, output_range=(0, 1)))
    assert f"Task 't' is {kind}" in message and "regression" in message


@pytest.mark.parametrize("value", [(5, 1), (1, 1), (0, float("inf")), (1,), "0,1", (0, True)])
def test_bad_output_ranges_are_refused(value):
    assert "output_range" in error_of(lambda: TaskSpec("y", "regression", output_range=value))
