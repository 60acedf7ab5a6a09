"""Serving latency and export size: SavedModel signature vs Keras predict.

For SharedBottom, MMoE and PLE on Census-Income (group 1 schema), measures
through the loaded `serving_default` signature:
- batch 1: p50 / p99 latency over many single-row requests;
- batch 1024: rows per second;
- the same for the Keras model's `predict_on_batch` in the same process,
  and the ratio;
- the export's size on disk.

Latency does not depend on the weights' values, so models are trained one
short epoch only (to be realistic, not accurate). Threads are pinned to one
core (TF intra/inter-op threads = 1) unless --threads is given.

    python benchmarks/serving.py [--requests 2000] [--output benchmarks/results/serving.json]
"""

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def directory_size(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def timed_calls(fn, inputs, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(inputs)
        times.append(time.perf_counter() - start)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", default="SharedBottom,MMoE,PLE")
    parser.add_argument("--output", default="benchmarks/results/serving.json")
    args = parser.parse_args(argv)

    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import keras
    import mtrec

    keras.utils.set_random_seed(0)
    train, valid, _ = mtrec.data.census_income.load(group=1)
    schema = mtrec.Schema.infer(train, tasks={"income": "binary", "marital": "binary"},
                                verbose=False).adapt(train)
    model_args = {
        "SharedBottom": dict(bottom_units=[64]),
        "MMoE": dict(num_experts=8, expert_units=[16]),
        "PLE": dict(num_levels=2, num_specific_experts=2, num_shared_experts=2,
                    expert_units=[16]),
    }
    one = schema.raw_features(valid.head(1))
    big = schema.raw_features(valid.head(1024))
    to_tensors = lambda raw: {k: tf.constant(v.astype(str) if v.dtype == object else v)
                              for k, v in raw.items()}
    one_t, big_t = to_tensors(one), to_tensors(big)
    results = []
    export_root = Path(os.environ.get("TMPDIR", "/tmp")) / "mtrec_serving_bench"
    for name in args.models.split(","):
        model = mtrec.models.MODELS[name](schema, tower_units=[8], **model_args[name])
        model.compile()
        model.fit(mtrec.data.from_pandas(train, schema, batch_size=1024, shuffle=True,
                                         seed=0), epochs=1, verbose=0)
        path = mtrec.export.saved_model(model, export_root / name)
        serve = tf.saved_model.load(str(path)).signatures["serving_default"]
        call_served = lambda x: serve(**x)
        call_keras = lambda x: model.predict_on_batch(x)
        for fn, x in ((call_served, one_t), (call_keras, one)):
            timed_calls(fn, x, 50)  # warm-up / tracing
        served_1 = np.array(timed_calls(call_served, one_t, args.requests)) * 1e3
        keras_1 = np.array(timed_calls(call_keras, one, args.requests)) * 1e3
        served_big = np.median(timed_calls(call_served, big_t, 30))
        keras_big = np.median(timed_calls(call_keras, big, 30))
        row = {
            "model": name, "parameters": model.count_params(),
            "export_mb": directory_size(path) / 2**20,
            "served_b1_p50_ms": float(np.percentile(served_1, 50)),
            "served_b1_p99_ms": float(np.percentile(served_1, 99)),
            "keras_b1_p50_ms": float(np.percentile(keras_1, 50)),
            "keras_b1_p99_ms": float(np.percentile(keras_1, 99)),
            "served_b1024_rows_per_s": 1024 / served_big,
            "keras_b1024_rows_per_s": 1024 / keras_big,
        }
        row["b1_p50_speedup_vs_keras"] = row["keras_b1_p50_ms"] / row["served_b1_p50_ms"]
        results.append(row)
        print(json.dumps(row), flush=True)

    header = ("| model | params | export MB | served b1 p50 ms | p99 ms | keras b1 p50 ms "
              "| ratio keras/served | served b1024 rows/s | keras b1024 rows/s |")
    print("\n" + header + "\n|" + "---|" * 9)
    for r in results:
        print(f"| {r['model']} | {r['parameters']:,} | {r['export_mb']:.2f} "
              f"| {r['served_b1_p50_ms']:.3f} | {r['served_b1_p99_ms']:.3f} "
              f"| {r['keras_b1_p50_ms']:.3f} | {r['b1_p50_speedup_vs_keras']:.1f}x "
              f"| {r['served_b1024_rows_per_s']:,.0f} | {r['keras_b1024_rows_per_s']:,.0f} |")
    record = {"machine": platform.platform(), "processor": platform.processor(),
              "cpu_count": os.cpu_count(), "threads": args.threads,
              "requests": args.requests, "tensorflow": tf.__version__,
              "keras": keras.__version__, "mtrec": mtrec.__version__, "results": results}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(record, indent=1))
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
