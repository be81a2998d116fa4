"""Every public layer of `keras_siglip2.layers` (and the two layers of
`keras_siglip2.models`: the LocCa decoder and the prototype head) passes the
shared checks of `tests/harness.py`: config round trip, `.keras` file round
trip, mixed precision."""

import functools

import numpy as np
import pytest

from keras_siglip2.layers.attention import MultiHeadAttention
from keras_siglip2.layers.embeddings import (
    LearnedPositionEmbedding,
    NaFlexPositionEmbedding,
    PatchEmbedding,
    TextEmbedding,
)
from keras_siglip2.layers.pooling import MAPHead
from keras_siglip2.layers.projections import Dense, EinsumDense
from keras_siglip2.layers.similarity import SigmoidLogitHead
from keras_siglip2.layers.transformer import MLP, TransformerDecoderBlock, TransformerEncoderBlock
from keras_siglip2.models.heads import LocCaDecoder
from keras_siglip2.models.self_supervised import PrototypeHead
from tests import harness

_rng = np.random.default_rng(0)


def _floats(*shape):
    return _rng.normal(size=shape).astype("float32")


def _key_mask(batch, length, valid):
    """`(batch, length)` bool: the first `valid[i]` keys of row i are real."""
    return np.arange(length)[None, :] < np.asarray(valid)[:, None]


CAUSAL_6 = np.tril(np.ones((6, 6), bool))[None, None]
_Case = harness.Case
CASES = [
    _Case("attention_self", functools.partial(MultiHeadAttention, num_heads=2),
          (_floats(2, 5, 16),), {"key_mask": _key_mask(2, 5, [5, 3])}),
    _Case("attention_cross_causal", functools.partial(MultiHeadAttention, num_heads=2),
          (_floats(2, 6, 16), _floats(2, 6, 12)), {"attention_mask": CAUSAL_6}),
    _Case("patch_embedding_images", functools.partial(PatchEmbedding, 16, 4),
          (_floats(2, 8, 12, 3),)),
    _Case("patch_embedding_patches", functools.partial(PatchEmbedding, 16, 4),
          (_floats(2, 5, 48),)),
    _Case("learned_position_embedding", functools.partial(LearnedPositionEmbedding, 5),
          (_floats(2, 5, 16),)),
    _Case("naflex_position_embedding", functools.partial(NaFlexPositionEmbedding, 4),
          (_floats(3, 8, 16), np.array([[2, 3], [1, 8], [4, 2]], "int32"))),
    _Case("text_embedding", functools.partial(TextEmbedding, 50, 6, 16),
          (_rng.integers(0, 50, (2, 6)).astype("int32"),)),
    _Case("map_head", functools.partial(MAPHead, num_heads=2, intermediate_dim=32),
          (_floats(2, 5, 16),), {"key_mask": _key_mask(2, 5, [5, 2])}),
    # Always float32: the logit scale must never be rounded to bfloat16.
    _Case("sigmoid_logit_head", SigmoidLogitHead, (_floats(3, 16), _floats(4, 16)),
          float32_outputs=True, float32_layers=(SigmoidLogitHead,)),
    _Case("dense", functools.partial(Dense, 8), (_floats(2, 5, 16),)),
    _Case("einsum_dense_heads",
          functools.partial(EinsumDense, "btd,dnh->btnh", output_shape=(None, 2, 4),
                            bias_axes="nh"),
          (_floats(2, 5, 16),)),
    _Case("einsum_dense_merge",
          functools.partial(EinsumDense, "btnh,nhd->btd", output_shape=(None, 16), bias_axes="d"),
          (_floats(2, 5, 2, 4),)),
    _Case("mlp", functools.partial(MLP, 32), (_floats(2, 5, 16),)),
    _Case("encoder_block", functools.partial(TransformerEncoderBlock, 2, 32),
          (_floats(2, 5, 16),), {"key_mask": _key_mask(2, 5, [5, 4])}),
    _Case("encoder_block_remat", functools.partial(TransformerEncoderBlock, 2, 32, remat="block"),
          (_floats(2, 5, 16),)),
    _Case("decoder_block", functools.partial(TransformerDecoderBlock, 2, 32),
          (_floats(2, 6, 16), _floats(2, 5, 12), _key_mask(2, 5, [5, 3]), CAUSAL_6)),
    _Case("locca_decoder",
          functools.partial(LocCaDecoder, text_vocabulary_size=50, sequence_length=6,
                            hidden_dim=16, num_layers=1, num_heads=2, intermediate_dim=32,
                            num_coordinate_bins=8),
          (_rng.integers(0, 58, (2, 3, 6)).astype("int32"), _floats(2, 4, 12),
           _key_mask(2, 4, [4, 2]), np.tile(np.arange(3, dtype="int32"), (2, 1)),
           np.array([[True, False, False], [False, False, False]])),
          {"image_positions": _rng.uniform(size=(2, 4, 2)).astype("float32")}),
    # The prototype scores are cosines, computed in float32.
    _Case("prototype_head",
          functools.partial(PrototypeHead, 8, hidden_dim=16, bottleneck_dim=8, num_layers=2),
          (_floats(2, 5, 16),), float32_outputs=True),
]


@pytest.mark.backends
@pytest.mark.parametrize("check", harness.CHECKS, ids=harness.check_id)
@pytest.mark.parametrize("case", CASES, ids=harness.case_id)
def test_layer_passes_the_common_checks(case, check, tmp_path):
    check(case, tmp_path)
