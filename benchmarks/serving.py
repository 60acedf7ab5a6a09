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

Before/after in one run: `--baseline-ref REF` also exports each trained
model (the same `.keras` file, so the same weights) with the `mtrec/` code of
git revision REF, in a subprocess, and times that export in this process,
interleaved with the current one (rounds alternate, so load from other
processes hits both alike); the table then has a row per export and the
ratios current/baseline.

Every row also shows the "signature floor": the same 38-input signature
around a trivial body. It is what TensorFlow's Python side spends binding
and checking the named inputs of `signatures["serving_default"](**x)`; no
change to the exported graph can remove it (TF Serving, in C++, does not pay
it). The row "current, tf.Example signature" serves the same export through
its one-input `serving_tf_example` signature (serialized `tf.Example`s,
parsed in the graph), which binds one tensor instead of 38; with
--baseline-ref the baseline export gets the same row. `--int64-examples`
writes the numeric features of those protos as `int64_list` where the value
is an integer (as clients of integer columns do) instead of `float_list`.

    python benchmarks/serving.py [--requests 2000] [--models MMoE] [--baseline-ref main]
        [--int64-examples] [--output benchmarks/results/serving.json]
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


#: Row labels of an export served through its tf.Example signature.
EXAMPLE_SUFFIX = ", tf.Example signature"


def example_label(export_label):
    return export_label + EXAMPLE_SUFFIX


def directory_size(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def timed_calls(fn, inputs, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn(inputs)
        times.append(time.perf_counter() - start)
    return times


def with_int64_numbers(serialized, keys):
    """The `tf.Example`s `serialized` with the float_list of each of `keys`
    that holds an integer value rewritten as an int64_list."""
    import tensorflow as tf

    out = []
    for data in serialized:
        example = tf.train.Example.FromString(data)
        for key in keys:
            feature = example.features.feature.get(key)
            values = feature.float_list.value if feature is not None else []
            if len(values) == 1 and float(values[0]).is_integer():
                value = int(values[0])
                feature.Clear()
                feature.int64_list.value.append(value)
        out.append(example.SerializeToString())
    return out


def cpu_model():
    """The CPU's model name (Linux /proc/cpuinfo), else platform.processor()."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def checkout_package(ref, folder):
    """`git archive` of `mtrec/` at `ref` into `folder` (nothing in the
    working tree changes); returns the commit it resolved to."""
    repo = Path(__file__).resolve().parents[1]
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", ref],
                            check=True, capture_output=True, text=True).stdout.strip()
    archive = subprocess.run(["git", "-C", str(repo), "archive", "--format=tar", commit, "mtrec"],
                             check=True, capture_output=True).stdout
    archive_path = Path(folder) / "mtrec.tar"
    archive_path.write_bytes(archive)
    with tarfile.open(archive_path) as tar:
        tar.extractall(folder, filter="data")
    return commit


def export_with_code(code_folder, keras_file, target):
    """Export `keras_file` with the mtrec package under `code_folder`."""
    script = ("import sys, keras, mtrec\n"
              "assert mtrec.__file__.startswith(sys.argv[1]), mtrec.__file__\n"
              "mtrec.export.saved_model(keras.saving.load_model(sys.argv[2]), sys.argv[3])\n")
    env = {**os.environ, "PYTHONPATH": str(code_folder), "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", script, str(code_folder), str(keras_file),
                             str(target)], capture_output=True, text=True, env=env,
                            cwd=code_folder)  # else `-c` imports the working tree's mtrec
    if result.returncode != 0:
        raise RuntimeError(f"Exporting {keras_file} with the code in {code_folder} failed:\n"
                           f"{result.stderr[-3000:]}")
    return Path(target)


def floor_export(schema, target):
    """A SavedModel with `schema`'s raw input signature and a trivial body."""
    import tensorflow as tf
    from mtrec.export import raw_input_signature

    module = tf.Module()
    tasks = schema.task_names
    first = schema.features[0].name
    module.serve = tf.function(
        lambda features: {t: tf.zeros(tf.shape(features[first])[:1]) for t in tasks},
        input_signature=[raw_input_signature(schema)])
    tf.saved_model.save(module, str(target), signatures={"serving_default": module.serve})
    return Path(target)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--models", default="SharedBottom,MMoE,PLE")
    parser.add_argument("--baseline-ref", default=None,
                        help="git revision whose mtrec/ code exports the same trained "
                             "models for a same-run before/after comparison")
    parser.add_argument("--rounds", type=int, default=10,
                        help="interleaved timing rounds per model")
    parser.add_argument("--int64-examples", action="store_true",
                        help="send integer-valued numeric features of the tf.Example "
                             "rows as int64_list instead of float_list")
    parser.add_argument("--output", default="benchmarks/results/serving.json")
    args = parser.parse_args(argv)

    import numpy as np
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import keras
    import mtrec
    from mtrec.export.example_parsing import numeric_scalars
    from mtrec.export.saved_model import EXAMPLE_SIGNATURE, serving_input_names, to_tf_examples

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
    export_root = Path(tempfile.mkdtemp(prefix="mtrec_serving_bench_"))
    baseline_code = export_root / "baseline_code"
    baseline_commit = None
    if args.baseline_ref:
        baseline_code.mkdir()
        baseline_commit = checkout_package(args.baseline_ref, baseline_code)
    floor_path = floor_export(schema, export_root / "floor")
    floor_module = tf.saved_model.load(str(floor_path))
    for name in args.models.split(","):
        model = mtrec.models.MODELS[name](schema, tower_units=[8], **model_args[name])
        model.compile()
        model.fit(mtrec.data.from_pandas(train, schema, batch_size=1024, shuffle=True,
                                         seed=0), epochs=1, verbose=0)
        exports = {"current": mtrec.export.saved_model(model, export_root / name)}
        if baseline_commit:
            model.save(export_root / f"{name}.keras")
            exports[f"baseline {baseline_commit}"] = export_with_code(
                baseline_code, export_root / f"{name}.keras", export_root / f"{name}_baseline")
        loaded = {label: tf.saved_model.load(str(path)) for label, path in exports.items()}
        loaded["signature floor"] = floor_module
        calls = {label: (lambda x, f=module.signatures["serving_default"]: f(**x))
                 for label, module in loaded.items()}
        # The same exports through their one-input tf.Example signature: one
        # serialized string tensor to bind instead of 38 named tensors.
        for label in exports:
            example_fn = loaded[label].signatures[EXAMPLE_SIGNATURE]
            calls[example_label(label)] = lambda x, f=example_fn: f(examples=x)
        expected = model.predict_on_batch(big)
        examples = {"b1": to_tf_examples(schema, valid.head(1)),
                    "b1024": to_tf_examples(schema, valid.head(1024))}
        if args.int64_examples:
            numbers = [serving_input_names(schema)[f] for f in numeric_scalars(schema)]
            examples = {k: with_int64_numbers(v, numbers) for k, v in examples.items()}
        examples = {k: tf.constant(v) for k, v in examples.items()}
        batches = {label: ({"b1": examples["b1"], "b1024": examples["b1024"]}
                           if label.endswith(EXAMPLE_SUFFIX) else {"b1": one_t, "b1024": big_t})
                   for label in calls}
        for label, call in calls.items():
            if label == "signature floor":
                continue
            served = call(batches[label]["b1024"])
            worst = max(float(np.max(np.abs(served[t].numpy() - expected[t]))) for t in expected)
            if worst > 1e-5:
                raise RuntimeError(f"{name} ({label}): served predictions differ from Keras "
                                   f"by {worst:.2e} (> 1e-5).")
        call_keras = lambda x: model.predict_on_batch(x)
        for label, call in calls.items():
            timed_calls(call, batches[label]["b1"], 50)  # warm-up / tracing
        timed_calls(call_keras, one, 50)
        # Rounds alternate between the exports so that load from other
        # processes falls on all of them alike.
        times = {label: {"b1": [], "b1024": []} for label in calls}
        per_round = max(1, args.requests // args.rounds)
        for _ in range(args.rounds):
            for label, call in calls.items():
                times[label]["b1"] += timed_calls(call, batches[label]["b1"], per_round)
                times[label]["b1024"] += timed_calls(call, batches[label]["b1024"],
                                                     max(1, 30 // args.rounds))
        keras_1 = np.array(timed_calls(call_keras, one, args.requests)) * 1e3
        keras_big = np.median(timed_calls(call_keras, big, 30))
        for label, path in [*exports.items(),
                            *((example_label(k), p) for k, p in exports.items()),
                            ("signature floor", floor_path)]:
            served_1 = np.array(times[label]["b1"]) * 1e3
            row = {
                "model": name, "export": label, "parameters": model.count_params(),
                "export_mb": directory_size(path) / 2**20,
                "served_b1_p50_ms": float(np.percentile(served_1, 50)),
                "served_b1_p99_ms": float(np.percentile(served_1, 99)),
                "keras_b1_p50_ms": float(np.percentile(keras_1, 50)),
                "keras_b1_p99_ms": float(np.percentile(keras_1, 99)),
                "served_b1024_rows_per_s": 1024 / float(np.median(times[label]["b1024"])),
                "keras_b1024_rows_per_s": 1024 / keras_big,
            }
            row["b1_p50_speedup_vs_keras"] = row["keras_b1_p50_ms"] / row["served_b1_p50_ms"]
            results.append(row)
            print(json.dumps(row), flush=True)

    header = ("| model | export | params | export MB | served b1 p50 ms | p99 ms "
              "| keras b1 p50 ms | ratio keras/served | served b1024 rows/s "
              "| keras b1024 rows/s |")
    print("\n" + header + "\n|" + "---|" * 10)
    for r in results:
        print(f"| {r['model']} | {r['export']} | {r['parameters']:,} | {r['export_mb']:.2f} "
              f"| {r['served_b1_p50_ms']:.3f} | {r['served_b1_p99_ms']:.3f} "
              f"| {r['keras_b1_p50_ms']:.3f} | {r['b1_p50_speedup_vs_keras']:.1f}x "
              f"| {r['served_b1024_rows_per_s']:,.0f} | {r['keras_b1024_rows_per_s']:,.0f} |")
    if baseline_commit:
        print(f"\ncurrent vs baseline {baseline_commit} (same weights, same run):")
        for name in args.models.split(","):
            rows = {r["export"]: r for r in results if r["model"] == name}
            now, before = rows["current"], rows[f"baseline {baseline_commit}"]
            floor = rows["signature floor"]["served_b1_p50_ms"]
            print(f"  {name}: b1 p50 {before['served_b1_p50_ms']:.3f} -> "
                  f"{now['served_b1_p50_ms']:.3f} ms "
                  f"(x{before['served_b1_p50_ms'] / now['served_b1_p50_ms']:.2f}; "
                  f"above the {floor:.3f} ms floor: "
                  f"{before['served_b1_p50_ms'] - floor:.3f} -> "
                  f"{now['served_b1_p50_ms'] - floor:.3f} ms), "
                  f"p99 {before['served_b1_p99_ms']:.3f} -> {now['served_b1_p99_ms']:.3f} ms, "
                  f"b1024 {before['served_b1024_rows_per_s']:,.0f} -> "
                  f"{now['served_b1024_rows_per_s']:,.0f} rows/s "
                  f"(x{now['served_b1024_rows_per_s'] / before['served_b1024_rows_per_s']:.2f})")
            now = rows[example_label("current")]
            before = rows[example_label(f"baseline {baseline_commit}")]
            print(f"  {name} tf.Example: b1 p50 {before['served_b1_p50_ms']:.3f} -> "
                  f"{now['served_b1_p50_ms']:.3f} ms, b1024 "
                  f"{before['served_b1024_rows_per_s']:,.0f} -> "
                  f"{now['served_b1024_rows_per_s']:,.0f} rows/s "
                  f"(x{now['served_b1024_rows_per_s'] / before['served_b1024_rows_per_s']:.2f})")
    print(f"CPU: {cpu_model()}, {args.threads} TF thread(s)")
    record = {"machine": platform.platform(), "processor": cpu_model(),
              "cpu_count": os.cpu_count(), "threads": args.threads,
              "requests": args.requests, "rounds": args.rounds,
              "int64_examples": args.int64_examples,
              "baseline_commit": baseline_commit, "tensorflow": tf.__version__,
              "keras": keras.__version__, "mtrec": mtrec.__version__, "results": results}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(record, indent=1))
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
