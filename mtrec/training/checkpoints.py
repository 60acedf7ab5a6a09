"""Training checkpoints that a rerun resumes from, exactly.

`TrainingCheckpoint` is the callback; `latest_checkpoint` and
`Checkpoint.restore` are what a rerun calls before `fit`. A checkpoint is a
folder `epoch-EEEE-step-SSSSSS/` (epochs completed, steps done in the
next epoch) holding

    model.weights.h5   the model's weights: layers, the loss weighting's state
                       (DWA's loss history, GradNorm's weights, learned
                       log-variances: it is a sub-layer), and the optimizer
                       (its moments and iteration count)
    extra.npz          the seed generators' states (dropout's: Keras does
                       not put them in the weights file), early stopping's
                       best weights; mid-epoch, the running values of the
                       training metrics
    state.json         epoch, step, early stopping's best / wait /
                       best_epoch / stopped_epoch, whether training finished,
                       the history so far, the Python and NumPy RNG states,
                       seconds trained

It is written into `tmp-<name>/` and renamed into place, so a kill leaves
the previous checkpoint whole; the two newest are kept (a damaged newest
one falls back to the one before).

Exact resumption also needs the data in the same order: `from_pandas`
reshuffles on each new iterator from one seeded generator.
`EpochStream(dataset).at(epoch, step)` makes epoch k the dataset's k-th
pass (one repeated stream, read with `steps_per_epoch`), advances a fresh
dataset past the passes already trained and skips the interrupted epoch's
first `step` batches (the rest of that epoch is one `fit` of its own); on CPU with `set_seed(..., deterministic=True)` a
resumed run then ends with the same weights and metrics as an
uninterrupted one (tested for equality).

Where Keras' `BackupAndRestore` did not fit (so this is not a subclass):
it writes `latest.weights.h5` in place (a kill mid-write leaves a broken
file), it resumes at the start of the epoch even after a mid-epoch save
(the epoch's first batches are trained twice), it keeps neither early
stopping's state nor the data order nor the history, and it deletes its
checkpoint when `fit` ends -- before the run folder is written. Its layout
(weights file + JSON metadata with epoch and batch) and `save_freq`
semantics are kept. Keras 3's BackupAndRestore also has no chief/worker
logic; in multi-worker runs only the chief writes here (`write=False` on
the others), and every worker resumes from the chief's checkpoints.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import threading
import time
import warnings
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from mtrec.training.callbacks import TrainingDiverged

__all__ = ["Checkpoint", "TrainingCheckpoint", "TrainingInterrupted",
           "EpochStream", "interrupt_saves_checkpoint", "latest_checkpoint"]

_WEIGHTS = "model.weights.h5"
_EXTRA = "extra.npz"
_STATE = "state.json"
_KEEP = 2


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during `fit`, after a checkpoint was saved; the message says where."""


class Checkpoint:
    """One saved training state (see the module docstring).

    Attributes:
        path: pathlib.Path of the checkpoint folder.
        state: dict, the content of `state.json`.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.state = json.loads((self.path / _STATE).read_text(encoding="utf-8"))

    @property
    def epoch(self):
        """Epochs completed."""
        return int(self.state["epoch"])

    @property
    def step(self):
        """Steps done in epoch `epoch` (0-based) when saved; 0 at an epoch end."""
        return int(self.state["step"])

    @property
    def finished(self):
        """Whether training had ended (early stop or last epoch)."""
        return bool(self.state["finished"])

    def restore(self, model, early_stopping=None):
        """Load the model's (and optimizer's) variables, the RNG states and,
        when given, early stopping's state, which takes effect when `fit`
        starts (after its `on_train_begin` reset)."""
        if model.optimizer is not None and not model.optimizer.built:
            model.optimizer.build(model.trainable_variables)
        model.load_weights(self.path / _WEIGHTS)
        python_state, numpy_state = self.state["rng"]["python"], self.state["rng"]["numpy"]
        random.setstate((python_state[0], tuple(python_state[1]), python_state[2]))
        np.random.set_state((numpy_state[0], np.asarray(numpy_state[1], np.uint32),
                             *numpy_state[2:]))
        with np.load(self.path / _EXTRA) as extra:
            arrays = dict(extra)
        for variable, value in zip(_rng_variables(model), _numbered(arrays, "rng_")):
            variable.assign(value)
        return {"early_stopping": self.state.get("early_stopping"),
                "best_weights": _numbered(arrays, "best_"),
                "metrics": _numbered(arrays, "metric_")}


def latest_checkpoint(directory):
    """The newest loadable checkpoint under `directory`, or None.

    A checkpoint whose files cannot be read is skipped with a warning (the
    one before it is used).
    """
    directory = Path(directory)
    if not directory.is_dir():
        return None
    for path in sorted((p for p in directory.iterdir()
                        if p.is_dir() and p.name.startswith("epoch-")), reverse=True):
        try:
            checkpoint = Checkpoint(path)
            with np.load(path / _EXTRA):
                pass
            if not (path / _WEIGHTS).is_file():
                raise OSError(f"{_WEIGHTS} is missing")
            return checkpoint
        except (OSError, ValueError, KeyError) as error:
            warnings.warn(f"Checkpoint {path} cannot be read ({error}); trying the "
                          f"one before it.", stacklevel=2)
    return None


class EpochStream:
    """The training data of a run as one stream that `fit` reads with
    `steps_per_epoch`, positioned at any (epoch, step).

    Keras creates a varying number of iterators per epoch (one more ahead
    of each epoch when the dataset's length is known), and each new
    iterator of a reshuffling dataset takes the next shuffle order; so the
    order an epoch sees would depend on Keras' internals and on how the run
    started. Repeated into one stream, epoch k is the dataset's k-th pass,
    always; `at(epoch, step)` builds a fresh dataset, advances it past the
    passes already trained (only its shuffle order moves on) and skips
    `step` batches.

    Args:
        make_dataset: function returning the `tf.data.Dataset` of one epoch
            of training batches, of known length (as
            `mtrec.data.from_pandas` builds), the same on every call.
    """

    def __init__(self, make_dataset):
        self.make_dataset = make_dataset
        self.steps_per_epoch = None

    def length(self):
        """Steps per epoch, before training starts (for a learning-rate
        schedule's length); the dataset built to count them is the one
        the next `at` call streams, so no extra shuffle order is drawn."""
        if self.steps_per_epoch is None:
            self._unread = self.make_dataset()
            self.steps_per_epoch = self._known_length(self._unread)
        return self.steps_per_epoch

    def at(self, epoch, step=0):
        """The stream from batch `step` of epoch `epoch` (both 0-based) on."""
        dataset = self.__dict__.pop("_unread", None)
        if dataset is None:
            dataset = self.make_dataset()
        self.steps_per_epoch = self._known_length(dataset)
        for _ in range(epoch):
            # Each new iterator takes the next shuffle order: the shuffle's
            # seed generator is shared by every iterator of this dataset
            # and of datasets built on it.
            next(iter(dataset.take(1)), None)
        stream = dataset.repeat()
        return stream.skip(step) if step else stream

    @staticmethod
    def _known_length(dataset):
        steps = int(dataset.cardinality())
        if steps < 0:
            raise ValueError(
                f"The training dataset's length is unknown (cardinality "
                f"{steps}); checkpointed training needs a finite "
                f"dataset of known length, such as mtrec.data.from_pandas builds.")
        return steps



class TrainingCheckpoint(keras.callbacks.Callback):
    """Saves the training state at each epoch end and every `every_steps`
    steps, and on Ctrl-C (see `interrupt_saves_checkpoint`).

    Place it after the callbacks whose state it saves (early stopping, the
    loss weighting's epoch hook) and after the non-finite-loss guard, so a
    diverged step is never saved.

    Args:
        directory: folder of the checkpoints.
        every_steps: int or None. Also save every this many training steps.
        early_stopping: the `keras.callbacks.EarlyStopping` of the run, or
            None.
        epochs: int, the `epochs` of the run (to mark the last one).
        write: bool. Write checkpoints; False on the workers of a
            multi-worker run other than the chief (they keep the history
            and resume from the chief's checkpoints).
    """

    # Saves at the first call end past each multiple of every_steps, which
    # `mtrec.training.steps_per_execution.plan_train` makes land on it.
    counts_steps_itself = True

    def __init__(self, directory, every_steps=None, early_stopping=None, epochs=None,
                 write=True):
        super().__init__()
        self.directory = Path(directory)
        self.write = write
        self.every_steps = every_steps
        self.early_stopping = early_stopping
        self.epochs = epochs
        self.restored = {}
        self.history = []   # the logs of every epoch, over every process
        self.seconds = 0.0  # seconds of fit before the current one
        self.interrupt_requested = threading.Event()
        self._epoch = 0
        self._offset = 0
        self._last_step = 0   # the step of the last on_train_batch_end
        self._started = None

    def resume_from(self, checkpoint, restored):
        """Go on from `checkpoint` in the next `fit` (`restored`: what
        `checkpoint.restore(...)` returned)."""
        self.restored = dict(restored)
        self.history = list(checkpoint.state["history"])
        self.seconds = float(checkpoint.state["train_seconds"])
        self._epoch, self._offset = checkpoint.epoch, checkpoint.step

    @property
    def train_seconds(self):
        """Seconds of `fit` so far, over every process that trained this run."""
        return self.seconds + (time.perf_counter() - self._started if self._started else 0)

    def on_train_end(self, logs=None):
        self.seconds = self.train_seconds
        self._started = None

    def on_train_begin(self, logs=None):
        self._started = time.perf_counter()
        stopper, saved = self.early_stopping, self.restored.get("early_stopping")
        if stopper is not None and saved is not None:
            stopper.best = None if saved["best"] is None else float(saved["best"])
            stopper.wait = saved["wait"]
            stopper.best_epoch = saved["best_epoch"]
            stopper.stopped_epoch = saved["stopped_epoch"]
            weights = self.restored.get("best_weights")
            stopper.best_weights = weights if weights else None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._last_step = self._offset
        metrics = self.restored.pop("metrics", None)
        if metrics and self._offset:
            # Mid-epoch resume: the epoch's running training metrics go on
            # from where they were (fit reset them just before this hook).
            for variable, value in zip(_metric_variables(self.model), metrics):
                variable.assign(value)

    def on_train_batch_end(self, batch, logs=None):
        # Keras reports the last call of an epoch under steps_per_execution
        # as a whole call's end (`begin + N - 1`), past the epoch's steps.
        steps = (self.params or {}).get("steps") or batch + 1
        step = self._offset + min(batch + 1, steps)
        if self.interrupt_requested.is_set():
            path = self.save(self._epoch, step)
            raise TrainingInterrupted(
                f"interrupted at epoch {self._epoch + 1}, step {step}; checkpoint "
                f"saved in {path}. Rerun the same command to resume.")
        # With steps_per_execution > 1 Keras calls this every N steps only:
        # save when a multiple of every_steps was passed since the last call.
        if self.every_steps and step // self.every_steps > self._last_step // self.every_steps:
            self.save(self._epoch, step)
        self._last_step = step

    def on_epoch_end(self, epoch, logs=None):
        self._offset = 0
        self.history.append({k: _float(v) for k, v in (logs or {}).items()})
        finished = bool(self.model.stop_training) or epoch + 1 == self.epochs
        self.save(epoch + 1, 0, finished=finished)

    def save(self, epoch, step, finished=False):
        """Write a checkpoint of the current state; returns its path."""
        weights = self.model.get_weights()
        if not all(np.isfinite(w).all() for w in weights
                   if np.issubdtype(np.asarray(w).dtype, np.floating)):
            raise TrainingDiverged(
                f"Training diverged: the model's weights are not finite at epoch "
                f"{epoch + (step > 0)}, step {step} (the loss was still finite); "
                f"they were not saved, the last good checkpoint in {self.directory} "
                f"is kept. Lower training.learning_rate, then rerun with --restart.",
                epoch=epoch + (step > 0), step=step)
        if not self.write:
            return None
        name = f"epoch-{epoch:04d}-step-{step:06d}"
        final = self.directory / name
        temporary = self.directory / f"tmp-{name}-{os.getpid()}"
        if temporary.exists():
            shutil.rmtree(temporary)
        temporary.mkdir(parents=True)
        self.model.save_weights(temporary / _WEIGHTS)
        extra = {f"rng_{i:05d}": np.asarray(v)
                 for i, v in enumerate(_rng_variables(self.model))}
        stopper = self.early_stopping
        if stopper is not None and stopper.best_weights is not None:
            extra.update({f"best_{i:05d}": w for i, w in enumerate(stopper.best_weights)})
        if step:
            extra.update({f"metric_{i:05d}": np.asarray(v)
                          for i, v in enumerate(_metric_variables(self.model))})
        np.savez(temporary / _EXTRA, **extra)
        python_state = random.getstate()
        numpy_state = np.random.get_state()
        state = {
            "epoch": epoch, "step": step, "finished": finished,
            "history": self.history,
            "early_stopping": None if stopper is None else {
                "best": _float(stopper.best), "wait": int(stopper.wait),
                "best_epoch": int(stopper.best_epoch),
                "stopped_epoch": int(stopper.stopped_epoch)},
            "rng": {"python": [python_state[0], list(python_state[1]), python_state[2]],
                    "numpy": [numpy_state[0], numpy_state[1].tolist(),
                              *[_float(x) for x in numpy_state[2:]]]},
            "train_seconds": self.train_seconds,
        }
        (temporary / _STATE).write_text(json.dumps(state), encoding="utf-8")
        if final.exists():
            shutil.rmtree(final)  # same name: the same state, saved again
        os.replace(temporary, final)
        self._prune()
        return final

    def _prune(self):
        done = sorted(p for p in self.directory.iterdir() if p.name.startswith("epoch-"))
        for path in done[:-_KEEP]:
            shutil.rmtree(path, ignore_errors=True)


class interrupt_saves_checkpoint:
    """Context manager: during `fit`, Ctrl-C (SIGINT) asks `checkpoint` to
    save at the end of the current step and raise `TrainingInterrupted`;
    a second Ctrl-C interrupts at once. Does nothing outside the main
    thread (Python delivers signals only there)."""

    def __init__(self, checkpoint):
        self.checkpoint = checkpoint
        self._previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.checkpoint.interrupt_requested.is_set():
            raise KeyboardInterrupt
        self.checkpoint.interrupt_requested.set()

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _rng_variables(model):
    """The seed generators' states (dropout's among them): variables of the
    model that `save_weights` does not write (they are not in `weights`)."""
    saved = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in saved]


def _metric_variables(model):
    return [v for metric in model.metrics for v in metric.variables]


def _numbered(arrays, prefix):
    return [arrays[k] for k in sorted(arrays) if k.startswith(prefix)]


def _float(value):
    """A JSON number (NaN and inf as strings JSON can hold)."""
    if value is None:
        return None
    value = float(np.asarray(value))
    return value if np.isfinite(value) else str(value)
