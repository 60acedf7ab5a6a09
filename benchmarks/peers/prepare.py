"""Encode Census-Income group 1 once, for every library of the peers benchmark.

Runs in mtrec's environment. Loads the splits with mtrec's loader, builds
mtrec's schema (8-dim embeddings), adapts it on the training rows and runs
mtrec's own encoding (`mtrec.data.pandas_dataset.encode_features`, the same
code `from_pandas` runs) over each split, so every library sees identical
vocabularies, ids and scaled numerics. Writes `<split>.npz` (ids, floats,
labels, row positions) and `manifest.json` (shapes, per-feature
cardinalities, float column names, sha256 of each file) into one folder per
row count; a later call reuses that folder when every checksum matches and
refuses it, naming the file, when one does not.

    python benchmarks/peers/prepare.py [--rows 5000] [--cache runs/peers/data]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import protocol  # noqa: E402  (benchmarks/peers/protocol.py)

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = ROOT / "runs" / "peers" / "data"
FORMAT = 1


class ChecksumMismatch(RuntimeError):
    """A cached file differs from the checksum its manifest recorded."""


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cache_folder(cache_dir, rows):
    return Path(cache_dir) / ("census_g1-all" if rows is None else f"census_g1-rows{rows}")


def select_rows(splits, rows, seed=0):
    """Row positions per split: all, or `rows` training rows drawn at random
    (seeded) and the same fraction of validation and test (at least 100).

    Returns:
        dict `{split: sorted int64 positions}`.
    """
    if rows is None:
        return {name: np.arange(len(df), dtype="int64") for name, df in splits.items()}
    if rows < 100:
        raise ValueError(f"--rows must be >= 100 (AUC needs both classes), got {rows}.")
    rng = np.random.default_rng(seed)
    fraction = min(1.0, rows / len(splits["train"]))
    chosen = {}
    for name, df in splits.items():
        n = len(df) if fraction == 1.0 else min(len(df), max(100, round(fraction * len(df))))
        chosen[name] = np.sort(rng.choice(len(df), size=n, replace=False)).astype("int64")
    return chosen


def census_schema(train):
    """mtrec's schema of the benchmark: inferred kinds, 8-dim embeddings,
    adapted on `train`. The mtrec runner builds it the same way."""
    import mtrec

    tasks = {task: "binary" for task in protocol.TASKS}
    inferred = mtrec.Schema.infer(train, tasks=tasks, verbose=False)
    narrow = {spec.name: dataclasses.replace(spec, embedding_dim=protocol.EMBEDDING_DIM)
              for spec in inferred.features_of("categorical")}
    return mtrec.Schema.infer(train, tasks=tasks, verbose=False, **narrow).adapt(train)


def verify(folder):
    """The folder's manifest, after checking every file's sha256.

    Raises:
        ChecksumMismatch: a file is missing or differs from its recorded hash.
    """
    manifest = protocol.read_manifest(folder)
    for split, entry in manifest["splits"].items():
        path = Path(folder) / entry["file"]
        if not path.is_file():
            raise ChecksumMismatch(
                f"{path} is missing but {folder}/manifest.json lists it; delete "
                f"{folder} (or pass --rebuild) to encode the data again.")
        found = sha256(path)
        if found != entry["sha256"]:
            raise ChecksumMismatch(
                f"{path} has sha256 {found} but the manifest recorded "
                f"{entry['sha256']}: the file changed after it was written. Delete "
                f"{folder} (or pass --rebuild) to encode the data again.")
    return manifest


def write_cache(folder, arrays, manifest):
    """Write `<split>.npz` per split and the manifest (with each file's
    shape, positive rates and sha256) into `folder`, whole: into a
    temporary sibling first, renamed into place.

    Args:
        folder: Path.
        arrays: `{split: {"ids", "floats", "rows", task...: array}}`.
        manifest: dict of the other manifest entries.

    Returns:
        the manifest written.
    """
    folder = Path(folder)
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    entries = {}
    for name, split in arrays.items():
        path = tmp / f"{name}.npz"
        np.savez(path, **split)
        entries[name] = {"file": path.name, "rows": int(len(split["rows"])),
                         "ids_shape": list(split["ids"].shape),
                         "floats_shape": list(split["floats"].shape),
                         "positive_rate": {t: float(np.mean(split[t]))
                                           for t in protocol.TASKS},
                         "sha256": sha256(path)}
    manifest = {**manifest, "splits": entries}
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    if folder.exists():
        shutil.rmtree(folder)
    os.replace(tmp, folder)
    return manifest


def prepare(cache_dir=DEFAULT_CACHE, rows=None, rebuild=False, data_dir=None):
    """The encoded splits' folder, written once and reused while intact.

    Args:
        cache_dir: where the per-row-count folders live.
        rows: int or None. Training rows to draw (None: all).
        rebuild: bool. Encode again even if a folder exists.
        data_dir: Census-Income copy (None: the loader's default,
            `$MTREC_DATA_DIR`).

    Returns:
        (folder Path, manifest dict, reused bool).
    """
    folder = cache_folder(cache_dir, rows)
    if folder.exists() and not rebuild:
        return folder, verify(folder), True

    import mtrec
    from mtrec.data.pandas_dataset import encode_features
    from mtrec.layers.feature_embedding import categorical_cardinality
    from mtrec.layers.feature_preprocessing import CATEGORICAL_KEY, NUMERIC_KEY

    train, valid, test = mtrec.data.census_income.load(group=1, data_dir=data_dir)
    splits = {"train": train, "valid": valid, "test": test}
    positions = select_rows(splits, rows)
    splits = {name: df.iloc[positions[name]].reset_index(drop=True)
              for name, df in splits.items()}
    schema = census_schema(splits["train"])
    categorical = schema.features_of("categorical")
    numeric = [spec.name for spec in schema.features_of("numeric")]

    arrays = {}
    for name, df in splits.items():
        encoded = encode_features(schema, schema.raw_features(df))
        labels = schema.raw_labels(df)
        arrays[name] = {"ids": encoded[CATEGORICAL_KEY].astype("int64"),
                        "floats": encoded[NUMERIC_KEY].astype("float32"),
                        "rows": positions[name],
                        **{task: labels[task].astype("float32") for task in protocol.TASKS}}
    manifest = write_cache(folder, arrays, {
        "format": FORMAT, "dataset": "census_income", "group": 1, "loader_seed": 0,
        "rows_requested": rows, "embedding_dim": protocol.EMBEDDING_DIM,
        "tasks": list(protocol.TASKS),
        "categorical": [{"name": spec.name,
                         "cardinality": int(categorical_cardinality(schema, spec))}
                        for spec in categorical],
        "floats": numeric + [f"{n}_missing" for n in numeric],
        "mtrec_version": mtrec.__version__})
    return folder, manifest, False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=None)
    parser.add_argument("--cache", default=str(DEFAULT_CACHE))
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args(argv)
    folder, manifest, reused = prepare(args.cache, args.rows, args.rebuild)
    shapes = ", ".join(f"{s} {e['rows']}" for s, e in manifest["splits"].items())
    print(f"{'reused' if reused else 'wrote'} {folder} ({shapes} rows; "
          f"{len(manifest['categorical'])} categorical, {len(manifest['floats'])} floats)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
