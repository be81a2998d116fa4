"""Readers: image–text data from arrays, records, JSONL, CSV, a folder or TFRecord.

Every reader returns a `tf.data.Dataset` of *raw examples*:
`image` uint8 (H, W, 3), `caption` string, `boxes` float32 (R, 4) as
(ymin, xmin, ymax, xmax) in [0, 1], `region_texts` string (R,) (R may be 0).
Images stored as files or bytes are decoded in the pipeline; an undecodable
record is skipped, counted in `SkippedRecords` and reported with a warning.
"""

import csv
import json
import os
import threading
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_siglip2.preprocessing.image_io import load_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")

RAW_SIGNATURE = {
    "image": tf.TensorSpec((None, None, 3), tf.uint8),
    "caption": tf.TensorSpec((), tf.string),
    "boxes": tf.TensorSpec((None, 4), tf.float32),
    "region_texts": tf.TensorSpec((None,), tf.string),
}


class SkippedRecords:
    """Thread-safe count of records skipped because their image did not decode."""

    def __init__(self):
        self._lock = threading.Lock()
        self.count = 0
        self.examples = []

    def add(self, source, reason):
        with self._lock:
            self.count += 1
            if len(self.examples) < 20:
                self.examples.append((source, reason))
        warnings.warn(f"Skipping undecodable image {source}: {reason}", stacklevel=2)


def _decoder(skipped):
    def decode(source):
        data = source.decode("utf-8", "replace") if len(source) < 4096 else "<bytes>"
        try:
            value = source if not _looks_like_path(source) else source.decode("utf-8")
            return load_image(value), True
        except (ValueError, OSError) as error:
            skipped.add(data, str(error).splitlines()[0])
            return np.zeros((1, 1, 3), np.uint8), False

    return decode


def _looks_like_path(source):
    """A path is short UTF-8 text without NUL bytes; encoded images (PNG, JPEG,
    GIF, BMP, WebP, TIFF, ...) all contain NULs or invalid UTF-8. (A magic-number
    test took `BMW/car.jpg` for BMP data and TIFF data for a path.)"""
    if len(source) >= 4096 or b"\x00" in source:
        return False
    try:
        source.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _decode_images(dataset, skipped):
    """`image_source` (path or encoded bytes; empty for in-memory `array`) →
    `image`, in record order; undecodable records are dropped and counted."""
    decode = _decoder(skipped)

    def load(example):
        example = dict(example)
        source = example.pop("image_source")
        array = example.pop("array", tf.zeros((1, 1, 3), tf.uint8))

        def from_source():
            image, ok = tf.numpy_function(decode, [source], [tf.uint8, tf.bool])
            return tf.ensure_shape(image, (None, None, 3)), tf.ensure_shape(ok, ())

        example["image"], example["_ok"] = tf.cond(
            tf.equal(source, b""), lambda: (array, tf.constant(True)), from_source
        )
        return example

    dataset = dataset.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = dataset.filter(lambda example: example["_ok"])
    return dataset.map(lambda example: {k: v for k, v in example.items() if k != "_ok"})


def _regions(regions):
    """List of `{"box": [4 floats], "text": str}` → (boxes (R, 4), texts (R,))."""
    regions = regions or []
    try:
        boxes = np.array([r["box"] for r in regions], np.float32).reshape(-1, 4)
        if len(boxes) != len(regions):
            raise ValueError("not 4 numbers per box")
        texts = [r["text"] for r in regions]
        if not all(isinstance(text, str) for text in texts):
            raise TypeError("a region text is not a string")
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(
            'Regions must be a list of {"box": [ymin, xmin, ymax, xmax], "text": str}; '
            f"got {str(regions)[:200]} ({type(error).__name__}: {error})."
        ) from None
    if boxes.size and not ((boxes >= 0) & (boxes <= 1)).all():  # NaN fails too
        raise ValueError(
            "Region boxes must be (ymin, xmin, ymax, xmax) relative to the image, in "
            f"[0, 1]; got {boxes.tolist()[:3]}…"
        )
    inverted = (boxes[:, 0] > boxes[:, 2]) | (boxes[:, 1] > boxes[:, 3])
    if inverted.any():
        raise ValueError(
            "Region boxes must be (ymin, xmin, ymax, xmax) with ymin ≤ ymax and xmin ≤ "
            f"xmax; got {boxes[inverted].tolist()[:3]}. Is the order (xmin, ymin, xmax, ymax)?"
        )
    texts = np.array([text.encode("utf-8") for text in texts], dtype=object)
    return boxes, texts.reshape(-1)


def _example(record, base, label):
    """One record (see `from_records`) → the generator's example; a clear
    `ValueError` / `TypeError` naming `label` for anything that would fail
    later in `tf.data`."""
    try:
        return _unlabelled_example(record, base)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{label}: {error}") from None


def _unlabelled_example(record, base):
    if not isinstance(record, dict):
        raise TypeError(f"a record must be a dict/JSON object; got {type(record).__name__}.")
    if "image" not in record or "caption" not in record:
        raise ValueError(f"needs an 'image' and a 'caption'; got keys {sorted(record)}.")
    image, caption = record["image"], record["caption"]
    if not isinstance(caption, str):
        raise TypeError(
            f"'caption' must be a string; got {'null' if caption is None else type(caption).__name__}."
        )
    boxes, texts = _regions(record.get("regions"))
    example = {"caption": caption.encode("utf-8"), "boxes": boxes, "region_texts": texts}
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        example["image_source"] = str(base / path if base and not path.is_absolute() else path).encode()
        example["array"] = np.zeros((1, 1, 3), np.uint8)
    elif isinstance(image, (bytes, bytearray)):
        example["image_source"] = bytes(image)
        example["array"] = np.zeros((1, 1, 3), np.uint8)
    elif image is None:
        raise TypeError("'image' is null; give a file path, encoded bytes or pixels.")
    else:  # pixels: decoded here, so a bad array fails now and once
        example["image_source"] = b""
        example["array"] = load_image(image)
    return example


def from_records(records, base_dir=None, skipped=None, labels=None):
    """`records`: iterable of dicts with `image` (path, encoded bytes, PIL image
    or array), `caption` (str) and optional `regions` ([{"box", "text"}, …]).
    Every record is checked now; an error names it (`labels[i]`, default
    "Record i")."""
    records = list(records)
    skipped = skipped if skipped is not None else SkippedRecords()
    base = Path(base_dir) if base_dir else None
    labels = labels or [f"Record {i}" for i in range(len(records))]
    examples = [_example(record, base, label) for label, record in zip(labels, records)]

    signature = {k: v for k, v in RAW_SIGNATURE.items() if k != "image"}
    signature["image_source"] = tf.TensorSpec((), tf.string)
    signature["array"] = tf.TensorSpec((None, None, 3), tf.uint8)
    dataset = tf.data.Dataset.from_generator(lambda: iter(examples), output_signature=signature)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(records)))
    return _decode_images(dataset, skipped)


def from_arrays(images, captions, regions=None):
    """In-memory data: `images` a list/array of images (any sizes), `captions`
    a list of str, `regions` an optional list of region lists."""
    if len(images) != len(captions):
        raise ValueError(f"Got {len(images)} images but {len(captions)} captions.")
    if regions is not None and len(regions) != len(images):
        raise ValueError(f"Got {len(images)} images but {len(regions)} region lists.")
    records = [
        {"image": image, "caption": caption, "regions": regions[i] if regions else None}
        for i, (image, caption) in enumerate(zip(images, captions))
    ]
    return from_records(records)


def read_records(path):
    """A `.jsonl` or `.csv` file → (records, labels `"path:line"`); a line that
    is not valid JSON (or a CSV `regions` cell that is not) is an error naming
    it. Records are not checked further here (see `from_records`)."""
    path = Path(path)
    records, labels = [], []
    with open(path, newline="" if path.suffix.lower() == ".csv" else None, encoding="utf-8") as f:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(f)
            for row in reader:
                label = f"{path}:{reader.line_num}"
                if row.get("regions"):
                    try:
                        row["regions"] = json.loads(row["regions"])
                    except json.JSONDecodeError as error:
                        raise ValueError(f"{label}: 'regions' is not valid JSON: {error}") from None
                records.append(row)
                labels.append(label)
            return records, labels
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                raise ValueError(f"{path}:{number} is not valid JSON: {error}") from None
            labels.append(f"{path}:{number}")
    return records, labels


def from_jsonl(path, skipped=None):
    """JSON lines: `{"image": "relative/or/absolute/path", "caption": "...",
    "regions": [{"box": [ymin, xmin, ymax, xmax], "text": "..."}]}`."""
    records, labels = read_records(path)
    return from_records(records, base_dir=Path(path).parent, skipped=skipped, labels=labels)


def from_csv(path, skipped=None):
    """CSV with columns `image`, `caption` and optional `regions` (a JSON list)."""
    records, labels = read_records(path)
    return from_records(records, base_dir=Path(path).parent, skipped=skipped, labels=labels)


def from_directory(directory, skipped=None):
    """A folder of images, each with a caption in a same-named `.txt` file
    (`cat.jpg` + `cat.txt`), searched recursively."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(f"{directory} is not a directory.")
    records = []
    for image in sorted(directory.rglob("*")):
        if image.suffix.lower() in IMAGE_SUFFIXES:
            caption_file = image.with_suffix(".txt")
            if caption_file.exists():
                caption = caption_file.read_text(encoding="utf-8").strip()
                records.append({"image": str(image), "caption": caption})
    if not records:
        raise ValueError(
            f"No captioned images in {directory}: expected image files "
            f"({', '.join(IMAGE_SUFFIXES)}) each with a same-named .txt caption."
        )
    return from_records(records, skipped=skipped)


TFRECORD_FEATURES = {
    "image": tf.io.FixedLenFeature((), tf.string),
    "caption": tf.io.FixedLenFeature((), tf.string),
    "region_boxes": tf.io.VarLenFeature(tf.float32),
    "region_texts": tf.io.VarLenFeature(tf.string),
}


def from_tfrecord(paths, skipped=None):
    """TFRecord files of `tf.train.Example`s with `image` (encoded bytes),
    `caption`, and optional `region_boxes` (flat floats, 4 per region) and
    `region_texts`. Write them with `write_tfrecord`."""
    skipped = skipped if skipped is not None else SkippedRecords()
    paths = [str(p) for p in ([paths] if isinstance(paths, (str, Path)) else paths)]

    def parse(serialized):
        features = tf.io.parse_single_example(serialized, TFRECORD_FEATURES)
        return {
            "image_source": features["image"],
            "caption": features["caption"],
            "boxes": tf.reshape(tf.sparse.to_dense(features["region_boxes"]), (-1, 4)),
            "region_texts": tf.sparse.to_dense(features["region_texts"]),
        }

    dataset = tf.data.TFRecordDataset(paths).map(parse)
    return _decode_images(dataset, skipped)


def write_tfrecord(path, records):
    """Write records (as for `from_records`, images as paths or bytes) to TFRecord."""

    def feature(values, kind):
        if kind == "bytes":
            return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))
        return tf.train.Feature(float_list=tf.train.FloatList(value=values))

    with tf.io.TFRecordWriter(str(path)) as writer:
        for index, record in enumerate(records):
            checked = _example(record, None, f"Record {index}")
            image = record["image"]
            data = Path(image).read_bytes() if isinstance(image, (str, Path)) else bytes(image)
            example = tf.train.Example(
                features=tf.train.Features(
                    feature={
                        "image": feature([data], "bytes"),
                        "caption": feature([checked["caption"]], "bytes"),
                        "region_boxes": feature(checked["boxes"].reshape(-1).tolist(), "float"),
                        "region_texts": feature(list(checked["region_texts"]), "bytes"),
                    }
                )
            )
            writer.write(example.SerializeToString())


def image_text_source(source, skipped=None):
    """Dispatch on the source: a folder, a `.jsonl`, `.csv` or `.tfrecord` file,
    a `tf.data.Dataset` of raw examples, or a list of records."""
    if isinstance(source, tf.data.Dataset):
        return source
    if isinstance(source, (list, tuple)):
        return from_records(source, skipped=skipped)
    path = Path(source)
    if path.is_dir():
        return from_directory(path, skipped)
    suffix = path.suffix.lower()
    readers = {".jsonl": from_jsonl, ".csv": from_csv, ".tfrecord": from_tfrecord}
    if suffix not in readers or not path.exists():
        raise ValueError(
            f"Cannot read {source!r}: expected a folder of images with .txt captions, "
            "a .jsonl, .csv or .tfrecord file, a tf.data.Dataset or a list of records."
        )
    return readers[suffix](path, skipped=skipped)
