"""The LocCa decoder's memory positions: patch centres, Fourier features, and
that the decoder really uses them."""

import numpy as np
import pytest
from keras import ops

from keras_siglip2.models.heads import LocCaDecoder, fourier_features, patch_centres

pytestmark = pytest.mark.backends


def test_patch_centres_are_row_major_cell_centres():
    # A 2×3 grid in 8 tokens: 6 real patches, then 2 padding tokens.
    centres = ops.convert_to_numpy(patch_centres(8, np.array([[2, 3], [1, 1]])))
    assert centres.shape == (2, 8, 2)
    expected = [[y, x] for y in (0.25, 0.75) for x in (1 / 6, 0.5, 5 / 6)]
    np.testing.assert_allclose(centres[0, :6], expected, rtol=1e-6)
    assert (centres[0, 6:].max(-1) > 1).all()  # padding lies outside the image
    np.testing.assert_allclose(centres[1, 0], [0.5, 0.5])


def test_fourier_features_match_numpy():
    positions = np.random.default_rng(0).uniform(size=(3, 5, 2)).astype("float32")
    features = ops.convert_to_numpy(fourier_features(positions, 4))
    angles = np.pi * positions[..., :, None] * 2.0 ** np.arange(4)  # (3, 5, 2, 4)
    angles = angles.reshape(3, 5, 8)
    np.testing.assert_allclose(
        features, np.concatenate([np.sin(angles), np.cos(angles)], -1), atol=1e-5
    )


def _decoder(memory_positions):
    decoder = LocCaDecoder(
        text_vocabulary_size=50, sequence_length=6, hidden_dim=16, num_layers=1,
        num_heads=2, intermediate_dim=32, num_coordinate_bins=8,
        memory_positions=memory_positions,
    )
    decoder.build((None, 6), (None, None, 12))
    return decoder


def test_decoder_output_depends_on_where_the_image_tokens_are():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 58, (2, 6)).astype("int32")
    memory = rng.normal(size=(2, 4, 12)).astype("float32")
    tasks = np.ones(2, "int32")
    decoder = _decoder(True)
    here = patch_centres(4, np.array([[2, 2], [2, 2]]))
    there = patch_centres(4, np.array([[1, 4], [4, 1]]))  # same tokens, other layout
    a = ops.convert_to_numpy(decoder(tokens, memory, None, tasks, image_positions=here))
    b = ops.convert_to_numpy(decoder(tokens, memory, None, tasks, image_positions=there))
    assert np.abs(a - b).max() > 1e-3
    with pytest.raises(ValueError, match="image_positions"):
        decoder(tokens, memory, None, tasks)
    # Without memory positions the layout cannot matter.
    plain = _decoder(False)
    np.testing.assert_allclose(
        ops.convert_to_numpy(plain(tokens, memory, None, tasks, image_positions=here)),
        ops.convert_to_numpy(plain(tokens, memory, None, tasks, image_positions=there)),
    )


def test_coordinate_tokens_start_ordered():
    decoder = LocCaDecoder(
        text_vocabulary_size=50, sequence_length=6, hidden_dim=64, num_layers=1,
        num_heads=2, intermediate_dim=32, num_coordinate_bins=100,
    )
    decoder.build((None, 6), (None, None, 12))
    table = ops.convert_to_numpy(decoder.token_embeddings)
    rows = table[50:] / np.linalg.norm(table[50:], axis=-1, keepdims=True)
    cosine = rows @ rows.T
    near = np.mean([cosine[i, i + 1] for i in range(99)])  # σ = 3 bins: exp(-1/36)
    far = np.mean(np.abs([cosine[i, i + 50] for i in range(50)]))
    assert near > 0.9 and far < 0.2, (near, far)
    # Same scale as the text rows, which keep their random init.
    assert np.linalg.norm(table[50:], axis=-1).mean() == pytest.approx(
        np.linalg.norm(table[:50], axis=-1).mean(), rel=0.2
    )


@pytest.mark.parametrize("with_mask", [False, True])
def test_sequences_sharing_an_image_equal_separate_calls(with_mask):
    """`(B, K, T)` token ids (the three training tasks, which share each
    image's keys and values) give what K separate `(B, T)` calls give, with
    their own task ids and parallel flags."""
    rng = np.random.default_rng(1)
    decoder = _decoder(True)
    tokens = rng.integers(0, 58, (2, 3, 6)).astype("int32")
    memory = rng.normal(size=(2, 4, 12)).astype("float32")
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0]], bool) if with_mask else None
    positions = patch_centres(4, np.array([[2, 2], [1, 2]]))
    tasks = np.tile(np.arange(3, dtype="int32"), (2, 1))
    parallel = np.array([[True, False, False], [False, False, False]])
    together = ops.convert_to_numpy(
        decoder(tokens, memory, mask, tasks, parallel, image_positions=positions)
    )
    assert together.shape == (2, 3, 6, 16)
    for k in range(3):
        alone = decoder(tokens[:, k], memory, mask, tasks[:, k], parallel[:, k],
                        image_positions=positions)
        np.testing.assert_allclose(together[:, k], ops.convert_to_numpy(alone), atol=1e-5)
