"""Tests of keras_siglip2/preprocessing/boxes.py (LocCa coordinate tokens)."""

import numpy as np
import pytest

from keras_siglip2.preprocessing.boxes import box_iou
from keras_siglip2.preprocessing.boxes import boxes_to_tokens
from keras_siglip2.preprocessing.boxes import coordinate_token_offset
from keras_siglip2.preprocessing.boxes import dequantize_boxes
from keras_siglip2.preprocessing.boxes import is_coordinate_token
from keras_siglip2.preprocessing.boxes import quantize_boxes
from keras_siglip2.preprocessing.boxes import tokens_to_boxes


def _random_boxes(rng, n):
    corners = np.sort(rng.random((n, 2, 2)), axis=1)  # (n, [min, max], [y, x])
    boxes = np.stack([corners[:, 0, 0], corners[:, 0, 1], corners[:, 1, 0], corners[:, 1, 1]], -1)
    boxes[:3] = [[0, 0, 1, 1], [0.0005, 0.001, 0.9995, 0.999], [0.5, 0.25, 0.75, 0.5]]
    return boxes.astype(np.float32)


@pytest.mark.parametrize("num_bins", [1000, 100, 7])
def test_round_trip_within_half_a_bin(num_bins):
    boxes = _random_boxes(np.random.default_rng(0), 500)
    offset = 5000
    tokens = boxes_to_tokens(boxes, offset, num_bins)
    assert tokens.dtype == np.int32 and tokens.shape == boxes.shape
    assert tokens.min() >= offset and tokens.max() <= offset + num_bins - 1
    back = tokens_to_boxes(tokens, offset, num_bins)
    assert back.dtype == np.float32
    assert np.abs(back - boxes).max() <= 0.5 / num_bins + 1e-6
    # Quantising the bin centres again gives the same tokens.
    np.testing.assert_array_equal(boxes_to_tokens(back, offset, num_bins), tokens)


def test_token_range_and_edges():
    offset = coordinate_token_offset(256_000, 1000, append=False)
    assert offset == 255_000
    tokens = boxes_to_tokens(np.array([0.0, 0.0009, 0.001, 1.0]), offset)
    np.testing.assert_array_equal(tokens, [255_000, 255_000, 255_001, 255_999])
    assert coordinate_token_offset(1000, 1000) == 1000  # appended after the text ids
    with pytest.raises(ValueError):
        coordinate_token_offset(500, 1000, append=False)
    # Out-of-range coordinates are clipped, never leave the token range.
    np.testing.assert_array_equal(quantize_boxes(np.array([-0.2, 1.3, 0.5, 0.9999])), [0, 999, 500, 999])
    np.testing.assert_allclose(dequantize_boxes(np.array([0, 999, 500, 1])), [0.0005, 0.9995, 0.5005, 0.0015])
    mask = is_coordinate_token(np.array([999, 1000, 1999, 2000]), 1000)
    np.testing.assert_array_equal(mask, [False, True, True, False])


def test_box_iou():
    a = np.array([[0, 0, 1, 1], [0, 0, 0.5, 0.5], [0, 0, 0.5, 1], [0.2, 0.2, 0.2, 0.4]], np.float32)
    b = np.array([[0, 0, 1, 1], [0.5, 0.5, 1, 1], [0, 0.5, 0.5, 1.5], [0.2, 0.2, 0.2, 0.4]], np.float32)
    np.testing.assert_allclose(box_iou(a, b), [1.0, 0.0, 1.0 / 3.0, 0.0], atol=1e-6)
    pairwise = box_iou(a[:, None], b[None, :])
    assert pairwise.shape == (4, 4)
    np.testing.assert_allclose(pairwise[0, 1], 0.25, atol=1e-6)


def test_tensorflow_graph_mode_matches_numpy():
    tf = pytest.importorskip("tensorflow")
    boxes = _random_boxes(np.random.default_rng(1), 12).reshape(3, 4, 4)
    offset, num_bins = 1000, 1000

    def convert(b):
        tokens = boxes_to_tokens(b, offset, num_bins)
        return {
            "tokens": tokens,
            "boxes": tokens_to_boxes(tokens, offset, num_bins),
            "is_coordinate": is_coordinate_token(tokens, offset, num_bins),
            "iou": box_iou(b, tokens_to_boxes(tokens, offset, num_bins)),
        }

    dataset = tf.data.Dataset.from_tensor_slices(boxes).map(convert)  # traced: graph mode
    for got, b in zip(dataset.as_numpy_iterator(), boxes):
        np.testing.assert_array_equal(got["tokens"], boxes_to_tokens(b, offset, num_bins))
        assert got["tokens"].dtype == np.int32
        np.testing.assert_allclose(got["boxes"], tokens_to_boxes(got["tokens"], offset, num_bins))
        assert got["is_coordinate"].all()
        np.testing.assert_allclose(got["iou"], box_iou(b, got["boxes"]), rtol=1e-6)
        assert got["iou"].min() > 0.9
