"""Plain helpers shared by test modules (importable as `helpers`: setup.cfg
puts tests/ on pytest's pythonpath; fixtures stay in the conftest files)."""

import importlib.util
import signal
import sys
from pathlib import Path
import time

import numpy as np

import pandas as pd
import pytest

from mtrec import Schema


#: Small sizes of every named model, for fast tests: `MODELS[name](schema,
#: tower_units=[4], **SMALL_MODEL_ARGS[name])`.
SMALL_MODEL_ARGS = {
    "SingleTask": dict(bottom_units=[8]),
    "SharedBottom": dict(bottom_units=[8]),
    "OMoE": dict(num_experts=3, expert_units=[4]),
    "MMoE": dict(num_experts=3, expert_units=[4]),
    "CGC": dict(num_specific_experts=1, num_shared_experts=2, expert_units=[4]),
    "PLE": dict(num_levels=2, num_specific_experts=1, num_shared_experts=1,
                expert_units=[4]),
    "CrossStitch": dict(column_units=[4, 4]),
    "DSelectK": dict(num_experts=3, num_nonzeros=2, expert_units=[4]),
    # the shared test schema marks no scenario: name one
    "STAR": dict(star_units=[4], scenario="color"),
    "PEPNet": dict(ppnet_units=[4], scenario="color", prior_features=["user_id"],
                   prior_dim=2, gate_units=4),
    "SharedPrivate": dict(shared_units=[4], private_units=[4], discriminator_units=[4]),
}


def tiny_run_config(model=None, **training):
    """A run config dict: MMoE 2 x [8], towers [4] on `synthetic_tiny`
    (2,000 rows), batch 256, Adam 0.01, seed 2, 2 epochs. `model` entries
    update the model's args, keyword arguments the `training` section."""
    return {
        "dataset": {"name": "synthetic_tiny", "args": {"rows": 2000, "seed": 1}},
        "model": {"name": "MMoE", "args": {"num_experts": 2, "expert_units": [8],
                                           "tower_units": [4], **(model or {})}},
        "training": {"epochs": 2, "batch_size": 256, "learning_rate": 0.01, "seed": 2,
                     **training},
    }


def error_of(fn):
    """The message of the ValueError that `fn()` raises (fails if none)."""
    with pytest.raises(ValueError) as info:
        fn()
    return str(info.value)


def base_schema(*features, tasks=None):
    """An unadapted Schema of `features` with one binary task `click`."""
    return Schema(list(features), tasks or {"click": "binary"})


def write_table(frame, path):
    """`frame` written to `path` as CSV or Parquet, by its suffix."""
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def read_output(path):
    """A CSV or Parquet file, by its suffix, as a DataFrame."""
    return pd.read_csv(path) if path.suffix == ".csv" else pd.read_parquet(path)


def kill_when_ready(child, timeout=180):
    """SIGKILL the subprocess `child` (stdout piped, text) once it prints a
    line containing READY; fails the test if it exits before. Returns its
    exit code (-SIGKILL when killed)."""
    try:
        deadline, line = time.monotonic() + timeout, ""
        while "READY" not in line and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line and child.poll() is not None:
                pytest.fail(f"the child exited with {child.returncode} before pausing")
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    return child.returncode


def batches(dataset):
    """Every element of a tf.data dataset, as NumPy."""
    return list(dataset.as_numpy_iterator())


def assert_same_batches(got, expected):
    """Two lists of `(features, labels)` batches hold the same arrays."""
    assert len(got) == len(expected)
    for (f1, l1), (f2, l2) in zip(got, expected):
        assert set(f1) == set(f2) and set(l1) == set(l2)
        for key in f1:
            np.testing.assert_array_equal(f1[key], f2[key])
        for key in l1:
            np.testing.assert_array_equal(l1[key], l2[key])


def load_module(name, path):
    """Import the Python file `path` as module `name` (benchmark scripts),
    once: a second call returns the loaded module, since a fresh copy in
    `sys.modules` would break pickling the first copy's functions (the
    benchmark runner's worker processes)."""
    loaded = sys.modules.get(name)
    if loaded is not None and Path(getattr(loaded, "__file__", "")) == Path(path):
        return loaded
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def assert_saved_model_parity(model, raw, folder, atol=1e-5):
    """Export `model` under `folder`, load it with tf.saved_model.load in a
    fresh Python process, serve the raw features `raw` ({name: array}) and
    compare with `model.predict_on_batch(raw)` to `atol`."""
    import json
    import subprocess
    import textwrap

    import mtrec

    np.savez(folder / "raw.npz", **raw)
    mtrec.export.saved_model(model, folder / "export")
    expected = {k: np.asarray(v) for k, v in model.predict_on_batch(raw).items()}
    script = textwrap.dedent(f"""
        import json, numpy as np, tensorflow as tf
        raw = dict(np.load({str(folder / 'raw.npz')!r}, allow_pickle=True))
        fn = tf.saved_model.load({str(folder / 'export')!r}).signatures['serving_default']
        feats = {{k: tf.constant(v.astype(str) if v.dtype == object else v)
                  for k, v in raw.items()}}
        print(json.dumps({{k: v.numpy().tolist() for k, v in fn(**feats).items()}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(served) == set(expected)
    for task, values in expected.items():
        np.testing.assert_allclose(served[task], values, atol=atol, rtol=0)
