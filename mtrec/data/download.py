"""Finding dataset files locally, or downloading them with a checksum."""

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
import zlib
from pathlib import Path

DATA_DIR_ENV = "MTREC_DATA_DIR"


def cache_dir():
    """Where downloads go: `$XDG_CACHE_HOME/mtrec` or `~/.cache/mtrec`."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mtrec"


def md5_of(path, gunzip=False):
    """md5 of a file's bytes (of its uncompressed content with `gunzip`)."""
    digest = hashlib.md5()
    opener = gzip.open if gunzip else open
    try:
        with opener(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:
        raise ValueError(
            f"Cannot read {path}{' as gzip' if gunzip else ''}: {error}. The "
            f"file is corrupt or truncated; delete it and download it "
            f"again.") from error
    return digest.hexdigest()


def locate(subdir, files, base_url, data_dir=None, download=True, gunzip_md5=False):
    """Return the folder holding `files`, downloading them if needed.

    Looks in `data_dir` (or `data_dir/<subdir>`), else in
    `$MTREC_DATA_DIR/<subdir>`, then in the user cache; downloads missing
    files from `base_url` into the cache. Every file's md5 is checked
    before it is used; a download that fails the check is deleted.

    Args:
        subdir: str. Dataset folder name, e.g. `"census-income"`.
        files: dict `{file_name: md5}`.
        base_url: str. URL the file names are appended to.
        data_dir: optional folder to read from (no download into it): the
            dataset folder itself, or a folder holding `<subdir>/` laid out
            like `$MTREC_DATA_DIR`.
        download: bool. Allow downloading into the cache.
        gunzip_md5: bool. The md5 values are of the uncompressed content.

    Returns:
        pathlib.Path of the folder.
    """
    candidates = []
    if data_dir is not None:
        candidates += [Path(data_dir), Path(data_dir) / subdir]
    elif os.environ.get(DATA_DIR_ENV):
        candidates.append(Path(os.environ[DATA_DIR_ENV]) / subdir)
    cached = cache_dir() / subdir
    candidates.append(cached)
    for folder in candidates:
        if all((folder / name).exists() for name in files):
            _verify(folder, files, gunzip_md5)
            return folder
    if data_dir is not None and not download:
        raise FileNotFoundError(
            f"{subdir}: files {sorted(files)} not found in {data_dir}.")
    if not download:
        raise FileNotFoundError(
            f"{subdir}: files {sorted(files)} not found in "
            f"{[str(c) for c in candidates]}; set {DATA_DIR_ENV} to a folder "
            f"holding '{subdir}/' or allow download=True.")
    cached.mkdir(parents=True, exist_ok=True)
    for name in files:
        target = cached / name
        if not target.exists():
            _fetch(f"{base_url.rstrip('/')}/{name}", target)
            try:
                _verify(cached, {name: files[name]}, gunzip_md5)
            except ValueError as error:
                # Never leave a bad download where the next call trusts it.
                target.unlink()
                raise ValueError(
                    f"Downloaded {base_url.rstrip('/')}/{name} but it fails "
                    f"the checksum ({error}); the file was deleted. The source "
                    f"may have changed or the download was corrupted; retry, "
                    f"or fetch it by hand and set {DATA_DIR_ENV}.") from error
    _verify(cached, files, gunzip_md5)
    return cached


def _fetch(url, target):
    # Download to a temporary name first so an interrupted download never
    # leaves a truncated file that looks complete.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".")
    os.close(fd)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
            shutil.copyfileobj(response, out)
        os.replace(tmp, target)
    except Exception as error:
        os.unlink(tmp)
        raise RuntimeError(
            f"Could not download {url}: {error}. Download it by hand into "
            f"{target.parent} or set {DATA_DIR_ENV}.") from error


def _verify(folder, files, gunzip_md5):
    for name, expected in files.items():
        if expected is None:
            continue
        actual = md5_of(folder / name, gunzip=gunzip_md5)
        if actual != expected:
            raise ValueError(
                f"Checksum mismatch for {folder / name}: md5 {actual}, "
                f"expected {expected}. The file is corrupt or a different "
                f"release; delete it and download it again.")
