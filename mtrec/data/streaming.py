"""CSV / Parquet files -> tf.data.Dataset of (encoded features, labels), in chunks.

`from_pandas` encodes a whole DataFrame at once; these readers never hold
more than one chunk of a file (plus the shuffle buffer) in memory, so they
work on files far larger than RAM (Ali-CCP, AliExpress). Each chunk is read
with pandas (`read_csv(chunksize=...)`, or pyarrow's
`ParquetFile.iter_batches`), checked with `schema.validate`, encoded by one
`FeaturePreprocessing` layer built once per dataset (the layer the model and
its export use, so training and serving cannot drift) and handed to tf.data
whole (a Python generator behind `tf.data.Dataset.from_generator` yields one
block of rows per chunk), where batches are cut from it as slices: no row
and no batch passes through Python on its own.

Memory is bounded by `chunk_rows` and `shuffle_buffer`, not by the file
size: about `chunk_rows` parsed rows, their encoded arrays, and up to
`shuffle_buffer + chunk_rows` encoded rows while shuffling
(`benchmarks/memory_streaming.py` measures it on a file of several GB).

Typical use:

```python
sample = streaming.schema_sample("train.csv", rows=200_000, schema=schema)
schema.adapt(sample)
train = streaming.from_csv("train.csv", schema, batch_size=2048,
                           shuffle_buffer=200_000, seed=0)
model.fit(train, epochs=1)
```
"""

from __future__ import annotations

import itertools
import queue
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import tensorflow as tf

from mtrec.data.pandas_dataset import encode_frame, sliced_batches
from mtrec.layers.feature_preprocessing import FeaturePreprocessing, dummy_raw_batch
from mtrec.schema.validation import csv_header, read_csv_chunks

__all__ = ["csv_dtypes", "from_csv", "from_frames", "from_parquet", "output_signature",
           "schema_sample"]

#: File names these readers take as CSV / as Parquet (file scoring shares them).
CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------
def from_csv(paths, schema, batch_size=1024, chunk_rows=100_000, labels=True,
             shuffle_buffer=0, seed=None, drop_remainder=False, **read_csv_kwargs):
    """A batched dataset of `(features, labels)` streamed from CSV files.

    Yields the same elements as `mtrec.data.from_pandas` (encoded features,
    `{task: (batch,) float32}` labels, NaN for a missing or masked label),
    reading `chunk_rows` rows at a time. Only the columns the schema needs
    are parsed, with dtypes taken from the schema (`csv_dtypes`), so every
    chunk is typed the same way whatever its values.

    Args:
        paths: a path, a glob pattern, or a list of them; read in order.
        schema: adapted `mtrec.Schema` (see `schema_sample` to adapt it).
        batch_size: int. Rows per batch. Defaults to `1024`.
        chunk_rows: int. Rows parsed per pandas chunk; bounds the memory.
            Defaults to `100_000`.
        labels: bool. Yield `(features, labels)`; with `False`, features only
            (the files then need no label columns).
        shuffle_buffer: int. Shuffle rows within a window of this many rows
            (plus one chunk); `0` keeps the file order. Reshuffled every
            iteration.
        seed: int. Shuffle seed, for repeatable runs.
        drop_remainder: bool. Drop the last partial batch.
        **read_csv_kwargs: passed to `pandas.read_csv` (e.g. `sep`,
            `compression`, `na_values`); `dtype` entries override the
            schema's.

    Every chunk is checked before it is encoded (`mtrec.schema.validation`):
    a line whose number of fields differs from the header's (pandas would
    read a short line with its last columns missing), bytes that are not
    UTF-8, and a value its column's dtype cannot hold (`"x"` in an integer
    id or numeric column, `"yes"` in a mask) stop the iteration with an
    error naming the file and the line, or the column, rows and values;
    then the label and mask checks of `Schema.validate(labels=True)`. An
    error in a later chunk reaches the caller through tf.data (as
    `tf.errors.InvalidArgumentError` whose message holds mtrec's), after
    the batches before it.

    Returns:
        `tf.data.Dataset` of `(features, labels)`, or features only. Its
        length is unknown until the first pass ends; Keras 3.15's `fit`
        then warns "Your input ran out of data" at the end of every epoch,
        which is harmless here (fixed upstream by keras-team/keras#23360:
        the warning is only due when `steps_per_epoch` is set).
    """
    files = _expand(paths, "from_csv")
    _check_positive("chunk_rows", chunk_rows)
    options = _csv_options(schema, labels, read_csv_kwargs)
    required = options["usecols"]
    for path in files:
        _require(path, _csv_columns(path, options), required)
    describe = _describe_columns(schema, labels)

    def frames():
        for path in files:
            yield from read_csv_chunks(path, chunk_rows, describe=describe, **options)

    return from_frames(frames, schema, batch_size=batch_size, labels=labels,
                       shuffle_buffer=shuffle_buffer, seed=seed,
                       drop_remainder=drop_remainder)


def from_parquet(paths, schema, batch_size=1024, chunk_rows=100_000, labels=True,
                 shuffle_buffer=0, seed=None, drop_remainder=False):
    """Like `from_csv`, for Parquet files, read with pyarrow's
    `ParquetFile.iter_batches` (`chunk_rows` rows at a time, only the
    schema's columns). Vector features (list columns) work here, unlike
    in CSV."""
    import pyarrow.parquet as pq

    files = _expand(paths, "from_parquet")
    _check_positive("chunk_rows", chunk_rows)
    required = _needed_columns(schema, labels)
    for path in files:
        _require(path, pq.ParquetFile(path).schema_arrow.names, required)

    def frames():
        for path in files:
            yield from parquet_frames(path, chunk_rows, columns=required)

    return from_frames(frames, schema, batch_size=batch_size, labels=labels,
                       shuffle_buffer=shuffle_buffer, seed=seed,
                       drop_remainder=drop_remainder)


def parquet_frames(path, chunk_rows, columns=None):
    """A Parquet file as DataFrames of at most `chunk_rows` rows (pyarrow's
    `ParquetFile.iter_batches`), of `columns` or of every column."""
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(path).iter_batches(batch_size=chunk_rows, columns=columns):
        yield batch.to_pandas()


def from_frames(frames, schema, batch_size=1024, labels=True, shuffle_buffer=0,
                seed=None, drop_remainder=False):
    """A batched dataset from a function returning an iterator of DataFrames.

    The building block of `from_csv` and `from_parquet`, for any other
    chunked source (e.g. `mtrec.data.ali_ccp.iter_raw`). `frames` is called
    once per pass over the data (every epoch), so it must start over each
    time it is called.

    Args:
        frames: callable with no arguments returning an iterable of
            DataFrames (chunks) holding the schema's columns.
        schema, batch_size, labels, shuffle_buffer, seed, drop_remainder:
            as in `from_csv`.

    Returns:
        `tf.data.Dataset` of `(features, labels)`, or features only.
    """
    if not callable(frames):
        raise ValueError(
            f"from_frames takes a function returning an iterator of DataFrames "
            f"(called once per epoch), got {type(frames).__name__}; wrap a "
            f"generator in a function: from_frames(lambda: my_chunks(), schema).")
    _check_schema(schema)
    _check_positive("batch_size", batch_size)
    if (isinstance(shuffle_buffer, bool) or not isinstance(shuffle_buffer, (int, np.integer))
            or shuffle_buffer < 0):
        raise ValueError(f"shuffle_buffer must be an integer >= 0, got {shuffle_buffer!r}.")
    layer = FeaturePreprocessing(schema)
    signature = output_signature(schema, labels=labels, preprocessing=layer)
    passes = itertools.count()

    def generate():
        """Yields blocks of encoded rows, each a whole number of batches
        (bar the last), in training order."""
        rng = None
        if shuffle_buffer:
            # A new order every pass, repeatable with the seed.
            rng = np.random.default_rng(None if seed is None else [seed, next(passes)])
        pending = None
        for frame in _read_ahead(frames):
            if not len(frame):
                continue
            schema.validate(frame, labels=labels)
            block = _encode(schema, frame, layer, labels)
            del frame
            pending = block if pending is None else _concat(pending, block)
            del block
            rows = _rows(pending)
            if rng is None:
                full = rows // batch_size * batch_size
                if full:
                    yield _slice(pending, 0, full)
                    pending = _slice(pending, full, rows)
            elif rows >= shuffle_buffer + batch_size:
                # Emit whole batches of shuffled rows; keep `shuffle_buffer`
                # of them (and the remainder) to mix with the next chunk.
                order = rng.permutation(rows)
                full = (rows - shuffle_buffer) // batch_size * batch_size
                yield _take(pending, order[:full])
                pending = _take(pending, order[full:])
        if pending is None or not _rows(pending):
            return
        if rng is not None:
            pending = _take(pending, rng.permutation(_rows(pending)))
        rows = _rows(pending)
        last = rows if not drop_remainder else rows // batch_size * batch_size
        if last:
            yield _slice(pending, 0, last)

    # One generator element per block (not per batch): the batches are cut
    # from it by tf.data slices, so Python touches each chunk once.
    # prefetch(1): the next chunk is encoded while this one's batches train.
    blocks = tf.data.Dataset.from_generator(generate, output_signature=signature).prefetch(1)
    if labels:
        batched = blocks.flat_map(lambda features, targets: sliced_batches(
            (features, targets), batch_size, drop_remainder=drop_remainder))
    else:
        batched = blocks.flat_map(lambda features: sliced_batches(
            features, batch_size, drop_remainder=drop_remainder))
    return batched.prefetch(tf.data.AUTOTUNE)


def output_signature(schema, labels=True, preprocessing=None):
    """The `tf.TensorSpec` structure of the elements these readers yield.

    Feature keys, dtypes and widths are those `FeaturePreprocessing` returns
    for the schema (found by encoding a dummy batch, so they cannot drift
    from the layer); labels are `{task: float32 (batch,)}`.
    """
    _check_schema(schema)
    layer = preprocessing or FeaturePreprocessing(schema)
    encoded = layer(dummy_raw_batch(schema, rows=2))
    features = {key: tf.TensorSpec((None,) + tuple(value.shape[1:]), value.dtype)
                for key, value in encoded.items()}
    if not labels:
        return features
    return features, {task.name: tf.TensorSpec((None,), tf.float32) for task in schema.tasks}


def csv_dtypes(schema, labels=True):
    """`{column: dtype}` for `pandas.read_csv`, from the schema's feature kinds.

    String categoricals, multi-hot and text columns are read as strings
    (so ids such as `007` keep their zeros and a chunk with a missing value
    is not turned into floats), integer categoricals as `Int64`, numerics
    as `float32`, labels and mask columns as `float64` (empty = NaN).
    """
    # Vector.csv_dtype raises: a CSV cell cannot hold a list.
    dtypes = {spec.name: spec.csv_dtype() for spec in schema.features}
    if labels:
        for task in schema.tasks:
            dtypes[task.label] = "float64"
            if task.mask is not None:
                dtypes[task.mask] = "float64"
    return dtypes


def schema_sample(paths, rows=100_000, schema=None, labels=True, **read_csv_kwargs):
    """The first `rows` rows of the files (in order), to infer or adapt a schema.

    With `schema`, columns are read exactly as `from_csv` reads them (same
    dtypes, only the needed columns), so what `schema.adapt` learns matches
    what streaming feeds the model. Without it, every column is read with
    pandas' own type inference, for `Schema.infer`. Parquet files (by
    suffix `.parquet`/`.pq`) are read with pyarrow.

    Note that the head of a file is a biased sample when the file is sorted
    (by time, by user); adapt on a shuffled extract in that case.
    """
    _check_positive("rows", rows)
    files = _expand(paths, "schema_sample")
    parts, remaining = [], rows
    for path in files:
        if remaining <= 0:
            break
        if str(path).lower().endswith(PARQUET_SUFFIXES):
            part = _parquet_head(path, remaining,
                                 None if schema is None else _needed_columns(schema, labels))
        else:
            options = (_csv_options(schema, labels, read_csv_kwargs) if schema is not None
                       else dict(read_csv_kwargs))
            if schema is not None:
                _require(path, _csv_columns(path, options), options["usecols"])
            describe = _describe_columns(schema, labels) if schema is not None else None
            [part] = read_csv_chunks(path, nrows=remaining, describe=describe, **options)
        parts.append(part)
        remaining -= len(part)
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    if not len(frame):
        raise ValueError(f"{[str(f) for f in files]} hold no rows; there is nothing to "
                         f"infer or adapt a schema on.")
    return frame


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _expand(paths, caller):
    # One expansion of paths, globs and folders for every reader (a local
    # import: mtrec.data.shards builds on this module).
    from mtrec.data.shards import expand_shards
    return expand_shards(paths, caller)


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")


def _check_schema(schema):
    if not schema.features:
        raise ValueError(
            f"The schema has no features (tasks {schema.task_names}); a model "
            f"needs at least one input column.")
    if not schema.adapted:
        raise ValueError(
            "The schema is not adapted; call schema.adapt(sample) first, e.g. "
            "on mtrec.data.streaming.schema_sample(paths, rows=..., schema=schema).")


def _needed_columns(schema, labels):
    columns = list(schema.feature_names)
    if labels:
        for task in schema.tasks:
            for column in (task.label, task.mask):
                if column is not None and column not in columns:
                    columns.append(column)
    return columns


def _csv_options(schema, labels, read_csv_kwargs):
    options = dict(read_csv_kwargs)
    for key in ("chunksize", "iterator", "nrows", "usecols"):
        if key in options:
            raise ValueError(f"Do not pass {key}= to the reader; it is set from "
                             f"chunk_rows / rows and the schema's columns.")
    dtypes = csv_dtypes(schema, labels)
    dtypes.update(options.pop("dtype", None) or {})
    options["dtype"] = dtypes
    options["usecols"] = _needed_columns(schema, labels)
    return options


def _csv_columns(path, options):
    """The header of a CSV file, read with the reader's options."""
    return csv_header(path, **{k: v for k, v in options.items()
                               if k not in ("usecols", "dtype")})


def _describe_columns(schema, labels):
    """`{column: what it is}` for the messages of the CSV value checks."""
    described = {spec.name: f"a {type(spec).__name__} feature" for spec in schema.features}
    described.update({spec.name: "an integer Categorical" for spec in schema.features
                      if spec.raw_dtype == "int64"})
    if labels:
        for task in schema.tasks:
            described[task.label] = f"the label of {task.kind} task '{task.name}'"
            if task.mask is not None:
                described[task.mask] = (f"the mask column of task '{task.name}', which "
                                        f"takes 0/1")
    return described


def _require(path, columns, required):
    columns = [str(c) for c in columns]
    missing = [c for c in required if c not in set(columns)]
    if missing:
        raise ValueError(
            f"{path} lacks column(s) {missing} that the schema needs (it has "
            f"{len(columns)} columns: {columns[:20]}{'...' if len(columns) > 20 else ''}); "
            f"add them, fix the header, or remove them from the schema "
            f"(labels=False reads features only).")


def _parquet_head(path, rows, columns):
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    if columns is not None:
        _require(path, parquet.schema_arrow.names, columns)
    batches, read = [], 0
    for batch in parquet.iter_batches(batch_size=min(rows, 65536), columns=columns):
        batches.append(batch)
        read += batch.num_rows
        if read >= rows:
            break
    if not batches:
        return parquet.schema_arrow.empty_table().to_pandas()
    return pa.Table.from_batches(batches).slice(0, rows).to_pandas()


class _Failure:
    def __init__(self, error):
        self.error = error


_DONE = object()


def _read_ahead(frames, depth=1):
    """Iterate `frames()` in a background thread, up to `depth` chunks ahead.

    Parsing the next chunk (pandas' tokenizer and TF's ops both release the
    GIL for most of their work) then overlaps with encoding this one. At
    most `depth + 2` chunks exist at once: queued, being parsed, being
    encoded. An error in the reader is raised here; closing this generator
    stops the reader (and closes its files).
    """
    slots = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item):
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for frame in frames():
                if not put(frame):
                    return
            put(_DONE)
        except BaseException as error:  # re-raised in the consumer
            put(_Failure(error))

    thread = threading.Thread(target=produce, name="mtrec-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()


def _encode(schema, frame, layer, labels):
    features = encode_frame(schema, frame, preprocessing=layer, checked=True)
    if not labels:
        return features
    return features, schema.raw_labels(frame)


def _rows(block):
    first = block[0] if isinstance(block, tuple) else block
    return len(next(iter(first.values())))


def _map(block, fn):
    if isinstance(block, tuple):
        return tuple({k: fn(v) for k, v in part.items()} for part in block)
    return {k: fn(v) for k, v in block.items()}


def _slice(block, start, stop):
    return _map(block, lambda v: v[start:stop])


def _take(block, order):
    return _map(block, lambda v: v[order])


def _concat(a, b):
    if isinstance(a, tuple):
        return tuple({k: np.concatenate([x[k], y[k]]) for k in x} for x, y in zip(a, b))
    return {k: np.concatenate([a[k], b[k]]) for k in a}
