import keras
import pytest


@pytest.fixture(autouse=True)
def _reset_keras_state():
    """Fresh layer names for each test. No garbage collection here: it costs
    seconds a test in this process, and the tests that build full-size
    models build them without values (`build_without_values`)."""
    yield
    keras.backend.clear_session(free_memory=False)
