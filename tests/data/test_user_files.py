"""A user's own files as DatasetSplits: reading, globs, and the split rules."""

import numpy as np
import pandas as pd
import pytest

from mtrec.data.shard_writer import write_shards
from mtrec.data.user_files import SplitRule, load_files, read_table, split_table, table_columns
from helpers import error_of, write_table

TASKS = {"click": "binary"}


def clicks(rows=200, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "user": rng.integers(0, 20, rows),
        "price": rng.normal(size=rows).round(3),
        "day": pd.date_range("2024-01-01", periods=rows, freq="h").strftime("%Y-%m-%d %H:%M"),
        "click": rng.integers(0, 2, rows),
    })


def ids(frame):
    return set(map(tuple, frame[["user", "price", "day"]].itertuples(index=False)))


def test_a_random_split_is_disjoint_complete_and_repeatable(tmp_path):
    frame = clicks()
    path = write_table(frame, tmp_path / "all.csv")
    rule = SplitRule(valid=0.15, test=0.25, seed=3)
    a = load_files(path, TASKS, split=rule)
    b = load_files(str(path), TASKS, split=rule)
    assert (len(a.train), len(a.valid), len(a.test)) == (120, 30, 50)
    assert ids(a.train) | ids(a.valid) | ids(a.test) == ids(frame)
    assert not ids(a.train) & ids(a.test) and not ids(a.valid) & ids(a.test)
    pd.testing.assert_frame_equal(a.test, b.test)
    other = load_files(path, TASKS, split=SplitRule(valid=0.15, test=0.25, seed=4))
    assert ids(other.test) != ids(a.test)
    assert list(a.train.index) == list(range(len(a.train)))


def test_time_cut_offs_put_later_rows_in_later_splits():
    frame = clicks()
    cut = split_table(frame, SplitRule(time_column="day", valid_from="2024-01-05",
                                       test_from="2024-01-07 12:00"))
    day = {name: pd.to_datetime(part["day"]) for name, part in cut.items()}
    assert day["train"].max() < pd.Timestamp("2024-01-05") <= day["valid"].min()
    assert day["valid"].max() < pd.Timestamp("2024-01-07 12:00") <= day["test"].min()
    assert sum(len(p) for p in cut.values()) == len(frame)


def test_time_fractions_hold_out_the_latest_rows():
    frame = clicks().sample(frac=1.0, random_state=0)      # file order is not time order
    cut = split_table(frame, SplitRule(time_column="day", valid=0.1, test=0.2))
    assert (len(cut["train"]), len(cut["valid"]), len(cut["test"])) == (140, 20, 40)
    times = {name: pd.to_datetime(part["day"]) for name, part in cut.items()}
    assert times["train"].max() < times["valid"].min()
    assert times["valid"].max() < times["test"].min()


def test_numeric_times_take_numeric_cut_offs():
    frame = clicks().assign(ts=np.arange(200))
    cut = split_table(frame, SplitRule(time_column="ts", test_from=150))
    assert set(cut) == {"train", "test"} and cut["test"]["ts"].min() == 150
    message = error_of(lambda: split_table(frame, SplitRule(time_column="ts",
                                                            test_from="2024-01-01")))
    assert "test_from is '2024-01-01'" in message and "give a number" in message


def test_a_split_column_names_each_rows_split_and_is_dropped(tmp_path):
    frame = clicks(9).assign(part=["train", "Train", "valid", "validation", "test",
                                   "TEST", "train", "val", "test"])
    splits = load_files(write_table(frame, tmp_path / "t.parquet"), TASKS,
                        split=SplitRule(column="part"))
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (3, 3, 3)
    assert "part" not in splits.train.columns
    bad = frame.assign(part=["train"] * 7 + ["holdout", None])
    message = error_of(lambda: split_table(bad, SplitRule(column="part")))
    assert "split.column 'part' holds ['holdout', '<missing>']" in message


def test_split_files_and_a_rule_for_the_missing_split(tmp_path):
    frame = clicks()
    train = write_table(frame.iloc[:150], tmp_path / "train.csv")
    test = write_table(frame.iloc[150:], tmp_path / "test.parquet")
    splits = load_files({"train": train, "test": test}, TASKS,
                        split=SplitRule(valid=0.2, seed=0))
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (120, 30, 50)
    assert ids(splits.test) == ids(frame.iloc[150:])
    message = error_of(lambda: load_files({"train": train, "test": test}, TASKS))
    assert "no valid split" in message and "files.valid" in message
    message = error_of(lambda: load_files({"train": train, "test": test}, TASKS,
                                          split=SplitRule(valid=0.1, test=0.1)))
    assert "given both as files and by the split rule" in message


def test_globs_read_every_shard_in_order(tmp_path):
    frame = clicks(90)
    for i in range(3):
        write_table(frame.iloc[30 * i:30 * (i + 1)], tmp_path / f"part-{i}.csv")
    table = read_table(str(tmp_path / "part-*.csv"))
    pd.testing.assert_frame_equal(table, frame.reset_index(drop=True), check_dtype=False)
    listed = read_table([tmp_path / "part-2.csv", str(tmp_path / "part-[01].csv")])
    pd.testing.assert_frame_equal(listed, pd.concat([frame.iloc[60:], frame.iloc[:60]],
                                                    ignore_index=True), check_dtype=False)


def test_tfrecord_shards_read_as_one_table(tmp_path):
    frame = clicks(60)
    write_shards(frame, tmp_path / "shards", num_shards=3, format="tfrecord")
    table = read_table(tmp_path / "shards")             # a folder of shards
    assert len(table) == 60
    # tf.Example floats are float32
    pd.testing.assert_frame_equal(table[frame.columns].sort_values("day", ignore_index=True),
                                  frame, check_dtype=False, atol=1e-6)
    columns = table_columns(str(tmp_path / "shards" / "*.tfrecord"))
    assert all(set(found) == set(frame.columns) for found in columns.values())


def test_file_errors_name_the_path_or_pattern(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no file matches the pattern '.*nope-\*"):
        read_table(str(tmp_path / "nope-*.csv"))
    with pytest.raises(FileNotFoundError, match="holds no data file"):
        read_table(tmp_path)
    write_table(clicks(10), tmp_path / "a.csv")
    write_table(clicks(10).drop(columns="price"), tmp_path / "b.csv")
    message = error_of(lambda: read_table(str(tmp_path / "*.csv")))
    assert "b.csv has columns" in message and "same columns" in message
    (tmp_path / "c.json").write_text("{}")
    assert "Cannot tell the format of" in error_of(lambda: read_table(tmp_path / "c.json"))


def test_a_short_csv_line_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text("user,price,click\n1,0.5,1\n2,0.7\n3,0.1,0\n")
    message = error_of(lambda: read_table(path))
    assert "a.csv" in message and "line 3" in message


def test_table_columns_reads_headers_only(tmp_path):
    frame = clicks(20)
    csv = write_table(frame, tmp_path / "a.csv")
    parquet = write_table(frame, tmp_path / "a.parquet")
    semicolons = tmp_path / "b.csv"
    frame.to_csv(semicolons, sep=";", index=False)
    assert table_columns([csv]) == {csv: list(frame.columns)}
    assert table_columns(parquet) == {parquet: list(frame.columns)}
    assert "The files mix formats" in error_of(lambda: table_columns([csv, parquet]))
    assert table_columns(semicolons, read_options={"sep": ";"})[semicolons] == \
        list(frame.columns)


def test_an_empty_split_is_an_error(tmp_path):
    frame = clicks(50)
    path = write_table(frame, tmp_path / "a.csv")
    message = error_of(lambda: load_files(path, TASKS, split=SplitRule(
        time_column="day", valid_from="2030-01-01", test_from="2031-01-01")))
    assert "the valid split is empty" in message
