"""Training throughput on Census-Income: mtrec vs a plain-Keras baseline.

In one process, on the same data and batch size, trains for a few epochs:

- `baseline`: a hand-written functional Keras MMoE (8 experts x [16],
  towers [8]) over pre-encoded integer ids and scaled floats, one Embedding
  and one Dense per feature/expert — how peer libraries (DeepCTR-style)
  build it, with inputs encoded outside the model (Keras' own
  `jit_compile="auto"` leaves it uncompiled on a CPU-only host);
- `mtrec`: the mtrec model with the same sizes on `mtrec.data.from_pandas`
  batches (preprocessing run once, ahead of training; experts batched in one
  einsum) with the library's defaults: `jit_compile="auto"` compiles the
  training step with XLA, since these fits run >= 1000 steps;
- `mtrec_uncompiled`: the same with `jit_compile=False` (the step before XLA);
- `mtrec_raw_inputs`: the same model fed batches of raw columns (gathered
  batch-wise by shuffled row index, as `from_pandas` gathers encoded ones):
  `fit` maps the model's preprocessing over them in the input pipeline, so
  the string lookups run every step, a batch ahead of it;
- `mtrec_raw_rowwise`: the same raw columns through a row-wise pipeline
  (`from_tensor_slices` -> `shuffle(rows)` -> `batch`), which moves every
  row of every column through tf.data one at a time (what the
  batch-wise pipeline saves).

Reports examples/s (median over epochs after one warm-up epoch) and the
ratio to the baseline. `--models` adds SharedBottom and PLE (no baseline of
their own: read them against `mtrec_uncompiled`). `--sweep experts` and
`--sweep batch` print scaling curves instead (`--steps-per-execution 4 16`
adds MMoE runs with Keras' steps_per_execution, one Python call per 4 or
16 steps): examples/s of the baseline
(a Python loop of Dense experts) and of mtrec (one einsum; XLA and not)
for 4..64 experts, and for batch sizes 256..8192.

    python benchmarks/training_throughput.py [--epochs 5] [--models MMoE,SharedBottom,PLE]
        [--sweep experts|batch] [--output ...]
"""

import argparse
import json
import statistics
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


class EpochTimer:
    def __init__(self):
        self.times = []

    def __call__(self):
        import keras

        timer = self

        class _Callback(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch, logs=None):
                timer.times.append(time.perf_counter() - self.start)

        return _Callback()


def baseline_mmoe(schema, num_experts=8, expert_units=16, tower_units=8):
    """Functional Keras MMoE over pre-encoded inputs, one layer per expert."""
    import keras
    from mtrec.layers.feature_embedding import categorical_cardinality

    categorical = schema.features_of("categorical")
    ids = keras.Input((len(categorical),), dtype="int64", name="ids")
    dense = keras.Input((2 * len(schema.features_of("numeric")),), name="floats")
    parts = [keras.layers.Flatten()(keras.layers.Embedding(
        categorical_cardinality(schema, spec), spec.embedding_dim)(ids[:, i:i + 1]))
        for i, spec in enumerate(categorical)]
    x = keras.layers.Concatenate()(parts + [dense])
    experts = [keras.layers.Dense(expert_units, activation="relu")(x)
               for _ in range(num_experts)]
    stacked = keras.layers.Concatenate(axis=1)([keras.layers.Reshape((1, expert_units))(e)
                                                 for e in experts])
    outputs = {}
    for task in schema.task_names:
        gate = keras.layers.Dense(num_experts, activation="softmax")(x)
        mixed = keras.layers.Dot(axes=(1, 1))([gate, stacked])
        tower = keras.layers.Dense(tower_units, activation="relu")(mixed)
        outputs[task] = keras.layers.Reshape((), name=task)(
            keras.layers.Dense(1, activation="sigmoid")(tower))
    model = keras.Model({"ids": ids, "floats": dense}, outputs)
    model.compile(optimizer="adam", loss={t: "binary_crossentropy" for t in outputs},
                  metrics={t: [keras.metrics.AUC(name="auc")] for t in outputs})
    return model


MODEL_SIZES = {
    "MMoE": dict(num_experts=8, expert_units=[16]),
    "SharedBottom": dict(bottom_units=[128]),
    "PLE": dict(num_levels=2, num_specific_experts=1, num_shared_experts=2,
                expert_units=[16]),
}
EXPERT_SWEEP = (4, 8, 16, 32, 64)
BATCH_SWEEP = (256, 1024, 4096, 8192)


def timed_fit(make, data, epochs, rows):
    """Examples/s of `make()` trained on `data` for `epochs` + 1 epochs
    (median epoch after the first, which pays tracing and compilation)."""
    import keras
    import numpy as np

    import mtrec

    keras.utils.set_random_seed(0)
    model = make()
    timer = EpochTimer()
    model.fit(data, epochs=epochs + 1, verbose=0, callbacks=[timer()])
    per_epoch = float(np.median(timer.times[1:]))
    compiled = (model.__dict__.get("_xla_plan", {}).get("train", False)
                if isinstance(model, mtrec.models.MultiTaskModel) else False)
    return {"examples_per_s": rows / per_epoch, "epoch_seconds": timer.times,
            "parameters": model.count_params(), "xla": bool(compiled)}


def mtrec_model(schema, name, jit_compile="auto", steps_per_execution=1, **sizes):
    import mtrec

    def make():
        model = getattr(mtrec.models, name)(schema, tower_units=[8],
                                            **{**MODEL_SIZES[name], **sizes})
        model.compile(optimizer="adam", jit_compile=jit_compile,
                      steps_per_execution=steps_per_execution)
        return model
    return make


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5,
                        help="timed epochs (after one warm-up epoch)")
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--models", default="MMoE",
                        help="comma-separated: MMoE, SharedBottom, PLE")
    parser.add_argument("--sweep", choices=["experts", "batch"], default=None)
    parser.add_argument("--steps-per-execution", type=int, nargs="*", default=[],
                        help="also run MMoE with these steps_per_execution (e.g. 4 16)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="interleaved rounds of every run; the median is reported")
    parser.add_argument("--output", default="benchmarks/results/training_throughput.json")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf
    import mtrec
    from mtrec.data.pandas_dataset import gathered_batches
    from mtrec.layers.feature_preprocessing import CATEGORICAL_KEY, NUMERIC_KEY

    train, _, _ = mtrec.data.census_income.load(group=1)
    schema = mtrec.Schema.infer(train, tasks={"income": "binary", "marital": "binary"},
                                verbose=False).adapt(train)

    def encoded_data(batch_size):
        return mtrec.data.from_pandas(train, schema, batch_size=batch_size, shuffle=True,
                                      seed=0)

    def buffer_shuffled_data(batch_size):
        # from_pandas as it was before one permutation per epoch: every row
        # index through a whole-epoch shuffle buffer (the "before" of that change)
        from mtrec.data import pandas_dataset

        def buffer_indices(rows, batch_size, shuffle, seed, drop_remainder):
            return tf.data.Dataset.range(rows).shuffle(
                rows, seed=seed, reshuffle_each_iteration=True).batch(
                batch_size, drop_remainder=drop_remainder)

        current = pandas_dataset._batch_indices
        pandas_dataset._batch_indices = buffer_indices
        try:
            return encoded_data(batch_size)
        finally:
            pandas_dataset._batch_indices = current

    def baseline_data(batch_size):
        return encoded_data(batch_size).map(
            lambda x, y: ({"ids": x[CATEGORICAL_KEY], "floats": x[NUMERIC_KEY]}, y))

    planned = []

    def run(name, make, data):
        planned.append((name, make, data))

    if args.sweep == "experts":
        for experts in EXPERT_SWEEP:
            run(f"baseline/experts={experts}",
                lambda: baseline_mmoe(schema, num_experts=experts), baseline_data(1024))
            run(f"mtrec/experts={experts}",
                mtrec_model(schema, "MMoE", True, num_experts=experts), encoded_data(1024))
            run(f"mtrec_uncompiled/experts={experts}",
                mtrec_model(schema, "MMoE", False, num_experts=experts), encoded_data(1024))
    elif args.sweep == "batch":
        for batch in BATCH_SWEEP:
            run(f"baseline/batch={batch}", lambda: baseline_mmoe(schema), baseline_data(batch))
            run(f"mtrec/batch={batch}", mtrec_model(schema, "MMoE", True), encoded_data(batch))
            run(f"mtrec_uncompiled/batch={batch}", mtrec_model(schema, "MMoE", False),
                encoded_data(batch))
    else:
        run("baseline", lambda: baseline_mmoe(schema), baseline_data(args.batch_size))
        for name in args.models.split(","):
            prefix = "mtrec" if name == "MMoE" else f"mtrec_{name}"
            run(prefix, mtrec_model(schema, name), encoded_data(args.batch_size))
            run(f"{prefix}_uncompiled", mtrec_model(schema, name, False),
                encoded_data(args.batch_size))
            if name == "MMoE":
                raw_columns = (schema.raw_features(train), schema.raw_labels(train))
                run("mtrec_raw_inputs", mtrec_model(schema, name), gathered_batches(
                    raw_columns, len(train), args.batch_size, shuffle=True, seed=0))
                rowwise = tf.data.Dataset.from_tensor_slices(raw_columns).shuffle(
                    len(train), seed=0).batch(args.batch_size).prefetch(tf.data.AUTOTUNE)
                run("mtrec_raw_rowwise", mtrec_model(schema, name), rowwise)
                run("mtrec_buffer_shuffle", mtrec_model(schema, name),
                    buffer_shuffled_data(args.batch_size))
                for steps in args.steps_per_execution:
                    run(f"mtrec_steps_per_execution={steps}",
                        mtrec_model(schema, name, steps_per_execution=steps),
                        encoded_data(args.batch_size))

    # Rounds interleave the runs (A B C, A B C, ...) so that a shared
    # machine's drift in load reaches every run alike; the median is kept.
    rounds = {}
    for round_number in range(1, args.rounds + 1):
        for name, make, data in planned:
            row = timed_fit(make, data, args.epochs, len(train))
            rounds.setdefault(name, []).append(row)
            print(f"round {round_number} {name:>28}: {row['examples_per_s']:>9,.0f} examples/s "
                  f"({row['parameters']:,} parameters{', XLA' if row['xla'] else ''})",
                  flush=True)
    results = {}
    for name, rows in rounds.items():
        speeds = [r["examples_per_s"] for r in rows]
        results[name] = {**rows[0], "examples_per_s": statistics.median(speeds),
                         "examples_per_s_rounds": speeds,
                         "epoch_seconds": [r["epoch_seconds"] for r in rows]}
    print(f"\nMedian over {args.rounds} interleaved round(s):")
    print("\n| run | examples/s | ratio to baseline | XLA |\n|---|---|---|---|")
    for name, row in results.items():
        base_name = "baseline" + (name[name.index("/"):] if "/" in name else "")
        row["ratio_to_baseline"] = row["examples_per_s"] / results[base_name]["examples_per_s"]
        print(f"| {name} | {row['examples_per_s']:,.0f} | {row['ratio_to_baseline']:.2f} "
              f"| {'yes' if row['xla'] else 'no'} |")
    record = {"machine": platform.platform(), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
              "batch_size": args.batch_size, "epochs_timed": args.epochs, "sweep": args.sweep,
              "rounds": args.rounds,
              "tensorflow": tf.__version__, "keras": keras.__version__, "results": results}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(record, indent=1))
    print(f"\nCPU: {record['cpu']} ({os.cpu_count()} cores); wrote {args.output}")


def cpu_model():
    """The CPU's model name (Linux), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    main()
