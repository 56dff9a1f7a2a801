"""Fixtures shared by several test files."""

from pathlib import Path

import pytest

# The project is cloned next to shared/, which holds real data on development
# machines only; tests that need it skip when it is absent.
SHARED_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The folder of real data (../shared/data); skips the test when it is absent."""
    if not SHARED_DATA_DIR.is_dir():
        pytest.skip(f"real data not available: {SHARED_DATA_DIR} does not exist (see the project README)")
    return SHARED_DATA_DIR
