"""Input pipeline: seconds per epoch of iterating `mtrec.data.from_pandas`
(batches gathered by shuffled row index) against the plain tf.data pipeline
over the same encoded columns (`from_tensor_slices` -> `shuffle` -> `batch`),
in the same process, on Census-Income group 1 train (199,523 rows).

    python benchmarks/input_pipeline.py [--epochs 5] [--batch-size 1024]

Prints the median seconds per epoch of each and their ratio; nothing
trains, so this is the pipeline's own cost, which the training step would
otherwise share its cores with.
"""

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def epoch_seconds(dataset, epochs):
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for _ in dataset:
            pass
        times.append(time.perf_counter() - start)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=1024)
    args = parser.parse_args(argv)

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


if __name__ == "__main__":
    main()
