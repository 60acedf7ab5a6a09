"""Women's E-Commerce Clothing Reviews: tabular + raw text side features.

23,486 reviews (Kaggle, CC0): age, division / department / class, clothing
id, a title and a review text, the star rating (1–5) and whether the
reviewer recommends the item. Tasks here: `recommended` (binary,
"Recommended IND") and `rating` (regression on the 1–5 stars).

The file is read from `$MTREC_DATA_DIR/womens-clothing-reviews/reviews.parquet`
(md5-checked), or, when that is absent, from the Kaggle CSV
"Womens Clothing E-Commerce Reviews.csv" put in the same folder (Kaggle
publishes no checksum): Kaggle needs a login, so there is no automatic
download. See data/womens-clothing-reviews/README.md.

With `text_vectors` (off by default), `clothing_reviews` also derives a
precomputed text embedding per text column, `review_vector` (and
`title_vector` when asked): TF-IDF word 1-2-grams -> TruncatedSVD
(`mtrec.data.text_vectors`), fit on the training split only and seeded by
the split seed, declared as `Vector(..., modality="text", normalize=True)`;
a row whose text has no term of the training vocabulary (empty, missing)
has a missing vector (None).
"""

import numpy as np
import pandas as pd

from mtrec.data.download import locate
from mtrec.data.registry import DatasetSplits, register_dataset
from mtrec.data.text_vectors import add_text_vectors, vector_features
from mtrec.data.text_vectors import text_vector_settings as shared_text_vector_settings
from mtrec.schema import Categorical, Numeric, Text
from mtrec.utils.arguments import check_optional_count

SUBDIR = "womens-clothing-reviews"
FILES = {"reviews.parquet": "c574487f66c86395ae823bd03938fc76"}
KAGGLE_CSV = "Womens Clothing E-Commerce Reviews.csv"
SOURCE = ("https://www.kaggle.com/datasets/nicapotato/womens-ecommerce-clothing-reviews "
          "(download needs a Kaggle login)")
# Source columns -> feature names (signature inputs cannot hold spaces).
COLUMNS = {"Age": "age", "Division Name": "division", "Department Name": "department",
           "Class Name": "class_name", "Clothing ID": "clothing_id", "Title": "title",
           "Review Text": "review", "Recommended IND": "recommended", "Rating": "rating"}
TASKS = {"recommended": "binary", "rating": "regression"}
#: Tasks of the derived multi-scenario split (`clothing_reviews_scenarios`).
SCENARIO_TASKS = {"recommended": "binary", "rating_high": "binary"}
TEXT_COLUMNS = ["title", "review"]
#: Columns vectorised by `text_vectors: <dim>`.
DEFAULT_VECTOR_COLUMNS = ["review"]


def text_vector_settings(text_vectors):
    """`{"dim", "columns"}` of the `text_vectors` argument, or None (off):
    None / False, an int (the dimension, vectors of `review`), or
    `{dim: int, columns: [review, title]}`
    (`mtrec.data.text_vectors.text_vector_settings`)."""
    return shared_text_vector_settings(text_vectors, TEXT_COLUMNS, DEFAULT_VECTOR_COLUMNS)


def features(scenario=False, text_vectors=None):
    """Feature specs: short titles through a one-block transformer, long
    reviews through convolutions with attention pooling; with `scenario`,
    the department is the scenario (`Categorical(..., scenario=True)`);
    with `text_vectors` (see `text_vector_settings`), one normalised
    `Vector` of the text modality per vectorised column."""
    vectors = vector_features(text_vector_settings(text_vectors))
    return [
        Numeric("age"),
        Categorical("division", embedding_dim=4),
        Categorical("department", embedding_dim=4, scenario=scenario),
        Categorical("class_name", embedding_dim=8),
        # ~1,200 items; the rare ones share the out-of-vocabulary bucket
        Categorical("clothing_id", embedding_dim=16, dtype="int64", min_frequency=5),
        Text("title", embedding_dim=16, max_tokens=5000, encoder="transformer"),
        Text("review", embedding_dim=32, max_tokens=20000, max_length=96, encoder="cnn",
             pooling="attention"),
    ] + vectors


def load(data_dir=None, seed=0, max_rows=None):
    """Train / valid / test DataFrames, split 80/10/10 at random (seeded).

    `max_rows` (int or None): keep only the file's first `max_rows` reviews
    before the split (for smoke runs); `None` keeps all 23,486."""
    check_optional_count("max_rows", max_rows, 10,
                         "reviews to keep before the 80/10/10 split")
    df = read(data_dir).rename(columns=COLUMNS)
    if max_rows is not None:
        df = df.iloc[:max_rows]
    order = np.random.default_rng(seed).permutation(len(df))
    cut1, cut2 = int(0.8 * len(df)), int(0.9 * len(df))
    return [df.iloc[part].reset_index(drop=True)
            for part in (order[:cut1], order[cut1:cut2], order[cut2:])]


def read(data_dir=None):
    """The reviews with their source column names: `reviews.parquet`
    (md5-checked), else the Kaggle CSV in the same folder."""
    try:
        folder = locate(SUBDIR, FILES, base_url="", data_dir=data_dir, source=SOURCE)
        return pd.read_parquet(folder / "reviews.parquet", columns=list(COLUMNS))
    except FileNotFoundError as missing:
        try:
            folder = locate(SUBDIR, {KAGGLE_CSV: None}, base_url="", data_dir=data_dir,
                            source=SOURCE)
        except FileNotFoundError:
            raise missing from None
    return pd.read_csv(folder / KAGGLE_CSV, usecols=list(COLUMNS))[list(COLUMNS)]


@register_dataset("clothing_reviews", tasks=TASKS)
def clothing_reviews(seed=0, data_dir=None, max_rows=None, text_vectors=None):
    """Women's clothing reviews: tasks recommended (binary) and rating
    (regression), text side features title and review; `max_rows` keeps
    the first reviews only (smoke runs); `text_vectors` (an int dimension,
    or `{dim, columns}`) adds precomputed TF-IDF -> SVD vectors of the
    review (`review_vector`; `columns` may add `title`), fit on the
    training split only. Off by default."""
    settings = text_vector_settings(text_vectors)
    splits = load(data_dir, seed, max_rows)
    description = f"Women's E-Commerce Clothing Reviews (80/10/10 random split, seed {seed}"
    splits, note = add_text_vectors(splits, settings, seed=seed)
    return DatasetSplits(*splits, tasks=dict(TASKS), group_column=None,
                         description=description + note + ")",
                         features=features(text_vectors=settings))


@register_dataset("clothing_reviews_scenarios", tasks=SCENARIO_TASKS)
def clothing_reviews_scenarios(seed=0, data_dir=None, max_rows=None):
    """A multi-scenario split derived from the clothing reviews (not a
    public multi-scenario benchmark): the department (Tops, Dresses,
    Bottoms, Intimate, Jackets, Trend) is the scenario; tasks
    `recommended` and `rating_high` (the rating is 5 stars), the rating
    itself dropped from the inputs. Same 80/10/10 random split as
    `clothing_reviews`; GAUC groups by department."""
    splits = []
    for frame in load(data_dir, seed, max_rows):
        frame = frame.assign(rating_high=(frame["rating"] >= 5).astype("int64"))
        splits.append(frame.drop(columns=["rating"]))
    return DatasetSplits(*splits, tasks=dict(SCENARIO_TASKS), group_column="department",
                         description="Women's clothing reviews, departments as scenarios "
                                     f"(derived split, 80/10/10 random, seed {seed})",
                         features=features(scenario=True))
