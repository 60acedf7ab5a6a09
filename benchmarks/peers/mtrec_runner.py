"""One peers-benchmark run of mtrec: a model, a seed, the matched protocol.

Uses mtrec's public API as a user would: the Census-Income frames from
mtrec's loader (the rows `prepare.py` chose), mtrec's schema with 8-dim
embeddings, `mtrec.data.from_pandas` batches, the named model,
`compile(optimizer=keras.optimizers.Adam(1e-3))` and `fit` with
`mtrec.training.early_stopping` on the mean validation AUC (best weights
restored). Everything else is the library's default, so the benchmark
measures whatever mtrec's defaults are at the commit it runs.

Timed: each epoch's training pass (epoch start to the start of its
validation pass; the first epoch, with tracing, is left out of the
examples/s), and `model.predict` over the test split after one warm-up
batch. The encoding `from_pandas` runs once before training is not timed,
as the peers' encoding (done by `prepare.py`) is not.

After the result is measured, the runner checks that its own encoding of
the rows equals the prepared arrays the peers read, and fails otherwise.

    python benchmarks/peers/mtrec_runner.py --model MMoE --seed 1 \
        --data runs/peers/data/census_g1-all --threads 2
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import protocol  # noqa: E402  (benchmarks/peers/protocol.py)


def build_model(mtrec, schema, name, num_experts=protocol.NUM_EXPERTS):
    if name == "SharedBottom":
        return mtrec.models.SharedBottom(schema, bottom_units=protocol.BOTTOM_UNITS,
                                         tower_units=protocol.TOWER_UNITS)
    if name == "MMoE":
        return mtrec.models.MMoE(schema, num_experts=num_experts,
                                 expert_units=protocol.EXPERT_UNITS,
                                 tower_units=protocol.TOWER_UNITS)
    return mtrec.models.PLE(schema, num_levels=protocol.NUM_LEVELS,
                            num_specific_experts=protocol.NUM_SPECIFIC_EXPERTS,
                            num_shared_experts=protocol.NUM_SHARED_EXPERTS,
                            expert_units=protocol.EXPERT_UNITS,
                            tower_units=protocol.TOWER_UNITS)


def check_same_encoding(schema, frames, data_dir):
    """Fail unless mtrec's encoding of these rows equals the prepared arrays."""
    from mtrec.data.pandas_dataset import encode_features
    from mtrec.layers.feature_preprocessing import CATEGORICAL_KEY, NUMERIC_KEY

    for split, df in frames.items():
        prepared = protocol.load_split(data_dir, split)
        encoded = encode_features(schema, schema.raw_features(df))
        if not (np.array_equal(encoded[CATEGORICAL_KEY], prepared["ids"])
                and np.allclose(encoded[NUMERIC_KEY], prepared["floats"], atol=1e-6)):
            raise RuntimeError(
                f"mtrec's encoding of the {split} rows differs from {data_dir}/"
                f"{split}.npz, so the libraries would not see the same inputs; "
                f"rebuild the cache (benchmarks/peers/prepare.py --rebuild).")


def main(argv=None):
    args = protocol.runner_arguments(__doc__.split("\n\n")[0]).parse_args(argv)
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import mtrec
    from prepare import census_schema

    manifest = protocol.read_manifest(args.data)
    loaded = dict(zip(protocol.SPLITS, mtrec.data.census_income.load(
        group=manifest["group"], seed=manifest["loader_seed"])))
    frames = {}
    for split in protocol.SPLITS:
        rows = protocol.load_split(args.data, split)["rows"]
        whole = np.array_equal(rows, np.arange(len(loaded[split])))
        # All rows: the loader's frame itself, not a copy beside it.
        frames[split] = loaded[split] if whole else \
            loaded[split].iloc[rows].reset_index(drop=True)
    del loaded
    keras.utils.set_random_seed(args.seed)
    schema = census_schema(frames["train"])
    train = mtrec.data.from_pandas(frames["train"], schema, batch_size=args.batch_size,
                                   shuffle=True, seed=args.seed)
    valid = mtrec.data.from_pandas(frames["valid"], schema, batch_size=args.batch_size)
    test = mtrec.data.from_pandas(frames["test"], schema,
                                  batch_size=protocol.PREDICT_BATCH_SIZE, labels=False)
    test_labels = schema.raw_labels(frames["test"])
    memory = protocol.data_loaded()

    model = build_model(mtrec, schema, args.model, args.num_experts)
    steps = {} if args.steps_per_execution is None else {
        "steps_per_execution": args.steps_per_execution}
    model.compile(optimizer=keras.optimizers.Adam(protocol.LEARNING_RATE), **steps)
    timer = protocol.train_pass_timer(keras.callbacks.Callback)
    stopping = mtrec.training.early_stopping("mean", patience=args.patience)
    model.fit(train, validation_data=valid, epochs=args.max_epochs,
              callbacks=[timer, *stopping], verbose=0)
    best_epoch = stopping[-1].best_epoch + 1

    model.predict(test.take(1), verbose=0)  # warm-up: traces the predict function
    with protocol.Stopwatch() as clock:
        predictions = model.predict(test, verbose=0)
    record = protocol.result(
        "mtrec", args, versions={"mtrec": mtrec.__version__, "keras": keras.__version__,
                                 "tensorflow": tf.__version__, "numpy": np.__version__},
        test_auc_by_task=protocol.test_auc(test_labels, predictions),
        epoch_seconds=timer.epoch_seconds, best_epoch=best_epoch,
        train_rows=len(frames["train"]), predict_rows=len(frames["test"]),
        predict_seconds=clock.seconds, memory=memory,
        parameters=model.count_params())
    check_same_encoding(schema, frames, args.data)
    protocol.emit(record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
