"""Run folders written whole: refusal, overwrite by rename, per-run folders,
atomic .keras writes, leftovers of killed runs."""

import datetime
import json
import os
import subprocess
import sys

import pytest

from helpers import tiny_run_config
from mtrec.data import registry
from mtrec.experiments import run_folder, runner
from mtrec.experiments.config import parse_config
from mtrec.experiments.run_folder import RunFolder, RunFolderError

TINY = tiny_run_config(epochs=1)


def tiny(**sections):
    return parse_config({**TINY, **sections})


def a_run(path, marker="old"):
    path.mkdir(parents=True)
    (path / "metrics.json").write_text(json.dumps({"marker": marker}))
    return path


def dead_pid():
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_an_existing_run_is_refused_before_any_data_loads(tmp_path, monkeypatch):
    out = a_run(tmp_path / "run")

    def no_loading(*args, **kwargs):
        raise AssertionError("data loaded before the output folder was checked")

    monkeypatch.setattr(registry, "load_dataset", no_loading)
    with pytest.raises(RunFolderError, match=rf"Output folder {out} already holds a "
                                             rf"complete run.*--overwrite"):
        runner.train(tiny(), output_dir=out, log=None)
    assert json.loads((out / "metrics.json").read_text()) == {"marker": "old"}
    with pytest.raises(RunFolderError, match="files that are not a run"):
        (tmp_path / "other").mkdir()
        (tmp_path / "other" / "notes.txt").write_text("mine")
        runner.train(tiny(), output_dir=tmp_path / "other", log=None)


def test_overwrite_replaces_the_old_run_only_at_the_end(tmp_path, monkeypatch):
    out = a_run(tmp_path / "run")
    seen = []
    real_publish = run_folder.publish

    def watching_publish(source, target):
        # everything is written aside; the old run is still in place
        seen.append((sorted(p.name for p in source.iterdir()),
                     json.loads((target / "metrics.json").read_text())))
        real_publish(source, target)

    monkeypatch.setattr(run_folder, "publish", watching_publish)
    result = runner.train(tiny(), output_dir=out, verbose=0, log=None, overwrite=True)
    assert seen == [(["config.yaml", "gates.png", "logs", "metrics.json", "metrics.md",
                      "model.keras", "schema.json"], {"marker": "old"})]
    assert result.record == json.loads((out / "metrics.json").read_text())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]   # nothing left


def test_publish_swaps_a_folder_in(tmp_path):
    old = a_run(tmp_path / "run", "old")
    new = a_run(tmp_path / "new", "new")
    run_folder.publish(new, old)
    assert json.loads((old / "metrics.json").read_text()) == {"marker": "new"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_a_failed_save_leaves_the_previous_keras_file(tmp_path, monkeypatch):
    path = tmp_path / "model.keras"
    path.write_bytes(b"the previous good model")

    class HalfSaved:
        def save(self, filepath):
            open(filepath, "wb").write(b"PK\x03\x04 half")  # a kill mid-write
            raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        run_folder.save_model_atomic(HalfSaved(), path)
    assert path.read_bytes() == b"the previous good model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]


def test_runs_without_output_dir_get_folders_of_their_own(tmp_path):
    config = tiny()
    fingerprint = run_folder.config_fingerprint(config)
    now = datetime.datetime(2026, 1, 2, 3, 4, 5)
    first = run_folder.default_output_dir(config, fingerprint, tmp_path, now=now)
    assert first == tmp_path / "synthetic_tiny-MMoE-20260102-030405"
    first.mkdir()
    second = run_folder.default_output_dir(config, fingerprint, tmp_path, now=now)
    assert second == tmp_path / "synthetic_tiny-MMoE-20260102-030405-2"
    # an unfinished run of the same config is found again (so it resumes) ...
    RunFolder(second).prepare(fingerprint)
    later = now + datetime.timedelta(hours=1)
    assert run_folder.default_output_dir(config, fingerprint, tmp_path, now=later) == second
    # ... one of another config is not
    other = tiny(training={**TINY["training"], "epochs": 2})
    assert run_folder.default_output_dir(
        other, run_folder.config_fingerprint(other), tmp_path, now=later).name == \
        "synthetic_tiny-MMoE-20260102-040405"
    assert run_folder.config_fingerprint(tiny(output_dir="x")) == fingerprint


def test_the_fingerprint_of_an_earlier_release_still_matches():
    """A run begun before a training option was added resumes after the
    upgrade: options whose default trains as before are not fingerprinted
    (a222b39be5c5a83f is what the release before steps_per_execution
    computed for this config)."""
    from helpers import tiny_run_config

    config = {**tiny_run_config(), "output_dir": "x"}
    assert run_folder.config_fingerprint(parse_config(config)) == "a222b39be5c5a83f"
    faster = {**config, "training": {**config["training"], "steps_per_execution": 8,
                                     "checkpoint_every_steps": 5}}
    assert run_folder.config_fingerprint(parse_config(faster)) == "a222b39be5c5a83f"


def test_checkpoints_of_another_config_are_refused_unless_restarted(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.prepare("aaaa")
    (folder.checkpoints / "epoch-0001-step-000000").mkdir(parents=True)
    with pytest.raises(RunFolderError, match="different config.*--restart"):
        folder.prepare("bbbb")
    assert folder.prepare("aaaa") is True          # same config: resume
    assert folder.prepare("bbbb", resume=False) is False
    assert not folder.checkpoints.exists()


def test_leftovers_of_dead_runs_are_cleaned_and_live_ones_named(tmp_path):
    out = tmp_path / "run"
    dead = dead_pid()
    (tmp_path / f"run.partial-{dead}").mkdir()
    old = a_run(tmp_path / f"run.old-{dead}", "stranded")   # killed mid-overwrite
    RunFolder(out).prepare("aaaa", overwrite=True)
    assert json.loads((out / "metrics.json").read_text()) == {"marker": "stranded"}
    assert not old.exists() and not (tmp_path / f"run.partial-{dead}").exists()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / f"run.partial-{live.pid}").mkdir()
        with pytest.raises(RunFolderError, match=f"pid {live.pid}"):
            RunFolder(out).prepare("aaaa", overwrite=True)
    finally:
        live.kill()
        live.wait()


def test_the_cli_train_flags(tmp_path, monkeypatch, capsys):
    import yaml

    from mtrec import cli
    from mtrec.training.callbacks import TrainingDiverged

    calls = []

    def fake_train(config, **kwargs):
        calls.append(kwargs)
        if len(calls) == 3:
            raise TrainingDiverged("Training diverged: the loss is nan at epoch 2, "
                                   "step 1, in task(s) 'click'", epoch=2, step=1)

    monkeypatch.setattr(runner, "train", fake_train)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(TINY))
    assert cli.main(["train", str(config), "--overwrite"]) == 0
    assert cli.main(["train", str(config), "--restart"]) == 0
    assert (calls[0]["overwrite"], calls[0]["resume"]) == (True, True)
    assert (calls[1]["overwrite"], calls[1]["resume"]) == (False, False)
    assert cli.main(["train", str(config)]) == cli.EXIT_DIVERGED == 3
    assert "epoch 2, step 1, in task(s) 'click'" in capsys.readouterr().err
    assert cli.main(["train", str(config), "--resume", "--restart"]) == 2
