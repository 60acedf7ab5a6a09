"""Tests for mtrec.data.tfrecord: TFRecord files of tf.Example -> the batches
streaming yields for CSV and Parquet."""

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import mtrec
from mtrec.data import from_pandas, streaming, tfrecord
from mtrec.data.shard_writer import write_shards
from helpers import assert_same_batches, batches

ROWS = 300


def example(**features):
    """A serialised tf.Example; ints -> int64_list, floats -> float_list,
    str -> bytes_list, each value a list."""
    feature = {}
    for name, values in features.items():
        if all(isinstance(v, str) for v in values):
            feature[name] = tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[v.encode() for v in values]))
        elif all(isinstance(v, int) for v in values):
            feature[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=values))
        else:
            feature[name] = tf.train.Feature(float_list=tf.train.FloatList(value=values))
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_records(path, records, compression=""):
    with tf.io.TFRecordWriter(str(path), tf.io.TFRecordOptions(
            compression_type=compression)) as writer:
        for record in records:
            writer.write(record)
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory, table):
    """The shared table as one TFRecord shard and as one Parquet file."""
    folder = tmp_path_factory.mktemp("tfrecord")
    write_shards(table, folder / "tf", 1)
    table.to_parquet(folder / "table.parquet")
    return folder


def test_from_tfrecord_yields_what_from_parquet_and_from_pandas_yield(files, schema, table):
    # chunk_rows=70 cuts the file mid-batch; every feature kind, a Vector included
    got = batches(tfrecord.from_tfrecord(files / "tf", schema, batch_size=64, chunk_rows=70))
    assert [len(labels["click"]) for _, labels in got] == [64, 64, 64, 64, 44]
    assert_same_batches(got, batches(streaming.from_parquet(
        files / "table.parquet", schema, batch_size=64, chunk_rows=70)))
    assert_same_batches(got, batches(from_pandas(table, schema, batch_size=64)))
    assert tfrecord.from_tfrecord(files / "tf", schema).element_spec == \
        streaming.from_parquet(files / "table.parquet", schema).element_spec


def test_shuffled_streams_are_the_same_rows_in_the_same_order_as_parquet(files, schema):
    # same chunks, same buffer, same seed: the same permutation, row for row
    tf_stream = tfrecord.from_tfrecord(files / "tf", schema, batch_size=32, chunk_rows=50,
                                       shuffle_buffer=100, seed=3)
    parquet = streaming.from_parquet(files / "table.parquet", schema, batch_size=32,
                                     chunk_rows=50, shuffle_buffer=100, seed=3)
    first = batches(tf_stream)
    assert_same_batches(first, batches(parquet))
    spend = lambda got: np.concatenate([labels["spend"] for _, labels in got])
    assert not np.array_equal(spend(first), spend(batches(tf_stream)))   # new order per epoch


def test_records_as_tf_pipelines_write_them(tmp_path):
    """int64 numbers, absent keys, multi-hot lists, vectors as float_list."""
    path = write_records(tmp_path / "hand.tfrecord", [
        example(city=["paris"], age=[31], tags=["a", "b"], vec=[0.5, 1.5], click=[1]),
        example(age=[40], tags=["c"], vec=[2.0, 3.0], click=[0]),
        example(city=["rome"], tags=[], click=[1]),
    ])
    (frame,) = list(tfrecord.tfrecord_frames(path, 10, columns=["city", "age", "tags", "vec",
                                                               "click", "absent"],
                                             list_columns=["vec"]))
    assert list(frame.columns) == ["city", "age", "tags", "vec", "click", "absent"]
    assert frame["city"].tolist()[0] == "paris" and pd.isna(frame["city"][1])
    assert frame["age"].dtype == "Int64" and frame["age"].tolist()[:2] == [31, 40]
    assert pd.isna(frame["age"][2])
    # several values in some row: every row a list; an empty list is missing
    assert list(frame["tags"][0]) == ["a", "b"] and list(frame["tags"][1]) == ["c"]
    assert frame["tags"][2] is None
    assert frame["vec"][0].dtype == np.float32 and list(frame["vec"][1]) == [2.0, 3.0]
    assert frame["vec"][2] is None
    assert frame["click"].dtype == "int64" and frame["absent"].isna().all()

    # and the stream equals from_pandas on the same rows
    expected = pd.DataFrame({"city": ["paris", None, "rome"], "age": [31.0, 40.0, np.nan],
                             "tags": [["a", "b"], ["c"], []],
                             "vec": [[0.5, 1.5], [2.0, 3.0], None], "click": [1, 0, 1]})
    schema = mtrec.Schema([mtrec.Categorical("city"), mtrec.Numeric("age"),
                           mtrec.MultiHot("tags"), mtrec.Vector("vec")],
                          {"click": "binary"}).adapt(expected)
    assert_same_batches(batches(tfrecord.from_tfrecord(path, schema, batch_size=2)),
                        batches(from_pandas(expected, schema, batch_size=2)))


def test_the_list_kind_is_learned_per_file(tmp_path):
    # one pipeline wrote `age` as int64_list, another as float_list
    write_records(tmp_path / "a.tfrecord", [example(age=[30], click=[1])])
    write_records(tmp_path / "b.tfrecord", [example(age=[41.5], click=[0])])
    frame = tfrecord.tfrecord_sample(str(tmp_path / "*.tfrecord"))
    assert frame["age"].tolist() == [30, 41.5]
    mixed = write_records(tmp_path / "mixed.tfrecord",
                          [example(age=[30], click=[1]), example(age=[41.5], click=[0])])
    with pytest.raises(ValueError, match=r"mixed.tfrecord: feature 'age' is stored with "
                                         r"different list kinds"):
        list(tfrecord.tfrecord_frames(mixed, 10, columns=["age"]))
    # the same, past the first records (found by parse attempts, not by the head)
    sparse = write_records(tmp_path / "sparse.tfrecord", [example(click=[1])] * 70
                           + [example(age=[30]), example(age=[41.5])])
    with pytest.raises(ValueError, match=r"sparse.tfrecord: feature 'age' is stored with "
                                         r"different list kinds"):
        list(tfrecord.tfrecord_frames(sparse, 100, columns=["age"]))
    frame = next(tfrecord.tfrecord_frames(sparse, 71, columns=["age"]))  # one int in 71
    assert frame["age"].dtype == "Int64" and frame["age"].tolist()[70] == 30
    # a kind change in a later chunk is named too
    later = write_records(tmp_path / "later.tfrecord",
                          [example(age=[30])] * 3 + [example(age=[1.5])])
    with pytest.raises(ValueError, match=r"later.tfrecord: feature 'age' is stored with "
                                         r"different list kinds in different records "
                                         r"\(int64_list in the first ones"):
        list(tfrecord.tfrecord_frames(later, 3, columns=["age"]))


def test_gzip_by_suffix_or_argument_and_a_clear_error_otherwise(tmp_path, schema, table):
    write_shards(table.head(50), tmp_path / "gz", 2, compression="GZIP")
    names = sorted(p.name for p in (tmp_path / "gz").iterdir())
    assert names == ["_shards.json", "part-00000-of-00002.tfrecord.gz",
                     "part-00001-of-00002.tfrecord.gz"]
    got = batches(tfrecord.from_tfrecord(tmp_path / "gz", schema, batch_size=100))
    assert sum(len(labels["click"]) for _, labels in got) == 50
    hidden = tmp_path / "gzipped.tfrecord"     # gzipped, not named so
    hidden.write_bytes((tmp_path / "gz" / names[1]).read_bytes())
    with pytest.raises(ValueError, match=r"gzipped.tfrecord: cannot read TFRecord.*"
                                         r"compression='GZIP'"):
        list(tfrecord.tfrecord_frames(hidden, 10))
    assert len(next(tfrecord.tfrecord_frames(hidden, 100, compression="gzip"))) == 25
    with pytest.raises(ValueError, match="compression must be one of"):
        tfrecord.compression_of(hidden, "zip")


def test_a_column_no_record_holds_is_refused_unless_allowed(tmp_path, files, schema, table):
    folder = tmp_path / "no_color"
    write_shards(table.drop(columns=["color"]), folder, 1)
    with pytest.raises(ValueError, match=r"part-00000-of-00001.tfrecord: none of its first "
                                         r"300 records holds feature\(s\) \['color'\]"):
        tfrecord.from_tfrecord(folder, schema)
    # allowed: the column reads as missing in every row
    got = batches(tfrecord.from_tfrecord(folder, schema, batch_size=ROWS, check_columns=False))
    missing = table.assign(color=None)
    assert_same_batches(got, batches(from_pandas(missing, schema, batch_size=ROWS)))


def test_labels_false_reads_features_only(tmp_path, schema, table):
    folder = tmp_path / "unlabelled"
    write_shards(table.drop(columns=["click", "spend", "grade"]), folder, 1)
    got = batches(tfrecord.from_tfrecord(folder, schema, batch_size=128, labels=False))
    assert all(isinstance(element, dict) for element in got)
    assert sum(len(f["mtrec:categorical"]) for f in got) == ROWS


def test_tfrecord_sample_reads_the_head_as_the_stream_does(files, schema, table):
    sample = tfrecord.tfrecord_sample(files / "tf", rows=120, schema=schema)
    assert len(sample) == 120
    assert list(sample.columns) == [*schema.feature_names, "click", "spend", "grade"]
    np.testing.assert_array_equal(sample["spend"], table["spend"][:120].astype("float32"))
    # without a schema: every key (by name), for Schema.infer
    raw = tfrecord.tfrecord_sample(files / "tf", rows=ROWS)
    assert list(raw.columns) == sorted(table.columns)
    inferred = mtrec.Schema.infer(raw, tasks={"click": "binary", "spend": "regression",
                                              "grade": "multiclass"}, verbose=False,
                                  tags=mtrec.MultiHot("tags"), title=mtrec.Text("title"))
    kinds = lambda s: {spec.name: type(spec).__name__ for spec in s.features}
    assert kinds(inferred) == kinds(schema)
    with pytest.raises(ValueError, match="rows must be an integer >= 1"):
        tfrecord.tfrecord_sample(files / "tf", rows=0)


def test_argument_and_file_errors(tmp_path, files, schema):
    with pytest.raises(FileNotFoundError, match=r"no file matches the pattern '.*absent-\*'"):
        tfrecord.from_tfrecord(str(tmp_path / "absent-*"), schema)
    with pytest.raises(ValueError, match="chunk_rows must be an integer >= 1"):
        tfrecord.from_tfrecord(files / "tf", schema, chunk_rows=0)
    with pytest.raises(ValueError, match=r"worker_index must be an integer in \[0, 2\)"):
        tfrecord.from_tfrecord(files / "tf", schema, num_workers=2, worker_index=2)
    bad = tmp_path / "latin1.tfrecord"
    write_records(bad, [tf.train.Example(features=tf.train.Features(feature={
        "city": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"\xe9"]))}))
        .SerializeToString()])
    with pytest.raises(ValueError, match=r"latin1.tfrecord: feature 'city' holds bytes that "
                                         r"are not UTF-8"):
        list(tfrecord.tfrecord_frames(bad, 10))
