"""Folders written whole (`mtrec.utils.atomic`): publish with and without
replacing, leftovers of dead and live processes."""

import os
import subprocess
import sys

import pytest

from mtrec.utils.atomic import LeftoverError, clean_leftovers, partial_sibling, publish_folder


def folder(path, text):
    path.mkdir(parents=True)
    (path / "content.txt").write_text(text)
    return path


def test_publish_without_replacing_leaves_an_existing_target(tmp_path):
    new = folder(tmp_path / "new", "new")
    publish_folder(new, tmp_path / "1", replace=False)         # free: renamed
    assert (tmp_path / "1" / "content.txt").read_text() == "new"
    other = folder(tmp_path / "other", "other")
    with pytest.raises(FileExistsError, match="appeared while"):
        publish_folder(other, tmp_path / "1", replace=False)
    assert (tmp_path / "1" / "content.txt").read_text() == "new"
    assert (other / "content.txt").read_text() == "other"
    (tmp_path / "2").mkdir()                                   # empty counts as free
    publish_folder(other, tmp_path / "2", replace=False)
    assert (tmp_path / "2" / "content.txt").read_text() == "other"


def test_publish_replacing_swaps_the_target(tmp_path):
    folder(tmp_path / "out", "old")
    publish_folder(folder(tmp_path / "new", "new"), tmp_path / "out")
    assert (tmp_path / "out" / "content.txt").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_clean_leftovers(tmp_path):
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    done.wait()
    out = tmp_path / "out"
    folder(partial_sibling(out, done.pid), "half")
    folder(tmp_path / f"out.old-{done.pid}", "previous")       # a killed overwrite's
    folder(tmp_path / "out.partial-x", "not a pid: not ours")
    clean_leftovers(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "out.partial-x"]
    assert (out / "content.txt").read_text() == "previous"
    assert partial_sibling(out) == tmp_path / f"out.partial-{os.getpid()}"
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folder(partial_sibling(out, live.pid), "being written")
        with pytest.raises(LeftoverError, match=rf"pid {live.pid}\); wait for it"):
            clean_leftovers(out)
        assert partial_sibling(out, live.pid).is_dir()
    finally:
        live.kill()
        live.wait()
    clean_leftovers(tmp_path / "absent" / "out")               # no parent: nothing to do
