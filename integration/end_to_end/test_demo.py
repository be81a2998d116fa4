"""A shortened `siglip2 demo`: learns well above chance and writes everything."""

import json

import numpy as np
import pytest

from keras_siglip2 import SigLIP2
from keras_siglip2.data import make_demo_examples


@pytest.mark.slow
def test_short_demo_beats_chance_and_saves_a_loadable_preset(short_demo):
    tmp_path, report = short_demo  # run_demo(steps=600, ...), see conftest.py here
    metrics, chance = report["metrics"], report["chance"]
    # Two thirds of the full demo's steps: clearly learning, not yet converged.
    assert metrics["zero_shot_top1"] > 2 * chance["zero_shot_top1"], report
    assert metrics["text_to_image_R1"] > 2 * chance["text_to_image_R1"], report
    assert metrics["image_to_text_R1"] > 2 * chance["image_to_text_R1"], report
    assert metrics["dense_probe_miou"] > 1.5 * chance["dense_probe_miou"], report
    # Boxes: beat always answering the mean training box (0.40 vs 0.28 measured).
    assert metrics["referring_accuracy"] > chance["referring_accuracy"] + 0.05, report
    # All five losses trained; the self-supervised two switched on at 80%.
    history = (tmp_path / "history.csv").read_text().splitlines()
    columns = history[0].split(",")
    for name in ("sigmoid_loss", "captioning_loss", "localization_loss",
                 "self_distillation_loss", "masked_prediction_loss"):
        assert name in columns, columns
    last = dict(zip(columns, history[-1].split(",")))
    assert float(last["self_distillation_loss"]) > 0 and float(last["masked_prediction_loss"]) > 0
    for name in ("metrics.json", "loss_curves.png", "predictions.png", "history.csv"):
        assert (tmp_path / name).stat().st_size > 0, name
    assert json.loads((tmp_path / "metrics.json").read_text())["metrics"] == metrics

    loaded = SigLIP2.from_preset(tmp_path / "preset")
    images = [e["image"] for e in make_demo_examples(3, split="test")]
    # Same architecture, weights and preprocessing → the same embeddings.
    assert loaded.locca and loaded.decoder.num_coordinate_bins == 32
    assert loaded.self_supervised["num_local_views"] == 8
    first = loaded.embed_images(images)
    assert first.shape == (3, 96)
    np.testing.assert_allclose(np.linalg.norm(first, axis=-1), 1.0, atol=1e-5)
    boxes = loaded.locate(images, ["red circle"] * 3)
    assert boxes.shape == (3, 4) and (boxes >= 0).all() and (boxes <= 1).all()
