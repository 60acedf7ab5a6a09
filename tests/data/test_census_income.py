"""Tests for mtrec.data.census_income on the real UCI files (read-only)."""

import re

import numpy as np
import pandas as pd
import pytest

from mtrec.data import census_income

TRAIN_ROWS = 199523
HELD_OUT_ROWS = 99762
# census-income.names: 40 attributes, 7 continuous (+ instance weight).
NUM_FEATURES = 38
# Absolute Pearson correlations of the two labels that the MMoE paper
# (Ma et al., KDD 2018, Table 2 / section 6.3) reports for its groups.
PAPER_CORRELATION = {1: 0.1768, 2: 0.2373}
needs_census = pytest.mark.needs_data("census-income")


@pytest.fixture(scope="module")
def folder(data_dir):
    return data_dir / "census-income"


@pytest.fixture(scope="module")
def raw_reads(folder):
    """Each raw file parsed once for the module; `load` is real otherwise.

    Parsing takes a few seconds per file, so `read_raw` is memoised while
    this module loads the groups and seeds it needs (every call still runs
    `locate`, the md5 checks, the labels and the split).
    """
    cache = {}
    real = census_income.read_raw

    def read_raw(path, nrows=None):
        if str(path) not in cache:
            cache[str(path)] = real(path)
        frame = cache[str(path)]
        return (frame if nrows is None else frame.iloc[:nrows]).copy()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(census_income, "read_raw", read_raw)
        yield read_raw


@pytest.fixture(scope="module")
def loads(raw_reads, folder, data_dir):
    return {
        (1, 0): census_income.load(group=1, data_dir=folder, download=False),
        (2, 0): census_income.load(group=2, data_dir=folder, download=False),
        # data_dir may also be the $MTREC_DATA_DIR-style root
        (1, 0, "again"): census_income.load(group=1, data_dir=data_dir, download=False),
        (1, 1): census_income.load(group=1, data_dir=folder, seed=1, download=False),
    }


@pytest.fixture(scope="module")
def raw_train(raw_reads, folder):
    return raw_reads(folder / "census-income.data.gz")


@needs_census
def test_group1_sizes(loads):
    train, valid, test = loads[1, 0]
    assert len(train) == TRAIN_ROWS
    assert len(valid) + len(test) == HELD_OUT_ROWS
    assert (len(valid), len(test)) == (49881, 49881)


@needs_census
def test_valid_and_test_partition_the_test_file(loads, raw_reads, folder):
    _, valid, test = loads[1, 0]
    held_out = census_income.add_labels(
        raw_reads(folder / "census-income.test.gz"), group=1)

    def row_hashes(df):
        return np.sort(pd.util.hash_pandas_object(df, index=False).to_numpy())

    # Same multiset of rows and sizes that add up: every held-out row went
    # to exactly one side (rows repeat in this data, so hash whole rows).
    np.testing.assert_array_equal(row_hashes(pd.concat([valid, test])),
                                  row_hashes(held_out))


@needs_census
def test_columns_and_dtypes(loads):
    train, valid, test = loads[1, 0]
    for df in (train, valid, test):
        assert list(df.columns) == list(train.columns)
        for column in census_income.REMOVED_FROM_INPUTS:
            assert column not in df.columns
    features = [c for c in train.columns if c not in ("income", "marital")]
    assert len(features) == NUM_FEATURES
    assert sorted(c for c in features if train[c].dtype == np.float32) == sorted(
        census_income.CONTINUOUS)
    strings = [c for c in features if c not in census_income.CONTINUOUS]
    assert len(strings) == 31
    assert all(train[c].dtype == object for c in strings)
    assert train.columns[-2:].tolist() == ["income", "marital"]


@needs_census
def test_group1_labels(loads):
    train, valid, test = loads[1, 0]
    for df in (train, valid, test):
        for label in ("income", "marital"):
            assert df[label].dtype == np.int32
            assert set(np.unique(df[label])) == {0, 1}
    # The paper: income positives 6.2 %, never married 43.3 %.
    assert round(train["income"].mean(), 3) == 0.062
    assert round(train["marital"].mean(), 3) == 0.433
    assert int(train["income"].sum()) == 12382
    assert int(train["marital"].sum()) == 86485


@needs_census
def test_group2_labels(loads):
    train, valid, test = loads[2, 0]
    assert "education" in train.columns and "marital" in train.columns
    assert "income" not in train.columns
    assert "marital_stat" not in train.columns and "income_label" not in train.columns
    assert len(train.columns) == NUM_FEATURES + 2
    assert train["education"].dtype == np.int32
    assert set(np.unique(train["education"])) == {0, 1}
    # Associates degree or higher: 5358 + 4363 + 19865 + 6541 + 1793 + 1263
    assert int(train["education"].sum()) == 39183
    assert round(train["education"].mean(), 3) == 0.196
    # group 1 and group 2 share the features and the marital label
    train1 = loads[1, 0][0]
    assert train.drop(columns="education").equals(train1.drop(columns="income"))


@needs_census
def test_group2_label_correlation_matches_the_paper(loads):
    train, _, _ = loads[2, 0]
    r = census_income.label_correlation(train, "education", "marital")
    # Measured on the train file: -0.2400 (never married is mostly children,
    # who have no college degree, hence the sign). The paper reports the
    # absolute value, 0.2373. The 0.01 tolerance covers that gap (0.0027,
    # rounding and preprocessing differences) and still tells the
    # definition apart from its neighbours: bachelors or higher gives 0.198,
    # including "Some college but no degree" gives 0.288.
    assert r == pytest.approx(-0.2400, abs=5e-4)
    assert abs(abs(r) - PAPER_CORRELATION[2]) < 0.01


@needs_census
def test_group1_label_correlation_matches_the_paper(loads):
    train, _, _ = loads[1, 0]
    r = census_income.label_correlation(train, "income", "marital")
    # Measured -0.1782; the paper reports |r| = 0.1768.
    assert r == pytest.approx(-0.1782, abs=5e-4)
    assert abs(abs(r) - PAPER_CORRELATION[1]) < 0.01


@needs_census
def test_split_is_repeatable_for_a_seed(loads):
    first, again, other = loads[1, 0], loads[1, 0, "again"], loads[1, 1]
    # DataFrame.equals: same values and dtypes (assert_frame_equal takes
    # seconds on 200k object rows).
    assert all(a.equals(b) for a, b in zip(first, again))
    assert first[0].equals(other[0])     # train is not split
    assert not first[1].equals(other[1])
    assert not first[2].equals(other[2])
    # the seed only reorders which rows go where: same sizes, same positives
    assert len(other[1]) == len(first[1])
    assert first[1]["income"].sum() + first[2]["income"].sum() == (
        other[1]["income"].sum() + other[2]["income"].sum())


@pytest.mark.parametrize("max_rows", [0, 3, 2.5, True, "100"])
def test_bad_max_rows_raises_before_reading(max_rows):
    with pytest.raises(ValueError, match="max_rows must be None or an integer >= 4"):
        census_income.load(max_rows=max_rows)


@needs_census
def test_max_rows_reads_the_first_rows_and_shrinks_the_held_out_split(folder):
    full_train = census_income.read_raw(folder / "census-income.data.gz", nrows=1000)
    full_held_out = census_income.read_raw(folder / "census-income.test.gz", nrows=500)
    train, valid, test = census_income.load(group=1, data_dir=folder, download=False,
                                            max_rows=1000)
    assert len(train) == 1000 and len(valid) == len(test) == 250
    # the first lines of the training file, labelled as in the full load
    assert train["age"].tolist() == full_train["age"].tolist()
    assert train["income"].tolist() == census_income.add_labels(
        full_train, 1)["income"].tolist()
    # validation and test partition the first 500 lines of the test file
    ages = sorted(valid["age"].tolist() + test["age"].tolist())
    assert ages == sorted(full_held_out["age"].tolist())


def test_registered_dataset_passes_max_rows(monkeypatch):
    from mtrec.data import registry

    seen = {}

    def load(**kwargs):
        seen.update(kwargs)
        frame = pd.DataFrame({"income": [0, 1], "marital": [1, 0]})
        return frame, frame, frame

    monkeypatch.setattr(census_income, "load", load)
    splits = registry.load_dataset("census_income", max_rows=40)
    assert seen["max_rows"] == 40
    assert "first 40 training rows" in splits.description


def test_unknown_group_raises():
    with pytest.raises(ValueError, match=r"group must be 1 .* or 2 .*got 3"):
        census_income.load(group=3)


@needs_census
def test_raw_columns_match_the_names_file(raw_train, folder):
    """Each column has the number of distinct values the .names file lists.

    This pins the column order (a shifted column would not match) and the
    missing values: only '?' is missing; "NA" is a real hispanic origin.
    """
    text = (folder / "census-income.names").read_text(encoding="latin-1")
    listed = re.findall(
        r"\|\s+(\d+) distinct values for attribute #(\d+) \((.+?)\) (continuous|nominal)",
        text)
    assert len(listed) == 40
    attributes = [c for c in census_income.COLUMNS
                  if c not in ("instance_weight", "income_label")]
    for count, index, name, kind in listed:
        column = attributes[int(index)]
        assert column.replace("_", " ").startswith(
            name.replace("-", " ").replace("'", "")[:10]), (column, name)
        assert raw_train[column].nunique(dropna=False) == int(count), column
        assert (column in census_income.CONTINUOUS) == (kind == "continuous"), column
    assert raw_train["hispanic_origin"].notna().all()
    assert (raw_train["hispanic_origin"] == "NA").sum() == 874
    assert raw_train["migration_code_change_in_msa"].isna().sum() == 99696


@needs_census
def test_raw_income_label_values(raw_train):
    assert set(raw_train["income_label"]) == {"- 50000.", "50000+."}
    assert raw_train["instance_weight"].dtype == np.float64
