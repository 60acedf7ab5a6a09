"""Tests for mtrec.data.clothing_reviews: the local copy, the Kaggle CSV, max_rows."""

import pandas as pd
import pytest

from mtrec.data import clothing_reviews
from mtrec.data.download import DataNotFoundError


def write_csv(folder, rows=40):
    folder.mkdir(parents=True)
    frame = pd.DataFrame({
        "Clothing ID": range(rows), "Age": [30 + i % 20 for i in range(rows)],
        "Title": ["Nice"] * rows, "Review Text": ["Fits well, soft."] * rows,
        "Rating": [1 + i % 5 for i in range(rows)],
        "Recommended IND": [i % 2 for i in range(rows)],
        "Positive Feedback Count": [0] * rows, "Division Name": ["General"] * rows,
        "Department Name": ["Tops"] * rows, "Class Name": ["Knits"] * rows})
    frame.to_csv(folder / clothing_reviews.KAGGLE_CSV)  # Kaggle's has an index column


def test_the_kaggle_csv_is_read_when_there_is_no_parquet(tmp_path, offline):
    write_csv(tmp_path / clothing_reviews.SUBDIR)
    train, valid, test = clothing_reviews.load(data_dir=tmp_path)
    assert (len(train), len(valid), len(test)) == (32, 4, 4)
    assert list(train.columns) == list(clothing_reviews.COLUMNS.values())
    train, valid, test = clothing_reviews.load(data_dir=tmp_path, max_rows=20)
    assert (len(train), len(valid), len(test)) == (16, 2, 2)
    assert set(pd.concat([train, valid, test])["clothing_id"]) == set(range(20))


def test_missing_copy_names_the_parquet_and_the_kaggle_page(tmp_path, offline):
    with pytest.raises(DataNotFoundError) as info:
        clothing_reviews.load(data_dir=tmp_path)
    message = str(info.value)
    assert "reviews.parquet  from https://www.kaggle.com/datasets/" in message
    assert "data/womens-clothing-reviews/README.md" in message


@pytest.mark.parametrize("max_rows", [0, 9, 1.5, True])
def test_bad_max_rows(max_rows):
    with pytest.raises(ValueError, match="max_rows must be None or an integer >= 10"):
        clothing_reviews.load(max_rows=max_rows)


@pytest.mark.needs_data("womens-clothing-reviews")
def test_the_local_copy_and_max_rows(data_dir):
    full = clothing_reviews.load(data_dir=data_dir)
    assert sum(len(f) for f in full) == 23486
    small = clothing_reviews.load(data_dir=data_dir, max_rows=3000)
    assert [len(f) for f in small] == [2400, 300, 300]
