"""Tests for mtrec.data.download.locate, with generated files and file:// URLs."""

import gzip
import hashlib
import socket

import pytest

from mtrec.data import download
from mtrec.data.download import locate

CONTENT = {"part-a.csv.gz": b"a,b\n1,2\n", "part-b.csv.gz": b"x\ny\nz\n"}
MD5 = {name: hashlib.md5(data).hexdigest() for name, data in CONTENT.items()}


@pytest.fixture(autouse=True)
def no_network_and_clean_env(offline):
    """Every test here runs offline (tests/data/conftest.py)."""


def write_dataset(folder):
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in CONTENT.items():
        (folder / name).write_bytes(gzip.compress(data))
    return folder


def test_cache_dir_follows_xdg_cache_home(tmp_path):
    assert download.cache_dir() == tmp_path / "cache" / "mtrec"


def test_md5_of_plain_and_gunzipped(tmp_path):
    folder = write_dataset(tmp_path / "ds")
    path = folder / "part-a.csv.gz"
    assert download.md5_of(path, gunzip=True) == MD5["part-a.csv.gz"]
    assert download.md5_of(path) == hashlib.md5(path.read_bytes()).hexdigest()
    assert download.md5_of(path) != MD5["part-a.csv.gz"]


def test_found_in_data_dir(tmp_path):
    folder = write_dataset(tmp_path / "ds")
    found = locate("ds", MD5, "file:///nowhere", data_dir=folder, download=False,
                   gunzip_md5=True)
    assert found == folder
    assert not (tmp_path / "cache").exists()     # nothing copied or downloaded


def test_found_in_data_dir_laid_out_like_mtrec_data_dir(tmp_path):
    write_dataset(tmp_path / "root" / "ds")
    found = locate("ds", MD5, "file:///nowhere", data_dir=tmp_path / "root",
                   download=False, gunzip_md5=True)
    assert found == tmp_path / "root" / "ds"


def test_found_via_environment_variable(tmp_path, monkeypatch):
    write_dataset(tmp_path / "root" / "ds")
    monkeypatch.setenv(download.DATA_DIR_ENV, str(tmp_path / "root"))
    found = locate("ds", MD5, "file:///nowhere", download=False, gunzip_md5=True)
    assert found == tmp_path / "root" / "ds"


def test_md5_mismatch_raises(tmp_path):
    folder = write_dataset(tmp_path / "ds")
    wrong = {**MD5, "part-b.csv.gz": "0" * 32}
    with pytest.raises(ValueError) as info:
        locate("ds", wrong, "file:///nowhere", data_dir=folder, download=False,
               gunzip_md5=True)
    message = str(info.value)
    assert f"Checksum mismatch for {folder / 'part-b.csv.gz'}" in message
    assert f"md5 {MD5['part-b.csv.gz']}, expected {'0' * 32}" in message
    assert "delete it and download it again" in message


def test_md5_of_the_compressed_bytes_is_not_accepted_for_gunzip_md5(tmp_path):
    folder = write_dataset(tmp_path / "ds")
    of_gz = {name: download.md5_of(folder / name) for name in MD5}
    assert locate("ds", of_gz, "file:///nowhere", data_dir=folder, download=False) == folder
    with pytest.raises(ValueError, match="Checksum mismatch"):
        locate("ds", of_gz, "file:///nowhere", data_dir=folder, download=False,
               gunzip_md5=True)


def test_corrupt_gzip_raises_value_error(tmp_path):
    folder = write_dataset(tmp_path / "ds")
    (folder / "part-a.csv.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="part-a.csv.gz as gzip.*corrupt or truncated"):
        locate("ds", MD5, "file:///nowhere", data_dir=folder, download=False,
               gunzip_md5=True)


def test_not_found_without_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="MTREC_DATA_DIR"):
        locate("ds", MD5, "file:///nowhere", download=False, gunzip_md5=True)
    with pytest.raises(FileNotFoundError, match="not found in") as info:
        locate("ds", MD5, "file:///nowhere", data_dir=tmp_path, download=False,
               gunzip_md5=True)
    message = str(info.value)
    assert "(downloading was not allowed)" in message
    for folder in (tmp_path, tmp_path / "ds", tmp_path / "cache" / "mtrec" / "ds"):
        assert f"  - {folder}  (" in message
    assert not (tmp_path / "cache").exists()


def test_not_found_names_every_folder_every_file_with_its_url_and_the_fix(
        tmp_path, monkeypatch):
    monkeypatch.setenv(download.DATA_DIR_ENV, str(tmp_path / "root"))
    with pytest.raises(download.DataNotFoundError) as info:
        locate("ds", MD5, "file:///nowhere", download=False)
    error = info.value
    assert [why for _, why in error.searched] == ["$MTREC_DATA_DIR", "user cache"]
    message = str(error)
    assert f"  - {tmp_path / 'root' / 'ds'}  ($MTREC_DATA_DIR)" in message
    assert f"  - {tmp_path / 'cache' / 'mtrec' / 'ds'}  (user cache)" in message
    for name in MD5:
        assert f"  - {name}  from file:///nowhere/{name}" in message
    assert "To fix: connect to the network" in message
    assert "set MTREC_DATA_DIR to a folder holding 'ds/'" in message
    assert "data/ds/README.md" in message


def test_no_public_url_names_the_manual_source(tmp_path):
    with pytest.raises(download.DataNotFoundError) as info:
        locate("samples/kaggle-thing", {"reviews.parquet": None}, "",
               source="https://example.org/kaggle (a login)")
    message = str(info.value)
    assert "(there is no public download URL)" in message
    assert "reviews.parquet  from https://example.org/kaggle (a login)" in message
    assert "connect to the network" not in message
    assert "data/kaggle-thing/README.md" in message
    assert not (tmp_path / "cache").exists()


def test_download_from_file_url_into_the_cache(tmp_path):
    source = write_dataset(tmp_path / "server")
    found = locate("ds", MD5, source.as_uri(), gunzip_md5=True)
    cache = tmp_path / "cache" / "mtrec" / "ds"
    assert found == cache
    assert sorted(p.name for p in cache.iterdir()) == sorted(CONTENT)   # no temp files
    for name, data in CONTENT.items():
        assert gzip.decompress((cache / name).read_bytes()) == data
    # The cache is used from now on: the source may go away.
    for path in source.iterdir():
        path.unlink()
    assert locate("ds", MD5, source.as_uri(), gunzip_md5=True) == cache


def test_download_fills_in_only_missing_files(tmp_path):
    source = write_dataset(tmp_path / "server")
    cache = tmp_path / "cache" / "mtrec" / "ds"
    cache.mkdir(parents=True)
    (cache / "part-a.csv.gz").write_bytes((source / "part-a.csv.gz").read_bytes())
    (source / "part-a.csv.gz").unlink()      # would fail if fetched again
    assert locate("ds", MD5, source.as_uri() + "/", gunzip_md5=True) == cache
    assert (cache / "part-b.csv.gz").exists()


def test_downloaded_file_with_wrong_md5_is_deleted(tmp_path):
    source = write_dataset(tmp_path / "server")
    wrong = {**MD5, "part-a.csv.gz": "f" * 32}
    with pytest.raises(ValueError) as info:
        locate("ds", wrong, source.as_uri(), gunzip_md5=True)
    assert f"{source.as_uri()}/part-a.csv.gz" in str(info.value)
    assert "fails the checksum" in str(info.value)
    assert not (tmp_path / "cache" / "mtrec" / "ds" / "part-a.csv.gz").exists()


def test_failing_url_raises_naming_it_and_leaves_no_empty_cache(tmp_path):
    base_url = (tmp_path / "missing-server").as_uri()
    with pytest.raises(RuntimeError) as info:  # DataNotFoundError is one too
        locate("ds", MD5, base_url, gunzip_md5=True)
    assert isinstance(info.value, download.DataNotFoundError)
    message = str(info.value)
    assert f"downloading them failed: could not download {base_url}/part-a.csv.gz" \
        in message
    assert f"  - part-b.csv.gz  from {base_url}/part-b.csv.gz" in message
    assert "MTREC_DATA_DIR" in message
    # no partial or temporary file left, and no empty folder either
    assert not (tmp_path / "cache").exists()


def test_a_failed_download_keeps_the_files_already_fetched(tmp_path):
    source = write_dataset(tmp_path / "server")
    (source / "part-b.csv.gz").unlink()
    with pytest.raises(download.DataNotFoundError, match="part-b.csv.gz"):
        locate("ds", MD5, source.as_uri(), gunzip_md5=True)
    cache = tmp_path / "cache" / "mtrec" / "ds"
    assert [p.name for p in cache.iterdir()] == ["part-a.csv.gz"]   # md5-checked


def test_network_guard_is_active():
    with pytest.raises(AssertionError, match="network"):
        socket.create_connection(("192.0.2.1", 80), timeout=0.01)
