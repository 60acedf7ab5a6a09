"""Tests for mtrec.data.text_vectors: TF-IDF -> SVD vectors fit on the
training split only, their length, determinism and missing rows."""

import numpy as np
import pandas as pd
import pytest

from mtrec.data.text_vectors import TextVectorizer, text_values, with_text_vectors

WORDS = ["soft", "fabric", "runs", "small", "large", "love", "dress", "return", "color",
         "fits", "well", "cheap", "lovely", "tight", "perfect", "length"]


def texts(rows, seed):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(3, 8))) for _ in range(rows)]


def splits(rows=(60, 10, 10)):
    frames = [pd.DataFrame({"review": texts(n, seed), "y": range(n)})
              for seed, n in enumerate(rows)]
    frames[1].loc[[0, 1, 2], "review"] = [None, "", "zebra quokka"]  # no training term
    return frames


def test_words_seen_only_outside_training_get_no_weight():
    vectorizer = TextVectorizer(dim=4, seed=0).fit(texts(60, 0))
    vectors, present = vectorizer.transform(
        ["soft fabric runs small", "soft fabric runs small zebra", "zebra quokka", ""])
    np.testing.assert_allclose(vectors[1], vectors[0])  # 'zebra' is not in the vocabulary
    assert present.tolist() == [True, True, False, False]
    assert not vectors[2:].any()
    assert "zebra" not in vectorizer._tfidf.vocabulary_


def test_length_and_determinism():
    train = texts(60, 0)
    a = TextVectorizer(dim=5, seed=3).fit(train)
    b = TextVectorizer(dim=5, seed=3).fit(train)
    va, vb = a.transform(texts(10, 1))[0], b.transform(texts(10, 1))[0]
    assert va.shape == (10, 5) and a.components == 5
    np.testing.assert_array_equal(va, vb)
    # a vocabulary smaller than dim keeps vocabulary - 1 components
    tiny = TextVectorizer(dim=50, seed=0).fit(["soft fabric", "soft fabric", "runs small"] * 2)
    assert tiny.components == tiny.vocabulary_size - 1


def test_with_text_vectors_fits_on_the_training_split_only():
    frames = splits()
    out, fitted = with_text_vectors(frames, ["review"], dim=4, seed=0)
    assert "review_vector" not in frames[0]  # the inputs are left as they were
    train_only = TextVectorizer(dim=4, seed=0).fit(frames[0]["review"])
    for frame, original in zip(out, frames):
        expected, present = train_only.transform(original["review"])
        got = frame["review_vector"]
        assert got.isna().tolist() == (~present).tolist()
        np.testing.assert_allclose(np.stack(got[present].tolist()), expected[present],
                                   rtol=1e-6, atol=1e-7)
        assert all(v.dtype == np.float32 and v.shape == (4,) for v in got[present])
    # valid rows 0-2 (missing, empty, unseen words only) are missing vectors
    assert out[1]["review_vector"][:3].isna().all() and out[1]["review_vector"][3:].notna().all()
    # fit on every split instead, the vectors differ: the SVD saw other rows
    everything = TextVectorizer(dim=4, seed=0).fit(pd.concat(frames)["review"])
    assert not np.allclose(everything.transform(frames[0]["review"])[0],
                           train_only.transform(frames[0]["review"])[0])
    assert fitted["review"].vocabulary_size == train_only.vocabulary_size


def test_too_small_a_vocabulary_and_bad_dims_are_errors():
    frames = [pd.DataFrame({"review": ["soft fabric", "soft fabric", "runs small"] * 4})] * 3
    with pytest.raises(ValueError, match="too few for 8-dim vectors"):
        with_text_vectors(frames, ["review"], dim=8)
    with pytest.raises(ValueError, match="not in the data"):
        with_text_vectors(frames, ["title"], dim=2)
    with pytest.raises(ValueError, match="dim must be an integer >= 1"):
        TextVectorizer(dim=0)
    with pytest.raises(ValueError, match="not fitted"):
        TextVectorizer(dim=2).transform(["soft"])
    with pytest.raises(ValueError, match="found no term"):
        TextVectorizer(dim=2).fit(["", None, "one"])


def test_text_values_reads_missing_as_empty():
    assert text_values(pd.Series(["a", None, np.nan, 3])) == ["a", "", "", "3"]
