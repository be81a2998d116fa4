"""Zero-shot classification from embeddings (SPEC §5).

Class embeddings: for each class, every template is filled with the class name,
canonicalised (`canonicalize_text(..., mode="eval")`), embedded, L2-normalised; the
normalised prompt embeddings of a class are averaged and the mean is re-normalised.
Prediction: the class of highest cosine similarity.

Tie policy (zero-shot): equal similarities are ordered by class index, lowest first.
`zero_shot_predictions` therefore returns the lowest tied index (like `np.argmax`),
and for top-k the true class `y` ranks behind every class scoring strictly higher and
every *lower-indexed* class scoring the same; it is a hit when fewer than `k` classes
rank ahead of it. Top-1 accuracy equals `mean(zero_shot_predictions(...) == labels)`.

No model is imported here: text embedding is a callable
`embed_texts(list_of_str) -> (n, D)` (e.g. `SigLIP2.embed_texts`), and images arrive
as embeddings.
"""

import keras
import numpy as np

from keras_siglip2.evaluation.arrays import DEFAULT_BLOCK_SIZE
from keras_siglip2.evaluation.arrays import as_embeddings
from keras_siglip2.evaluation.arrays import as_index_vector
from keras_siglip2.evaluation.arrays import as_k_tuple
from keras_siglip2.evaluation.arrays import as_numpy
from keras_siglip2.evaluation.arrays import check_same_dim
from keras_siglip2.evaluation.arrays import compute_dtype
from keras_siglip2.evaluation.arrays import l2_normalize
from keras_siglip2.evaluation.arrays import row_blocks
from keras_siglip2.evaluation.templates import IMAGENET_TEMPLATES_WITH_PLAIN
from keras_siglip2.evaluation.templates import PLACEHOLDER
from keras_siglip2.evaluation.templates import fill_template
from keras_siglip2.preprocessing.text import canonicalize_text


def _check_strings(values, name, what):
    if isinstance(values, (str, bytes)):
        raise ValueError(f"`{name}` must be a list of {what}, not a single string.")
    values = list(values)
    if not values:
        raise ValueError(f"`{name}` is empty.")
    for v in values:
        if not isinstance(v, str):
            raise ValueError(f"`{name}` must hold strings; got {type(v).__name__} {v!r:.60}.")
    return values


def class_prompts(class_names, templates=IMAGENET_TEMPLATES_WITH_PLAIN, canonicalize=True):
    """The prompts embedded for each class: a list (one per class) of lists of str.

    `canonicalize`: `True` (big_vision's `"eval"` canonicalisation), `False`/`None`
    (prompts as filled), or any mode string accepted by `canonicalize_text`.
    """
    class_names = _check_strings(class_names, "class_names", "class names")
    templates = _check_strings(templates, "templates", "templates")
    for t in templates:
        if PLACEHOLDER not in t:
            raise ValueError(f"Template {t!r} has no {PLACEHOLDER!r} for the class name.")
    mode = "eval" if canonicalize is True else (None if canonicalize is False else canonicalize)
    prompts = []
    for name in class_names:
        filled = [fill_template(t, name) for t in templates]
        prompts.append(canonicalize_text(filled, mode) if mode is not None else filled)
    return prompts


def class_text_embeddings(
    class_names,
    embed_texts,
    templates=IMAGENET_TEMPLATES_WITH_PLAIN,
    canonicalize=True,
    batch_size=256,
    verbose="auto",
):
    """Prompt-ensembled, L2-normalised class embeddings, shape (C, D).

    Args:
        class_names: list of C class names (str).
        embed_texts: callable `list[str] -> (n, D)` array (NumPy or backend tensor).
            Its outputs are L2-normalised here whether or not it already does so.
        templates: prompt templates with `"{}"` for the class name (default: the 80
            CLIP ImageNet templates plus `"{}"`).
        canonicalize: `True` for `canonicalize_text(mode="eval")` on every prompt,
            `False` to embed prompts as filled, or a `canonicalize_text` mode.
        batch_size: prompts per `embed_texts` call; all C·T prompts are embedded in
            class-major order, batches may span classes.
        verbose: `True`/`False`, or `"auto"` for a `keras.utils.Progbar` when more than
            one batch is needed.

    Returns:
        float32 (float64 if `embed_texts` returns float64) array (C, D), unit rows.
    """
    if not callable(embed_texts):
        raise ValueError("`embed_texts` must be a callable list[str] -> (n, D) array.")
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, (int, np.integer))
        or batch_size < 1
    ):
        raise ValueError(f"`batch_size` must be a positive integer; got {batch_size!r}.")
    per_class = class_prompts(class_names, templates, canonicalize)
    num_classes, num_templates = len(per_class), len(per_class[0])
    prompts = [p for ps in per_class for p in ps]
    class_of_prompt = np.repeat(np.arange(num_classes), num_templates)

    blocks = row_blocks(len(prompts), int(batch_size))
    show = (len(blocks) > 1) if verbose == "auto" else bool(verbose)
    progbar = keras.utils.Progbar(len(prompts), unit_name="prompt") if show else None

    sums = None
    for start, stop in blocks:
        emb = as_numpy(embed_texts(prompts[start:stop]))
        if emb.ndim != 2 or emb.shape[0] != stop - start:
            raise ValueError(
                f"`embed_texts` returned shape {emb.shape} for {stop - start} texts; "
                "expected (num_texts, D)."
            )
        emb = as_embeddings(emb, "embed_texts output")
        if sums is None:
            sums = np.zeros((num_classes, emb.shape[1]), compute_dtype(emb))
        elif emb.shape[1] != sums.shape[1]:
            raise ValueError(
                f"`embed_texts` changed its embedding size from {sums.shape[1]} to {emb.shape[1]}."
            )
        emb = l2_normalize(emb.astype(sums.dtype, copy=False), "embed_texts output")
        # Prompts are class-major, so each class occupies one contiguous run here.
        classes, run_starts = np.unique(class_of_prompt[start:stop], return_index=True)
        sums[classes] += np.add.reduceat(emb, run_starts, axis=0)
        if progbar is not None:
            progbar.update(stop)
    return l2_normalize(sums / num_templates, "class embeddings (mean of prompt embeddings)")


def _cosine_inputs(image_embeddings, class_embeddings):
    images = as_embeddings(image_embeddings, "image_embeddings")
    classes = as_embeddings(class_embeddings, "class_embeddings")
    check_same_dim(images, classes, "image_embeddings", "class_embeddings")
    dtype = compute_dtype(images, classes)
    images = l2_normalize(images.astype(dtype, copy=False), "image_embeddings")
    classes = l2_normalize(classes.astype(dtype, copy=False), "class_embeddings")
    return images, classes


def zero_shot_similarities(image_embeddings, class_embeddings):
    """Cosine similarity of every image with every class, (N, C)."""
    images, classes = _cosine_inputs(image_embeddings, class_embeddings)
    return images @ classes.T


def zero_shot_predictions(image_embeddings, class_embeddings, block_size=DEFAULT_BLOCK_SIZE):
    """Index of the most similar class for each image, int64 (N,).

    Similarity is cosine (both sides are normalised). Ties go to the lowest class index.
    """
    images, classes = _cosine_inputs(image_embeddings, class_embeddings)
    out = np.empty(images.shape[0], np.int64)
    for start, stop in row_blocks(images.shape[0], block_size):
        out[start:stop] = np.argmax(images[start:stop] @ classes.T, axis=1)
    return out


def zero_shot_accuracy(
    image_embeddings, labels, class_embeddings, top_k=(1, 5), block_size=DEFAULT_BLOCK_SIZE
):
    """Top-k zero-shot accuracy: `{"top1": float, "top5": float, ...}`.

    Args:
        image_embeddings: (N, D).
        labels: (N,) int class indices in [0, C).
        class_embeddings: (C, D), e.g. from `class_text_embeddings`.
        top_k: cut-offs; a `k` above C is clipped to C (accuracy 1.0). The key keeps
            the requested `k`.

    Ties: see the module docstring (lower class index ranks first).
    """
    images, classes = _cosine_inputs(image_embeddings, class_embeddings)
    labels = as_index_vector(labels, "labels", images.shape[0], classes.shape[0])
    ks = as_k_tuple(top_k, "top_k")
    class_index = np.arange(classes.shape[0])
    ranks = np.empty(images.shape[0], np.int64)
    for start, stop in row_blocks(images.shape[0], block_size):
        sims = images[start:stop] @ classes.T
        y = labels[start:stop]
        true_sim = sims[np.arange(stop - start), y][:, None]
        ahead = (sims > true_sim) | ((sims == true_sim) & (class_index[None, :] < y[:, None]))
        ranks[start:stop] = ahead.sum(axis=1)
    return {f"top{k}": float(np.mean(ranks < min(k, classes.shape[0]))) for k in ks}


def _scalar(x, name):
    x = as_numpy(x)
    if x.size != 1:
        raise ValueError(f"`{name}` must be a scalar; got shape {x.shape}.")
    value = float(x.reshape(()))
    if not np.isfinite(value):
        raise ValueError(f"`{name}` must be finite; got {value}.")
    return value


def zero_shot_probabilities(image_embeddings, class_embeddings, log_temperature, bias):
    """SigLIP's per-pair probabilities `sigmoid(cos · exp(t') + b)`, shape (N, C).

    `log_temperature` (t') and `bias` (b) are the backbone's learned scalars. Unlike a
    softmax, each (image, class) probability is independent: rows need not sum to 1.
    """
    sims = zero_shot_similarities(image_embeddings, class_embeddings)
    logits = sims * np.exp(_scalar(log_temperature, "log_temperature")) + _scalar(bias, "bias")
    # sigmoid(x) = exp(-log(1 + exp(-x))), evaluated without overflow.
    return np.exp(-np.logaddexp(0.0, -logits)).astype(sims.dtype, copy=False)
