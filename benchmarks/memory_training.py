"""Memory of training MMoE 8x[16] on Census-Income group 1: RSS at each stage.

Two ways in, each measured in a fresh subprocess (so no figure carries
another's allocations):

- **frame**: RSS after `import tensorflow`, after `import mtrec`, after
  `census_income.load(group=1)` and `Schema.infer(...).adapt(train)`
  ("data"), after `from_pandas` of train and valid, and the peak during
  `fit` (train, validation on valid) for `--epochs` epochs; "training
  adds" = fit peak - data. The frames stay alive, as in a user's session.
- **stream**: the train split streamed with `from_parquet` (chunks of
  `--chunk-rows`, a shuffle buffer of `--shuffle-buffer` rows) from a
  Parquet file written beforehand by another process, with a schema saved
  as JSON there, so the measured process never holds a DataFrame of the
  split; then the same at `--repeat` times the rows (the file repeated) to
  show the peak stays flat.

`--jit-compile true|false` compiles every fit with it (default: the
library's own choice; `auto` leaves these 2-epoch fits uncompiled, since
they run fewer than 1,000 steps). "anon / file added" split what fit left
resident into anonymous memory and file-backed pages (`RssAnon`,
`RssFile`): XLA pages in its compiler's code from libtensorflow, which is
shared, clean and counted in RSS.

With `--rev REV` every measurement is also run with the `mtrec` package
of that git revision (`git archive`, imported through PYTHONPATH), rounds
interleaved, and the table shows both and their ratio.

    python benchmarks/memory_training.py [--rev main] [--epochs 2]
        [--batch-size 1024] [--rounds 1] [--repeat 10] [--jit-compile true]

RSS is VmRSS sampled every 20 ms from /proc/self/status (Linux), in MB.
Medians over `--rounds`.
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
from memory_streaming import RssSampler, status_kib, vm_rss_bytes  # noqa: E402
from revision_checkout import REPOSITORY, exported_package, resolve  # noqa: E402

MB = 1024 * 1024
TASKS = {"income": "binary", "marital": "binary"}


def mmoe(mtrec, schema):
    return mtrec.models.MMoE(schema, num_experts=8, expert_units=[16], tower_units=[8])


def rss_mb():
    return vm_rss_bytes() / MB


def rss_parts_mb():
    """`(RssAnon, RssFile)` of this process in MB (Linux)."""
    return tuple(kib / 1024 for kib in status_kib("RssAnon", "RssFile"))


def compile_options(args):
    """`compile` keywords for `--jit-compile` (none for the default)."""
    return {} if args.jit_compile == "default" else {"jit_compile": args.jit_compile == "true"}


class StageSampler(RssSampler):
    """RssSampler as a context manager, with a resettable stage peak and
    the peak of the whole process."""

    def __enter__(self):
        self.overall = 0
        self.start()
        return self

    def run(self):
        while not self._stop_event.is_set():
            rss = vm_rss_bytes()
            self.peak = max(self.peak, rss)
            self.overall = max(self.overall, rss)
            self._stop_event.wait(self.interval)

    def reset(self):
        self.peak = vm_rss_bytes()

    def __exit__(self, *exc):
        self.stop()
        self.overall = max(self.overall, self.peak)



# --------------------------------------------------------------------------
# workers (one per fresh process); each prints one JSON line
# --------------------------------------------------------------------------
def work_prepare(args):
    """Writes the train split as Parquet (once and `--repeat` times) and the
    adapted schema as JSON, for the stream workers."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import mtrec
    from mtrec.data import census_income

    train, _, _ = census_income.load(group=1)
    schema = mtrec.Schema.infer(train, tasks=TASKS, verbose=False).adapt(train)
    folder = Path(args.folder)
    (folder / "schema.json").write_text(json.dumps(schema.to_dict()))
    table = pa.Table.from_pandas(train, preserve_index=False)
    pq.write_table(table, folder / "train.parquet", row_group_size=50_000)
    with pq.ParquetWriter(folder / "train_x.parquet", table.schema) as writer:
        for _ in range(args.repeat):
            writer.write_table(table, row_group_size=50_000)
    return {"rows": len(train)}


def work_frame(args):
    out = {}
    with StageSampler(0.02) as sampler:
        import tensorflow  # noqa: F401
        out["import tensorflow"] = rss_mb()
        import keras
        import mtrec
        from mtrec.data import census_income
        out["import mtrec"] = rss_mb()
        train, valid, _ = census_income.load(group=1)
        schema = mtrec.Schema.infer(train, tasks=TASKS, verbose=False).adapt(train)
        out["data"] = rss_mb()
        keras.utils.set_random_seed(0)
        train_data = mtrec.data.from_pandas(train, schema, batch_size=args.batch_size,
                                            shuffle=True, seed=0)
        valid_data = mtrec.data.from_pandas(valid, schema, batch_size=4096)
        out["from_pandas"] = rss_mb()
        model = mmoe(mtrec, schema)
        model.compile(optimizer="adam", **compile_options(args))
        anon, file = rss_parts_mb()
        sampler.reset()
        start = time.perf_counter()
        model.fit(train_data, validation_data=valid_data, epochs=args.epochs, verbose=0)
        out["fit seconds"] = time.perf_counter() - start
        out["fit peak"] = sampler.peak / MB
        anon_after, file_after = rss_parts_mb()
        out["anon added"], out["file added"] = anon_after - anon, file_after - file
    out["training adds"] = out["fit peak"] - out["data"]
    out["rows"] = len(train)
    return out


def work_stream(args):
    out = {}
    with StageSampler(0.02) as sampler:
        import tensorflow  # noqa: F401
        out["import tensorflow"] = rss_mb()
        import keras
        import mtrec
        out["import mtrec"] = rss_mb()
        schema = mtrec.Schema.from_dict(json.loads(Path(args.schema).read_text()))
        keras.utils.set_random_seed(0)
        data = mtrec.data.from_parquet(args.file, schema, batch_size=args.batch_size,
                                       chunk_rows=args.chunk_rows,
                                       shuffle_buffer=args.shuffle_buffer, seed=0)
        out["data"] = rss_mb()
        model = mmoe(mtrec, schema)
        model.compile(optimizer="adam", **compile_options(args))
        sampler.reset()
        start = time.perf_counter()
        history = model.fit(data, epochs=args.epochs, verbose=0)
        out["fit seconds"] = time.perf_counter() - start
        out["fit peak"] = sampler.peak / MB
        out["peak"] = sampler.overall / MB
    out["training adds"] = out["fit peak"] - out["data"]
    out["loss"] = float(history.history["loss"][-1])
    return out



WORKERS = {"prepare": work_prepare, "frame": work_frame, "stream": work_stream}


# --------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------
def run_worker(name, package_dir, **options):
    """Runs one worker in a fresh interpreter importing mtrec from `package_dir`."""
    command = [sys.executable, __file__, "--worker", name]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    env = dict(os.environ, PYTHONPATH=str(package_dir))
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"worker {name} ({package_dir}) failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results, labels):
    """Median per figure, one column per code version (and their ratio)."""
    rows = []
    for case, figures in [("frame", ["import tensorflow", "import mtrec", "data", "from_pandas",
                                     "fit peak", "training adds", "anon added", "file added",
                                     "fit seconds"]),
                          ("stream 1x", ["import mtrec", "data", "fit peak", "training adds",
                                         "peak", "fit seconds"]),
                          ("stream Nx", ["import mtrec", "data", "fit peak", "training adds",
                                         "peak", "fit seconds"])]:
        for figure in figures:
            values = [statistics.median(r[figure] for r in results[label][case])
                      for label in labels]
            rows.append((case, figure, values))
    header = f"| case | figure | " + " | ".join(labels)
    header += " | ratio |" if len(labels) == 2 else " |"
    lines = [header, "|" + "---|" * (len(labels) + 2 + (len(labels) == 2))]
    for case, figure, values in rows:
        unit = "s" if "seconds" in figure else "MB"
        cells = " | ".join(f"{v:,.1f} {unit}" for v in values)
        ratio = f" | {values[1] / values[0]:.2f}" if len(values) == 2 and values[0] else ""
        lines.append(f"| {case} | {figure} | {cells}{ratio} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rev", default=None,
                        help="also measure the mtrec package of this git revision")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--shuffle-buffer", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--repeat-epochs", type=int, default=1,
                        help="epochs of the repeated file (its rows are already x repeat)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--jit-compile", choices=["default", "true", "false"],
                        default="default",
                        help="compile(jit_compile=...) of every fit (default: not passed)")
    parser.add_argument("--output", default=None, help="write the results as JSON here")
    # worker mode (internal)
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return

    current = subprocess.run(["git", "-C", str(REPOSITORY), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPOSITORY), "status", "--porcelain", "mtrec"],
                           capture_output=True, text=True).stdout.strip()
    labels = [f"{current}{'+changes' if dirty else ''}"]
    with tempfile.TemporaryDirectory(prefix="mtrec-memory-") as folder, \
            (exported_package(args.rev) if args.rev else contextlib.nullcontext()) as old_package:
        packages = {labels[0]: REPOSITORY}
        if args.rev:
            labels.insert(0, f"{args.rev} ({resolve(args.rev)[:8]})")
            packages = {labels[0]: old_package, **packages}
        # the files and schema, by the current code, in a process of its own
        rows = run_worker("prepare", REPOSITORY, folder=folder, repeat=args.repeat)["rows"]
        folder = Path(folder)
        common = dict(batch_size=args.batch_size, jit_compile=args.jit_compile)
        stream = dict(common, schema=folder / "schema.json", chunk_rows=args.chunk_rows,
                      shuffle_buffer=args.shuffle_buffer)
        results = {label: {"frame": [], "stream 1x": [], "stream Nx": []} for label in labels}
        for _ in range(args.rounds):
            for label in labels:
                package = packages[label]
                results[label]["frame"].append(
                    run_worker("frame", package, epochs=args.epochs, **common))
                results[label]["stream 1x"].append(
                    run_worker("stream", package, file=folder / "train.parquet",
                               epochs=args.epochs, **stream))
                results[label]["stream Nx"].append(
                    run_worker("stream", package, file=folder / "train_x.parquet",
                               epochs=args.repeat_epochs, **stream))
                print(f"done: {label}", file=sys.stderr, flush=True)

    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    print(f"CPU: {cpu}, {os.cpu_count()} cores; Census-Income group 1 train {rows:,} rows; "
          f"MMoE 8x[16], batch {args.batch_size}; frame: {args.epochs} epochs; stream "
          f"(from_parquet, chunk_rows {args.chunk_rows:,}, shuffle_buffer "
          f"{args.shuffle_buffer:,}): 1x {args.epochs} epochs, Nx = {args.repeat}x rows "
          f"({rows * args.repeat:,}) {args.repeat_epochs} epoch(s); jit_compile "
          f"{args.jit_compile}; medians of "
          f"{args.rounds} round(s), each figure from a fresh process")
    print(table(results, labels))
    if args.output:
        Path(args.output).write_text(json.dumps({"labels": labels, "results": results},
                                                indent=1, default=str))


if __name__ == "__main__":
    main()
