"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _corpus_root() -> Path:
    configured = os.environ.get("PUBLISHER_CORPUS")
    if configured:
        return Path(configured)
    return REPO.parent / "shared" / "corpus" / "gofreerange"


@pytest.fixture(scope="session")
def corpus_root() -> Path:
    """The real Go Free Range corpus (../shared/corpus/gofreerange), or a skip with the reason."""
    root = _corpus_root()
    if not (root / "soups").is_dir():
        pytest.skip(
            f"corpus not found at {root}/soups: these tests need ../shared beside the repo "
            "(or PUBLISHER_CORPUS pointing at corpus/gofreerange)"
        )
    return root


# Shared, noisy machines: Hypothesis examples are judged on what they find, never on how long they take.
from hypothesis import settings  # noqa: E402

settings.register_profile("publisher", deadline=None, print_blob=True)
# CI runs the same examples every time (a red CI is reproducible, not a lottery); local runs explore.
settings.register_profile("ci", deadline=None, print_blob=True, derandomize=True, database=None)
settings.load_profile(os.environ.get("PUBLISHER_HYPOTHESIS_PROFILE", "publisher"))
