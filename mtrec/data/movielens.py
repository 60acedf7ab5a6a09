"""MovieLens latest-small turned into multi-task data: a *derived* funnel and
a rating task pair.

MovieLens has ratings, not impressions: everything here labelled "derived"
is built by this module, not observed. Source: GroupLens,
https://files.grouplens.org/datasets/movielens/ml-latest-small.zip
(`ratings.csv`, `movies.csv`, `tags.csv`; the md5s in `FILES` pin the
2018 release; non-commercial use, cite GroupLens, see its README.txt).
Read from `$MTREC_DATA_DIR/ml-latest-small/`, or downloaded (the zip is
unpacked into the user cache and every file md5-checked).

`funnel` (derived impression -> click -> conversion funnel):

- impressions: every rated (user, movie) pair, plus
  `negatives_per_positive` unrated pairs per rated one, drawn (seeded)
  uniformly from the movies of `movies.csv` the user never rated, with
  replacement (the heaviest user rated 2,698 of the 9,742 movies, more than
  a quarter of the catalogue, so four distinct unrated movies per rating do
  not always exist). An unrated impression's timestamp is one of the
  user's own rating timestamps, drawn at random: it falls within the
  user's active period, when the user was active, so the click rate stays
  about `1 / (1 + negatives_per_positive)` along each user's timeline;
- `click` = the pair was rated; `conversion` = rated >= 4 stars (0 when
  not clicked, so conversion implies click);
- split by time per user: each user's impressions are ordered by
  timestamp (ties in a seeded random order); the last `test_fraction` of
  them are the test rows, the last `valid_fraction` of the rest the
  validation rows, the remainder the training rows;
- user features come from the user's *training* rows only, so nothing
  from the validation or test period reaches them: `user_num_ratings`,
  `user_mean_rating`, `user_like_rate` (share of ratings >= 4);
  movie features: `genres` (MultiHot, "|"-delimited as in movies.csv, ""
  for "(no genres listed)"), `title` (Text), `year` (from the title; NaN
  when absent), `movie_popularity` (number of training ratings of the
  movie, all users).

The split is per user, so one user's training period can be later in
calendar time than another user's test period; `movie_popularity` counts
training ratings of all users and can thus reflect calendar time after a
test row. User features never do.

`ratings_tasks`: every rating is a row; tasks `like` (rating >= 4, binary)
and `rating` (regression); the same per-user time split and training-only
user features; item features `genres`, `title`, `year`,
`movie_popularity` and `tags` (Text: the tags users gave the movie,
concatenated in time order, keeping only tags given no later than the
tagging user's last training rating).

Both are registered in `mtrec.data.registry` as `movielens_funnel` and
`movielens_ratings` (group column `user_id`, for GAUC; the `timestamp`
column is dropped there so it is not taken as a feature).

With `text_vectors` (off by default), `movielens_ratings` also derives a
precomputed text embedding per text column, `tags_vector` (and
`title_vector` when asked: `{dim: 64, columns: [title, tags]}`): TF-IDF
word 1-2-grams -> TruncatedSVD (`mtrec.data.text_vectors`), fit on the
training split's rows only (a movie's text counts once per training
rating) and seeded by the split seed, declared as
`Vector(..., modality="text", normalize=True)`; a row whose text has no
term of the training vocabulary (no tags yet, most rows: ~87% of the
training ratings) has a missing vector (None).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import zipfile

import numpy as np
import pandas as pd

from mtrec.data.download import cache_dir, locate
from mtrec.data.registry import DatasetSplits, register_dataset
from mtrec.data.text_vectors import add_text_vectors, text_vector_settings, vector_features
from mtrec.schema import Categorical, MultiHot, Numeric, Schema, TaskSpec, Text, funnel_tasks
from mtrec.utils.arguments import check_optional_count

logger = logging.getLogger(__name__)

SUBDIR = "ml-latest-small"
BASE_URL = "https://files.grouplens.org/datasets/movielens"
ARCHIVE = "ml-latest-small.zip"
FILES = {
    "ratings.csv": "325a6f09399d1c45671f187505e1a100",
    "movies.csv": "ed94fab72b62442ef8150d9446e000d6",
    "tags.csv": "1b2d21a7be1cc23d327b11155a4a6aea",
}
LIKE_THRESHOLD = 4.0
# The funnel tasks as TaskSpecs (mtrec.schema.FUNNEL_TASKS holds their names).
FUNNEL_TASKS = funnel_tasks(click="click", conversion="conversion")
RATING_TASKS = [TaskSpec("like", "binary"), TaskSpec("rating", "regression")]
USER_FEATURES = ["user_num_ratings", "user_mean_rating", "user_like_rate"]
#: Text columns of the rating tasks, and those `text_vectors: <dim>` vectorises.
RATINGS_TEXT_COLUMNS = ["title", "tags"]
DEFAULT_VECTOR_COLUMNS = ["tags"]
_YEAR = re.compile(r"\((\d{4})\)\s*$")
_NO_GENRES = "(no genres listed)"


# --------------------------------------------------------------------------
# Files
# --------------------------------------------------------------------------
def locate_files(data_dir=None, download=True):
    """Folder holding `FILES` (md5-checked): `data_dir`,
    `$MTREC_DATA_DIR/ml-latest-small`, or the user cache, where the
    official zip is downloaded and unpacked when `download`."""
    try:
        return locate(SUBDIR, FILES, BASE_URL, data_dir=data_dir, download=False)
    except FileNotFoundError:
        if not download:
            raise
    # The files come in one zip: fetch it into the cache, unpack the
    # members we use next to it, then verify them like a local copy.
    archive_folder = locate(f"{SUBDIR}-archive", {ARCHIVE: None}, BASE_URL,
                            data_dir=None, download=True)
    target = cache_dir() / SUBDIR
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive_folder / ARCHIVE) as archive:
        for name in FILES:
            if (target / name).exists():
                continue
            member = f"{SUBDIR}/{name}"
            if member not in archive.namelist():
                raise ValueError(f"{archive_folder / ARCHIVE} has no {member}; the "
                                 f"archive is not the ml-latest-small release.")
            fd, tmp = tempfile.mkstemp(dir=target, prefix=name + ".")
            with os.fdopen(fd, "wb") as out:
                out.write(archive.read(member))
            os.replace(tmp, target / name)
    return locate(SUBDIR, FILES, BASE_URL, data_dir=target, download=False)


def read(data_dir=None, download=True):
    """`(ratings, movies, tags)` DataFrames as in the CSV files."""
    folder = locate_files(data_dir, download)
    ratings = pd.read_csv(folder / "ratings.csv",
                          dtype={"userId": "int64", "movieId": "int64",
                                 "rating": "float32", "timestamp": "int64"})
    movies = pd.read_csv(folder / "movies.csv", dtype={"movieId": "int64"},
                         keep_default_na=False)
    tags = pd.read_csv(folder / "tags.csv",
                       dtype={"userId": "int64", "movieId": "int64", "timestamp": "int64"},
                       keep_default_na=False)
    return ratings, movies, tags


# --------------------------------------------------------------------------
# Funnel
# --------------------------------------------------------------------------
def funnel(data_dir=None, negatives_per_positive=4, seed=0, test_fraction=0.2,
           valid_fraction=0.1, download=True):
    """The derived CTR -> CVR funnel (see the module docstring).

    Args:
        data_dir: folder of the files; default `$MTREC_DATA_DIR`.
        negatives_per_positive: int. Unrated impressions per rating.
        seed: int. Seed of the unrated impressions and of timestamp ties.
        test_fraction: float. Last share of each user's impressions for test.
        valid_fraction: float. Last share of the rest for validation.
        download: bool. Allow downloading when no local copy exists.

    Returns:
        `(train, valid, test)` DataFrames: `user_id`, `movie_id`,
        `timestamp`, movie features, user features, `click` and
        `conversion` (int32).
    """
    ratings, movies, _ = read(data_dir, download)
    return build_funnel(ratings, movies, negatives_per_positive, seed, test_fraction,
                        valid_fraction)


def build_funnel(ratings, movies, negatives_per_positive=4, seed=0, test_fraction=0.2,
                 valid_fraction=0.1):
    """`funnel` on DataFrames shaped like `ratings.csv` and `movies.csv`."""
    _check_fractions(test_fraction, valid_fraction)
    if (isinstance(negatives_per_positive, bool)
            or not isinstance(negatives_per_positive, (int, np.integer))
            or negatives_per_positive < 0):
        raise ValueError(f"negatives_per_positive must be an integer >= 0, got "
                         f"{negatives_per_positive!r}.")
    rng = np.random.default_rng(seed)
    positives = pd.DataFrame({
        "user_id": ratings["userId"].to_numpy("int64"),
        "movie_id": ratings["movieId"].to_numpy("int64"),
        "timestamp": ratings["timestamp"].to_numpy("int64"),
        "rating": ratings["rating"].to_numpy("float32"),
    })
    negatives = _unrated_impressions(positives, movies["movieId"].to_numpy("int64"),
                                     negatives_per_positive, rng)
    impressions = pd.concat([positives, negatives], ignore_index=True)
    impressions["click"] = impressions["rating"].notna().astype("int32")
    impressions["conversion"] = (impressions["rating"] >= LIKE_THRESHOLD).astype("int32")
    split = _time_split(impressions, test_fraction, valid_fraction, rng)
    train_ratings = impressions[(split == "train") & (impressions["click"] == 1)]
    frame = _with_features(impressions, train_ratings, movies)
    columns = ["user_id", "movie_id", "timestamp", "genres", "title", "year",
               "movie_popularity", *USER_FEATURES, "click", "conversion"]
    frame = frame[columns]
    out = tuple(frame[split == part].sort_values(["user_id", "timestamp"], kind="stable")
                .reset_index(drop=True) for part in ("train", "valid", "test"))
    logger.info("movielens funnel (derived): %d/%d/%d impressions; CTR %.3f, CVR %.3f",
                *(len(f) for f in out), out[0]["click"].mean(),
                out[0].loc[out[0]["click"] == 1, "conversion"].mean())
    return out


def funnel_schema(embedding_dim=16):
    """The schema of `funnel`'s frames (not adapted): ids as integer
    categoricals, `genres` MultiHot, `title` Text, numerics (popularity and
    counts log1p-scaled), the funnel tasks. `timestamp` is not a feature."""
    return Schema(_item_features(embedding_dim) + _user_features(), FUNNEL_TASKS)


# --------------------------------------------------------------------------
# Rating tasks
# --------------------------------------------------------------------------
def ratings_tasks(data_dir=None, test_fraction=0.2, valid_fraction=0.1, seed=0,
                  download=True, max_users=None):
    """Every rating as a row, with tasks `like` (rating >= 4) and `rating`.

    Split by time per user like `funnel`; user features from the training
    ratings only; item features `genres`, `title`, `year`,
    `movie_popularity` and `tags` (see the module docstring). `max_users`
    (int or None) keeps the ratings and tags of the `max_users` lowest user
    ids only: a smaller table with the same per-user split, for smoke runs.

    Returns:
        `(train, valid, test)` DataFrames: `user_id`, `movie_id`,
        `timestamp`, features, `like` (int32), `rating` (float32).
    """
    check_optional_count("max_users", max_users, 1, "users to keep")
    ratings, movies, tags = read(data_dir, download)
    if max_users is not None:
        kept = np.sort(ratings["userId"].unique())[:max_users]
        ratings = ratings[ratings["userId"].isin(kept)]
        tags = tags[tags["userId"].isin(kept)]
    return build_ratings_tasks(ratings, movies, tags, test_fraction, valid_fraction, seed)


def build_ratings_tasks(ratings, movies, tags, test_fraction=0.2, valid_fraction=0.1,
                        seed=0):
    """`ratings_tasks` on DataFrames shaped like the CSV files."""
    _check_fractions(test_fraction, valid_fraction)
    rng = np.random.default_rng(seed)
    rows = pd.DataFrame({
        "user_id": ratings["userId"].to_numpy("int64"),
        "movie_id": ratings["movieId"].to_numpy("int64"),
        "timestamp": ratings["timestamp"].to_numpy("int64"),
        "rating": ratings["rating"].to_numpy("float32"),
    })
    split = _time_split(rows, test_fraction, valid_fraction, rng)
    train = rows[split == "train"]
    frame = _with_features(rows, train, movies)
    # Tags known by the end of the tagging user's training period.
    cutoff = train.groupby("user_id")["timestamp"].max()
    tag_rows = pd.DataFrame({"user_id": tags["userId"].to_numpy("int64"),
                             "movie_id": tags["movieId"].to_numpy("int64"),
                             "timestamp": tags["timestamp"].to_numpy("int64"),
                             "tag": tags["tag"].astype(str).to_numpy(object)})
    limit = tag_rows["user_id"].map(cutoff)
    tag_rows = tag_rows[limit.notna() & (tag_rows["timestamp"] <= limit)]
    movie_tags = (tag_rows.sort_values(["movie_id", "timestamp"], kind="stable")
                  .groupby("movie_id")["tag"].agg(" ".join))
    frame["tags"] = frame["movie_id"].map(movie_tags).fillna("").astype(object)
    frame["like"] = (frame["rating"] >= LIKE_THRESHOLD).astype("int32")
    frame["rating"] = frame["rating"].astype("float32")
    columns = ["user_id", "movie_id", "timestamp", "genres", "title", "year", "tags",
               "movie_popularity", *USER_FEATURES, "like", "rating"]
    frame = frame[columns]
    return tuple(frame[split == part].sort_values(["user_id", "timestamp"], kind="stable")
                 .reset_index(drop=True) for part in ("train", "valid", "test"))


def ratings_schema(embedding_dim=16):
    """The schema of `ratings_tasks`' frames (not adapted)."""
    features = _item_features(embedding_dim) + [Text("tags")] + _user_features()
    return Schema(features, RATING_TASKS)


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------
@register_dataset("movielens_funnel", tasks=FUNNEL_TASKS)
def movielens_funnel(negatives_per_positive=4, seed=0, test_fraction=0.2,
                     valid_fraction=0.1, data_dir=None):
    """MovieLens latest-small as a derived impression -> click -> conversion
    funnel (`mtrec.data.movielens.funnel`); tasks ctr, cvr (masked by
    click), ctcvr. Use `funnel_schema()`'s specs for genres (MultiHot) and
    title (Text)."""
    train, valid, test = funnel(data_dir, negatives_per_positive, seed, test_fraction,
                                valid_fraction)
    return DatasetSplits(
        *(f.drop(columns="timestamp") for f in (train, valid, test)),
        tasks=list(FUNNEL_TASKS), group_column="user_id",
        features=funnel_schema().features,
        description=f"MovieLens latest-small, derived funnel: ratings as clicks, "
                    f"rating >= 4 as conversions, {negatives_per_positive} sampled "
                    f"unrated impressions per rating (seed {seed}); per-user time "
                    f"split {1 - test_fraction:g}/{test_fraction:g}")


@register_dataset("movielens_ratings", tasks=RATING_TASKS)
def movielens_ratings(test_fraction=0.2, valid_fraction=0.1, seed=0, data_dir=None,
                      text_vectors=None, max_users=None):
    """MovieLens latest-small ratings with tasks like (rating >= 4) and
    rating (regression) (`mtrec.data.movielens.ratings_tasks`);
    `text_vectors` (an int dimension, or `{dim, columns}`) adds
    precomputed TF-IDF -> SVD vectors of the tags (`tags_vector`;
    `columns` may add `title`), fit on the training split only. Off by
    default. `max_users` keeps the lowest user ids only (smoke runs)."""
    settings = text_vector_settings(text_vectors, RATINGS_TEXT_COLUMNS,
                                    DEFAULT_VECTOR_COLUMNS)
    splits = ratings_tasks(data_dir, test_fraction, valid_fraction, seed,
                           max_users=max_users)
    splits, note = add_text_vectors([f.drop(columns="timestamp") for f in splits],
                                    settings, seed=seed)
    return DatasetSplits(
        *splits, tasks=list(RATING_TASKS), group_column="user_id",
        features=ratings_schema().features + vector_features(settings),
        description=f"MovieLens latest-small ratings (derived tasks: like = rating >= 4, "
                    f"rating); per-user time split {1 - test_fraction:g}/{test_fraction:g}"
                    + ("" if max_users is None else f"; the first {max_users} users")
                    + note)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _check_fractions(test_fraction, valid_fraction):
    for name, value in (("test_fraction", test_fraction), ("valid_fraction", valid_fraction)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
            raise ValueError(f"{name} must be a number in (0, 1), got {value!r}.")


def _unrated_impressions(positives, catalogue, per_positive, rng):
    """`per_positive` unrated (user, movie) pairs per rating, uniform over the
    catalogue minus the user's rated movies, with replacement; timestamps
    drawn from the user's own rating timestamps."""
    columns = {"user_id": "int64", "movie_id": "int64", "timestamp": "int64",
               "rating": "float32"}
    if per_positive == 0 or positives.empty:
        return pd.DataFrame({c: pd.Series(dtype=d) for c, d in columns.items()})
    catalogue = np.unique(catalogue)
    by_user = positives.sort_values(["user_id", "timestamp", "movie_id"], kind="stable")
    users = by_user["user_id"].to_numpy()
    user_ids, first, counts = np.unique(users, return_index=True, return_counts=True)
    unrated_count = len(catalogue) - by_user.groupby("user_id")["movie_id"].nunique()
    if (unrated_count.to_numpy() <= 0).any():
        raise ValueError("A user rated every movie of the catalogue; no unrated "
                         "impression can be drawn for them.")
    # one row per negative: its user, and a timestamp of that user's ratings
    owner = np.repeat(np.arange(len(user_ids)), counts * per_positive)
    times = by_user["timestamp"].to_numpy()
    picks = first[owner] + rng.integers(0, counts[owner])
    rated = set(zip(users.tolist(), by_user["movie_id"].to_numpy().tolist()))
    rated_keys = np.fromiter((u * (1 << 32) + m for u, m in rated), dtype=np.int64,
                             count=len(rated))
    movie = catalogue[rng.integers(0, len(catalogue), len(owner))]
    todo = np.arange(len(owner))
    while len(todo):    # redraw the pairs the user rated (rejection sampling)
        keys = user_ids[owner[todo]] * (1 << 32) + movie[todo]
        todo = todo[np.isin(keys, rated_keys)]
        movie[todo] = catalogue[rng.integers(0, len(catalogue), len(todo))]
    return pd.DataFrame({"user_id": user_ids[owner], "movie_id": movie,
                         "timestamp": times[picks],
                         "rating": np.full(len(owner), np.nan, "float32")})


def _time_split(rows, test_fraction, valid_fraction, rng):
    """Per user, by timestamp (seeded random order among ties): the last
    `test_fraction` -> "test", the last `valid_fraction` of the rest ->
    "valid", the remainder -> "train". Returns a Series aligned with rows."""
    tiebreak = rng.permutation(len(rows))
    order = np.lexsort((tiebreak, rows["timestamp"].to_numpy(), rows["user_id"].to_numpy()))
    users = rows["user_id"].to_numpy()[order]
    _, first, counts = np.unique(users, return_index=True, return_counts=True)
    size = np.repeat(counts, counts)
    position = np.arange(len(rows)) - np.repeat(first, counts)
    num_test = np.floor(size * test_fraction + 0.5).astype(int)
    rest = size - num_test
    num_valid = np.floor(rest * valid_fraction + 0.5).astype(int)
    num_valid = np.minimum(num_valid, np.maximum(rest - 1, 0))   # keep >= 1 train row
    labels = np.where(position >= rest, "test",
                      np.where(position >= rest - num_valid, "valid", "train"))
    out = np.empty(len(rows), dtype=object)
    out[order] = labels
    return pd.Series(out, index=rows.index)


def _with_features(rows, train_ratings, movies):
    """Attach movie features and training-only user features to `rows`."""
    genres = movies["genres"].astype(str).where(movies["genres"] != _NO_GENRES, "")
    titles = movies["title"].astype(str).str.strip()
    year = titles.str.extract(_YEAR, expand=False).astype("float32")
    movie_table = pd.DataFrame({"genres": genres.to_numpy(object),
                                "title": titles.to_numpy(object),
                                "year": year.to_numpy("float32")},
                               index=movies["movieId"].to_numpy("int64"))
    out = rows.join(movie_table, on="movie_id")
    out["genres"] = out["genres"].astype(object).where(out["genres"].notna(), "")
    out["title"] = out["title"].astype(object).where(out["title"].notna(), "")
    popularity = train_ratings.groupby("movie_id").size()
    out["movie_popularity"] = out["movie_id"].map(popularity).fillna(0).astype("float32")
    liked = (train_ratings["rating"] >= LIKE_THRESHOLD).astype("float32")
    per_user = pd.DataFrame({
        "user_num_ratings": train_ratings.groupby("user_id").size().astype("float32"),
        "user_mean_rating": train_ratings.groupby("user_id")["rating"].mean(),
        "user_like_rate": liked.groupby(train_ratings["user_id"]).mean(),
    })
    out = out.join(per_user, on="user_id")
    out["user_num_ratings"] = out["user_num_ratings"].fillna(0)
    for column in USER_FEATURES:
        out[column] = out[column].astype("float32")
    return out


def _item_features(embedding_dim):
    return [Categorical("user_id", embedding_dim=embedding_dim, dtype="int64"),
            Categorical("movie_id", embedding_dim=embedding_dim, dtype="int64"),
            MultiHot("genres", embedding_dim=embedding_dim),
            Text("title", embedding_dim=embedding_dim),
            Numeric("year"),
            Numeric("movie_popularity", log1p=True)]


def _user_features():
    return [Numeric("user_num_ratings", log1p=True), Numeric("user_mean_rating"),
            Numeric("user_like_rate")]
