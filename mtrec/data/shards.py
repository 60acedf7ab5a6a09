"""A dataset as many files: expand a glob, split it across workers, stream it.

Every worker of a multi-worker run (`tf.distribute.MultiWorkerMirroredStrategy`)
reads its own part of the shards, chosen here without any communication, so
that the workers' rows are disjoint, together are all rows, and every run
picks the same split:

- **by file** when there are at least as many files as workers: file `i`
  (in `expand_shards` order) goes to worker `i % num_workers`. Each worker
  opens only its files; rows per worker differ by at most the size of one
  file (`write_shards` deals rows round-robin, so its shards differ by one
  row at most).
- **by record** when there are fewer files than workers: every worker reads
  every file and keeps record `k` of their concatenation (counted from 0
  across the files, in order) when `k % num_workers == worker_index`. Each
  worker parses all rows, so this is the slow fallback; write more shards
  than workers (`mtrec data shard`) to avoid it.

The readers apply the split to chunks of rows (`sharded_frames`), so memory
stays bounded by the chunk size and the shuffle buffer, as in
`mtrec.data.streaming`. `from_files` picks the reader by file suffix:

```python
train = shards.from_files("data/train-*.parquet", schema, batch_size=1024,
                          shuffle_buffer=100_000, seed=0,
                          num_workers=2, worker_index=task_index)
```
"""

from __future__ import annotations

import glob
import typing
from pathlib import Path

import numpy as np

from mtrec.data import streaming

__all__ = ["FORMAT_SUFFIXES", "WorkerShards", "expand_shards", "file_format", "frame_reader",
           "from_files", "sharded_frames", "worker_shards"]

#: File name endings of each format (matched case-insensitively).
FORMAT_SUFFIXES = {
    "csv": streaming.CSV_SUFFIXES,
    "parquet": streaming.PARQUET_SUFFIXES,
    "tfrecord": (".tfrecord", ".tfrecords", ".tfrec",
                 ".tfrecord.gz", ".tfrecords.gz", ".tfrec.gz"),
}


class WorkerShards(typing.NamedTuple):
    """What one worker reads: `files`, and of their concatenated records the
    ones at `offset`, `offset + every`, `offset + 2 * every`, ...

    `by` is `"file"` (`every == 1`: all records of these files) or
    `"record"` (all files, every `every`-th record).
    """

    files: tuple
    every: int
    offset: int
    by: str

    def keep(self, start, rows):
        """Boolean mask `(rows,)` of the records `start .. start + rows - 1`
        (positions in the concatenated files) this worker keeps."""
        if self.every == 1:
            return np.ones(rows, dtype=bool)
        return (np.arange(start, start + rows) % self.every) == self.offset


def expand_shards(paths, caller="expand_shards"):
    """The files a path, glob pattern, folder, or list of them names.

    A glob's matches are sorted by name; a folder stands for its data files
    (names ending in a `FORMAT_SUFFIXES` suffix, not starting with `.` or
    `_`), sorted; a list keeps its order. So every worker, in every run, gets
    the same list.

    Args:
        paths: str / Path, or a list of them.
        caller: name used in error messages.

    Returns:
        list of `pathlib.Path`.

    Raises:
        FileNotFoundError: a pattern matches nothing, a path does not exist,
            or a folder holds no data file (the message names it).
        ValueError: a file is named twice, or nothing was given.
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    try:
        items = list(paths)
    except TypeError:
        raise ValueError(f"{caller} takes a path, a glob pattern, a folder or a list of "
                         f"them, got {type(paths).__name__}.") from None
    files = []
    for item in items:
        text = str(item)
        if any(c in text for c in "*?["):
            matched = sorted(m for m in glob.glob(text) if Path(m).is_file())
            if not matched:
                raise FileNotFoundError(f"{caller}: no file matches the pattern {text!r}.")
            files.extend(Path(m) for m in matched)
        elif Path(text).is_dir():
            found = sorted(p for p in Path(text).iterdir()
                           if p.is_file() and not p.name.startswith((".", "_"))
                           and _format_of_name(p.name) is not None)
            if not found:
                raise FileNotFoundError(
                    f"{caller}: the folder {text} holds no data file (names ending in "
                    f"{', '.join(s for group in FORMAT_SUFFIXES.values() for s in group)}).")
            files.extend(found)
        elif Path(text).is_file():
            files.append(Path(text))
        else:
            raise FileNotFoundError(f"{caller}: no such file: {text}.")
    if not files:
        raise ValueError(f"{caller}: no files given.")
    seen = set()
    twice = [str(f) for f in files if f.resolve() in seen or seen.add(f.resolve())]
    if twice:
        raise ValueError(f"{caller}: {twice} named more than once (a pattern and a path "
                         f"overlap?); its rows would be read twice. Name each file once.")
    return files


def worker_shards(files, num_workers=1, worker_index=0):
    """Which part of `files` worker `worker_index` of `num_workers` reads.

    By file when `len(files) >= num_workers` (file `i` to worker
    `i % num_workers`), else by record (every `num_workers`-th record from
    `worker_index`); see the module docstring. Deterministic: it depends on
    the arguments only.

    Args:
        files: list of paths, in the order every worker agrees on
            (`expand_shards`).
        num_workers: int >= 1.
        worker_index: int in `[0, num_workers)`.

    Returns:
        `WorkerShards`.
    """
    files = tuple(files)
    if not files:
        raise ValueError("worker_shards: no files to share out.")
    if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) \
            or num_workers < 1:
        raise ValueError(f"num_workers must be an integer >= 1, got {num_workers!r}.")
    if isinstance(worker_index, bool) or not isinstance(worker_index, (int, np.integer)) \
            or not 0 <= worker_index < num_workers:
        raise ValueError(f"worker_index must be an integer in [0, {num_workers}) for "
                         f"num_workers={num_workers}, got {worker_index!r}.")
    num_workers, worker_index = int(num_workers), int(worker_index)
    if len(files) >= num_workers:
        return WorkerShards(files[worker_index::num_workers], 1, 0, "file")
    return WorkerShards(files, num_workers, worker_index, "record")


def sharded_frames(paths, read_frames, num_workers=1, worker_index=0):
    """This worker's rows of `paths`, as the DataFrame chunks `read_frames` gives.

    A generator; for `streaming.from_frames`, which wants a function called
    once per epoch: `from_frames(lambda: sharded_frames(files, read, 2, 0), schema)`.
    With the by-record split each chunk is cut down to this worker's rows
    (the chunks shrink by about `num_workers`; nothing is held across chunks).

    Args:
        paths: a path, glob, folder or list (`expand_shards`); expand it once
            beforehand when the file list must not change between epochs.
        read_frames: callable `path -> iterable of DataFrames` (the rows of one
            file in order, in chunks), e.g. `lambda p: streaming.parquet_frames(
            p, chunk_rows)`.
        num_workers, worker_index: as in `worker_shards`.

    Yields:
        DataFrames (empty chunks are skipped).
    """
    files = expand_shards(paths, "sharded_frames")
    share = worker_shards(files, num_workers, worker_index)
    position = 0     # records of the concatenated files seen so far
    for path in share.files:
        for frame in read_frames(path):
            rows = len(frame)
            keep = share.keep(position, rows)
            position += rows
            if share.every > 1:
                frame = frame[keep]
            if len(frame):
                yield frame


def file_format(files):
    """The format (`"csv"`, `"parquet"`, `"tfrecord"`) of `files`, by suffix;
    ValueError naming the file when a suffix is unknown or formats mix."""
    formats = {}
    for path in files:
        found = _format_of_name(Path(path).name)
        if found is None:
            raise ValueError(
                f"Cannot tell the format of {path} from its name; name it "
                + "; ".join(f"{', '.join(s)} ({f})" for f, s in FORMAT_SUFFIXES.items())
                + ", or pass format='csv' | 'parquet' | 'tfrecord'.")
        formats.setdefault(found, str(path))
    if len(formats) > 1:
        raise ValueError(f"The files mix formats ({formats}); read each format "
                         f"separately, or convert them with `mtrec data shard`.")
    return next(iter(formats))


def from_files(paths, schema, format=None, num_workers=1, worker_index=0, **kwargs):
    """This worker's share of CSV, Parquet or TFRecord shards, as batches.

    The elements are those of `streaming.from_csv` / `from_parquet` /
    `tfrecord.from_tfrecord` (encoded features, `{task: float32}` labels,
    NaN for a missing or masked label), whatever the format.

    Args:
        paths: a path, glob, folder or list (`expand_shards`).
        schema: adapted `mtrec.Schema`.
        format: `"csv"`, `"parquet"`, `"tfrecord"`, or None to tell it from
            the suffixes (`FORMAT_SUFFIXES`).
        num_workers, worker_index: this worker's place (`worker_shards`).
        **kwargs: `batch_size`, `chunk_rows`, `labels`, `shuffle_buffer`,
            `seed`, `drop_remainder` (as in `streaming.from_csv`); for CSV,
            `pandas.read_csv` options; for TFRecord, `compression` and
            `check_columns` (`from_tfrecord`).

    Returns:
        `tf.data.Dataset` of `(features, labels)`, or features only.
    """
    files = expand_shards(paths, "from_files")
    format = file_format(files) if format is None else format
    if format not in FORMAT_SUFFIXES:
        raise ValueError(f"format must be one of {list(FORMAT_SUFFIXES)} or None, "
                         f"got {format!r}.")
    worker_shards(files, num_workers, worker_index)     # checks the arguments now
    if format == "tfrecord":
        # Imported here: tfrecord.py builds on this module.
        from mtrec.data.tfrecord import from_tfrecord

        return from_tfrecord(files, schema, num_workers=num_workers,
                             worker_index=worker_index, **kwargs)
    stream = {key: kwargs.pop(key) for key in ("batch_size", "labels", "shuffle_buffer",
                                               "seed", "drop_remainder") if key in kwargs}
    chunk_rows = kwargs.pop("chunk_rows", 100_000)
    streaming._check_positive("chunk_rows", chunk_rows)
    labels = stream.get("labels", True)
    if format == "csv":
        read_frames = _csv_reader(files, schema, labels, chunk_rows, kwargs)
    else:
        if kwargs:
            raise ValueError(f"from_files got {sorted(kwargs)}, which Parquet files do "
                             f"not take; pass only batch_size, chunk_rows, labels, "
                             f"shuffle_buffer, seed, drop_remainder.")
        read_frames = _parquet_reader(files, schema, labels, chunk_rows)
    return streaming.from_frames(
        lambda: sharded_frames(files, read_frames, num_workers, worker_index),
        schema, **stream)


def frame_reader(files, schema, format, labels=True, chunk_rows=100_000, read_options=None):
    """`path -> DataFrame chunks` reading the schema's columns of one file of
    `files` as the training stream of that format reads them (same columns,
    same dtypes), for a pass over the rows in pandas: the streaming adapt
    (`mtrec.schema.streaming_adapt`), counting rows. Columns and headers
    are checked now, for every file.

    Args:
        files: list of paths (`expand_shards`), all of `format`.
        schema: `mtrec.Schema` (adapted or not: only its columns are used).
        format: `"csv"`, `"parquet"` or `"tfrecord"`.
        labels: bool. Also read the label and mask columns.
        chunk_rows: int. Rows per chunk.
        read_options: dict of `pandas.read_csv` options (CSV) or
            `{"compression": ...}` (TFRecord).
    """
    streaming._check_positive("chunk_rows", chunk_rows)
    options = dict(read_options or {})
    if format == "csv":
        return _csv_reader(files, schema, labels, chunk_rows, options)
    if format == "parquet":
        return _parquet_reader(files, schema, labels, chunk_rows)
    from mtrec.data.tfrecord import _list_columns, tfrecord_frames

    columns = streaming._needed_columns(schema, labels)
    lists = _list_columns(schema)
    return lambda path: tfrecord_frames(path, chunk_rows, columns=columns,
                                        compression=options.get("compression"),
                                        list_columns=lists)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _format_of_name(name):
    lowered = name.lower()
    for format, suffixes in FORMAT_SUFFIXES.items():
        if lowered.endswith(suffixes):
            return format
    return None


def _csv_reader(files, schema, labels, chunk_rows, read_csv_kwargs):
    """`path -> chunks` reading CSV as `streaming.from_csv` does (its private
    `_csv_options` / `_require`: same dtypes, same columns); headers are
    checked now, before any worker starts streaming."""
    from mtrec.schema.validation import read_csv_chunks

    options = streaming._csv_options(schema, labels, read_csv_kwargs)
    for path in files:
        streaming._require(path, streaming._csv_columns(path, options), options["usecols"])
    describe = streaming._describe_columns(schema, labels)

    def read(path):
        # The checked reader of every CSV stream: line widths, UTF-8, values.
        yield from read_csv_chunks(path, chunk_rows, describe=describe, **options)

    return read


def _parquet_reader(files, schema, labels, chunk_rows):
    """`path -> chunks` reading Parquet as `streaming.from_parquet` does."""
    import pyarrow.parquet as pq

    required = streaming._needed_columns(schema, labels)
    for path in files:
        streaming._require(path, pq.ParquetFile(path).schema_arrow.names, required)
    return lambda path: streaming.parquet_frames(path, chunk_rows, columns=required)
