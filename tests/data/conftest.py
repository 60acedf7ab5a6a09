"""Fixtures shared by the loader tests."""

import socket

import pytest

from mtrec.data import download


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No socket may connect; the cache is test-local; $MTREC_DATA_DIR unset."""
    def refuse(*args, **kwargs):
        raise AssertionError("test tried to use the network")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.delenv(download.DATA_DIR_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
