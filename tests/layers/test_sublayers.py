"""`call_sublayer` runs a sub-layer's `call` directly, on PyTorch only, where
Keras' `Layer.__call__` would add nothing, and computes what `layer(...)`
computes on every backend (float32, mixed bfloat16, LoRA, int8, decoder)."""

import keras
import numpy as np
import pytest
from keras import ops
from keras.src.backend import AutocastScope

from keras_siglip2.layers import sublayers
from keras_siglip2.layers.projections import Dense
from keras_siglip2.layers.transformer import TransformerDecoderBlock, TransformerEncoderBlock

pytestmark = pytest.mark.backends
ON_TORCH = keras.backend.backend() == "torch"


def random(*shape, seed=0):
    return ops.convert_to_tensor(np.random.default_rng(seed).normal(size=shape).astype("float32"))


def test_passes_through_only_where_call_adds_nothing():
    dense = Dense(4)
    x = random(2, 3)
    assert not sublayers.passes_through(dense, (x,), {})  # not built: __call__ builds it
    dense(x)
    assert sublayers.passes_through(dense, (x,), {}) == ON_TORCH
    assert not sublayers.passes_through(dense, (np.ones((2, 3), "float32"),), {})  # to convert
    assert not sublayers.passes_through(dense, (ops.cast(x, "float16"),), {})  # to cast
    assert not sublayers.passes_through(dense, (keras.KerasTensor((2, 3)),), {})  # symbolic

    mixed = Dense(4, dtype="mixed_bfloat16")
    mixed(x)
    assert not sublayers.passes_through(mixed, (x,), {})  # float32 input to cast
    assert sublayers.passes_through(mixed, (ops.cast(x, "bfloat16"),), {}) == ON_TORCH

    if ON_TORCH:  # a torch forward hook still runs
        seen = []
        handle = dense.register_forward_hook(lambda module, inputs, output: seen.append(output))
        assert not sublayers.passes_through(dense, (x,), {})
        sublayers.call_sublayer(dense, x)
        handle.remove()
        assert len(seen) == 1 and sublayers.passes_through(dense, (x,), {})

    dense.quantize("int8")  # runs Keras' quantized_call, not call
    assert not sublayers.passes_through(dense, (x,), {})


@pytest.mark.parametrize("outer, layer_policy, autocast, expected", [
    (None, "float32", True, None),
    (None, "mixed_bfloat16", True, "bfloat16"),  # reads float32 weights as bfloat16
    ("bfloat16", "mixed_bfloat16", True, "kept"),  # a mixed parent's scope
    ("bfloat16", "mixed_bfloat16", False, None),  # LayerNorm: weights as they are
    ("bfloat16", "float32", True, "float32"),
])
def test_autocast_scope_as_layer_call_sets_it(outer, layer_policy, autocast, expected):
    layer = keras.layers.Dense(2, dtype=layer_policy)
    layer.autocast = autocast
    seen = []
    layer.call = lambda x: seen.append(keras.src.backend.get_autocast_scope()) or x
    layer.build((1, 2))
    x = ops.ones((1, 2), dtype=layer.input_dtype)
    for run in (layer.__call__, lambda x: sublayers.call_sublayer(layer, x)):
        if outer is None:
            run(x)
        else:
            with AutocastScope(outer):
                run(x)
    through_call, direct = seen
    for scope in (through_call, direct):
        dtype = None if scope is None else scope.dtype
        assert dtype == (outer if expected == "kept" else expected)


def encoder_block(variant):
    policy = "mixed_bfloat16" if variant == "mixed_bfloat16" else "float32"
    block = TransformerEncoderBlock(num_heads=2, intermediate_dim=16, dtype=policy)
    x = random(2, 5, 8)
    block(x)
    if variant == "lora":
        block.attention.query.enable_lora(2)
        block.mlp.fc1.enable_lora(2)
        for layer in (block.attention.query, block.mlp.fc1):  # B starts at zero: no effect
            layer.lora_kernel_b.assign(np.full(layer.lora_kernel_b.shape, 0.1, "float32"))
    if variant == "int8":
        block.mlp.fc1.quantize("int8")
    return block, (x,), {"key_mask": ops.convert_to_tensor([[True] * 5, [True] * 3 + [False] * 2])}


def decoder_block(variant):
    block = TransformerDecoderBlock(num_heads=2, intermediate_dim=16)
    x, memory = random(2, 4, 8), random(2, 6, 8, seed=1)
    block(x, memory)
    return block, (x, memory), {"memory_mask": ops.convert_to_tensor([[True] * 6, [True] * 2 + [False] * 4])}


@pytest.mark.parametrize("make, variant", [
    (encoder_block, "float32"), (encoder_block, "mixed_bfloat16"), (encoder_block, "lora"),
    (encoder_block, "int8"), (decoder_block, "float32"),
])
def test_a_block_computes_what_its_layer_calls_compute(make, variant, monkeypatch):
    block, args, kwargs = make(variant)
    decisions = []
    real = sublayers.passes_through

    def recorded(layer, *rest):
        decisions.append(real(layer, *rest))
        return decisions[-1]

    monkeypatch.setattr(sublayers, "passes_through", recorded)
    direct = ops.convert_to_numpy(ops.cast(block(*args, **kwargs), "float32"))
    # Two norms, attention and its four projections, the MLP and its two;
    # the decoder has a second norm and attention.
    assert len(decisions) == (10 if make is encoder_block else 16)
    quantized = 1 if variant == "int8" else 0
    assert sum(decisions) == (len(decisions) - quantized if ON_TORCH else 0)

    monkeypatch.setattr(sublayers, "passes_through", lambda *anything: False)
    through_calls = ops.convert_to_numpy(ops.cast(block(*args, **kwargs), "float32"))
    np.testing.assert_array_equal(direct, through_calls)
