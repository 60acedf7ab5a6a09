"""`python -m mtrec.demo` (`make demo`) without data and without network."""

import os
import subprocess
import sys
from pathlib import Path

from mtrec.data import census_income

ROOT = Path(__file__).resolve().parents[1]

# The child process refuses every connection and name lookup before the
# demo starts, so the download fails at once and no test touches the network.
OFFLINE_DEMO = """
import runpy, socket
def refuse(*args, **kwargs):
    raise OSError("network disabled by tests/test_demo.py")
socket.getaddrinfo = refuse
socket.create_connection = refuse
socket.socket.connect = refuse
runpy.run_module("mtrec.demo", run_name="__main__", alter_sys=True)
"""


def test_demo_without_data_or_network_fails_with_one_clear_message(tmp_path):
    empty, home, cache = tmp_path / "data", tmp_path / "home", tmp_path / "cache"
    for folder in (empty, home, cache):
        folder.mkdir()
    env = {**os.environ, "MTREC_DATA_DIR": str(empty), "HOME": str(home),
           "XDG_CACHE_HOME": str(cache), "TF_CPP_MIN_LOG_LEVEL": "3",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", OFFLINE_DEMO], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 1, result.stderr[-3000:]
    err = result.stderr
    assert "Traceback" not in err
    assert "mtrec.demo: cannot run without the Census-Income data." in err
    assert "network disabled by tests/test_demo.py" in err  # why the download failed
    # every folder searched
    assert f"  - {empty / 'census-income'}  ($MTREC_DATA_DIR)" in err
    assert f"  - {cache / 'mtrec' / 'census-income'}  (user cache)" in err
    # every file needed, with its URL
    for name in census_income.FILES:
        assert f"  - {name}  from {census_income.BASE_URL}/{name}" in err
    # what to do
    assert "To fix: connect to the network" in err and "set MTREC_DATA_DIR" in err
    assert "data/census-income/README.md" in err
    # nothing left behind: no empty cache folder, no output folder
    assert not (cache / "mtrec").exists()
    assert not (tmp_path / "runs").exists()
    assert list(empty.iterdir()) == []
