import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import NatsServer  # noqa: E402

from services.common.tokenizer import load_tokenizer, token_counter  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DATASETS = ROOT.parent / "shared" / "datasets"


@pytest.fixture(scope="session")
def tokenizer():
    return load_tokenizer(None, 256)


@pytest.fixture(scope="session")
def count_tokens(tokenizer):
    return token_counter(tokenizer)


@pytest.fixture
def nats_server(tmp_path):
    server = NatsServer(tmp_path / "nats").start()
    yield server
    server.stop()
