"""`SigLIP2.export`: TF SavedModel and ONNX artefacts, loaded with TensorFlow and
onnxruntime, agree with the Keras model (fixed resolution and NaFlex shapes)."""

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_siglip2.data import make_demo_examples
from tests.training.helpers import tiny_model

TOLERANCE = 1e-4
TEXTS = ["a red circle", "Ein BLAUER Stern", "un carré vert et un très long texte " * 4]
# Demo images come in several sizes and aspect ratios → several NaFlex grids.
IMAGES = [e["image"] for e in make_demo_examples(6, split="test")]


@pytest.fixture(scope="module", params=["fixed", "naflex"])
def exported(request, tmp_path_factory):
    """A tiny model and its SavedModel and ONNX exports."""
    model = tiny_model(naflex=request.param == "naflex", seed=3, locca=False)
    folder = tmp_path_factory.mktemp(request.param) / "export"
    model.export(folder, format=["tf_saved_model", "onnx"], verbose=False)  # one trace
    return model, folder


def naflex_cases(model):
    """Tower inputs of the test images at several sequence lengths."""
    if not model.backbone.naflex:
        return [(None, model.image_inputs(IMAGES))]
    return [(n, model.image_inputs(IMAGES, max_num_patches=n)) for n in (5, 16, 30)]


def test_saved_model_round_trip(exported):
    import tensorflow_text  # noqa: F401  (registers the SentencePiece op)

    model, folder = exported
    loaded = tf.saved_model.load(str(folder / "tf_saved_model"))
    for limit, inputs in naflex_cases(model):
        want = model.embed_images(IMAGES, max_num_patches=limit, verbose=0)
        got = loaded.image_encoder({k: tf.constant(v) for k, v in inputs.items()})
        np.testing.assert_allclose(got["image_embeddings"].numpy(), want, atol=TOLERANCE)
    # Preprocessing inside: uint8 pixels of one size per call, and strings.
    for image in IMAGES[:3]:
        got = loaded.embed_images(tf.constant(image[None]))["image_embeddings"].numpy()
        np.testing.assert_allclose(got, model.embed_images([image], verbose=0), atol=TOLERANCE)
    got = loaded.embed_texts(tf.constant(TEXTS))["text_embeddings"].numpy()
    np.testing.assert_allclose(got, model.embed_texts(TEXTS, verbose=0), atol=TOLERANCE)
    token_ids = model.text_inputs(TEXTS)
    got = loaded.text_encoder(tf.constant(token_ids))["text_embeddings"].numpy()
    np.testing.assert_allclose(got, model.embed_texts(TEXTS, verbose=0), atol=TOLERANCE)
    log_temperature, bias = model.logit_parameters()
    assert float(loaded.log_temperature.numpy()) == pytest.approx(log_temperature)
    assert float(loaded.bias.numpy()) == pytest.approx(bias)


def test_onnx_round_trip(exported):
    import onnxruntime

    model, folder = exported
    manifest = json.loads((folder / "onnx" / "siglip2_export.json").read_text())
    images = onnxruntime.InferenceSession(str(folder / "onnx" / manifest["image_encoder"]["file"]))
    assert {i.name for i in images.get_inputs()} == set(manifest["image_encoder"]["inputs"])
    for limit, inputs in naflex_cases(model):
        want = model.embed_images(IMAGES, max_num_patches=limit, verbose=0)
        embeddings, patch_features = images.run(
            ["image_embeddings", "patch_features"], dict(inputs)
        )
        np.testing.assert_allclose(embeddings, want, atol=TOLERANCE)
        tokens = model.backbone.vision_encoder.predict_on_batch(inputs)["patch_features"]
        np.testing.assert_allclose(patch_features, tokens, atol=TOLERANCE)
    texts = onnxruntime.InferenceSession(str(folder / "onnx" / "text_encoder.onnx"))
    (got,) = texts.run(["text_embeddings"], {"token_ids": documented_token_ids(folder, manifest)})
    np.testing.assert_allclose(got, model.embed_texts(TEXTS, verbose=0), atol=TOLERANCE)
    assert manifest["log_temperature"] == pytest.approx(model.logit_parameters()[0])
    kind = manifest["image_preprocessing"]["kind"]
    assert kind == ("naflex" if model.backbone.naflex else "fixed")


def documented_token_ids(folder, manifest):
    """Tokenise as `siglip2_export.json` says, with only `sentencepiece`."""
    import sentencepiece

    text = manifest["text_preprocessing"]
    assert text["canonicalize"] == "lower"
    processor = sentencepiece.SentencePieceProcessor(
        model_file=str(folder / "onnx" / text["vocabulary"])
    )
    length = text["sequence_length"]
    rows = []
    for ids in processor.encode([t.lower() for t in TEXTS]):
        ids = ids[: length - 1] + [text["eos_id"]]
        rows.append(ids + [text["pad_id"]] * (length - len(ids)))
    return np.array(rows, np.int32)


def test_export_refuses_bad_targets(tmp_path):
    model = tiny_model(naflex=False, seed=0, locca=False)
    with pytest.raises(ValueError, match="format"):
        model.export(tmp_path / "x", format="tflite")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not an empty folder"):
        model.export(tmp_path / "full")
