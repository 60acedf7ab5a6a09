"""Numeric(encoding=...): the spec's arguments, the bin edges learned at
adapt (from the frame adapted on, and only from it) and their round trip
through the schema JSON; old schema dicts load as "standardize"."""

import json

import numpy as np
import pandas as pd
import pytest

from helpers import base_schema, error_of
from mtrec import Schema
from mtrec.schema import Numeric
from mtrec.schema.features import quantile_bin_edges


def frame(values, **columns):
    return pd.DataFrame({"x": np.asarray(values, "float32"),
                         "click": np.arange(len(values)) % 2, **columns})


def test_edges_are_the_quantiles_of_the_adapted_frame_only():
    rng = np.random.default_rng(0)
    train = frame(rng.normal(size=500))
    other = frame(rng.normal(loc=5.0, scale=3.0, size=500))
    schema = base_schema(Numeric("x", encoding="piecewise_linear", num_bins=8)).adapt(train)
    expected = np.quantile(train["x"].to_numpy("float64"), np.linspace(0, 1, 9))
    edges = np.array(schema.stats["x"]["bin_edges"])
    np.testing.assert_allclose(edges, expected.astype("float32"), rtol=0, atol=0)
    # the other frame's quantiles are nowhere in them
    assert not np.allclose(edges, np.quantile(other["x"], np.linspace(0, 1, 9)))
    # adapting on another frame learns that frame's edges
    again = base_schema(Numeric("x", encoding="piecewise_linear", num_bins=8)).adapt(other)
    assert again.stats["x"]["bin_edges"][0] == pytest.approx(float(other["x"].min()))


def test_discrete_columns_merge_repeated_edges():
    # 70% zeros: most quantiles are 0, kept once
    values = [0.0] * 70 + list(range(1, 31))
    edges = quantile_bin_edges(np.array(values), 10)
    assert edges[0] == 0.0 and edges[-1] == 30.0
    assert len(edges) == len(set(edges)) < 11
    assert all(a < b for a, b in zip(edges, edges[1:]))


def test_edges_skip_nan_and_inf_and_follow_log1p():
    # 1e39 is beyond float32: the model would get inf (missing)
    values = pd.DataFrame({"x": [np.nan, np.inf, 0.0, 1.0, 3.0, 7.0, 1e39], "click": 0})
    schema = base_schema(Numeric("x", encoding="quantile_bins", num_bins=3,
                                 log1p=True)).adapt(values)
    # finite float32 values 0, 1, 3, 7 -> log1p -> quantiles at 0, 1/3, 2/3, 1
    logged = np.log1p([0.0, 1.0, 3.0, 7.0])
    np.testing.assert_allclose(schema.stats["x"]["bin_edges"],
                               np.quantile(logged, np.linspace(0, 1, 4)), rtol=1e-6)


def test_a_constant_or_empty_column_still_gets_one_bin():
    assert quantile_bin_edges(np.array([4.0, 4.0]), 16) == [2.0, 6.0]
    assert quantile_bin_edges(np.array([]), 16) == [-0.5, 0.5]


def test_standardize_learns_no_edges_and_writes_no_new_fields():
    schema = base_schema(Numeric("x")).adapt(frame([1.0, 2.0, 3.0]))
    assert "bin_edges" not in schema.stats["x"]
    assert schema.to_dict()["features"] == [
        {"kind": "numeric", "name": "x", "log1p": False, "modality": "tabular"}]


def test_encoding_and_edges_round_trip_through_json(tmp_path):
    schema = base_schema(Numeric("x", encoding="periodic", num_frequencies=4,
                                 frequency_sigma=0.5, embedding_dim=3),
                         Numeric("y", encoding="piecewise_linear", num_bins=4))
    schema.adapt(frame(np.arange(20.0), y=np.arange(20.0) ** 2))
    again = Schema.from_json(schema.to_json(tmp_path / "schema.json"))
    assert again == schema
    assert again.feature("x").encoding == "periodic"
    assert again.feature("x").frequency_sigma == 0.5
    assert again.stats["y"]["bin_edges"] == schema.stats["y"]["bin_edges"]


def test_a_schema_saved_before_encodings_loads_as_standardize():
    old = {"features": [{"kind": "numeric", "name": "x", "log1p": True,
                         "modality": "tabular"}],
           "tasks": [{"name": "click", "kind": "binary", "label": "click",
                      "num_classes": None, "mask": None}],
           "stats": {"x": {"mean": 0.0, "variance": 1.0, "min": 0.0, "max": 1.0}}}
    schema = Schema.from_dict(json.loads(json.dumps(old)))
    assert schema.feature("x").encoding == "standardize"
    assert schema.to_dict() == old


def test_bad_arguments_are_named():
    assert "did you mean 'periodic'" in error_of(
        lambda: base_schema(Numeric("x", encoding="periodc"))).lower()
    assert "num_bins=0" in error_of(lambda: base_schema(Numeric("x", num_bins=0)))
    assert "frequency_sigma=0" in error_of(
        lambda: base_schema(Numeric("x", frequency_sigma=0)))
    assert "embedding_dim" in error_of(lambda: base_schema(Numeric("x", embedding_dim=-1)))


def test_edges_missing_from_the_stats_are_a_clear_error():
    spec = Numeric("x", encoding="piecewise_linear")
    assert "adapt the schema again" in error_of(lambda: spec.bin_edges({"mean": 0.0}))
