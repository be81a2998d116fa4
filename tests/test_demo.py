"""A shortened `siglip2 demo`: learns well above chance and writes everything."""

import json

import numpy as np
import pytest

from keras_siglip2 import SigLIP2
from keras_siglip2.data import make_demo_examples
from keras_siglip2.demo import run_demo


@pytest.mark.slow
def test_short_demo_beats_chance_and_saves_a_loadable_preset(tmp_path):
    report = run_demo(
        tmp_path, steps=300, num_train=1500, num_test=120, steps_per_checkpoint=50, verbose=0
    )
    metrics, chance = report["metrics"], report["chance"]
    # A third of the full demo's steps: clearly learning, not yet converged.
    assert metrics["zero_shot_top1"] > 2 * chance["zero_shot_top1"], report
    assert metrics["text_to_image_R1"] > 2 * chance["text_to_image_R1"], report
    assert metrics["image_to_text_R1"] > 2 * chance["image_to_text_R1"], report
    for name in ("metrics.json", "loss_curves.png", "predictions.png", "history.csv"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"] == metrics

    loaded = SigLIP2.from_preset(tmp_path / "preset")
    images = [e["image"] for e in make_demo_examples(3, split="test")]
    # Same architecture, weights and preprocessing → the same embeddings.
    assert loaded.locca and loaded.decoder.num_coordinate_bins == 32
    first = loaded.embed_images(images)
    assert first.shape == (3, 96)
    np.testing.assert_allclose(np.linalg.norm(first, axis=-1), 1.0, atol=1e-5)
    boxes = loaded.locate(images, ["red circle"] * 3)
    assert boxes.shape == (3, 4) and (boxes >= 0).all() and (boxes <= 1).all()
