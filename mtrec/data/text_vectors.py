"""Precomputed text vectors: TF-IDF (word 1-2-grams) -> TruncatedSVD.

What a table gets when it has no sentence encoder at hand: a dense vector
per text, learned on the training split only, to feed a `Vector` feature
(`mtrec.schema.Vector(..., modality="text", normalize=True)`) or a model
that takes numbers only (the gradient-boosted-tree baseline of
`benchmarks/gbdt_baseline.py` uses it for its text columns).

    vectorizer = TextVectorizer(dim=64, seed=0).fit(train["review"])
    vectors, present = vectorizer.transform(test["review"])

A text with no token of the training vocabulary (empty, missing, or only
words never seen in training) has an all-zero TF-IDF row, hence a zero
vector; `present` is False for it, so a caller can mark it missing
(`with_text_vectors` does: None, what a `Vector` column holds for a
missing row).

A loader offers them through a `text_vectors` argument (off by default;
`clothing_reviews`, `movielens_ratings`): `text_vector_settings` parses it
(None / an int dimension / `{dim, columns}`), `add_text_vectors` derives
the columns on the splits and `vector_features` declares them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["TFIDF_SETTINGS", "VECTOR_PROJECTION_DIM", "VECTOR_SUFFIX", "TextVectorizer",
           "add_text_vectors", "text_values", "text_vector_settings", "vector_features",
           "with_text_vectors"]

#: The TF-IDF of `TextVectorizer` (scikit-learn's `TfidfVectorizer` arguments).
TFIDF_SETTINGS = {"ngram_range": (1, 2), "min_df": 2, "sublinear_tf": True,
                  "max_features": 50_000}
#: Appended to a text column's name for its precomputed vector (`text_vectors`).
VECTOR_SUFFIX = "_vector"
#: Width each precomputed text vector is projected to in the model.
VECTOR_PROJECTION_DIM = 32


def text_values(series):
    """A text column as a list of str, `""` where missing."""
    return ["" if (v is None or (not isinstance(v, str) and pd.isna(v))) else str(v)
            for v in pd.Series(series).tolist()]


class TextVectorizer:
    """TF-IDF (word unigrams and bigrams, `TFIDF_SETTINGS`) then
    `TruncatedSVD`, both learned by `fit` on the texts given (the training
    split's).

    Args:
        dim: int. Components of the SVD: the vector length. When the
            learned vocabulary holds `dim` terms or fewer, `fit` keeps
            `vocabulary - 1` components (see `components`).
        seed: int. `TruncatedSVD`'s `random_state`: the same texts and seed
            give the same vectors.
        max_features: int. Most frequent terms kept. Defaults to 50,000.

    Attributes (after `fit`):
        components: int. The vector length `transform` returns.
        vocabulary_size: int. Terms of the TF-IDF.
    """

    def __init__(self, dim, seed=0, max_features=TFIDF_SETTINGS["max_features"]):
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"TextVectorizer dim must be an integer >= 1 (the vector "
                             f"length), got {dim!r}.")
        self.dim = int(dim)
        self.seed = seed
        self.max_features = max_features
        self.components = None
        self.vocabulary_size = None
        self._tfidf = self._svd = None

    def fit(self, texts):
        """Learn the vocabulary, the IDF weights and the SVD on `texts`
        (a column or list of str; missing values count as empty)."""
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        texts = text_values(texts)
        settings = {**TFIDF_SETTINGS, "max_features": self.max_features}
        tfidf = TfidfVectorizer(**settings)
        try:
            matrix = tfidf.fit_transform(texts)
        except ValueError as error:  # "empty vocabulary; perhaps the documents ..."
            raise ValueError(
                f"TextVectorizer found no term in {len(texts)} texts that occurs in at "
                f"least {settings['min_df']} of them ({error}); fit it on the training "
                f"texts of a real text column.") from None
        self.vocabulary_size = matrix.shape[1]
        self.components = max(1, min(self.dim, self.vocabulary_size - 1))
        svd = TruncatedSVD(n_components=self.components, random_state=self.seed)
        svd.fit(matrix)
        self._tfidf, self._svd = tfidf, svd
        return self

    def transform(self, texts):
        """`(vectors, present)`: float64 `(rows, components)` and bool
        `(rows,)`, False where the text has no term of the vocabulary (its
        vector is then all zeros)."""
        if self._svd is None:
            raise ValueError("TextVectorizer is not fitted; call fit(train_texts) first.")
        matrix = self._tfidf.transform(text_values(texts))
        present = np.diff(matrix.indptr) > 0
        return self._svd.transform(matrix), present


def with_text_vectors(splits, columns, dim, seed=0, suffix="_vector"):
    """The splits with a `<column><suffix>` vector column per text column,
    the vectorizer of each fit on the first split (the training split) only.

    Args:
        splits: list of DataFrames, the training split first.
        columns: list of str. Text columns to vectorise.
        dim: int. Vector length (`TextVectorizer`); the training texts must
            hold more than `dim` distinct terms.
        seed: int. The SVD's random_state.
        suffix: str. Appended to a column's name for its vector column.

    Returns:
        `(frames, vectorizers)`: new DataFrames (the inputs are not
        changed) whose vector columns hold one float32 array per row, or
        None where the text has no term of the training vocabulary (empty,
        missing, or unseen words only): a missing `Vector` row; and
        `{column: TextVectorizer}`.

    Raises:
        ValueError: a column is missing, or its training texts have too
            small a vocabulary for `dim`.
    """
    frames = [frame.copy() for frame in splits]
    fitted = {}
    for column in columns:
        for frame in frames:
            if column not in frame.columns:
                raise ValueError(f"Text column '{column}' is not in the data; columns: "
                                 f"{list(frame.columns)}.")
        vectorizer = TextVectorizer(dim, seed=seed).fit(frames[0][column])
        if vectorizer.components != dim:
            raise ValueError(
                f"Text column '{column}' has {vectorizer.vocabulary_size} TF-IDF terms in "
                f"the training split, too few for {dim}-dim vectors (at most "
                f"{vectorizer.vocabulary_size - 1}); ask for fewer dimensions or use "
                f"more rows.")
        for frame in frames:
            vectors, present = vectorizer.transform(frame[column])
            vectors = vectors.astype(np.float32)
            frame[column + suffix] = pd.Series(
                [row if keep else None for row, keep in zip(vectors, present)],
                index=frame.index, dtype=object)
        fitted[column] = vectorizer
    return frames, fitted


def text_vector_settings(text_vectors, text_columns, default_columns):
    """`{"dim", "columns"}` of a loader's `text_vectors` argument, or None (off).

    Args:
        text_vectors: None / False (off), an int (the dimension, vectors of
            `default_columns`), or a mapping `{dim: int, columns: [...]}`.
        text_columns: list of str. The loader's text columns (`columns`
            must be among them).
        default_columns: list of str. Columns vectorised when `columns` is
            not given.

    Raises:
        ValueError: unknown keys, a bad dimension, or columns that are not
            distinct text columns of the loader.
    """
    if text_vectors is None or text_vectors is False:
        return None
    example = (f"e.g. text_vectors: 64 or {{dim: 64, columns: "
               f"[{', '.join(text_columns)}]}}")
    if isinstance(text_vectors, dict):
        unknown = sorted(set(text_vectors) - {"dim", "columns"})
        if unknown or "dim" not in text_vectors:
            raise ValueError(f"text_vectors takes keys dim (required) and columns, got "
                             f"{sorted(text_vectors)}; {example}.")
        dim, columns = text_vectors["dim"], text_vectors.get("columns", list(default_columns))
    else:
        dim, columns = text_vectors, list(default_columns)
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"text_vectors dim must be an integer >= 1 (the vector length), "
                         f"got {dim!r}; {example}.")
    if (not isinstance(columns, (list, tuple)) or not columns
            or any(c not in text_columns for c in columns) or len(set(columns)) < len(columns)):
        raise ValueError(f"text_vectors columns must be a non-empty list of distinct text "
                         f"columns among {list(text_columns)}, got {columns!r}; {example}.")
    return {"dim": int(dim), "columns": list(columns)}


def vector_features(settings, projection_dim=VECTOR_PROJECTION_DIM):
    """The `Vector` specs of `settings` (`text_vector_settings`; None: none):
    one `<column>_vector` per column, modality text, L2-normalised,
    projected to `projection_dim`."""
    from mtrec.schema import Vector

    if settings is None:
        return []
    return [Vector(column + VECTOR_SUFFIX, dim=settings["dim"], projection_dim=projection_dim,
                   modality="text", normalize=True)
            for column in settings["columns"]]


def add_text_vectors(splits, settings, seed=0):
    """`(splits, note)`: the splits with the vector columns of `settings`
    (`with_text_vectors`, fit on the first split), and a description note
    such as `"; tags_vector: TF-IDF -> 64-dim SVD fit on train"` (`""`,
    splits unchanged, when `settings` is None)."""
    if settings is None:
        return list(splits), ""
    frames, _ = with_text_vectors(splits, settings["columns"], settings["dim"], seed=seed,
                                  suffix=VECTOR_SUFFIX)
    names = ", ".join(c + VECTOR_SUFFIX for c in settings["columns"])
    return frames, f"; {names}: TF-IDF -> {settings['dim']}-dim SVD fit on train"
