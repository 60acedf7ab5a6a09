"""SIGKILL, the one interruption nothing can catch: during training and
during the end-of-run writes, it leaves the previous good run loadable, and
rerunning the same command resumes.

The child process trains through the Python API with one extra callback
(or a patched write step) that announces itself and waits to be killed.
"""

import json
import os
import shutil
import signal
import subprocess
import sys

import keras
import pytest

from helpers import kill_when_ready, tiny_run_config
from mtrec.experiments import runner
from mtrec.experiments.config import parse_config

# One step per call, so the child pauses right after the step-3 checkpoint.
TINY = tiny_run_config(model={"dropout": 0.1}, epochs=3, checkpoint_every_steps=3,
                       steps_per_execution=1, early_stopping={"monitor": "mean", "patience": 3})

CHILD = """
import json, sys, time, keras
from mtrec.experiments import run_folder, runner
from mtrec.experiments.config import parse_config

config, out, where = parse_config(json.loads(sys.argv[1])), sys.argv[2], sys.argv[3]

def wait_to_be_killed():
    print("READY", flush=True)
    time.sleep(600)

class PauseInEpoch2(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == 1 and batch == 3:     # after the step-3 checkpoint
            wait_to_be_killed()

callbacks = [PauseInEpoch2()] if where == "training" else []
if where == "writing":
    def publish(source, target):               # every artefact written aside
        wait_to_be_killed()
    run_folder.publish = publish
runner.train(config, output_dir=out, verbose=0, log=None, overwrite=True,
             callbacks=callbacks)
"""


def run_until_ready_then_kill(out, where, timeout=180):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in [os.getcwd(), os.environ.get("PYTHONPATH")] if p)}
    child = subprocess.Popen([sys.executable, "-c", CHILD, json.dumps(TINY), str(out),
                              where], stdout=subprocess.PIPE, text=True, env=env)
    return kill_when_ready(child, timeout)


# Slow (~30 s: three child processes train and are killed); make test-slow.
@pytest.mark.slow
def test_sigkill_in_training_and_in_the_writes_keeps_the_old_run(tmp_path):
    config = parse_config(TINY)
    reference = runner.train(config, output_dir=tmp_path / "reference", verbose=0,
                             log=None)
    out = tmp_path / "run"
    shutil.copytree(reference.output_dir, out)        # the previous good run
    before = (out / "metrics.json").read_bytes()

    # 1. killed in epoch 2 of 3: the old run is untouched, a checkpoint is kept
    assert run_until_ready_then_kill(out, "training") == -signal.SIGKILL
    assert (out / "metrics.json").read_bytes() == before
    keras.saving.load_model(out / "model.keras")
    assert sorted(p.name for p in (tmp_path / "run.work" / "checkpoints").iterdir()) \
        == ["epoch-0001-step-000000", "epoch-0001-step-000003"]

    # 2. the rerun resumes, and is killed with every artefact written aside
    assert run_until_ready_then_kill(out, "writing") == -signal.SIGKILL
    assert (out / "metrics.json").read_bytes() == before
    keras.saving.load_model(out / "model.keras")
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert [n for n in leftovers if ".partial-" in n], leftovers

    # 3. the next rerun cleans up, resumes from the finished training state
    result = runner.train(config, output_dir=out, verbose=0, log=None, overwrite=True)
    assert result.record["resumed_from"] == {"epoch": 3, "step": 0}
    assert result.record["metrics"] == reference.record["metrics"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reference", "run"]
