import gc

import keras
import pytest


@pytest.fixture(autouse=True)
def _free_models():
    """Full-size models built here are large: drop them after each test."""
    yield
    keras.backend.clear_session()
    gc.collect()
