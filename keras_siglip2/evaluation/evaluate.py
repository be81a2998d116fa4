"""Evaluate a model end to end: zero-shot classification and image–text retrieval
on any data `keras_siglip2.evaluation.data` reads (folder, file, `tf.data`, demo).

`model` is anything with `embed_images(images, batch_size=..., verbose=...)` and
`embed_texts(texts, verbose=...)` returning `(N, D)` arrays, e.g. `SigLIP2`.
Results are a dict of metrics, their chance levels (uniformly random ranking)
and counts; `format_results` renders them as a table.
"""

import numpy as np

from keras_siglip2.evaluation.data import classification_data
from keras_siglip2.evaluation.data import retrieval_data
from keras_siglip2.evaluation.report import chance_levels
from keras_siglip2.evaluation.report import format_table
from keras_siglip2.evaluation.retrieval import retrieval_recall
from keras_siglip2.evaluation.templates import IMAGENET_TEMPLATES_WITH_PLAIN
from keras_siglip2.evaluation.templates import resolve_templates
from keras_siglip2.evaluation.zero_shot import class_text_embeddings
from keras_siglip2.evaluation.zero_shot import zero_shot_accuracy


def evaluate_zero_shot(
    model,
    data,
    class_names=None,
    templates=IMAGENET_TEMPLATES_WITH_PLAIN,
    top_k=(1, 5),
    batch_size=32,
    verbose="auto",
):
    """Zero-shot top-k accuracy with prompt-ensembled class embeddings (SPEC §5).

    Args:
        model: e.g. a `SigLIP2`.
        data: see `classification_data` (folder of class subfolders, dataset,
            `"demo[:N[:SEED]]"`).
        class_names: names per label (required for a dataset).
        templates: templates with `"{}"`, `"imagenet"` (80 CLIP templates + `"{}"`,
            the default) or `"plain"` (`"{}"` only).
        top_k: cut-offs.

    Returns:
        `{"metrics": {"top1": …, "top5": …}, "chance": {same keys}, "num_images": N,
        "num_classes": C}`.
    """
    images, labels, names = classification_data(data, class_names)
    image_embeddings = model.embed_images(images, batch_size=batch_size, verbose=verbose)
    if len(labels) != len(image_embeddings):
        raise ValueError(f"Got {len(labels)} labels for {len(image_embeddings)} images.")
    class_embeddings = class_text_embeddings(
        names, model.embed_texts, templates=resolve_templates(templates), verbose=False
    )
    metrics = zero_shot_accuracy(image_embeddings, np.asarray(labels), class_embeddings, top_k)
    return {
        "metrics": metrics,
        "chance": chance_levels(num_classes=len(names), top_k=top_k),
        "num_images": len(labels),
        "num_classes": len(names),
    }


def evaluate_retrieval(model, data, ks=(1, 5, 10), batch_size=32, verbose="auto"):
    """Image→text and text→image Recall@k; an image may have several captions
    (a hit if any of them is in the top k).

    Args:
        model: e.g. a `SigLIP2`.
        data: see `retrieval_data` (folder with `.txt` captions, JSONL/CSV,
            dataset, `"demo[:N[:SEED]]"`).
        ks: cut-offs (clipped to the corpus size).

    Returns:
        `{"metrics": {"image_to_text_R@1": …, …, "text_to_image_R@10": …},
        "chance": {same keys}, "num_images": N, "num_texts": T}`.
    """
    images, captions, owner = retrieval_data(data)
    image_embeddings = model.embed_images(images, batch_size=batch_size, verbose=verbose)
    text_embeddings = model.embed_texts(captions, verbose=verbose)
    owner = np.asarray(owner)
    metrics = retrieval_recall(image_embeddings, text_embeddings, owner, ks)
    counts = np.bincount(owner, minlength=len(image_embeddings)).tolist()
    return {
        "metrics": metrics,
        "chance": chance_levels(num_images=len(counts), num_texts_per_image=counts, ks=ks),
        "num_images": len(counts),
        "num_texts": len(captions),
    }


def format_results(results, title=None):
    """An `evaluate_*` result as a plain-text table with a chance column."""
    return format_table(results["metrics"], results["chance"], title=title)
