"""Range, If-Range, ETag and digest headers, decided without a server."""

from __future__ import annotations

import base64
import hashlib

import pytest

from peerkit.plugins.rest_litestar.ranges import (
    RangeNotSatisfiable,
    etag_matches,
    expected_sha256,
    http_date,
    if_range_allows,
    parse_range,
)

SIZE = 1000


@pytest.mark.parametrize(
    ("header", "span"),
    [
        ("bytes=0-0", (0, 0)),  # first byte
        ("bytes=999-999", (999, 999)),  # last byte
        ("bytes=999-", (999, 999)),
        ("bytes=-100", (900, 999)),  # suffix
        ("bytes=-5000", (0, 999)),  # suffix longer than the file: all of it
        ("bytes=500-5000", (500, 999)),  # end clipped
        ("bytes=0-", (0, 999)),
        ("Bytes = 10 - 19", (10, 19)),
        ("bytes=0-" + "9" * 5000, (0, 999)),  # a 5,000-digit end is just past the end
        ("bytes=-" + "9" * 5000, (0, 999)),
    ],
)
def test_satisfiable_ranges(header, span):
    assert parse_range(header, SIZE) == span


@pytest.mark.parametrize("header", [None, "", "bytes=", "bytes=-", "items=0-1", "bytes=a-b", "bytes=5-2", "bytes=0-1,5-6"])
def test_ignored_ranges_mean_the_whole_file(header):
    assert parse_range(header, SIZE) is None


@pytest.mark.parametrize(("header", "size"), [("bytes=1000-", 1000), ("bytes=1000-2000", 1000), ("bytes=" + "9" * 5000 + "-", 1000), ("bytes=-0", 1000), ("bytes=0-", 0), ("bytes=-1", 0)])
def test_unsatisfiable_ranges(header, size):
    with pytest.raises(RangeNotSatisfiable) as info:
        parse_range(header, size)
    assert info.value.size == size


def test_if_range():
    etag = '"' + "a" * 64 + '"'
    assert if_range_allows(None, etag, 0.0)
    assert if_range_allows(etag, etag, 0.0)
    assert not if_range_allows('"' + "b" * 64 + '"', etag, 0.0)
    assert not if_range_allows("W/" + etag, etag, 0.0)  # weak validators never allow a range
    assert if_range_allows(http_date(1_700_000_000.5), etag, 1_700_000_000.5)
    assert not if_range_allows(http_date(1_600_000_000), etag, 1_700_000_000.0)
    assert not if_range_allows("not a date", etag, 1.0)


def test_if_none_match():
    etag = '"abc"'
    assert etag_matches('"abc"', etag)
    assert etag_matches('W/"abc", "x"', etag)
    assert etag_matches("*", etag)
    assert not etag_matches('"abd"', etag)
    assert not etag_matches(None, etag)


def test_announced_sha256():
    digest = hashlib.sha256(b"hello").digest()
    hexd = digest.hex()
    b64 = base64.b64encode(digest).decode()
    assert expected_sha256(None, None) is None
    assert expected_sha256(hexd.upper(), None) == hexd
    assert expected_sha256(None, f"sha-256={b64}") == hexd
    assert expected_sha256(None, f"md5=xyz, SHA-256={b64}") == hexd
    assert expected_sha256(None, None, f"sha-256=:{b64}:") == hexd
    assert expected_sha256(hexd, f"sha-256={b64}") == hexd
    with pytest.raises(ValueError, match="disagree"):
        expected_sha256("0" * 64, f"sha-256={b64}")
    with pytest.raises(ValueError, match="64 hex"):
        expected_sha256("xyz", None)
    with pytest.raises(ValueError, match="base64"):
        expected_sha256(None, "sha-256=!!!")
    with pytest.raises(ValueError, match="32 bytes"):
        expected_sha256(None, "sha-256=" + base64.b64encode(b"short").decode())
