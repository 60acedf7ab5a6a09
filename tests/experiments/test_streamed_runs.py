"""`mtrec train` on `dataset: {files: ..., stream: true}`: the files are read
as streams (schema adapted in one pass, batches from the shards) and the
run folder is what a loaded run writes."""

import json

import numpy as np
import pytest
import yaml

from mtrec.cli import main
from mtrec.data.registry import load_dataset


def write_files(folder, shards=4):
    data = load_dataset("synthetic_tiny", rows=3000, seed=1)
    folder.mkdir()
    for index, part in enumerate(np.array_split(np.arange(len(data.train)), shards)):
        data.train.iloc[part].to_parquet(folder / f"train-{index}.parquet", index=False)
    data.valid.to_parquet(folder / "valid.parquet", index=False)
    data.test.to_parquet(folder / "test.parquet", index=False)
    return data


def run_config(tmp_path, stream=True, **training):
    config = {
        "dataset": {"files": {"train": "data/train-*.parquet", "valid": "data/valid.parquet",
                              "test": "data/test.parquet"},
                    "tasks": {"click": "binary", "like": "binary"}},
        "model": {"name": "MMoE", "args": {"num_experts": 2, "expert_units": [8],
                                           "tower_units": [4]}},
        "training": {"epochs": 2, "batch_size": 128, "learning_rate": 0.01, "seed": 2,
                     "early_stopping": None, "tensorboard": False, **training},
    }
    if stream:
        config["dataset"]["stream"] = {"chunk_rows": 300, "shuffle_buffer": 600}
    path = tmp_path / ("stream.yaml" if stream else "load.yaml")
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def streamed(tmp_path_factory):
    folder = tmp_path_factory.mktemp("streamed")
    data = write_files(folder / "data")
    config = run_config(folder)
    assert main(["train", str(config), "--output", str(folder / "run")]) == 0
    return folder, data


def test_a_streamed_run_writes_a_whole_run_folder(streamed, capsys):
    folder, data = streamed
    record = json.loads((folder / "run" / "metrics.json").read_text())
    assert record["dataset"]["streamed"] is True
    assert record["dataset"]["rows"] == {"train": len(data.train), "valid": len(data.valid),
                                         "test": len(data.test)}
    assert record["config"]["dataset"]["stream"] == {"chunk_rows": 300, "shuffle_buffer": 600,
                                                     "sample_rows": 100_000}
    assert len(record["history"]) == 2
    for task in ("click", "like"):
        assert record["metrics"]["test"][task]["count"] == len(data.test)
        assert record["metrics"]["test"][task]["auc"] > 0.7      # it learned
    # `mtrec evaluate RUN` streams the test files again: the same metrics.
    capsys.readouterr()
    assert main(["evaluate", str(folder / "run")]) == 0
    out = capsys.readouterr().out
    assert f"({len(data.test)} rows)" in out
    assert f"{record['metrics']['test']['click']['auc']:.4f}" in out


def test_a_streamed_run_adapts_on_every_train_row(streamed):
    folder, data = streamed
    schema = json.loads((folder / "run" / "schema.json").read_text())
    colours = sorted(data.train["color"].dropna().astype(str).unique())
    assert sorted(schema["stats"]["color"]["vocabulary"]) == colours
    assert schema["stats"]["x1"]["mean"] == pytest.approx(data.train["x1"].mean(), rel=1e-6)


@pytest.mark.slow  # a second training run (~25 s)
def test_a_streamed_run_matches_a_loaded_run(streamed, tmp_path):
    folder, _ = streamed
    (tmp_path / "data").symlink_to(folder / "data")
    assert main(["train", str(run_config(tmp_path, stream=False)),
                 "--output", str(tmp_path / "loaded")]) == 0
    loaded = json.loads((tmp_path / "loaded" / "metrics.json").read_text())
    stream = json.loads((folder / "run" / "metrics.json").read_text())
    stats = {name: json.loads((path / "schema.json").read_text())["stats"]
             for name, path in (("loaded", tmp_path / "loaded"), ("stream", folder / "run"))}
    assert stats["loaded"]["color"] == stats["stream"]["color"]
    for column in ("x1", "x2"):
        assert stats["loaded"][column] == pytest.approx(stats["stream"][column], rel=1e-9)
    for task in ("click", "like"):
        # other shuffle orders (a bounded buffer), the same rows and model
        assert stream["metrics"]["test"][task]["auc"] == pytest.approx(
            loaded["metrics"]["test"][task]["auc"], abs=0.02)


@pytest.mark.slow  # 2 worker processes (~60 s)
def test_two_local_workers_stream_their_own_shards(streamed, tmp_path, capsys):
    folder, data = streamed
    (tmp_path / "data").symlink_to(folder / "data")
    config = run_config(tmp_path)
    assert main(["train", str(config), "--local-workers", "2",
                 "--output", str(tmp_path / "two")]) == 0
    out = capsys.readouterr().out
    assert "[worker 1] Trained 2 epoch(s)" in out
    record = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert record["strategy"]["workers"] == 2 and record["dataset"]["streamed"]
    # 4 shards of 525 rows, 2 per worker: 1,050 rows = 8 full batches of 128 each
    assert "[worker 1] 8/8 " in out and len(data.train) == 2100
    for task in ("click", "like"):
        assert record["metrics"]["test"][task]["auc"] > 0.7
