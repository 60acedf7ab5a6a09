"""Tests for mtrec.data.ali_ccp: the flattened sample and a generated raw pair."""

import numpy as np
import pandas as pd
import pytest

from mtrec.data import ali_ccp, from_pandas

F, K, V = "\x01", "\x02", "\x03"   # feature, field, value separators

needs_data = pytest.mark.needs_data("samples/ali-ccp")


def features(*items):
    return F.join(f"{field}{K}{fid}{V}{value}" for field, fid, value in items)


COMMON = [
    ("c1", [("101", "u1", 1.0), ("121", "p7", 1.0), ("109_14", "cat3", 2.0),
            ("109_14", "cat9", 5.0), ("124", "g1", 1.0)]),
    ("c2", [("101", "u2", 1.0), ("150_14", "int4", 0.5)]),
]
SKELETON = [   # sample_id, click, conversion, common index, features
    ("s1", 1, 0, "c1", [("205", "i1", 1.0), ("206", "cat3", 1.0), ("508", "x13", 0.7)]),
    ("s2", 0, 0, "c2", [("205", "i2", 1.0), ("301", "pos1", 1.0)]),
    ("s3", 0, 1, "c1", [("205", "i3", 1.0)]),          # conversion without click
    ("s4", 1, 1, "c2", [("205", "i4", 1.0), ("853", "y2", 0.25)]),
    ("s5", 0, 0, "c1", [("205", "i5", 1.0), ("205", "i6", 1.0)]),
]


@pytest.fixture
def raw_dir(tmp_path):
    """A tiny raw release: sample_skeleton_train.csv + common_features_train.csv."""
    with open(tmp_path / "common_features_train.csv", "w", newline="\n") as f:
        for index, items in COMMON:
            f.write(f"{index},{len(items)},{features(*items)}\n")
    with open(tmp_path / "sample_skeleton_train.csv", "w", newline="\n") as f:
        for sample_id, click, conversion, index, items in SKELETON:
            f.write(f"{sample_id},{click},{conversion},{index},{len(items)},"
                    f"{features(*items)}\n")
    return tmp_path


@pytest.fixture(scope="module")
def sample(data_dir):
    return ali_ccp.load_sample(data_dir, download=False)


# -- flattened layout -----------------------------------------------------------
def test_flat_schema():
    schema = ali_ccp.schema()
    assert [s.name for s in schema.features_of("categorical")] == ali_ccp.SPARSE_FIELDS
    assert [s.name for s in schema.features_of("numeric")] == [
        "D109_14", "D110_14", "D127_14", "D150_14", "D508", "D509", "D702", "D853"]
    tasks = {t.name: (t.label, t.mask) for t in schema.tasks}
    assert tasks == {"ctr": ("click", None), "cvr": ("purchase", "click"),
                     "ctcvr": ("purchase", None)}
    raw = ali_ccp.schema(layout="raw")
    assert [s.name for s in raw.features_of("multihot")] == ali_ccp.HISTORY_FIELDS
    with pytest.raises(ValueError, match="layout must be 'flat' or 'raw'"):
        ali_ccp.schema(layout="csv")


@needs_data
def test_load_sample_columns_and_labels(sample):
    train, valid, test = sample
    assert (len(train), len(valid), len(test)) == (100, 50, 50)
    assert list(train.columns) == ali_ccp.flat_columns()
    assert train["205"].map(type).eq(str).all()
    assert train["D508"].dtype == "float32" and train["click"].dtype == "int32"
    for frame in sample:
        assert (frame["purchase"] <= frame["click"]).all()
    assert train["click"].sum() == 7 and train["purchase"].sum() == 1


@needs_data
def test_sample_adapts_and_streams(sample, data_dir):
    train, valid, _ = sample
    schema = ali_ccp.schema().adapt(train)
    streamed = list(ali_ccp.stream(schema, split="valid", sample=True, data_dir=data_dir,
                                   batch_size=20, chunk_rows=15).as_numpy_iterator())
    expected = list(from_pandas(valid, schema, batch_size=20).as_numpy_iterator())
    assert [len(l["ctr"]) for _, l in streamed] == [20, 20, 10]
    for (f1, l1), (f2, l2) in zip(streamed, expected):
        for key in f1:
            np.testing.assert_array_equal(f1[key], f2[key])
        for key in l1:
            np.testing.assert_array_equal(l1[key], l2[key])
    np.testing.assert_array_equal(
        np.isnan(np.concatenate([l["cvr"] for _, l in streamed])), valid["click"] == 0)


# -- raw layout -----------------------------------------------------------------
def test_iter_raw_joins_common_features_and_flattens(raw_dir):
    skeleton = raw_dir / "sample_skeleton_train.csv"
    frames = list(ali_ccp.iter_raw(skeleton, raw_dir / "common_features_train.csv",
                                   chunk_rows=2))
    assert [len(f) for f in frames] == [2, 2]              # s3 dropped
    rows = pd.concat(frames, ignore_index=True)
    assert list(rows.columns) == ali_ccp.flat_columns()
    assert rows["205"].tolist() == ["i1", "i2", "i4", "i5|i6"]
    assert rows["click"].tolist() == [1, 0, 1, 0]
    assert rows["purchase"].tolist() == [0, 0, 1, 0]
    first = rows.iloc[0]
    assert (first["101"], first["121"], first["124"], first["206"], first["508"]) == (
        "u1", "p7", "g1", "cat3", "x13")
    assert first["109_14"] == "cat3|cat9"                  # repeated field, joined
    assert first["301"] == "" and first["150_14"] == ""    # absent fields
    assert first["D109_14"] == pytest.approx(7.0)          # 2.0 + 5.0
    assert first["D508"] == pytest.approx(0.7) and first["D853"] == 0
    assert rows.loc[2, "150_14"] == "int4" and rows.loc[2, "D150_14"] == pytest.approx(0.5)
    assert rows.loc[2, "D853"] == pytest.approx(0.25)
    assert rows["D109_14"].dtype == "float32" and rows["click"].dtype == "int32"
    kept = pd.concat(ali_ccp.iter_raw(skeleton, raw_dir / "common_features_train.csv",
                                      drop_inconsistent=False), ignore_index=True)
    assert kept["205"].tolist() == ["i1", "i2", "i3", "i4", "i5|i6"]


def test_common_features_index_and_its_memory(raw_dir):
    path = raw_dir / "common_features_train.csv"
    index = ali_ccp.read_common_features(path)
    assert set(index) == {"c1", "c2"}
    fields = ali_ccp.SPARSE_FIELDS
    c1 = dict(zip(fields, index["c1"]))
    assert c1["101"] == "u1" and c1["109_14"] == "cat3|cat9" and c1["205"] == ""
    assert index["c1"][len(fields):][0] == pytest.approx(7.0)      # D109_14
    small = ali_ccp.read_common_features(path, fields=["101", "124"], dense_fields=[])
    assert small == {"c1": ("u1", "g1"), "c2": ("u2", "")}
    assert 0 < ali_ccp.common_features_bytes(small) < ali_ccp.common_features_bytes(index)


def test_orphan_common_index_warns(raw_dir):
    with open(raw_dir / "sample_skeleton_train.csv", "a", newline="\n") as f:
        f.write(f"s6,0,0,c404,1,{features(('205', 'i7', 1.0))}\n")
    with pytest.warns(UserWarning, match="1 lines name a common_feature_index absent"):
        rows = pd.concat(ali_ccp.iter_raw(raw_dir / "sample_skeleton_train.csv",
                                          raw_dir / "common_features_train.csv"))
    assert rows["205"].iloc[-1] == "i7" and rows["101"].iloc[-1] == ""


def test_malformed_lines_are_reported_with_their_number(raw_dir):
    path = raw_dir / "sample_skeleton_train.csv"
    with open(path, "a", newline="\n") as f:
        f.write("s7,1,0,c1,1,205:i8:1.0\n")
    with pytest.raises(ValueError, match=r"line 6: feature '205:i8:1.0' is not"):
        list(ali_ccp.iter_raw(path, raw_dir / "common_features_train.csv"))
    (raw_dir / "bad.csv").write_text("s1;1;0\n")
    with pytest.raises(ValueError, match="line 1: expected 'sample_id,click"):
        list(ali_ccp.iter_raw(raw_dir / "bad.csv", {}))


def test_stream_raw_reads_common_features_once(raw_dir, monkeypatch):
    reads = []
    original = ali_ccp.read_common_features
    monkeypatch.setattr(ali_ccp, "read_common_features",
                        lambda *a, **k: reads.append(a) or original(*a, **k))
    sample = ali_ccp.raw_sample(raw_dir / "sample_skeleton_train.csv",
                                original(raw_dir / "common_features_train.csv"), rows=3)
    assert len(sample) == 3
    schema = ali_ccp.schema(layout="raw").adapt(sample)
    dataset = ali_ccp.stream_raw(schema, data_dir=raw_dir, batch_size=3)
    epochs = [list(dataset.as_numpy_iterator()) for _ in range(2)]
    assert len(reads) == 1
    for epoch in epochs:
        assert [len(labels["ctr"]) for _, labels in epoch] == [3, 1]
        np.testing.assert_array_equal(
            np.concatenate([labels["ctr"] for _, labels in epoch]), [1, 0, 1, 0])
        features = epoch[0][0]
        assert features["mtrec:multihot:109_14"].shape[0] == 3
    np.testing.assert_array_equal(epochs[0][0][0]["mtrec:categorical"],
                                  epochs[1][0][0]["mtrec:categorical"])


def test_missing_raw_files_point_to_tianchi(tmp_path):
    with pytest.raises(FileNotFoundError, match="tianchi.aliyun.com/dataset/408"):
        ali_ccp.raw_paths("test", data_dir=tmp_path)
    with pytest.raises(ValueError, match="split must be one of"):
        ali_ccp.raw_paths("valid", data_dir=tmp_path)


@needs_data
def test_registered_dataset(data_dir):
    import mtrec
    from mtrec.data.registry import load_dataset

    splits = load_dataset("ali_ccp", sample=True, data_dir=data_dir)
    assert [len(splits.train), len(splits.valid), len(splits.test)] == [100, 50, 50]
    assert [t.name for t in splits.tasks] == ali_ccp.TASK_NAMES
    schema = mtrec.Schema.infer(splits.train, tasks=splits.tasks, verbose=False)
    assert [s.kind for s in schema.features] == [s.kind for s in ali_ccp.schema().features]
