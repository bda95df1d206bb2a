"""Fixtures shared by the whole suite: a clean environment for every test."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Remove every NOMAD_* variable and NO_COLOR, so the developer's shell never leaks in."""
    for name in list(os.environ):
        if name.startswith("NOMAD_") or name == "NO_COLOR":
            monkeypatch.delenv(name)
