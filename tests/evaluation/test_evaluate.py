"""End-to-end evaluation runs (readers + metrics) against NumPy loop references,
with a fake model whose embeddings are looked up by image / text content."""

import json
import zlib

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_siglip2.evaluation import classification_data
from keras_siglip2.evaluation import evaluate_retrieval
from keras_siglip2.evaluation import evaluate_zero_shot
from keras_siglip2.evaluation import format_results
from keras_siglip2.evaluation import retrieval_data
from keras_siglip2.evaluation import top_k_neighbours
from keras_siglip2.evaluation.data import demo_split
from keras_siglip2.preprocessing.image_io import load_image
from tests.evaluation.conftest import sign_vectors
from tests.evaluation.conftest import unit
from tests.evaluation.test_retrieval import reference_recall

POOL = sign_vectors(np.random.default_rng(3), 6)  # few distinct vectors: many exact ties


def pool_vector(key):
    return POOL[zlib.crc32(key) % len(POOL)]


class FakeModel:
    """Embeds an image by its pixels and a text by its string, from a small pool
    of ±1/4 vectors, so equal scores (ties) are common and exact."""

    def __init__(self):
        self.image_calls = 0

    def embed_images(self, images, batch_size=32, verbose="auto"):
        self.image_calls += 1
        return np.stack([pool_vector(load_image(i).tobytes()) for i in images])

    def embed_texts(self, texts, verbose="auto"):
        return np.stack([pool_vector(t.encode()) for t in texts])


def write_image(path, seed):
    pixels = np.random.default_rng(seed).integers(0, 256, (6 + seed % 3, 5, 3), np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return pixels


def reference_top_k_accuracy(images, labels, classes, k):
    """Loop reference: rank classes by (−cosine, class index)."""
    hits = 0
    for image, label in zip(unit(images), labels):
        sims = [float(np.dot(image, c)) for c in unit(classes)]
        order = sorted(range(len(classes)), key=lambda c: (-sims[c], c))
        hits += label in order[:k]
    return hits / len(labels)


def test_zero_shot_on_a_folder_matches_reference(tmp_path):
    model = FakeModel()
    names = ["cat", "dog", "golden_retriever", "car"]
    pixels, labels = [], []
    for label, name in enumerate(names):
        for i in range(3 + label):
            pixels.append(write_image(tmp_path / name / f"{i}.png", 10 * label + i))
            labels.append(label)
    (tmp_path / "notes.txt").write_text("ignored")
    results = evaluate_zero_shot(model, tmp_path, templates="plain", top_k=(1, 2, 10))
    image_embeddings = np.stack([pool_vector(p.tobytes()) for p in pixels])
    classes = np.stack([pool_vector(n.replace("_", " ").encode()) for n in names])
    want = {f"top{k}": reference_top_k_accuracy(image_embeddings, labels, classes, k) for k in (1, 2, 10)}
    assert results["metrics"] == pytest.approx(want)
    assert want["top10"] == 1.0  # k above the number of classes
    assert results["num_images"] == 18 and results["num_classes"] == 4
    assert results["chance"] == pytest.approx({"top1": 0.25, "top2": 0.5, "top10": 1.0})
    table = format_results(results, title="t")
    assert "top1" in table and "chance" in table


def test_zero_shot_on_a_dataset_collects_labels_while_streaming():
    model = FakeModel()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (7, 4, 4, 3), np.uint8)
    labels = rng.integers(0, 3, 7)
    dataset = tf.data.Dataset.from_tensor_slices((images, labels))
    names = ["a", "b", "c"]
    results = evaluate_zero_shot(model, dataset, class_names=names, templates="plain", top_k=(1,))
    embedded = np.stack([pool_vector(i.tobytes()) for i in images])
    classes = np.stack([pool_vector(n.encode()) for n in names])
    assert results["metrics"]["top1"] == pytest.approx(
        reference_top_k_accuracy(embedded, labels, classes, 1)
    )
    assert model.image_calls == 1
    with pytest.raises(ValueError, match="class_names"):
        evaluate_zero_shot(model, dataset)


def test_retrieval_on_a_folder_with_several_captions_per_image(tmp_path):
    model = FakeModel()
    captions = [["a cat", "a small cat", ""], ["a dog"], ["a car", "red car", "a cat", "x"]]
    pixels = []
    for i, lines in enumerate(captions):
        pixels.append(write_image(tmp_path / f"{i}.png", i))
        (tmp_path / f"{i}.txt").write_text("\n".join(lines))
    write_image(tmp_path / "uncaptioned.png", 9)
    results = evaluate_retrieval(model, tmp_path, ks=(1, 2, 5, 100))
    texts = [t for lines in captions for t in lines if t]
    owner = [i for i, lines in enumerate(captions) for t in lines if t]
    want = reference_recall(
        np.stack([pool_vector(p.tobytes()) for p in pixels]),
        np.stack([pool_vector(t.encode()) for t in texts]),
        owner, (1, 2, 5, 100),
    )
    assert results["metrics"] == pytest.approx(want)
    assert results["num_images"] == 3 and results["num_texts"] == 7
    assert results["chance"]["text_to_image_R@1"] == pytest.approx(1 / 3)
    json.dumps(results)  # plain Python types


def test_retrieval_readers_merge_records_of_one_image(tmp_path):
    for i in range(2):
        write_image(tmp_path / "img" / f"{i}.png", i)
    lines = [
        {"image": "img/0.png", "caption": "first"},
        {"image": "img/1.png", "caption": ["second", "third"]},
        {"image": "img/0.png", "caption": "fourth"},
    ]
    (tmp_path / "data.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    images, captions, owner = retrieval_data(tmp_path / "data.jsonl")
    assert [p.split("/")[-1] for p in images] == ["0.png", "1.png"]
    assert captions == ["first", "fourth", "second", "third"] and owner == [0, 0, 1, 1]
    (tmp_path / "data.csv").write_text("image,caption\nimg/1.png,one\nimg/1.png,two\n")
    images, captions, owner = retrieval_data(tmp_path / "data.csv")
    assert len(images) == 1 and captions == ["one", "two"] and owner == [0, 0]

    dataset = tf.data.Dataset.from_generator(
        lambda: iter([
            {"image": np.zeros((4, 4, 3), np.uint8), "caption": np.array([b"x", b"y"])},
            {"image": np.ones((4, 4, 3), np.uint8), "caption": np.array([b"z"])},
        ]),
        output_signature={
            "image": tf.TensorSpec((None, None, 3), tf.uint8),
            "caption": tf.TensorSpec((None,), tf.string),
        },
    )
    images, captions, owner = retrieval_data(dataset)
    assert captions == [] and len(list(images)) == 2  # filled while streaming
    assert captions == ["x", "y", "z"] and owner == [0, 0, 1]


def test_top_k_neighbours_matches_reference_with_ties(rng):
    queries = POOL[rng.integers(0, 6, 9)]
    corpus = POOL[rng.integers(0, 6, 7)]
    for k in (1, 3, 7, 50):
        indices, scores = top_k_neighbours(queries, corpus, k, block_size=4)
        assert indices.shape == (9, min(k, 7))
        for q, row in enumerate(indices):
            sims = [float(np.dot(queries[q], c)) for c in corpus]
            want = sorted(range(7), key=lambda j: (-sims[j], j))[: min(k, 7)]
            assert row.tolist() == want
            np.testing.assert_allclose(scores[q], [sims[j] for j in want])


def test_demo_split_spelling():
    assert demo_split("demo") == (360, 0) and demo_split("demo:12") == (12, 0)
    assert demo_split("demo:12:3") == (12, 3) and demo_split("demos/x") is None
    with pytest.raises(ValueError, match="demo:N"):
        demo_split("demo:many")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: p / "missing", "not a folder"),
        (lambda p: p, "No images found"),
    ],
)
def test_classification_data_errors(tmp_path, make, match):
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(ValueError, match=match):
        classification_data(make(tmp_path))


def test_class_names_must_match_subfolders(tmp_path):
    write_image(tmp_path / "cat" / "0.png", 0)
    with pytest.raises(ValueError, match="do not match"):
        classification_data(tmp_path, class_names=["dog"])


def test_retrieval_data_errors(tmp_path):
    with pytest.raises(ValueError, match="No captioned images"):
        retrieval_data(tmp_path)
    with pytest.raises(ValueError, match="Cannot read"):
        retrieval_data(tmp_path / "data.parquet")
    (tmp_path / "bad.jsonl").write_text('{"image": "a.png"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:1: needs an 'image' \(a path\) and a 'caption'"):
        retrieval_data(tmp_path / "bad.jsonl")
