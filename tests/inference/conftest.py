"""Tiny random models shared by the inference, export and CLI tests."""

import pytest

from tests.training.helpers import tiny_model


@pytest.fixture(scope="session")
def tiny_fixed():
    return tiny_model(naflex=False, seed=1, locca=False)


@pytest.fixture(scope="session")
def tiny_naflex():
    return tiny_model(naflex=True, seed=2, locca=False)
