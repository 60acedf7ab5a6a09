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

The row "current, packed signature" serves the current export through
`serving_packed` (one matrix per raw dtype: float32 `(batch, 7)` and string
`(batch, 31)` on Census; `mtrec.export.packed_inputs`), beside its own floor
("packed signature floor": the same two inputs, trivial body). The rows
"..., flat call" call the same signature's graph function with its flat list
of tensors (`ConcreteFunction._call_flat`, a private TF API used only here),
skipping TF's Python binding and checking of named inputs: what is left is
close to what a caller without TF's Python layer (TF Serving, in C++; it pays
its own request decoding instead) spends in the graph.

Before the rows, a breakdown times pieces of the current model as plain
`tf.function`s on the same batches (interleaved rounds, medians): the
38-input and the 2-input floors, the preprocessing alone (raw and packed
inputs), stacking the 31 string columns, fingerprint + fused lookup, and the
model on already encoded inputs (embedding, experts, gates, towers); the
record keeps it under `breakdown`.

    python benchmarks/serving.py [--requests 2000] [--models MMoE] [--baseline-ref main]
        [--int64-examples] [--output benchmarks/results/serving.json]

benchmarks/report.py renders the record as the "Serving latency" section of
RESULTS.md.
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
#: ... through its packed signature, and through a signature's flat call.
PACKED_SUFFIX = ", packed signature"
FLAT_SUFFIX = ", flat call"
FLOOR, PACKED_FLOOR = "signature floor", "packed signature floor"


def example_label(export_label):
    return export_label + EXAMPLE_SUFFIX


def flat_call(signature):
    """A call of `signature` (a loaded ConcreteFunction) on a dict of named
    tensors through its flat list of tensors, in the order of its flattened
    input signature, skipping TF's keyword binding and checks."""
    import tensorflow as tf

    names = [spec.name for spec in tf.nest.flatten(signature.structured_input_signature[1])]
    captured = signature.captured_inputs
    return lambda x: signature._call_flat([x[n] for n in names], captured)


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


def packed_floor_export(schema, target):
    """A SavedModel with `schema`'s packed input signature and a trivial body."""
    import tensorflow as tf
    from mtrec.export.packed_inputs import packed_input_signature

    module = tf.Module()
    tasks = schema.task_names
    module.serve = tf.function(
        lambda packed: {t: tf.zeros(tf.shape(packed["floats"])[:1]) for t in tasks},
        input_signature=[packed_input_signature(schema)])
    tf.saved_model.save(module, str(target), signatures={"serving_default": module.serve})
    return Path(target)


def breakdown(model, schema, batches, packed, rounds, requests):
    """Medians (ms) of pieces of `model`'s serving graph at each batch size,
    as plain tf.functions, interleaved rounds; see the module docstring.

    Args:
        batches: `{"b1": raw tensors, "b1024": ...}` keyed by feature name.
        packed: the same rows as packed inputs.

    Returns:
        dict `{piece: {"b1": ms, "b1024": ms}}`.
    """
    import numpy as np
    import tensorflow as tf
    from mtrec.export import raw_input_signature
    from mtrec.export.packed_inputs import encode_packed, packed_input_signature
    from mtrec.layers.feature_preprocessing import _FINGERPRINT_BUCKETS

    pre = model.preprocessing
    fused, first = pre.fused_feature_names, schema.feature_names[0]
    raw_sig, packed_sig = raw_input_signature(schema), packed_input_signature(schema)
    encoded = {k: pre(x) for k, x in batches.items()}
    spec = lambda x: tf.nest.map_structure(
        lambda v: tf.TensorSpec([None, *v.shape[1:]], v.dtype), x)
    embedded = {k: model.embed(e) for k, e in encoded.items()}
    experts = {k: model.backbone.experts(x) for k, x in embedded.items()}
    task_inputs = {k: model.backbone(x) for k, x in embedded.items()}
    pieces = {
        "floor, 38 named inputs": (raw_sig, batches,
                                   lambda f: tf.zeros(tf.shape(f[first])[:1])),
        "floor, 2 packed inputs": (packed_sig, packed,
                                   lambda p: tf.zeros(tf.shape(p["floats"])[:1])),
        "preprocessing (38 inputs)": (raw_sig, batches, pre),
        "preprocessing (packed)": (packed_sig, packed, lambda p: encode_packed(pre, p)),
        "stack 31 string columns": (raw_sig, batches,
                                    lambda f: tf.stack([f[n] for n in fused], 1)),
        "fingerprint + fused lookup (packed)": (packed_sig, packed, lambda p: pre.fused_table.lookup(
            tf.bitwise.bitwise_xor(tf.strings.to_hash_bucket_fast(
                p["strings"], _FINGERPRINT_BUCKETS), pre._fused_salts))),
        "model on encoded inputs": (spec(encoded["b1"]), encoded,
                                    lambda e: model(e, training=False)),
        "embedding": (spec(encoded["b1"]), encoded, lambda e: model.embed(e)),
        "backbone": (spec(embedded["b1"]), embedded, lambda x: model.backbone(x)),
        "experts": (spec(embedded["b1"]), embedded, lambda x: model.backbone.experts(x)),
        "towers": (spec(task_inputs["b1"]), task_inputs, lambda t: model.towers(t)),
        "full model (38 inputs)": (raw_sig, batches, lambda f: model(f, training=False)),
    }
    if hasattr(model.backbone, "gates"):
        pieces["gates"] = ((spec(embedded["b1"]), spec(experts["b1"])),
                           {k: (embedded[k], experts[k]) for k in embedded},
                           lambda x, e: model.backbone.gates(x, e))
    calls = {}
    for piece, (signature, inputs, fn) in pieces.items():
        star = isinstance(signature, tuple)
        concrete = tf.function(fn).get_concrete_function(*(signature if star else [signature]))
        calls[piece] = (concrete, inputs, star)
    times = {piece: {"b1": [], "b1024": []} for piece in calls}
    for piece, (concrete, inputs, star) in calls.items():  # warm-up
        for k in times[piece]:
            concrete(*inputs[k]) if star else concrete(inputs[k])
    per_round = max(1, requests // rounds)
    for _ in range(rounds):
        for piece, (concrete, inputs, star) in calls.items():
            for k, repeats in (("b1", per_round), ("b1024", max(1, 30 // rounds))):
                x = inputs[k]
                for _ in range(repeats):
                    start = time.perf_counter()
                    concrete(*x) if star else concrete(x)
                    times[piece][k].append(time.perf_counter() - start)
    return {piece: {k: float(np.median(v)) * 1e3 for k, v in t.items()}
            for piece, t in times.items()}


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
    from mtrec.export.packed_inputs import PACKED_SIGNATURE, pack_features
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
    names = serving_input_names(schema)
    one = schema.raw_features(valid.head(1))
    big = schema.raw_features(valid.head(1024))
    to_tensors = lambda raw: {k: tf.constant(v.astype(str) if v.dtype == object else v)
                              for k, v in raw.items()}
    one_t, big_t = to_tensors(one), to_tensors(big)
    packed_t = {"b1": to_tensors(pack_features(schema, one)),
                "b1024": to_tensors(pack_features(schema, big))}
    results = []
    export_root = Path(tempfile.mkdtemp(prefix="mtrec_serving_bench_"))
    baseline_code = export_root / "baseline_code"
    baseline_commit = None
    if args.baseline_ref:
        baseline_code.mkdir()
        baseline_commit = checkout_package(args.baseline_ref, baseline_code)
    floor_path = floor_export(schema, export_root / "floor")
    floor_module = tf.saved_model.load(str(floor_path))
    packed_floor_path = packed_floor_export(schema, export_root / "packed_floor")
    packed_floor_module = tf.saved_model.load(str(packed_floor_path))
    breakdowns = {}
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
        loaded[FLOOR] = floor_module
        loaded[PACKED_FLOOR] = packed_floor_module
        calls = {label: (lambda x, f=module.signatures["serving_default"]: f(**x))
                 for label, module in loaded.items()}
        # The same exports through their one-input tf.Example signature: one
        # serialized string tensor to bind instead of 38 named tensors.
        for label in exports:
            example_fn = loaded[label].signatures[EXAMPLE_SIGNATURE]
            calls[example_label(label)] = lambda x, f=example_fn: f(examples=x)
        # ... through the packed signature (exports that have one: a
        # baseline may predate it), and both through their flat call.
        packed_labels = []
        for label in exports:
            if PACKED_SIGNATURE in loaded[label].signatures:
                packed_fn = loaded[label].signatures[PACKED_SIGNATURE]
                calls[label + PACKED_SUFFIX] = lambda x, f=packed_fn: f(**x)
                calls[label + PACKED_SUFFIX + FLAT_SUFFIX] = flat_call(packed_fn)
                packed_labels.append(label)
        calls["current" + FLAT_SUFFIX] = flat_call(loaded["current"].signatures["serving_default"])
        expected = model.predict_on_batch(big)
        examples = {"b1": to_tf_examples(schema, valid.head(1)),
                    "b1024": to_tf_examples(schema, valid.head(1024))}
        if args.int64_examples:
            numbers = [serving_input_names(schema)[f] for f in numeric_scalars(schema)]
            examples = {k: with_int64_numbers(v, numbers) for k, v in examples.items()}
        examples = {k: tf.constant(v) for k, v in examples.items()}
        by_names = {"b1": {names[k]: v for k, v in one_t.items()},
                    "b1024": {names[k]: v for k, v in big_t.items()}}
        batches = {label: (examples if label.endswith(EXAMPLE_SUFFIX)
                           else packed_t if PACKED_SUFFIX in label or label == PACKED_FLOOR
                           else by_names if label.endswith(FLAT_SUFFIX)
                           else {"b1": one_t, "b1024": big_t})
                   for label in calls}
        for label, call in calls.items():
            if label in (FLOOR, PACKED_FLOOR):
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
        breakdowns[name] = breakdown(model, schema, {"b1": one_t, "b1024": big_t}, packed_t,
                                     args.rounds, args.requests)
        print(f"{name} breakdown (tf.functions, median ms): " + json.dumps(
            {k: {b: round(v, 3) for b, v in t.items()} for k, t in breakdowns[name].items()}),
            flush=True)
        sizes = {**exports, FLOOR: floor_path, PACKED_FLOOR: packed_floor_path}
        for label in calls:
            served_1 = np.array(times[label]["b1"]) * 1e3
            path = next(p for base, p in sizes.items() if label.split(",")[0] == base)
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
    print("\nsame run, current export: packed signature vs serving_default "
          "(and the flat calls: no Python binding):")
    for name in args.models.split(","):
        rows = {r["export"]: r for r in results if r["model"] == name}
        default, packed = rows["current"], rows["current" + PACKED_SUFFIX]
        print(f"  {name}: b1 p50 {default['served_b1_p50_ms']:.3f} -> "
              f"{packed['served_b1_p50_ms']:.3f} ms "
              f"(x{default['served_b1_p50_ms'] / packed['served_b1_p50_ms']:.2f}), "
              f"b1024 {default['served_b1024_rows_per_s']:,.0f} -> "
              f"{packed['served_b1024_rows_per_s']:,.0f} rows/s "
              f"(x{packed['served_b1024_rows_per_s'] / default['served_b1024_rows_per_s']:.2f}); "
              f"flat calls b1 p50: serving_default "
              f"{rows['current' + FLAT_SUFFIX]['served_b1_p50_ms']:.3f} ms, packed "
              f"{rows['current' + PACKED_SUFFIX + FLAT_SUFFIX]['served_b1_p50_ms']:.3f} ms; "
              f"floors {rows[FLOOR]['served_b1_p50_ms']:.3f} / "
              f"{rows[PACKED_FLOOR]['served_b1_p50_ms']:.3f} ms")
        if baseline_commit:
            before = rows[f"baseline {baseline_commit}"]
            print(f"  {name}: baseline {baseline_commit} serving_default -> current packed: "
                  f"b1 p50 {before['served_b1_p50_ms']:.3f} -> {packed['served_b1_p50_ms']:.3f} ms "
                  f"(x{before['served_b1_p50_ms'] / packed['served_b1_p50_ms']:.2f}), b1024 "
                  f"{before['served_b1024_rows_per_s']:,.0f} -> "
                  f"{packed['served_b1024_rows_per_s']:,.0f} rows/s (x"
                  f"{packed['served_b1024_rows_per_s'] / before['served_b1024_rows_per_s']:.2f})")
    print(f"CPU: {cpu_model()}, {args.threads} TF thread(s)")
    from mtrec.experiments.record import git_state
    record = {"machine": platform.platform(), "processor": cpu_model(),
              "git": git_state(ignore=("benchmarks/results/", "benchmarks/RESULTS.md"),
                               root=Path(__file__).resolve().parents[1]),
              "cpu_count": os.cpu_count(), "threads": args.threads,
              "load_average": list(os.getloadavg()),
              "command": " ".join(["python benchmarks/serving.py", *(argv if argv is not None
                                                                      else sys.argv[1:])]),
              "requests": args.requests, "rounds": args.rounds,
              "int64_examples": args.int64_examples,
              "baseline_commit": baseline_commit, "tensorflow": tf.__version__,
              "keras": keras.__version__, "mtrec": mtrec.__version__, "results": results,
              "breakdown": breakdowns}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(args.output) + ".tmp")   # written whole
    tmp.write_text(json.dumps(record, indent=1))
    tmp.replace(args.output)
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
