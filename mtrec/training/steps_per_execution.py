"""How many training steps an mtrec model runs per call of its step function.

Keras' `steps_per_execution=N` runs N batches inside one call of the
compiled step, saving N - 1 Python round trips (the call, the callbacks'
batch hooks, the logs converted to floats). On Census MMoE (1,024-row
steps of a few ms on CPU) that round trip is a third of the training
pass: 16 steps per call train 1.4-1.9x the examples/s of 1, with the same
weights (`benchmarks/peers/`, `benchmarks/training_throughput.py`). But
Keras applies N to evaluation and prediction too, where it is slower
(prediction at 16 ran at ~0.3x of 1 in both mtrec and DeepCTR: Keras
gathers the N batches in Python and concatenates their outputs), and
batch-level callbacks then see every N-th batch only.

So `MultiTaskModel.compile(steps_per_execution=...)` takes:

- an int N: Keras' meaning, for fit, evaluate and predict alike;
- `"auto"` (the default): `fit` trains up to `AUTO_LIMIT` steps per call,
  evaluation (validation included) and prediction run one batch per call.
  Fewer when something needs the individual steps (`plan_train`).
"""

from __future__ import annotations

import keras

from mtrec.training.distribution import is_distributed
from mtrec.training.xla import dataset_steps

#: Most steps per call `"auto"` trains: past 16, the gain on Census was
#: within noise, and a smaller number keeps epoch ends and checkpoints close
#: to where they were asked.
AUTO_LIMIT = 16

#: Keras callbacks whose batch hooks are correct under steps_per_execution
#: (they count steps from the batch index Keras passes, or do nothing per
#: batch with these settings).
_STEP_COUNTING_CALLBACKS = (keras.callbacks.ProgbarLogger, keras.callbacks.History)

_BATCH_HOOKS = ("on_batch_begin", "on_batch_end", "on_train_batch_begin",
                "on_train_batch_end")


def check_steps_per_execution(value):
    """`value` if it is `"auto"` or an int >= 1, else a ValueError."""
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool)
                           and value >= 1):
        return value
    raise ValueError(f"steps_per_execution must be 'auto' or an int >= 1, got {value!r}.")


def watches_each_step(callback):
    """True when `callback` has a training batch hook that would see only
    every N-th step under steps_per_execution = N and is not known to
    count steps itself.

    mtrec's own callbacks that do (checkpointing, the divergence guard)
    say so with a class attribute `counts_steps_itself = True`; Keras'
    TensorBoard does when it writes per epoch and profiles nothing.
    """
    if getattr(callback, "counts_steps_itself", False) or isinstance(
            callback, _STEP_COUNTING_CALLBACKS):
        return False
    if isinstance(callback, keras.callbacks.TensorBoard):
        return callback.update_freq != "epoch" or bool(getattr(callback, "_start_batch", 0))
    return any(getattr(type(callback), hook) is not getattr(keras.callbacks.Callback, hook)
               for hook in _BATCH_HOOKS)


def plan_train(model, x, callbacks, steps_per_epoch=None, batch_size=None):
    """Steps per call for `fit` under `"auto"`.

    1 when the model runs eagerly, under a distribution strategy (not
    measured there), or when a callback watches each step
    (`watches_each_step`). Otherwise the largest number up to `AUTO_LIMIT`
    that divides `steps_per_epoch` when fit was given one (Keras runs whole
    calls, so an epoch of 6 steps at 4 per call would take 2 steps of the
    next epoch from a repeated stream) and the `every_steps` of every
    callback that has one (checkpoints land where they were asked). A
    finite dataset without `steps_per_epoch` ends its epoch with a shorter
    call, so any number up to `AUTO_LIMIT` (and its length) does.

    Args:
        model: the `MultiTaskModel`.
        x: fit's training input.
        callbacks: list of the callbacks fit will run.
        steps_per_epoch, batch_size: fit's arguments.

    Returns:
        int >= 1.
    """
    if (model.run_eagerly or is_distributed(model)
            or any(watches_each_step(c) for c in callbacks)):
        return 1
    steps = steps_per_epoch or dataset_steps(x, batch_size)
    limit = min(AUTO_LIMIT, steps) if steps else AUTO_LIMIT
    divides = [every for every in (getattr(c, "every_steps", None) for c in callbacks) if every]
    if steps_per_epoch:
        divides.append(int(steps_per_epoch))
    return max(n for n in range(1, limit + 1) if all(d % n == 0 for d in divides))
