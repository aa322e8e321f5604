"""Sizes written by people ("100MB", "1GiB", "4096") are read exactly, and nonsense is one clear error."""

from __future__ import annotations

import pytest

from peerkit.utils import MAX_SIZE, parse_size


@pytest.mark.parametrize(
    "text,size",
    [("4096", 4096), ("100MB", 100_000_000), ("1GiB", 1 << 30), ("64k", 64_000), ("1.5MB", 1_500_000), (" 2 KiB ", 2048),
     ("99999999999999999", 99999999999999999), (7, 7)],
)
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize(
    "text,needle",
    [("lots", "cannot read"), ("", "cannot read"), ("-5", "negative"), ("inf", "too large"), ("1e400", "too large"),
     ("nan", "cannot read"), ("1.5", "whole number"), ("9" * 30, "too large"), (str(MAX_SIZE + 1), "too large")],
)
def test_nonsense_is_a_value_error(text, needle):
    with pytest.raises(ValueError, match=needle):
        parse_size(text)
