"""`SigLIP2` inference methods: input forms, batching, similarity, zero-shot,
retrieval and dense patch features, against direct calls of the towers."""

import contextlib
import io

import numpy as np
import pytest
import tensorflow as tf
from keras import ops
from PIL import Image

from keras_siglip2.data import make_demo_examples
from keras_siglip2.visualize import plot_zero_shot

IMAGES = [e["image"] for e in make_demo_examples(5, split="test")]  # sizes differ
TEXTS = ["a red circle", "ein blauer stern", "un carré vert", "two shapes", "赤い円"]


def tower_embeddings(model, images=None, texts=None):
    """Reference: one direct backbone call on all inputs, normalised in NumPy."""
    if images is not None:
        pooled = model.backbone.vision_encoder(model.image_inputs(images))["pooled"]
    else:
        pooled = model.backbone.text_encoder({"token_ids": model.text_inputs(texts)})["pooled"]
    pooled = ops.convert_to_numpy(pooled).astype(np.float64)
    return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


@pytest.mark.backends
@pytest.mark.parametrize("naflex", [False, True])
def test_embeddings_match_the_towers_for_any_batching(naflex, tiny_fixed, tiny_naflex):
    model = tiny_naflex if naflex else tiny_fixed
    want = tower_embeddings(model, images=IMAGES)
    for batch_size in (1, 2, 32):
        got = model.embed_images(IMAGES, batch_size=batch_size, verbose=0)
        assert got.shape == (5, 32) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, atol=1e-5)
    texts = model.embed_texts(TEXTS, batch_size=2, verbose=0)
    np.testing.assert_allclose(texts, tower_embeddings(model, texts=TEXTS), atol=1e-5)


def test_image_input_forms_agree(tiny_naflex, tmp_path):
    model = tiny_naflex
    want = model.embed_images(IMAGES, verbose=0)
    paths = []
    for i, image in enumerate(IMAGES):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.fromarray(image).save(paths[-1])
    encoded = [open(p, "rb").read() for p in paths]
    forms = {
        "paths": paths,
        "pil": [Image.open(io.BytesIO(b)) for b in encoded],
        "bytes": encoded,
        "generator": (image for image in IMAGES),
        "dataset of dicts": tf.data.Dataset.from_generator(
            lambda: ({"image": image, "label": 0} for image in IMAGES),
            output_signature={
                "image": tf.TensorSpec((None, None, 3), tf.uint8),
                "label": tf.TensorSpec((), tf.int32),
            },
        ),
        "dataset of paths": tf.data.Dataset.from_tensor_slices(paths),
        "batched dataset": tf.data.Dataset.from_tensor_slices(paths).batch(2),
    }
    for name, images in forms.items():
        np.testing.assert_allclose(
            model.embed_images(images, batch_size=2, verbose=0), want, atol=1e-6, err_msg=name
        )
    # One image alone, and a (B, H, W, 3) array of equal-size images.
    np.testing.assert_allclose(model.embed_images(IMAGES[0], verbose=0), want[:1], atol=1e-6)
    same_size = np.stack([IMAGES[0]] * 3)
    np.testing.assert_allclose(
        model.embed_images(same_size, batch_size=2, verbose=0), np.repeat(want[:1], 3, 0), atol=1e-6
    )
    captions = tf.data.Dataset.from_tensor_slices({"caption": TEXTS}).batch(2)
    np.testing.assert_allclose(
        model.embed_texts(captions, verbose=0), model.embed_texts(TEXTS, verbose=0), atol=1e-6
    )


def test_progress_bar_for_long_inputs(tiny_fixed, capsys):
    tiny_fixed.embed_texts(["a red circle"] * 9, batch_size=1, verbose="auto")
    assert "9" in capsys.readouterr().out  # "auto": shown once past 8 batches
    tiny_fixed.embed_texts(["a red circle"] * 8, batch_size=1, verbose="auto")
    assert capsys.readouterr().out == ""


@pytest.mark.backends
def test_similarity_kinds_match_the_backbone_logits(tiny_fixed):
    model = tiny_fixed
    inputs = {**model.image_inputs(IMAGES[:3]), "token_ids": model.text_inputs(TEXTS)}
    logits = ops.convert_to_numpy(model.backbone(inputs)["logits"])
    np.testing.assert_allclose(model.similarity(IMAGES[:3], TEXTS, kind="logit"), logits, atol=1e-4)
    np.testing.assert_allclose(
        model.similarity(IMAGES[:3], TEXTS, kind="probability"), 1 / (1 + np.exp(-logits)), atol=1e-5
    )
    cosine = model.similarity(IMAGES[:3], TEXTS)
    t, b = model.logit_parameters()
    np.testing.assert_allclose(cosine * np.exp(t) + b, logits, atol=1e-4)
    with pytest.raises(ValueError, match="kind"):
        model.similarity(IMAGES[:1], TEXTS, kind="softmax")


def test_zero_shot_probabilities_argmax_and_templates(tiny_naflex):
    model = tiny_naflex
    labels = ["red circle", "blue square", "green star"]
    probabilities, best = model.zero_shot(IMAGES, labels, return_argmax=True)
    assert probabilities.shape == (5, 3) and best.shape == (5,)
    np.testing.assert_array_equal(best, probabilities.argmax(1))
    np.testing.assert_allclose(
        probabilities, model.similarity(IMAGES, labels, kind="probability"), atol=1e-5
    )
    ensembled = model.zero_shot(IMAGES[:2], labels, templates="imagenet")
    assert ensembled.shape == (2, 3) and not np.allclose(ensembled, probabilities[:2])
    with pytest.raises(ValueError, match="no labels"):
        model.zero_shot(IMAGES, [])
    with pytest.raises(ValueError, match="template set"):
        model.zero_shot(IMAGES, labels, templates="imagenet80")


def test_retrieve_in_every_direction(tiny_fixed):
    model = tiny_fixed
    cosine = model.similarity(IMAGES, TEXTS)
    indices, scores = model.retrieve(TEXTS, IMAGES, k=3)  # text → image
    assert indices.shape == scores.shape == (5, 3)
    np.testing.assert_array_equal(indices, np.argsort(-cosine.T, axis=1, kind="stable")[:, :3])
    np.testing.assert_allclose(scores, np.take_along_axis(cosine.T, indices, 1), atol=1e-5)
    indices, _ = model.retrieve(IMAGES[:2], TEXTS, k=100)  # image → text, k clipped
    assert indices.shape == (2, 5)
    np.testing.assert_array_equal(indices, np.argsort(-cosine[:2], axis=1, kind="stable"))
    indices, scores = model.retrieve(IMAGES, IMAGES, k=1)  # image → image: itself
    np.testing.assert_array_equal(indices[:, 0], np.arange(5))
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


@pytest.mark.backends
def test_patch_features_are_unpadded_grids(tiny_naflex):
    model = tiny_naflex
    inputs = model.image_inputs(IMAGES)
    tokens = ops.convert_to_numpy(model.backbone.vision_encoder(inputs)["patch_features"])
    features = model.patch_features(IMAGES, batch_size=2)
    grids = [tuple(s) for s in inputs["spatial_shapes"]]
    assert len(set(grids)) > 1  # the demo images have different aspect ratios
    for i, (grid, feature) in enumerate(zip(grids, features)):
        assert feature.shape == (*grid, 32)
        count = grid[0] * grid[1]
        np.testing.assert_allclose(feature.reshape(count, 32), tokens[i, :count], atol=1e-5)


def test_joint_patch_features_pool_each_patch_alone(tiny_fixed):
    model = tiny_fixed
    vision = model.backbone.vision_encoder
    inputs = model.image_inputs(IMAGES[:1])
    tokens = vision(inputs)["patch_features"]  # (1, 16, 32)
    (joint,) = model.patch_features(IMAGES[:1], space="joint")
    assert joint.shape == (4, 4, 32)
    for patch in (0, 5, 15):  # the MAP head with every other key masked out
        mask = np.zeros((1, 16), bool)
        mask[0, patch] = True
        pooled = ops.convert_to_numpy(vision.pooling(tokens, key_mask=mask))[0]
        np.testing.assert_allclose(
            joint.reshape(16, 32)[patch], pooled / np.linalg.norm(pooled), atol=1e-5
        )


def test_bad_input_is_a_clear_error(tiny_fixed, tmp_path):
    model = tiny_fixed
    with pytest.raises(ValueError, match="empty"):
        model.embed_images([])
    with pytest.raises(ValueError, match="no texts|empty"):
        model.embed_texts([])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model.embed_images([str(tmp_path / "missing.png")])
    (tmp_path / "broken.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="Could not read"):
        model.embed_images([str(tmp_path / "broken.png")])
    with pytest.raises(TypeError, match="must hold strings"):
        model.embed_texts(["a", 3])
    with pytest.raises(ValueError, match="'image' key"):
        model.embed_images(tf.data.Dataset.from_tensor_slices({"pixels": np.zeros((2, 4, 4, 3))}))
    with pytest.raises(ValueError, match="batch_size"):
        model.embed_texts(["a"], batch_size=0)
    with pytest.raises(ValueError, match="space"):
        model.patch_features(IMAGES[:1], space="pixels")
    with pytest.raises(ValueError, match=r"expected \(3, 2\) for 3 images and 2 labels"):
        plot_zero_shot(IMAGES[:3], ["a", "b"], np.zeros((2, 2)), tmp_path / "x.png")


def test_locate_decodings_agree_when_the_decoder_is_certain():
    """`mean` decoding is the distribution's mean bin; with near one-hot
    coordinate scores it equals `greedy`; both give valid boxes."""
    from tests.training.helpers import tiny_model

    model = tiny_model(naflex=True, seed=3)
    images = [e["image"] for e in make_demo_examples(3, split="test")]
    texts = ["red circle", "blue square", "green star"]
    greedy = model.locate(images, texts, decoding="greedy")
    mean = model.locate(images, texts, decoding="mean")
    for boxes in (greedy, mean):
        assert boxes.shape == (3, 4) and (boxes >= 0).all() and (boxes <= 1).all()
    bins = model.num_coordinate_bins
    np.testing.assert_allclose(greedy * bins % 1, 0.5, atol=1e-5)  # bin centres
    # Sharpen the coordinate scores: the output bias dominates, bin 7 wins.
    bias = ops.convert_to_numpy(model.decoder.output_bias).copy()
    bias[model.decoder.text_vocabulary_size + 7] = 1e4
    model.decoder.output_bias.assign(bias)
    np.testing.assert_allclose(model.locate(images, texts, decoding="mean"), 7.5 / bins, atol=1e-6)
    np.testing.assert_allclose(model.locate(images, texts, decoding="greedy"), 7.5 / bins)
    with pytest.raises(ValueError, match="decoding"):
        model.locate(images, texts, decoding="beam")


@pytest.mark.backends
def test_without_autograd_only_for_built_models_on_torch():
    import keras

    from keras_siglip2.models.inference import without_autograd

    built = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    not_built = keras.Sequential([keras.layers.Dense(2)])
    if keras.backend.backend() != "torch":
        assert isinstance(without_autograd(built), contextlib.nullcontext)
        return
    import torch

    with without_autograd(built):
        assert torch.is_inference_mode_enabled()
    with without_autograd(not_built):  # its weights would become inference tensors
        assert not torch.is_inference_mode_enabled()


@pytest.mark.backends
def test_a_model_trains_after_inference(monkeypatch):
    """`locate` and joint patch features run without autograd on PyTorch
    (`torch.inference_mode`); the weights stay ordinary tensors that a later
    training step updates."""
    import keras

    from keras_siglip2.data import demo_dataset
    from keras_siglip2.data.pipeline import training_batches
    from tests.training.helpers import first_batch, tiny_model

    model = tiny_model(naflex=True, seed=4)
    on_torch = keras.backend.backend() == "torch"
    modes, logits = [], model.decoder.logits
    if on_torch:
        import torch

        monkeypatch.setattr(model.decoder, "logits", lambda hidden: modes.append(
            torch.is_inference_mode_enabled()) or logits(hidden))
    model.embed_images(IMAGES[:2])
    model.embed_texts(TEXTS[:2])
    model.patch_features(IMAGES[:2], space="joint")
    model.locate(IMAGES[:2], TEXTS[:2])
    if on_torch:
        assert modes == [True] * 4  # one decoder step per box coordinate
        assert not any(v.value.is_inference() for v in model.variables)
    batch = first_batch(training_batches(demo_dataset(8, seed=0), model, 4, seed=0))
    model.compile()
    kernel = model.backbone.vision_encoder.encoder_blocks[0].attention.query.kernel
    before = np.array(ops.convert_to_numpy(kernel))
    logs = model.train_on_batch(batch, return_dict=True)
    assert np.isfinite(logs["loss"])
    assert not np.array_equal(before, ops.convert_to_numpy(kernel))
    assert model.embed_texts(TEXTS[:2]).shape[0] == 2
