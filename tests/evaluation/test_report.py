import math

import numpy as np
import pytest

from keras_siglip2.evaluation import chance_levels
from keras_siglip2.evaluation import format_table
from keras_siglip2.evaluation import retrieval_recall
from keras_siglip2.evaluation.report import probability_none_in_top_k


def test_probability_none_in_top_k_matches_binomials():
    for n in range(1, 12):
        for m in range(1, n + 1):
            for k in range(1, n + 3):
                want = math.comb(n - m, min(k, n)) / math.comb(n, min(k, n))
                assert probability_none_in_top_k(n, m, k) == pytest.approx(want, abs=1e-15)


def test_zero_shot_chance():
    assert chance_levels(num_classes=1000) == pytest.approx({"top1": 0.001, "top5": 0.005})
    assert chance_levels(num_classes=3, top_k=(1, 5)) == pytest.approx({"top1": 1 / 3, "top5": 1.0})


def test_retrieval_chance_closed_form():
    got = chance_levels(num_images=5000, num_texts_per_image=5, ks=(1, 5, 10))
    assert got["text_to_image_R@1"] == pytest.approx(1 / 5000)
    assert got["text_to_image_R@10"] == pytest.approx(10 / 5000)
    # One draw: 5 correct among 25000.
    assert got["image_to_text_R@1"] == pytest.approx(5 / 25000)
    assert got["image_to_text_R@5"] == pytest.approx(1 - math.comb(24995, 5) / math.comb(25000, 5))


def test_retrieval_chance_matches_monte_carlo_permutations():
    rng = np.random.default_rng(1)
    counts = [1, 2, 3, 1, 2, 1]
    n_txt = sum(counts)
    ks = (1, 2, 5)
    chance = chance_levels(num_images=len(counts), num_texts_per_image=counts, ks=ks)
    trials = 20000
    hits = {k: 0 for k in ks}
    for _ in range(trials):
        image = rng.integers(len(counts))
        first_correct = rng.permutation(n_txt)[: counts[image]].min()  # position of best caption
        for k in ks:
            hits[k] += first_correct < k
    for k in ks:
        assert hits[k] / trials == pytest.approx(chance[f"image_to_text_R@{k}"], abs=0.015)


def test_random_embeddings_recall_averages_to_chance():
    # Isotropic random embeddings rank the corpus uniformly at random.
    rng = np.random.default_rng(2)
    counts = [1, 2, 3, 1, 2, 1]
    owner = np.repeat(np.arange(len(counts)), counts)
    ks = (1, 2, 5)
    chance = chance_levels(num_images=len(counts), num_texts_per_image=counts, ks=ks)
    trials = 1500
    total = {}
    for _ in range(trials):
        r = retrieval_recall(rng.normal(size=(6, 8)), rng.normal(size=(10, 8)), owner, ks=ks)
        for key, v in r.items():
            total[key] = total.get(key, 0.0) + v / trials
    for key, v in total.items():
        assert v == pytest.approx(chance[key], abs=0.02), key


def test_chance_bad_input():
    with pytest.raises(ValueError, match="num_texts_per_image"):
        chance_levels(num_images=10)
    with pytest.raises(ValueError, match="expected 3"):
        chance_levels(num_images=3, num_texts_per_image=[1, 2])
    with pytest.raises(ValueError, match="num_classes"):
        chance_levels(num_classes=0)
    with pytest.raises(ValueError, match="needs `num_images`"):
        chance_levels(num_texts_per_image=5)


def test_format_table_columns_and_alignment():
    results = {"top1": 0.782, "text_to_image_R@1": 0.521, "num_images": 5000}
    chance = chance_levels(num_classes=1000, num_images=5000, num_texts_per_image=5)
    table = format_table(results, chance, title="ImageNet / COCO")
    lines = table.splitlines()
    assert lines[0] == "ImageNet / COCO"
    assert lines[1].split() == ["metric", "value", "chance"]
    assert lines[3].split() == ["top1", "0.7820", "0.0010"]
    assert lines[4].split() == ["text_to_image_R@1", "0.5210", "0.0002"]
    assert lines[5].split() == ["num_images", "5000", "-"]
    # Right-aligned numeric columns end at the same position.
    assert len({len(line) for line in lines[1:]}) == 1


def test_format_table_without_chance_and_percent():
    table = format_table({"top1": 0.5}, percent=True)
    assert table.splitlines()[0].split() == ["metric", "value"]
    assert table.splitlines()[-1].split() == ["top1", "50.00%"]
    with pytest.raises(ValueError, match="empty"):
        format_table({})
