"""Bounded memory of `mtrec.data.streaming.from_csv` on a CSV larger than RAM budgets.

Writes a CSV of at least `--size-gb` GB (the AliExpress sample's rows,
repeated, with distinct `search_id`s) into a temporary folder, adapts the
AliExpress schema on the sample, streams the whole file once through
`from_csv`, and reports rows/s and memory:

- VmRSS sampled from /proc/self/status every `--interval` seconds (peak,
  and the value at each tenth of the file, to show it stays flat);
- the process's peak RSS, `resource.getrusage(RUSAGE_SELF).ru_maxrss`;
- both against the file size, and the RSS before streaming (TensorFlow and
  the model-free pipeline already loaded).

The temporary file is deleted at the end, even on error.

    python benchmarks/memory_streaming.py [--size-gb 2] [--chunk-rows 50000]
        [--batch-size 4096] [--shuffle-buffer 0] [--output result.json]
"""

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MB = 1024 * 1024


def vm_rss_bytes():
    """Current resident set size from /proc/self/status (Linux)."""
    return status_kib("VmRSS")[0] * 1024


def status_kib(*keys):
    """The values of `keys` (e.g. "VmRSS", "RssAnon") in /proc/self/status,
    in KiB (Linux)."""
    values = {}
    with open("/proc/self/status") as status:
        for line in status:
            key, _, rest = line.partition(":")
            if key in keys:
                values[key] = int(rest.split()[0])
    missing = [key for key in keys if key not in values]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not found in /proc/self/status "
                           f"(Linux only).")
    return tuple(values[key] for key in keys)


def max_rss_bytes():
    # ru_maxrss is in KiB on Linux, bytes on macOS.
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


class RssSampler(threading.Thread):
    """Samples VmRSS every `interval` seconds until stopped."""

    def __init__(self, interval):
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = 0
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self):
        while not self._stop_event.is_set():
            self.peak = max(self.peak, vm_rss_bytes())
            self.samples += 1
            self._stop_event.wait(self.interval)

    def stop(self):
        self._stop_event.set()
        self.join()
        self.peak = max(self.peak, vm_rss_bytes())


def write_big_csv(sample_path, target, min_bytes):
    """Repeat the sample's rows (fresh search_id per copy) until >= min_bytes."""
    lines = Path(sample_path).read_text().splitlines()
    header, rows = lines[0], [line.split(",", 1) for line in lines[1:]]
    if header.split(",", 1)[0] != "search_id":
        raise ValueError(f"{sample_path}: expected search_id as the first column.")
    written, copies, count = 0, 0, 0
    with open(target, "w") as out:
        out.write(header + "\n")
        while written < min_bytes:
            base = copies * 100_000
            block = "".join(f"{base + int(sid)},{rest}\n" for sid, rest in rows)
            out.write(block)
            written += len(block)
            copies += 1
            count += len(rows)
    return os.path.getsize(target), count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=2.0)
    parser.add_argument("--chunk-rows", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--shuffle-buffer", type=int, default=0)
    parser.add_argument("--interval", type=float, default=0.05)
    parser.add_argument("--tmpdir", default=None, help="where to write the file")
    parser.add_argument("--data-dir", default=None, help="default: $MTREC_DATA_DIR")
    parser.add_argument("--output", default=None, help="optional JSON record")
    args = parser.parse_args(argv)

    import tensorflow as tf
    import mtrec
    from mtrec.data import aliexpress, streaming

    sample = aliexpress.sample_paths(args.data_dir)["train"]
    train, _, _ = aliexpress.load_sample(args.data_dir)
    schema = aliexpress.schema().adapt(train)

    folder = Path(tempfile.mkdtemp(prefix="mtrec-stream-", dir=args.tmpdir))
    try:
        path = folder / "aliexpress_big.csv"
        start = time.perf_counter()
        size, expected_rows = write_big_csv(sample, path, int(args.size_gb * 1e9))
        write_seconds = time.perf_counter() - start
        print(f"wrote {path}: {size / 1e9:.2f} GB, {expected_rows:,} rows "
              f"in {write_seconds:.0f} s", flush=True)

        dataset = streaming.from_csv(path, schema, batch_size=args.batch_size,
                                     chunk_rows=args.chunk_rows,
                                     shuffle_buffer=args.shuffle_buffer, seed=0)
        baseline = vm_rss_bytes()
        sampler = RssSampler(args.interval)
        sampler.start()
        rows, checkpoints, next_mark = 0, [], 0.1
        start = time.perf_counter()
        for _, labels in dataset:
            rows += int(labels["ctr"].shape[0])
            if rows >= next_mark * expected_rows:
                checkpoints.append((round(next_mark, 1), vm_rss_bytes()))
                next_mark += 0.1
        seconds = time.perf_counter() - start
        sampler.stop()
        if rows != expected_rows:
            raise RuntimeError(f"streamed {rows} rows, the file has {expected_rows}.")
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    record = {
        "benchmark": "memory_streaming",
        "file_bytes": size,
        "rows": rows,
        "columns": len(aliexpress.COLUMNS),
        "chunk_rows": args.chunk_rows,
        "batch_size": args.batch_size,
        "shuffle_buffer": args.shuffle_buffer,
        "seconds": round(seconds, 2),
        "rows_per_second": round(rows / seconds),
        "mb_per_second": round(size / MB / seconds, 2),
        "rss_before_mb": round(baseline / MB, 1),
        "peak_vmrss_sampled_mb": round(sampler.peak / MB, 1),
        "ru_maxrss_mb": round(max_rss_bytes() / MB, 1),
        "rss_samples": sampler.samples,
        "rss_at_fraction_mb": {str(f): round(b / MB, 1) for f, b in checkpoints},
        "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                     "mtrec": mtrec.__version__},
        "cpus": os.cpu_count(),
    }
    print(f"file            {size / MB:,.0f} MiB ({size / 1e9:.2f} GB), {rows:,} rows "
          f"x {record['columns']} columns")
    print(f"streamed in     {seconds:.1f} s: {record['rows_per_second']:,} rows/s, "
          f"{record['mb_per_second']} MiB/s (chunk_rows={args.chunk_rows}, "
          f"batch_size={args.batch_size}, shuffle_buffer={args.shuffle_buffer})")
    print(f"RSS before      {record['rss_before_mb']:,} MiB")
    print(f"peak VmRSS      {record['peak_vmrss_sampled_mb']:,} MiB "
          f"(sampled {sampler.samples} times)")
    print(f"ru_maxrss       {record['ru_maxrss_mb']:,} MiB "
          f"= {max_rss_bytes() / size:.2f} x the file size")
    print("VmRSS by progress: " + ", ".join(
        f"{int(float(f) * 100)}%: {mb:,.0f}" for f, mb in record["rss_at_fraction_mb"].items()))
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    main()
