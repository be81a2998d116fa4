import numpy as np
import pytest

from keras_siglip2.evaluation import retrieval_recall
from tests.evaluation.conftest import sign_vectors
from tests.evaluation.conftest import unit


def reference_recall(images, texts, owner, ks):
    """Loop reference: sort the corpus by (similarity desc, correct last) — the
    pessimistic tie order — and look for a correct item among the first k."""
    images, texts = unit(images), unit(texts)
    out = {}
    for k in ks:
        hits = 0
        for i in range(len(images)):
            sims = [float(np.dot(images[i], t)) for t in texts]
            order = sorted(range(len(texts)), key=lambda j: (-sims[j], owner[j] == i))
            hits += any(owner[j] == i for j in order[:k])
        out[f"image_to_text_R@{k}"] = hits / len(images)
    for k in ks:
        hits = 0
        for j in range(len(texts)):
            sims = [float(np.dot(texts[j], v)) for v in images]
            order = sorted(range(len(images)), key=lambda i: (-sims[i], i == owner[j]))
            hits += owner[j] in order[:k]
        out[f"text_to_image_R@{k}"] = hits / len(texts)
    return out


def variable_owner(rng, num_images, max_captions):
    counts = rng.integers(1, max_captions + 1, size=num_images)
    owner = np.repeat(np.arange(num_images), counts)
    return rng.permutation(owner)  # captions need not be grouped by image


@pytest.mark.parametrize("block_size", [1, 5, 1024])
def test_matches_reference_random_embeddings(rng, block_size):
    owner = variable_owner(rng, 13, 4)
    images = rng.normal(size=(13, 8))
    texts = images[owner] + rng.normal(scale=1.5, size=(len(owner), 8))  # noisy captions
    ks = (1, 2, 5, 10, 1000)
    got = retrieval_recall(images, texts, owner, ks=ks, block_size=block_size)
    want = reference_recall(images, texts, owner, ks)
    assert got == pytest.approx(want)
    assert 0 < got["text_to_image_R@1"] < 1 and 0 < got["image_to_text_R@1"] < 1
    assert got["image_to_text_R@1000"] == 1.0 and got["text_to_image_R@1000"] == 1.0


def test_matches_reference_with_exact_ties(rng):
    # ±1/4 vectors in dim 16 from a pool of 5: many exact duplicates and tied scores.
    pool = sign_vectors(rng, 5)
    images = pool[rng.integers(0, 5, size=9)]
    owner = variable_owner(rng, 9, 3)
    texts = pool[rng.integers(0, 5, size=len(owner))]
    ks = (1, 3, 5, 10)
    for block_size in (2, 1024):
        got = retrieval_recall(images, texts, owner, ks=ks, block_size=block_size)
        assert got == pytest.approx(reference_recall(images, texts, owner, ks))


def test_all_equal_embeddings_score_pessimistically():
    # Everything tied: a correct item ranks behind every wrong one.
    images = np.ones((3, 4))
    texts = np.ones((3, 4))
    got = retrieval_recall(images, texts, [0, 1, 2], ks=(1, 2, 3, 10))
    assert got == {
        "image_to_text_R@1": 0.0, "image_to_text_R@2": 0.0,
        "image_to_text_R@3": 1.0, "image_to_text_R@10": 1.0,
        "text_to_image_R@1": 0.0, "text_to_image_R@2": 0.0,
        "text_to_image_R@3": 1.0, "text_to_image_R@10": 1.0,
    }


def test_other_correct_captions_do_not_push_down():
    # Image 0 has two captions identical to it; they tie with each other, not with
    # a wrong text, so image 0 is still a hit at 1.
    images = np.array([[1.0, 0.0], [0.0, 1.0]])
    texts = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    got = retrieval_recall(images, texts, [0, 0, 1], ks=(1,))
    assert got == {"image_to_text_R@1": 1.0, "text_to_image_R@1": 1.0}


def test_perfect_embeddings_recall_one(rng):
    owner = variable_owner(rng, 20, 5)
    images = rng.normal(size=(20, 16))
    texts = images[owner] * rng.uniform(0.5, 2.0, size=(len(owner), 1))  # scale is ignored
    got = retrieval_recall(images, texts, owner)
    assert all(v == 1.0 for v in got.values()), got
    assert list(got) == [
        "image_to_text_R@1", "image_to_text_R@5", "image_to_text_R@10",
        "text_to_image_R@1", "text_to_image_R@5", "text_to_image_R@10",
    ]


def test_hand_made_three_by_three():
    images = np.eye(3)
    texts = np.array([[0.6, 0.8, 0.0], [0.0, 0.6, 0.8], [0.0, 0.0, 1.0]])
    # Text 0's image (0) is second behind image 1; text 1's image (1) second behind 2.
    # Image 1 scores texts (0.8, 0.6, 0): its caption (text 1) is second.
    got = retrieval_recall(images, texts, [0, 1, 2], ks=(1, 2, 3))
    assert got == pytest.approx({
        "image_to_text_R@1": 2 / 3, "image_to_text_R@2": 1.0, "image_to_text_R@3": 1.0,
        "text_to_image_R@1": 1 / 3, "text_to_image_R@2": 1.0, "text_to_image_R@3": 1.0,
    })


def test_single_image_corpus(rng):
    got = retrieval_recall(rng.normal(size=(1, 4)), rng.normal(size=(3, 4)), [0, 0, 0], ks=(1, 5))
    assert all(v == 1.0 for v in got.values())


@pytest.mark.parametrize(
    "n_img, n_txt, owner, match",
    [
        (3, 3, [0, 1], "entries"),
        (3, 3, [0, 1, 3], "outside"),
        (3, 3, [0, 1, 1], "no caption"),
        (3, 3, [[0, 1, 2]], "vector"),
        (0, 3, [0, 1, 2], "empty"),
    ],
)
def test_bad_input(n_img, n_txt, owner, match):
    with pytest.raises(ValueError, match=match):
        retrieval_recall(np.ones((n_img, 4)), np.ones((n_txt, 4)), np.array(owner))


def test_bad_dims_and_ks():
    with pytest.raises(ValueError, match="embedding sizes"):
        retrieval_recall(np.ones((2, 4)), np.ones((2, 5)), [0, 1])
    with pytest.raises(ValueError, match="positive"):
        retrieval_recall(np.ones((2, 4)), np.ones((2, 4)), [0, 1], ks=(0,))
    with pytest.raises(ValueError, match=r"\(N, D\)"):
        retrieval_recall(np.ones(4), np.ones((2, 4)), [0, 1])
