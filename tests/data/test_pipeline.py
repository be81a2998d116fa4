"""`training_batches`: shapes, the documented LocCa sequence layout (decoded by
hand), determinism, mixed NaFlex lengths and the parallel-captioning rate."""

import numpy as np
import pytest

from keras_siglip2.data.pipeline import training_batches
from keras_siglip2.data.sources import from_arrays
from keras_siglip2.preprocessing.boxes import boxes_to_tokens
from keras_siglip2.preprocessing.locca_sequences import BOS_ID, EOS_ID, PAD_ID
from tests.training.helpers import COORDINATE_BINS, SEQUENCE_LENGTH, tiny_model

L = SEQUENCE_LENGTH
LONG = (
    "ein roter kreis auf einem gestreiften hintergrund und ein kleiner blauer stern "
    "neben einem grossen gelben dreieck"
)


def _raw(count, seed=0, regions=True):
    """`count` examples of different sizes; every 4th has no regions, every 5th a
    caption and a region text longer than the sequence."""
    rng = np.random.default_rng(seed)
    images, captions, all_regions = [], [], []
    for i in range(count):
        height, width = rng.integers(12, 80, size=2)
        images.append(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        captions.append(LONG if i % 5 == 4 else f"a red circle number {i}")
        if not regions or i % 4 == 3:
            all_regions.append([])
            continue
        found = []
        for r in range(1 + i % 3):
            y0, x0 = rng.uniform(0, 0.5, 2)
            y1, x1 = rng.uniform(0.5, 1.0, 2)
            text = LONG if i % 5 == 4 and r == 0 else f"shape {i} {r}"
            found.append({"box": [y0, x0, y1, x1], "text": text})
        all_regions.append(found)
    return from_arrays(images, captions, all_regions), captions, all_regions


@pytest.fixture(scope="module")
def fixed_model():
    return tiny_model(seed=None)


@pytest.fixture(scope="module")
def naflex_model():
    return tiny_model(naflex=True, seed=None)


def _batches(dataset):
    return [{k: np.array(v) for k, v in batch.items()} for batch in dataset]


def _content(ids):
    """Tokenizer output → tokens before EOS."""
    ids = [int(i) for i in ids if i != PAD_ID]
    assert ids[-1] == EOS_ID
    return ids[:-1]


def _unpad(row):
    row = [int(x) for x in row]
    while row and row[-1] == PAD_ID:
        row.pop()
    return row


@pytest.mark.backends
def test_shapes_and_dtypes(fixed_model, naflex_model):
    raw, _, _ = _raw(16)
    batch = fixed_batch = _batches(training_batches(raw, fixed_model, 8, seed=0).take(1))[0]
    assert batch["images"].shape == (8, 32, 32, 3) and batch["images"].dtype == np.float32
    assert -1.0 <= batch["images"].min() and batch["images"].max() <= 1.0
    assert batch["token_ids"].shape == (8, L) and batch["token_ids"].dtype == np.int32
    for task in ("captioning", "referring", "grounded"):
        for part, dtype in (("inputs", np.int32), ("targets", np.int32), ("weights", np.float32)):
            value = batch[f"{task}_{part}"]
            assert value.shape == (8, L) and value.dtype == dtype, (task, part)
    assert batch["captioning_parallel"].shape == (8,)
    assert batch["captioning_parallel"].dtype == bool

    batch = _batches(training_batches(raw, naflex_model, 8, seed=0).take(1))[0]
    assert batch["patches"].shape == (8, 16, 8 * 8 * 3) and batch["patches"].dtype == np.float32
    assert batch["patch_mask"].shape == (8, 16) and batch["patch_mask"].dtype == bool
    assert batch["spatial_shapes"].shape == (8, 2) and batch["spatial_shapes"].dtype == np.int32

    plain = _batches(training_batches(raw, fixed_model, 8, seed=0, locca=False).take(1))[0]
    assert sorted(plain) == ["images", "token_ids"]
    # The model trains on them as they come.
    fixed_model.compile()
    logs = fixed_model.train_on_batch(fixed_batch, return_dict=True)
    assert np.isfinite(logs["loss"]) and logs["localization_loss"] > 0


def test_locca_layout_decoded_by_hand(fixed_model):
    count = 16
    raw, captions, regions = _raw(count)
    tokenizer = fixed_model.preprocessor.tokenizer
    offset = fixed_model.backbone.text_encoder.vocabulary_size
    batches = _batches(training_batches(raw, fixed_model, 8, seed=3, shuffle_buffer=0))
    rows = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    assert len(rows["token_ids"]) == count  # no shuffle: record order

    for i in range(count):
        caption = _content(tokenizer([captions[i]])[0])
        np.testing.assert_array_equal(rows["token_ids"][i], tokenizer([captions[i]])[0])

        # captioning: [BOS] caption [EOS]; loss on caption + EOS.
        assert _unpad(rows["captioning_inputs"][i]) == [BOS_ID] + caption
        assert _unpad(rows["captioning_targets"][i]) == caption + [EOS_ID]
        weights = rows["captioning_weights"][i]
        np.testing.assert_array_equal(weights, np.arange(L) < len(caption) + 1)

        referring = _unpad(rows["referring_targets"][i])
        grounded = _unpad(rows["grounded_targets"][i])
        if not regions[i]:
            assert not rows["referring_weights"][i].any()
            assert not rows["grounded_weights"][i].any()
            continue
        # referring: [BOS] text [EOS] box [EOS]; loss on box + EOS only.
        box = referring[-5:-1]
        assert referring[-1] == EOS_ID
        assert all(offset <= t < offset + COORDINATE_BINS for t in box), referring
        text = referring[:-6]
        assert referring[-6] == EOS_ID
        assert _unpad(rows["referring_inputs"][i]) == [BOS_ID] + referring[:-1]
        weights = rows["referring_weights"][i]
        expected = np.zeros(L)
        expected[len(referring) - 5 : len(referring)] = 1
        np.testing.assert_array_equal(weights, expected)
        # The drawn region: its box and its (possibly truncated) text.
        matches = [
            r for r in regions[i]
            if list(boxes_to_tokens(np.array(r["box"], np.float32), offset, COORDINATE_BINS)) == box
        ]
        assert matches, (box, regions[i])
        region_text = _content(tokenizer([matches[0]["text"]])[0])
        assert text == region_text[: L - 6]
        # grounded: [BOS] box text [EOS]; loss on text + EOS only.
        assert grounded[:4] == box and grounded[-1] == EOS_ID
        assert grounded[4:-1] == region_text[: L - 5]
        assert _unpad(rows["grounded_inputs"][i]) == [BOS_ID] + grounded[:-1]
        weights = rows["grounded_weights"][i]
        expected = np.zeros(L)
        expected[4 : len(grounded)] = 1
        np.testing.assert_array_equal(weights, expected)
    # The long texts were really truncated (and still end with box + EOS).
    assert len(_content(tokenizer([LONG])[0])) > L - 6


def test_region_choice_covers_all_regions(fixed_model):
    """The drawn region varies with the example (not always the first one)."""
    offset = fixed_model.backbone.text_encoder.vocabulary_size
    images = [np.full((20, 20, 3), i, np.uint8) for i in range(64)]
    boxes = [[0.0, 0.0, 0.5, 0.5], [0.5, 0.5, 1.0, 1.0], [0.0, 0.5, 0.5, 1.0]]
    regions = [[{"box": b, "text": f"r{k}"} for k, b in enumerate(boxes)]] * 64
    raw = from_arrays(images, ["x"] * 64, regions)
    rows = np.concatenate(
        [b["referring_targets"] for b in _batches(training_batches(raw, fixed_model, 8, seed=0))]
    )
    chosen = {tuple(row[row >= offset]) for row in rows}
    assert chosen == {tuple(boxes_to_tokens(np.array(b), offset, COORDINATE_BINS)) for b in boxes}


def test_deterministic_per_seed(fixed_model):
    raw, _, _ = _raw(48)

    def stream(seed):
        return _batches(training_batches(raw, fixed_model, 8, seed=seed, shuffle_buffer=16))

    first, again, other = stream(0), stream(0), stream(1)
    assert len(first) == len(again) == len(other) == 6
    for a, b in zip(first, again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    order = lambda batches: [tuple(row) for b in batches for row in b["token_ids"]]  # noqa: E731
    assert order(first) != order(other)
    assert sorted(order(first)) == sorted(order(other))  # same examples, another order
    parallel = lambda batches: np.concatenate([b["captioning_parallel"] for b in batches])  # noqa: E731
    assert (parallel(first) != parallel(other)).any()


def test_naflex_mixed_lengths(naflex_model):
    raw, _, _ = _raw(64)
    batches = _batches(training_batches(raw, naflex_model, 4, seed=0, max_num_patches=[16, 32]))
    lengths = [b["patches"].shape[1] for b in batches]
    assert set(lengths) == {16, 32}, lengths
    assert len(batches) >= 12  # at most one partial group per length is dropped
    used_more_than_16 = False
    for batch in batches:
        n = batch["patches"].shape[1]
        assert batch["patch_mask"].shape == (4, n)
        counts = batch["patch_mask"].sum(1)
        np.testing.assert_array_equal(counts, batch["spatial_shapes"].prod(1))
        assert (counts <= n).all() and (counts > 0).all()
        # Padding rows are zero; a batch's images really use its length.
        assert not batch["patches"][~batch["patch_mask"]].any()
        used_more_than_16 |= n == 32 and (counts > 16).any()
    assert used_more_than_16


def test_fixed_resolution_rejects_max_num_patches(fixed_model):
    raw, _, _ = _raw(8)
    with pytest.raises(ValueError, match="NaFlex"):
        training_batches(raw, fixed_model, 8, max_num_patches=[16, 32])


def test_parallel_captioning_fraction(fixed_model):
    raw, _, _ = _raw(400, regions=False)

    def fraction(value=0.5, seed=0):
        batches = _batches(
            training_batches(raw, fixed_model, 50, seed=seed, parallel_fraction=value)
        )
        return np.concatenate([b["captioning_parallel"] for b in batches]).mean()

    assert 0.42 <= fraction() <= 0.58
    assert 0.42 <= fraction(seed=1) <= 0.58
    assert fraction(0.0) == 0.0 and fraction(1.0) == 1.0


@pytest.mark.slow
def test_naflex_mixed_lengths_train_with_fit():
    """`fit` takes the mixed-length stream as it comes (one compile per length)."""
    model = tiny_model(naflex=True, seed=0)
    raw, _, _ = _raw(32)
    batches = training_batches(raw.repeat(), model, 4, seed=0, max_num_patches=[16, 32])
    model.compile()
    history = model.fit(batches, steps_per_epoch=8, epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][-1])
    assert history.history["localization_loss"][-1] > 0
