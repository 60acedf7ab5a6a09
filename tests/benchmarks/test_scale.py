"""Tests of benchmarks/scale.py's pure parts on tiny data, no timing
assertions: the Census x k table (noise, shuffling, shards, reuse), the
/proc parsing and the peak-RSS roles, the streaming and training records
and their ratios, the printed table and the RESULTS.md section."""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import load_module

ROOT = Path(__file__).resolve().parents[2]


sys.path.insert(0, str(ROOT / "benchmarks"))
scale = load_module("scale", ROOT / "benchmarks" / "scale.py")


def _frame(rows=40, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "age": rng.uniform(18, 80, rows).astype("float32"),
        "weeks": rng.integers(0, 52, rows).astype("int32"),
        "job": rng.choice(["a", "b", "c"], rows).astype(object),
        "income": (rng.random(rows) < 0.3).astype("float32"),
        "marital": (rng.random(rows) < 0.5).astype("float32"),
    })


def test_cpu_model_reads_the_first_model_name():
    text = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: other\n"
    assert scale.cpu_model(text) == "AMD EPYC 7B13"


def test_status_bytes_reads_kib_and_is_none_when_absent():
    text = "Name:\tpython\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n"
    assert scale.status_bytes(text) == 2048 * 1024
    assert scale.status_bytes(text, "VmRSS") == 1024 * 1024
    assert scale.status_bytes("Name:\tzombie\nState:\tZ\n") is None


def test_own_process_is_found_among_its_parents_descendants():
    assert os.getpid() in scale.descendants(os.getppid())


def test_process_peaks_names_the_launcher_and_workers_in_start_order():
    mb = scale.MB
    peaks = {10: {"peak_rss_bytes": 500 * mb, "start": 1, "cmdline": "python -m mtrec.cli"},
             12: {"peak_rss_bytes": 900 * mb, "start": 5, "cmdline": "python -m mtrec.cli x"},
             11: {"peak_rss_bytes": 800 * mb, "start": 3, "cmdline": "python -m mtrec.cli x"},
             13: {"peak_rss_bytes": 1 * mb, "start": 2, "cmdline": "sh -c true"}}
    assert scale.process_peaks(peaks, 10) == {"launcher": 500.0, "worker 0": 800.0,
                                              "worker 1": 900.0}
    assert scale.process_peaks({10: peaks[10]}, 10) == {"process": 500.0}


def test_noisy_copy_keeps_labels_vocabulary_and_dtypes():
    frame = _frame()
    rng = np.random.default_rng(0)
    plain = scale.noisy_copy(frame, rng, noise=False)
    # a permutation of the rows, nothing changed
    assert not plain.equals(frame)
    pd.testing.assert_frame_equal(
        plain.sort_values(["age"]).reset_index(drop=True),
        frame.sort_values(["age"]).reset_index(drop=True))
    noisy = scale.noisy_copy(frame, rng, noise=True, swap_fraction=0.25)
    assert list(noisy.dtypes) == list(frame.dtypes)
    assert set(noisy["job"]) <= set(frame["job"])
    assert sorted(noisy["income"]) == sorted(frame["income"])     # labels kept
    assert not np.allclose(np.sort(noisy["age"]), np.sort(frame["age"]))   # jittered
    np.testing.assert_allclose(np.sort(noisy["age"]), np.sort(frame["age"]), rtol=0.1)


def test_build_table_writes_k_copies_as_shards_and_reuses_them(tmp_path):
    frame = _frame(rows=40)
    table = scale.build_table(frame, 3, tmp_path, num_shards=4)
    assert table["rows"] == 120 and not table["reused"] and len(table["files"]) == 4
    shards = pd.concat([pd.read_parquet(f) for f in table["files"]], ignore_index=True)
    assert len(shards) == 120
    assert shards["income"].sum() == pytest.approx(3 * frame["income"].sum())
    assert not list(tmp_path.glob("*.staging-*"))     # the staging copies are gone
    again = scale.build_table(frame, 3, tmp_path, num_shards=4)
    assert again["reused"] and again["files"] == table["files"]


def test_stream_record_and_streaming_summary_ratios():
    def run(k, reader, rows, peak, before):
        return {"k": k, "reader": reader, "repeat": 0,
                **scale.stream_record(rows, 2.0, peak * scale.MB, peak * scale.MB,
                                      before * scale.MB)}

    record = scale.stream_record(1000, 4.0, 300 * scale.MB)
    assert record["rows_per_second"] == 250 and record["peak_rss_mb"] == 300.0
    assert record["stream_peak_rss_mb"] is None
    summary = scale.summarise_streaming([
        run(1, "1 worker", 100, 1000, 800), run(10, "1 worker", 1000, 1100, 800),
        run(1, "worker 0 of 2", 50, 900, 800)])
    cases = {(c["k"], c["reader"]): c for c in summary["cases"]}
    assert cases[(10, "1 worker")]["stream_adds_mb"] == 300
    (item,) = summary["rss_ratio"]["1 worker"]
    assert item["k"] == 10 and item["rows_ratio"] == 10
    assert item["peak"] == pytest.approx(1.1) and item["stream_adds"] == pytest.approx(1.5)
    assert "worker 0 of 2" not in summary["rss_ratio"]     # no x10 run of it


def _metrics(rows, epochs, seconds, name, replicas, workers, global_batch):
    return {"dataset": {"rows": {"train": rows}}, "epochs_run": epochs,
            "train_seconds": seconds,
            "strategy": {"name": name, "replicas": replicas, "workers": workers,
                         "global_batch_size": global_batch}}


def test_training_figures_examples_per_second_and_step_time():
    got = scale.training_figures(_metrics(1000, 2, 4.0, "none", 1, 1, 300))
    assert got["examples_per_second"] == 500
    assert got["steps_per_epoch"] == 4          # ceil(1000 / 300)
    assert got["step_ms"] == pytest.approx(500)  # 4 s / (2 x 4 steps)


def test_summarise_training_ratios_and_overhead_per_step():
    def run(case, repeat, seconds, name, replicas, workers, batch, rss):
        return {"case": case, "repeat": repeat, "peak_rss_mb": rss,
                "figures": scale.training_figures(
                    _metrics(1024, 1, seconds, name, replicas, workers, batch))}

    runs = []
    for repeat, slow in enumerate((1.0, 2.0)):      # a slower machine in repeat 1
        runs += [run("1 process", repeat, 1.0 * slow, "none", 1, 1, 256, {"process": 100}),
                 run("1 proc, B/2", repeat, 1.6 * slow, "none", 1, 1, 128, {"process": 90}),
                 run("mirrored", repeat, 1.25 * slow, "mirrored", 1, 1, 256, {"process": 110}),
                 run("2 workers", repeat, 2.0 * slow, "multi_worker", 2, 2, 256,
                     {"launcher": 50, "worker 0": 120, "worker 1": 100})]
    summary = scale.summarise_training(runs)
    cases = summary["cases"]
    assert cases["1 process"]["ratio_to_1_process"] == 1
    # ratios per repeat, then their median: the slow repeat does not move them
    assert cases["mirrored"]["ratio_to_1_process"] == pytest.approx(0.8)
    assert cases["2 workers"]["ratio_to_1_process"] == pytest.approx(0.5)
    assert cases["2 workers"]["batch_per_replica"] == 128
    assert cases["2 workers"]["peak_rss_mb"] == {"launcher": 50, "worker 0": 120,
                                                 "worker 1": 100}
    # 2 workers: 4 steps of 2.0 s -> 500 ms; 1 proc at 128: 8 steps of 1.6 s -> 200 ms;
    # repeat 1 doubles both: overheads 300 and 600 ms, median 450.
    assert summary["overhead_ms_per_step"] == pytest.approx(450)
    assert summary["overhead_fraction"] == pytest.approx(450 / 300)


def test_adapt_figures_per_million_rows():
    got = scale.adapt_figures(250_000, 1.0, 3.0)
    assert got["seconds_per_million"] == pytest.approx(16)
    assert got["infer_seconds_per_million"] == pytest.approx(4)


def _record():
    def stream(k, reader, rows, peak):
        return {"k": k, "reader": reader, "repeat": 0,
                **scale.stream_record(rows, 1.0, peak * scale.MB, peak * scale.MB,
                                      800 * scale.MB)}

    training = [{"case": case, "repeat": 0, "peak_rss_mb": {"process": 900.0},
                 "figures": scale.training_figures(_metrics(2048, 2, seconds, name,
                                                            replicas, replicas, batch))}
                for case, seconds, name, replicas, batch in [
                    ("1 process", 1.0, "none", 1, 1024), ("1 proc, B/2", 1.5, "none", 1, 512),
                    ("mirrored", 1.2, "mirrored", 1, 1024),
                    ("2 workers", 3.0, "multi_worker", 2, 1024)]]
    streams = [stream(1, "1 worker", 100, 1000), stream(10, "1 worker", 1000, 1010)]
    return {"benchmark": "scale", "quick": True, "command": "python benchmarks/scale.py --quick",
            "created": "2026-01-01T00:00:00+00:00", "git": {"commit": "abc1234def", "dirty": False},
            "machine": {"cpu_model": "Test CPU", "cpu_count": 2, "cpu_affinity": 2,
                        "memory_gb": 8, "load_average": [1.0, 1.0, 1.0]},
            "settings": {"epochs": 2, "batch_size": 1024, "repeats": 1, "stream_repeats": 1,
                         "sample_rows": 50, "train_rows": 2048, "chunk_rows": 20,
                         "shuffle_buffer": 50, "num_shards": 8, "sizes": [1, 10],
                         "stream_batch_size": 1024},
            "training": {"runs": training, "summary": scale.summarise_training(training)},
            "streaming": {"tables": {}, "runs": streams,
                          "summary": scale.summarise_streaming(streams)},
            "adapt": {**scale.adapt_figures(1000, 0.5, 1.5), "table_k": 10, "frame_mb": 1.0,
                      "peak_rss_mb": 900.0, "read_seconds": 0.1},
            "wall_seconds": 60.0}


def test_table_text_names_the_machine_and_the_ratios():
    text = scale.table_text(_record())
    assert "Test CPU, 2 cores" in text
    assert "mirrored: 1 replica" in text
    assert "RSS(x10) / RSS(x1), 1 worker: process peak 1.01" in text
    assert "2-worker overhead per step" in text


def test_report_scale_section(tmp_path):
    report = load_module("report", ROOT / "benchmarks" / "report.py")
    assert report.scale_section(tmp_path / "missing.json")[-1].startswith("Not run yet")
    path = tmp_path / "scale.json"
    path.write_text(json.dumps(_record()))
    text = "\n".join(report.scale_section(path))
    assert "## Scale" in text and "Test CPU" in text and "make bench-scale" in text
    assert "| 2 workers |" in text and "1.01" in text
