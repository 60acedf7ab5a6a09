"""The `mtrec` package of another git revision, for before/after benchmarks.

`exported_package(rev)` writes `git archive <rev> mtrec` into a temporary
folder and yields it; a subprocess run with `PYTHONPATH=<folder>` then
imports that revision's mtrec, while the benchmark script itself stays the
current one. Nothing in the repository (work tree, worktree list, index)
changes.
"""

import contextlib
import io
import subprocess
import tarfile
import tempfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def resolve(rev):
    """The commit id of `rev` (a branch, tag or sha), or a ValueError."""
    done = subprocess.run(["git", "-C", str(REPOSITORY), "rev-parse", "--verify",
                           f"{rev}^{{commit}}"], capture_output=True, text=True)
    if done.returncode:
        raise ValueError(f"--rev {rev!r} is not a commit of {REPOSITORY}: "
                         f"{done.stderr.strip()}")
    return done.stdout.strip()


@contextlib.contextmanager
def exported_package(rev):
    """Yields a folder holding `mtrec/` as of `rev` (deleted afterwards)."""
    commit = resolve(rev)
    archive = subprocess.run(["git", "-C", str(REPOSITORY), "archive", "--format=tar",
                              commit, "mtrec"], capture_output=True, check=True).stdout
    with tempfile.TemporaryDirectory(prefix=f"mtrec-{commit[:8]}-") as folder:
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(folder, filter="data")
        yield Path(folder)
