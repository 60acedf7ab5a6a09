"""Tests for mtrec.data.shards: shard lists, the split across workers, and
the sharded stream of CSV / Parquet / TFRecord files."""

import numpy as np
import pandas as pd
import pytest

from mtrec.data import from_pandas, shards, streaming
from mtrec.data.shard_writer import write_shards

ROWS = 300
FORMATS = ["tfrecord", "parquet", "csv"]


def spends(dataset):
    """The `spend` label of every row, in stream order (unique per row here)."""
    return np.concatenate([labels["spend"] for _, labels in dataset.as_numpy_iterator()])


@pytest.fixture(scope="module")
def csv_table(table):
    # CSV cannot hold the Vector column
    return table.drop(columns=["vec"])


@pytest.fixture(scope="module")
def csv_schema(csv_table, schema):
    import mtrec

    return mtrec.Schema([s for s in schema.features if s.name != "vec"], schema.tasks,
                        stats={k: v for k, v in schema.stats.items() if k != "vec"})


@pytest.fixture(scope="module")
def folders(tmp_path_factory, table, csv_table):
    """The table as 4 shards and as 1, in each format."""
    root = tmp_path_factory.mktemp("shards")
    assert table["spend"].nunique() == ROWS     # rows are told apart by `spend`
    out = {}
    for count in (1, 4):
        write_shards(table, root / f"tfrecord-{count}", count)
        write_shards(table, root / f"parquet-{count}", count, format="parquet")
        folder = root / f"csv-{count}"
        folder.mkdir()
        for shard in range(count):
            csv_table.iloc[shard::count].to_csv(
                folder / f"part-{shard:05d}-of-{count:05d}.csv", index=False)
        for format in FORMATS:
            out[format, count] = root / f"{format}-{count}"
    return out


def test_expand_shards_sorts_globs_keeps_lists_and_reads_folders(tmp_path):
    for name in ["b.parquet", "a.parquet", "c.csv", "_shards.json", ".hidden.parquet"]:
        (tmp_path / name).write_text("x")
    assert [p.name for p in shards.expand_shards(str(tmp_path / "*.parquet"))] == \
        ["a.parquet", "b.parquet"]
    assert [p.name for p in shards.expand_shards([tmp_path / "b.parquet",
                                                  tmp_path / "a.parquet"])] == \
        ["b.parquet", "a.parquet"]
    # a folder: its data files, sorted; metadata and hidden files left out
    assert [p.name for p in shards.expand_shards(tmp_path)] == \
        ["a.parquet", "b.parquet", "c.csv"]
    with pytest.raises(FileNotFoundError, match=r"no file matches the pattern '.*/x-\*\.csv'"):
        shards.expand_shards(str(tmp_path / "x-*.csv"))
    with pytest.raises(FileNotFoundError, match=r"no such file: .*absent.parquet"):
        shards.expand_shards(tmp_path / "absent.parquet")
    with pytest.raises(ValueError, match=r"named more than once"):
        shards.expand_shards([str(tmp_path / "*.parquet"), tmp_path / "a.parquet"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"folder .*empty holds no data file"):
        shards.expand_shards(tmp_path / "empty")


def test_worker_shards_by_file_and_by_record():
    files = [f"part-{i}" for i in range(5)]
    assert shards.worker_shards(files, 2, 0) == (("part-0", "part-2", "part-4"), 1, 0, "file")
    assert shards.worker_shards(files, 2, 1) == (("part-1", "part-3"), 1, 0, "file")
    assert shards.worker_shards(files, 5, 4).files == ("part-4",)
    # fewer files than workers: every file, every 6th record from the index
    share = shards.worker_shards(files, 6, 2)
    assert share == (tuple(files), 6, 2, "record")
    # of records 10..19, only 14 (= 6 * 2 + 2)
    np.testing.assert_array_equal(np.flatnonzero(share.keep(10, 10)), [4])
    assert shards.worker_shards(files).keep(0, 3).all()
    for workers, index, message in [(0, 0, "num_workers must be an integer >= 1"),
                                    (2, 2, r"worker_index must be an integer in \[0, 2\)"),
                                    (2, -1, "worker_index"), (True, 0, "num_workers")]:
        with pytest.raises(ValueError, match=message):
            shards.worker_shards(files, workers, index)


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("count", [4, 1])
def test_two_workers_read_disjoint_rows_that_together_are_all_rows(
        folders, schema, csv_schema, table, format, count):
    use = csv_schema if format == "csv" else schema
    read = lambda index: spends(shards.from_files(
        folders[format, count], use, num_workers=2, worker_index=index, batch_size=32,
        chunk_rows=40, shuffle_buffer=50, seed=1))
    first, second = read(0), read(1)
    assert len(np.intersect1d(first, second)) == 0
    np.testing.assert_array_equal(np.sort(np.concatenate([first, second])),
                                  np.sort(table["spend"].to_numpy("float32")))
    assert abs(len(first) - len(second)) <= 1        # round-robin shards / by record
    if format == "tfrecord":    # same split, same order every run (one format is enough:
        np.testing.assert_array_equal(read(0), first)    # the split is format-blind)


@pytest.mark.parametrize("format", FORMATS)
def test_by_record_keeps_every_other_record_in_file_order(folders, schema, csv_schema,
                                                          table, format):
    use = csv_schema if format == "csv" else schema
    spend = table["spend"].to_numpy("float32")
    for index in (0, 1):
        got = spends(shards.from_files(folders[format, 1], use, num_workers=2,
                                       worker_index=index, batch_size=64, chunk_rows=45))
        np.testing.assert_array_equal(got, spend[index::2])


def test_by_file_reads_files_i_mod_workers(folders, schema, table):
    spend = table["spend"].to_numpy("float32")
    # shard k holds rows k, k+4, ...; worker 1 of 2 reads shards 1 and 3
    got = spends(shards.from_files(folders["parquet", 4], schema, num_workers=2,
                                   worker_index=1, batch_size=500))
    np.testing.assert_array_equal(got, np.concatenate([spend[1::4], spend[3::4]]))


def test_one_worker_unsharded_equals_the_plain_readers(folders, schema, csv_schema,
                                                       csv_table, table):
    def assert_same(got, expected):
        got, expected = list(got.as_numpy_iterator()), list(expected.as_numpy_iterator())
        assert len(got) == len(expected)
        for (f1, l1), (f2, l2) in zip(got, expected):
            for key in f1:
                np.testing.assert_array_equal(f1[key], f2[key])
            for key in l1:
                np.testing.assert_array_equal(l1[key], l2[key])

    csv_file = next(folders["csv", 1].iterdir())
    assert_same(shards.from_files(csv_file, csv_schema, batch_size=64, chunk_rows=70),
                streaming.from_csv(csv_file, csv_schema, batch_size=64, chunk_rows=70))
    reference = streaming.schema_sample(csv_file, schema=csv_schema)
    assert_same(shards.from_files(csv_file, csv_schema, batch_size=64),
                from_pandas(reference, csv_schema, batch_size=64))
    for format in ("parquet", "tfrecord"):
        assert_same(shards.from_files(folders[format, 1], schema, batch_size=64, chunk_rows=70),
                    from_pandas(table, schema, batch_size=64))


def test_sharded_frames_cuts_chunks_to_the_workers_rows(tmp_path):
    frame = pd.DataFrame({"row": np.arange(10)})
    frame.to_parquet(tmp_path / "only.parquet")
    read = lambda path: streaming.parquet_frames(path, 3)
    chunks = list(shards.sharded_frames(tmp_path / "only.parquet", read, 3, 1))
    assert [c["row"].tolist() for c in chunks] == [[1], [4], [7]]
    # record positions run on across files
    frame.iloc[:4].to_parquet(tmp_path / "a.parquet")
    frame.iloc[4:].to_parquet(tmp_path / "b.parquet")
    rows = pd.concat(shards.sharded_frames([tmp_path / "a.parquet", tmp_path / "b.parquet"],
                                           read, 3, 0))["row"].tolist()
    assert rows == [0, 3, 6, 9]


def test_from_files_format_errors(folders, schema, tmp_path):
    (tmp_path / "data.txt").write_text("x")
    with pytest.raises(ValueError, match=r"Cannot tell the format of .*data.txt"):
        shards.from_files(tmp_path / "data.txt", schema)
    mixed = [next(folders["csv", 1].iterdir()), next(folders["parquet", 1].glob("*.parquet"))]
    with pytest.raises(ValueError, match="The files mix formats"):
        shards.from_files(mixed, schema)
    with pytest.raises(ValueError, match=r"\['sep'\], which Parquet files do not take"):
        shards.from_files(folders["parquet", 1], schema, sep=";")
    with pytest.raises(ValueError, match="format must be one of"):
        shards.from_files(folders["parquet", 1], schema, format="orc")
    with pytest.raises(ValueError, match=r"'vec' is a Vector, which a CSV file cannot hold"):
        shards.from_files(folders["csv", 4], schema)
    no_vec = tmp_path / "no_vec.parquet"
    pd.read_parquet(next(folders["parquet", 1].glob("*.parquet"))).drop(
        columns=["vec"]).to_parquet(no_vec)
    with pytest.raises(ValueError, match=r"no_vec.parquet lacks column\(s\) \['vec'\]"):
        shards.from_files([no_vec], schema)
