"""Shared fixtures: every test gets its own temp dirs and free loopback ports."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.nodes import NodeProcess

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def name_corpus() -> dict:
    """The contract's file-name corpus (copied from shared/corpus/file-names.json)."""
    return json.loads((DATA / "file-names.json").read_text("utf-8"))


@pytest.fixture
def processes() -> Iterator[list[NodeProcess]]:
    """Collects NodeProcess objects a test starts and stops them all, by PID, at the end."""
    started: list[NodeProcess] = []
    yield started
    for proc in started:
        proc.stop()
