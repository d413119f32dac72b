import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from datasets import load_ml100k, synthetic_amazon  # noqa: E402
from epochs import triples_for  # noqa: E402


@pytest.fixture(scope="session")
def ml100k():
    data = load_ml100k()
    if data is None:
        pytest.skip("ml100k not found")
    return data + (triples_for(data[0]),)


@pytest.fixture(scope="session")
def amazon():
    data = synthetic_amazon()
    return data + (triples_for(data[0]),)
