"""Training throughput on Census-Income: mtrec vs a plain-Keras baseline.

In one process, on the same data and batch size, trains for a few epochs:

- `baseline`: a hand-written functional Keras MMoE (8 experts x [16],
  towers [8]) over pre-encoded integer ids and scaled floats, one Embedding
  and one Dense per feature/expert — how peer libraries (DeepCTR-style)
  build it, with inputs encoded outside the model;
- `mtrec`: `mtrec.models.MMoE` with the same sizes on
  `mtrec.data.from_pandas` batches (preprocessing run once, ahead of
  training; experts batched in one einsum);
- `mtrec_raw_inputs`: the same model fed raw columns, so the in-graph
  string lookups run every step (what `from_pandas` avoids).

Reports examples/s (median over epochs after one warm-up epoch) and the
ratio to the baseline.

    python benchmarks/training_throughput.py [--epochs 3] [--output ...]
"""

import argparse
import json
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--output", default="benchmarks/results/training_throughput.json")
    args = parser.parse_args(argv)

    import keras
    import numpy as np
    import tensorflow as tf
    import mtrec
    from mtrec.layers.feature_preprocessing import CATEGORICAL_KEY, NUMERIC_KEY

    train, _, _ = mtrec.data.census_income.load(group=1)
    schema = mtrec.Schema.infer(train, tasks={"income": "binary", "marital": "binary"},
                                verbose=False).adapt(train)
    encoded = mtrec.data.from_pandas(train, schema, batch_size=args.batch_size,
                                     shuffle=True, seed=0)
    baseline_data = encoded.map(lambda x, y: ({"ids": x[CATEGORICAL_KEY],
                                               "floats": x[NUMERIC_KEY]}, y))
    raw = tf.data.Dataset.from_tensor_slices(
        (schema.raw_features(train), schema.raw_labels(train))).shuffle(
        len(train), seed=0).batch(args.batch_size).prefetch(tf.data.AUTOTUNE)

    runs = {
        "baseline": (lambda: baseline_mmoe(schema), baseline_data),
        "mtrec": (lambda: mtrec.models.MMoE(schema, num_experts=8, expert_units=[16],
                                            tower_units=[8]), encoded),
        "mtrec_raw_inputs": (lambda: mtrec.models.MMoE(
            schema, num_experts=8, expert_units=[16], tower_units=[8]), raw),
    }
    results = {}
    for name, (make, data) in runs.items():
        keras.utils.set_random_seed(0)
        model = make()
        if isinstance(model, mtrec.models.MultiTaskModel):
            model.compile(optimizer="adam")
        timer = EpochTimer()
        model.fit(data, epochs=args.epochs + 1, verbose=0, callbacks=[timer()])
        per_epoch = np.median(timer.times[1:])
        results[name] = {"examples_per_s": len(train) / per_epoch,
                         "epoch_seconds": timer.times, "parameters": model.count_params()}
        print(f"{name:>18}: {results[name]['examples_per_s']:>9,.0f} examples/s "
              f"({model.count_params():,} parameters)", flush=True)
    base = results["baseline"]["examples_per_s"]
    for name, row in results.items():
        row["ratio_to_baseline"] = row["examples_per_s"] / base
    print("\n| run | examples/s | ratio to baseline |\n|---|---|---|")
    for name, row in results.items():
        print(f"| {name} | {row['examples_per_s']:,.0f} | {row['ratio_to_baseline']:.2f} |")
    record = {"machine": platform.platform(), "cpu_count": os.cpu_count(),
              "batch_size": args.batch_size, "epochs_timed": args.epochs,
              "tensorflow": tf.__version__, "keras": keras.__version__, "results": results}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(record, indent=1))
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
