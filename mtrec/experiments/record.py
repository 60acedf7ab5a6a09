"""The run record: what `metrics.json` says about where a result came from.

A record holds, beside the metrics, the versions of the libraries that
produced it and the git state of the checkout mtrec is imported from, so a
number can be traced to the code that made it. Everything in it is plain
JSON (`jsonable`): numpy scalars become Python numbers, NaN and NA become
`null`.
"""

from __future__ import annotations

import importlib.metadata
import math
import platform
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["RECORD_VERSION", "git_state", "history_records", "jsonable", "plain",
           "report_to_dict", "versions"]

# Bumped when a key of metrics.json changes meaning or disappears.
RECORD_VERSION = 1
# The checkout mtrec is imported from: mtrec/experiments/record.py -> repo root.
_CHECKOUT = Path(__file__).resolve().parents[2]


def versions():
    """`{library: version}` of mtrec and the stack a run used."""
    import keras
    import tensorflow as tf

    return {"mtrec": _mtrec_version(), "keras": keras.__version__,
            "tensorflow": tf.__version__, "numpy": np.__version__,
            "pandas": pd.__version__, "python": platform.python_version()}


def _mtrec_version():
    # Read from the installed distribution rather than `mtrec.__version__`:
    # importing the package root from here would close an import cycle
    # (mtrec -> mtrec.experiments -> ... -> mtrec).
    try:
        return importlib.metadata.version("mtrec")
    except importlib.metadata.PackageNotFoundError:
        return None  # a checkout on sys.path that was never installed


def git_state(ignore=(), root=None):
    """The git commit of a checkout and whether its tracked files differ.

    Args:
        ignore: tuple of str. Path prefixes (relative to the repository
            root) whose changes do not make the tree dirty, e.g. the files
            a benchmark rewrites itself. Defaults to none.
        root: path inside the checkout; defaults to the one mtrec is
            imported from.

    Returns:
        dict: `commit` (str, or None outside git), `dirty` (bool: a tracked
        file outside `ignore` differs from the commit; None when unknown)
        and `changed` (the changed tracked paths, at most 20).
    """
    root = Path(root) if root is not None else _CHECKOUT
    ignore = tuple(ignore)

    def git(*args):
        result = subprocess.run(["git", *args], cwd=root, capture_output=True,
                                text=True, timeout=10, check=False)
        return result.stdout if result.returncode == 0 else None

    try:
        commit = git("rev-parse", "HEAD")
        status = git("status", "--porcelain", "--untracked-files=no") if commit else None
    except (OSError, subprocess.SubprocessError):
        commit, status = None, None
    if status is None:
        return {"commit": commit and commit.strip(), "dirty": None, "changed": None}
    changed = [line[3:].strip() for line in status.splitlines() if line.strip()]
    code = [path for path in changed if not (ignore and path.startswith(ignore))]
    return {"commit": commit.strip(), "dirty": bool(code), "changed": changed[:20]}


def report_to_dict(report):
    """A per-task report DataFrame as `{task: {column: value}}`."""
    return {str(task): {column: plain(value) for column, value in row.items()}
            for task, row in report.iterrows()}


def history_records(history):
    """Keras' `History.history` (`{key: [value per epoch]}`) as one dict per
    epoch, `{"epoch": 1, key: value, ...}`."""
    epochs = max((len(v) for v in history.values()), default=0)
    return [{"epoch": i + 1, **{key: plain(values[i]) for key, values in history.items()
                                if i < len(values)}}
            for i in range(epochs)]


def plain(value):
    """A JSON-friendly scalar: numpy -> Python, NaN / inf / NA -> None."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NA:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def jsonable(value):
    """`value` with every container made of JSON types (see `plain`)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    return plain(value)
