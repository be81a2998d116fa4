"""The analytic FLOP model against XLA's count of the compiled training step
(Keras' JAX `train_step`, compiled on CPU, never run), per recipe."""

import os
import sys

import keras
import pytest

from keras_siglip2 import flop_model

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "benchmarks"))

import workloads  # noqa: E402

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="XLA cost analysis of the JAX step"
)


def _config():
    """B/16 at 224 px with narrow towers: matmuls dominate, compiles in seconds."""
    config = workloads.backbone_config("b16", depth=1, vocabulary=2048)
    for tower in config.values():
        tower.update(hidden_dim=128, intermediate_dim=512, num_heads=2)
    config["text"]["projection_dim"] = 128
    return config


@pytest.mark.parametrize("recipe", ["sigmoid", "locca", "full"])
def test_flops_match_xla(recipe):
    config = _config()
    # One vocabulary chunk: XLA counts a loop body once.
    model = workloads.build_model(config, recipe, toy=True, chunk_size=10**6)
    cost = workloads.compile_train_step(model, 4).cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    locca = recipe != "sigmoid"
    analytic = flop_model.training_step_flops(
        config, 4, locca=locca, vocabulary_size=2048 + workloads.COORDINATE_BINS,
        chunk_size=10**6, self_supervised=model.self_supervised,
    )
    assert analytic["total"] == pytest.approx(cost["flops"], rel=0.04), analytic


def test_components_and_remat():
    config = workloads.backbone_config("b16")
    _, settings = workloads.recipe_settings(config, "full")
    full = flop_model.training_step_flops(config, 256, locca=True, self_supervised=settings)
    assert set(full) >= {"image_tower", "text_tower", "decoder", "vocabulary", "teacher",
                         "local_views", "masked_view", "heads", "remat", "total"}
    assert full["total"] == pytest.approx(sum(v for k, v in full.items() if k != "total"))
    sigmoid = flop_model.training_step_flops(config, 256)
    # B/16@224, batch 256: ~35.7 TFLOP per sigmoid step (the 23% MFU at 0.154 s).
    assert sigmoid["total"] / 1e12 == pytest.approx(35.7, rel=0.01)
    # Skipped padding: the vocabulary costs its scored tokens, rounded up to a chunk.
    scored = flop_model.training_step_flops(config, 256, locca=True, scored_tokens=7000)
    every = flop_model.training_step_flops(config, 256, locca=True)
    assert scored["vocabulary"] / every["vocabulary"] == pytest.approx(7168 / (3 * 64 * 256))
    block = flop_model.training_step_flops(config, 256, locca=True, self_supervised=settings,
                                           remat="block")
    mlp = flop_model.training_step_flops(config, 256, locca=True, self_supervised=settings,
                                         remat="mlp")
    assert full["total"] < mlp["total"] < block["total"]
