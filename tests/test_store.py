"""The file store: name rules, no escape from the share, cached hashes, atomic writes."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from peerkit import store as store_mod
from peerkit.errors import AlreadyExists, IntegrityError, NotFound, TooLarge
from peerkit.names import InvalidName, validate_name
from peerkit.store import TEMP_PREFIX, FileStore


@pytest.fixture
def store(tmp_path):
    s = FileStore(tmp_path / "share", tmp_path / "state")
    s.open()
    return s


def test_corpus_refused_names(name_corpus, store, tmp_path):
    (tmp_path / "x").write_text("outside")  # a target a traversal would hit
    for name in name_corpus["refused"]:
        with pytest.raises(InvalidName):
            validate_name(name)
        with pytest.raises(InvalidName):
            store.path_for(name)
        with pytest.raises(InvalidName):
            store.writer(name)
        with pytest.raises(InvalidName):
            store.open_read(name)
    assert sorted(os.listdir(store.root)) == []


def test_corpus_accepted_and_normalised_names(name_corpus, store):
    for name in name_corpus["accepted"]:
        assert validate_name(name) == name
        with store.writer(name) as w:
            w.write(name.encode())
            w.commit()
        with store.open_read(name) as f:
            assert f.read() == name.encode()
    for given, stored in name_corpus["normalised"]:
        assert validate_name(given) == stored
        with store.writer(given) as w:
            w.write(b"n")
            w.commit()
        assert stored in os.listdir(store.root)
    names = {e.name for e in store.scan()}
    assert names == set(name_corpus["accepted"]) | {s for _, s in name_corpus["normalised"]}


def test_extra_hostile_names(store):
    for name in ["C:\\x", "\x00", "a" * 300, "é" * 200, "/abs", "..", "."]:
        with pytest.raises(InvalidName):
            store.path_for(name)


def test_symlink_pointing_outside_is_neither_listed_nor_read(store, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    os.symlink(secret, store.root / "leak.txt")
    inside = store.root / "real.txt"
    inside.write_text("fine")
    os.symlink(inside, store.root / "alias.txt")  # a link that stays inside is fine
    names = {e.name for e in store.scan()}
    assert "leak.txt" not in names
    assert {"real.txt", "alias.txt"} <= names
    with pytest.raises(NotFound):
        store.open_read("leak.txt")
    with pytest.raises(NotFound):
        store.real_path("leak.txt")


def test_dropped_in_files_appear_and_hashes_are_cached_across_restart(tmp_path, monkeypatch):
    share = tmp_path / "share"
    share.mkdir()
    (share / "a.txt").write_bytes(b"alpha")
    calls: list[str] = []
    real = store_mod.sha256_file

    def counting(path):
        calls.append(os.path.basename(path))
        return real(path)

    monkeypatch.setattr(store_mod, "sha256_file", counting)
    s1 = FileStore(share, tmp_path / "state")
    s1.open()
    assert calls == ["a.txt"]
    (share / "b.txt").write_bytes(b"beta")  # dropped in while running
    entries = {e.name: e for e in s1.scan()}
    assert entries["b.txt"].sha256 == hashlib.sha256(b"beta").hexdigest()
    assert calls == ["a.txt", "b.txt"]

    s2 = FileStore(share, tmp_path / "state")  # a restart: nothing changed, nothing rehashed
    s2.open()
    assert calls == ["a.txt", "b.txt"]
    assert {e.name for e in s2.entries()} == {"a.txt", "b.txt"}

    time.sleep(0.01)
    (share / "a.txt").write_bytes(b"alpha2")  # changed: rehashed
    s2.scan()
    assert calls.count("a.txt") == 2


async def test_match_exact_glob_and_sha(store):
    for name, data in [("a.txt", b"a"), ("b.txt", b"b"), ("c.bin", b"c")]:
        with store.writer(name) as w:
            w.write(data)
            w.commit()
    assert [e.name for e in await store.match("a.txt")] == ["a.txt"]
    assert [e.name for e in await store.match("*.txt")] == ["a.txt", "b.txt"]
    digest = hashlib.sha256(b"c").hexdigest()
    assert [e.name for e in await store.match(f"sha256:{digest}")] == ["c.bin"]
    assert [e.name for e in await store.match(f"sha256:{digest[:12].upper()}")] == ["c.bin"]  # a prefix, as the CLI shows
    assert await store.match(f"sha256:{digest[:7]}") == []  # too short to mean anything
    assert await store.match("sha256:not-hex!") == []
    assert await store.match("../etc/passwd") == []


def test_writer_verifies_size_and_hash_and_leaves_nothing_on_failure(store):
    with pytest.raises(IntegrityError):
        with store.writer("x.bin", expected_sha256="0" * 64) as w:
            w.write(b"data")
            w.commit()
    with pytest.raises(IntegrityError):
        with store.writer("x.bin", expected_size=10) as w:
            w.write(b"data")
            w.commit()
    with pytest.raises(TooLarge):
        store.writer("x.bin", expected_size=100, max_size=10)
    with pytest.raises(TooLarge):
        with store.writer("x.bin", max_size=3) as w:
            w.write(b"data")
    assert os.listdir(store.root) == []
    with store.writer("x.bin", expected_size=4, expected_sha256=hashlib.sha256(b"data").hexdigest()) as w:
        w.write(b"data")
        entry = w.commit()
    assert entry.size == 4 and entry.name == "x.bin"
    with pytest.raises(AlreadyExists):
        store.writer("x.bin")
    with store.writer("x.bin", overwrite=True) as w:
        w.write(b"new")
        w.commit()
    assert (store.root / "x.bin").read_bytes() == b"new"


def test_concurrent_writers_of_one_name_exactly_one_wins(store):
    def attempt(i: int) -> bool:
        try:
            w = store.writer("race.bin")
        except AlreadyExists:
            return False
        payload = bytes([i]) * 200_000
        for k in range(0, len(payload), 50_000):
            w.write(payload[k : k + 50_000])
        try:
            w.commit()
            return True
        except AlreadyExists:
            return False

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(attempt, range(8)))
    assert results.count(True) == 1
    data = (store.root / "race.bin").read_bytes()
    assert len(data) == 200_000 and len(set(data)) == 1  # never a mix
    assert [n for n in os.listdir(store.root) if n.startswith(TEMP_PREFIX)] == []


KILLED_WRITER = r"""
import sys, time
from peerkit.store import FileStore
s = FileStore(sys.argv[1], sys.argv[2]); s.open()
w = s.writer("big.bin")
w.write(b"x" * 1_000_000)
print("writing", flush=True)
while True:
    w.write(b"y" * 65536)
    time.sleep(0.01)
"""


def test_kill_mid_write_leaves_no_partial_file_and_temp_is_cleaned_at_next_start(tmp_path):
    share, state = tmp_path / "share", tmp_path / "state"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(share), str(state)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
        time.sleep(0.1)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    leftovers = os.listdir(share)
    assert "big.bin" not in leftovers
    assert any(n.startswith(TEMP_PREFIX) for n in leftovers)  # the crash left its temp file
    s = FileStore(share, state)
    s.open()
    assert os.listdir(share) == []
    assert s.entries() == []
