"""Shared test fixtures.

``shared_dir`` points at the team's read-only shared material beside the checkout
(``../shared`` relative to the repository root). Tests that need it skip with a clear
reason where it is absent (a user's clone).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = REPO_ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared reference material (protocol vectors, metric cases, real data)."""
    if not SHARED_DIR.is_dir():
        pytest.skip("shared reference material (../shared beside the checkout) is not present in this clone")
    return SHARED_DIR


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
