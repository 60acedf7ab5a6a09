"""Scale on one host: training examples/s by strategy, streaming memory as rows grow, adapt time.

Issue 14 ("Shown by", third bullet). One command, three parts, every
measurement in a fresh subprocess so that no figure carries another's
allocations:

1. **Training examples/s** on Census-Income group 1 (the registered
   `census_income` dataset, `benchmarks/configs/census_income/mmoe.yaml`,
   MMoE 8 x [16]) through the `mtrec train` CLI, `--epochs` epochs, no early
   stopping, no TensorBoard:

   | case          | how                                   | batch per replica | global batch |
   |---------------|---------------------------------------|------------------:|-------------:|
   | `1 process`   | `training.strategy=none` (baseline)   | B                 | B            |
   | `1 proc, B/2` | `training.strategy=none`              | B/2               | B/2          |
   | `mirrored`    | `training.strategy=mirrored`          | B                 | B x replicas |
   | `2 workers`   | `--local-workers 2` (multi_worker)    | B/2               | B            |

   Each run's `metrics.json` gives `train_seconds` (the wall time of
   `fit`, so the first epoch's tracing and every epoch's validation pass are
   in it), `epochs_run`, the train row count and the `strategy` record;
   examples/s = rows x epochs / train_seconds. On a CPU-only host
   `MirroredStrategy` has one replica (`/cpu:0`): the table says how many it
   had. Ratios are against `1 process` of the same repeat.

   **Communication overhead per step of 2 workers**, estimated as

       overhead = step(2 workers) - step(1 proc, B/2)
       step(case) = train_seconds / (epochs x ceil(rows / global batch))

   In a step of the 2-worker run each worker computes the gradient of its
   own B/2 rows (the same work as one step of the single process at batch
   B/2), then the workers all-reduce the gradients over loopback gRPC
   (`MultiWorkerMirroredStrategy`'s collectives) and wait for each other.
   So the difference is what the second worker adds to a step: the
   all-reduce and the synchronisation wait, but also the two processes
   competing for the same cores (each TF runtime sizes its thread pools
   to all cores), and the split of each epoch's validation pass between the
   workers (49,881 rows, forward only, counted in `train_seconds` of both;
   it makes the estimate slightly low). On 2 cores the contention is most of
   it; the figure is an upper bound on the cost of communication proper.
   XLA is not in it at the default length: the runner never compiles
   under a strategy (`jit_compile=False`), and `jit_compile="auto"` compiles
   a single process's step only for fits of >= 1000 steps
   (`mtrec/training/xla.py`), which 2 epochs (390 steps at 1024, 780 at
   512) are not; with `--epochs 3` or more the single-process cases would
   be compiled and the gaps would include XLA's speed-up.
   Expect no gain from 2 workers on 2 cores: both processes share the cores
   one process already used.

   **Peak RSS per process**: VmHWM of the CLI process and of all its
   descendants (the launcher and each worker of `--local-workers`), polled
   from /proc/<pid>/status by the parent every 0.2 s (psutil is not
   installed here); a peak in a process's last 0.2 s can be missed.

2. **Streaming memory as rows grow.** A synthetic "Census x k" table: the
   train rows of Census group 1 repeated k times (k = 1, 10; 100 with
   `--with-100x`), each copy in a new row order, the copies after the first
   with noise (float columns scaled by 1 + N(0, 0.01), 1 % of every other
   feature column's values exchanged between rows; labels kept), written as
   8 Parquet shards with `mtrec.data.write_shards` into
   `runs/scale/cache/<name>/` (written whole; reused when present). Then,
   per size, in a fresh process: `Schema.infer` + `adapt` on the first
   `--sample-rows` rows (`streaming.schema_sample`, a fixed size for every
   k), then one epoch of `mtrec.data.shards.from_files(shards, schema,
   batch_size=1024, chunk_rows=20_000, shuffle_buffer=100_000)` for 1
   worker and for worker 0 of 2 (`num_workers=2`: 4 of the 8 files).
   `chunk_rows` is below the x1 table's shard size (~25,000 rows), so the
   reader's memory bound (a chunk, its encoding and the shuffle buffer) is
   the same for every k. Recorded: the process's peak RSS (VmHWM, the
   adapt on the sample included), the peak of the streaming pass alone
   (VmHWM reset through /proc/self/clear_refs after the adapt), what
   streaming adds (that peak - the RSS before it), and rows/s. The point:
   peak RSS stays flat as rows grow 10x; the table prints RSS(10x) /
   RSS(1x).

3. **Adapt time per million rows**: `Schema.infer` + `Schema.adapt` on the
   first `--adapt-rows` rows (1 M) of the x10 table, in a fresh process;
   seconds per million rows (each step, and both together).

Results go to `benchmarks/results/scale.json` (written whole: a temporary
file, renamed), a table is printed, and `--report` regenerates
`benchmarks/RESULTS.md` (its "Scale" section is `benchmarks/report.py`'s
`scale_section`). Timings are of a shared machine: noisy, medians over
`--repeats` where given.

    python benchmarks/scale.py [--quick] [--with-100x] [--repeats 1] [--epochs 2]
        [--batch-size 1024] [--stream-repeats 1] [--report] [--output PATH]

`--quick` is a smoke run: 20,000 Census rows, 1 epoch, tables x1 and x10 of
those rows, adapt on all of the x10 table; its record goes to
`runs/scale/scale-quick.json` unless `--output` says otherwise.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CONFIG = HERE / "configs" / "census_income" / "mmoe.yaml"
RESULT = HERE / "results" / "scale.json"
QUICK_RESULT = ROOT / "runs" / "scale" / "scale-quick.json"
WORK = ROOT / "runs" / "scale"
TASKS = {"income": "binary", "marital": "binary"}
NUM_SHARDS = 8
MB = 1024 * 1024

BASELINE = "1 process"
CASES = ("1 process", "1 proc, B/2", "mirrored", "2 workers")


# --------------------------------------------------------------------------
# machine
# --------------------------------------------------------------------------
def cpu_model(cpuinfo=None):
    """The first `model name` of /proc/cpuinfo (or of `cpuinfo`, its text)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return platform.processor() or "unknown CPU"
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def machine():
    info = {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
            "platform": platform.platform(), "python": platform.python_version()}
    try:
        info["cpu_affinity"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        info["cpu_affinity"] = os.cpu_count()
    try:
        total = next(line for line in Path("/proc/meminfo").read_text().splitlines()
                     if line.startswith("MemTotal:"))
        info["memory_gb"] = round(int(total.split()[1]) / 1024 / 1024, 1)
    except (OSError, StopIteration):
        pass
    try:
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return info


# --------------------------------------------------------------------------
# /proc: peak RSS of a process and of its descendants
# --------------------------------------------------------------------------
def status_bytes(text, field="VmHWM"):
    """`field` (VmHWM, VmRSS, ...) of a /proc/<pid>/status text, in bytes;
    None when absent (a zombie has no memory lines)."""
    for line in text.splitlines():
        if line.startswith(field + ":"):
            value, unit = line.split()[1:3]
            return int(value) * {"kB": 1024, "mB": MB}.get(unit, 1)
    return None


def own_status(field="VmHWM"):
    return status_bytes(Path("/proc/self/status").read_text(), field)


def reset_peak_rss():
    """Reset this process's VmHWM to its current RSS (Linux: writing 5 to
    /proc/self/clear_refs); False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _stat_fields(pid):
    """(ppid, starttime) from /proc/<pid>/stat, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[1]), int(fields[19])


def descendants(root):
    """Pids of every live descendant of `root` (scanning /proc)."""
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(entry.name)
            if fields is not None:
                children.setdefault(fields[0], []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


class TreePeakRss(threading.Thread):
    """Polls VmHWM of process `root` and its descendants until stopped.

    `peaks` maps pid -> {"peak_rss_bytes", "cmdline", "start"} (start: the
    kernel's start time in clock ticks, to order processes started by one
    parent)."""

    def __init__(self, root, interval=0.2):
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.peaks = {}
        self._stop_event = threading.Event()

    def poll(self):
        for pid in [self.root] + descendants(self.root):
            try:
                peak = status_bytes(Path(f"/proc/{pid}/status").read_text())
            except OSError:
                continue
            if peak is None:
                continue
            entry = self.peaks.get(pid)
            if entry is None:
                fields = _stat_fields(pid)
                try:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    cmdline = []
                entry = self.peaks[pid] = {
                    "peak_rss_bytes": 0, "start": fields[1] if fields else 0,
                    "cmdline": " ".join(part.decode(errors="replace") for part in cmdline)}
            entry["peak_rss_bytes"] = max(entry["peak_rss_bytes"], peak)

    def run(self):
        while not self._stop_event.is_set():
            self.poll()
            self._stop_event.wait(self.interval)

    def stop(self):
        self._stop_event.set()
        self.join()


def process_peaks(peaks, root):
    """`{role: peak RSS MB}` from `TreePeakRss.peaks`: the root as
    `process` when it is the only mtrec process, else `launcher` and the
    mtrec descendants as `worker 0`, `worker 1`, ... in start order."""
    workers = sorted((entry for pid, entry in peaks.items()
                      if pid != root and "mtrec.cli" in entry["cmdline"]),
                     key=lambda entry: entry["start"])
    root_mb = round(peaks[root]["peak_rss_bytes"] / MB, 1) if root in peaks else None
    if not workers:
        return {"process": root_mb}
    return {"launcher": root_mb, **{f"worker {i}": round(e["peak_rss_bytes"] / MB, 1)
                                    for i, e in enumerate(workers)}}


# --------------------------------------------------------------------------
# arithmetic (pure; tested)
# --------------------------------------------------------------------------
def ratio(value, baseline):
    """`value / baseline`, None when either is missing or the baseline is 0."""
    if value is None or baseline is None or not baseline:
        return None
    return value / baseline


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def training_figures(metrics):
    """Examples/s and step time of one run, from its metrics.json record.

    Returns dict: rows, epochs, train_seconds, strategy, replicas, workers,
    global_batch, steps_per_epoch (ceil(rows / global batch)),
    examples_per_second (rows x epochs / train_seconds), step_ms.
    """
    rows = metrics["dataset"]["rows"]["train"]
    epochs = metrics["epochs_run"]
    seconds = metrics["train_seconds"]
    strategy = metrics["strategy"]
    steps = math.ceil(rows / strategy["global_batch_size"])
    return {"rows": rows, "epochs": epochs, "train_seconds": seconds,
            "strategy": strategy["name"], "replicas": strategy["replicas"],
            "workers": strategy["workers"], "global_batch": strategy["global_batch_size"],
            "steps_per_epoch": steps,
            "examples_per_second": rows * epochs / seconds,
            "step_ms": 1000 * seconds / (epochs * steps)}


def summarise_training(runs):
    """Medians per case over repeats, ratios to `1 process` of the same
    repeat (then their median), and the 2-worker overhead per step.

    Args:
        runs: list of {"case", "repeat", "figures" (training_figures),
            "peak_rss_mb" ({role: MB})}.

    Returns:
        {"cases": {case: {...medians, "ratio_to_1_process"}},
         "overhead_ms_per_step": float or None,
         "overhead_fraction": overhead / step(1 proc, B/2)}.
    """
    by_repeat = {}
    for run in runs:
        by_repeat.setdefault(run["repeat"], {})[run["case"]] = run["figures"]
    cases = {}
    for case in CASES:
        mine = [r for r in runs if r["case"] == case]
        if not mine:
            continue
        figures = [r["figures"] for r in mine]
        ratios = [ratio(by_repeat[r["repeat"]][case]["examples_per_second"],
                        by_repeat[r["repeat"]].get(BASELINE, {}).get("examples_per_second"))
                  for r in mine]
        roles = sorted({role for r in mine for role in r["peak_rss_mb"]})
        cases[case] = {
            "runs": len(mine),
            "strategy": figures[0]["strategy"], "replicas": figures[0]["replicas"],
            "workers": figures[0]["workers"], "global_batch": figures[0]["global_batch"],
            "batch_per_replica": figures[0]["global_batch"] // figures[0]["replicas"],
            "rows": figures[0]["rows"], "epochs": figures[0]["epochs"],
            "train_seconds": median(f["train_seconds"] for f in figures),
            "examples_per_second": median(f["examples_per_second"] for f in figures),
            "step_ms": median(f["step_ms"] for f in figures),
            "ratio_to_1_process": median(ratios),
            "peak_rss_mb": {role: median(r["peak_rss_mb"].get(role) for r in mine)
                            for role in roles}}
    overheads = [by_repeat[k]["2 workers"]["step_ms"] - by_repeat[k]["1 proc, B/2"]["step_ms"]
                 for k in sorted(by_repeat)
                 if "2 workers" in by_repeat[k] and "1 proc, B/2" in by_repeat[k]]
    overhead = median(overheads)
    half = cases.get("1 proc, B/2", {}).get("step_ms")
    return {"cases": cases, "overhead_ms_per_step": overhead,
            "overhead_fraction": ratio(overhead, half)}


def stream_record(rows, seconds, peak_rss_bytes, stream_peak_rss_bytes=None,
                  rss_before_bytes=None):
    """One streaming measurement: rows, seconds, rows/s and the RSS figures in MB."""
    def mb(value):
        return None if value is None else round(value / MB, 1)

    return {"rows": int(rows), "seconds": round(seconds, 3),
            "rows_per_second": rows / seconds if seconds > 0 else None,
            "peak_rss_mb": mb(peak_rss_bytes), "stream_peak_rss_mb": mb(stream_peak_rss_bytes),
            "rss_before_stream_mb": mb(rss_before_bytes)}


def summarise_streaming(runs):
    """Medians per (k, reader) and RSS(largest k) / RSS(1x) per reader.

    Args:
        runs: list of {"k", "reader" ("1 worker" / "worker 0 of 2"), "repeat",
            **stream_record(...)}.

    Returns:
        {"cases": [{k, reader, rows, rows_per_second, peak_rss_mb,
                    stream_peak_rss_mb, rss_before_stream_mb}],
         "rss_ratio": {reader: {"k": k, "peak": ..., "stream_peak": ...}}}
         (each k > 1 against k = 1).
    """
    keys = sorted({(r["k"], r["reader"]) for r in runs})
    cases = []
    for k, reader in keys:
        mine = [r for r in runs if r["k"] == k and r["reader"] == reader]
        case = {"k": k, "reader": reader, "runs": len(mine), "rows": mine[0]["rows"],
                **{name: median(r[name] for r in mine)
                   for name in ("rows_per_second", "peak_rss_mb", "stream_peak_rss_mb",
                                "rss_before_stream_mb")}}
        case["stream_adds_mb"] = median(
            r["stream_peak_rss_mb"] - r["rss_before_stream_mb"] for r in mine
            if r["stream_peak_rss_mb"] is not None and r["rss_before_stream_mb"] is not None)
        cases.append(case)
    ratios = {}
    for case in cases:
        base = next((c for c in cases if c["k"] == 1 and c["reader"] == case["reader"]), None)
        if base is None or case["k"] == 1:
            continue
        ratios.setdefault(case["reader"], []).append({
            "k": case["k"],
            "rows_ratio": ratio(case["rows"], base["rows"]),
            "peak": ratio(case["peak_rss_mb"], base["peak_rss_mb"]),
            "stream_peak": ratio(case["stream_peak_rss_mb"], base["stream_peak_rss_mb"]),
            "stream_adds": ratio(case["stream_adds_mb"], base["stream_adds_mb"])})
    return {"cases": cases, "rss_ratio": ratios}


def adapt_figures(rows, infer_seconds, adapt_seconds):
    """Seconds per million rows of `Schema.infer`, `adapt`, and both."""
    per_million = 1e6 / rows
    return {"rows": int(rows), "infer_seconds": round(infer_seconds, 3),
            "adapt_seconds": round(adapt_seconds, 3),
            "infer_seconds_per_million": infer_seconds * per_million,
            "adapt_seconds_per_million": adapt_seconds * per_million,
            "seconds_per_million": (infer_seconds + adapt_seconds) * per_million}


# --------------------------------------------------------------------------
# the Census x k table
# --------------------------------------------------------------------------
def noisy_copy(frame, rng, noise=True, labels=tuple(TASKS), swap_fraction=0.01,
               jitter=0.01):
    """One copy of `frame` for the x k table: its rows in a new order; with
    `noise`, float columns scaled by 1 + N(0, `jitter`) (NaN stays NaN, the
    dtype is kept) and `swap_fraction` of every other non-label column's
    values exchanged between random rows (so every value stays in its
    column's vocabulary). Labels are kept as they are."""
    import numpy as np
    import pandas as pd

    copy = frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)
    if not noise:
        return copy
    swaps = max(1, int(round(swap_fraction * len(copy))))
    for name in copy.columns:
        if name in labels:
            continue
        column = copy[name]
        if pd.api.types.is_float_dtype(column.dtype):
            scale = 1 + rng.normal(0, jitter, len(copy))
            copy[name] = (column.to_numpy() * scale).astype(column.dtype)
        else:
            rows, donors = rng.integers(0, len(copy), swaps), rng.integers(0, len(copy), swaps)
            values = column.to_numpy(copy=True)
            values[rows] = values[donors]
            copy[name] = pd.Series(values, dtype=column.dtype)
    return copy


def table_name(base_rows, k, num_shards=NUM_SHARDS, seed=0):
    return f"census-g1-{base_rows}rows-x{k}-{num_shards}shards-seed{seed}"


def build_table(frame, k, cache_dir, num_shards=NUM_SHARDS, seed=0):
    """The Census x k table as `num_shards` Parquet shards in `cache_dir`.

    Reused when `cache_dir/<table_name>/` exists with the expected row
    count (`write_shards` writes it whole, so it is complete). Otherwise the
    k copies (`noisy_copy`; the first without noise) are written one at a
    time to a staging folder, one Parquet file each, which `write_shards`
    deals round-robin into the shards (so the copies mix in every shard);
    the staging folder is removed. At most one copy of `frame` is held
    besides `frame`.

    Returns:
        dict: dir, files, rows, bytes, seconds (0 when reused), reused.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mtrec.data.shard_writer import MANIFEST, write_shards
    from mtrec.utils.atomic import alive

    cache_dir = Path(cache_dir)
    out = cache_dir / table_name(len(frame), k, num_shards, seed)
    expected = len(frame) * k
    start = time.perf_counter()
    reused = (out / MANIFEST).is_file() and \
        json.loads((out / MANIFEST).read_text())["total_rows"] == expected
    if not reused:
        cache_dir.mkdir(parents=True, exist_ok=True)
        for old in cache_dir.glob(f"{out.name}.staging-*"):   # from killed runs
            if not alive(int(old.name.rsplit("-", 1)[1])):
                shutil.rmtree(old, ignore_errors=True)
        staging = cache_dir / f"{out.name}.staging-{os.getpid()}"
        staging.mkdir()
        try:
            rng = np.random.default_rng(seed)
            arrow_schema = pa.Schema.from_pandas(frame, preserve_index=False)
            for copy_index in range(k):
                copy = noisy_copy(frame, rng, noise=copy_index > 0)
                pq.write_table(pa.Table.from_pandas(copy, schema=arrow_schema,
                                                    preserve_index=False),
                               staging / f"copy-{copy_index:05d}.parquet",
                               row_group_size=50_000)
                del copy
            written = write_shards(staging, out, num_shards, format="parquet",
                                   overwrite=out.exists())
            if sum(written.rows) != expected:
                raise RuntimeError(f"wrote {sum(written.rows)} rows into {out}, "
                                   f"expected {expected}.")
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    manifest = json.loads((out / MANIFEST).read_text())
    files = [out / name for name in manifest["files"]]
    return {"dir": str(out), "files": [str(f) for f in files], "rows": manifest["total_rows"],
            "bytes": sum(f.stat().st_size for f in files),
            "seconds": 0.0 if reused else round(time.perf_counter() - start, 2),
            "reused": bool(reused)}


# --------------------------------------------------------------------------
# workers: one per fresh process, each prints one JSON line last
# --------------------------------------------------------------------------
def work_build(args):
    """Builds (or finds) the x k tables from Census group 1's train split."""
    from mtrec.data import census_income

    train, _, _ = census_income.load(group=1, max_rows=args.max_rows)
    return {"base_rows": len(train),
            "tables": {str(k): build_table(train, k, args.cache_dir)
                       for k in args.sizes}}


def work_stream(args):
    """Adapt on a fixed sample, then stream one epoch of this worker's share."""
    import gc

    import mtrec
    from mtrec.data import shards, streaming

    files = json.loads(args.files)
    sample = streaming.schema_sample(files, rows=args.sample_rows)
    schema = mtrec.Schema.infer(sample, tasks=TASKS, verbose=False).adapt(sample)
    del sample
    gc.collect()
    dataset = shards.from_files(files, schema, batch_size=args.batch_size,
                                chunk_rows=args.chunk_rows,
                                shuffle_buffer=args.shuffle_buffer, seed=0,
                                num_workers=args.num_workers, worker_index=args.worker_index)
    before = own_status("VmRSS")
    adapt_peak = own_status("VmHWM")     # imports, the sample and its adapt
    reset = reset_peak_rss()
    rows = 0
    start = time.perf_counter()
    for _, labels in dataset:
        rows += int(labels["income"].shape[0])
    seconds = time.perf_counter() - start
    # After the reset VmHWM is the streaming pass's own peak; the process's
    # is the larger of the two phases'.
    stream_peak = own_status("VmHWM") if reset else None
    return {**stream_record(rows, seconds, max(adapt_peak, stream_peak or 0), stream_peak,
                            before),
            "adapt_peak_rss_mb": round(adapt_peak / MB, 1)}


def work_adapt(args):
    """`Schema.infer` + `adapt` on the first `--adapt-rows` rows of the table."""
    import mtrec
    from mtrec.data import streaming

    files = json.loads(args.files)
    start = time.perf_counter()
    frame = streaming.schema_sample(files, rows=args.adapt_rows)
    read_seconds = time.perf_counter() - start
    start = time.perf_counter()
    schema = mtrec.Schema.infer(frame, tasks=TASKS, verbose=False)
    infer_seconds = time.perf_counter() - start
    start = time.perf_counter()
    schema.adapt(frame)
    adapt_seconds = time.perf_counter() - start
    sample_peak = own_status("VmHWM")
    # What `mtrec train` does for `dataset.stream`: one pass over every row
    # of every file (reading included), no table held.
    from mtrec.data import shards
    from mtrec.schema.streaming_adapt import adapt_from_frames

    rows, frame_mb = len(frame), round(frame.memory_usage(deep=True).sum() / MB, 1)
    del frame
    reset_peak_rss()
    read = shards.frame_reader(files, schema, shards.file_format(files))
    streamed, summary = adapt_from_frames(
        schema, (chunk for path in files for chunk in read(path)))
    return {**adapt_figures(rows, infer_seconds, adapt_seconds),
            "read_seconds": round(read_seconds, 3), "frame_mb": frame_mb,
            "peak_rss_mb": round(sample_peak / MB, 1),
            "streaming_pass": {
                "rows": summary.rows, "seconds": summary.seconds,
                "seconds_per_million": round(summary.seconds * 1e6 / summary.rows, 2),
                "peak_rss_mb": round(own_status("VmHWM") / MB, 1)}}


WORKERS = {"build": work_build, "stream": work_stream, "adapt": work_adapt}


# --------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------
def child_env():
    """The environment of every subprocess: this checkout's mtrec first."""
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"),
                PYTHONPATH=str(ROOT) + (os.pathsep + path if path else ""))


def run_logged(command, log_path, interval=0.2):
    """Run `command`, output to `log_path`, polling the peak RSS of it and
    its descendants. Returns (seconds, TreePeakRss.peaks, pid)."""
    start = time.perf_counter()
    with open(log_path, "w") as log:
        child = subprocess.Popen(command, cwd=ROOT, env=child_env(), stdout=log,
                                 stderr=subprocess.STDOUT)
        poller = TreePeakRss(child.pid, interval)
        poller.start()
        try:
            code = child.wait()
        except BaseException:
            child.terminate()
            child.wait()
            raise
        finally:
            poller.stop()
    if code:
        tail = Path(log_path).read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{' '.join(map(str, command))} failed with exit status {code} "
                           f"(log: {log_path}):\n{tail}")
    return time.perf_counter() - start, poller.peaks, child.pid


def run_worker(name, log_dir, **options):
    """Run one worker of this script in a fresh interpreter; its JSON line."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", name]
    for key, value in options.items():
        if isinstance(value, (list, tuple)):
            command += [f"--{key.replace('_', '-')}", *map(str, value)]
        elif value is not None:
            command += [f"--{key.replace('_', '-')}", str(value)]
    log = Path(log_dir) / f"{name}-{time.time_ns()}.log"
    seconds, _, _ = run_logged(command, log)
    last = [line for line in log.read_text().splitlines() if line.startswith("{")][-1]
    return {**json.loads(last), "process_seconds": round(seconds, 2)}


def training_command(case, args, output):
    """The `mtrec train` command line of one training case."""
    half = args.batch_size // 2
    batch, strategy, workers = {
        "1 process": (args.batch_size, "none", None),
        "1 proc, B/2": (half, "none", None),
        "mirrored": (args.batch_size, "mirrored", None),
        "2 workers": (half, None, 2),
    }[case]
    command = [sys.executable, "-m", "mtrec.cli", "train", str(CONFIG), "--output",
               str(output), "--restart",
               "--set", f"training.epochs={args.epochs}",
               "--set", "training.early_stopping=null",
               "--set", "training.tensorboard=false",
               "--set", f"training.batch_size={batch}"]
    if args.max_rows:
        command += ["--set", f"dataset.args.max_rows={args.max_rows}"]
    if workers:
        command += ["--local-workers", str(workers)]   # sets strategy=multi_worker
    else:
        command += ["--set", f"training.strategy={strategy}"]
    return command


def run_training(args, work):
    """Every case x repeat (cases interleaved within a repeat), each in its
    own run folder, removed once its metrics.json is read."""
    runs, versions = [], None
    for repeat in range(args.repeats):
        for case in CASES:
            output = work / f"train-{case.replace(' ', '_').replace(',', '')}-{repeat}"
            shutil.rmtree(output, ignore_errors=True)
            log = work / f"{output.name}.log"
            seconds, peaks, pid = run_logged(training_command(case, args, output), log)
            metrics = json.loads((output / "metrics.json").read_text())
            versions = versions or metrics.get("versions")
            figures = training_figures(metrics)
            run = {"case": case, "repeat": repeat, "figures": figures,
                   "peak_rss_mb": process_peaks(peaks, pid),
                   "process_seconds": round(seconds, 1),
                   "test_auc": {task: values.get("auc") for task, values in
                                metrics["metrics"]["test"].items()}}
            runs.append(run)
            shutil.rmtree(output, ignore_errors=True)
            print(f"  train {case:<12} repeat {repeat}: {figures['examples_per_second']:>9,.0f} "
                  f"ex/s, step {figures['step_ms']:.1f} ms, {figures['replicas']} replica(s), "
                  f"peak RSS {run['peak_rss_mb']} MB ({seconds:.0f} s)", flush=True)
    return runs, versions


def run_streaming(args, work, tables):
    runs = []
    readers = (("1 worker", 1, 0), ("worker 0 of 2", 2, 0))
    for repeat in range(args.stream_repeats):
        for k in args.sizes:
            table = tables[str(k)]
            for reader, num_workers, worker_index in readers:
                got = run_worker("stream", work, files=json.dumps(table["files"]),
                                 sample_rows=args.sample_rows, batch_size=1024,
                                 chunk_rows=args.chunk_rows,
                                 shuffle_buffer=args.shuffle_buffer, num_workers=num_workers,
                                 worker_index=worker_index)
                runs.append({"k": k, "reader": reader, "repeat": repeat, **got})
                print(f"  stream x{k:<3} {reader:<13}: {got['rows']:>10,} rows, "
                      f"{got['rows_per_second']:>9,.0f} rows/s, peak RSS "
                      f"{got['peak_rss_mb']:,.0f} MB (streaming {got['stream_peak_rss_mb']} MB)",
                      flush=True)
    return runs


def _fmt(value, spec=",.0f", none="—"):
    return none if value is None else format(value, spec)


def table_text(record):
    """The printed table (plain text) of a result record."""
    m, s = record["machine"], record["settings"]
    lines = [f"CPU: {m['cpu_model']}, {m['cpu_count']} cores (affinity "
             f"{m['cpu_affinity']}), {m.get('memory_gb', '?')} GB; load average at start "
             f"{m.get('load_average')}; {'QUICK (smoke) run; ' if record['quick'] else ''}"
             f"wall {record['wall_seconds'] / 60:.1f} min", ""]
    t = record["training"]["summary"]
    lines.append(f"1. Training: Census-Income group 1 ({s['train_rows']:,} train rows), MMoE "
                 f"8x[16], {s['epochs']} epoch(s), `mtrec train`, medians of "
                 f"{s['repeats']} repeat(s)")
    lines.append(f"{'case':<13} {'strategy':<13} {'replicas':>8} {'batch/rep':>9} "
                 f"{'global':>6} {'ex/s':>9} {'x 1 proc':>8} {'step ms':>8}  peak RSS MB")
    for case, c in t["cases"].items():
        rss = ", ".join(f"{role} {mb:,.0f}" for role, mb in c["peak_rss_mb"].items()
                        if mb is not None)
        lines.append(f"{case:<13} {c['strategy']:<13} {c['replicas']:>8} "
                     f"{c['batch_per_replica']:>9} {c['global_batch']:>6} "
                     f"{_fmt(c['examples_per_second']):>9} "
                     f"{_fmt(c['ratio_to_1_process'], '.2f'):>8} {c['step_ms']:>8.1f}  {rss}")
    mirrored = t["cases"].get("mirrored")
    if mirrored and mirrored["replicas"] == 1:
        lines.append("mirrored: 1 replica (no GPU: MirroredStrategy holds only /cpu:0 here), "
                     "so it measures the strategy's overhead, not a speed-up.")
    if t["overhead_ms_per_step"] is not None:
        lines.append(f"2-worker overhead per step: {t['overhead_ms_per_step']:.1f} ms "
                     f"(= step(2 workers) - step(1 process at batch "
                     f"{s['batch_size'] // 2}); {_fmt(t['overhead_fraction'], '.0%')} of that "
                     f"step): all-reduce over loopback + waiting + 2 processes on "
                     f"{m['cpu_affinity']} cores.")
    st = record["streaming"]
    lines += ["", f"2. Streaming: Census x k as {NUM_SHARDS} Parquet shards, "
                  f"from_files(batch_size=1024, chunk_rows={s['chunk_rows']:,}, "
                  f"shuffle_buffer={s['shuffle_buffer']:,}), schema adapted on "
                  f"the first {s['sample_rows']:,} rows; one epoch per fresh process, "
                  f"medians of {s['stream_repeats']}"]
    lines.append(f"{'k':>4} {'reader':<14} {'rows':>11} {'rows/s':>9} {'peak RSS MB':>11} "
                 f"{'before stream':>13} {'streaming adds':>14}")
    for c in st["summary"]["cases"]:
        lines.append(f"{c['k']:>4} {c['reader']:<14} {c['rows']:>11,} "
                     f"{_fmt(c['rows_per_second']):>9} {_fmt(c['peak_rss_mb']):>11} "
                     f"{_fmt(c['rss_before_stream_mb']):>13} {_fmt(c['stream_adds_mb']):>14}")
    for reader, items in st["summary"]["rss_ratio"].items():
        for item in items:
            lines.append(f"RSS(x{item['k']}) / RSS(x1), {reader}: process peak "
                         f"{_fmt(item['peak'], '.2f')}, what streaming adds "
                         f"{_fmt(item['stream_adds'], '.2f')} (rows x"
                         f"{_fmt(item['rows_ratio'], '.0f')})")
    a = record["adapt"]
    lines += ["", f"3. Adapt: Schema.infer + adapt on {a['rows']:,} rows of the x"
                  f"{a['table_k']} table: {a['seconds_per_million']:.1f} s per million rows "
                  f"(infer {a['infer_seconds_per_million']:.1f}, adapt "
                  f"{a['adapt_seconds_per_million']:.1f}); the frame {a['frame_mb']:,.0f} MB, "
                  f"peak RSS {a['peak_rss_mb']:,.0f} MB"]
    if "streaming_pass" in a:
        p = a["streaming_pass"]
        lines.append(f"   Streaming adapt (what mtrec train does for dataset.stream): one pass "
                     f"over all {p['rows']:,} rows, reading included: {p['seconds_per_million']:.1f} "
                     f"s per million rows, peak RSS {p['peak_rss_mb']:,.0f} MB")
    return "\n".join(lines)


def git_state():
    def git(*argv):
        done = subprocess.run(["git", "-C", str(ROOT), *argv], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None

    dirty = git("status", "--porcelain", "mtrec")
    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(dirty)}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 20,000 Census rows, 1 epoch, x1 and x10 of them")
    parser.add_argument("--with-100x", action="store_true",
                        help="also the x100 table (about 20 M rows: minutes to write and "
                             "to stream, a few GB of disk)")
    parser.add_argument("--epochs", type=int, default=None, help="default 2 (quick: 1)")
    parser.add_argument("--batch-size", type=int, default=1024,
                        help="global batch B of `1 process` (default 1024)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="training repeats per case (default 1: each run takes minutes)")
    parser.add_argument("--stream-repeats", type=int, default=1)
    parser.add_argument("--sample-rows", type=int, default=None,
                        help="rows the streaming runs adapt on (default 100,000; quick 5,000)")
    parser.add_argument("--adapt-rows", type=int, default=1_000_000)
    parser.add_argument("--skip-training", action="store_true",
                        help="only the streaming and adapt parts (the record's training "
                             "part is then empty)")
    parser.add_argument("--output", default=None,
                        help=f"record path (default {RESULT.relative_to(ROOT)}; quick: "
                             f"{QUICK_RESULT.relative_to(ROOT)})")
    parser.add_argument("--report", action="store_true",
                        help="regenerate benchmarks/RESULTS.md afterwards")
    # worker mode (internal)
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--files", help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", help=argparse.SUPPRESS)
    parser.add_argument("--max-rows", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--sizes", type=int, nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--shuffle-buffer", type=int, default=None,
                        help="streaming shuffle buffer (default 100,000; quick 5,000)")
    parser.add_argument("--chunk-rows", type=int, default=None,
                        help="rows read from a shard at a time (default 20,000, below the "
                             "x1 table's shard size, so every k has the same memory bound; "
                             "quick 2,000)")
    parser.add_argument("--num-workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--worker-index", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return args
    args.epochs = args.epochs or (1 if args.quick else 2)
    args.sample_rows = args.sample_rows or (5_000 if args.quick else 100_000)
    args.shuffle_buffer = args.shuffle_buffer or (5_000 if args.quick else 100_000)
    args.chunk_rows = args.chunk_rows or (2_000 if args.quick else 20_000)
    args.max_rows = 20_000 if args.quick else None
    args.sizes = [1, 10] + ([100] if args.with_100x else [])
    if args.batch_size < 2 or args.batch_size % 2:
        parser.error(f"--batch-size must be even (2 workers get half each), got "
                     f"{args.batch_size}.")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)), flush=True)
        return 0
    from mtrec.utils.atomic import write_text_atomic

    output = Path(args.output) if args.output else (QUICK_RESULT if args.quick else RESULT)
    started = time.perf_counter()
    info = machine()
    print(f"CPU: {info['cpu_model']}, {info['cpu_count']} cores "
          f"(affinity {info['cpu_affinity']}); load average {info.get('load_average')}",
          flush=True)
    WORK.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="run-", dir=WORK))
    try:
        training_runs, versions = ([], None) if args.skip_training else \
            run_training(args, work)
        built = run_worker("build", work, cache_dir=WORK / "cache", sizes=args.sizes,
                           max_rows=args.max_rows)
        tables = built["tables"]
        for k, table in tables.items():
            how = "reused" if table["reused"] else f"written in {table['seconds']} s"
            print(f"  table x{k}: {table['rows']:,} rows, {table['bytes'] / MB:,.0f} MB in "
                  f"{len(table['files'])} shards ({how})", flush=True)
        streaming_runs = run_streaming(args, work, tables)
        adapt_k = 10 if "10" in tables else max(args.sizes)
        adapt = run_worker("adapt", work, files=json.dumps(tables[str(adapt_k)]["files"]),
                           adapt_rows=args.adapt_rows)
        print(f"  adapt {adapt['rows']:,} rows: {adapt['seconds_per_million']:.1f} s per M rows; "
              f"streaming adapt of all {adapt['streaming_pass']['rows']:,} rows: "
              f"{adapt['streaming_pass']['seconds_per_million']:.1f} s per M rows", flush=True)
    except BaseException:
        print(f"(logs kept in {work})", file=sys.stderr)
        raise
    shutil.rmtree(work, ignore_errors=True)

    record = {
        "benchmark": "scale",
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": ("python benchmarks/scale.py " + " ".join(
            shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))).strip(),
        "quick": args.quick,
        "git": git_state(),
        "versions": versions,
        "machine": info,
        "settings": {"config": str(CONFIG.relative_to(ROOT)), "epochs": args.epochs,
                     "batch_size": args.batch_size, "repeats": args.repeats,
                     "stream_repeats": args.stream_repeats, "sample_rows": args.sample_rows,
                     "max_rows": args.max_rows, "sizes": args.sizes,
                     "num_shards": NUM_SHARDS, "stream_batch_size": 1024,
                     "shuffle_buffer": args.shuffle_buffer, "chunk_rows": args.chunk_rows,
                     "base_rows": built["base_rows"],
                     "train_rows": (training_runs[0]["figures"]["rows"] if training_runs
                                    else built["base_rows"])},
        "training": {"runs": training_runs, "summary": summarise_training(training_runs)},
        "streaming": {"tables": tables, "runs": streaming_runs,
                      "summary": summarise_streaming(streaming_runs)},
        "adapt": {**adapt, "table_k": adapt_k},
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(output, json.dumps(record, indent=1) + "\n")
    print()
    print(table_text(record))
    print(f"\nwrote {output}")
    if args.report and args.quick:
        print("--report: a quick record is not reported (RESULTS.md shows "
              f"{RESULT.relative_to(ROOT)}); left as it is.")
    elif args.report:
        sys.path.insert(0, str(HERE))
        import report  # benchmarks/report.py

        print(f"wrote {report.write_report(report.records.RESULTS, HERE / 'RESULTS.md', HERE / 'figures')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
