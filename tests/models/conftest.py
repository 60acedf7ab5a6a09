"""Fixtures of the model tests (the shared `table` and `schema` are in tests/conftest.py)."""

import numpy as np
import pytest


@pytest.fixture(scope="module")
def masked(table):
    """The test table with a third of the click and spend labels missing."""
    table = table.copy()
    missing = np.arange(len(table)) % 3 == 0
    table["click"] = table["click"].astype("float64").where(~missing)
    table["spend"] = table["spend"].where(~missing)
    return table
