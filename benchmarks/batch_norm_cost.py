"""What `batch_norm=True` costs in training time, on Census-Income.

In one process, on the same encoded batches (`mtrec.data.from_pandas`,
preprocessing run once ahead of training) and batch size, trains each
model for a warm-up epoch plus `--epochs` timed ones:

- `mmoe`: `mtrec.models.MMoE` (8 experts x [16], towers [8]), the baseline;
- `mmoe_batch_norm`: the same with `batch_norm=True` (batch normalisation
  per expert and unit in the experts, and in the towers);
- `ple`, `ple_batch_norm`: `mtrec.models.PLE` (2 levels, 2 + 2 experts of
  [16], towers [8]) without and with it.

Reports examples/s (median over the timed epochs), the ratio of each
batch-norm run to its plain twin, and the parameter counts (trainable; the
moving statistics are counted apart).

    python benchmarks/batch_norm_cost.py [--epochs 3] [--output ...]
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--output", default="benchmarks/results/batch_norm_cost.json")
    args = parser.parse_args(argv)

    import keras
    import numpy as np
    import tensorflow as tf
    import mtrec

    train, _, _ = mtrec.data.census_income.load(group=1)
    schema = mtrec.Schema.infer(train, tasks={"income": "binary", "marital": "binary"},
                                verbose=False).adapt(train)
    data = mtrec.data.from_pandas(train, schema, batch_size=args.batch_size,
                                  shuffle=True, seed=0)
    mmoe = dict(num_experts=8, expert_units=[16], tower_units=[8])
    ple = dict(num_levels=2, num_specific_experts=2, num_shared_experts=2,
               expert_units=[16], tower_units=[8])
    runs = {
        "mmoe": (mtrec.models.MMoE, dict(mmoe)),
        "mmoe_batch_norm": (mtrec.models.MMoE, dict(mmoe, batch_norm=True)),
        "ple": (mtrec.models.PLE, dict(ple)),
        "ple_batch_norm": (mtrec.models.PLE, dict(ple, batch_norm=True)),
    }

    class EpochTimes(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.times = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    results = {}
    for name, (cls, kwargs) in runs.items():
        keras.utils.set_random_seed(0)
        model = cls(schema, **kwargs)
        model.compile(optimizer="adam")
        timer = EpochTimes()
        model.fit(data, epochs=args.epochs + 1, verbose=0, callbacks=[timer])
        per_epoch = float(np.median(timer.times[1:]))
        trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
        results[name] = {"examples_per_s": len(train) / per_epoch,
                         "epoch_seconds": timer.times, "trainable_parameters": trainable,
                         "non_trainable_parameters": int(model.count_params()) - trainable}
        print(f"{name:>16}: {results[name]['examples_per_s']:>9,.0f} examples/s "
              f"(median of {args.epochs} epochs; {trainable:,} trainable + "
              f"{results[name]['non_trainable_parameters']:,} moving statistics)",
              flush=True)
    for name, row in results.items():
        plain = name.removesuffix("_batch_norm")
        row["ratio_to_plain"] = row["examples_per_s"] / results[plain]["examples_per_s"]
    print("\n| run | examples/s | ratio to the same model without batch norm |\n|---|---|---|")
    for name, row in results.items():
        print(f"| {name} | {row['examples_per_s']:,.0f} | {row['ratio_to_plain']:.2f} |")
    record = {"machine": platform.platform(), "cpu_count": os.cpu_count(),
              "batch_size": args.batch_size, "epochs_timed": args.epochs,
              "train_rows": len(train), "tensorflow": tf.__version__,
              "keras": keras.__version__, "results": results}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(record, indent=1))
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
