"""Ali-CCP (Alibaba Click and Conversion Prediction): the ESMM paper's data.

Source: Tianchi dataset 408, https://tianchi.aliyun.com/dataset/408
(Ma et al., SIGIR 2018, "Entire Space Multi-Task Model"); 84M impressions
from Taobao's recommender logs, click and purchase labels. Downloading
needs a Tianchi login: there is no anonymous URL and no published checksum.

Two layouts are read.

**Flattened** (torch-rechub's `preprocess_ali_ccp.py`, and its tiny
extract in `$MTREC_DATA_DIR/samples/ali-ccp/`): a CSV with a header,
`click`, `purchase`, then one column per feature field (`101`, `121`, ...,
`301`, `109_14`, ..., `150_14`) holding integer ids (remapped by
torch-rechub, 0 = rare or missing), then `D109_14`, ..., `D853`: the
*value* of those fields' features, min-max scaled (torch-rechub fits the
scaler on train, validation and test together, and keeps only the last
feature of a multi-valued field). Files: `ali_ccp_{train,val,test}.csv`.

**Raw** (the official release), two file pairs per split,
`sample_skeleton_{train,test}.csv` and `common_features_{train,test}.csv`.
Each skeleton line is

    sample_id,click,conversion,common_feature_index,feature_num,feature_list

and each common-features line is

    common_feature_index,feature_num,feature_list

where `feature_list` holds `feature_num` features joined by `\\x01`, each
`field_id\\x02feature_id\\x03value` (e.g. `205\\x02{id}\\x031.0`). A
skeleton line (the item and user-item fields) is completed by the
common-features line with the same index (the user's profile and
behaviour fields, shared by all impressions of one request). Fields may
repeat within a line: the user-history fields `109_14`, `110_14`,
`127_14`, `150_14` list one feature per category / shop / brand /
intention the user interacted with (value: a count or weight). This was
confirmed against the public preprocessing code of ESMM reproductions
(Xi Dongbo's ESMM/AITM scripts, torch-rechub's `preprocess_ali_ccp.py`,
NVIDIA Merlin's `convert_alliccp`), which all split on exactly these
separators and read the index at position 3 and the feature list at
position 5 of a skeleton line; the three also drop the rare lines with
conversion = 1 but click = 0 (`drop_inconsistent`).

`iter_raw` streams the skeleton file in chunks and emits flattened
DataFrames: `click`, `purchase`, one string column per requested field
with the feature id (`""` when absent; several ids joined by `"|"`, for
`MultiHot`), and `D<field>` float columns with the sum of the field's
feature values for `dense_fields`. The common features are held in a dict
`{index: tuple of per-field strings}`; see `read_common_features` for its
memory.

Tasks (`TASKS`), as for AliExpress: `ctr` = click; `cvr` = purchase where
`click == 1` (mask); `ctcvr` = purchase on every impression.
"""

from __future__ import annotations

import logging
import sys
import warnings

import pandas as pd

from mtrec.data import streaming
from mtrec.data.download import locate
from mtrec.data.registry import DatasetSplits, register_dataset
from mtrec.schema import Categorical, MultiHot, Numeric, Schema, funnel_tasks

logger = logging.getLogger(__name__)

DOWNLOAD_PAGE = "https://tianchi.aliyun.com/dataset/408"
SAMPLE_URL = ("https://raw.githubusercontent.com/datawhalechina/torch-rechub/main/"
              "examples/ranking/data/ali-ccp")
SAMPLE_FILES = {
    "ali_ccp_train_sample.csv": "398ec366c4a8a89e1503e5536793702a",
    "ali_ccp_val_sample.csv": "2cbd54519f6d6deb02443abfdea1e74e",
    "ali_ccp_test_sample.csv": "94c6f50b5fcd38afb98050dd886d7f5d",
}
# torch-rechub's preprocessing output (no published checksum).
FLAT_FILES = {"ali_ccp_train.csv": None, "ali_ccp_val.csv": None, "ali_ccp_test.csv": None}
SPLITS = ("train", "test")

# Field ids and meaning (ESMM paper's dataset description).
FIELDS = {
    "101": "user id",
    "109_14": "user history: categories (id, count)",
    "110_14": "user history: shops (id, count)",
    "127_14": "user history: brands (id, count)",
    "150_14": "user history: intention nodes (id, count)",
    "121": "user profile: categorical id",
    "122": "user profile: group id",
    "124": "user gender",
    "125": "user age",
    "126": "user consumption level 1",
    "127": "user consumption level 2",
    "128": "user occupation (works or not)",
    "129": "user geography",
    "205": "item id",
    "206": "item category",
    "207": "item shop",
    "210": "item intention node",
    "216": "item brand",
    "508": "user-item: 109_14 x 206",
    "509": "user-item: 110_14 x 207",
    "702": "user-item: 127_14 x 216",
    "853": "user-item: 150_14 x 210",
    "301": "position (context)",
}
# Column order of the flattened layout.
SPARSE_FIELDS = ["101", "121", "122", "124", "125", "126", "127", "128", "129", "205",
                 "206", "207", "210", "216", "508", "509", "702", "853", "301",
                 "109_14", "110_14", "127_14", "150_14"]
DENSE_FIELDS = ["109_14", "110_14", "127_14", "150_14", "508", "509", "702", "853"]
HISTORY_FIELDS = ["109_14", "110_14", "127_14", "150_14"]
LABELS = ["click", "purchase"]
GROUP_COLUMN = "101"   # user id, for GAUC
TASKS = funnel_tasks(click="click", conversion="purchase")
TASK_NAMES = [task.name for task in TASKS]

_FEATURE_SEP, _FIELD_SEP, _VALUE_SEP = "\x01", "\x02", "\x03"


def dense_column(field):
    return f"D{field}"


def flat_columns(fields=SPARSE_FIELDS, dense_fields=DENSE_FIELDS):
    return [*LABELS, *fields, *(dense_column(f) for f in dense_fields)]


# --------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------
def schema(layout="flat", tasks=None, fields=SPARSE_FIELDS, dense_fields=DENSE_FIELDS,
           embedding_dim=16):
    """The Ali-CCP schema (not adapted).

    Args:
        layout: `"flat"` (torch-rechub's files: one id per field, all
            `Categorical`) or `"raw"` (what `iter_raw` emits: the
            user-history fields are `MultiHot` over `"|"`-joined ids).
        tasks: task names to keep, from `TASK_NAMES`; default all three.
        fields: sparse field ids used as features.
        dense_fields: fields whose `D<field>` value column is a `Numeric`.
        embedding_dim: int. Embedding width of the sparse features.
    """
    if layout not in ("flat", "raw"):
        raise ValueError(f"layout must be 'flat' or 'raw', got {layout!r}.")
    chosen = TASKS
    if tasks is not None:
        tasks = [tasks] if isinstance(tasks, str) else list(tasks)
        unknown = [t for t in tasks if t not in TASK_NAMES]
        if unknown or not tasks:
            raise ValueError(f"Unknown Ali-CCP task(s) {unknown or tasks!r}; choose "
                             f"among {TASK_NAMES}.")
        chosen = [task for task in TASKS if task.name in tasks]
    _check_fields(fields, dense_fields)
    features = []
    for field in fields:
        if layout == "raw" and field in HISTORY_FIELDS:
            features.append(MultiHot(field, embedding_dim=embedding_dim))
        else:
            features.append(Categorical(field, embedding_dim=embedding_dim))
    features += [Numeric(dense_column(field)) for field in dense_fields]
    return Schema(features, chosen)


# --------------------------------------------------------------------------
# Flattened layout
# --------------------------------------------------------------------------
def read(path, nrows=None):
    """One flattened CSV: field columns as strings, `D*` float32, labels int32."""
    header = pd.read_csv(path, nrows=0, dtype=str).columns
    missing = [c for c in LABELS if c not in header]
    if missing:
        raise ValueError(f"{path} lacks the label column(s) {missing}; expected the "
                         f"flattened Ali-CCP layout (click, purchase, field columns).")
    dtypes = {c: ("float32" if c.startswith("D") else "int32" if c in LABELS else str)
              for c in header}
    frame = pd.read_csv(path, dtype=dtypes, nrows=nrows, keep_default_na=False,
                        na_values={c: [""] for c in header if dtypes[c] != str})
    for column in frame.columns:
        if dtypes[column] is str:
            frame[column] = frame[column].astype(object)
    return frame


def sample_paths(data_dir=None, download=True):
    """`{"train", "valid", "test"}` paths of torch-rechub's 100/50/50-row extract."""
    folder = locate("samples/ali-ccp", SAMPLE_FILES, SAMPLE_URL, data_dir=data_dir,
                    download=download)
    return {"train": folder / "ali_ccp_train_sample.csv",
            "valid": folder / "ali_ccp_val_sample.csv",
            "test": folder / "ali_ccp_test_sample.csv"}


def flat_paths(data_dir=None):
    """`{"train", "valid", "test"}` paths of torch-rechub's full flattened
    files, in `data_dir` or `$MTREC_DATA_DIR/ali-ccp/` (never downloaded:
    make them with torch-rechub's script from the raw release)."""
    try:
        folder = locate("ali-ccp", FLAT_FILES, "", data_dir=data_dir, download=False)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"Ali-CCP flattened files {sorted(FLAT_FILES)} not found in "
            f"{data_dir or '$MTREC_DATA_DIR/ali-ccp'}. Make them with torch-rechub's "
            f"examples/ranking/data/ali-ccp/preprocess_ali_ccp.py from the raw "
            f"release ({DOWNLOAD_PAGE}), or stream the raw files with "
            f"stream_raw().") from None
    return {"train": folder / "ali_ccp_train.csv", "valid": folder / "ali_ccp_val.csv",
            "test": folder / "ali_ccp_test.csv"}


def load_sample(data_dir=None, download=True):
    """`(train, valid, test)` DataFrames of the tiny flattened extract."""
    files = sample_paths(data_dir, download)
    return tuple(read(files[split]) for split in ("train", "valid", "test"))


def load(data_dir=None):
    """`(train, valid, test)` DataFrames of the full flattened files (about
    42M + 21M + 21M rows: needs tens of GB; prefer `stream`)."""
    files = flat_paths(data_dir)
    return tuple(read(files[split]) for split in ("train", "valid", "test"))


def stream(schema, split="train", data_dir=None, sample=False, **from_csv_kwargs):
    """Stream a flattened file through `streaming.from_csv` (`schema` from
    `schema(layout="flat")`, adapted)."""
    files = sample_paths(data_dir) if sample else flat_paths(data_dir)
    if split not in files:
        raise ValueError(f"split must be one of {list(files)}, got {split!r}.")
    return streaming.from_csv(files[split], schema, **from_csv_kwargs)


# --------------------------------------------------------------------------
# Raw layout
# --------------------------------------------------------------------------
def raw_paths(split="train", data_dir=None):
    """`(skeleton, common_features)` paths of one split of the raw release,
    in `data_dir` or `$MTREC_DATA_DIR/ali-ccp/` (unpacked from Tianchi's
    `sample_train.tar.gz` / `sample_test.tar.gz`; never downloaded, as the
    files need a Tianchi login)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}.")
    names = {f"sample_skeleton_{split}.csv": None, f"common_features_{split}.csv": None}
    try:
        folder = locate("ali-ccp", names, "", data_dir=data_dir, download=False)
    except FileNotFoundError:
        raise FileNotFoundError(
            f"Ali-CCP raw files {sorted(names)} not found in "
            f"{data_dir or '$MTREC_DATA_DIR/ali-ccp'}. Download sample_{split}.tar.gz "
            f"from {DOWNLOAD_PAGE} (needs a Tianchi login) and unpack it there.") from None
    return folder / f"sample_skeleton_{split}.csv", folder / f"common_features_{split}.csv"


def read_common_features(path, fields=SPARSE_FIELDS, dense_fields=DENSE_FIELDS):
    """The common-features file as a dict `{index: (strings..., sums...)}`.

    Each value holds, for every field of `fields`, its feature ids joined
    by `"|"` (`""` when absent), then for every field of `dense_fields` the
    sum of its feature values (0.0 when absent); only the requested fields
    are kept.

    Memory: the whole file is indexed, one entry per line: a key, a
    tuple, one string per non-empty field and one float per dense field,
    about 0.8 KB per line without the user-history fields. Those
    (`HISTORY_FIELDS`: one id per category / shop / brand / intention the
    user touched) dominate: measured on generated lines with 200 history
    ids each (4.6 KB of text per line), the index takes 2.8 KB per line,
    about 0.6 x the file's size, against 0.8 KB per line with
    `fields=`/`dense_fields=` leaving them out. `common_features_bytes`
    measures a given index.
    """
    _check_fields(fields, dense_fields)
    field_pos = {f: i for i, f in enumerate(fields)}
    dense_pos = {f: i for i, f in enumerate(dense_fields)}
    index = {}
    with open(path, encoding="utf-8", newline="\n") as lines:
        for number, line in enumerate(lines, 1):
            line = line.rstrip("\r\n")
            if not line:
                continue
            parts = line.split(",", 2)
            if len(parts) != 3:
                raise ValueError(
                    f"{path} line {number}: expected 'common_feature_index,"
                    f"feature_num,feature_list', got {line[:80]!r}.")
            ids, sums = _parse_features(parts[2], field_pos, dense_pos, path, number)
            index[sys.intern(parts[0])] = (*ids, *sums)
    return index


def common_features_bytes(index):
    """Approximate bytes held by a `read_common_features` dict (keys, tuples,
    strings, floats), by `sys.getsizeof`."""
    total = sys.getsizeof(index)
    seen = set()
    for key, value in index.items():
        total += sys.getsizeof(key) + sys.getsizeof(value)
        for item in value:
            if id(item) not in seen:   # "" and small ints are shared
                seen.add(id(item))
                total += sys.getsizeof(item)
    return total


def iter_raw(skeleton_path, common, fields=SPARSE_FIELDS, dense_fields=DENSE_FIELDS,
             chunk_rows=100_000, drop_inconsistent=True, max_rows=None):
    """Stream raw skeleton lines, joined with their common features, as
    flattened DataFrames of at most `chunk_rows` rows.

    Args:
        skeleton_path: `sample_skeleton_<split>.csv`.
        common: the dict of `read_common_features` (read it once and reuse
            it across epochs), or the path of `common_features_<split>.csv`.
        fields: sparse field ids to emit (one string column each).
        dense_fields: fields whose summed values are emitted as `D<field>`.
        chunk_rows: int. Rows per DataFrame.
        drop_inconsistent: bool. Skip lines with conversion = 1 but
            click = 0 (as the ESMM reproductions do).
        max_rows: int. Stop after this many emitted rows.

    Yields:
        DataFrames with `click`, `purchase` (int32), the field columns
        (object, `""` when absent, `"|"`-joined when repeated) and the
        `D<field>` columns (float32).
    """
    _check_fields(fields, dense_fields)
    if not isinstance(common, dict):
        common = read_common_features(common, fields, dense_fields)
    field_pos = {f: i for i, f in enumerate(fields)}
    dense_pos = {f: i for i, f in enumerate(dense_fields)}
    columns = flat_columns(fields, dense_fields)
    empty_common = ("",) * len(fields) + (0.0,) * len(dense_fields)
    rows, emitted, dropped, orphans = [], 0, 0, 0
    with open(skeleton_path, encoding="utf-8", newline="\n") as lines:
        for number, line in enumerate(lines, 1):
            if max_rows is not None and emitted >= max_rows:
                break
            line = line.rstrip("\r\n")
            if not line:
                continue
            parts = line.split(",", 5)
            if len(parts) != 6:
                raise ValueError(
                    f"{skeleton_path} line {number}: expected 'sample_id,click,"
                    f"conversion,common_feature_index,feature_num,feature_list', "
                    f"got {line[:80]!r}.")
            click, conversion = int(parts[1]), int(parts[2])
            if drop_inconsistent and conversion == 1 and click == 0:
                dropped += 1
                continue
            ids, sums = _parse_features(parts[5], field_pos, dense_pos, skeleton_path,
                                        number)
            shared = common.get(parts[3])
            if shared is None:
                orphans += 1
                shared = empty_common
            n = len(fields)
            joined = [a if not b else b if not a else f"{a}|{b}"
                      for a, b in zip(ids, shared[:n])]
            dense = [a + b for a, b in zip(sums, shared[n:])]
            rows.append((click, conversion, *joined, *dense))
            emitted += 1
            if len(rows) >= chunk_rows:
                yield _raw_frame(rows, columns, len(fields))
                rows = []
    if rows:
        yield _raw_frame(rows, columns, len(fields))
    if dropped:
        logger.info("%s: dropped %d lines with conversion but no click.", skeleton_path,
                    dropped)
    if orphans:
        warnings.warn(f"{skeleton_path}: {orphans} lines name a common_feature_index "
                      f"absent from the common-features file; their user fields are "
                      f"empty. Check that the two files are of the same split.",
                      stacklevel=2)


def raw_sample(skeleton_path, common, rows=100_000, **iter_raw_kwargs):
    """The first `rows` flattened rows of a raw split, to adapt a schema."""
    frames = list(iter_raw(skeleton_path, common, chunk_rows=rows, max_rows=rows,
                           **iter_raw_kwargs))
    if not frames:
        raise ValueError(f"{skeleton_path} has no rows.")
    return pd.concat(frames, ignore_index=True)


def stream_raw(schema, split="train", data_dir=None, common=None,
               fields=SPARSE_FIELDS, dense_fields=DENSE_FIELDS, chunk_rows=100_000,
               drop_inconsistent=True, **from_frames_kwargs):
    """A `tf.data.Dataset` streamed from the raw release.

    The common-features index is read once (or passed in as `common`) and
    reused by every epoch; the skeleton file is streamed in chunks.

    Args:
        schema: adapted `schema(layout="raw", fields=..., dense_fields=...)`.
        split: `"train"` or `"test"`.
        data_dir: folder of the raw files (see `raw_paths`).
        common: optional dict from `read_common_features`.
        fields, dense_fields, chunk_rows, drop_inconsistent: as in `iter_raw`.
        **from_frames_kwargs: `batch_size`, `shuffle_buffer`, `seed`, ... of
            `mtrec.data.streaming.from_frames`.
    """
    skeleton, common_path = raw_paths(split, data_dir)
    if common is None:
        common = read_common_features(common_path, fields, dense_fields)
        logger.info("Ali-CCP %s common features: %d indices", split, len(common))
    return streaming.from_frames(
        lambda: iter_raw(skeleton, common, fields=fields, dense_fields=dense_fields,
                         chunk_rows=chunk_rows, drop_inconsistent=drop_inconsistent),
        schema, **from_frames_kwargs)


# --------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------
@register_dataset("ali_ccp", tasks=TASKS)
def ali_ccp(sample=False, data_dir=None):
    """Ali-CCP in torch-rechub's flattened layout (train / validation / test
    files), tasks ctr, cvr (masked by click) and ctcvr. `sample=True`: the
    100/50/50-row extract. The full files hold 84M rows: in pandas they need
    tens of GB; stream them with `mtrec.data.ali_ccp.stream` instead."""
    train, valid, test = load_sample(data_dir) if sample else load(data_dir)
    what = ("Ali-CCP sample (torch-rechub extract; metrics meaningless)" if sample
            else "Ali-CCP (Tianchi 408), torch-rechub flattened layout")
    return DatasetSplits(train, valid, test, tasks=list(TASKS), group_column=None,
                         description=f"{what}: click -> purchase funnel")


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _check_fields(fields, dense_fields):
    for name, items in (("fields", fields), ("dense_fields", dense_fields)):
        if isinstance(items, str):
            raise ValueError(f"{name} must be a list of field ids, got the string "
                             f"{items!r}; write [{items!r}].")
        if len(set(items)) != len(items):
            raise ValueError(f"{name} has repeated field ids: {list(items)}.")


def _parse_features(text, field_pos, dense_pos, path, number):
    ids = [[] for _ in field_pos]
    sums = [0.0] * len(dense_pos)
    if text:
        for feature in text.split(_FEATURE_SEP):
            field, _, rest = feature.partition(_FIELD_SEP)
            feature_id, sep, value = rest.partition(_VALUE_SEP)
            if not sep:
                raise ValueError(
                    f"{path} line {number}: feature {feature[:40]!r} is not "
                    f"'field_id\\x02feature_id\\x03value'; is this the raw Ali-CCP "
                    f"format?")
            position = field_pos.get(field)
            if position is not None:
                ids[position].append(feature_id)
            position = dense_pos.get(field)
            if position is not None:
                sums[position] += float(value)
    return ["|".join(items) for items in ids], sums


def _raw_frame(rows, columns, num_fields):
    frame = pd.DataFrame.from_records(rows, columns=columns)
    frame[LABELS] = frame[LABELS].astype("int32")
    for column in columns[2:2 + num_fields]:
        frame[column] = frame[column].astype(object)
    dense = columns[2 + num_fields:]
    if dense:
        frame[dense] = frame[dense].astype("float32")
    return frame
