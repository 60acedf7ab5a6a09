"""AliExpress search logs with click and conversion labels (AITM / MTReclib layout).

Source: "AliExpress Dataset", Tianchi dataset 74690,
https://tianchi.aliyun.com/dataset/74690 (released with Xi et al., KDD 2021,
"Modeling the Sequential Dependence among Audience Multi-step Conversions
with Multi-task Learning in Targeted Display Advertising" (AITM), and used
by MTReclib). One archive per country (Spain, France, the Netherlands, the
United States), each with `train.csv` and `test.csv`; downloading needs a
Tianchi login, so there is no anonymous URL and no published checksum.

Expected layout (what MTReclib and AITM read):

```
$MTREC_DATA_DIR/aliexpress/AliExpress_NL/train.csv
$MTREC_DATA_DIR/aliexpress/AliExpress_NL/test.csv
$MTREC_DATA_DIR/aliexpress/AliExpress_ES/...   (FR, US likewise)
```

Each CSV has a header and 82 columns: `search_id` (the search request an
impression belongs to), `categorical_1..16` (integer-coded categories),
`numerical_1..63` (floats), `click` and `conversion` (0/1; a conversion
implies a click). Files have millions of rows: `stream` reads them in
chunks (`mtrec.data.streaming.from_csv`); `load` reads a whole file into
pandas and suits the smaller countries or a machine with ample memory.

Tasks (`TASKS`), the funnel impression -> click -> conversion:
- `ctr`: click, on every impression;
- `cvr`: conversion, only where `click == 1` (label mask `click`);
- `ctcvr`: conversion, on every impression (ESMM's p(click & conversion)).

Validation: the release has no validation split (MTReclib early-stops on
the test file); `load` holds out `valid_fraction` of the training searches
(whole `search_id` groups, seeded) instead, and the test file is used once.

`load_sample` reads torch-rechub's 100/20-row extract (MIT; the same columns)
for tests: `$MTREC_DATA_DIR/samples/aliexpress/`, or downloaded from the
torch-rechub repository with an md5 check.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from mtrec.data import streaming
from mtrec.data.download import locate
from mtrec.data.registry import DatasetSplits, register_dataset
from mtrec.schema import Categorical, Numeric, Schema, funnel_tasks

logger = logging.getLogger(__name__)

DOWNLOAD_PAGE = "https://tianchi.aliyun.com/dataset/74690"
COUNTRIES = ("ES", "FR", "NL", "US")
# No checksum is published for the Tianchi files.
FILES = {"train.csv": None, "test.csv": None}
SAMPLE_URL = ("https://raw.githubusercontent.com/datawhalechina/torch-rechub/main/"
              "examples/ranking/data/aliexpress")
SAMPLE_FILES = {
    "aliexpress_train_sample.csv": "0f945ece360b22d97fe1f4613c4e5488",
    "aliexpress_test_sample.csv": "8b9f01ef9697daa4b34f20521dea3871",
}

GROUP_COLUMN = "search_id"
CATEGORICAL = [f"categorical_{i}" for i in range(1, 17)]
NUMERICAL = [f"numerical_{i}" for i in range(1, 64)]
LABELS = ["click", "conversion"]
COLUMNS = [GROUP_COLUMN, *CATEGORICAL, *NUMERICAL, *LABELS]
TASKS = funnel_tasks()
TASK_NAMES = [task.name for task in TASKS]


def schema(tasks=None, embedding_dim=16):
    """The AliExpress schema (not adapted): 16 string `Categorical`s, 63
    `Numeric`s, and the funnel tasks.

    Args:
        tasks: task names to keep, from `TASK_NAMES`; default all three.
        embedding_dim: int. Width of the categorical embeddings.

    Returns:
        `mtrec.Schema`; `search_id` is not a feature (it identifies the
        search request, use it as the GAUC group).
    """
    chosen = TASKS
    if tasks is not None:
        if isinstance(tasks, str):
            tasks = [tasks]
        unknown = [t for t in tasks if t not in TASK_NAMES]
        if unknown or not tasks:
            raise ValueError(f"Unknown AliExpress task(s) {unknown or tasks!r}; "
                             f"choose among {TASK_NAMES}.")
        chosen = [task for task in TASKS if task.name in tasks]
    features = ([Categorical(name, embedding_dim=embedding_dim) for name in CATEGORICAL]
                + [Numeric(name) for name in NUMERICAL])
    return Schema(features, chosen)


def dtypes():
    """`{column: dtype}` used to read the CSVs: categories as strings (the
    schema's `Categorical`s), numerics float32, labels and `search_id` int."""
    out = {GROUP_COLUMN: "int64"}
    out.update({name: str for name in CATEGORICAL})
    out.update({name: "float32" for name in NUMERICAL})
    out.update({name: "int32" for name in LABELS})
    return out


def read(path, nrows=None):
    """One AliExpress CSV as a DataFrame with the loader's dtypes."""
    frame = pd.read_csv(path, dtype=dtypes(), nrows=nrows, engine="c")
    missing = [c for c in COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(
            f"{path} lacks the AliExpress column(s) {missing[:5]}"
            f"{'...' if len(missing) > 5 else ''}; expected the AITM/MTReclib "
            f"layout ({len(COLUMNS)} columns: search_id, categorical_1..16, "
            f"numerical_1..63, click, conversion).")
    # Categories as plain Python strings, like the other loaders.
    for name in CATEGORICAL:
        frame[name] = frame[name].astype(object).where(frame[name].notna(), None)
    return frame[COLUMNS]


def paths(country="NL", data_dir=None, download=True, base_url=None):
    """`{"train": Path, "test": Path}` of one country's files.

    Looks in `data_dir` (the `AliExpress_<country>` folder itself, or a
    folder holding `aliexpress/AliExpress_<country>/`), else in
    `$MTREC_DATA_DIR/aliexpress/AliExpress_<country>/`, then in the user
    cache. The official files need a Tianchi login, so nothing is
    downloaded unless `base_url` names a mirror serving
    `<base_url>/AliExpress_<country>/train.csv` and `test.csv` (files are
    then fetched into the cache; no checksum exists to verify them).
    """
    country = _country(country)
    subdir = f"aliexpress/AliExpress_{country}"
    try:
        folder = locate(subdir, FILES, base_url or "", data_dir=data_dir, download=False)
    except FileNotFoundError:
        if not (download and base_url):
            raise FileNotFoundError(
                f"AliExpress_{country}: train.csv and test.csv not found (looked in "
                f"{data_dir or '$MTREC_DATA_DIR'} and the user cache). Download "
                f"the {country} archive from {DOWNLOAD_PAGE} (needs a Tianchi "
                f"login), unzip it into $MTREC_DATA_DIR/{subdir}/, or pass "
                f"base_url= of a mirror.") from None
        folder = locate(subdir, FILES, f"{base_url.rstrip('/')}/AliExpress_{country}",
                        data_dir=None, download=True)
    return {split: folder / name for split, name in
            (("train", "train.csv"), ("test", "test.csv"))}


def sample_paths(data_dir=None, download=True):
    """`{"train": Path, "test": Path}` of torch-rechub's tiny extract."""
    folder = locate("samples/aliexpress", SAMPLE_FILES, SAMPLE_URL, data_dir=data_dir,
                    download=download)
    return {"train": folder / "aliexpress_train_sample.csv",
            "test": folder / "aliexpress_test_sample.csv"}


def load(country="NL", data_dir=None, valid_fraction=0.1, seed=0, download=True,
         base_url=None):
    """Train, validation and test DataFrames of one country.

    Args:
        country: one of `COUNTRIES`.
        data_dir: folder of the files (see `paths`); default `$MTREC_DATA_DIR`.
        valid_fraction: float in [0, 1). Share of the training searches
            (whole `search_id` groups) held out for validation.
        seed: int. Seed of that split.
        download: bool. Allow fetching from `base_url` into the cache.
        base_url: optional mirror (the official source needs a login).

    Returns:
        `(train, valid, test)`: `search_id` (int64), 16 string categoricals,
        63 float32 numerics, `click` and `conversion` (int32).
    """
    files = paths(country, data_dir=data_dir, download=download, base_url=base_url)
    return _split(files, valid_fraction, seed, f"AliExpress_{_country(country)}")


def load_sample(data_dir=None, valid_fraction=0.2, seed=0, download=True):
    """`load` on torch-rechub's 100/20-row extract (schema tests only)."""
    return _split(sample_paths(data_dir, download), valid_fraction, seed,
                  "AliExpress sample")


def stream(schema, split="train", country="NL", data_dir=None, download=True,
           base_url=None, sample=False, **from_csv_kwargs):
    """A `tf.data.Dataset` streamed from one country's file, chunk by chunk.

    Args:
        schema: the adapted `schema()` (adapt it on `load`'s train frame, or
            on `streaming.schema_sample(path, rows=..., schema=schema)`).
        split: `"train"` or `"test"` (the whole file: the validation hold-out
            of `load` is an in-memory split).
        country, data_dir, download, base_url: as in `paths`.
        sample: bool. Stream the tiny sample instead.
        **from_csv_kwargs: `batch_size`, `chunk_rows`, `shuffle_buffer`,
            `seed`, ... of `mtrec.data.streaming.from_csv`.
    """
    files = (sample_paths(data_dir, download) if sample
             else paths(country, data_dir=data_dir, download=download, base_url=base_url))
    if split not in files:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}.")
    return streaming.from_csv(files[split], schema, **from_csv_kwargs)


@register_dataset("aliexpress", tasks=TASKS)
def aliexpress(country="NL", sample=False, valid_fraction=0.1, seed=0, data_dir=None):
    """AliExpress search logs of one country (AITM / MTReclib layout), tasks
    ctr, cvr (masked by click) and ctcvr; validation = `valid_fraction` of
    the training searches. `sample=True`: torch-rechub's 120-row extract.
    `search_id` is dropped here so it is not taken as a feature (AITM and
    MTReclib report AUC, not per-search GAUC); `load` keeps it."""
    if sample:
        frames = load_sample(data_dir, valid_fraction=valid_fraction, seed=seed)
        what = "AliExpress sample (torch-rechub extract; metrics meaningless)"
    else:
        frames = load(country, data_dir=data_dir, valid_fraction=valid_fraction, seed=seed)
        what = f"AliExpress_{_country(country)} (Tianchi 74690)"
    train, valid, test = (f.drop(columns=GROUP_COLUMN) for f in frames)
    return DatasetSplits(train, valid, test, tasks=list(TASKS), group_column=None,
                         description=f"{what}: click -> conversion funnel; validation = "
                                     f"{valid_fraction:g} of the training searches "
                                     f"(seed {seed})")


def _country(country):
    code = str(country).upper().removeprefix("ALIEXPRESS_")
    if code not in COUNTRIES:
        raise ValueError(f"Unknown AliExpress country {country!r}; the release has "
                         f"{list(COUNTRIES)}.")
    return code


def _split(files, valid_fraction, seed, name):
    if not (isinstance(valid_fraction, (int, float)) and 0 <= valid_fraction < 1):
        raise ValueError(f"valid_fraction must be in [0, 1), got {valid_fraction!r}.")
    train = read(files["train"])
    test = read(files["test"])
    searches = np.sort(train[GROUP_COLUMN].unique())
    rng = np.random.default_rng(seed)
    held = rng.choice(searches, size=int(round(len(searches) * valid_fraction)),
                      replace=False)
    in_valid = train[GROUP_COLUMN].isin(held).to_numpy()
    valid = train[in_valid].reset_index(drop=True)
    train = train[~in_valid].reset_index(drop=True)
    logger.info("%s: %d/%d/%d rows; CTR %.4f, CVR %.4f", name, len(train), len(valid),
                len(test), train["click"].mean(),
                train.loc[train["click"] == 1, "conversion"].mean())
    return train, valid, test
