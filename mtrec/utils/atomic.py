"""Files and folders written whole: built in a temporary sibling, renamed
into place, as TF Serving / TFX Pusher publish a model version.

    OUT/                  the complete artefact (a run folder, a SavedModel)
    OUT.partial-<pid>/    being written by process <pid>
    OUT.old-<pid>/        a replaced OUT, deleted once the new one is in place

A kill at any moment leaves either no `OUT`, the previous complete one or
the new complete one -- never a mix. `clean_leftovers` removes what killed
processes left behind and names what live ones are still writing.

Used by run folders (`mtrec.experiments.run_folder`) and SavedModel exports
(`mtrec.export`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import shutil
from pathlib import Path

__all__ = ["LeftoverError", "alive", "clean_leftovers", "is_taken", "partial_sibling",
           "publish_folder", "write_folder_whole", "write_text_atomic"]


class LeftoverError(ValueError):
    """A temporary sibling of the target belongs to a live process."""


def partial_sibling(path, pid=None):
    """`path.partial-<pid>` (this process's by default): where a folder is
    built before `publish_folder` renames it to `path`."""
    path = Path(path)
    return path.with_name(f"{path.name}.partial-{os.getpid() if pid is None else pid}")


def is_taken(path):
    """Whether `path` holds anything (an empty folder is free)."""
    path = Path(path)
    return path.exists() and (not path.is_dir() or any(path.iterdir()))


def alive(pid):
    """Whether process `pid` is running (on this machine)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def clean_leftovers(path, error=LeftoverError):
    """Remove the `partial` siblings of dead processes; put back an `old`
    one that a killed overwrite stranded (`path.old-<pid>` without `path`).

    Args:
        path: the target folder `OUT`.
        error: exception class raised for a live process's partial folder.

    Raises:
        `error`: another live process is writing `OUT.partial-<pid>`.
    """
    path = Path(path)
    if not path.parent.is_dir():
        return
    for sibling in sorted(path.parent.glob(f"{path.name}.*-*")):
        stem, _, pid = sibling.name.rpartition("-")
        kind = stem[len(path.name) + 1:]
        if kind not in ("partial", "old") or not pid.isdigit():
            continue
        if int(pid) != os.getpid() and alive(int(pid)):
            if kind == "partial":
                raise error(
                    f"{sibling} is being written by another live process (pid "
                    f"{pid}); wait for it to end, or stop it and rerun.")
            continue
        if kind == "old" and not path.exists():
            os.replace(sibling, path)  # the killed overwrite's previous content
        else:
            shutil.rmtree(sibling, ignore_errors=True)


def publish_folder(source, target, replace=True):
    """Rename the folder `source` to `target` so that `target` is, at every
    moment, either its previous content or `source`'s.

    An existing `target` is exchanged atomically where the OS can
    (`renameat2(RENAME_EXCHANGE)` on Linux) and then deleted; elsewhere it is
    moved to `target.old-<pid>` first (which the next `clean_leftovers`
    puts back if a kill strands it). An empty `target` folder counts as
    absent.

    Args:
        source: the complete folder.
        target: where it goes.
        replace: bool. With `False`, a `target` that appeared since the
            caller checked (another process's) is left alone and
            FileExistsError raised. Defaults to `True`.
    """
    source, target = Path(source), Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
    if not replace:
        if not _rename_noreplace(source, target):
            raise FileExistsError(
                f"{target} appeared while {source} was being written (another "
                f"process?); left both as they are.")
        return
    if not target.exists():
        os.replace(source, target)
        return
    if _exchange(source, target):
        shutil.rmtree(source)  # now holds the old content
        return
    old = target.with_name(f"{target.name}.old-{os.getpid()}")
    os.replace(target, old)
    os.replace(source, target)
    shutil.rmtree(old)


def write_folder_whole(path, write, replace=False):
    """Call `write(folder)` on a fresh `path.partial-<pid>/`, then rename it
    to `path` (`publish_folder`; an existing `path` is exchanged only if
    `replace`). The partial folder is removed if `write` fails.

    Returns:
        pathlib.Path `path`.
    """
    path = Path(path)
    partial = partial_sibling(path)
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        write(partial)
        publish_folder(partial, path, replace=replace)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return path


def write_text_atomic(path, text):
    """Write a text file through a temporary sibling and a rename."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


_RENAME_NOREPLACE = 1
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _renameat2(a, b, flags):
    """Linux renameat2: True when done, False where this OS or filesystem
    has no such call, OSError otherwise (EEXIST included)."""
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name, use_errno=True) if name else None
    renameat2 = getattr(libc, "renameat2", None)
    if renameat2 is None:
        return False
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), flags)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, f"cannot rename {a} to {b}: {os.strerror(code)}", str(b))


def _exchange(a, b):
    """Atomically swap two paths; False where unsupported."""
    return _renameat2(a, b, _RENAME_EXCHANGE)


def _rename_noreplace(source, target):
    """Rename `source` to `target` unless `target` exists; False if it does."""
    try:
        if _renameat2(source, target, _RENAME_NOREPLACE):
            return True
    except FileExistsError:
        return False
    if target.exists():  # no renameat2 here: a check, then a rename
        return False
    os.rename(source, target)  # refuses a non-empty folder that appeared since
    return True
