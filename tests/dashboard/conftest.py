"""Fixtures of the dashboard tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .served import Served


@pytest.fixture
def serve() -> Iterator:
    """Start execlab commands that serve a dashboard; kill whatever is left at the end."""
    started: list[Served] = []

    def start(args: list[str]) -> Served:
        s = Served(args)
        started.append(s)
        return s

    yield start
    for s in started:
        s.kill()
