"""The matched protocol every peers runner follows, and what they share.

Imported by the three runners (each in its own virtual environment: mtrec's,
DeepCTR's with TF 2.15 and numpy < 2, torch-rechub's with torch) and by the
orchestrator, so it uses the standard library and numpy only.

MMoE paper protocol on Census-Income group 1 (Ma et al., KDD 2018, §6.3):
the same encoded rows for every library (`prepare.py`), 8-dim embeddings,
SharedBottom [128], MMoE 8 experts x [16] with one-layer softmax gates,
PLE 2 levels x (1 specific + 2 shared experts) x [16], towers [8], Adam
1e-3, batch 1024, at most 10 epochs with early stopping on the mean
validation AUC (patience 2, best epoch's weights restored).

What each runner prints is one line, `RESULT_MARKER` + JSON (`emit`):
per-task test AUC (scikit-learn's `roc_auc_score` on the test split),
epochs run, the best epoch, per-epoch training-pass seconds, train and
predict examples/s, RSS after imports + data and peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

MODELS = ("SharedBottom", "MMoE", "PLE")
TASKS = ("income", "marital")

EMBEDDING_DIM = 8
BOTTOM_UNITS = [128]
NUM_EXPERTS = 8
EXPERT_UNITS = [16]
NUM_LEVELS = 2
NUM_SPECIFIC_EXPERTS = 1
NUM_SHARED_EXPERTS = 2
TOWER_UNITS = [8]
LEARNING_RATE = 1e-3
BATCH_SIZE = 1024
PREDICT_BATCH_SIZE = 1024
MAX_EPOCHS = 10
PATIENCE = 2

SPLITS = ("train", "valid", "test")
# Printed before a runner's JSON result, so that library log lines on the
# same stdout cannot be mistaken for it.
RESULT_MARKER = "PEERS_RESULT "


def runner_arguments(description):
    """The arguments every runner takes (a runner may add its own)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", required=True, choices=MODELS)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--data", required=True,
                        help="folder written by prepare.py (manifest.json + .npz)")
    parser.add_argument("--max-epochs", type=int, default=MAX_EPOCHS)
    parser.add_argument("--patience", type=int, default=PATIENCE)
    parser.add_argument("--threads", type=int, required=True,
                        help="intra-op (and inter-op) threads of the framework")
    # Unset: each library's own default (mtrec "auto", up to 16 training
    # steps per call; tf-keras 2.15, DeepCTR's, 1).
    parser.add_argument("--steps-per-execution", type=_positive, default=None,
                        help="Keras' compile(steps_per_execution=...) (Keras runners); "
                             "default: the library's own")
    # The protocol's sizes, changed only by a sweep (run.py --sweep).
    parser.add_argument("--batch-size", type=_positive, default=BATCH_SIZE,
                        help="training (and validation) batch; prediction keeps "
                             f"{PREDICT_BATCH_SIZE}")
    parser.add_argument("--num-experts", type=_positive, default=NUM_EXPERTS,
                        help="MMoE's experts (other models have none to change)")
    return parser


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def read_manifest(data_dir):
    path = Path(data_dir) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"No manifest at {path}; run benchmarks/peers/prepare.py first (run.py "
            f"does it) so the encoded arrays exist.")
    return json.loads(path.read_text(encoding="utf-8"))


def load_split(data_dir, split):
    """One split's encoded arrays.

    Returns:
        dict with `"ids"` int64 `(rows, num_categorical)` (per-feature ids,
        0 the OOV bucket), `"floats"` float32 `(rows, num_floats)` (the
        standardised numerics, then their missing indicators), `"rows"`
        int64 `(rows,)` (positions in mtrec's loader's split) and one
        float32 `(rows,)` label array per task.
    """
    with np.load(Path(data_dir) / f"{split}.npz") as arrays:
        return {name: arrays[name] for name in arrays.files}


def load_inputs(data_dir, inputs):
    """The prepared splits as a library's inputs.

    Args:
        data_dir: the prepared folder (`prepare.py`).
        inputs: function `(manifest, split arrays) -> (x, y)` in the
            library's own input format.

    Returns:
        `(manifest, (train_x, train_y), (valid_x, valid_y), test_x,
        test_labels)`, test labels as `{task: (rows,) array}`.
    """
    manifest = read_manifest(data_dir)
    splits = {split: load_split(data_dir, split) for split in SPLITS}
    test_x, _ = inputs(manifest, splits["test"])
    return (manifest, inputs(manifest, splits["train"]), inputs(manifest, splits["valid"]),
            test_x, {task: splits["test"][task] for task in TASKS})


def _status_mb(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"{field} not found in /proc/self/status; the peers benchmark "
                       f"measures memory on Linux only.")


def rss_now_mb():
    """Resident set size now (VmRSS), in MB."""
    return _status_mb("VmRSS")


def peak_rss_mb():
    """Peak resident set size of this process (VmHWM), in MB.

    Not `getrusage(RUSAGE_SELF).ru_maxrss`: on Linux that maximum survives
    fork and exec, so a runner started by a large parent (run.py holds
    mtrec, TensorFlow and the Census frames) would report the parent's peak.
    VmHWM belongs to the runner's own address space; `ru_maxrss_mb` is kept
    beside it in each result for reference.
    """
    return _status_mb("VmHWM")


def ru_maxrss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def data_loaded():
    """Memory once imports and data are done, then the peak reset, so that
    the peak read at the end (`peak_rss_mb`) is that of training and
    prediction alone. Without the reset a runner whose loading peaked above
    its training (the mtrec runner reads all of Census with pandas) would
    seem to add nothing in training.

    Linux resets VmHWM to the current RSS when "5" is written to
    /proc/self/clear_refs (Linux >= 4.0); where that fails, `peak_reset` is
    False and the end peak covers the whole process.

    Returns:
        dict `{"rss_after_data_mb", "peak_before_training_mb", "peak_reset"}`.
    """
    gc.collect()  # what loading left unreachable is not data
    memory = {"rss_after_data_mb": rss_now_mb(), "peak_before_training_mb": peak_rss_mb()}
    try:
        Path("/proc/self/clear_refs").write_text("5")
        memory["peak_reset"] = True
    except OSError:
        memory["peak_reset"] = False
    return memory


def test_auc(labels, predictions):
    """`{task: roc_auc_score}` computed the same way in every runner.

    Args:
        labels: dict `{task: (rows,)}`.
        predictions: dict `{task: (rows,) or (rows, 1)}` probabilities.
    """
    from sklearn.metrics import roc_auc_score

    return {task: float(roc_auc_score(labels[task], np.ravel(predictions[task])))
            for task in TASKS}


def train_examples_per_s(train_rows, epoch_seconds):
    """Training examples / wall time of the training passes after the first.

    The first epoch carries tracing / compilation and warm-up, so it is left
    out; with a single epoch it is all there is (the result says so with
    `timed_epochs` = 0). Validation after each epoch is not in
    `epoch_seconds`.
    """
    timed = epoch_seconds[1:] or epoch_seconds[:1]
    return train_rows * len(timed) / sum(timed), len(epoch_seconds[1:])


class Stopwatch:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def train_pass_timer(callback_base):
    """A Keras callback (of the given Keras's Callback class, so it serves
    Keras 3 and tf.keras 2) that times each epoch's training pass: from
    `on_epoch_begin` to the start of validation (`on_test_begin`), or to
    `on_epoch_end` when there is no validation."""

    class TrainPassTimer(callback_base):
        def __init__(self):
            super().__init__()
            self.epoch_seconds = []
            self._start = None

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def _stop(self):
            if self._start is not None:
                self.epoch_seconds.append(time.perf_counter() - self._start)
                self._start = None

        def on_test_begin(self, logs=None):
            self._stop()

        def on_epoch_end(self, epoch, logs=None):
            self._stop()

    return TrainPassTimer()


def result(library, args, *, versions, test_auc_by_task, epoch_seconds, best_epoch,
           train_rows, predict_rows, predict_seconds, memory, parameters,
           notes=None, **extra):
    """The runner's result record (one per library x model x seed).

    `memory` is what `data_loaded` returned; `peak_rss_mb` is read here,
    after training and prediction.
    """
    per_s, timed = train_examples_per_s(train_rows, epoch_seconds)
    return {"library": library, "model": args.model, "seed": args.seed,
            "threads": args.threads, "max_epochs": args.max_epochs,
            "patience": args.patience, "batch_size": args.batch_size,
            "num_experts": args.num_experts if args.model == "MMoE" else None,
            "versions": versions,
            "parameters": int(parameters),
            "test_auc": test_auc_by_task, "epochs_run": len(epoch_seconds),
            "best_epoch": best_epoch, "epoch_train_seconds": epoch_seconds,
            "timed_epochs": timed, "train_rows": int(train_rows),
            "train_examples_per_s": per_s, "predict_rows": int(predict_rows),
            "predict_seconds": predict_seconds,
            "predict_examples_per_s": predict_rows / predict_seconds,
            **memory, "peak_rss_mb": peak_rss_mb(), "ru_maxrss_mb": ru_maxrss_mb(),
            "notes": notes or [], **extra}


def emit(record):
    """Print the result line the orchestrator reads."""
    sys.stdout.write("\n" + RESULT_MARKER + json.dumps(record) + "\n")
    sys.stdout.flush()


def parse_result(stdout):
    """The result record in a runner's stdout (the last marked line)."""
    lines = [line for line in stdout.splitlines() if line.startswith(RESULT_MARKER)]
    if not lines:
        raise ValueError(f"The runner printed no '{RESULT_MARKER.strip()}' line; its "
                         f"log (stderr) says why.")
    return json.loads(lines[-1][len(RESULT_MARKER):])
