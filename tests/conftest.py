from pathlib import Path

import pytest


@pytest.fixture
def shared_data():
    """``<repo>/../shared/data`` (read-only real data sets); skip when this checkout has none."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "data"
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path}")
    return path
