"""Tests for mtrec.data.shard_writer: DataFrame / CSV / Parquet -> N shards,
written whole, read back into the same rows."""

import argparse
import json

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import mtrec
from mtrec.data import from_pandas, shard_writer, shards, streaming, tfrecord
from mtrec.data.shard_writer import write_shards

ROWS = 300


def rows(dataset):
    """Every row of a stream, `{key: array}` sorted by the `spend` label
    (unique per row), so streams of the same rows in any order compare equal."""
    got = list(dataset.as_numpy_iterator())
    features = {k: np.concatenate([f[k] for f, _ in got]) for k in got[0][0]}
    labels = {k: np.concatenate([l[k] for _, l in got]) for k in got[0][1]}
    order = np.argsort(labels["spend"], kind="stable")
    return {**{k: v[order] for k, v in features.items()},
            **{f"label:{k}": v[order] for k, v in labels.items()}}


def assert_same_rows(got, expected):
    assert set(got) == set(expected)
    for key in got:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


@pytest.mark.parametrize("format", ["tfrecord", "parquet"])
def test_a_frame_round_trips_through_four_shards(tmp_path, table, schema, format):
    result = write_shards(table, tmp_path / "out", 4, format=format, rows_per_chunk=70)
    suffix = ".tfrecord" if format == "tfrecord" else ".parquet"
    assert [p.name for p in result.files] == [f"part-0000{i}-of-00004{suffix}"
                                              for i in range(4)]
    assert result.rows == [75, 75, 75, 75]
    got = shards.from_files(tmp_path / "out", schema, batch_size=64, chunk_rows=50,
                            shuffle_buffer=60, seed=0)
    assert_same_rows(rows(got), rows(from_pandas(table, schema, batch_size=64)))
    # round-robin: shard k holds rows k, k + 4, ... in order
    spend = table["spend"].to_numpy("float32")
    for k, path in enumerate(result.files):
        alone = shards.from_files(path, schema, batch_size=ROWS)
        np.testing.assert_array_equal(next(iter(alone))[1]["spend"].numpy(), spend[k::4])
    manifest = json.loads((tmp_path / "out" / shard_writer.MANIFEST).read_text())
    assert manifest == {"format": format, "num_shards": 4, "dealt": "round-robin",
                        "compression": None, "columns": list(table.columns),
                        "rows": [75] * 4, "total_rows": ROWS,
                        "files": [p.name for p in result.files]}


def test_one_shard_keeps_the_rows_in_order(tmp_path, table, schema):
    write_shards(table, tmp_path / "one", 1, rows_per_chunk=45)
    got = list(tfrecord.from_tfrecord(tmp_path / "one", schema, batch_size=64)
               .as_numpy_iterator())
    expected = list(from_pandas(table, schema, batch_size=64).as_numpy_iterator())
    assert len(got) == len(expected)
    for (f1, l1), (f2, l2) in zip(got, expected):
        for key in f1:
            np.testing.assert_array_equal(f1[key], f2[key])
        for key in l1:
            np.testing.assert_array_equal(l1[key], l2[key])


def test_a_csv_larger_than_a_chunk_is_sharded_with_the_schemas_dtypes(tmp_path, table):
    frame = table.drop(columns=["vec"]).assign(code=[f"{i % 7:03d}" for i in range(ROWS)])
    source = tmp_path / "table.csv"
    frame.to_csv(source, index=False)
    schema = mtrec.Schema.infer(streaming.schema_sample(source), verbose=False,
                                tasks={"click": "binary", "spend": "regression"},
                                code=mtrec.Categorical("code"), tags=mtrec.MultiHot("tags"),
                                title=mtrec.Text("title"), exclude=["grade"])
    schema.adapt(streaming.schema_sample(source, schema=schema))
    write_shards(source, tmp_path / "out", 3, schema=schema, rows_per_chunk=40)
    assert json.loads((tmp_path / "out" / shard_writer.MANIFEST).read_text())["columns"] == \
        streaming._needed_columns(schema, labels=True)       # `grade` left out
    got = rows(shards.from_files(tmp_path / "out", schema, batch_size=64))
    assert_same_rows(got, rows(streaming.from_csv(source, schema, batch_size=64)))
    # ids read as strings keep their zeros ("007"), as from_csv reads them
    sample = tfrecord.tfrecord_sample(tmp_path / "out", schema=schema)
    assert sorted(sample["code"].unique()) == [f"{i:03d}" for i in range(7)]


def test_a_parquet_source_and_a_column_subset(tmp_path, table):
    table.to_parquet(tmp_path / "table.parquet")
    write_shards(tmp_path / "table.parquet", tmp_path / "out", 2, format="parquet",
                 columns=["user_id", "vec", "click"], rows_per_chunk=100)
    back = pd.concat(pd.read_parquet(p) for p in shards.expand_shards(tmp_path / "out"))
    assert list(back.columns) == ["user_id", "vec", "click"]
    assert sorted(back["user_id"]) == sorted(table["user_id"])
    with pytest.raises(ValueError, match=r"table.parquet lacks column\(s\) \['nope'\]"):
        write_shards(tmp_path / "table.parquet", tmp_path / "bad", 2, columns=["nope"])


def test_the_tf_example_encoding(tmp_path):
    frame = pd.DataFrame({
        "id": pd.array([7, None, 9], dtype="Int64"), "flag": [True, False, True],
        "score": [0.5, np.nan, 2.0], "city": ["paris", None, ""],
        "tags": [["a", "b"], [], None], "vec": [np.array([1.0, 2.0]), None, np.array([3, 4.5])],
    })
    write_shards(frame, tmp_path / "out", 1)
    records = [tf.train.Example.FromString(r.numpy()).features.feature for r in
               tf.data.TFRecordDataset(str(tmp_path / "out" / "part-00000-of-00001.tfrecord"))]
    assert set(records[0]) == {"id", "flag", "score", "city", "tags", "vec"}
    assert list(records[0]["id"].int64_list.value) == [7]
    assert list(records[0]["flag"].int64_list.value) == [1]
    assert list(records[0]["score"].float_list.value) == [0.5]
    assert list(records[0]["tags"].bytes_list.value) == [b"a", b"b"]
    assert list(records[0]["vec"].float_list.value) == [1.0, 2.0]
    # NaN, None, NA and [] are absent keys; "" is a present empty string
    assert set(records[1]) == {"flag"}
    assert set(records[2]) == {"id", "flag", "score", "city", "vec"}
    assert list(records[2]["city"].bytes_list.value) == [b""]
    assert list(records[2]["vec"].float_list.value) == [3.0, 4.5]


def test_a_failure_mid_write_leaves_no_out_dir(tmp_path, table):
    frame = table.drop(columns=["vec"]).astype({"color": object})
    frame.loc[250, "color"] = 3          # an int among strings, in the 4th chunk of 80
    with pytest.raises(ValueError, match=r"Column 'color' holds int64 values from row 250 "
                                         r"on but bytes values before"):
        write_shards(frame, tmp_path / "out", 2, rows_per_chunk=80)
    assert list(tmp_path.iterdir()) == []      # no out_dir, no partial sibling


def test_an_existing_out_dir_is_refused_unless_overwrite(tmp_path, table):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"out already exists and is not empty; refusing"):
        write_shards(table, out, 2)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    write_shards(table.head(10), out, 2, overwrite=True)
    assert sorted(p.name for p in out.iterdir()) == [
        "_shards.json", "part-00000-of-00002.tfrecord", "part-00001-of-00002.tfrecord"]
    empty = tmp_path / "empty"
    empty.mkdir()
    write_shards(table.head(10), empty, 1, format="parquet")     # an empty folder is free
    assert len(pd.read_parquet(empty / "part-00000-of-00001.parquet")) == 10


def test_more_shards_than_rows_gives_empty_shards_that_read_back(tmp_path, table, schema):
    result = write_shards(table.head(3), tmp_path / "out", 5, format="parquet")
    assert result.rows == [1, 1, 1, 0, 0]
    assert pd.read_parquet(result.files[4]).columns.tolist() == list(table.columns)
    got = shards.from_files(tmp_path / "out", schema, batch_size=8)
    assert sum(len(labels["click"]) for _, labels in got.as_numpy_iterator()) == 3


def test_errors_name_the_column_or_argument(tmp_path, table):
    dated = pd.DataFrame({"when": pd.to_datetime(["2024-01-01", "2024-01-02"])})
    with pytest.raises(ValueError, match=r"Column 'when' is datetime64.*tf.Example cannot hold"):
        write_shards(dated, tmp_path / "a", 1)
    mixed = pd.DataFrame({"items": [["a", 1], ["b"]]})
    with pytest.raises(ValueError, match=r"Column 'items' row 0 .* a list mixing types"):
        write_shards(mixed, tmp_path / "b", 1)
    for kwargs, message in [({"num_shards": 0}, "num_shards must be an integer >= 1"),
                            ({"format": "csv"}, "format must be one of"),
                            ({"compression": "GZIP", "format": "parquet"},
                             "applies to TFRecord shards only"),
                            ({"rows_per_chunk": 0}, "rows_per_chunk must be an integer >= 1")]:
        with pytest.raises(ValueError, match=message):
            write_shards(table, tmp_path / "c", **{"num_shards": 2, **kwargs})
    with pytest.raises(ValueError, match=r"The DataFrame holds no rows"):
        write_shards(table.head(0), tmp_path / "d", 2)
    with pytest.raises(FileNotFoundError, match=r"no file matches the pattern"):
        write_shards(str(tmp_path / "none-*.csv"), tmp_path / "e", 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_the_shard_command(tmp_path, table, capsys):
    table.drop(columns=["vec"]).to_csv(tmp_path / "table.csv", index=False)
    parser = argparse.ArgumentParser(prog="mtrec data")
    shard_writer.add_shard_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["shard", str(tmp_path / "table.csv"), str(tmp_path / "out"),
                              "--shards", "4", "--format", "parquet",
                              "--columns", "user_id,click", "--rows-per-chunk", "64"])
    assert args.func(args) == 0
    assert "Wrote 4 parquet shards of 300 rows (75-75 per shard, dealt round-robin)" in \
        capsys.readouterr().out
    back = pd.concat(pd.read_parquet(p) for p in shards.expand_shards(tmp_path / "out"))
    assert sorted(back["user_id"]) == sorted(table["user_id"])
    again = parser.parse_args(["shard", str(tmp_path / "table.csv"), str(tmp_path / "out"),
                               "--shards", "2"])
    with pytest.raises(ValueError, match="refusing to overwrite"):
        again.func(again)
    again = parser.parse_args(["shard", str(tmp_path / "table.csv"), str(tmp_path / "out"),
                               "--shards", "2", "--overwrite", "--compression", "gzip"])
    assert again.func(again) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir())[1:] == [
        "part-00000-of-00002.tfrecord.gz", "part-00001-of-00002.tfrecord.gz"]
