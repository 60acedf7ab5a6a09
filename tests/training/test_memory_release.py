"""Freed heap memory handed back to the OS during fit: when the callback
trims, that fit adds it once, and where the C library has no trim."""

import keras
import pytest

import mtrec
from helpers import SMALL_MODEL_ARGS
from mtrec.training import memory_release, steps_per_execution


@pytest.fixture
def trims(monkeypatch):
    """The calls `release_freed_memory` makes, with glibc's trim replaced by
    a recorder (the real one is exercised in its own test)."""
    calls = []

    def fake_trim(pad):
        calls.append(pad)
        return 1

    monkeypatch.setattr(memory_release, "_glibc_malloc_trim", lambda: fake_trim)
    return calls


def fitted(table, schema, epochs=3, **fit_kwargs):
    keras.utils.set_random_seed(0)
    model = mtrec.models.MMoE(schema, **SMALL_MODEL_ARGS["MMoE"])
    model.compile(optimizer="adam", jit_compile=False)
    data = mtrec.data.from_pandas(table, schema, batch_size=64)
    model.fit(data, epochs=epochs, verbose=0, **fit_kwargs)
    return model


def test_fit_trims_after_the_first_batch_each_epoch_and_at_the_end(table, schema, trims):
    fitted(table, schema, epochs=3)
    # 1 after the first batch (the compilation), 3 epoch ends, 1 train end;
    # none before training starts, so loading's freed memory is not credited.
    assert trims == [0] * 5


def test_release_memory_false_leaves_the_heap_alone(table, schema, trims):
    fitted(table, schema, epochs=2, release_memory=False)
    assert trims == []


def test_a_callback_given_by_the_caller_is_not_added_twice(table, schema, trims):
    fitted(table, schema, epochs=2, callbacks=[mtrec.training.ReleaseFreedMemory()])
    assert trims == [0] * 4


def test_the_callback_rearms_for_a_second_fit(table, schema, trims):
    callback = mtrec.training.ReleaseFreedMemory()
    model = fitted(table, schema, epochs=1, callbacks=[callback])
    model.fit(mtrec.data.from_pandas(table, schema, batch_size=64), epochs=1, verbose=0,
              callbacks=[callback])
    assert trims == [0] * 6


def test_without_glibc_nothing_runs(monkeypatch):
    memory_release._glibc_malloc_trim.cache_clear()
    monkeypatch.setattr(memory_release.ctypes.util, "find_library", lambda name: None)
    try:
        assert memory_release.release_freed_memory() is False
    finally:
        memory_release._glibc_malloc_trim.cache_clear()


def test_glibc_trim_runs_for_real():
    # This project's hosts run glibc: the real call returns whether it
    # released anything; after freeing ~64 MB of small blocks it has some.
    if memory_release._glibc_malloc_trim() is None:
        pytest.skip("the C library here is not glibc (no malloc_trim)")
    blocks = [bytearray(4096) for _ in range(16384)]
    del blocks[::2]
    del blocks
    assert memory_release.release_freed_memory() is True


def test_it_leaves_automatic_steps_per_execution_as_it_was():
    assert not steps_per_execution.watches_each_step(mtrec.training.ReleaseFreedMemory())
