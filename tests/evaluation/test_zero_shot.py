import zlib

import keras
import numpy as np
import pytest

from keras_siglip2.evaluation import IMAGENET_TEMPLATES
from keras_siglip2.evaluation import class_prompts
from keras_siglip2.evaluation import class_text_embeddings
from keras_siglip2.evaluation import zero_shot_accuracy
from keras_siglip2.evaluation import zero_shot_predictions
from keras_siglip2.evaluation import zero_shot_probabilities
from keras_siglip2.preprocessing.text import canonicalize_text
from tests.evaluation.conftest import sign_vectors
from tests.evaluation.conftest import unit

DIM = 6


def fake_vector(text):
    """Deterministic, un-normalised pseudo-embedding of a string."""
    rng = np.random.default_rng(zlib.crc32(text.encode("utf-8")))
    return rng.normal(size=DIM) * rng.uniform(0.5, 3.0)


class FakeEncoder:
    def __init__(self, as_tensor=False):
        self.calls = []
        self.as_tensor = as_tensor

    def __call__(self, texts):
        self.calls.append(list(texts))
        out = np.stack([fake_vector(t) for t in texts]).astype(np.float32)
        return keras.ops.convert_to_tensor(out) if self.as_tensor else out


def manual_class_embeddings(class_names, templates):
    rows = []
    for name in class_names:
        vecs = []
        for t in templates:
            prompt = canonicalize_text(t.replace("{}", name), mode="eval")
            v = fake_vector(prompt).astype(np.float32).astype(np.float64)
            vecs.append(v / np.linalg.norm(v))
        mean = np.mean(vecs, axis=0)
        rows.append(mean / np.linalg.norm(mean))
    return np.stack(rows)


CLASSES = ["Golden_Retriever", "tabby cat", "T-shirt", "ice cream (food)", "Dog"]


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_template_averaging_matches_manual_computation(batch_size):
    encoder = FakeEncoder()
    got = class_text_embeddings(CLASSES, encoder, batch_size=batch_size, verbose=False)
    want = manual_class_embeddings(CLASSES, [*IMAGENET_TEMPLATES, "{}"])
    assert got.shape == (5, DIM)
    np.testing.assert_allclose(got, want, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-6)
    # Every prompt embedded exactly once, in batches no larger than batch_size.
    flat = [t for call in encoder.calls for t in call]
    assert len(flat) == 5 * 81
    assert all(len(call) <= batch_size for call in encoder.calls)
    assert "a photo of a golden retriever" in flat  # canonicalised: "_", "." and case gone
    assert "tshirt" in flat and "ice cream food" in flat


def test_average_is_of_normalised_prompt_embeddings():
    # Two templates whose raw embeddings differ wildly in length: a plain mean of raw
    # vectors would be dominated by the long one; the normalised mean is not.
    lengths = {"short a": 1.0, "long a": 1000.0}
    directions = {"short a": np.array([1.0, 0.0]), "long a": np.array([0.0, 1.0])}

    def embed(texts):
        return np.stack([directions[t] * lengths[t] for t in texts])

    got = class_text_embeddings(["a"], embed, templates=["short {}", "long {}"], verbose=False)
    np.testing.assert_allclose(got, [[np.sqrt(0.5), np.sqrt(0.5)]], atol=1e-6)


def test_backend_tensor_output_and_no_canonicalisation_option():
    encoder = FakeEncoder(as_tensor=True)
    got = class_text_embeddings(["Cat"], encoder, templates=["A {}!"], canonicalize=False,
                                verbose=False)
    assert encoder.calls == [["A Cat!"]]
    np.testing.assert_allclose(got[0], unit(fake_vector("A Cat!").astype(np.float32)), atol=1e-6)


def test_progress_bar_does_not_change_result(capsys):
    quiet = class_text_embeddings(CLASSES, FakeEncoder(), batch_size=50, verbose=False)
    loud = class_text_embeddings(CLASSES, FakeEncoder(), batch_size=50, verbose=True)
    np.testing.assert_array_equal(quiet, loud)


def test_class_prompts_structure():
    prompts = class_prompts(["A_b"], templates=["x {}.", "{}"])
    assert prompts == [["x a b", "a b"]]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(class_names=[]), "empty"),
        (dict(class_names="cat"), "single string"),
        (dict(class_names=["cat", 3]), "strings"),
        (dict(class_names=["cat"], templates=["a photo"]), "no '{}'"),
        (dict(class_names=["cat"], templates=[]), "empty"),
        (dict(class_names=["cat"], batch_size=0), "batch_size"),
    ],
)
def test_class_text_embeddings_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        class_text_embeddings(embed_texts=FakeEncoder(), verbose=False, **kwargs)


def test_bad_encoder_output():
    with pytest.raises(ValueError, match="returned shape"):
        class_text_embeddings(["cat", "dog"], lambda t: np.zeros((1, 3)), templates=["{}"])
    with pytest.raises(ValueError, match="zero-length"):
        class_text_embeddings(["cat"], lambda t: np.zeros((len(t), 3)), templates=["{}"])
    with pytest.raises(ValueError, match="callable"):
        class_text_embeddings(["cat"], None)


# ---------------------------------------------------------------- predictions, accuracy


def reference_topk(images, labels, classes, k):
    """Loop reference: sort classes by (similarity desc, index asc)."""
    hits = 0
    for x, y in zip(images, labels):
        sims = [float(np.dot(unit(x), unit(c))) for c in classes]
        order = sorted(range(len(classes)), key=lambda c: (-sims[c], c))
        hits += y in order[:k]
    return hits / len(labels)


def reference_predictions(images, classes):
    out = []
    for x in images:
        best, best_sim = 0, -np.inf
        for c, v in enumerate(classes):
            s = float(np.dot(unit(x), unit(v)))
            if s > best_sim:  # strict: the first (lowest) index wins ties
                best, best_sim = c, s
        out.append(best)
    return np.array(out)


@pytest.mark.parametrize("block_size", [1, 4, 1024])
def test_accuracy_and_predictions_match_reference_random(rng, block_size):
    images = rng.normal(size=(37, 8))
    classes = rng.normal(size=(11, 8)) * rng.uniform(0.1, 5, size=(11, 1))  # norms vary
    labels = rng.integers(0, 11, size=37)
    got = zero_shot_accuracy(images, labels, classes, top_k=(1, 3, 5, 50), block_size=block_size)
    assert list(got) == ["top1", "top3", "top5", "top50"]
    for k in (1, 3, 5, 50):
        assert got[f"top{k}"] == pytest.approx(reference_topk(images, labels, classes, k))
    assert got["top50"] == 1.0  # k above C is clipped
    preds = zero_shot_predictions(images, classes, block_size=block_size)
    np.testing.assert_array_equal(preds, reference_predictions(images, classes))
    assert got["top1"] == pytest.approx(np.mean(preds == labels))


def test_ties_go_to_lowest_class_index(rng):
    base = sign_vectors(rng, 4)
    classes = base[[0, 1, 1, 2, 2, 2, 3]]  # duplicated class embeddings: exact ties
    images = base[rng.integers(0, 4, size=40)]
    labels = rng.integers(0, 7, size=40)
    preds = zero_shot_predictions(images, classes)
    np.testing.assert_array_equal(preds, reference_predictions(images, classes))
    got = zero_shot_accuracy(images, labels, classes, top_k=(1, 2, 3))
    for k in (1, 2, 3):
        assert got[f"top{k}"] == pytest.approx(reference_topk(images, labels, classes, k))
    # An image equal to base[2] is predicted as class 3, the first of its copies 3, 4, 5.
    assert zero_shot_predictions(base[2:3], classes)[0] == 3
    acc = zero_shot_accuracy(base[[2, 2, 2]], [3, 4, 5], classes, top_k=(1, 2, 3))
    assert acc == pytest.approx({"top1": 1 / 3, "top2": 2 / 3, "top3": 1.0})


def test_single_class(rng):
    images = rng.normal(size=(5, 4))
    got = zero_shot_accuracy(images, np.zeros(5, int), rng.normal(size=(1, 4)))
    assert got == {"top1": 1.0, "top5": 1.0}
    np.testing.assert_array_equal(zero_shot_predictions(images, rng.normal(size=(1, 4))), 0)


def test_hand_made_case():
    classes = np.eye(3)
    images = np.array([[0.9, 0.1, 0.0], [0.0, 0.2, 0.8], [0.5, 0.4, 0.3]])
    np.testing.assert_array_equal(zero_shot_predictions(images, classes), [0, 2, 0])
    acc = zero_shot_accuracy(images, [0, 1, 2], classes, top_k=(1, 2))
    assert acc == pytest.approx({"top1": 1 / 3, "top2": 2 / 3})


@pytest.mark.parametrize(
    "labels, classes, match",
    [
        ([0, 1, 3], np.eye(3), "outside"),
        ([0, -1, 2], np.eye(3), "outside"),
        ([0, 1], np.eye(3), "entries"),
        ([0.0, 1.0, 2.0], np.eye(3), "integers"),
        ([0, 1, 2], np.eye(4), "embedding sizes"),
        ([0, 1, 2], np.zeros((0, 3)), "empty"),
    ],
)
def test_accuracy_bad_input(labels, classes, match):
    with pytest.raises(ValueError, match=match):
        zero_shot_accuracy(np.eye(3), np.array(labels), classes)


def test_nan_and_zero_embeddings_rejected():
    with pytest.raises(ValueError, match="NaN"):
        zero_shot_predictions(np.full((2, 3), np.nan), np.eye(3))
    with pytest.raises(ValueError, match="zero-length"):
        zero_shot_predictions(np.zeros((2, 3)), np.eye(3))


def test_probabilities_match_manual_sigmoid(rng):
    images = rng.normal(size=(4, 5))
    classes = rng.normal(size=(3, 5))
    t, b = np.log(10.0), -2.5
    got = zero_shot_probabilities(images, classes, np.array([t]), b)
    want = np.empty((4, 3))
    for i in range(4):
        for c in range(3):
            z = np.dot(unit(images[i]), unit(classes[c])) * 10.0 + b
            want[i, c] = 1.0 / (1.0 + np.exp(-z))
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_probabilities_stable_for_extreme_logits(rng):
    images = np.eye(2)
    classes = np.array([[1.0, 0.0], [-1.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is fine
        p = zero_shot_probabilities(images, classes, np.log(1e4), 0.0)
    assert p[0, 0] == 1.0 and 0.0 <= p[0, 1] < 1e-300
    assert np.all(np.isfinite(p))
    with pytest.raises(ValueError, match="scalar"):
        zero_shot_probabilities(images, classes, np.zeros(2), 0.0)
