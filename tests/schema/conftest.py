"""Shared fixtures of tests/schema: a six-row table computed by hand."""

import atexit
import os
import shutil
import tempfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import configuration

from mtrec import MultiHot, Schema

# Hypothesis writes caches (constants of the local source, unicode tables)
# into `./.hypothesis` already while collecting @given tests; tests must not
# write into the working directory, so point it at a temporary folder.
if not os.environ.get("HYPOTHESIS_STORAGE_DIRECTORY"):
    _HYPOTHESIS_HOME = tempfile.mkdtemp(prefix="mtrec-hypothesis-")
    configuration.set_hypothesis_home_dir(_HYPOTHESIS_HOME)
    atexit.register(shutil.rmtree, _HYPOTHESIS_HOME, ignore_errors=True)


REVIEWS = [
    "The dress fits well and looks great",
    "Runs small so order one size up",
    "Lovely soft fabric but the zip broke",
    "Too long for me and a bit see through",
    "Perfect for summer evenings with sandals",
    "Cheap looking material that pills after one wash",
]


def tiny():
    """Six rows; every statistic below is computed by hand from it."""
    return pd.DataFrame({
        "color": pd.Series(["red", "blue", None, "red", "blue", "green"], dtype=object),
        "user_id": np.array([3, 1, 3, 2, 3, 1], dtype="int64"),
        "count": np.array([1, 2, 3, 4, 5, 6], dtype="int64"),
        "price": np.array([1.0, 2.0, np.nan, 4.0, 5.0, 6.0]),
        "flag": [True, False, True, True, False, True],
        "tags": pd.Series(["a|b", "b", "", None, "c|b|a", "b|a"], dtype=object),
        "genres": pd.Series([["x", "y"], ["y"], [], None, ["y", "z"], ["x"]],
                            dtype=object),
        "emb": pd.Series([[1.0, 2.0], [3.0, 4.0], None, [5.0, 6.0], [7.0, 8.0],
                          [9.0, 10.0]], dtype=object),
        "review": REVIEWS,
        "click": [0, 1, 0, 1, 1, 0],
        "spend": [0.5, 1.5, np.nan, 2.0, 0.0, 3.0],
    })


TASKS = {"click": "binary", "spend": "regression"}


@pytest.fixture
def df():
    return tiny()


@pytest.fixture
def adapted(df):
    schema = Schema.infer(df, tasks=TASKS, verbose=False, tags=MultiHot("tags"))
    return schema.adapt(df)
