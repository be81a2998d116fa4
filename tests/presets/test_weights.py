"""Streaming a checkpoint into a model: what is held in memory while it loads."""

import threading

import jax
import keras
import numpy as np
import pytest

from keras_siglip2 import SigLIP2Backbone, configs
from keras_siglip2.presets import weights
from tests.presets import checkpoints


@pytest.mark.backends
@pytest.mark.parametrize("source", ["big_vision", "keras_hub"])
def test_no_initial_values_are_computed_before_the_checkpoint_streams_in(
    tmp_path, monkeypatch, source
):
    # On JAX the model holds only the tensors loaded so far: a variable has no
    # concrete value (no random initialisation ran) until its checkpoint
    # tensor is assigned. TensorFlow and torch assign in place; there the load
    # just has to give the weights.
    if source == "big_vision":
        reference = checkpoints.big_vision_params(checkpoints.transformers_model(False))
        np.savez(tmp_path / "c.npz", **reference)
        preset = str(tmp_path / "c.npz")
    else:
        checkpoints.keras_hub_backbone().save_to_preset(str(tmp_path))
        preset = str(tmp_path)
    abstract_before_assign = []
    assign = weights.assign

    def spy(variable, array, source):
        value = variable.value
        abstract_before_assign.append(
            keras.backend.backend() != "jax" or isinstance(value, jax.core.Tracer)
        )
        assign(variable, array, source)

    monkeypatch.setattr(weights, "assign", spy)
    loaded = SigLIP2Backbone.from_preset(preset)
    assert len(abstract_before_assign) == len(loaded.weights)
    assert all(abstract_before_assign)
    for variable in loaded.variables:  # every value concrete now
        keras.ops.convert_to_numpy(variable)
    if source == "big_vision":
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(loaded.text_encoder.embedding.token_embeddings),
            reference["params/txt/Embed_0/embedding"],
        )


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="only JAX builds without values")
def test_a_variable_the_checkpoint_leaves_unset_is_an_error():
    model = weights.build_without_values(lambda: SigLIP2Backbone(**configs.tiny()))
    for variable in model.weights[1:]:
        variable.assign(np.zeros(tuple(variable.shape), variable.dtype))
    with pytest.raises(ValueError, match="test.npz gave no value to 1 model variables"):
        weights.check_assigned(model, "test.npz")


def test_a_model_built_in_another_thread_during_a_load_gets_its_initialisers():
    # Nothing global changes while a preset loads: a model built meanwhile in
    # another thread has concrete, randomly initialised weights.
    built_meanwhile = []

    def build_elsewhere():
        built_meanwhile.append(SigLIP2Backbone(**configs.tiny()))

    def build_for_loading():
        thread = threading.Thread(target=build_elsewhere)
        thread.start()
        thread.join()
        return SigLIP2Backbone(**configs.tiny())

    weights.build_without_values(build_for_loading)
    kernel = keras.ops.convert_to_numpy(
        built_meanwhile[0].vision_encoder.encoder_blocks[0].attention.query.kernel
    )
    assert np.std(kernel) > 0
