"""Tests for mtrec.data.streaming: chunked CSV / Parquet -> tf.data batches."""

import threading

import numpy as np
import pandas as pd
import pytest

import mtrec
from mtrec.data import from_pandas, streaming
from mtrec.layers.feature_preprocessing import FeaturePreprocessing
from helpers import assert_same_batches, batches

TASKS = {"click": "binary", "spend": "regression", "grade": "multiclass"}
ROWS = 230


@pytest.fixture(scope="module")
def files(tmp_path_factory, table):
    """The shared table (first rows, no vector column) as one CSV and as two."""
    folder = tmp_path_factory.mktemp("stream")
    table = table.head(ROWS).drop(columns=["vec"])
    table.to_csv(folder / "all.csv", index=False)
    table.iloc[:100].to_csv(folder / "part-0.csv", index=False)
    table.iloc[100:].to_csv(folder / "part-1.csv", index=False)
    return folder


@pytest.fixture(scope="module")
def stream_schema(files):
    sample = streaming.schema_sample(files / "all.csv", rows=10_000)
    schema = mtrec.Schema.infer(sample, tasks=TASKS, verbose=False,
                                tags=mtrec.MultiHot("tags"), title=mtrec.Text("title"))
    return schema.adapt(streaming.schema_sample(files / "all.csv", schema=schema))


@pytest.fixture(scope="module")
def reference(files, stream_schema):
    """The table as the schema reads it (same dtypes as streaming)."""
    return streaming.schema_sample(files / "all.csv", schema=stream_schema)


def test_from_csv_yields_what_from_pandas_yields(files, stream_schema, reference):
    # chunk_rows=70 cuts the file mid-batch: batches must still be full.
    got = batches(streaming.from_csv(files / "all.csv", stream_schema, batch_size=64,
                                     chunk_rows=70))
    assert [len(labels["click"]) for _, labels in got] == [64, 64, 64, 38]
    assert_same_batches(got, batches(from_pandas(reference, stream_schema, batch_size=64)))


def test_element_spec_is_feature_preprocessing_output(files, stream_schema, reference):
    dataset = streaming.from_csv(files / "all.csv", stream_schema, batch_size=8)
    features_spec, labels_spec = dataset.element_spec
    encoded = FeaturePreprocessing(stream_schema)(
        stream_schema.raw_features(reference.head(5)))
    assert set(features_spec) == set(encoded)
    for key, value in encoded.items():
        assert features_spec[key].dtype == value.dtype
        assert tuple(features_spec[key].shape) == (None, *value.shape[1:])
    assert set(labels_spec) == set(TASKS)
    assert all(spec.dtype.name == "float32" and tuple(spec.shape) == (None,)
               for spec in labels_spec.values())
    assert streaming.output_signature(stream_schema, labels=False).keys() == encoded.keys()


def test_several_files_and_glob_read_in_order(files, stream_schema):
    one = batches(streaming.from_csv(files / "all.csv", stream_schema, batch_size=50,
                                     chunk_rows=40))
    listed = batches(streaming.from_csv([files / "part-0.csv", files / "part-1.csv"],
                                        stream_schema, batch_size=50, chunk_rows=40))
    globbed = batches(streaming.from_csv(str(files / "part-*.csv"), stream_schema,
                                         batch_size=50, chunk_rows=40))
    assert_same_batches(listed, one)
    assert_same_batches(globbed, one)


def test_drop_remainder(files, stream_schema):
    got = batches(streaming.from_csv(files / "all.csv", stream_schema, batch_size=64,
                                     chunk_rows=50, drop_remainder=True))
    assert [len(labels["click"]) for _, labels in got] == [64, 64, 64]


def test_shuffle_permutes_rows_repeatably_and_anew_each_epoch(files, stream_schema,
                                                             reference):
    def spends(dataset):
        return np.concatenate([labels["spend"] for _, labels in dataset.as_numpy_iterator()])

    make = lambda seed: streaming.from_csv(files / "all.csv", stream_schema, batch_size=32,
                                           chunk_rows=50, shuffle_buffer=100, seed=seed)
    in_order = reference["spend"].to_numpy("float32")
    dataset = make(7)
    first, second = spends(dataset), spends(dataset)
    assert sorted(first) == sorted(in_order) == sorted(second)    # every row once
    assert not np.array_equal(first, in_order)
    assert not np.array_equal(first, second)                      # new order per epoch
    np.testing.assert_array_equal(spends(make(7)), first)         # same seed, same order
    assert not np.array_equal(spends(make(8)), first)


def test_shuffled_features_stay_with_their_labels(files, stream_schema, reference):
    # `num` (feature) and its row's `spend` (label) must travel together.
    stats = stream_schema.stats["num"]
    rows = {}
    for features, labels in streaming.from_csv(
            files / "all.csv", stream_schema, batch_size=16, chunk_rows=30,
            shuffle_buffer=60, seed=1).as_numpy_iterator():
        scaled = features["mtrec:numeric"][:, 0]
        for value, spend in zip(scaled, labels["spend"]):
            rows[float(spend)] = value
    num = reference["num"].fillna(stats["mean"]).to_numpy("float64")
    expected = (num - stats["mean"]) / np.sqrt(stats["variance"])
    for spend, value in zip(reference["spend"].to_numpy("float32"), expected):
        assert rows[float(spend)] == pytest.approx(value, abs=1e-4)


def test_labels_false_reads_features_only(files, stream_schema, reference, tmp_path):
    path = tmp_path / "unlabelled.csv"
    reference.drop(columns=list(TASKS)).to_csv(path, index=False)
    got = batches(streaming.from_csv(path, stream_schema, batch_size=100, labels=False))
    assert all(isinstance(element, dict) for element in got)
    assert sum(len(f["mtrec:categorical"]) for f in got) == ROWS


def test_missing_column_is_reported_before_iterating(files, stream_schema, tmp_path):
    path = tmp_path / "no_color.csv"
    pd.read_csv(files / "all.csv").drop(columns=["color"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['color'\]"):
        streaming.from_csv(path, stream_schema)
    with pytest.raises(FileNotFoundError, match="no such file"):
        streaming.from_csv(tmp_path / "absent.csv", stream_schema)
    with pytest.raises(FileNotFoundError, match="no file matches"):
        streaming.from_csv(str(tmp_path / "absent-*.csv"), stream_schema)


def test_a_bad_chunk_fails_the_iteration_with_the_schema_message(files, stream_schema,
                                                                 tmp_path):
    table = pd.read_csv(files / "all.csv")
    table.loc[200, "click"] = 2          # in the 5th chunk of 50 rows
    path = tmp_path / "bad.csv"
    table.to_csv(path, index=False)
    dataset = streaming.from_csv(path, stream_schema, batch_size=50, chunk_rows=50)
    with pytest.raises(Exception, match="values other than 0/1"):
        batches(dataset)


def test_reads_lazily_a_few_chunks_ahead(stream_schema, reference):
    """Streaming: the first batch comes after a bounded number of chunks."""
    pulled = []
    lock = threading.Lock()

    def frames():
        for start in range(0, len(reference), 10):
            with lock:
                pulled.append(start)
            yield reference.iloc[start:start + 10]

    dataset = streaming.from_frames(frames, stream_schema, batch_size=10)
    iterator = iter(dataset)
    next(iterator)
    # prefetch may ask for a few more batches; never the whole table.
    with lock:
        assert len(pulled) < len(reference) // 10
    assert sum(len(labels["click"]) for _, labels in iterator) == len(reference) - 10


def test_from_parquet_matches_and_reads_vectors(stream_schema, reference, tmp_path, table):
    path = tmp_path / "table.parquet"
    reference.to_parquet(path)
    got = batches(streaming.from_parquet(path, stream_schema, batch_size=64, chunk_rows=70))
    assert_same_batches(got, batches(from_pandas(reference, stream_schema, batch_size=64)))
    # a Vector column: Parquet holds lists, CSV cannot
    table = table.head(40)
    table.to_parquet(tmp_path / "vec.parquet")
    schema = mtrec.Schema([mtrec.Numeric("num"), mtrec.Vector("vec")],
                          {"click": "binary"}).adapt(table)
    (features, _), = batches(streaming.from_parquet(tmp_path / "vec.parquet", schema,
                                                    batch_size=64))
    assert features["mtrec:vector:vec"].shape == (40, 5)
    with pytest.raises(ValueError, match="Vector.*from_parquet"):
        streaming.from_csv(tmp_path / "vec.parquet", schema)


def test_schema_sample_reads_the_head_across_files(files, stream_schema):
    sample = streaming.schema_sample([files / "part-0.csv", files / "part-1.csv"], rows=120,
                                     schema=stream_schema)
    assert len(sample) == 120
    assert list(sample.columns) == [*stream_schema.feature_names, *TASKS]
    assert sample["num"].dtype == "float32" and sample["user_id"].dtype == "Int64"
    np.testing.assert_array_equal(sample["spend"], pd.read_csv(files / "all.csv")["spend"][:120])
    raw = streaming.schema_sample(files / "all.csv", rows=5)
    assert "title" in raw.columns and len(raw) == 5


def test_a_model_takes_streamed_batches(files, stream_schema):
    model = mtrec.models.SharedBottom(stream_schema, bottom_units=[4], tower_units=[2])
    features, labels = next(iter(streaming.from_csv(files / "all.csv", stream_schema,
                                                    batch_size=16)))
    predictions = model(features)
    assert set(predictions) == set(TASKS)
    assert predictions["click"].shape[0] == 16


def test_argument_errors(files, stream_schema):
    with pytest.raises(ValueError, match="chunk_rows must be an integer >= 1"):
        streaming.from_csv(files / "all.csv", stream_schema, chunk_rows=0)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        streaming.from_csv(files / "all.csv", stream_schema, batch_size=0)
    with pytest.raises(ValueError, match="shuffle_buffer must be an integer >= 0"):
        streaming.from_csv(files / "all.csv", stream_schema, shuffle_buffer=-1)
    with pytest.raises(ValueError, match="Do not pass chunksize"):
        streaming.from_csv(files / "all.csv", stream_schema, chunksize=10)
    with pytest.raises(ValueError, match="function returning an iterator"):
        streaming.from_frames(iter([]), stream_schema)
    unadapted = mtrec.Schema([mtrec.Numeric("num")], {"click": "binary"})
    with pytest.raises(ValueError, match="not adapted"):
        streaming.from_csv(files / "all.csv", unadapted)


def shuffled_file_order(rows, chunk_rows, shuffle_buffer, batch_size, seed, epoch):
    """The row order the shuffled streams promise, spelled out on row numbers:
    whole chunks join the buffer; once it holds `shuffle_buffer + batch_size`
    rows it is permuted and all but `shuffle_buffer` rows (whole batches) go
    out; the rest is permuted at the end. One generator per pass, seeded
    `[seed, epoch]`."""
    rng = np.random.default_rng([seed, epoch])
    pending, out = np.arange(0), []
    for start in range(0, rows, chunk_rows):
        pending = np.concatenate([pending, np.arange(start, min(start + chunk_rows, rows))])
        if len(pending) < shuffle_buffer + batch_size:
            continue
        order = rng.permutation(len(pending))
        full = (len(pending) - shuffle_buffer) // batch_size * batch_size
        out.append(pending[order[:full]])
        pending = pending[order[full:]]
    out.append(pending[rng.permutation(len(pending))])
    return np.concatenate(out)


@pytest.mark.parametrize("chunk_rows, shuffle_buffer, batch_size", [(50, 100, 32), (30, 60, 16),
                                                                    (70, 0, 64)])
def test_stream_order_is_the_documented_one_and_the_buffer_bounds_how_far_rows_move(
        files, stream_schema, reference, chunk_rows, shuffle_buffer, batch_size):
    dataset = streaming.from_csv(files / "all.csv", stream_schema, batch_size=batch_size,
                                 chunk_rows=chunk_rows, shuffle_buffer=shuffle_buffer, seed=5)
    spend = reference["spend"].to_numpy("float32")
    for epoch in range(2):
        got = batches(dataset)
        sizes = [len(labels["spend"]) for _, labels in got]
        assert sizes[:-1] == [batch_size] * (len(sizes) - 1)     # full batches but the last
        order = np.concatenate([labels["spend"] for _, labels in got])
        if shuffle_buffer:
            expected = shuffled_file_order(ROWS, chunk_rows, shuffle_buffer, batch_size,
                                           seed=5, epoch=epoch)
        else:
            expected = np.arange(ROWS)
        np.testing.assert_array_equal(order, spend[expected])
        # a row leaves at most one buffer, one chunk and one batch before its turn
        position_in_file = expected
        assert (position_in_file - np.arange(ROWS)
                < shuffle_buffer + chunk_rows + batch_size).all()


def test_drop_remainder_gives_streamed_batches_a_static_batch_dimension(files, stream_schema):
    dataset = streaming.from_csv(files / "all.csv", stream_schema, batch_size=64,
                                 chunk_rows=50, shuffle_buffer=80, seed=0, drop_remainder=True)
    features, labels = dataset.element_spec
    assert all(spec.shape[0] == 64 for spec in [*features.values(), *labels.values()])
    assert [len(l["click"]) for _, l in batches(dataset)] == [64, 64, 64]
    unlabelled = streaming.from_csv(files / "all.csv", stream_schema, batch_size=64,
                                    labels=False, drop_remainder=True)
    assert all(spec.shape[0] == 64 for spec in unlabelled.element_spec.values())


def test_a_short_line_stops_the_stream_naming_the_line(files, stream_schema, tmp_path):
    lines = (files / "all.csv").read_text().splitlines()
    lines[120] = ",".join(lines[120].split(",")[:3])     # in the 3rd chunk of 50
    path = tmp_path / "short.csv"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(Exception, match=r"DataValidationError: .*short.csv: line 121 "
                                        r"has 3 field\(s\), but the header has"):
        batches(streaming.from_csv(path, stream_schema, batch_size=50, chunk_rows=50))
    with pytest.raises(ValueError, match="line 121 has 3 field"):
        streaming.schema_sample(path, rows=200, schema=stream_schema)
    assert len(streaming.schema_sample(path, rows=100, schema=stream_schema)) == 100


def test_a_value_its_dtype_cannot_hold_is_named(files, stream_schema, tmp_path):
    table = pd.read_csv(files / "all.csv")
    table["num"] = table["num"].astype(object)
    table.loc[60, "num"] = "high"
    path = tmp_path / "bad.csv"
    table.to_csv(path, index=False)
    with pytest.raises(Exception, match=r"Column 'num' \(a Numeric feature\) holds values "
                                        r"that are not numbers: 'high' in row\(s\) 60"):
        batches(streaming.from_csv(path, stream_schema, batch_size=50, chunk_rows=50))
