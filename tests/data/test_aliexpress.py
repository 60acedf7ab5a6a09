"""Tests for mtrec.data.aliexpress on torch-rechub's sample and generated layouts."""

import shutil

import numpy as np
import pandas as pd
import pytest

import mtrec
from mtrec.data import aliexpress, download, from_pandas

needs_data = pytest.mark.needs_data("samples/aliexpress")


@pytest.fixture(scope="module")
def sample(data_dir):
    return aliexpress.load_sample(data_dir, download=False)


def country_folder(data_dir, root, country="NL"):
    """The official layout, filled with the sample's rows."""
    folder = root / "aliexpress" / f"AliExpress_{country}"
    folder.mkdir(parents=True)
    files = aliexpress.sample_paths(data_dir, download=False)
    shutil.copy(files["train"], folder / "train.csv")
    shutil.copy(files["test"], folder / "test.csv")
    return folder


def test_schema_kinds_and_funnel_tasks():
    schema = aliexpress.schema()
    assert [s.name for s in schema.features_of("categorical")] == aliexpress.CATEGORICAL
    assert [s.name for s in schema.features_of("numeric")] == aliexpress.NUMERICAL
    assert len(schema.features) == 16 + 63
    assert all(s.dtype == "string" for s in schema.features_of("categorical"))
    assert "search_id" not in schema.feature_names
    tasks = {t.name: (t.kind, t.label, t.mask) for t in schema.tasks}
    assert tasks == {"ctr": ("binary", "click", None),
                     "cvr": ("binary", "conversion", "click"),
                     "ctcvr": ("binary", "conversion", None)}
    assert aliexpress.schema(tasks=["ctr", "cvr"]).task_names == ["ctr", "cvr"]
    with pytest.raises(ValueError, match="Unknown AliExpress task"):
        aliexpress.schema(tasks=["ctcvr", "clicks"])


@needs_data
def test_load_sample_splits_train_by_search(sample, data_dir):
    train, valid, test = sample
    assert len(train) + len(valid) == 100 and len(test) == 20
    searches = pd.concat([train, valid])["search_id"].nunique()
    assert valid["search_id"].nunique() == round(0.2 * searches)  # valid_fraction 0.2
    assert list(train.columns) == aliexpress.COLUMNS
    assert not set(train["search_id"]) & set(valid["search_id"])  # whole searches
    assert train["categorical_1"].map(type).eq(str).all()
    assert train["numerical_1"].dtype == "float32" and train["click"].dtype == "int32"
    for frame in sample:   # a conversion implies a click
        assert (frame["conversion"] <= frame["click"]).all()
    again = aliexpress.load_sample(data_dir, download=False)
    pd.testing.assert_frame_equal(again[1], valid)                 # seeded
    other = aliexpress.load_sample(data_dir, download=False, seed=1)
    assert set(other[1]["search_id"]) != set(valid["search_id"])


@needs_data
def test_schema_adapts_and_masks_cvr(sample):
    train, _, test = sample
    schema = aliexpress.schema().adapt(train)
    (features, labels), = from_pandas(test, schema, batch_size=64).as_numpy_iterator()
    assert features["mtrec:categorical"].shape == (20, 16)
    assert features["mtrec:numeric"].shape == (20, 126)
    clicked = test["click"].to_numpy() == 1
    np.testing.assert_array_equal(np.isnan(labels["cvr"]), ~clicked)
    np.testing.assert_array_equal(labels["ctcvr"], test["conversion"].to_numpy("float32"))


@needs_data
def test_stream_reads_what_load_reads(sample, data_dir):
    train, _, test = sample
    schema = aliexpress.schema().adapt(train)
    streamed = list(aliexpress.stream(schema, split="test", sample=True, data_dir=data_dir,
                                      download=False, batch_size=8,
                                      chunk_rows=7).as_numpy_iterator())
    expected = list(from_pandas(test, schema, batch_size=8).as_numpy_iterator())
    assert len(streamed) == len(expected) == 3
    for (f1, l1), (f2, l2) in zip(streamed, expected):
        for key in f1:
            np.testing.assert_array_equal(f1[key], f2[key])
        for key in l1:
            np.testing.assert_array_equal(l1[key], l2[key])
    with pytest.raises(ValueError, match="split must be 'train' or 'test'"):
        aliexpress.stream(schema, split="valid", sample=True, data_dir=data_dir)


@needs_data
def test_load_reads_the_official_layout(data_dir, tmp_path, offline, monkeypatch, sample):
    folder = country_folder(data_dir, tmp_path / "data", "ES")
    train, valid, test = aliexpress.load("ES", data_dir=tmp_path / "data", download=False)
    assert len(train) + len(valid) == 100 and len(test) == 20
    # the country folder itself, and $MTREC_DATA_DIR, work too; "es" as well
    assert aliexpress.paths("es", data_dir=folder, download=False)["test"] == folder / "test.csv"
    monkeypatch.setenv(download.DATA_DIR_ENV, str(tmp_path / "data"))
    assert aliexpress.paths("AliExpress_ES")["train"] == folder / "train.csv"


def test_missing_files_point_to_the_official_source(tmp_path, offline):
    with pytest.raises(FileNotFoundError, match="tianchi.aliyun.com/dataset/74690"):
        aliexpress.load("NL", data_dir=tmp_path)
    with pytest.raises(ValueError, match=r"Unknown AliExpress country 'DE'.*'NL'"):
        aliexpress.load("DE")


@needs_data
def test_download_from_a_mirror_into_the_cache(data_dir, tmp_path, offline):
    country_folder(data_dir, tmp_path / "mirror", "FR")
    mirror = (tmp_path / "mirror" / "aliexpress").as_uri()
    files = aliexpress.paths("FR", base_url=mirror)
    assert files["train"] == (tmp_path / "cache" / "mtrec" / "aliexpress" / "AliExpress_FR"
                              / "train.csv")
    assert files["train"].read_bytes() == (
        aliexpress.sample_paths(data_dir, download=False)["train"].read_bytes())
    with pytest.raises(FileNotFoundError, match="Tianchi login"):
        aliexpress.paths("US", data_dir=tmp_path / "mirror", download=False, base_url=mirror)


def test_read_rejects_another_layout(tmp_path):
    path = tmp_path / "other.csv"
    pd.DataFrame({"search_id": [1], "click": [0]}).to_csv(path, index=False)
    with pytest.raises(ValueError, match="AITM/MTReclib layout"):
        aliexpress.read(path)


@needs_data
def test_registered_dataset(data_dir):
    from mtrec.data.registry import dataset_task_names, load_dataset

    splits = load_dataset("aliexpress", sample=True, data_dir=data_dir)
    assert dataset_task_names("aliexpress") == ["ctr", "cvr", "ctcvr"]
    assert "search_id" not in splits.train.columns and len(splits.test) == 20
    schema = mtrec.Schema.infer(splits.train, tasks=splits.tasks, verbose=False)
    assert schema.feature_names == aliexpress.schema().feature_names
    assert [s.kind for s in schema.features] == [s.kind for s in aliexpress.schema().features]
