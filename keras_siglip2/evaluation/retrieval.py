"""Image–text retrieval Recall@k in both directions (SPEC §5).

- image→text: each image queries all texts; it is a hit at k when *any* of its
  captions is among the k most similar texts.
- text→image: each caption queries all images; it is a hit at k when its image is
  among the k most similar images.

Similarity is cosine (both sides are L2-normalised). A `k` above the corpus size is
clipped to it (recall 1.0); the result key keeps the requested `k`.

Tie policy (pessimistic): a correct item tied with wrong items is ranked *behind*
all of them. A query's rank is the number of wrong items scoring at least as high as
its best correct item, and it is a hit at k when that rank is below k. Other correct
items never push a correct item down. So ties never help: a degenerate model whose
embeddings are all equal scores the chance floor, not 100%.

Memory: queries are scored in blocks of `block_size` rows against the whole corpus,
so the largest temporary is (block_size, corpus) — never (N_txt, N_img).
"""

import numpy as np

from keras_siglip2.evaluation.arrays import DEFAULT_BLOCK_SIZE
from keras_siglip2.evaluation.arrays import as_embeddings
from keras_siglip2.evaluation.arrays import as_index_vector
from keras_siglip2.evaluation.arrays import as_k_tuple
from keras_siglip2.evaluation.arrays import check_same_dim
from keras_siglip2.evaluation.arrays import compute_dtype
from keras_siglip2.evaluation.arrays import l2_normalize
from keras_siglip2.evaluation.arrays import row_blocks


def _prepare(image_embeddings, text_embeddings, text_to_image):
    images = as_embeddings(image_embeddings, "image_embeddings")
    texts = as_embeddings(text_embeddings, "text_embeddings")
    check_same_dim(images, texts, "image_embeddings", "text_embeddings")
    owner = as_index_vector(text_to_image, "text_to_image", texts.shape[0], images.shape[0])
    captions_per_image = np.bincount(owner, minlength=images.shape[0])
    if np.any(captions_per_image == 0):
        missing = np.flatnonzero(captions_per_image == 0)
        raise ValueError(
            f"{missing.size} image(s) have no caption in `text_to_image` (first: "
            f"{missing[:10].tolist()}); image→text recall is undefined for them."
        )
    dtype = compute_dtype(images, texts)
    images = l2_normalize(images.astype(dtype, copy=False), "image_embeddings")
    texts = l2_normalize(texts.astype(dtype, copy=False), "text_embeddings")
    return images, texts, owner


def image_to_text_ranks(images, texts, text_to_image, block_size=DEFAULT_BLOCK_SIZE):
    """For each image, the number of *wrong* texts scoring >= its best caption (N_img,).

    Inputs must already be normalised and checked (see `retrieval_recall`).
    """
    ranks = np.empty(images.shape[0], np.int64)
    for start, stop in row_blocks(images.shape[0], block_size):
        sims = images[start:stop] @ texts.T  # (B, N_txt)
        correct = text_to_image[None, :] == np.arange(start, stop)[:, None]
        best = np.where(correct, sims, -np.inf).max(axis=1, keepdims=True)
        ranks[start:stop] = ((sims >= best) & ~correct).sum(axis=1)
    return ranks


def text_to_image_ranks(images, texts, text_to_image, block_size=DEFAULT_BLOCK_SIZE):
    """For each text, the number of *wrong* images scoring >= its image (N_txt,)."""
    ranks = np.empty(texts.shape[0], np.int64)
    for start, stop in row_blocks(texts.shape[0], block_size):
        sims = texts[start:stop] @ images.T  # (B, N_img)
        target = sims[np.arange(stop - start), text_to_image[start:stop]][:, None]
        ranks[start:stop] = (sims >= target).sum(axis=1) - 1  # minus the image itself
    return ranks


def retrieval_recall(
    image_embeddings, text_embeddings, text_to_image, ks=(1, 5, 10), block_size=DEFAULT_BLOCK_SIZE
):
    """Recall@k for image→text and text→image retrieval.

    Args:
        image_embeddings: (N_img, D).
        text_embeddings: (N_txt, D), all captions of all images.
        text_to_image: (N_txt,) int, the image index of each caption; every image
            needs at least one caption (any number, may vary per image).
        ks: cut-offs.
        block_size: queries scored at once.

    Returns:
        `{"image_to_text_R@1": ..., ..., "text_to_image_R@1": ..., ...}`, floats in [0, 1].
    """
    images, texts, owner = _prepare(image_embeddings, text_embeddings, text_to_image)
    ks = as_k_tuple(ks, "ks")
    i2t = image_to_text_ranks(images, texts, owner, block_size)
    t2i = text_to_image_ranks(images, texts, owner, block_size)
    results = {}
    for k in ks:
        results[f"image_to_text_R@{k}"] = float(np.mean(i2t < min(k, texts.shape[0])))
    for k in ks:
        results[f"text_to_image_R@{k}"] = float(np.mean(t2i < min(k, images.shape[0])))
    return results


def top_k_neighbours(query_embeddings, corpus_embeddings, k, block_size=DEFAULT_BLOCK_SIZE):
    """The `k` most cosine-similar corpus rows for each query.

    Args:
        query_embeddings: (Q, D).
        corpus_embeddings: (M, D).
        k: positive int; clipped to M.

    Returns:
        `(indices (Q, min(k, M)) int64, scores (Q, min(k, M)))`, most similar
        first; equal scores are ordered by corpus index, lowest first.
    """
    queries = as_embeddings(query_embeddings, "query_embeddings")
    corpus = as_embeddings(corpus_embeddings, "corpus_embeddings")
    check_same_dim(queries, corpus, "query_embeddings", "corpus_embeddings")
    (k,) = as_k_tuple(k, "k")
    dtype = compute_dtype(queries, corpus)
    queries = l2_normalize(queries.astype(dtype, copy=False), "query_embeddings")
    corpus = l2_normalize(corpus.astype(dtype, copy=False), "corpus_embeddings")
    k = min(k, corpus.shape[0])
    indices = np.empty((queries.shape[0], k), np.int64)
    scores = np.empty((queries.shape[0], k), dtype)
    for start, stop in row_blocks(queries.shape[0], block_size):
        sims = queries[start:stop] @ corpus.T
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        indices[start:stop] = order
        scores[start:stop] = np.take_along_axis(sims, order, axis=1)
    return indices, scores
