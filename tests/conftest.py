"""Shared fixtures: small generated tables covering every feature kind."""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pandas as pd
import pytest

import mtrec

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def make_table(rows=300, seed=0):
    """A table with every feature kind and three task kinds.

    Labels depend on the features, so models can learn something.
    """
    rng = np.random.default_rng(seed)
    color = rng.choice(["red", "green", "blue", None], rows).astype(object)
    num = rng.normal(size=rows).astype("float32")
    num[rng.random(rows) < 0.1] = np.nan
    tags = ["|".join(rng.choice(list("abcde"), rng.integers(0, 4), replace=False))
            for _ in range(rows)]
    words = ["soft", "tight", "lovely", "cheap", "Runs", "small!", "fits", "great"]
    title = [" ".join(rng.choice(words, rng.integers(0, 9))) for _ in range(rows)]
    vec = [rng.normal(size=4).astype("float32") for _ in range(rows)]
    user_id = rng.integers(0, 40, rows)
    signal = np.nan_to_num(num) + (color == "red") * 1.0
    return pd.DataFrame({
        "color": color,
        "user_id": user_id,
        "num": num,
        "tags": tags,
        "title": title,
        "vec": vec,
        "click": (signal + rng.normal(scale=0.5, size=rows) > 0.5).astype("int64"),
        "spend": (signal * 2 + rng.normal(size=rows)).astype("float64"),
        "grade": rng.integers(0, 3, rows),
    })


TASKS = {"click": "binary", "spend": "regression", "grade": "multiclass"}


@pytest.fixture(scope="session")
def table():
    return make_table()


@pytest.fixture(scope="session")
def schema(table):
    schema = mtrec.Schema.infer(table, tasks=TASKS, verbose=False,
                                tags=mtrec.MultiHot("tags"), title=mtrec.Text("title"))
    return schema.adapt(table)


@pytest.fixture(scope="session")
def data_dir():
    """The shared public datasets (read-only), as CI lays them out."""
    path = Path(os.environ.get("MTREC_DATA_DIR", SHARED_DATA))
    if not (path / "census-income").exists():
        pytest.fail(f"Shared data not found at {path}; set MTREC_DATA_DIR.")
    return path
