"""Run folders that are written whole: built aside, renamed into place.

A run `OUT/` is never written in place. While it trains, its checkpoints
live in the work folder `OUT.work/` (which survives a kill, so a rerun of
the same command resumes); at the end the artefacts are written into
`OUT.partial-<pid>/` and that folder is renamed to `OUT` in one step, as
TF Serving / TFX Pusher publish a model version: write elsewhere, rename,
never touch the live one. A kill at any moment therefore leaves either no
run, the previous complete run, or the new complete run at `OUT` -- never
a mix.

    OUT/                  a complete run (config.yaml ... metrics.json)
    OUT.work/             training in progress: run.json, checkpoints/
    OUT.partial-<pid>/    artefacts being written by process <pid>
    OUT.old-<pid>/        a replaced run, deleted once the new one is in place

An existing `OUT` is replaced only when asked (`overwrite=True`, `mtrec
train --overwrite`), and then by the final rename alone: the old run is
swapped out atomically (Linux `renameat2(RENAME_EXCHANGE)`; elsewhere two
renames, and the next run puts a stranded `OUT.old-<pid>` back).
Leftovers of dead processes are removed by the next run on the same
folder; those of live ones are named in the error.

Multi-worker training (issue 14) will keep this layout: only the chief
writes `OUT/` and `OUT.work/checkpoints/`; other workers get their own
`checkpoints-worker-<i>/` inside the work folder.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
from pathlib import Path

# publish and write_text_atomic are part of this module's API (tests replace
# `run_folder.publish` to watch the final rename).
from mtrec.utils.atomic import (
    alive as _alive, clean_leftovers, is_taken as _taken_by_a_run, partial_sibling,
    publish_folder as publish, write_text_atomic)

__all__ = ["RunFolder", "RunFolderError", "config_fingerprint", "default_output_dir",
           "fingerprinted", "publish", "save_model_atomic", "write_text_atomic"]

# Keys of the resolved config that do not change what is trained: a rerun
# that differs only in these still resumes. A training option added later
# goes here too when its default trains as before, so runs and studies
# begun by an earlier release still resume after an upgrade.
_NOT_FINGERPRINTED = {"output_dir"}
_NOT_FINGERPRINTED_TRAINING = {"checkpoint_every_steps", "steps_per_execution"}
# Keys added after runs were fingerprinted: at their default they leave the
# fingerprint as it was, so an older run folder still resumes.
_DEFAULTS_NOT_FINGERPRINTED = {
    "weight_decay": None,
    "learning_rate_schedule": {"name": "constant", "warmup_epochs": 0.0,
                               "final_fraction": 0.0}}
_NO_DEFAULT = object()
# The file a complete run folder always has (written last).
RECORD_FILE = "metrics.json"
RUN_STATE_FILE = "run.json"


class RunFolderError(ValueError):
    """A run folder cannot be used as asked; the message says which flag fixes it."""


def config_fingerprint(config):
    """sha256 of the resolved config, less the keys that do not change the run.

    Args:
        config: `RunConfig`.

    Returns:
        str, 16 hex digits.
    """
    text = json.dumps(fingerprinted(config.to_dict()), sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def fingerprinted(data):
    """A resolved config dict less the keys that do not change the run."""
    data = {k: v for k, v in data.items() if k not in _NOT_FINGERPRINTED}
    if data.get("schema", {}).get("defaults") == {}:
        # Added after runs were fingerprinted: empty, the run is as before.
        data["schema"] = {k: v for k, v in data["schema"].items() if k != "defaults"}
    data["training"] = {k: v for k, v in data["training"].items()
                        if k not in _NOT_FINGERPRINTED_TRAINING
                        and _DEFAULTS_NOT_FINGERPRINTED.get(k, _NO_DEFAULT) != v}
    return data


def default_output_dir(config, fingerprint, root="runs", now=None):
    """The folder of a run whose config has no `output_dir`.

    `runs/<dataset>-<model>-<YYYYmmdd-HHMMSS>` (UTC), one per run; an
    unfinished run of the same config (a work folder with the same
    fingerprint) is reused, so rerunning the command resumes it.

    Args:
        config: `RunConfig`.
        fingerprint: str, `config_fingerprint(config)`.
        root: folder the runs go under. Defaults to `"runs"`.
        now: datetime for the stamp (tests); defaults to the current time.

    Returns:
        pathlib.Path.
    """
    root = Path(root)
    prefix = f"{config.dataset.label}-{config.model.name}-"
    for work in sorted(root.glob(f"{prefix}*.work"), reverse=True):
        if _read_json(work / RUN_STATE_FILE).get("fingerprint") == fingerprint:
            return work.with_name(work.name[:-len(".work")])
    now = now or datetime.datetime.now(datetime.timezone.utc)
    base = root / f"{prefix}{now:%Y%m%d-%H%M%S}"
    path, counter = base, 1
    while _taken(path):  # two runs started in the same second
        counter += 1
        path = base.with_name(f"{base.name}-{counter}")
    return path


class RunFolder:
    """The run folder `path` and its siblings (work, partial, old).

    Args:
        path: str or path of the run folder `OUT`.
    """

    def __init__(self, path):
        self.path = Path(path)
        self.work = self.path.with_name(self.path.name + ".work")
        self.partial = partial_sibling(self.path)

    @property
    def checkpoints(self):
        """Folder of this process's training checkpoints (the chief's)."""
        return self.work / "checkpoints"

    def prepare(self, fingerprint, overwrite=False, resume=True):
        """Check the folder can take this run and claim its work folder.

        Called before any data is loaded, so a refusal costs nothing.

        Args:
            fingerprint: str, `config_fingerprint` of the run's config.
            overwrite: bool. Replace an existing run at `path` (at the end,
                by the final rename).
            resume: bool. Resume from the work folder's checkpoints when
                there are some; with `False` they are discarded.

        Returns:
            bool: whether a work folder of the same config was found (and
            kept, for resuming).

        Raises:
            RunFolderError: `path` holds a run (or other files) and
                `overwrite` is False; another live process is writing this
                run; the work folder belongs to a different config.
        """
        self._clean_leftovers()
        if _taken_by_a_run(self.path) and not overwrite:
            what = ("a complete run" if (self.path / RECORD_FILE).is_file()
                    else "files that are not a run of this command")
            raise RunFolderError(
                f"Output folder {self.path} already holds {what}; refusing to "
                f"overwrite it. Pass --overwrite (train(..., overwrite=True)) to "
                f"replace it once the new run is complete, or choose another "
                f"--output / output_dir.")
        state = _read_json(self.work / RUN_STATE_FILE)
        owner = state.get("pid")
        if owner is not None and owner != os.getpid() and _alive(owner):
            raise RunFolderError(
                f"Another process (pid {owner}) is training into {self.path} "
                f"(its work folder is {self.work}); wait for it to end, or stop it "
                f"and rerun to resume.")
        found = self.work.is_dir()
        if found and resume and state.get("fingerprint") not in (None, fingerprint):
            raise RunFolderError(
                f"{self.work} holds checkpoints of a different config (fingerprint "
                f"{state.get('fingerprint')}, this config {fingerprint}); pass "
                f"--restart (train(..., resume=False)) to discard them, or restore "
                f"the config they were made with.")
        if found and not resume:
            shutil.rmtree(self.work)
            found = False
        self.work.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.work / RUN_STATE_FILE, json.dumps(
            {**state, "fingerprint": fingerprint, "pid": os.getpid()}, indent=1))
        return found and any(self.checkpoints.glob("*"))

    def check_schema(self, schema_fingerprint, write=True):
        """Refuse to resume checkpoints made on a differently adapted schema
        (e.g. the data changed since); remember the schema otherwise (unless
        not `write`: a multi-worker run's other workers only check it
        against the chief's)."""
        state = _read_json(self.work / RUN_STATE_FILE)
        known = state.get("schema")
        if known is not None and known != schema_fingerprint:
            raise RunFolderError(
                f"The checkpoints in {self.work} were made with a schema adapted to "
                f"other data (fingerprint {known}, now {schema_fingerprint}); pass "
                f"--restart (train(..., resume=False)) to discard them.")
        if not write:
            return
        write_text_atomic(self.work / RUN_STATE_FILE,
                          json.dumps({**state, "schema": schema_fingerprint}, indent=1))

    def begin_partial(self):
        """A fresh, empty `OUT.partial-<pid>/` to write the artefacts into."""
        if self.partial.exists():
            shutil.rmtree(self.partial)
        self.partial.mkdir(parents=True)
        return self.partial

    def publish(self):
        """Move the finished partial folder to `path` (replacing a previous
        run there) and remove the work folder."""
        publish(self.partial, self.path)
        shutil.rmtree(self.work, ignore_errors=True)

    def discard_partial(self):
        shutil.rmtree(self.partial, ignore_errors=True)

    def _clean_leftovers(self):
        """Remove the partial folders of dead processes; put back a run that
        a killed overwrite left aside (`OUT.old-<pid>` without `OUT`)."""
        clean_leftovers(self.path, error=RunFolderError)


def save_model_atomic(model, path):
    """`model.save(path)` through a temporary sibling and a rename, so `path`
    is always either the previous file or the complete new one."""
    path = Path(path)
    temporary = path.with_name(f".{path.stem}.tmp-{os.getpid()}.keras")
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        if temporary.exists():
            temporary.unlink()


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _taken(path):
    return path.exists() or path.with_name(path.name + ".work").exists()


def _read_json(path):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
