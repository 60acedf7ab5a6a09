"""TFRecord files of `tf.Example` -> the batches `mtrec.data.streaming` yields.

The files TF pipelines write: one `tf.train.Example` per row, each feature an
`int64_list`, `float_list` or `bytes_list`, a missing value an absent key.
They are read `chunk_rows` records at a time (`tf.data.TFRecordDataset`,
batched, parsed by `tf.io.parse_example` in C++), turned into a pandas chunk
and handed to `streaming.from_frames`, which validates, encodes and shuffles
them exactly as it does CSV and Parquet chunks: the same rows give the same
batches in every format.

How a feature becomes a pandas column (per chunk):

| in the record                       | in the chunk                              |
|-------------------------------------|-------------------------------------------|
| `bytes_list`, one value             | str (UTF-8); None where absent            |
| `int64_list`, one value             | int64; pandas `Int64` (NA) if any absent  |
| `float_list`, one value             | float32; NaN where absent                 |
| several values in some row, or a    | one numpy array per row (str for bytes);  |
| `Vector` feature of the schema      | None where absent                         |

An absent key and an empty list both read as missing. The list kind of a
feature is found from the records (a feature may be written as `int64_list`
in one file and `float_list` in another, not both within one file). Floats
travel as float32, as the model reads them.

`mtrec.data.shard_writer.write_shards` writes such files from a DataFrame or
a CSV/Parquet file.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import tensorflow as tf

from mtrec.data import streaming
from mtrec.data.shards import expand_shards, sharded_frames, worker_shards

__all__ = ["COMPRESSIONS", "compression_of", "from_tfrecord", "tfrecord_frames",
           "tfrecord_sample"]

#: What `compression=` takes (TFRecordDataset's `compression_type`, "" = none).
COMPRESSIONS = ("", "GZIP", "ZLIB")
#: Records looked at (from the start of the first file) for the schema's columns.
COLUMN_CHECK_RECORDS = 1000

# (list kind in the proto, dtype parse_example reads it as)
_KINDS = (("bytes_list", tf.string), ("int64_list", tf.int64), ("float_list", tf.float32))


# --------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------
def from_tfrecord(paths, schema, batch_size=1024, labels=True, shuffle_buffer=0, seed=None,
                  chunk_rows=100_000, num_workers=1, worker_index=0, compression=None,
                  drop_remainder=False, check_columns=True):
    """A batched dataset of `(features, labels)` streamed from TFRecord files.

    Yields what `streaming.from_parquet` yields on the same rows (encoded
    features, `{task: (batch,) float32}` labels, NaN for a missing or masked
    label), reading `chunk_rows` records at a time; only the schema's
    columns are parsed.

    Args:
        paths: a path, glob, folder or list of them (`shards.expand_shards`).
        schema: adapted `mtrec.Schema` (see `tfrecord_sample` to adapt it).
        batch_size: int. Rows per batch. Defaults to `1024`.
        labels: bool. Yield `(features, labels)`; with `False`, features only.
        shuffle_buffer: int. Shuffle rows within a window of this many rows
            (plus one chunk); `0` keeps the file order.
        seed: int. Shuffle seed, for repeatable runs.
        chunk_rows: int. Records parsed per chunk; bounds the memory.
            Defaults to `100_000`.
        num_workers, worker_index: this worker's share of the files
            (`shards.worker_shards`: by file, or by record when there are
            fewer files than workers).
        compression: `"GZIP"`, `"ZLIB"`, `""` (none), or None to take GZIP
            for names ending in `.gz` and none otherwise.
        drop_remainder: bool. Drop the last partial batch.
        check_columns: bool. Refuse a column the schema needs that none of
            the first `COLUMN_CHECK_RECORDS` records of the first file holds
            (a misspelt name would otherwise read as all-missing); `False`
            for a feature that is truly that rare.

    Returns:
        `tf.data.Dataset` of `(features, labels)`, or features only.
    """
    files = expand_shards(paths, "from_tfrecord")
    streaming._check_positive("chunk_rows", chunk_rows)
    worker_shards(files, num_workers, worker_index)     # checks the arguments now
    columns = streaming._needed_columns(schema, labels)
    lists = _list_columns(schema)
    compressions = {path: compression_of(path, compression) for path in files}
    if check_columns:
        _check_columns(files[0], compressions[files[0]], columns)

    def read(path):
        return tfrecord_frames(path, chunk_rows, columns=columns,
                               compression=compressions[path], list_columns=lists)

    return streaming.from_frames(
        lambda: sharded_frames(files, read, num_workers, worker_index), schema,
        batch_size=batch_size, labels=labels, shuffle_buffer=shuffle_buffer, seed=seed,
        drop_remainder=drop_remainder)


def tfrecord_frames(path, chunk_rows, columns=None, compression=None, list_columns=()):
    """A TFRecord file of `tf.Example` as DataFrames of at most `chunk_rows` rows.

    Args:
        path: one file.
        chunk_rows: int. Records per chunk.
        columns: list of feature names to read (absent ones are all-missing
            columns), or None for every key seen in the first 1,000 records
            of each chunk (sorted by name: a tf.Example has no column order).
        compression: as in `from_tfrecord`.
        list_columns: names read as one array per row even where a row holds
            one value (the schema's `Vector` features).

    Yields:
        DataFrames with `columns` (in that order), typed as the module
        docstring's table says.
    """
    streaming._check_positive("chunk_rows", chunk_rows)
    compression = compression_of(path, compression)
    kinds = {}              # feature -> parse dtype, learned from the records
    known = [] if columns is None else list(columns)
    for serialized in _record_chunks(path, chunk_rows, compression):
        if columns is None:
            # a tf.Example has no column order: by name, new keys last
            known.extend(sorted(set(_keys(serialized[:1000])) - set(known)))
        unknown = [name for name in known if name not in kinds]
        if unknown:
            # the first records usually tell; parse attempts on the chunk otherwise
            kinds.update(_kinds_seen(serialized[:64], unknown))
            for name in unknown:
                if name not in kinds:
                    found = _kind_of(path, serialized, name)
                    if found is not None:
                        kinds[name] = found
        parsed = _parse(path, serialized, {n: kinds[n] for n in known if n in kinds})
        rows = len(serialized)
        yield pd.DataFrame({
            name: _column(path, name, parsed.get(name), rows, name in list_columns)
            for name in known}, index=pd.RangeIndex(rows))


def tfrecord_sample(paths, rows=100_000, schema=None, labels=True, compression=None):
    """The first `rows` records of the files (in order), to infer or adapt a schema.

    The TFRecord counterpart of `streaming.schema_sample`: with `schema`,
    only its columns, read exactly as `from_tfrecord` reads them (so what
    `schema.adapt` learns matches what the model is fed); without it, every
    key the records hold, for `Schema.infer`.

    The head of a file is a biased sample when the file is sorted (by time,
    by user); `write_shards` deals rows round-robin, so each of its shards
    is spread over the whole source.
    """
    streaming._check_positive("rows", rows)
    files = expand_shards(paths, "tfrecord_sample")
    columns = None if schema is None else streaming._needed_columns(schema, labels)
    lists = () if schema is None else _list_columns(schema)
    parts, remaining = [], rows
    for path in files:
        if remaining <= 0:
            break
        for frame in tfrecord_frames(path, min(remaining, 65536), columns=columns,
                                     compression=compression, list_columns=lists):
            parts.append(frame.iloc[:remaining])
            remaining -= len(parts[-1])
            if remaining <= 0:
                break
    if not parts or not sum(len(p) for p in parts):
        raise ValueError(f"{[str(f) for f in files]} hold no records; there is nothing to "
                         f"infer or adapt a schema on.")
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def compression_of(path, compression=None):
    """The `TFRecordDataset` compression of `path`: `compression` when given
    (`"GZIP"`, `"ZLIB"`, `""`; any case), else GZIP for `.gz` names."""
    if compression is None:
        return "GZIP" if str(path).lower().endswith(".gz") else ""
    upper = str(compression).upper()
    if upper not in COMPRESSIONS:
        raise ValueError(f"compression must be one of {list(COMPRESSIONS)} or None "
                         f"(GZIP for .gz names), got {compression!r}.")
    return upper


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _list_columns(schema):
    return tuple(spec.name for spec in schema.features if spec.list_valued)


def _record_chunks(path, chunk_rows, compression):
    """The file's serialised records, `chunk_rows` at a time: object arrays of bytes."""
    dataset = tf.data.TFRecordDataset(str(path), compression_type=compression)
    iterator = iter(dataset.batch(chunk_rows).as_numpy_iterator())
    while True:
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        except tf.errors.OpError as error:   # DataLossError: corrupt, or compressed
            raise ValueError(
                f"{path}: cannot read TFRecord records ({_tf_message(error)}); check "
                f"that it is a TFRecord file and its compression "
                f"({compression or 'none'}; pass compression='GZIP' for a gzipped file "
                f"not named .gz).") from None
        yield chunk


def _keys(serialized):
    """Feature keys of some records, in first-seen order."""
    keys = {}
    for record in serialized:
        keys.update(dict.fromkeys(tf.train.Example.FromString(record).features.feature))
    return list(keys)


def _kinds_seen(serialized, names):
    """`{name: dtype}` for the `names` these records hold a value of (as the
    first record holding one stores it)."""
    dtypes = dict(_KINDS)
    found = {}
    wanted = set(names)
    for record in serialized:
        for name, feature in tf.train.Example.FromString(record).features.feature.items():
            if name in wanted and name not in found:
                kind = feature.WhichOneof("kind")
                if kind is not None and len(getattr(feature, kind).value):
                    found[name] = dtypes[kind]
        if len(found) == len(wanted):
            break
    return found


def _kind_of(path, serialized, name):
    """The dtype feature `name` is stored as in these records; None when no
    record holds a value of it. `parse_example` refuses a wrong list kind,
    so the kind that parses with values is the one."""
    refused = []
    for kind, dtype in _KINDS:
        try:
            values = tf.io.parse_example(serialized, {name: tf.io.VarLenFeature(dtype)})[name]
        except tf.errors.InvalidArgumentError:
            refused.append(kind)
            continue
        if values.values.shape[0]:
            return dtype
    if len(refused) == len(_KINDS):
        raise ValueError(
            f"{path}: feature '{name}' is stored with different list kinds in different "
            f"records (bytes_list / int64_list / float_list); write every record's "
            f"'{name}' with the same kind.")
    return None


def _parse(path, serialized, kinds):
    """`{name: tf.SparseTensor}` of the features in `kinds` (name -> dtype)."""
    if not kinds:
        return {}
    spec = {name: tf.io.VarLenFeature(dtype) for name, dtype in kinds.items()}
    try:
        return tf.io.parse_example(serialized, spec)
    except tf.errors.InvalidArgumentError as error:
        key = re.search(r"Key: ([^,]+),", error.message)
        name = key.group(1) if key else "?"
        found = kinds.get(name)
        first = dict((dtype, kind) for kind, dtype in _KINDS).get(found, "?")
        raise ValueError(
            f"{path}: feature '{name}' is stored with different list kinds in different "
            f"records ({first} in the first ones; {_tf_message(error)}); write every "
            f"record's '{name}' with the same kind.") from None


def _column(path, name, sparse, rows, as_lists):
    """One parsed feature as a pandas-ready column of `rows` rows."""
    if sparse is None:      # no record of this chunk holds it
        return np.full(rows, None, dtype=object)
    row_of = sparse.indices.numpy()[:, 0]
    values = sparse.values.numpy()
    if sparse.values.dtype == tf.string:
        values = _decode(path, name, values)
    counts = np.bincount(row_of, minlength=rows)
    if as_lists or (len(counts) and counts.max() > 1):
        # one array per row; the values are in row order (indices are sorted)
        out = np.empty(rows, dtype=object)
        width = counts.max() if len(counts) else 0
        if width and (counts == width).all():      # fixed length, e.g. a Vector
            out[:] = list(values.reshape(rows, width))
            return out
        pieces = np.split(values, np.cumsum(counts)[:-1])
        for i, (count, piece) in enumerate(zip(counts, pieces)):
            out[i] = piece if count else None
        return out
    if sparse.values.dtype == tf.float32:
        out = np.full(rows, np.nan, dtype=np.float32)
        out[row_of] = values
        return out
    if sparse.values.dtype == tf.int64:
        if len(row_of) == rows:
            return values
        out = pd.array(np.zeros(rows, dtype=np.int64), dtype="Int64")
        out[:] = pd.NA
        out[row_of] = values
        return out
    out = np.full(rows, None, dtype=object)
    out[row_of] = values
    return out


def _tf_message(error):
    """A TF op error's message without its function-node and op tags."""
    text = re.sub(r"\{\{function_node [^}]*\}\}", "", error.message)
    return " ".join(re.sub(r"\[Op:\w+\]", "", text).split())


def _decode(path, name, values):
    try:
        return np.array([value.decode("utf-8") for value in values], dtype=object)
    except UnicodeDecodeError as error:
        raise ValueError(
            f"{path}: feature '{name}' holds bytes that are not UTF-8 text ({error}); "
            f"mtrec reads bytes_list features as strings. Drop the feature from the "
            f"schema or write it as UTF-8.") from None


def _check_columns(path, compression, columns):
    """Refuse columns no record in the head of `path` holds (a misspelt name)."""
    head = next(_record_chunks(path, COLUMN_CHECK_RECORDS, compression), None)
    if head is None:
        return      # an empty first file: nothing to check against
    keys = _keys(head)
    missing = [c for c in columns if c not in set(keys)]
    if missing:
        raise ValueError(
            f"{path}: none of its first {len(head)} records holds feature(s) {missing} "
            f"that the schema needs (they hold {keys[:20]}{'...' if len(keys) > 20 else ''}); "
            f"fix the name, remove it from the schema (labels=False reads features "
            f"only), or pass check_columns=False if it is that rarely present.")

