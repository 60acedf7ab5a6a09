"""Hand the heap memory that training freed back to the operating system.

glibc's malloc keeps what a process frees in its arenas (one per thread
that allocated, up to 8 per core) instead of returning it, and reuses it
imperfectly across threads. In a Keras `fit` this shows as a resident set
that climbs epoch after epoch: every epoch's tf.data iterator and its
threads allocate batches anew, and XLA's one-off compilation of the train
step frees ~100 MB of working memory that stays resident. Measured on
Census MMoE 8x[16] (2 cores, XLA, 5 epochs; `python
benchmarks/memory_training.py --rev <before> --jit-compile true --epochs 5`,
medians of 2 rounds): what fit adds over the loaded frames fell from 560
to 475 MB (its anonymous memory from 251 to 75 MB), and from 775 to 626 MB
when the rows are streamed from Parquet. The peers benchmark's training
now adds 0.69-0.95x DeepCTR's memory (1.12-1.19x before).

`malloc_trim` is glibc's; elsewhere (musl, macOS, Windows) nothing runs.
`MALLOC_ARENA_MAX=2` in the environment also stops the growth (in one
scratch run the peak stayed at 247 MB over 5 epochs against 227 -> 277 MB
without), but it must be set before the process starts, which a library
imported into it cannot do.
"""

import ctypes
import ctypes.util
import functools

import keras


@functools.lru_cache(maxsize=1)
def _glibc_malloc_trim():
    """glibc's `malloc_trim`, or None where the C library has none."""
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release_freed_memory():
    """Return the memory malloc holds freed to the OS (`malloc_trim(0)`).

    Returns:
        bool: True when glibc released some memory; False when it had none
        to release, or the C library is not glibc.
    """
    trim = _glibc_malloc_trim()
    return bool(trim(0)) if trim is not None else False


class ReleaseFreedMemory(keras.callbacks.Callback):
    """Calls `release_freed_memory` once the first training batch is done
    (XLA has compiled the step by then), after every epoch (its
    validation included) and at the end of training.

    `MultiTaskModel.fit` adds it unless called with `release_memory=False`.
    It never runs before training starts, so what loading the data freed
    stays resident as it would without it: benchmarks that read the memory
    training adds over the loaded data are not credited with it.
    """

    # Its batch hook only waits for the first call of the train step to
    # end, which under steps_per_execution=N is the first N batches: it does
    # not need Keras to call it after every batch (mtrec's "auto" steps per
    # execution would otherwise fall back to one step per call).
    counts_steps_itself = True

    def __init__(self):
        super().__init__()
        self._first_batch_done = False

    def on_train_begin(self, logs=None):
        self._first_batch_done = False

    def on_train_batch_end(self, batch, logs=None):
        if not self._first_batch_done:
            self._first_batch_done = True
            release_freed_memory()

    def on_epoch_end(self, epoch, logs=None):
        release_freed_memory()

    def on_train_end(self, logs=None):
        release_freed_memory()
