"""Tests for mtrec.data.movielens: the derived funnel and the rating tasks."""

import shutil
import zipfile

import numpy as np
import pandas as pd
import pytest

from mtrec.data import from_pandas, movielens
from mtrec.data.registry import dataset_names, load_dataset
from mtrec.data.text_vectors import TextVectorizer
from mtrec.schema import Vector

RATINGS = 100_836

needs_data = pytest.mark.needs_data("ml-latest-small")


@pytest.fixture(scope="module")
def raw(data_dir):
    return movielens.read(data_dir, download=False)


@pytest.fixture(scope="module")
def funnel(data_dir):
    return movielens.funnel(data_dir, download=False)


@pytest.fixture(scope="module")
def few_users(raw):
    """ratings.csv restricted to 60 users, for the tests that rebuild."""
    ratings, movies, _ = raw
    keep = ratings["userId"].isin(ratings["userId"].unique()[:60])
    return ratings[keep].reset_index(drop=True), movies


def split_of(frames):
    return pd.concat([f.assign(split=name) for f, name in
                      zip(frames, ("train", "valid", "test"))], ignore_index=True)


# -- files ---------------------------------------------------------------------
@needs_data
def test_files_are_md5_checked(data_dir, tmp_path):
    for name in movielens.FILES:
        shutil.copy(data_dir / "ml-latest-small" / name, tmp_path / name)
    assert movielens.locate_files(tmp_path, download=False) == tmp_path
    with open(tmp_path / "tags.csv", "a") as f:
        f.write("1,1,planted,0\n")
    with pytest.raises(ValueError, match="Checksum mismatch for .*tags.csv"):
        movielens.locate_files(tmp_path, download=False)


@needs_data
def test_download_unpacks_the_official_zip(data_dir, tmp_path, offline, monkeypatch):
    server = tmp_path / "grouplens"
    server.mkdir()
    with zipfile.ZipFile(server / movielens.ARCHIVE, "w") as archive:
        for name in movielens.FILES:
            archive.write(data_dir / "ml-latest-small" / name, f"ml-latest-small/{name}")
    monkeypatch.setattr(movielens, "BASE_URL", server.as_uri())
    folder = movielens.locate_files()
    assert folder == tmp_path / "cache" / "mtrec" / "ml-latest-small"
    assert sorted(p.name for p in folder.iterdir()) == sorted(movielens.FILES)
    assert movielens.locate_files() == folder            # found, not fetched again
    assert movielens.BASE_URL.startswith("file:")
    assert "files.grouplens.org" in movielens.__doc__


# -- funnel ----------------------------------------------------------------------
@needs_data
def test_funnel_sizes_labels_and_columns(funnel):
    rows = split_of(funnel)
    assert len(rows) == 5 * RATINGS                       # before splitting
    assert rows["click"].sum() == RATINGS
    assert (rows["conversion"] <= rows["click"]).all()    # conversion implies click
    per_user = rows.groupby("user_id")["click"].agg(["size", "sum"])
    assert (per_user["size"] == 5 * per_user["sum"]).all()
    assert list(funnel[0].columns) == [
        "user_id", "movie_id", "timestamp", "genres", "title", "year", "movie_popularity",
        "user_num_ratings", "user_mean_rating", "user_like_rate", "click", "conversion"]


@needs_data
def test_clicks_are_ratings_and_conversions_four_stars(funnel, raw):
    ratings = raw[0].rename(columns={"userId": "user_id", "movieId": "movie_id"})
    rows = split_of(funnel)
    clicked = rows[rows["click"] == 1].merge(ratings, on=["user_id", "movie_id"],
                                             suffixes=("", "_rated"))
    assert len(clicked) == RATINGS
    assert (clicked["timestamp"] == clicked["timestamp_rated"]).all()
    np.testing.assert_array_equal(clicked["conversion"], clicked["rating"] >= 4)
    # unclicked impressions: never-rated pairs, inside the user's active period
    unclicked = rows[rows["click"] == 0]
    pairs = unclicked.merge(ratings, on=["user_id", "movie_id"], how="inner")
    assert pairs.empty
    span = ratings.groupby("user_id")["timestamp"].agg(["min", "max"])
    bounds = span.loc[unclicked["user_id"]].to_numpy()
    assert ((unclicked["timestamp"].to_numpy() >= bounds[:, 0])
            & (unclicked["timestamp"].to_numpy() <= bounds[:, 1])).all()
    assert unclicked["movie_id"].nunique() > 9000        # spread over the catalogue


@needs_data
def test_split_is_by_time_within_each_user(funnel):
    rows = split_of(funnel)
    times = rows.pivot_table(index="user_id", columns="split", values="timestamp",
                             aggfunc=["min", "max"])
    assert (times[("max", "train")] <= times[("min", "valid")]).all()
    assert (times[("max", "valid")] <= times[("min", "test")]).all()
    assert (times[("max", "train")] <= times[("min", "test")]).all()
    counts = rows.groupby(["user_id", "split"]).size().unstack()
    total = counts.sum(axis=1)
    np.testing.assert_array_equal(counts["test"], np.floor(total * 0.2 + 0.5))
    rest = total - counts["test"]
    np.testing.assert_array_equal(counts["valid"], np.floor(rest * 0.1 + 0.5))
    # about a fifth of the impressions of every part are clicks
    for frame in funnel:
        assert 0.18 < frame["click"].mean() < 0.22


@needs_data
def test_user_features_come_from_training_ratings_only(funnel, raw):
    train = funnel[0]
    ratings = raw[0].rename(columns={"userId": "user_id", "movieId": "movie_id"})
    rated = train[train["click"] == 1].merge(ratings, on=["user_id", "movie_id"])
    expected = rated.groupby("user_id")["rating"].agg(["size", "mean"])
    for frame in funnel:
        got = frame.groupby("user_id")[["user_num_ratings", "user_mean_rating"]].first()
        got = got.join(expected, how="left")
        np.testing.assert_array_equal(got["user_num_ratings"], got["size"])
        np.testing.assert_allclose(got["user_mean_rating"], got["mean"], rtol=1e-5)
    popularity = train[train["click"] == 1].groupby("movie_id").size()
    np.testing.assert_array_equal(
        train["movie_popularity"], train["movie_id"].map(popularity).fillna(0))


@needs_data
def test_test_period_ratings_do_not_reach_user_features(few_users):
    ratings, movies = few_users
    before = movielens.build_funnel(ratings, movies)
    test_rows = before[2][before[2]["click"] == 1][["user_id", "movie_id"]]
    keys = pd.MultiIndex.from_frame(ratings[["userId", "movieId"]])
    in_test = keys.isin(pd.MultiIndex.from_frame(test_rows))
    changed = ratings.copy()
    changed.loc[in_test, "rating"] = 0.5             # rewrite the test period
    after = movielens.build_funnel(changed, movies)
    assert after[2]["conversion"].sum() == 0 < before[2]["conversion"].sum()
    for a, b in zip(before, after):
        pd.testing.assert_frame_equal(a.drop(columns="conversion"),
                                      b.drop(columns="conversion"))


@needs_data
def test_repeatable_with_the_seed(few_users):
    ratings, movies = few_users
    first = movielens.build_funnel(ratings, movies, seed=3)
    again = movielens.build_funnel(ratings, movies, seed=3)
    other = movielens.build_funnel(ratings, movies, seed=4)
    for a, b in zip(first, again):
        pd.testing.assert_frame_equal(a, b)
    assert not first[0]["movie_id"].equals(other[0]["movie_id"])
    two = movielens.build_funnel(ratings, movies, negatives_per_positive=2)
    assert sum(map(len, two)) == 3 * len(ratings)


@needs_data
def test_movie_features(funnel):
    train = funnel[0]
    toy_story = train[train["movie_id"] == 1].iloc[0]
    assert toy_story["title"] == "Toy Story (1995)" and toy_story["year"] == 1995
    assert toy_story["genres"] == "Adventure|Animation|Children|Comedy|Fantasy"
    assert not train["genres"].eq("(no genres listed)").any()
    assert train["year"].dtype == "float32" and train["year"].isna().any()


@needs_data
def test_funnel_schema_encodes_the_frames(funnel):
    train = funnel[0].head(3000)
    schema = movielens.funnel_schema().adapt(train)
    assert schema.feature("genres").kind == "multihot"
    assert schema.feature("title").kind == "text"
    assert "timestamp" not in schema.feature_names
    (features, labels), = from_pandas(funnel[2].head(64), schema,
                                      batch_size=64).as_numpy_iterator()
    assert features["mtrec:multihot:genres"].shape[0] == 64
    click = funnel[2]["click"].head(64).to_numpy()
    np.testing.assert_array_equal(np.isnan(labels["cvr"]), click == 0)


# -- rating tasks ----------------------------------------------------------------
@needs_data
def test_ratings_tasks(data_dir, raw):
    train, valid, test = movielens.ratings_tasks(data_dir, download=False)
    rows = split_of((train, valid, test))
    assert len(rows) == RATINGS
    np.testing.assert_array_equal(rows["like"], rows["rating"] >= 4)
    times = rows.pivot_table(index="user_id", columns="split", values="timestamp",
                             aggfunc=["min", "max"])
    assert (times[("max", "train")] <= times[("min", "test")]).all()
    expected = train.groupby("user_id")["rating"].agg(["size", "mean"])
    got = test.groupby("user_id")[["user_num_ratings", "user_mean_rating"]].first()
    got = got.join(expected)
    np.testing.assert_array_equal(got["user_num_ratings"], got["size"])
    np.testing.assert_allclose(got["user_mean_rating"], got["mean"], rtol=1e-5)
    # tags: only those given by the end of the tagger's training period
    tags = raw[2]
    cutoff = train.groupby("user_id")["timestamp"].max()
    known = tags["timestamp"] <= tags["userId"].map(cutoff)
    assert 0 < (~known).sum() < len(tags)                # some tags come later
    expected_tags = (tags[known].sort_values(["movieId", "timestamp"], kind="stable")
                     .groupby("movieId")["tag"].agg(" ".join))
    per_movie = rows.groupby("movie_id")["tags"].agg(["first", "nunique"])
    assert (per_movie["nunique"] == 1).all()             # same text on every row
    np.testing.assert_array_equal(
        per_movie["first"], per_movie.index.map(expected_tags).fillna(""))
    assert rows["tags"].ne("").any()
    schema = movielens.ratings_schema()
    assert [t.name for t in schema.tasks] == ["like", "rating"]
    assert schema.feature("tags").kind == "text"


@needs_data
def test_max_users_keeps_the_lowest_user_ids(data_dir, raw):
    ratings, _, tags = raw
    frames = movielens.ratings_tasks(data_dir, download=False, max_users=25)
    rows = split_of(frames)
    kept = np.sort(ratings["userId"].unique())[:25]
    assert sorted(rows["user_id"].unique()) == kept.tolist()
    assert len(rows) == ratings["userId"].isin(kept).sum()
    times = rows.pivot_table(index="user_id", columns="split", values="timestamp",
                             aggfunc=["min", "max"])
    assert (times[("max", "train")] <= times[("min", "test")]).all()
    # only the kept users' tags describe the movies
    words = set(" ".join(rows["tags"]).split())
    assert words <= set(" ".join(tags.loc[tags["userId"].isin(kept), "tag"]
                                 .astype(str)).split())
    with pytest.raises(ValueError, match="max_users must be None or an integer >= 1"):
        movielens.ratings_tasks(data_dir, download=False, max_users=0)


# -- text vectors ----------------------------------------------------------------
@pytest.fixture(scope="module")
def rating_frames(data_dir):
    """The rating tasks' splits, restricted to 150 users (fast vectorising)."""
    frames = movielens.ratings_tasks(data_dir, download=False)
    users = frames[0]["user_id"].unique()[:150]
    return tuple(f[f["user_id"].isin(users)].reset_index(drop=True) for f in frames)


@pytest.fixture
def cached_ratings(monkeypatch, rating_frames):
    """movielens_ratings without rebuilding the frames for every call."""
    monkeypatch.setattr(movielens, "ratings_tasks", lambda *args, **kwargs: rating_frames)


@needs_data
def test_text_vectors_are_off_by_default(cached_ratings):
    data = movielens.movielens_ratings()
    assert not [c for c in data.train.columns if c.endswith("_vector")]
    assert data.features == movielens.ratings_schema().features
    assert "SVD" not in data.description
    assert data.features == movielens.movielens_ratings(text_vectors=None).features


@needs_data
def test_text_vectors_fit_on_train_only_and_missing_without_a_known_term(
        cached_ratings, rating_frames):
    data = movielens.movielens_ratings(text_vectors=8)
    plain = movielens.movielens_ratings()
    assert data.features == plain.features + [
        Vector("tags_vector", dim=8, projection_dim=32, modality="text", normalize=True)]
    assert "tags_vector: TF-IDF -> 8-dim SVD fit on train" in data.description
    train_only = TextVectorizer(dim=8, seed=0).fit(rating_frames[0]["tags"])
    unseen = 0
    for split in ("train", "valid", "test"):
        frame, original = getattr(data, split), getattr(plain, split)
        pd.testing.assert_frame_equal(frame.drop(columns="tags_vector"), original)
        expected, present = train_only.transform(original["tags"])
        # missing exactly where the tags hold no term of the training vocabulary
        assert frame["tags_vector"].isna().tolist() == (~present).tolist()
        assert frame["tags_vector"][original["tags"] == ""].isna().all()
        unseen += int(((original["tags"] != "") & ~present).sum())
        np.testing.assert_allclose(np.stack(frame["tags_vector"][present].tolist()),
                                   expected[present], rtol=1e-5, atol=1e-6)
        array = data.features[-1].to_array(frame["tags_vector"], {"dim": 8})
        assert np.isnan(array).all(axis=1).tolist() == (~present).tolist()
    # a movie tagged only with words no training row has: tags, but no vector
    assert unseen > 0
    # fit on train only: a vectorizer fit on every split gives other vectors
    everything = pd.concat([getattr(plain, s)["tags"] for s in ("train", "valid", "test")])
    leaky, _ = TextVectorizer(dim=8, seed=0).fit(everything).transform(plain.test["tags"])
    kept = data.test["tags_vector"].notna().to_numpy()
    assert not np.allclose(np.stack(data.test["tags_vector"][kept].tolist()), leaky[kept],
                           atol=1e-3)
    both = movielens.movielens_ratings(text_vectors={"dim": 4, "columns": ["title", "tags"]})
    assert [s.name for s in both.features if s.kind == "vector"] == ["title_vector",
                                                                     "tags_vector"]
    assert both.train["title_vector"].dropna().map(len).eq(4).all()
    assert both.train["title_vector"].notna().mean() > 0.99   # nearly every title


@pytest.mark.parametrize("value, message", [
    (0, "dim must be an integer >= 1"),
    ({"dim": 4, "columns": ["genres"]}, "distinct text columns among \\['title', 'tags'\\]"),
    ({"dim": 4, "columns": ["tags", "tags"]}, "distinct text columns"),
    ({"columns": ["tags"]}, "keys dim \\(required\\) and columns"),
])
def test_bad_text_vectors(value, message, monkeypatch):
    monkeypatch.setattr(movielens, "ratings_tasks", lambda *args, **kwargs: pytest.fail(
        "the settings are checked before the data is read"))
    with pytest.raises(ValueError, match=message):
        movielens.movielens_ratings(text_vectors=value)


# -- registry --------------------------------------------------------------------
@needs_data
def test_registered_datasets(monkeypatch, funnel):
    assert {"movielens_funnel", "movielens_ratings"} <= set(dataset_names())
    monkeypatch.setattr(movielens, "funnel", lambda *args, **kwargs: funnel)
    splits = load_dataset("movielens_funnel", seed=0)
    assert splits.group_column == "user_id"
    assert [t.name for t in splits.tasks] == ["ctr", "cvr", "ctcvr"]
    assert "timestamp" not in splits.train.columns
    assert len(splits.test) == len(funnel[2])
    assert "derived" in splits.description
