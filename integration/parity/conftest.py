"""The preprocessing unit tests' fixtures (a Gemma-style SentencePiece model,
sample photos), for the preprocessing parity tests."""

from tests.preprocessing.conftest import photos, spm_model  # noqa: F401
