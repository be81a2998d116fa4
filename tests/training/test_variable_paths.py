"""Every variable of the task model has its own path. Keras' torch backend
registers a layer's parameters in a dict keyed by path, so variables that
share a path are not torch parameters of the model: `zero_grad()` skips them
and their gradients add up from one training step to the next."""

import keras
import pytest

from tests.training.helpers import tiny_model


@pytest.mark.backends
@pytest.mark.parametrize("naflex", [False, True], ids=["fixed", "naflex"])
def test_variable_paths_are_unique(naflex):
    model = tiny_model(naflex=naflex, seed=None)
    paths = [v.path for v in model.weights]
    duplicates = sorted({p for p in paths if paths.count(p) > 1})
    assert not duplicates, f"{len(duplicates)} paths are shared, e.g. {duplicates[:4]}"
    if keras.backend.backend() == "torch":
        assert len(list(model.parameters())) == len(model.weights)
