"""The streaming adapt pass learns what `Schema.adapt` learns on the whole table."""

import numpy as np
import pandas as pd
import pytest

from mtrec.schema import Categorical, MultiHot, Numeric, Schema, Text
from mtrec.schema.streaming_adapt import PRUNE_FACTOR, _Reservoir, adapt_from_frames
from mtrec.schema.validation import DataValidationError


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    n = 6000
    frame = pd.DataFrame({
        "colour": rng.choice(list("abcdefgh"), n, p=[.3, .2, .15, .1, .1, .05, .05, .05]),
        "item": rng.zipf(1.6, n) % 5000,
        "price": rng.lognormal(3, 1, n),
        "tags": ["|".join(rng.choice(list("pqrs"), rng.integers(0, 4), replace=False))
                 for _ in range(n)],
        "title": [" ".join(rng.choice([f"w{k}" for k in range(60)], rng.integers(1, 30)))
                  for _ in range(n)],
        "click": rng.integers(0, 2, n).astype(float),
        "genre": rng.integers(0, 4, n),
    })
    frame.loc[::7, "price"] = np.nan
    frame.loc[::11, "colour"] = None
    frame.loc[::5, "click"] = np.nan
    return frame


def make_schema(**overrides):
    features = {"colour": Categorical("colour", min_frequency=2),
                "item": Categorical("item", dtype="int64", max_tokens=400),
                "price": Numeric("price", log1p=True), "tags": MultiHot("tags"),
                "title": Text("title", max_tokens=40)}
    features.update(overrides)
    return Schema(list(features.values()), {"click": "binary", "genre": "multiclass"})


def chunks(frame, size):
    return (frame.iloc[start:start + size] for start in range(0, len(frame), size))


@pytest.mark.parametrize("size", [1, 997, 10_000])
def test_the_summed_statistics_equal_a_whole_table_adapt(table, size):
    frame = table if size > 1 else table.head(300)   # one row per chunk: a short table
    whole = make_schema().adapt(frame)
    streamed, summary = adapt_from_frames(make_schema(), chunks(frame, size), sample_rows=50)
    assert summary.rows == len(frame) and summary.sample_rows == 50
    for name in ("colour", "item", "tags", "title"):
        assert streamed.stats[name] == whole.stats[name], name
    for key in ("mean", "variance", "min", "max"):
        assert streamed.stats["price"][key] == pytest.approx(whole.stats["price"][key],
                                                             rel=1e-12), key
    assert streamed.stats["price"].keys() == whole.stats["price"].keys()
    assert streamed.stats["task:genre"] == whole.stats["task:genre"] == {"num_classes": 4}


def test_the_sample_is_uniform_over_the_stream_and_independent_of_chunking():
    # Rows sorted by value: a head sample would hold only the smallest.
    ordered = pd.DataFrame({"value": np.arange(100_000)})
    drawn = {}
    for size in (1000, 7919):
        reservoir = _Reservoir(2000, seed=3)
        for chunk in chunks(ordered, size):
            reservoir.add(chunk)
        drawn[size] = reservoir.frame()["value"].to_numpy()
    np.testing.assert_array_equal(np.sort(drawn[1000]), np.sort(drawn[7919]))
    assert len(drawn[1000]) == 2000 and len(set(drawn[1000])) == 2000
    # uniform: the mean of 2,000 draws of U{0..99,999} is 50,000 +- 3 standard errors
    assert abs(drawn[1000].mean() - 50_000) < 3 * 28_868 / np.sqrt(2000)
    assert drawn[1000].max() > 95_000


def test_a_capped_vocabulary_keeps_the_most_frequent_ids_when_pruned():
    rng = np.random.default_rng(1)
    # 50 frequent ids and 20,000 ids seen once, frequent ones spread over the stream.
    frequent = np.repeat(np.arange(50), 40)
    rare = np.arange(1000, 21_000)
    ids = rng.permutation(np.concatenate([frequent, rare]))
    frame = pd.DataFrame({"id": ids, "click": rng.integers(0, 2, len(ids)).astype(float)})
    schema = Schema([Categorical("id", dtype="int64", max_tokens=50)], {"click": "binary"})
    adapted, summary = adapt_from_frames(schema, chunks(frame, 500))
    assert summary.pruned["id"] > 0            # the counter stayed bounded
    assert sorted(adapted.stats["id"]["vocabulary"]) == list(range(50))
    assert PRUNE_FACTOR * 50 < 20_000


def test_no_rows_and_no_labels_are_refused(table):
    with pytest.raises(DataValidationError, match="read no rows"):
        adapt_from_frames(make_schema(), iter([table.head(0)]))
    unlabelled = table.assign(click=np.nan)
    with pytest.raises(DataValidationError, match=r"'click' \(label column 'click' is all"):
        adapt_from_frames(make_schema(), chunks(unlabelled, 1000))
    with pytest.raises(ValueError, match="sample_rows must be an integer >= 1"):
        adapt_from_frames(make_schema(), chunks(table, 1000), sample_rows=0)


def test_a_bad_chunk_is_named_like_a_bad_table(table):
    bad = table.copy()
    bad["price"] = bad["price"].astype(object)
    bad.loc[4000, "price"] = "n/a"
    with pytest.raises(ValueError, match="price"):
        adapt_from_frames(make_schema(), chunks(bad, 1000))
