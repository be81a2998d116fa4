"""Input adapters: any collection of raw images or texts → a stream of items.

Images may be given as one image or any collection of them: a list/tuple, a
`(B, H, W, 3)` array, any iterable (a generator streams), or a `tf.data.Dataset`
whose elements are images, batches of images, `(image, label)` tuples or dicts
with an `"image"` key. One image is a NumPy array / tensor, a `PIL.Image`, a file
path or encoded bytes. Texts: a string, a list of strings, or an iterable /
`tf.data.Dataset` of strings (or of dicts with a `"caption"` or `"text"` key).

`image_items` / `text_items` yield one item at a time (nothing is converted
here: the image converter and tokenizer do that), so callers can batch inputs
of any length; `collection_size` gives the count when it is known up front.
"""

import os

import numpy as np

_IMAGES = (
    "Expected one image (array, PIL image, file path or encoded bytes) or a "
    "collection of them (list, (B, H, W, C) array, generator, tf.data.Dataset)"
)
_TEXTS = "Expected a string or a collection of strings (list, generator, tf.data.Dataset)"


def is_dataset(x):
    """Whether `x` is a `tf.data.Dataset`."""
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover - tensorflow is a dependency
        return False
    return isinstance(x, tf.data.Dataset)


def is_text_collection(items):
    """Whether `items` is a non-empty list/tuple of strings or a string array."""
    if isinstance(items, (list, tuple)):
        return bool(items) and all(isinstance(x, str) for x in items)
    return getattr(items, "dtype", None) is not None and np.asarray(items).dtype.kind == "U"


def collection_size(items):
    """The number of items of a list, tuple or batch array; None if unknown."""
    if isinstance(items, (list, tuple)) or getattr(items, "ndim", 0) == 4:
        return len(items)
    return None


def _dataset_image(element):
    """A dataset element (NumPy) → one image or a batch of images."""
    if isinstance(element, dict):
        for key in ("image", "images"):
            if key in element:
                return element[key]
        raise ValueError(
            f"Dataset elements are dicts with keys {sorted(element)}; expected an 'image' key."
        )
    if isinstance(element, tuple):
        return _dataset_image(element[0])
    return element


def _file_path_or_image(item):
    """A `tf.string` holding the path of an existing file → that path as `str`."""
    if isinstance(item, bytes) and len(item) < 4096 and os.path.isfile(item):
        return item.decode("utf-8")
    return item


def image_items(images):
    """Any image collection (see the module doc) → an iterator of single images."""
    if images is None:
        raise TypeError(f"{_IMAGES}; got None.")
    if is_dataset(images):
        for element in images.as_numpy_iterator():
            image = _dataset_image(element)
            batched = getattr(image, "ndim", 0) == 4 or (
                isinstance(image, np.ndarray) and image.dtype.kind in "SO" and image.ndim == 1
            )
            for item in image if batched else [image]:
                yield _file_path_or_image(item)
        return
    if isinstance(images, (list, tuple)) or getattr(images, "ndim", 0) == 4:
        yield from images
        return
    if isinstance(images, (str, bytes, os.PathLike)) or hasattr(images, "shape") or (
        type(images).__module__.startswith("PIL")
    ):
        yield images  # one image
        return
    yield from _iterate(images, _IMAGES)  # any other iterable, e.g. a generator


def _iterate(items, expected):
    try:
        return iter(items)
    except TypeError:
        raise TypeError(f"{expected}; got {type(items).__name__} ({items!r:.60}).") from None


def text_items(texts):
    """Any text collection (see the module doc) → an iterator of strings."""
    if texts is None:
        raise TypeError(f"{_TEXTS}; got None.")
    if isinstance(texts, str):
        yield texts
        return
    source = texts.as_numpy_iterator() if is_dataset(texts) else _iterate(texts, _TEXTS)
    for element in source:
        if isinstance(element, dict):
            key = next((k for k in ("caption", "text", "texts") if k in element), None)
            if key is None:
                raise ValueError(
                    f"Dataset elements are dicts with keys {sorted(element)}; expected a "
                    "'caption' or 'text' key."
                )
            element = element[key]
        if isinstance(element, np.ndarray) and element.ndim == 1:
            yield from (_as_text(x) for x in element)  # a batched dataset
        else:
            yield _as_text(element)


def text_list(texts, name="texts"):
    """A string or a list/tuple/array of strings → a non-empty list of `str`;
    a clear `TypeError` / `ValueError` otherwise."""
    if isinstance(texts, str):
        return [texts]
    if texts is None or not isinstance(texts, (list, tuple, np.ndarray)):
        raise TypeError(
            f"`{name}` must be a string or a list of strings; got {type(texts).__name__}."
        )
    texts = [_as_text(x) for x in texts]
    if not texts:
        raise ValueError(f"Got no {name}: pass at least one string.")
    for index, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(
                f"`{name}` must hold strings; item {index} is {type(text).__name__} ({text!r:.60})."
            )
    return texts


def _as_text(x):
    if isinstance(x, (bytes, np.bytes_)):
        return bytes(x).decode("utf-8")
    if isinstance(x, np.ndarray) and x.ndim == 0:
        return _as_text(x.item())
    return x
