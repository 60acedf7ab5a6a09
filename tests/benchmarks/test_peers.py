"""Tests of the peers benchmark (benchmarks/peers/) that need no peer venv:
the encoded-data cache and its checksums, the job schedule, the table's
arithmetic, the report section, and the mtrec runner end to end on a few
hundred Census rows (in a subprocess, as run.py starts it)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import load_module

ROOT = Path(__file__).resolve().parents[2]
PEERS = ROOT / "benchmarks" / "peers"


# The peers scripts import each other by plain name (as when run as scripts).
sys.path.insert(0, str(PEERS))
protocol = load_module("protocol", PEERS / "protocol.py")
prepare = load_module("prepare", PEERS / "prepare.py")
table = load_module("table", PEERS / "table.py")
peers_run = load_module("peers_run", PEERS / "run.py")


def _fake_arrays(rows=20, seed=0):
    rng = np.random.default_rng(seed)
    return {"ids": rng.integers(0, 5, (rows, 3)), "floats": rng.normal(size=(rows, 4)).astype(
        "float32"), "rows": np.arange(rows), "income": (rng.random(rows) < 0.5).astype(
        "float32"), "marital": (rng.random(rows) < 0.5).astype("float32")}


def _fake_cache(cache_dir, rows):
    folder = prepare.cache_folder(cache_dir, rows)
    manifest = prepare.write_cache(
        folder, {split: _fake_arrays(seed=i) for i, split in enumerate(protocol.SPLITS)},
        {"format": prepare.FORMAT, "group": 1, "loader_seed": 0,
         "categorical": [{"name": f"c{i}", "cardinality": 5} for i in range(3)],
         "floats": [f"f{i}" for i in range(4)]})
    return folder, manifest


def test_cache_is_reused_while_its_checksums_match(tmp_path):
    folder, written = _fake_cache(tmp_path, 500)
    assert not folder.with_name(folder.name + ".tmp").exists()
    got_folder, manifest, reused = prepare.prepare(tmp_path, rows=500)
    assert reused and got_folder == folder
    assert manifest["splits"] == written["splits"]
    train = protocol.load_split(folder, "train")
    np.testing.assert_array_equal(train["ids"], _fake_arrays(seed=0)["ids"])


def test_cache_with_a_changed_file_is_refused(tmp_path):
    folder, _ = _fake_cache(tmp_path, 500)
    arrays = _fake_arrays(seed=0)
    arrays["ids"][0, 0] += 1  # one id changed after the manifest was written
    np.savez(folder / "train.npz", **arrays)
    with pytest.raises(prepare.ChecksumMismatch, match=r"train\.npz has sha256 .* "
                                                       r"--rebuild"):
        prepare.prepare(tmp_path, rows=500)


def test_cache_with_a_missing_file_is_refused(tmp_path):
    folder, _ = _fake_cache(tmp_path, 500)
    (folder / "test.npz").unlink()
    with pytest.raises(prepare.ChecksumMismatch, match=r"test\.npz is missing"):
        prepare.verify(folder)


def test_select_rows_draws_the_same_fraction_of_every_split():
    splits = {"train": range(1000), "valid": range(400), "test": range(200)}
    chosen = prepare.select_rows(splits, 250)
    assert [len(chosen[s]) for s in ("train", "valid", "test")] == [250, 100, 100]
    for split, positions in chosen.items():
        assert np.all(np.diff(positions) > 0) and positions[-1] < len(splits[split])
    np.testing.assert_array_equal(chosen["train"], prepare.select_rows(splits, 250)["train"])
    assert all(len(v) == len(splits[k]) for k, v in prepare.select_rows(splits, None).items())
    with pytest.raises(ValueError, match="--rows must be >= 100"):
        prepare.select_rows(splits, 10)


def test_train_examples_per_s_leaves_the_first_epoch_out():
    assert protocol.train_examples_per_s(1000, [9.0, 1.0, 3.0]) == (500.0, 2)
    # One epoch: it is all there is, and no epoch counts as timed.
    assert protocol.train_examples_per_s(1000, [2.0]) == (500.0, 0)


def test_parse_result_takes_the_marked_line_among_library_output():
    record = {"library": "x", "test_auc": {"income": 0.9}}
    stdout = "train loss: {...}\n" + protocol.RESULT_MARKER + json.dumps(record) + "\nbye\n"
    assert protocol.parse_result(stdout) == record
    with pytest.raises(ValueError, match="printed no 'PEERS_RESULT' line"):
        protocol.parse_result("train loss: {...}\n")


def test_schedule_interleaves_libraries_and_rotates_their_order():
    jobs = peers_run.schedule([1, 2], ["MMoE", "PLE"], ["a", "b", "c"])
    assert len(jobs) == 12 and len(set(jobs)) == 12
    firsts = [jobs[i][2] for i in range(0, 12, 3)]
    assert firsts == ["a", "b", "c", "a"]
    assert [j[:2] for j in jobs[:3]] == [(1, "MMoE")] * 3


def _run(library, model, seed, auc, train, predict, after, peak):
    return {"library": library, "model": model, "seed": seed, "parameters": 100,
            "test_auc": {"income": auc, "marital": auc + 0.04}, "epochs_run": 3,
            "train_examples_per_s": train, "predict_examples_per_s": predict,
            "rss_after_data_mb": after, "peak_rss_mb": peak}


def test_summary_takes_medians_and_ratios_divide_them():
    runs = [
        _run("mtrec", "MMoE", 1, 0.940, 100_000, 400_000, 1000, 1100),
        _run("mtrec", "MMoE", 2, 0.946, 120_000, 500_000, 1000, 1150),
        _run("mtrec", "MMoE", 3, 0.944, 300_000, 450_000, 1000, 1120),
        _run("deepctr", "MMoE", 1, 0.945, 50_000, 100_000, 500, 700),
        _run("deepctr", "MMoE", 2, 0.945, 60_000, 200_000, 500, 800),
        _run("deepctr", "MMoE", 3, 0.945, 40_000, 150_000, 500, 750),
        _run("torch-rechub", "MMoE", 1, 0.930, 20_000, 100_000, 400, 1000),
    ]
    summary = table.summarize(runs)
    ours, theirs = summary[("mtrec", "MMoE")], summary[("deepctr", "MMoE")]
    assert ours["train_examples_per_s"] == 120_000 and ours["income_auc"] == 0.944
    assert ours["memory_added_mb"] == 120 and theirs["memory_added_mb"] == 250
    assert ours["income_auc_mean"] == pytest.approx(2.83 / 3)
    rows = {r["peer"]: r for r in table.ratios(summary)}
    assert rows["deepctr"]["train"] == pytest.approx(120_000 / 50_000)
    assert rows["deepctr"]["predict"] == pytest.approx(450_000 / 150_000)
    assert rows["deepctr"]["memory_added"] == pytest.approx(120 / 250)
    assert rows["deepctr"]["income_auc_gap"] == pytest.approx(2.83 / 3 - 0.945)
    # 2.4x faster and less memory, but the AUC is 0.0017 below DeepCTR's mean.
    assert rows["deepctr"]["goal"] is False
    assert rows["torch-rechub"]["goal"] is None
    assert rows["torch-rechub"]["memory_added"] == pytest.approx(120 / 600)
    lines = table.markdown(runs)
    assert "| MMoE | mtrec | 3 | 3, 3, 3 | 100 | 0.9440 | 0.9840 | 120,000 | 450,000 " \
           "| 1,000 | 1,120 | 120 |" in lines
    assert "| MMoE | deepctr | 2.40 | 3.00 | 0.48 | -0.0017 | -0.0017 | no |" in lines


def test_goal_is_met_within_the_auc_margin():
    runs = [_run("mtrec", "PLE", 1, 0.9441, 100_000, 1, 10, 20),
            _run("deepctr-reseeded", "PLE", 1, 0.9450, 50_000, 1, 10, 20)]
    (row,) = table.ratios(table.summarize(runs))
    assert row["goal"] is True


def test_report_has_a_peers_section(tmp_path):
    report = load_module("report", ROOT / "benchmarks" / "report.py")
    assert report.peers_section(tmp_path / "peers.json")[-1] == \
        "Not run yet: `make bench-peers`.\n"
    record = {"command": "python benchmarks/peers/run.py --smoke", "smoke": True,
              "wall_seconds": 61, "threads": 2, "git": {"commit": "abc", "dirty": False},
              "machine": {"cpu_model": "Some CPU", "cpu_affinity": 2},
              "protocol": {"rows": {"train": 300, "valid": 100, "test": 100},
                           "embedding_dim": 8, "learning_rate": 1e-3, "batch_size": 1024,
                           "max_epochs": 2, "patience": 2, "seeds": [1], "timed": "T"},
              "versions": {"mtrec": {"mtrec": "0.1.0"}},
              "runs": [_run("mtrec", "MMoE", 1, 0.9, 10, 20, 5, 7),
                       _run("deepctr", "MMoE", 1, 0.9, 5, 10, 5, 9),
                       {"library": "deepctr", "model": "PLE", "seed": 1, "error": "x"}]}
    (tmp_path / "peers.json").write_text(json.dumps(record))
    text = "\n".join(report.peers_section(tmp_path / "peers.json"))
    assert "Some CPU, 2 cores" in text and "1 run(s) failed" in text
    assert "| MMoE | deepctr | 2.00 | 2.00 | 0.50 |" in text
    assert table.CONFIG_DIFFERENCES[0] in text


@pytest.mark.slow  # ~20 s: trains on Census rows in a subprocess
@pytest.mark.needs_data("census-income")
def test_mtrec_runner_end_to_end_on_a_few_hundred_rows(tmp_path):
    folder, manifest, reused = prepare.prepare(tmp_path, rows=400)
    assert not reused and manifest["splits"]["train"]["rows"] == 400
    assert manifest["embedding_dim"] == 8 and len(manifest["categorical"]) == 31
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    done = subprocess.run(
        [sys.executable, str(PEERS / "mtrec_runner.py"), "--model", "MMoE", "--seed", "1",
         "--data", str(folder), "--threads", "1", "--max-epochs", "2"],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = protocol.parse_result(done.stdout)
    assert result["library"] == "mtrec" and result["model"] == "MMoE"
    assert result["epochs_run"] == 2 and result["timed_epochs"] == 1
    assert result["train_rows"] == 400
    assert result["predict_rows"] == manifest["splits"]["test"]["rows"]
    assert set(result["test_auc"]) == {"income", "marital"}
    assert all(0.0 <= v <= 1.0 for v in result["test_auc"].values())
    assert result["peak_rss_mb"] >= result["rss_after_data_mb"] > 0
    assert result["train_examples_per_s"] > 0 and result["predict_examples_per_s"] > 0
    # Reused the second time, without loading Census again.
    assert prepare.prepare(tmp_path, rows=400)[2] is True


# --------------------------------------------------------------------------
# Scaling curves (run.py --sweep, sweep.py)
# --------------------------------------------------------------------------
sweep = load_module("sweep", PEERS / "sweep.py")


def test_parse_sweep_reads_name_and_values_in_order():
    assert sweep.parse_sweep("batch_size=256, 1024,4096") == ("batch_size", [256, 1024, 4096])
    assert sweep.parse_sweep("experts=64,4") == ("experts", [64, 4])


@pytest.mark.parametrize("text, message", [
    ("batch_size", r"expected NAME=V1,V2,\.\.\. .* found no '='"),
    ("batch=256", r"unknown size 'batch'; sweepable: batch_size, experts"),
    ("experts=4,eight", r"'eight' is not an integer"),
    ("experts=0,4", r"0 must be >= 1"),
    ("experts=4,8,4", r"4 is listed twice"),
    ("experts=", r"no values after '='"),
])
def test_parse_sweep_rejects_bad_values_naming_them(text, message):
    with pytest.raises(sweep.SweepError, match=message):
        sweep.parse_sweep(text)


def test_sweep_defaults_are_mmoe_mtrec_and_deepctr_fixed_epochs_no_early_stop():
    args = peers_run.parse_args(["--sweep", "batch_size=256,1024", "--sweep", "experts=4,8"])
    assert args.sweep == [("batch_size", [256, 1024]), ("experts", [4, 8])]
    assert args.models == ["MMoE"] and args.seeds == [1]
    assert args.libraries == ["mtrec", "deepctr-reseeded"]
    assert args.max_epochs == sweep.SWEEP_EPOCHS and args.patience == sweep.SWEEP_EPOCHS
    assert args.out == peers_run.SWEEP_OUT
    # Without --sweep the table's defaults are unchanged.
    plain = peers_run.parse_args([])
    assert plain.sweep == [] and plain.models == list(protocol.MODELS)
    assert plain.seeds == [1, 2, 3] and plain.max_epochs == protocol.MAX_EPOCHS
    assert plain.patience == protocol.PATIENCE and plain.out == peers_run.DEFAULT_OUT
    smoke = peers_run.parse_args(["--smoke", "--sweep", "experts=4"])
    assert smoke.out == peers_run.SWEEP_SMOKE_OUT and smoke.max_epochs == 2


@pytest.mark.parametrize("argv, message", [
    (["--sweep", "experts=4", "--models", "MMoE,PLE"],
     "--sweep experts applies to MMoE only, and --models has PLE"),
    (["--sweep", "experts=4", "--sweep", "experts=8"], "--sweep experts given more than once"),
    (["--sweep", "batch_size=256", "--max-epochs", "1"], "needs at least 2"),
    (["--sweep", "batch_size=2x"], "'2x' is not an integer"),
])
def test_bad_sweep_arguments_exit_with_the_reason(argv, message, capsys):
    with pytest.raises(SystemExit):
        peers_run.parse_args(argv)
    assert message in capsys.readouterr().err


def test_runner_arguments_take_the_swept_sizes():
    parser = protocol.runner_arguments("x")
    base = ["--model", "MMoE", "--seed", "1", "--data", "d", "--threads", "2"]
    args = parser.parse_args(base + ["--batch-size", "256", "--num-experts", "32"])
    assert (args.batch_size, args.num_experts) == (256, 32)
    defaults = parser.parse_args(base)
    assert (defaults.batch_size, defaults.num_experts) == (protocol.BATCH_SIZE,
                                                           protocol.NUM_EXPERTS)
    with pytest.raises(SystemExit):
        parser.parse_args(base + ["--batch-size", "0"])


def test_sweep_points_share_the_protocol_point_and_interleave_libraries():
    assert sweep.base_point() == {"batch_size": protocol.BATCH_SIZE,
                                  "experts": protocol.NUM_EXPERTS}
    point_list = sweep.points([("batch_size", [256, 1024, 4096, 8192]),
                               ("experts", [4, 8, 16, 32, 64])])
    assert len(point_list) == 8  # batch 1024 with 8 experts once
    assert point_list[1] == {"batch_size": 1024, "experts": 8}
    assert sweep.runner_flags(point_list[0]) == ["--batch-size", "256", "--num-experts", "8"]
    jobs = sweep.schedule(point_list, [1, 2], ["MMoE"], ["a", "b"])
    assert len(jobs) == 32 and jobs[0][1] == 1 and jobs[16][1] == 2
    assert [j[3] for j in jobs[:6]] == ["a", "b", "b", "a", "a", "b"]
    assert jobs[0][0] == jobs[1][0] != jobs[2][0]


def _sweep_run(library, seed, point, epochs, rows=1000, auc=0.9):
    return {"library": library, "model": "MMoE", "seed": seed, "point": point,
            "parameters": 10, "epoch_train_seconds": epochs, "train_rows": rows,
            "predict_examples_per_s": 5.0, "test_auc": {"income": auc, "marital": auc}}


def test_sweep_curves_take_median_epochs_then_median_seeds_and_ratios():
    # The first epoch (tracing) is left out, then the median of the rest.
    assert sweep.epoch_examples_per_s(_sweep_run("a", 1, {}, [9.0, 2.0, 1.0, 4.0])) == 500
    small = dict(sweep.base_point(), experts=4)
    large = dict(sweep.base_point(), experts=64)
    runs = [_sweep_run("mtrec", 1, small, [9, 1.0, 1.0, 1.0]),      # 1000 ex/s
            _sweep_run("mtrec", 2, small, [9, 0.5, 0.5, 0.5]),      # 2000
            _sweep_run("deepctr-reseeded", 1, small, [9, 2.0, 2.0, 2.0]),  # 500
            _sweep_run("deepctr-reseeded", 2, small, [9, 2.0, 2.0, 2.0]),
            _sweep_run("mtrec", 1, large, [9, 2.0, 2.0, 2.0]),      # 500
            _sweep_run("deepctr-reseeded", 1, large, [9, 10.0, 10.0, 10.0])]  # 100
    sweeps = [("experts", [4, 64])]
    rows = sweep.curves(sweeps, ["MMoE"], ["mtrec", "deepctr-reseeded"], runs)
    assert rows[0]["libraries"]["mtrec"]["train_examples_per_s"] == 1500
    assert rows[0]["ratios"][("mtrec", "deepctr-reseeded")] == pytest.approx(3.0)
    assert rows[1]["ratios"][("mtrec", "deepctr-reseeded")] == pytest.approx(5.0)
    t = sweep.trend(rows, "experts", "MMoE", ("mtrec", "deepctr-reseeded"))
    assert (t["first"], t["last"]) == (4, 64)
    assert t["ours"] == pytest.approx(500 / 1500) and t["theirs"] == pytest.approx(0.2)
    lines = sweep.markdown(sweeps, ["MMoE"], ["mtrec", "deepctr-reseeded"], runs)
    assert "| 4 | MMoE | 2 | 1,500 | 500 | 0.9000 | 0.9000 | 3.00x |" in lines
    assert "| 64 | MMoE | 1 | 500 | 100 | 0.9000 | 0.9000 | 5.00x |" in lines


def test_report_has_a_sweep_section(tmp_path):
    report = load_module("report", ROOT / "benchmarks" / "report.py")
    assert report.peers_sweep_section(tmp_path / "absent.json")[-1] == \
        "Not run yet: `make bench-peers-sweep`.\n"
    small, large = dict(sweep.base_point(), experts=4), dict(sweep.base_point(), experts=64)
    record = {"command": "python benchmarks/peers/run.py --sweep experts=4,64",
              "wall_seconds": 60, "threads": 2, "finished": "now",
              "git": {"commit": "abc", "dirty": False},
              "machine": {"cpu_model": "Some CPU", "cpu_affinity": 2},
              "protocol": {"rows": {"train": 300, "valid": 100, "test": 100},
                           "embedding_dim": 8, "learning_rate": 1e-3, "models": ["MMoE"],
                           "seeds": [1], "libraries": ["mtrec", "deepctr-reseeded"],
                           "sweeps": [{"name": "experts", "values": [4, 64]}],
                           "points": [small, large], "timed": "T"},
              "runs": [_sweep_run("mtrec", 1, small, [9, 1.0]),
                       _sweep_run("deepctr-reseeded", 1, small, [9, 2.0]),
                       _sweep_run("mtrec", 1, large, [9, 2.0]),
                       _sweep_run("deepctr-reseeded", 1, large, [9, 10.0]),
                       {"library": "mtrec", "model": "MMoE", "seed": 2, "point": small,
                        "error": "x"}]}
    (tmp_path / "peers_sweep.json").write_text(json.dumps(record))
    text = "\n".join(report.peers_sweep_section(tmp_path / "peers_sweep.json", tmp_path,
                                                "fig"))
    assert "Some CPU, 2 cores" in text and "1 run(s) failed" in text
    assert "| 64 | MMoE | 1 | 500 | 100 | 0.9000 | 0.9000 | 5.00x |" in text
    assert ("MMoE, experts 4 -> 64: mtrec keeps 50% of its train ex/s, deepctr-reseeded "
            "20%; mtrec / deepctr-reseeded goes from 2.00x to 5.00x.") in text
