"""Shared fixtures: small generated tables covering every feature kind, and
the policy for tests that read the public datasets.

Tests that read a dataset copy say which with
`@pytest.mark.needs_data("census-income", ...)` (folder names under the
data root, as in `data/README.md`) or take the `data_dir` fixture. When a
copy is missing the test is skipped with the reason, except under CI
(`CI=true`), where missing data fails the run. The data root is
`$MTREC_DATA_DIR`, else `../shared/data` beside the repository (which then
becomes `$MTREC_DATA_DIR` for the loaders, as the Makefile does).
"""

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# In a pytest-xdist worker (make test runs TEST_WORKERS of them), TensorFlow
# gets one thread per pool: the workers already fill the cores, and two
# thread pools per core spin against each other. Read by TensorFlow when it
# starts, so set before anything imports it.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

import numpy as np
import pandas as pd
import pytest

import mtrec

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if not os.environ.get("MTREC_DATA_DIR") and SHARED_DATA.is_dir():
    os.environ["MTREC_DATA_DIR"] = str(SHARED_DATA)


def _dataset_files():
    """`{dataset folder: [file paths under it]}` from the loaders' own
    file lists (so the check cannot drift from what the loaders read)."""
    from mtrec.data import aliexpress, ali_ccp, census_income, clothing_reviews, movielens

    return {
        "census-income": list(census_income.FILES),
        "ml-latest-small": list(movielens.FILES),
        "womens-clothing-reviews": list(clothing_reviews.FILES),
        "samples/ali-ccp": list(ali_ccp.SAMPLE_FILES),
        "samples/aliexpress": list(aliexpress.SAMPLE_FILES),
    }


def data_root():
    """Where the tests look for the dataset copies."""
    return Path(os.environ.get("MTREC_DATA_DIR") or SHARED_DATA)


def missing_data(names):
    """Paths of the files of datasets `names` that are not under the data root."""
    known = _dataset_files()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"needs_data: unknown dataset(s) {unknown}; known: {sorted(known)}.")
    root = data_root()
    return [str(root / n / f) for n in names for f in known[n]
            if not (root / n / f).is_file()]


def under_ci():
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def _skip_or_fail(reason):
    if under_ci():
        pytest.fail(f"{reason} (CI=true: missing data fails the run)", pytrace=False)
    pytest.skip(reason)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "needs_data(*datasets): the test reads these dataset copies "
                   "(folders under $MTREC_DATA_DIR); skipped when missing, failed "
                   "under CI=true")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    # Before any fixture is set up, so a module-scoped fixture that trains on
    # the data never starts without it.
    marker = item.get_closest_marker("needs_data")
    if marker is None:
        return
    missing = missing_data(marker.args)
    if missing:
        _skip_or_fail(f"needs dataset copies {list(marker.args)} under {data_root()}; "
                      f"missing {missing}. Set MTREC_DATA_DIR to a folder laid out as "
                      f"data/README.md describes.")


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
    """The data root holding the dataset copies (read-only), as CI lays it
    out. Skipped (CI: failed) when the root is missing; a test marked
    `needs_data` has had its own datasets checked already."""
    path = data_root()
    if not path.is_dir():
        _skip_or_fail(f"no dataset copies: {path} does not exist. Set MTREC_DATA_DIR "
                      f"to a folder laid out as data/README.md describes.")
    return path
