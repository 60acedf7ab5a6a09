"""A DataFrame or a CSV / Parquet / TFRecord file -> N shards (`mtrec data shard`).

    OUT_DIR/part-00000-of-00004.tfrecord   (or .parquet; .tfrecord.gz with GZIP)
    OUT_DIR/part-00001-of-00004.tfrecord
    ...
    OUT_DIR/_shards.json                   format, columns, rows per shard

Rows are dealt **round-robin**: row `i` of the source goes to shard
`i % num_shards`. That takes one pass over a source of unknown length (a
CSV has no row count; contiguous ranges would need a counting pass first),
makes the shards' sizes differ by one row at most (so workers reading by
file get the same number of steps, which `MultiWorkerMirroredStrategy`
needs), and spreads every shard over the whole source (a time-sorted file
does not give one worker only the last days). With one shard the rows keep
their order. The price: all `num_shards` files are open at once (mind
`ulimit -n` beyond ~1000 shards) and a Parquet shard gets row groups of
about `rows_per_chunk / num_shards` rows.

The source is read `rows_per_chunk` rows at a time, so it may be larger
than memory. TFRecord shards are built one `tf.train.Example` proto per row
in Python: about 10,000 rows/s for a 9-column table on one core here
(Parquet shards: ~300,000 rows/s); split a very large source and shard the
parts in parallel processes if that is too slow. The shards are written whole: into `OUT_DIR.partial-<pid>/`,
renamed to `OUT_DIR` once every row is written (`mtrec.utils.atomic`), so a
failure or a kill leaves no `OUT_DIR`; an existing non-empty `OUT_DIR` is
refused unless `overwrite=True`.

tf.Example encoding, per column (a column keeps one list kind throughout):

| pandas value                               | tf.Example feature                  |
|--------------------------------------------|-------------------------------------|
| int (any width, nullable `Int64`), bool    | `int64_list`, one value             |
| float (float32 / float64)                  | `float_list`, one value (float32)   |
| str (bytes as they are)                    | `bytes_list`, one UTF-8 value       |
| list / array of str, ints, floats          | `bytes_list` / `int64_list` /       |
|                                            | `float_list` with all the items     |
| None, NaN, NA, an empty list               | no key (missing stays missing)      |

A NaN inside a list is kept (a Vector row with a NaN is missing as a whole
to the model anyway). float64 values are stored as float32, which is what
the model reads. `mtrec.data.tfrecord.from_tfrecord` reads the shards back
into the same batches as the source.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path

import numpy as np
import pandas as pd

from mtrec.data import streaming
from mtrec.data.shards import expand_shards, file_format
from mtrec.schema.conversion import is_missing
from mtrec.utils.atomic import clean_leftovers, is_taken, write_folder_whole

__all__ = ["MANIFEST", "ShardsWritten", "add_shard_parser", "run_shard", "shard_name",
           "write_shards"]

#: The file in OUT_DIR that describes the shards (not itself a shard).
MANIFEST = "_shards.json"
FORMATS = ("tfrecord", "parquet")
# Rows of a CSV read to fix its column dtypes (without a schema).
_CSV_TYPING_ROWS = 10_000


class ShardsWritten(typing.NamedTuple):
    """What `write_shards` wrote: the shard files in order and their row counts."""

    files: list
    rows: list


def shard_name(index, num_shards, format="tfrecord", compression=None):
    """`part-00003-of-00008.tfrecord` (`.tfrecord.gz` with GZIP, `.parquet`)."""
    suffix = ".parquet" if format == "parquet" else (
        ".tfrecord.gz" if (compression or "").upper() == "GZIP" else ".tfrecord")
    return f"part-{index:05d}-of-{num_shards:05d}{suffix}"


def write_shards(source, out_dir, num_shards, format="tfrecord", schema=None, columns=None,
                 rows_per_chunk=100_000, overwrite=False, compression=None):
    """Write `source` as `num_shards` shard files in `out_dir`.

    Args:
        source: a DataFrame, or CSV / Parquet / TFRecord file(s): a path,
            glob, folder or list (`shards.expand_shards`), read in chunks.
        out_dir: the folder to create.
        num_shards: int >= 1.
        format: `"tfrecord"` (tf.Example, see the module docstring) or
            `"parquet"`.
        schema: optional `mtrec.Schema`: write its columns only (features,
            labels, masks; all must exist), read a CSV with its dtypes
            (`streaming.csv_dtypes`, so ids like `007` stay strings) and
            check every chunk with `schema.validate`. It need not be adapted.
        columns: optional list of the columns to write (default: all, or
            the schema's).
        rows_per_chunk: int. Rows read and dealt at a time; bounds the memory.
        overwrite: bool. Replace an existing non-empty `out_dir` (once the
            new shards are complete).
        compression: TFRecord only: `"GZIP"`, `"ZLIB"` or None.

    Returns:
        `ShardsWritten(files, rows)`.
    """
    out_dir = Path(out_dir)
    if isinstance(num_shards, bool) or not isinstance(num_shards, (int, np.integer)) \
            or num_shards < 1:
        raise ValueError(f"num_shards must be an integer >= 1, got {num_shards!r}.")
    if format not in FORMATS:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {format!r}.")
    streaming._check_positive("rows_per_chunk", rows_per_chunk)
    if compression is not None:
        if format != "tfrecord":
            raise ValueError(f"compression={compression!r} applies to TFRecord shards only; "
                             f"Parquet compresses its columns itself.")
        if str(compression).upper() not in ("GZIP", "ZLIB"):
            raise ValueError(f"compression must be 'GZIP', 'ZLIB' or None, got "
                             f"{compression!r}.")
        compression = str(compression).upper()
    if schema is not None and columns is not None:
        raise ValueError("Pass schema= or columns=, not both (the schema names the columns).")
    wanted = streaming._needed_columns(schema, labels=True) if schema is not None else (
        None if columns is None else list(columns))
    clean_leftovers(out_dir)
    if is_taken(out_dir) and not overwrite:
        raise ValueError(f"{out_dir} already exists and is not empty; refusing to overwrite "
                         f"it. Pass overwrite=True (`mtrec data shard --overwrite`) to replace "
                         f"it once the new shards are complete, or choose another folder.")
    chunks, arrow_types = _source_chunks(source, wanted, schema, rows_per_chunk,
                                         arrow=format == "parquet")
    names = [shard_name(i, num_shards, format, compression) for i in range(num_shards)]
    counts = [0] * num_shards
    written_columns = []

    def write(folder):
        sink = (_TFRecordSink(folder, names, compression) if format == "tfrecord"
                else _ParquetSink(folder, names, arrow_types))
        try:
            position = 0
            for chunk in chunks:
                if not len(chunk):
                    continue
                if not written_columns:
                    written_columns.extend(str(c) for c in chunk.columns)
                if schema is not None:
                    schema.validate(chunk, labels=True)
                sink.write(chunk, position)
                for shard in range(num_shards):
                    counts[shard] += len(range((shard - position) % num_shards, len(chunk),
                                               num_shards))
                position += len(chunk)
            if not position:
                raise ValueError(f"{_describe(source)} holds no rows; there is nothing to "
                                 f"shard.")
        finally:
            sink.close()
        manifest = {"format": format, "num_shards": num_shards, "dealt": "round-robin",
                    "compression": compression, "columns": written_columns,
                    "rows": counts, "total_rows": sum(counts), "files": names}
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=1), encoding="utf-8")

    write_folder_whole(out_dir, write, replace=overwrite)
    return ShardsWritten([out_dir / name for name in names], counts)


# --------------------------------------------------------------------------
# CLI: `mtrec data shard INPUT... OUT_DIR --shards N [--format ...]`
# --------------------------------------------------------------------------
def add_shard_parser(subparsers):
    """Add the `shard` command to an argparse subparsers object (that of
    `mtrec data`); it runs `run_shard`."""
    p = subparsers.add_parser(
        "shard", help="split a CSV/Parquet/TFRecord table into N TFRecord or Parquet shards",
        description="Split a table into N shards, rows dealt round-robin (row i to "
                    "shard i %% N), written whole into OUT_DIR.")
    p.add_argument("input", nargs="+", metavar="INPUT",
                   help="CSV, Parquet or TFRecord file(s), glob(s) or folder")
    p.add_argument("out_dir", metavar="OUT_DIR", help="folder to create")
    p.add_argument("--shards", type=int, required=True, metavar="N", help="number of shards")
    p.add_argument("--format", choices=FORMATS, default="tfrecord",
                   help="shard format (default tfrecord: tf.Example records)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing OUT_DIR once the new shards are complete")
    p.add_argument("--schema", metavar="SCHEMA.json",
                   help="a schema (Schema.to_json): write its columns, read CSV with its "
                        "dtypes, check every chunk")
    p.add_argument("--columns", metavar="A,B,...", help="columns to write (default all)")
    p.add_argument("--compression", choices=("gzip", "zlib"),
                   help="compress TFRecord shards (named .tfrecord.gz for gzip)")
    p.add_argument("--rows-per-chunk", type=int, default=100_000, metavar="N",
                   help="rows read and dealt at a time; bounds the memory (default 100000)")
    p.set_defaults(func=run_shard)
    return p


def run_shard(args):
    """Run `mtrec data shard` from parsed arguments; prints one line, returns 0."""
    from mtrec.schema import Schema

    schema = Schema.from_json(args.schema) if args.schema else None
    columns = [c.strip() for c in args.columns.split(",") if c.strip()] if args.columns \
        else None
    result = write_shards(args.input if len(args.input) > 1 else args.input[0], args.out_dir,
                          args.shards, format=args.format, schema=schema, columns=columns,
                          rows_per_chunk=args.rows_per_chunk, overwrite=args.overwrite,
                          compression=args.compression)
    print(f"Wrote {len(result.files)} {args.format} shards of {sum(result.rows)} rows "
          f"({min(result.rows)}-{max(result.rows)} per shard, dealt round-robin) to "
          f"{args.out_dir}")
    return 0


# --------------------------------------------------------------------------
# reading the source
# --------------------------------------------------------------------------
def _describe(source):
    return "The DataFrame" if isinstance(source, pd.DataFrame) else str(source)


def _source_chunks(source, columns, schema, rows_per_chunk, arrow):
    """`(iterator of DataFrame chunks, pyarrow column types or None)`. Files
    are opened and their columns checked now, before anything is written; the
    column types (for Parquet shards) come from the whole frame or the first
    Parquet file, so a chunk whose object column is all None keeps its type."""
    if isinstance(source, pd.DataFrame):
        if columns is not None:
            _require_columns("The DataFrame", source.columns, columns)
            source = source[columns]
        return (source.iloc[start:start + rows_per_chunk]
                for start in range(0, len(source), rows_per_chunk)), \
            (_arrow_types(source) if arrow else None)
    files = expand_shards(source, "write_shards")
    format = file_format(files)
    readers = []
    arrow_types = None
    for path in files:
        if format == "csv":
            readers.append(_csv_chunks(path, columns, schema, rows_per_chunk))
        elif format == "parquet":
            import pyarrow.parquet as pq

            names = pq.ParquetFile(path).schema_arrow.names
            if columns is not None:
                _require_columns(path, names, columns)
            if arrow and arrow_types is None:
                arrow_types = _plain(pq.ParquetFile(path).schema_arrow, columns)
            readers.append(streaming.parquet_frames(path, rows_per_chunk, columns=columns))
        else:
            from mtrec.data.tfrecord import tfrecord_frames

            readers.append(tfrecord_frames(path, rows_per_chunk, columns=columns))
    return (chunk for reader in readers for chunk in reader), arrow_types


def _csv_chunks(path, columns, schema, rows_per_chunk):
    """CSV chunks with one dtype per column for the whole file: the schema's
    (`streaming.csv_dtypes`), else what pandas infers on the first rows,
    made nullable (ints as `Int64`, so a later empty cell is not a float).
    The header is checked now; the chunks are read when iterated."""
    header = pd.read_csv(path, nrows=0)
    if columns is not None:
        _require_columns(path, header.columns, columns)
    if schema is not None:
        dtypes = streaming.csv_dtypes(schema, labels=True)
    else:
        head = pd.read_csv(path, nrows=_CSV_TYPING_ROWS, usecols=columns)
        dtypes = {}
        for name, dtype in head.dtypes.items():
            if pd.api.types.is_bool_dtype(dtype):
                dtypes[name] = "boolean"
            elif pd.api.types.is_integer_dtype(dtype):
                dtypes[name] = "Int64"
            elif pd.api.types.is_float_dtype(dtype):
                dtypes[name] = "float64"
            else:
                dtypes[name] = str

    def chunks():
        with pd.read_csv(path, chunksize=rows_per_chunk, usecols=columns,
                         dtype=dtypes) as reader:
            try:
                for chunk in reader:
                    yield chunk if columns is None else chunk[columns]
            except (ValueError, TypeError) as error:
                raise ValueError(
                    f"{path}: a later chunk does not fit the column types "
                    f"{ {k: str(v) for k, v in dtypes.items()} } ({error}); pass a schema "
                    f"(--schema) that types the columns, or clean the file.") from None

    return chunks()


def _require_columns(where, present, columns):
    missing = [c for c in columns if c not in set(map(str, present))]
    if missing:
        raise ValueError(f"{where} lacks column(s) {missing} to write (it has "
                         f"{list(map(str, present))[:20]}); fix the names or the schema.")


def _arrow_types(frame):
    """The pyarrow column types of a whole frame, without pandas' metadata
    (each shard gets its own, from the rows it holds)."""
    import pyarrow as pa

    try:
        return _plain(pa.Schema.from_pandas(frame, preserve_index=False))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
        raise ValueError(f"The rows do not convert to Parquet column types ({error}); make "
                         f"each column one type throughout.") from None


def _plain(arrow_schema, columns=None):
    import pyarrow as pa

    names = [n for n in arrow_schema.names if not n.startswith("__index_level_")] \
        if columns is None else columns
    return pa.schema([arrow_schema.field(n) for n in names])


# --------------------------------------------------------------------------
# writing the shards
# --------------------------------------------------------------------------
class _ParquetSink:
    """N ParquetWriters; chunk rows `position + j` go to shard `(position + j) % N`.

    Column types come from `types` (the whole source's) or else the first
    chunk, so every shard has the same schema."""

    def __init__(self, folder, names, types):
        self.paths = [folder / name for name in names]
        self.types = types
        self.writers = None

    def write(self, chunk, position):
        import pyarrow.parquet as pq

        if self.types is None:
            self.types = _arrow_types(chunk)
        count = len(self.paths)
        for shard in range(count):
            part = chunk.iloc[(shard - position) % count::count]
            if not len(part) and self.writers is not None:
                continue
            table = self._table(part, position, len(chunk))
            if self.writers is None:
                # pandas' metadata from these rows (Int64, str...) for all shards
                self.writers = [pq.ParquetWriter(str(p), table.schema) for p in self.paths]
            if len(part):
                self.writers[shard].write_table(table)

    def _table(self, part, position, rows):
        import pyarrow as pa

        try:
            return pa.Table.from_pandas(part, schema=self.types, preserve_index=False)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise ValueError(
                f"Rows {position}-{position + rows - 1} do not fit the Parquet column "
                f"types {dict(zip(self.types.names, map(str, self.types.types)))} ({error}); "
                f"make each column one type throughout.") from None

    def close(self):
        for writer in self.writers or []:
            writer.close()


class _TFRecordSink:
    """N TFRecordWriters of tf.Example; rows dealt round-robin."""

    def __init__(self, folder, names, compression):
        import tensorflow as tf

        options = tf.io.TFRecordOptions(compression_type=compression or "")
        self.writers = [tf.io.TFRecordWriter(str(folder / name), options) for name in names]
        self.kinds = {}     # column -> list kind, fixed at its first value

    def write(self, chunk, position):
        import tensorflow as tf

        # one list of `tf.train.Feature or None` per column
        columns = [(str(name), _features(str(name), chunk[name], self.kinds, position))
                   for name in chunk.columns]
        count = len(self.writers)
        for j in range(len(chunk)):
            feature = {name: values[j] for name, values in columns if values[j] is not None}
            self.writers[(position + j) % count].write(tf.train.Example(
                features=tf.train.Features(feature=feature)).SerializeToString())

    def close(self):
        for writer in self.writers:
            writer.close()


def _features(name, series, kinds, position):
    """`tf.train.Feature` (or None: missing) per value of one column.

    `kinds[name]` (`"int64"`, `"float"`, `"bytes"`) is set by the first
    value written and enforced after, so a file holds one kind per feature.
    """
    import tensorflow as tf

    dtype = series.dtype
    if pd.api.types.is_datetime64_any_dtype(dtype) or pd.api.types.is_timedelta64_dtype(dtype):
        raise ValueError(
            f"Column '{name}' is {dtype}, which tf.Example cannot hold; convert it, e.g. "
            f"to int64 seconds (df['{name}'].astype('int64') // 10**9) or to str.")
    missing = series.isna().to_numpy()
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_integer_dtype(dtype):
        if pd.api.types.is_unsigned_integer_dtype(dtype) and len(series) \
                and series.max() > np.iinfo(np.int64).max:
            raise ValueError(f"Column '{name}' is {dtype} with values above the int64 range, "
                             f"which int64_list cannot hold; cast it to str.")
        _fix_kind(kinds, name, "int64", position)
        values = series.to_numpy(dtype=np.int64, na_value=0).tolist()
        return [None if gone else tf.train.Feature(int64_list=tf.train.Int64List(value=[v]))
                for v, gone in zip(values, missing)]
    if pd.api.types.is_float_dtype(dtype):
        _fix_kind(kinds, name, "float", position)
        values = series.to_numpy(dtype=np.float64, na_value=np.nan).tolist()
        return [None if gone else tf.train.Feature(float_list=tf.train.FloatList(value=[v]))
                for v, gone in zip(values, missing)]
    # object, str, category: value by value
    return [_feature(name, value, kinds, position + j)
            for j, value in enumerate(series.astype(object).tolist())]


def _feature(name, value, kinds, row):
    import tensorflow as tf

    if isinstance(value, (list, tuple, np.ndarray)):
        if np.ndim(value) != 1:
            raise ValueError(f"Column '{name}' row {row} has shape {np.shape(value)}; a "
                             f"tf.Example feature holds a flat list. Flatten it first.")
        if not len(value):
            return None     # an empty list reads back as missing, like an absent key
        kind, items = _list_kind(value), list(value)
        if kind is None:
            raise ValueError(
                f"Column '{name}' row {row} holds {list(value)[:5]!r}, a list mixing "
                f"types; a tf.Example list holds only ints, only floats or only strings.")
        if kind == "bytes":
            items = [v if isinstance(v, bytes) else v.encode("utf-8") for v in items]
        elif kind == "int64":
            items = [int(v) for v in items]
        else:
            items = [float(v) for v in items]
    elif is_missing(value):
        return None
    elif isinstance(value, (str, bytes)):
        kind, items = "bytes", [value if isinstance(value, bytes) else value.encode("utf-8")]
    elif isinstance(value, (bool, int, np.integer, np.bool_)):
        kind, items = "int64", [int(value)]
    elif isinstance(value, (float, np.floating)):
        kind, items = "float", [float(value)]
    else:
        raise ValueError(f"Column '{name}' row {row} is {value!r} "
                         f"({type(value).__name__}), which tf.Example cannot hold; use "
                         f"ints, floats, strings or lists of them.")
    if kind == "int64" and kinds.get(name) == "float":
        kind, items = "float", [float(v) for v in items]     # 3 in a float column
    _fix_kind(kinds, name, kind, row)
    if kind == "int64":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=items))
    if kind == "float":
        return tf.train.Feature(float_list=tf.train.FloatList(value=items))
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=items))


def _list_kind(value):
    """`"int64"`, `"float"` or `"bytes"` for a list of ints / numbers / strings
    (an array by its dtype); None for a mix."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return "float" if value.dtype.kind == "f" else "int64"
    items = value.tolist() if isinstance(value, np.ndarray) else value
    if all(isinstance(v, (str, bytes)) for v in items):
        return "bytes"
    if all(isinstance(v, (bool, int, np.integer, np.bool_)) for v in items):
        return "int64"
    if all(isinstance(v, (bool, int, float, np.number, np.bool_)) for v in items):
        return "float"
    return None


def _fix_kind(kinds, name, kind, row):
    known = kinds.setdefault(name, kind)
    if known != kind:
        raise ValueError(
            f"Column '{name}' holds {kind} values from row {row} on but {known} values "
            f"before; a tf.Example feature keeps one list kind per file. Cast the column "
            f"to one type (e.g. df['{name}'].astype(str)).")
