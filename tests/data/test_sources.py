"""Readers (`keras_siglip2.data.sources`): every format reads, undecodable images
are skipped and counted, bad inputs fail early with clear `ValueError`s."""

import csv
import io
import json
import os
import warnings

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_siglip2.data import sources
from keras_siglip2.data.sources import SkippedRecords


def _pixels(height, width, seed):
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _encode(array, fmt, mode=None):
    image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    return buffer.getvalue()


def _read(dataset):
    return list(dataset.as_numpy_iterator())


def _check_raw(example):
    assert example["image"].dtype == np.uint8 and example["image"].ndim == 3
    assert example["image"].shape[-1] == 3
    assert example["boxes"].dtype == np.float32 and example["boxes"].shape[-1] == 4
    assert example["region_texts"].shape == (len(example["boxes"]),)


@pytest.fixture
def files(tmp_path):
    """Images of several formats and sizes, with their expected RGB pixels."""
    made = {}
    rgb = _pixels(9, 13, 0)
    made["rgb.png"] = (_encode(rgb, "PNG"), rgb)
    grey = _pixels(7, 5, 1)[..., 0]
    made["grey.png"] = (_encode(grey, "PNG"), np.repeat(grey[..., None], 3, -1))
    rgba = np.concatenate([_pixels(6, 8, 2), np.full((6, 8, 1), 90, np.uint8)], -1)
    made["rgba.png"] = (_encode(rgba, "PNG"), rgba[..., :3])  # alpha dropped
    smooth = np.tile(np.linspace(0, 255, 32, dtype=np.uint8)[None, :, None], (24, 1, 3))
    made["photo.jpg"] = (_encode(smooth, "JPEG"), smooth)
    made["scan.tiff"] = (_encode(rgb, "TIFF"), rgb)
    for name, (data, _) in made.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path, made


def _assert_pixels(image, expected, name):
    assert image.shape == expected.shape, name
    tolerance = 8 if name.endswith(".jpg") else 0
    assert np.abs(image.astype(int) - expected.astype(int)).max() <= tolerance, name


REGIONS = [{"box": [0.1, 0.2, 0.5, 0.9], "text": "a red circle"}]


def test_jsonl_reads_every_format_with_regions(files):
    directory, made = files
    path = directory / "data.jsonl"
    lines = [
        {"image": name, "caption": f"caption of {name}", "regions": REGIONS if i % 2 else []}
        for i, name in enumerate(made)
    ]
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\n\n")  # blank line ok
    examples = _read(sources.from_jsonl(path))
    assert len(examples) == len(made)
    for i, (example, name) in enumerate(zip(examples, made)):
        _check_raw(example)
        _assert_pixels(example["image"], made[name][1], name)
        assert example["caption"].decode() == f"caption of {name}"
        if i % 2:
            np.testing.assert_allclose(example["boxes"], [REGIONS[0]["box"]])
            assert example["region_texts"].tolist() == [b"a red circle"]
        else:
            assert example["boxes"].shape == (0, 4)
    # The dispatcher picks the reader from the suffix.
    assert len(_read(sources.image_text_source(str(path)))) == len(made)


def test_csv_with_json_regions(files):
    directory, made = files
    path = directory / "data.csv"
    regions = json.dumps(REGIONS + [{"box": [0, 0, 1, 1], "text": "everything"}])
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "caption", "regions"])
        writer.writerow(["rgb.png", "a caption, with a comma", regions])
        writer.writerow(["grey.png", "no regions", ""])
    first, second = _read(sources.image_text_source(path))
    assert first["caption"] == b"a caption, with a comma"
    np.testing.assert_allclose(first["boxes"], [REGIONS[0]["box"], [0, 0, 1, 1]])
    assert first["region_texts"].tolist() == [b"a red circle", b"everything"]
    _assert_pixels(first["image"], made["rgb.png"][1], "rgb.png")
    assert second["caption"] == b"no regions" and second["boxes"].shape == (0, 4)
    _assert_pixels(second["image"], made["grey.png"][1], "grey.png")


def test_directory_of_images_with_captions(files):
    directory, made = files
    nested = directory / "nested"
    nested.mkdir()
    (nested / "deep.png").write_bytes(made["rgb.png"][0])
    for name in list(made) + ["nested/deep.png"]:
        (directory / name).with_suffix(".txt").write_text(f"  text for {name}\n")
    (directory / "uncaptioned.png").write_bytes(made["rgb.png"][0])  # no .txt: left out
    (directory / "notes.txt").write_text("not a caption")  # no image: left out
    examples = _read(sources.image_text_source(directory))
    captions = sorted(e["caption"].decode() for e in examples)
    assert captions == sorted(f"text for {name}" for name in list(made) + ["nested/deep.png"])
    for example in examples:
        _check_raw(example)
        name = example["caption"].decode()[len("text for "):]
        key = "rgb.png" if name == "nested/deep.png" else name
        _assert_pixels(example["image"], made[key][1], name)


def test_tfrecord_round_trip(files, tmp_path):
    directory, made = files
    records = [
        {"image": str(directory / name), "caption": name, "regions": REGIONS * (i % 3)}
        for i, name in enumerate(made)
    ]
    records.append({"image": made["rgb.png"][0], "caption": "from bytes"})
    path = tmp_path / "data.tfrecord"
    sources.write_tfrecord(path, records)
    examples = _read(sources.image_text_source(path))
    assert [e["caption"].decode() for e in examples] == [r["caption"] for r in records]
    for i, (example, name) in enumerate(zip(examples, list(made) + ["rgb.png"])):
        _check_raw(example)
        # TIFF bytes too: encoded data is told from a path by content, not magic.
        _assert_pixels(example["image"], made[name][1], name)
        assert len(example["boxes"]) == (i % 3 if i < len(made) else 0)


def test_arrays_of_different_sizes_and_kinds():
    images = [
        _pixels(5, 9, 0),
        _pixels(20, 3, 1)[..., 0],  # grey (H, W)
        np.concatenate([_pixels(4, 4, 2), np.zeros((4, 4, 1), np.uint8)], -1),  # RGBA
        Image.fromarray(_pixels(6, 6, 3)),  # PIL
        _encode(_pixels(7, 2, 4), "PNG"),  # encoded bytes
    ]
    regions = [REGIONS, None, [], REGIONS * 2, None]
    examples = _read(sources.from_arrays(images, [f"c{i}" for i in range(5)], regions))
    assert [e["image"].shape for e in examples] == [
        (5, 9, 3), (20, 3, 3), (4, 4, 3), (6, 6, 3), (7, 2, 3)
    ]
    np.testing.assert_array_equal(examples[0]["image"], images[0])
    np.testing.assert_array_equal(examples[1]["image"][..., 2], images[1])
    np.testing.assert_array_equal(examples[2]["image"], images[2][..., :3])
    assert [len(e["boxes"]) for e in examples] == [1, 0, 0, 2, 0]
    with pytest.raises(ValueError, match="2 images but 1 captions"):
        sources.from_arrays(images[:2], ["one"])


def test_corrupt_and_truncated_images_are_skipped(files, tmp_path):
    directory, made = files
    (directory / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not an image")
    (directory / "truncated.jpg").write_bytes(made["photo.jpg"][0][: len(made["photo.jpg"][0]) // 2])
    (directory / "empty.png").write_bytes(b"")
    names = ["rgb.png", "corrupt.png", "grey.png", "truncated.jpg", "empty.png", "photo.jpg"]
    path = directory / "data.jsonl"
    path.write_text("\n".join(json.dumps({"image": n, "caption": n}) for n in names))
    skipped = SkippedRecords()
    with pytest.warns(UserWarning, match="Skipping undecodable image") as caught:
        examples = _read(sources.from_jsonl(path, skipped=skipped))
    assert [e["caption"].decode() for e in examples] == ["rgb.png", "grey.png", "photo.jpg"]
    assert skipped.count == 3
    assert sorted(os.path.basename(source) for source, _ in skipped.examples) == [
        "corrupt.png", "empty.png", "truncated.jpg"
    ]
    assert len([w for w in caught if "Skipping undecodable" in str(w.message)]) == 3
    assert any("truncated" in str(w.message) for w in caught)

    # The same in a TFRecord of encoded bytes, and in a training stream that
    # goes on past the bad record epoch after epoch.
    record_path = tmp_path / "mixed.tfrecord"
    sources.write_tfrecord(
        record_path,
        [
            {"image": made["rgb.png"][0], "caption": "good"},
            {"image": made["photo.jpg"][0][:300], "caption": "truncated"},
            {"image": b"\x00\x01 random bytes", "caption": "garbage"},
            {"image": made["grey.png"][0], "caption": "good too"},
        ],
    )
    skipped = SkippedRecords()
    with pytest.warns(UserWarning, match="Skipping undecodable image"):
        stream = sources.from_tfrecord(record_path, skipped=skipped).repeat(2)
        captions = [e["caption"] for e in stream.as_numpy_iterator()]
    assert captions == [b"good", b"good too"] * 2
    assert skipped.count == 4


def test_path_that_starts_like_an_image_signature(files, monkeypatch):
    """A relative path such as `BMW/car.png` or `RIFFS/x.png` is a path, not data."""
    directory, made = files
    monkeypatch.chdir(directory)
    for folder in ("BMW", "RIFFS", "GIF89"):
        os.mkdir(folder)
        (directory / folder / "car.png").write_bytes(made["rgb.png"][0])
    records = [{"image": f"{folder}/car.png", "caption": folder} for folder in ("BMW", "RIFFS", "GIF89")]
    skipped = SkippedRecords()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        examples = _read(sources.from_records(records, skipped=skipped))
    assert skipped.count == 0 and len(examples) == 3


def test_missing_caption_or_image_key():
    with pytest.raises(ValueError, match="Record 1: needs an .image. and a .caption."):
        sources.from_records([{"image": _pixels(4, 4, 0), "caption": "ok"}, {"image": "x.png"}])
    with pytest.raises(ValueError, match="needs an 'image' and a 'caption'"):
        sources.from_records([{"caption": "no image"}])


def test_missing_caption_in_jsonl_and_csv(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"image": "a.png", "text": "wrong key"}) + "\n")
    with pytest.raises(ValueError, match="'caption'"):
        sources.from_jsonl(path)
    path.write_text('{"image": "a.png", "caption": \n')
    with pytest.raises(ValueError, match="data.jsonl:1 is not valid JSON"):
        sources.from_jsonl(path)
    path = tmp_path / "data.csv"
    path.write_text("image,text\na.png,wrong column\n")
    with pytest.raises(ValueError, match="'caption'"):
        sources.from_csv(path)


@pytest.mark.parametrize(
    "regions, message",
    [
        ([{"box": [0.1, 0.2, 1.5, 0.9], "text": "too big"}], r"in \[0, 1\]"),
        ([{"box": [-0.1, 0.2, 0.5, 0.9], "text": "negative"}], r"in \[0, 1\]"),
        ([{"box": [float("nan"), 0.2, 0.5, 0.9], "text": "nan"}], r"in \[0, 1\]"),
        ([{"box": [0.1, 0.2, 0.5], "text": "three numbers"}], "Regions must be"),
        ([{"box": [0.1, 0.2, 0.5, 0.9]}], "Regions must be"),
        ([{"text": "no box"}], "Regions must be"),
    ],
)
def test_bad_regions_fail_when_the_reader_is_made(regions, message, tmp_path):
    good = {"image": _pixels(4, 4, 0), "caption": "fine"}
    bad = {"image": _pixels(4, 4, 1), "caption": "bad", "regions": regions}
    # A ValueError now, naming the record, not a TF error when the epoch reaches it.
    with pytest.raises(ValueError, match=message) as error:
        sources.from_records([good, bad])
    assert "Record 1" in str(error.value)
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps({"image": "a.png", "caption": "x", "regions": regions}))
    with pytest.raises(ValueError, match=message):
        sources.from_jsonl(path)
    with pytest.raises(ValueError, match=message):
        sources.write_tfrecord(tmp_path / "x.tfrecord", [{**bad, "image": b"\x89PNG"}])


def test_empty_folder_and_unknown_sources(tmp_path):
    with pytest.raises(ValueError, match="No captioned images"):
        sources.image_text_source(tmp_path)
    (tmp_path / "lonely.png").write_bytes(b"")  # an image without a caption file
    with pytest.raises(ValueError, match="No captioned images"):
        sources.from_directory(tmp_path)
    with pytest.raises(ValueError, match="is not a directory"):
        sources.from_directory(tmp_path / "missing")
    unknown = tmp_path / "data.parquet"
    unknown.write_bytes(b"PAR1")
    with pytest.raises(ValueError, match=r"Cannot read .*data.parquet.*\.jsonl, \.csv or \.tfrecord"):
        sources.image_text_source(unknown)
    with pytest.raises(ValueError, match="Cannot read"):
        sources.image_text_source(tmp_path / "missing.jsonl")


def test_dataset_passes_through_and_records_list():
    dataset = tf.data.Dataset.from_tensors({"caption": tf.constant("x")})
    assert sources.image_text_source(dataset) is dataset
    examples = _read(sources.image_text_source([{"image": _pixels(3, 3, 0), "caption": "x"}]))
    assert len(examples) == 1 and examples[0]["caption"] == b"x"
