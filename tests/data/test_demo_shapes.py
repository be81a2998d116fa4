import re
import time
from collections import Counter

import numpy as np
import pytest

from keras_siglip2.data import demo_shapes
from keras_siglip2.data import demo_caption_corpus
from keras_siglip2.data import demo_class_names
from keras_siglip2.data import demo_dataset
from keras_siglip2.data import make_demo_examples


@pytest.fixture(scope="module")
def examples():
    return make_demo_examples(300, seed=0)


def _same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if isinstance(a[key], np.ndarray):
            np.testing.assert_array_equal(a[key], b[key])
        else:
            assert a[key] == b[key], key


def test_deterministic_per_seed_and_index():
    first = make_demo_examples(6, seed=7)
    again = make_demo_examples(6, seed=7)
    for a, b in zip(first, again):
        _same(a, b)
    # Example i does not depend on how many are made.
    for a, b in zip(make_demo_examples(3, seed=7), first):
        _same(a, b)


def test_seeds_and_splits_differ():
    def fingerprint(examples):
        return [(e["image"].shape, e["caption"], e["image"].tobytes()[:64]) for e in examples]

    base = fingerprint(make_demo_examples(5, seed=0))
    assert fingerprint(make_demo_examples(5, seed=1)) != base
    assert fingerprint(make_demo_examples(5, seed=0, split="test")) != base
    with pytest.raises(ValueError):
        make_demo_examples(1, split="dev")


def test_fields(examples):
    for e in examples:
        height, width, channels = e["image"].shape
        assert e["image"].dtype == np.uint8 and channels == 3
        assert 48 <= height <= 160 and 48 <= width <= 160
        assert e["mask"].shape == (height, width) and e["mask"].dtype == np.uint8
        num_regions = len(e["region_texts"])
        assert e["boxes"].shape == (num_regions, 4) and e["boxes"].dtype == np.float32
        assert e["region_labels"].shape == (num_regions,) and 1 <= num_regions <= 3
        assert e["label"] == e["region_labels"][0]
        assert len(set(e["region_labels"].tolist())) == num_regions  # no repeated class
        assert np.all((e["boxes"] >= 0) & (e["boxes"] <= 1))
        assert np.all(e["boxes"][:, 2] > e["boxes"][:, 0]) and np.all(e["boxes"][:, 3] > e["boxes"][:, 1])
        assert e["caption"] == e["caption"].lower()


def test_masks_match_boxes_exactly(examples):
    for e in examples:
        height, width = e["mask"].shape
        values = set(np.unique(e["mask"]).tolist())
        assert values == {0} | {int(c) + 1 for c in e["region_labels"]}
        areas = []
        for box, cls in zip(e["boxes"], e["region_labels"]):
            rows, cols = np.nonzero(e["mask"] == cls + 1)
            tight = [rows.min() / height, cols.min() / width,
                     (rows.max() + 1) / height, (cols.max() + 1) / width]
            np.testing.assert_allclose(box, tight, atol=1e-6)
            areas.append(len(rows))
        # The main object is the largest, by a clear margin.
        assert all(areas[0] > 1.4 * area for area in areas[1:]), areas


def test_pixels_have_the_named_colour(examples):
    palette = np.array([demo_shapes._COLOUR_RGB[c] for c in demo_shapes.COLOURS], np.float32)
    for e in examples[:100]:
        for cls in e["region_labels"]:
            pixels = e["image"][e["mask"] == cls + 1].astype(np.float32)
            nearest = np.argmin(((pixels.mean(0) - palette) ** 2).sum(-1))
            assert nearest == cls // len(demo_shapes.SHAPES)


def test_variety(examples):
    heights = np.array([e["image"].shape[0] for e in examples])
    widths = np.array([e["image"].shape[1] for e in examples])
    assert heights.min() < 60 and widths.min() < 60 and heights.max() > 150 and widths.max() > 150
    ratios = heights / widths
    assert ratios.max() > 2.0 and ratios.min() < 0.5
    assert Counter(len(e["region_texts"]) for e in examples).keys() == {1, 2, 3}
    labels = Counter(e["label"] for e in examples)
    num_classes = demo_shapes.NUM_CLASSES
    assert len(labels) == num_classes and max(labels.values()) < 4 * 300 / num_classes
    # Backgrounds: in plain images (about 1 in 4) most background pixels share one
    # colour (the rest are anti-aliased shape edges); in the others they do not.
    def plain(e):
        pixels = e["image"][e["mask"] == 0].astype(np.int64)
        packed = (pixels[:, 0] << 16) | (pixels[:, 1] << 8) | pixels[:, 2]
        return np.unique(packed, return_counts=True)[1].max() > 0.8 * len(packed)

    assert 0.1 < np.mean([plain(e) for e in examples]) < 0.45


def test_languages_and_region_texts(examples):
    languages = Counter(e["language"] for e in examples)
    assert set(languages) == set(demo_shapes.LANGUAGES)
    assert 0.45 < languages["en"] / len(examples) < 0.75
    assert any(re.search("[а-я]", e["caption"]) for e in examples)
    assert any(re.search("[\u3040-\u30ff\u4e00-\u9fff]", e["caption"]) for e in examples)
    for e in examples:
        names = demo_class_names(e["language"])
        assert e["region_texts"] == [names[c] for c in e["region_labels"]]
        if e["language"] == "de":  # dative forms change the adjective; the noun stays
            assert e["region_texts"][0].split()[-1] in e["caption"]
        else:
            assert e["region_texts"][0] in e["caption"]
    no_english = make_demo_examples(40, seed=0, english_fraction=0.0)
    assert all(e["language"] != "en" for e in no_english)


def test_class_names():
    english = demo_class_names()
    assert len(english) == 36 and len(set(english)) == 36
    assert english[0] == "red circle"
    assert english[demo_shapes.class_id("blue", "star")] == "blue star"
    assert demo_class_names("de")[demo_shapes.class_id("green", "square")] == "grünes quadrat"
    assert demo_class_names("fr")[demo_shapes.class_id("blue", "star")] == "étoile bleue"
    assert demo_class_names("ru")[demo_shapes.class_id("yellow", "ring")] == "жёлтое кольцо"
    assert demo_class_names("ja")[demo_shapes.class_id("red", "circle")] == "赤い円"
    for language in demo_shapes.LANGUAGES:
        assert len(set(demo_class_names(language))) == 36


def test_corpus_covers_every_caption_word(examples):
    corpus = demo_caption_corpus()
    assert corpus == demo_caption_corpus() and len(corpus) == len(set(corpus))
    words = {w for text in corpus for w in text.split()}
    characters = set("".join(corpus))
    more = make_demo_examples(200, seed=5, english_fraction=0.0)
    for e in examples + more:
        for text in [e["caption"]] + e["region_texts"]:
            if e["language"] != "ja":  # Japanese has no spaces: characters only
                assert set(text.split()) <= words, text
            assert set(text) <= characters
    # The corpus uses every template, language and caption length.
    assert any(text.startswith("ein bild mit einem") and " und " in text for text in corpus)


def test_fast_enough():
    start = time.perf_counter()
    make_demo_examples(300, seed=3)
    # ~1 ms per image on one core; 4,000 images take seconds.
    assert time.perf_counter() - start < 15.0


def test_tf_dataset_matches_examples():
    tf = pytest.importorskip("tensorflow")
    dataset = demo_dataset(4, seed=2, split="test")
    assert dataset.cardinality().numpy() == 4
    assert dataset.element_spec["image"].shape.as_list() == [None, None, 3]
    for got, expected in zip(dataset.as_numpy_iterator(), make_demo_examples(4, seed=2, split="test")):
        np.testing.assert_array_equal(got["image"], expected["image"])
        np.testing.assert_array_equal(got["mask"], expected["mask"])
        np.testing.assert_array_equal(got["boxes"], expected["boxes"])
        assert got["label"] == expected["label"]
        assert got["caption"].decode() == expected["caption"]
        assert [t.decode() for t in got["region_texts"]] == expected["region_texts"]
    assert isinstance(dataset, tf.data.Dataset)
