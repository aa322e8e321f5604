"""The page-cache probe that lets content be read in the event loop only when it cannot block."""

from __future__ import annotations

import errno
import os

import pytest

from peerkit import pagecache
from peerkit.pagecache import is_cached
from support.transfer import evict, make_file

MiB = 1 << 20


def test_fresh_file_is_cached_and_evicted_one_is_not(tmp_path):
    path = tmp_path / "f.bin"
    make_file(path, 4 * MiB)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert is_cached(fd, 0, 4 * MiB)
        evict(path, 2 * MiB)
        if is_cached(fd, 3 * MiB, MiB):
            pytest.skip("this filesystem keeps every page in memory (tmpfs?)")
        assert is_cached(fd, 0, MiB)
        assert not is_cached(fd, MiB, 2 * MiB)  # its last byte was dropped
        assert not is_cached(fd, 2 * MiB, 2 * MiB)
    finally:
        os.close(fd)


def test_empty_or_past_the_end_ranges_are_not_cached(tmp_path):
    path = tmp_path / "f.bin"
    make_file(path, 100)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert not is_cached(fd, 0, 0)
        assert not is_cached(fd, 50, 100)  # runs past the end: let a thread read it
    finally:
        os.close(fd)


def test_a_filesystem_refusing_nowait_means_not_cached(tmp_path, monkeypatch):
    path = tmp_path / "f.bin"
    make_file(path, 100)

    def refuse(*args):
        raise OSError(errno.EOPNOTSUPP, "not supported")

    monkeypatch.setattr(pagecache.os, "preadv", refuse)
    fd = os.open(path, os.O_RDONLY)
    try:
        assert not is_cached(fd, 0, 100)
    finally:
        os.close(fd)


def test_other_errors_are_raised(tmp_path):
    fd = os.open(tmp_path / "gone", os.O_WRONLY | os.O_CREAT)
    os.close(fd)  # a closed fd is a caller's bug, not "uncached"
    with pytest.raises(OSError) as caught:
        is_cached(fd, 0, 1)
    assert caught.value.errno == errno.EBADF
