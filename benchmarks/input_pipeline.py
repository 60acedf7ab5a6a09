"""Input pipeline: seconds per epoch of iterating `mtrec.data.from_pandas`
(batches gathered by shuffled row index) against the plain tf.data pipeline
over the same encoded columns (`from_tensor_slices` -> `shuffle` -> `batch`),
in the same process, on Census-Income group 1 train (199,523 rows); and of
the streams `from_csv` / `from_parquet` over the same split written to
files (chunks of `--chunk-rows`, shuffle buffer `--shuffle-buffer`).

    python benchmarks/input_pipeline.py [--epochs 5] [--batch-size 1024]
        [--rev main]

With `--rev REV` the streams are also timed with the `mtrec` package of
that git revision (each version in a fresh process of its own, rounds
interleaved), so the table shows before / after and their ratio.

Prints the median seconds per epoch of each and their ratio; nothing
trains, so this is the pipeline's own cost, which the training step would
otherwise share its cores with.
"""

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from revision_checkout import REPOSITORY, exported_package, resolve  # noqa: E402

TASKS = {"income": "binary", "marital": "binary"}


def epoch_seconds(dataset, epochs):
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for _ in dataset:
            pass
        times.append(time.perf_counter() - start)
    return times


def stream_worker(args):
    """Times `--epochs` passes of each stream over the prepared files with the
    mtrec on PYTHONPATH (one warm-up pass each first); prints JSON."""
    import mtrec

    schema = mtrec.Schema.from_dict(json.loads(Path(args.schema).read_text()))
    options = dict(batch_size=args.batch_size, chunk_rows=args.chunk_rows,
                   shuffle_buffer=args.shuffle_buffer, seed=0)
    streams = {"from_csv": mtrec.data.from_csv(Path(args.folder) / "train.csv", schema,
                                               **options),
               "from_parquet": mtrec.data.from_parquet(Path(args.folder) / "train.parquet",
                                                       schema, **options)}
    out = {}
    for name, dataset in streams.items():
        epoch_seconds(dataset, 1)
        out[name] = epoch_seconds(dataset, args.epochs)
    print(json.dumps(out))


def prepare_files(folder):
    """Census train as CSV and Parquet, and its adapted schema as JSON."""
    import mtrec
    from mtrec.data import census_income

    train, _, _ = census_income.load(group=1)
    schema = mtrec.Schema.infer(train, tasks=TASKS, verbose=False).adapt(train)
    (folder / "schema.json").write_text(json.dumps(schema.to_dict()))
    train.to_csv(folder / "train.csv", index=False)
    train.to_parquet(folder / "train.parquet", index=False)


def time_streams(args, rows):
    """Median s/epoch of each stream per code version, in fresh processes."""
    current = subprocess.run(["git", "-C", str(REPOSITORY), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="mtrec-streams-") as folder, \
            (exported_package(args.rev) if args.rev else contextlib.nullcontext()) as old:
        folder = Path(folder)
        prepare_files(folder)
        versions = {f"{current} (this checkout)": REPOSITORY}
        if args.rev:
            versions = {f"{args.rev} ({resolve(args.rev)[:8]})": old, **versions}
        times = {label: {} for label in versions}
        for _ in range(args.rounds):
            for label, package in versions.items():
                command = [sys.executable, __file__, "--stream-worker", "--folder", str(folder),
                           "--schema", str(folder / "schema.json"),
                           "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                           "--chunk-rows", str(args.chunk_rows),
                           "--shuffle-buffer", str(args.shuffle_buffer)]
                done = subprocess.run(command, capture_output=True, text=True,
                                      env=dict(os.environ, PYTHONPATH=str(package)))
                if done.returncode:
                    raise RuntimeError(f"stream worker ({label}) failed:\n{done.stderr[-4000:]}")
                for name, seconds in json.loads(done.stdout.strip().splitlines()[-1]).items():
                    times[label].setdefault(name, []).extend(seconds)
    print(f"\nstreams: chunk_rows {args.chunk_rows:,}, shuffle_buffer {args.shuffle_buffer:,}, "
          f"{args.epochs} epochs x {args.rounds} round(s) per version (fresh processes, "
          f"interleaved), median s/epoch")
    labels = list(versions)
    print(f"{'stream':<14} " + " ".join(f"{label:>28}" for label in labels)
          + ("   speed-up" if len(labels) == 2 else ""))
    for name in ("from_csv", "from_parquet"):
        medians = [statistics.median(times[label][name]) for label in labels]
        cells = " ".join(f"{m:10.3f} s {rows / m:11,.0f} r/s" for m in medians)
        ratio = f"   {medians[0] / medians[1]:.2f}x" if len(medians) == 2 else ""
        print(f"{name:<14} {cells}{ratio}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--shuffle-buffer", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1,
                        help="stream rounds per version (each --epochs epochs)")
    parser.add_argument("--rev", default=None,
                        help="also time the streams with the mtrec of this git revision")
    parser.add_argument("--no-streams", action="store_true")
    parser.add_argument("--stream-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.stream_worker:
        stream_worker(args)
        return

    import tensorflow as tf

    import mtrec
    from mtrec.data import census_income
    from mtrec.data.pandas_dataset import encode_features

    train, _, _ = census_income.load(group=1)
    schema = mtrec.Schema.infer(train, tasks={"income": "binary", "marital": "binary"},
                                verbose=False).adapt(train)
    fast = mtrec.data.from_pandas(train, schema, batch_size=args.batch_size,
                                  shuffle=True, seed=0)
    columns = (encode_features(schema, schema.raw_features(train)),
               schema.raw_labels(train))
    plain = (tf.data.Dataset.from_tensor_slices(columns)
             .shuffle(len(train), seed=0, reshuffle_each_iteration=True)
             .batch(args.batch_size).prefetch(tf.data.AUTOTUNE))
    # one warm-up epoch each (tracing, first allocation), then interleaved
    epoch_seconds(fast, 1)
    epoch_seconds(plain, 1)
    fast_times, plain_times = [], []
    for _ in range(args.epochs):
        fast_times += epoch_seconds(fast, 1)
        plain_times += epoch_seconds(plain, 1)
    f, p = statistics.median(fast_times), statistics.median(plain_times)
    print(f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"{len(train):,} rows, batch {args.batch_size}, {args.epochs} epochs each "
          f"(interleaved), median s/epoch")
    print(f"{'pipeline':<44} {'s/epoch':>8} {'rows/s':>12}")
    print(f"{'plain tf.data (slices, shuffle, batch)':<44} {p:8.3f} {len(train) / p:12,.0f}")
    print(f"{'mtrec from_pandas (gathered batches)':<44} {f:8.3f} {len(train) / f:12,.0f}")
    print(f"speed-up: {p / f:.2f}x")
    if not args.no_streams:
        del fast, plain, columns
        time_streams(args, len(train))


if __name__ == "__main__":
    main()
