"""StreamedSplits: the train / valid / test files of a streamed run."""

import numpy as np
import pandas as pd
import pytest

from mtrec.data import registry
from mtrec.data.shard_writer import write_shards
from mtrec.data.shards import expand_shards
from mtrec.data.streamed_splits import StreamedSplits, count_rows
from mtrec.experiments.config import DatasetConfig
from mtrec.schema import Schema


@pytest.fixture(scope="module")
def frames():
    data = registry.load_dataset("synthetic_tiny", rows=2000, seed=1)
    return data


def split_files(tmp_path, frames, train_sizes, format="parquet"):
    """Train shards of the given sizes plus one valid and one test file."""
    suffix = {"parquet": ".parquet", "csv": ".csv"}[format]
    start, files = 0, {"train": []}
    for index, size in enumerate(train_sizes):
        path = tmp_path / f"train-{index}{suffix}"
        part = frames.train.iloc[start:start + size]
        part.to_parquet(path, index=False) if format == "parquet" else part.to_csv(path, index=False)
        files["train"].append(str(path))
        start += size
    for split in ("valid", "test"):
        path = tmp_path / f"{split}{suffix}"
        frame = getattr(frames, split)
        frame.to_parquet(path, index=False) if format == "parquet" else frame.to_csv(path, index=False)
        files[split] = [str(path)]
    return files


def adapted(splits, frames):
    schema = Schema.infer(splits.head(), tasks=frames.tasks, verbose=False)
    splits.adapt(schema)
    return schema


def test_steps_per_epoch_are_the_smallest_share_in_full_batches(tmp_path, frames):
    splits = StreamedSplits(split_files(tmp_path, frames, [500, 300, 200]),
                            tasks=frames.tasks, format="parquet", chunk_rows=128)
    adapted(splits, frames)
    assert splits.rows("train") == 1000
    assert splits.train_steps(100) == 10            # one process: every row
    assert splits.train_steps(128) == 8             # with the last, smaller batch
    # 2 workers by file: files 0 + 2 (700 rows) and file 1 (300 rows)
    assert splits.train_steps(100, num_workers=2) == 3
    # 4 workers > 3 files: by record, 250 rows each
    assert splits.train_steps(100, num_workers=4) == 2
    with pytest.raises(ValueError, match="less than one batch of 400"):
        splits.train_steps(400, num_workers=4)


def test_train_batches_have_the_stated_length_and_cover_a_share(tmp_path, frames):
    splits = StreamedSplits(split_files(tmp_path, frames, [500, 500]), tasks=frames.tasks,
                            format="parquet", chunk_rows=100, shuffle_buffer=200)
    schema = adapted(splits, frames)
    steps = splits.train_steps(100, num_workers=2)
    batches = splits.train_batches(schema, 100, steps, seed=0, num_workers=2, worker_index=1)
    assert int(batches.cardinality()) == steps == 5
    labels = np.concatenate([b[1]["click"].numpy() for b in batches])
    np.testing.assert_array_equal(np.sort(labels),
                                  np.sort(frames.train["click"].iloc[500:1000].to_numpy()))
    first = [b[1]["click"].numpy() for b in batches]
    again = [b[1]["click"].numpy() for b in batches]
    assert not all(np.array_equal(a, b) for a, b in zip(first, again))   # reshuffled


@pytest.mark.parametrize("format", ["csv", "parquet", "tfrecord"])
def test_rows_are_counted_in_every_format(tmp_path, frames, format):
    if format == "tfrecord":
        write_shards(frames.valid, tmp_path / "shards", 3, format="tfrecord")
        files = expand_shards(tmp_path / "shards")
    else:
        files = split_files(tmp_path, frames, [10], format=format)["valid"]
    assert count_rows(files, format) == len(frames.valid)


def test_a_column_is_read_in_file_order(tmp_path, frames):
    splits = StreamedSplits(split_files(tmp_path, frames, [100], format="csv"),
                            tasks=frames.tasks, format="csv", chunk_rows=50)
    np.testing.assert_array_equal(splits.column("test", "color"),
                                  frames.test["color"].to_numpy())


def test_the_config_streams_only_three_split_files():
    message = str(pytest.raises(ValueError, DatasetConfig, files="all.csv",
                                split={"valid": 0.1, "test": 0.1},
                                tasks={"click": "binary"}, stream=True).value)
    assert "stream reads train, valid and test as files" in message
    message = str(pytest.raises(ValueError, DatasetConfig, name="synthetic_tiny",
                                stream=True).value)
    assert "stream apply to dataset.files only" in message
    assert DatasetConfig(files={"train": "a.csv", "valid": "b.csv", "test": "c.csv"},
                         tasks={"click": "binary"}, stream=False).stream is None


def test_a_resumed_stream_continues_at_the_same_batch(tmp_path, frames):
    """What a rerun after a kill reads: `EpochStream.at(epoch, step)` of a
    streamed input gives the batches an uninterrupted run reads there."""
    from mtrec.experiments.run_inputs import StreamedInput

    splits = StreamedSplits(split_files(tmp_path, frames, [400, 400]), tasks=frames.tasks,
                            format="parquet", chunk_rows=100, shuffle_buffer=300)
    source = StreamedInput(splits)
    schema = adapted(splits, frames)
    stream = source.train_stream(schema, 64, seed=5, strategy=None, worker=None,
                                 training_strategy="none")
    steps = splits.train_steps(64)
    whole = [b[1]["like"].numpy() for b in stream.at(0).take(2 * steps)]
    resumed = [b[1]["like"].numpy() for b in stream.at(1, 3).take(steps - 3)]
    assert stream.steps_per_epoch == steps == 13
    for a, b in zip(whole[steps + 3:], resumed):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(whole[0], whole[steps])     # epoch 2 is another order
