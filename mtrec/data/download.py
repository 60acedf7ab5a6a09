"""Finding dataset files locally, or downloading them with a checksum.

Where a dataset's files are looked for, in order: the loader's `data_dir`
argument, else `$MTREC_DATA_DIR/<dataset>/`, then the per-user cache
`$XDG_CACHE_HOME/mtrec/<dataset>/` (default `~/.cache/mtrec/`, the XDG
place for re-downloadable files, as `keras.utils.get_file` keeps its own
under `~/.keras/datasets`). Missing files are downloaded into the cache and
md5-checked; when that fails, `DataNotFoundError` names every folder
searched, every file with its URL, and what to do (see data/README.md).
"""

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
import zlib
from pathlib import Path

DATA_DIR_ENV = "MTREC_DATA_DIR"


class DataNotFoundError(FileNotFoundError, RuntimeError):
    """A dataset's files are in no folder searched and could not be downloaded.

    A `FileNotFoundError` (and, for a failed download, what `locate` raised
    before: a `RuntimeError`). The message lists every folder searched,
    every file needed with its URL, and what to do.

    Attributes:
        dataset: str. The dataset folder name, e.g. `"census-income"`.
        searched: list of `(folder, why)` pairs, in search order.
        files: dict `{file name: URL or None}`.
        reason: str or None. Why the download failed (None: not attempted).
    """

    def __init__(self, dataset, searched, files, reason=None, source=None):
        self.dataset, self.searched, self.files = dataset, list(searched), dict(files)
        self.reason, self.source = reason, source
        super().__init__(self._message())

    def _message(self):
        downloadable = any(self.files.values())
        if self.reason:
            why = f", and downloading them failed: {self.reason}"
        else:
            why = (" (downloading was not allowed)" if downloadable
                   else " (there is no public download URL)")
        lines = [f"Dataset '{self.dataset}': its files were not found in any folder "
                 f"searched{why}.", "Searched:"]
        lines += [f"  - {folder}  ({where})" for folder, where in self.searched]
        lines.append("Files needed:")
        for name, url in self.files.items():
            origin = url or self.source or "no public URL (see the README below)"
            lines.append(f"  - {name}  from {origin}")
        retry = ("connect to the network and run again (the files are downloaded "
                 "into the user cache and md5-checked), or " if downloadable else "")
        readme = self.dataset.rpartition("/")[2].removesuffix("-archive")
        lines.append(
            f"To fix: {retry}put the files in {self.searched[-1][0]} by hand, or set "
            f"{DATA_DIR_ENV} to a folder holding '{self.dataset}/'. Source, license "
            f"and md5s: data/{readme}/README.md in the mtrec repository.")
        return "\n".join(lines)


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


def search_path(subdir, data_dir=None):
    """`[(folder, why)]` where `locate` looks for a dataset, in order."""
    if data_dir is not None:
        searched = [(Path(data_dir), "data_dir"), (Path(data_dir) / subdir, "data_dir")]
    elif os.environ.get(DATA_DIR_ENV):
        searched = [(Path(os.environ[DATA_DIR_ENV]) / subdir, f"${DATA_DIR_ENV}")]
    else:
        searched = []
    return searched + [(cache_dir() / subdir, "user cache")]


def locate(subdir, files, base_url, data_dir=None, download=True, gunzip_md5=False,
           source=None):
    """Return the folder holding `files`, downloading them if needed.

    Looks in `data_dir` (or `data_dir/<subdir>`), else in
    `$MTREC_DATA_DIR/<subdir>`, then in the user cache; downloads missing
    files from `base_url` into the cache. Every file's md5 is checked
    before it is used; a download that fails the check is deleted, and a
    failed download leaves no empty cache folder behind.

    Args:
        subdir: str. Dataset folder name, e.g. `"census-income"`.
        files: dict `{file_name: md5}`.
        base_url: str. URL the file names are appended to (`""`: none).
        data_dir: optional folder to read from (no download into it): the
            dataset folder itself, or a folder holding `<subdir>/` laid out
            like `$MTREC_DATA_DIR`.
        download: bool. Allow downloading into the cache.
        gunzip_md5: bool. The md5 values are of the uncompressed content.
        source: str. Where to get the files by hand when there is no
            `base_url` (named in the error).

    Returns:
        pathlib.Path of the folder.

    Raises:
        DataNotFoundError: the files are nowhere and could not be downloaded.
        ValueError: a file fails its md5 check.
    """
    searched = search_path(subdir, data_dir)
    for folder, _ in searched:
        if all((folder / name).exists() for name in files):
            _verify(folder, files, gunzip_md5)
            return folder
    urls = {name: f"{base_url.rstrip('/')}/{name}" if base_url else None for name in files}
    if not download or not base_url:
        raise DataNotFoundError(subdir, searched, urls, source=source)
    cached = searched[-1][0]
    created = [p for p in [cached, *cached.parents] if not p.exists()]
    cached.mkdir(parents=True, exist_ok=True)
    try:
        for name in files:
            target = cached / name
            if not target.exists():
                _fetch(urls[name], target)
                try:
                    _verify(cached, {name: files[name]}, gunzip_md5)
                except ValueError as error:
                    # Never leave a bad download where the next call trusts it.
                    target.unlink()
                    raise ValueError(
                        f"Downloaded {urls[name]} but it fails the checksum "
                        f"({error}); the file was deleted. The source may have "
                        f"changed or the download was corrupted; retry, or fetch "
                        f"it by hand and set {DATA_DIR_ENV}.") from error
    except _DownloadError as error:
        _remove_empty(created)
        raise DataNotFoundError(subdir, searched, urls, reason=str(error),
                                source=source) from None
    except ValueError:
        _remove_empty(created)
        raise
    _verify(cached, files, gunzip_md5)
    return cached


class _DownloadError(Exception):
    """One file could not be fetched (turned into DataNotFoundError)."""


def _remove_empty(folders):
    # Deepest first: the cache folders this call created, if still empty.
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            break


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
        raise _DownloadError(f"could not download {url}: {error}") from error


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
