"""Tests for mtrec.data.clothing_reviews: the local copy, the Kaggle CSV,
max_rows, text_vectors."""

import numpy as np
import pandas as pd
import pytest

from mtrec.data import clothing_reviews
from mtrec.data.download import DataNotFoundError
from mtrec.data.text_vectors import TextVectorizer
from mtrec.schema import Vector


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


def write_varied_csv(folder, rows=80):
    """Kaggle's CSV with varied titles and reviews; reviews 0-4 empty or missing."""
    rng = np.random.default_rng(0)
    words = ["soft", "fabric", "runs", "small", "large", "love", "dress", "return",
             "color", "fits", "well", "cheap", "lovely", "tight", "perfect", "length"]
    reviews = [" ".join(rng.choice(words, rng.integers(3, 9))) for _ in range(rows)]
    reviews[:5] = [None, "", None, "", None]
    write_csv(folder, rows)
    frame = pd.read_csv(folder / clothing_reviews.KAGGLE_CSV, index_col=0)
    frame["Review Text"] = reviews
    frame["Title"] = [" ".join(rng.choice(words, 2)) for _ in range(rows)]
    frame.to_csv(folder / clothing_reviews.KAGGLE_CSV)


def test_text_vectors_are_off_by_default(tmp_path, offline):
    write_varied_csv(tmp_path / clothing_reviews.SUBDIR)
    data = clothing_reviews.clothing_reviews(data_dir=tmp_path)
    assert "review_vector" not in data.train.columns
    assert not [s for s in data.features if s.kind == "vector"]
    assert data.features == clothing_reviews.features()


def test_text_vectors_fit_on_train_with_missing_rows(tmp_path, offline):
    write_varied_csv(tmp_path / clothing_reviews.SUBDIR)
    data = clothing_reviews.clothing_reviews(data_dir=tmp_path, text_vectors=6)
    plain = clothing_reviews.clothing_reviews(data_dir=tmp_path)
    spec = data.features[-1]
    assert spec == Vector("review_vector", dim=6, projection_dim=32, modality="text",
                          normalize=True)
    assert "review_vector: TF-IDF -> 6-dim SVD fit on train" in data.description
    train_only = TextVectorizer(dim=6, seed=0).fit(plain.train["review"])
    for split in ("train", "valid", "test"):
        frame, original = getattr(data, split), getattr(plain, split)
        pd.testing.assert_frame_equal(frame.drop(columns="review_vector"), original)
        empty = original["review"].fillna("").str.strip() == ""
        assert frame["review_vector"][empty].isna().all()
        expected, present = train_only.transform(original["review"])
        np.testing.assert_allclose(np.stack(frame["review_vector"][present].tolist()),
                                   expected[present], rtol=1e-6, atol=1e-7)
        # the spec turns a missing vector into a NaN row (its missing value)
        array = spec.to_array(frame["review_vector"], {"dim": 6})
        assert array.shape == (len(frame), 6)
        assert np.isnan(array).all(axis=1).tolist() == frame["review_vector"].isna().tolist()
    assert sum(getattr(data, s)["review_vector"].isna().sum()
               for s in ("train", "valid", "test")) == 5
    again = clothing_reviews.clothing_reviews(data_dir=tmp_path, text_vectors=6)
    np.testing.assert_array_equal(np.stack(again.test["review_vector"].dropna().tolist()),
                                  np.stack(data.test["review_vector"].dropna().tolist()))
    both = clothing_reviews.clothing_reviews(
        data_dir=tmp_path, text_vectors={"dim": 3, "columns": ["review", "title"]})
    assert [s.name for s in both.features if s.kind == "vector"] == ["review_vector",
                                                                     "title_vector"]
    assert both.train["title_vector"].dropna().map(len).eq(3).all()


@pytest.mark.parametrize("value, message", [
    (0, "dim must be an integer >= 1"), (True, "dim must be an integer >= 1"),
    ({"columns": ["review"]}, "keys dim \\(required\\) and columns"),
    ({"dim": 4, "colums": ["review"]}, "keys dim \\(required\\) and columns"),
    ({"dim": 4, "columns": ["age"]}, "distinct text columns among"),
    ({"dim": 4, "columns": []}, "distinct text columns among"),
])
def test_bad_text_vectors(value, message):
    with pytest.raises(ValueError, match=message):
        clothing_reviews.text_vector_settings(value)
