"""Bad training data fails when the reader or the pipeline is made, with the
file and line (or record) and what is wrong — never silently (inverted boxes,
a null caption trained as "None") and never as a TF error mid-epoch."""

import json

import numpy as np
import pytest

from keras_siglip2.data import sources, training_batches
from tests.training.helpers import tiny_model

PIXELS = np.zeros((4, 4, 3), np.uint8)
GOOD = {"image": "a.png", "caption": "a red circle"}
BOX = [0.1, 0.2, 0.5, 0.9]

BAD_RECORDS = [
    ("inverted-y", {**GOOD, "regions": [{"box": [0.5, 0.2, 0.1, 0.9], "text": "x"}]}, ValueError, "ymin ≤ ymax"),
    ("inverted-x", {**GOOD, "regions": [{"box": [0.1, 0.9, 0.5, 0.2], "text": "x"}]}, ValueError, "xmin ≤ xmax"),
    ("null-caption", {"image": "a.png", "caption": None}, TypeError, "'caption' must be a string; got null"),
    ("number-caption", {"image": "a.png", "caption": 5}, TypeError, "'caption' must be a string; got int"),
    ("null-image", {"image": None, "caption": "x"}, TypeError, "'image' is null"),
    ("number-image", {"image": 5, "caption": "x"}, TypeError, "single number 5"),
    ("null-region-text", {**GOOD, "regions": [{"box": BOX, "text": None}]}, ValueError, "Regions must be"),
    ("not-an-object", [1, 2], TypeError, "must be a dict/JSON object; got list"),
    ("a-string", "a.png", TypeError, "must be a dict/JSON object; got str"),
]


@pytest.mark.parametrize("record, error, message", [c[1:] for c in BAD_RECORDS], ids=[c[0] for c in BAD_RECORDS])
def test_bad_jsonl_lines_name_the_file_and_line(record, error, message, tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text(json.dumps(GOOD) + "\n\n" + json.dumps(record) + "\n")
    with pytest.raises(error, match=f"data.jsonl:3: .*{message}"):
        sources.from_jsonl(path)


@pytest.mark.parametrize(
    "record, error, message",
    [c[1:] for c in BAD_RECORDS if isinstance(c[1], dict) and c[0] != "number-image"],
    ids=[c[0] for c in BAD_RECORDS if isinstance(c[1], dict) and c[0] != "number-image"],
)
def test_bad_records_name_the_record(record, error, message):
    with pytest.raises(error, match=f"Record 1: .*{message}"):
        sources.from_records([GOOD, record])


@pytest.mark.parametrize(
    "row, message",
    [
        ('a.png,x,"[{""box"": [0.5, 0.2, 0.1, 0.9], ""text"": ""y""}]"', "ymin ≤ ymax"),
        ('a.png,x,"[{""box"": [1.5, 0.2, 0.1, 0.9], ""text"": ""y""}]"', r"in \[0, 1\]"),
        ("a.png,x,[not json", "'regions' is not valid JSON"),
        ("a.png", "'caption' must be a string; got null"),
    ],
    ids=["inverted-box", "box-out-of-range", "regions-not-json", "missing-caption"],
)
def test_bad_csv_rows_name_the_file_and_row(row, message, tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("image,caption,regions\na.png,fine,\n" + row + "\n")
    with pytest.raises((TypeError, ValueError), match=f"data.csv:3: .*{message}"):
        sources.from_csv(path)


def test_bad_pixels_fail_when_the_reader_is_made():
    with pytest.raises(ValueError, match="Record 1: .*zero-size side"):
        sources.from_arrays([PIXELS, np.zeros((0, 4, 3), np.uint8)], ["a", "b"])
    with pytest.raises(ValueError, match="Record 0: .*far outside"):
        sources.from_arrays([np.full((4, 4, 3), 1000.0)], ["a"])


def test_write_tfrecord_checks_records_the_same_way(tmp_path):
    with pytest.raises(TypeError, match="Record 0: 'caption' must be a string; got null"):
        sources.write_tfrecord(tmp_path / "x.tfrecord", [{"image": b"\x89PNG", "caption": None}])


# ---------------------------------------------------------------- pipeline
@pytest.fixture(scope="module")
def model():
    return tiny_model(naflex=True, seed=0, locca=True)


@pytest.mark.parametrize("batch_size", [0, -2, 2.5, True])
def test_bad_batch_size_is_refused(model, batch_size):
    raw = sources.from_arrays([PIXELS], ["a"])
    with pytest.raises(ValueError, match="`batch_size` must be a positive int"):
        training_batches(raw, model, batch_size)


def test_data_whose_every_image_is_missing_fails_clearly(model, tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(json.dumps({"image": f"gone{i}.png", "caption": "x"}) for i in range(3)))
    raw = sources.from_jsonl(path).repeat()
    with pytest.warns(UserWarning, match="Skipping undecodable image"):
        with pytest.raises(ValueError, match="no usable example.*every image was skipped"):
            training_batches(raw, model, 2)


def test_edge_captions_and_boxes_train(model):
    """Empty and huge captions, a zero-area box and 1×1 images are legitimate."""
    regions = [[{"box": [0.3, 0.3, 0.3, 0.3], "text": "a dot"}], None]
    raw = sources.from_arrays([np.zeros((1, 1, 3), np.uint8), PIXELS], ["", "word " * 5000], regions)
    batch = next(iter(training_batches(raw, model, 2, shuffle_buffer=0)))
    tokenizer = model.preprocessor.tokenizer
    ids = np.asarray(batch["token_ids"])
    assert ids[0, 0] == tokenizer.end_token_id  # empty caption: EOS only
    assert ids[1, -1] == tokenizer.end_token_id and tokenizer.pad_token_id not in ids[1]
    (h, w), mask = np.asarray(batch["spatial_shapes"])[0], np.asarray(batch["patch_mask"])[0]
    assert h == w and mask.sum() == h * w  # a 1×1 image: a square grid, upsampled
    assert np.isfinite(np.asarray(batch["patches"])).all()
