"""Evaluation data: labelled images for zero-shot classification, captioned
images for retrieval, from a folder, a JSONL/CSV file, a `tf.data.Dataset` or
the built-in demo dataset.

Each reader returns images as an iterable (file paths, or a stream from a
dataset, so nothing large is held in memory) together with lists that are
complete once the images have been consumed — for a dataset, labels and
captions are collected while its images stream past. `SigLIP2.embed_images`
consumes the images; only then read the labels/captions.

`"demo"`, `"demo:N"` or `"demo:N:SEED"` names the held-out split of the demo
dataset that `siglip2 demo` evaluates on (default N = 360, SEED = 0).
"""

from pathlib import Path

import numpy as np

from keras_siglip2.data.sources import IMAGE_SUFFIXES, read_records
from keras_siglip2.preprocessing.inputs import is_dataset


def _images_in(folder):
    return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def demo_split(spec):
    """`"demo[:N[:SEED]]"` → (N, SEED), or None if `spec` names something else."""
    if not isinstance(spec, str) or spec.split(":")[0] != "demo":
        return None
    parts = spec.split(":")[1:]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        values = []
    if len(parts) > 2 or len(values) != len(parts) or any(v < 0 for v in values):
        raise ValueError(f"Write the demo data as demo, demo:N or demo:N:SEED; got {spec!r}.")
    num, seed = (values + [360, 0][len(values):])[:2]
    if num < 1:
        raise ValueError(f"The demo split needs at least one example; got {spec!r}.")
    return num, seed


def _demo_examples(spec):
    from keras_siglip2.data import make_demo_examples

    num, seed = demo_split(spec)
    return make_demo_examples(num, seed=seed, split="test")


def _text(x):
    return bytes(x).decode("utf-8") if isinstance(x, (bytes, np.bytes_)) else str(x)


def classification_data(data, class_names=None):
    """Labelled images for zero-shot classification.

    Args:
        data: a folder with one subfolder of images per class (the subfolder
            name is the class name, e.g. `val/golden_retriever/001.jpg`); a
            `tf.data.Dataset` of `(image, label)` or `{"image", "label"}`
            elements (one image each; `label` an int); or `"demo[:N[:SEED]]"`.
        class_names: list of C names; required for a dataset, optional for a
            folder (then it must list the subfolders, in label order).

    Returns:
        `(images, labels, class_names)`: an iterable of images, a list of int
        labels (complete once `images` is consumed), the class names.
    """
    if demo_split(data):
        from keras_siglip2.data import demo_class_names

        examples = _demo_examples(data)
        names = list(class_names) if class_names else demo_class_names("en")
        return [e["image"] for e in examples], [int(e["label"]) for e in examples], names
    if is_dataset(data):
        if not class_names:
            raise ValueError("A tf.data dataset needs `class_names` (one name per label).")
        labels = []

        def stream():
            for element in data.as_numpy_iterator():
                if isinstance(element, dict):
                    if "image" not in element or "label" not in element:
                        raise ValueError(
                            f"Dataset elements need 'image' and 'label'; got keys {sorted(element)}."
                        )
                    image, label = element["image"], element["label"]
                elif isinstance(element, tuple) and len(element) >= 2:
                    image, label = element[:2]
                else:
                    raise ValueError(
                        "Dataset elements must be (image, label) tuples or dicts with 'image' "
                        f"and 'label'; got {type(element).__name__}."
                    )
                labels.append(int(np.asarray(label).reshape(-1)[0]))
                yield image

        return stream(), labels, list(class_names)
    folder = Path(data)
    if not folder.is_dir():
        raise ValueError(
            f"{data} is not a folder: expected one subfolder of images per class, a "
            "tf.data dataset, or demo[:N[:SEED]]."
        )
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir() and _images_in(p))
    if not classes:
        raise ValueError(
            f"No images found in class subfolders of {folder}: expected e.g. "
            f"{folder}/cat/1.jpg and {folder}/dog/2.png ({', '.join(IMAGE_SUFFIXES)})."
        )
    if class_names and sorted(class_names) != classes:
        raise ValueError(
            f"`class_names` {list(class_names)} do not match the subfolders of {folder}: "
            f"{classes}."
        )
    names = list(class_names) if class_names else classes
    images, labels = [], []
    for label, name in enumerate(names):
        paths = [str(p) for p in _images_in(folder / name)]
        images += paths
        labels += [label] * len(paths)
    return images, labels, names


def retrieval_data(data):
    """Captioned images for retrieval; an image may have several captions.

    Args:
        data: a folder of images, each with a same-named `.txt` file holding one
            caption per line; a `.jsonl` / `.csv` file of records with `image`
            (path, relative to the file) and `caption` (a string, or in JSONL a
            list) — records naming the same image are merged; a
            `tf.data.Dataset` of `{"image", "caption"}` elements (`caption` a
            string or a vector of strings); or `"demo[:N[:SEED]]"`.

    Returns:
        `(images, captions, text_to_image)`: an iterable of images, a list of
        str and the image index of each caption (complete once `images` is
        consumed).
    """
    if demo_split(data):
        examples = _demo_examples(data)
        return [e["image"] for e in examples], [e["caption"] for e in examples], list(
            range(len(examples))
        )
    captions, owner = [], []
    if is_dataset(data):

        def stream():
            for index, element in enumerate(data.as_numpy_iterator()):
                if not isinstance(element, dict) or "image" not in element:
                    raise ValueError("Dataset elements must be dicts with 'image' and 'caption'.")
                texts = element.get("caption", element.get("captions"))
                if texts is None:
                    raise ValueError(
                        f"Dataset elements need a 'caption'; got keys {sorted(element)}."
                    )
                texts = [_text(t) for t in np.asarray(texts, dtype=object).reshape(-1)]
                _add_captions(captions, owner, index, texts, f"dataset element {index}")
                yield element["image"]

        return stream(), captions, owner
    path = Path(data)
    if path.is_dir():
        records = [
            (str(image), image.with_suffix(".txt").read_text(encoding="utf-8").splitlines())
            for image in _images_in(path)
            if image.with_suffix(".txt").exists()
        ]
        if not records:
            raise ValueError(
                f"No captioned images in {path}: expected image files "
                f"({', '.join(IMAGE_SUFFIXES)}) each with a same-named .txt file of captions, "
                "one per line."
            )
    elif path.suffix.lower() in (".jsonl", ".csv") and path.is_file():
        records = _file_records(path)
    else:
        raise ValueError(
            f"Cannot read {data!r}: expected a folder of images with .txt captions, a .jsonl "
            "or .csv file, a tf.data dataset, or demo[:N[:SEED]]."
        )
    images = []
    for image, texts in records:
        _add_captions(captions, owner, len(images), texts, image)
        images.append(image)
    return images, captions, owner


def _add_captions(captions, owner, index, texts, where):
    texts = [t.strip() for t in texts if t.strip()]
    if not texts:
        raise ValueError(f"{where} has no caption.")
    captions += texts
    owner += [index] * len(texts)


def _file_records(path):
    """JSONL/CSV rows → [(image path, [captions])], merging rows of one image."""
    merged = {}
    for row, label in zip(*read_records(path)):
        if not isinstance(row, dict):
            raise TypeError(f"{label}: a record must be a JSON object; got {type(row).__name__}.")
        texts = row.get("caption", row.get("captions"))
        texts = [texts] if isinstance(texts, str) else texts
        if not isinstance(row.get("image"), str) or not row["image"] or texts is None:
            raise ValueError(
                f"{label}: needs an 'image' (a path) and a 'caption'; got {str(row)[:120]}."
            )
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"{label}: 'caption' must be a string or a list of strings.")
        image = Path(row["image"])
        image = str(image if image.is_absolute() else path.parent / image)
        merged.setdefault(image, []).extend(texts)
    if not merged:
        raise ValueError(f"{path} has no records.")
    return list(merged.items())
