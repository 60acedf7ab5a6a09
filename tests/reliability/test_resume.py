"""Nothing lost: an interrupted run resumes where it stopped and ends with
the same model as an uninterrupted one; a diverged run stops at once.

Tolerance: exact equality of the final validation/test metrics and of the
per-epoch validation history (CPU, `set_seed(..., deterministic=True)`,
dropout on, so the layers' RNG state is part of what is restored). A
mid-epoch resume also restores the epoch's running training metrics, so
the resumed epoch's training loss is the uninterrupted one's too.
"""

import json
import os
import shutil
import signal

import keras
import numpy as np
import pytest

from helpers import tiny_run_config
from mtrec.experiments import runner
from mtrec.experiments.config import parse_config
from mtrec.training.callbacks import TrainingDiverged
from mtrec.training.checkpoints import TrainingInterrupted, latest_checkpoint

# 1400 training rows / 256 = 6 steps per epoch. One step per call, so the
# interrupts, guards and checkpoints act at the very step (the automatic
# steps_per_execution has its own test below).
TINY = tiny_run_config(model={"dropout": 0.1}, epochs=4, loss_weighting="dwa",
                       checkpoint_every_steps=3, steps_per_execution=1,
                       early_stopping={"monitor": "mean", "patience": 3})


def tiny():
    return parse_config(TINY)


class At(keras.callbacks.Callback):
    """Calls `action(model)` at the end of step `step` (1-based) of epoch
    `epoch` (1-based), or at the start of the epoch when `step` is 0."""

    def __init__(self, epoch, step, action):
        super().__init__()
        self.epoch, self.step, self.action = epoch - 1, step, action
        self._current = None

    def on_epoch_begin(self, epoch, logs=None):
        self._current = epoch
        if epoch == self.epoch and self.step == 0:
            self.action(self.model)

    def on_train_batch_end(self, batch, logs=None):
        if self._current == self.epoch and batch + 1 == self.step:
            self.action(self.model)


def same_results(a, b):
    assert a["metrics"] == b["metrics"]
    keys = [k for k in a["history"][0] if k.startswith("val_")]
    assert [{k: e[k] for k in keys} for e in a["history"]] == \
           [{k: e[k] for k in keys} for e in b["history"]]
    assert a["epochs_run"] == b["epochs_run"] and a["best_epoch"] == b["best_epoch"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("resume") / "run"
    return runner.train(tiny(), output_dir=out, verbose=0, log=None)


def test_an_uninterrupted_run_leaves_no_work_folder(uninterrupted):
    out = uninterrupted.output_dir
    assert uninterrupted.record["resumed_from"] is None
    assert sorted(p.name for p in out.parent.iterdir()) == ["run"]


def test_keyboard_interrupt_between_epochs_resumes_at_the_next_epoch(
        uninterrupted, tmp_path):
    out = tmp_path / "run"

    def interrupt(model):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.train(tiny(), output_dir=out, verbose=0, log=None,
                     callbacks=[At(3, 0, interrupt)])
    assert not out.exists()                      # no run folder, only the work folder
    assert latest_checkpoint(tmp_path / "run.work" / "checkpoints").epoch == 2
    lines = []
    resumed = runner.train(tiny(), output_dir=out, verbose=0, log=lines.append)
    assert resumed.record["resumed_from"] == {"epoch": 2, "step": 0}
    assert any(line.startswith("Resuming from ") for line in lines)
    assert "resumed after epoch 2" in (out / "metrics.md").read_text()
    same_results(resumed.record, uninterrupted.record)
    assert not (tmp_path / "run.work").exists()


def test_ctrl_c_mid_epoch_saves_a_checkpoint_and_resumes_at_that_step(
        uninterrupted, tmp_path):
    out = tmp_path / "run"

    def ctrl_c(model):
        os.kill(os.getpid(), signal.SIGINT)     # what Ctrl-C sends

    with pytest.raises(TrainingInterrupted, match="interrupted at epoch 2, step 2; "
                                                  "checkpoint saved in .*epoch-0001-step-000002"):
        runner.train(tiny(), output_dir=out, verbose=0, log=None,
                     callbacks=[At(2, 1, ctrl_c)])
    resumed = runner.train(tiny(), output_dir=out, verbose=0, log=None)
    assert resumed.record["resumed_from"] == {"epoch": 1, "step": 2}
    same_results(resumed.record, uninterrupted.record)
    # the resumed epoch's training loss too (its running metrics were saved)
    assert resumed.record["history"][1]["loss"] == uninterrupted.record["history"][1]["loss"]


def test_restart_discards_the_checkpoints(uninterrupted, tmp_path):
    out = tmp_path / "run"

    def interrupt(model):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        runner.train(tiny(), output_dir=out, verbose=0, log=None,
                     callbacks=[At(2, 0, interrupt)])
    config = parse_config({**TINY, "training": {**TINY["training"], "epochs": 1}})
    with pytest.raises(ValueError, match="checkpoints of a different config.*--restart"):
        runner.train(config, output_dir=out, verbose=0, log=None)
    fresh = runner.train(config, output_dir=out, verbose=0, log=None, resume=False)
    assert fresh.record["resumed_from"] is None and fresh.record["epochs_run"] == 1


def test_a_non_finite_loss_stops_at_once_and_keeps_the_last_good_checkpoint(tmp_path):
    out = tmp_path / "run"

    def poison_click_tower(model):
        # The click tower's weights become NaN: only its loss is NaN.
        for variable in model.towers.weights:
            if "click" in variable.path:
                variable.assign(np.full(variable.shape, np.nan, variable.dtype))

    with pytest.raises(TrainingDiverged) as caught:
        runner.train(tiny(), output_dir=out, verbose=0, log=None,
                     callbacks=[At(2, 0, poison_click_tower)])
    error = caught.value
    assert (error.epoch, error.step, error.tasks) == (2, 1, ["click"])
    assert "loss is nan at epoch 2, step 1, in task(s) 'click'" in str(error)
    assert "last good checkpoint" in str(error) and "--restart" in str(error)
    assert not out.exists()
    last = latest_checkpoint(tmp_path / "run.work" / "checkpoints")
    assert (last.epoch, last.step) == (1, 0)
    assert np.isfinite(last.state["history"][0]["loss"])


def test_chance_level_tasks_are_named_in_the_log_and_the_record(tmp_path):
    def flatten_like(model):
        # The like tower outputs a constant: its kernels and biases at zero.
        for variable in model.towers.weights:
            if "like" in variable.path:
                variable.assign(np.zeros(variable.shape, variable.dtype))

    class FlattenAtEnd(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            flatten_like(self.model)

    config = parse_config({**TINY, "training": {**TINY["training"], "epochs": 1}})
    lines = []
    result = runner.train(config, output_dir=tmp_path / "run", verbose=0,
                          log=lines.append, callbacks=[FlattenAtEnd()])
    assert list(result.record["chance_level"]) == ["like"]
    assert "constant" in result.record["chance_level"]["like"]
    assert any(line.startswith("WARNING: task 'like' is no better than chance")
               for line in lines)
    assert "Warning: task like is no better than chance" in (
        result.output_dir / "metrics.md").read_text()


def test_steps_per_execution_trains_the_same_and_still_checkpoints_mid_epoch(
        uninterrupted, tmp_path):
    """steps_per_execution 4 on 6-step epochs runs 3 (the largest divisor:
    Keras would otherwise take 2 steps of the next epoch into each), trains
    the same run, and saves the checkpoint every 3 steps at the calls' ends."""
    from mtrec.experiments.run_folder import RunFolder

    out = tmp_path / "run"
    seen = []

    class ListCheckpoints(keras.callbacks.Callback):   # runs after mtrec's saver
        def on_train_batch_end(self, batch, logs=None):
            if not seen or len(seen) < 2:
                latest = latest_checkpoint(RunFolder(out).checkpoints)
                if latest is not None and latest.path.name not in seen:
                    seen.append(latest.path.name)

    config = parse_config({**TINY, "training": {**TINY["training"], "steps_per_execution": 4}})
    result = runner.train(config, output_dir=out, verbose=0, log=None,
                          callbacks=[ListCheckpoints()])
    assert seen == ["epoch-0000-step-000003", "epoch-0000-step-000006"]
    assert result.record["config"]["training"]["steps_per_execution"] == 4
    same_results(result.record, uninterrupted.record)


def test_null_steps_per_execution_runs_up_to_16_steps_per_call_dividing_the_checkpoints(
        uninterrupted, tmp_path):
    """With null, a one-process run takes the largest divisor of the epoch's
    6 steps that also divides checkpoint_every_steps (3) and is at most 16,
    and trains exactly what one step per call trains."""
    calls = []

    class StepsPerCall(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            calls.append(self.model.steps_per_execution)

    training = {**TINY["training"], "steps_per_execution": None}
    result = runner.train(parse_config({**TINY, "training": training}),
                          output_dir=tmp_path / "run", verbose=0, log=None,
                          callbacks=[StepsPerCall()])
    assert set(calls) == {3}
    assert result.record["config"]["training"]["steps_per_execution"] is None
    same_results(result.record, uninterrupted.record)
    # without checkpoint_every_steps: the whole 6-step epoch in one call
    calls.clear()
    del training["checkpoint_every_steps"]
    runner.train(parse_config({**TINY, "training": training}), output_dir=tmp_path / "other",
                 verbose=0, log=None, callbacks=[StepsPerCall()])
    assert set(calls) == {6}
