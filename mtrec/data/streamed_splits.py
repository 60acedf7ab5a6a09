"""A user's train / validation / test files, streamed instead of loaded.

What a run config's `dataset: {files: {...}, tasks: ..., stream: true}`
gives `mtrec train` (see `mtrec.experiments.config`): the counterpart of
`DatasetSplits` for files larger than memory. Nothing here holds a split
in memory: the schema is inferred on the head of the train files
(`head`), adapted in one streaming pass over all of them
(`adapt`, `mtrec.schema.streaming_adapt`), and every split is read as
batches from its shards (`batches`, `mtrec.data.shards.from_files`), each
worker of a multi-worker run reading its own share of the train files.

Every worker must run the same number of steps per epoch (a collective
waits for all of them), so `train_steps` is the smallest share's number
of full batches: up to one share's remainder of rows sits out each epoch,
which is a few batches for shards of equal size (`mtrec data shard`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from mtrec.data import shards, streaming, tfrecord
from mtrec.schema.streaming_adapt import adapt_from_frames

__all__ = ["StreamedSplits", "count_rows"]


@dataclasses.dataclass
class StreamedSplits:
    """Train / valid / test files read as streams.

    Attributes:
        files: dict `{"train": [...], "valid": [...], "test": [...]}` of
            expanded file lists (`shards.expand_shards`).
        tasks: list of `mtrec.TaskSpec` (or `{task: kind}`).
        format: `"csv"`, `"parquet"` or `"tfrecord"`.
        read_options: dict of `pandas.read_csv` options (CSV), or
            `{"compression": ...}` (TFRecord).
        description: str for logs and the run record.
        chunk_rows: int. Rows read at a time.
        shuffle_buffer: int. Rows in the training shuffle buffer.
        sample_rows: int. Rows of the head used to infer the schema, and of
            the uniform sample of the streaming adapt.
        group_column: always None (files name no group column; the run
            config's `evaluation.group_column` does).
        features: always empty (as `DatasetSplits.features`).
    """

    files: dict
    tasks: list
    format: str
    read_options: dict = dataclasses.field(default_factory=dict)
    description: str = ""
    chunk_rows: int = 100_000
    shuffle_buffer: int = 100_000
    sample_rows: int = 100_000
    group_column: None = None
    features: list = dataclasses.field(default_factory=list)
    file_rows: dict = dataclasses.field(default_factory=dict)   # train file -> rows
    split_rows: dict = dataclasses.field(default_factory=dict)  # valid/test, once counted

    def head(self, rows=None):
        """The first `rows` (default `sample_rows`) rows of the train files,
        every column, for `Schema.infer` and the leakage check."""
        rows = int(rows or self.sample_rows)
        files = self.files["train"]
        parts, remaining = [], rows
        for path in files:
            for chunk in self._raw_chunks(path, min(remaining, self.chunk_rows)):
                parts.append(chunk.iloc[:remaining])
                remaining -= len(parts[-1])
                if remaining <= 0:
                    break
            if remaining <= 0:
                break
        if not parts or not sum(len(p) for p in parts):
            raise ValueError(f"dataset.files.train ({', '.join(map(str, files))}) holds no "
                             f"rows; a streamed run needs training rows to infer and adapt "
                             f"the schema on.")
        return pd.concat(parts, ignore_index=True)

    def adapt(self, schema, seed=0):
        """Adapt `schema` in one pass over every train row; records each
        train file's row count (`file_rows`). Returns the `AdaptSummary`."""
        read = shards.frame_reader(self.files["train"], schema, self.format,
                                   chunk_rows=self.chunk_rows, read_options=self.read_options)
        self.file_rows = {}

        def frames():
            for path in self.files["train"]:
                self.file_rows[path] = 0
                for frame in read(path):
                    self.file_rows[path] += len(frame)
                    yield frame

        _, summary = adapt_from_frames(schema, frames(), sample_rows=self.sample_rows,
                                       seed=seed)
        return summary

    def rows(self, split):
        """Rows of a split: train from the adapt pass, the others counted."""
        if split == "train" and self.file_rows:
            return sum(self.file_rows.values())
        if split not in self.split_rows:     # a pass over the files: count once
            self.split_rows[split] = count_rows(self.files[split], self.format,
                                                self.read_options)
        return self.split_rows[split]

    def train_steps(self, batch_size, num_workers=1):
        """Steps per epoch every worker can run: the fewest full batches of
        `batch_size` (this worker's batch) in any worker's share (at least
        one batch of a smaller last one for a single process)."""
        if not self.file_rows:
            raise RuntimeError("train_steps needs the row counts of the adapt pass; "
                               "call adapt(schema) first.")
        files = self.files["train"]
        counts = [self.file_rows[path] for path in files]
        shares = []
        for index in range(num_workers):
            share = shards.worker_shards(files, num_workers, index)
            if share.every == 1:
                shares.append(sum(self.file_rows[path] for path in share.files))
            else:   # by record: every `every`-th row from `first`
                total = sum(counts)
                shares.append(len(range(share.offset, total, share.every)))
        if num_workers == 1:
            return max(-(-shares[0] // batch_size), 1)
        steps = min(shares) // batch_size
        if steps < 1:
            raise ValueError(
                f"The smallest worker share of the train files has {min(shares)} rows, "
                f"less than one batch of {batch_size}; use a smaller training.batch_size "
                f"or more rows.")
        return steps

    def train_batches(self, schema, batch_size, steps, seed, num_workers=1, worker_index=0):
        """This worker's training batches for one epoch: `steps` batches,
        shuffled within `shuffle_buffer` rows in a new seeded order each
        pass (a known length, for `EpochStream`)."""
        dataset = shards.from_files(
            self.files["train"], schema, format=self.format, num_workers=num_workers,
            worker_index=worker_index, batch_size=batch_size, seed=seed,
            shuffle_buffer=self.shuffle_buffer, chunk_rows=self.chunk_rows,
            drop_remainder=num_workers > 1, **self._reader_options())
        return dataset.take(steps).apply(tf.data.experimental.assert_cardinality(steps))

    def batches(self, split, schema, batch_size, labels=True):
        """Every row of `split` in file order, as batches (of a known length)."""
        dataset = shards.from_files(self.files[split], schema, format=self.format,
                                    batch_size=batch_size, labels=labels,
                                    chunk_rows=self.chunk_rows, **self._reader_options())
        steps = -(-self.rows(split) // batch_size)
        return dataset.apply(tf.data.experimental.assert_cardinality(steps))

    def column(self, split, name):
        """One column of `split` (e.g. the GAUC group ids), as a numpy array
        in file order."""
        parts = [chunk[name] for path in self.files[split]
                 for chunk in self._raw_chunks(path, self.chunk_rows, columns=[name])]
        return pd.concat(parts, ignore_index=True).to_numpy()

    def _raw_chunks(self, path, chunk_rows, columns=None):
        """One file's rows as read (no schema: the file's own columns, or
        `columns`), in chunks of `chunk_rows`."""
        if self.format == "csv":
            from mtrec.data.user_files import _csv_options
            from mtrec.schema.validation import read_csv_chunks
            return read_csv_chunks(path, chunk_rows, usecols=columns,
                                   **_csv_options(Path(path), self.read_options))
        if self.format == "parquet":
            return streaming.parquet_frames(path, chunk_rows, columns=columns)
        return tfrecord.tfrecord_frames(path, chunk_rows, columns=columns,
                                        compression=self.read_options.get("compression"))

    def _reader_options(self):
        if self.format == "csv":
            return dict(self.read_options)
        if self.format == "tfrecord" and "compression" in self.read_options:
            return {"compression": self.read_options["compression"]}
        return {}


def count_rows(files, format, read_options=None):
    """Rows in `files`: Parquet from its metadata, TFRecord by counting
    records, CSV by parsing one column."""
    read_options = dict(read_options or {})
    total = 0
    for path in files:
        if format == "parquet":
            import pyarrow.parquet as pq
            total += pq.ParquetFile(path).metadata.num_rows
        elif format == "tfrecord":
            compression = tfrecord.compression_of(path, read_options.get("compression"))
            total += int(tf.data.TFRecordDataset(str(path), compression_type=compression)
                         .reduce(np.int64(0), lambda n, _: n + 1))
        else:
            from mtrec.data.user_files import _csv_options
            total += sum(len(chunk) for chunk in pd.read_csv(
                path, usecols=[0], dtype=str, chunksize=1_000_000,
                **_csv_options(Path(path), read_options)))
    return total
