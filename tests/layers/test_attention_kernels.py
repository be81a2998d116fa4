"""The attention kernel is chosen by us, per call, from shapes, dtype, mask and
training mode; JAX's own cuDNN checks are plain Python on shapes, so the
decision is tested here on CPU with a stated cuDNN version and GPU."""

import logging

import keras
import numpy as np
import pytest

from keras_siglip2.layers import attention_kernels
from keras_siglip2.layers.attention_kernels import CudnnDevice, choose_kernel

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="the kernel choice is JAX's (other backends: Keras)"
)

HOPPER = CudnnDevice(cudnn_version=91000, compute_capability=(9, 0))
AMPERE = CudnnDevice(cudnn_version=90100, compute_capability=(8, 0))
TURING = CudnnDevice(cudnn_version=91000, compute_capability=(7, 5))


def shapes(batch, queries, keys, heads=12, head_dim=64):
    return (batch, queries, heads, head_dim), (batch, keys, heads, head_dim)


@pytest.mark.parametrize(
    "case, query_keys, dtype, mask, training, device, expected",
    [
        ("image tower B/16@224", (196, 196), "bfloat16", "none", True, HOPPER, "cudnn"),
        ("NaFlex tower, padded keys", (256, 256), "bfloat16", "padding", True, HOPPER, "cudnn"),
        ("text tower", (64, 64), "bfloat16", "none", True, AMPERE, "cudnn"),
        ("decoder cross-attention, 3 tasks", (192, 196), "bfloat16", "padding", True, HOPPER, "cudnn"),
        ("float16 inference", (196, 196), "float16", "none", False, HOPPER, "cudnn"),
        ("MAP probe (1 query)", (1, 196), "bfloat16", "padding", True, HOPPER, "xla"),
        ("6×6-patch local crops", (36, 36), "bfloat16", "none", True, HOPPER, "xla"),
        ("decoder self-attention (causal | parallel)", (64, 64), "bfloat16", "general", True, HOPPER, "xla"),
        ("float32", (196, 196), "float32", "none", True, HOPPER, "xla"),
        ("pre-Ampere GPU", (196, 196), "bfloat16", "none", True, TURING, "xla"),
        ("no GPU", (196, 196), "bfloat16", "none", True, None, "xla"),
    ],
)
def test_kernel_choice(case, query_keys, dtype, mask, training, device, expected):
    query, key = shapes(8, *query_keys)
    kernel, reason = choose_kernel(query, key, dtype, mask, training, device)
    assert kernel == expected, (case, reason)
    assert reason


def test_head_dim_limit_follows_jax_check():
    # JAX allows head dims up to 128 off Hopper (this CPU reports no Hopper) and
    # only multiples of 8: So400m's 72 passes, 260 and 100 do not.
    query, key = shapes(4, 256, 256, heads=16, head_dim=72)
    assert choose_kernel(query, key, "bfloat16", "none", True, HOPPER)[0] == "cudnn"
    for head_dim in (260, 100):
        query, key = shapes(4, 256, 256, heads=4, head_dim=head_dim)
        kernel, reason = choose_kernel(query, key, "bfloat16", "none", True, HOPPER)
        assert kernel == "xla" and "head dim" in reason


def test_forcing_a_kernel():
    query, key = shapes(8, 196, 196)
    assert choose_kernel(query, key, "bfloat16", "none", True, HOPPER, setting="xla")[0] == "xla"
    # Forced cuDNN takes small shapes the automatic choice leaves to XLA …
    small_query, small_key = shapes(8, 36, 36)
    assert choose_kernel(
        small_query, small_key, "bfloat16", "none", True, HOPPER, setting="cudnn"
    )[0] == "cudnn"
    # … and says why where cuDNN cannot run.
    with pytest.raises(ValueError, match="float32"):
        choose_kernel(query, key, "float32", "none", True, HOPPER, setting="cudnn")
    with pytest.raises(ValueError, match="general mask"):
        choose_kernel(query, key, "bfloat16", "general", True, HOPPER, setting="cudnn")
    with pytest.raises(ValueError, match="must be one of"):
        choose_kernel(query, key, "bfloat16", "none", True, HOPPER, setting="flash")


def test_setting_from_environment(monkeypatch):
    monkeypatch.setattr(attention_kernels, "_setting", None)
    monkeypatch.setenv(attention_kernels.ENVIRONMENT_VARIABLE, "XLA")
    assert attention_kernels.attention_kernel_setting() == "xla"
    monkeypatch.setenv(attention_kernels.ENVIRONMENT_VARIABLE, "fastest")
    with pytest.raises(ValueError, match="KERAS_SIGLIP2_ATTENTION"):
        attention_kernels.attention_kernel_setting()
    attention_kernels.set_attention_kernel("cudnn")
    assert attention_kernels.attention_kernel_setting() == "cudnn"
    with pytest.raises(ValueError):
        attention_kernels.set_attention_kernel("flash")


def test_cpu_has_no_cudnn_device():
    assert attention_kernels.local_cudnn_device() is None


def test_the_cudnn_call_arguments_mean_the_same_as_the_mask(rng):
    """The cuDNN path passes a key padding mask as key lengths; through JAX's
    XLA implementation those arguments give exactly what the mask gives."""
    import jax

    query = rng.normal(size=(3, 5, 2, 8)).astype("float32")
    key = rng.normal(size=(3, 7, 2, 8)).astype("float32")
    value = rng.normal(size=(3, 7, 2, 8)).astype("float32")
    lengths = np.array([7, 4, 1], "int32")
    key_mask = np.arange(7)[None] < lengths[:, None]
    ours = attention_kernels.dot_product_attention(query, key, value, 0.3, key_mask=key_mask)
    as_lengths = jax.nn.dot_product_attention(
        query, key, value, scale=0.3, key_value_seq_lengths=lengths, implementation="xla"
    )
    np.testing.assert_allclose(np.asarray(ours), np.asarray(as_lengths), atol=1e-6)
    # And the masked keys really are ignored.
    key[1, 4:] = 100.0
    changed = attention_kernels.dot_product_attention(query, key, value, 0.3, key_mask=key_mask)
    np.testing.assert_allclose(np.asarray(changed), np.asarray(ours), atol=1e-6)


def test_five_loss_step_routes_every_attention_call(monkeypatch, caplog):
    """The whole five-loss training step under mixed_bfloat16 on a (pretended)
    Hopper GPU: every attention call gets a kernel JAX accepts — cuDNN for
    the towers and the decoder's cross-attention, XLA for the MAP probes, the
    small local crops and the decoder's mixed causal/parallel self-attention —
    and nothing is logged. The cuDNN calls run through JAX's XLA kernel here."""
    import collections

    import jax

    from keras_siglip2.data import demo_dataset
    from keras_siglip2.data.pipeline import training_batches
    from tests.training.helpers import TINY_SELF_SUPERVISED, first_batch, tiny_model

    calls = collections.Counter()
    original = jax.nn.dot_product_attention

    def recording(query, key, value, **kwargs):
        general = kwargs.get("mask") is not None and kwargs["mask"].shape[2] > 1
        calls[(kwargs["implementation"], query.shape[1], key.shape[1], general)] += 1
        return original(query, key, value, **{**kwargs, "implementation": "xla"})

    monkeypatch.setattr(jax.nn, "dot_product_attention", recording)
    monkeypatch.setattr(attention_kernels, "local_cudnn_device", lambda: HOPPER)
    monkeypatch.setattr(attention_kernels, "MIN_CUDNN_SCORES", 16 * 16)  # tiny model sizes
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = tiny_model(naflex=True, self_supervised=TINY_SELF_SUPERVISED)
    batch = first_batch(training_batches(demo_dataset(8, seed=0), model, 4, seed=0))
    model.compile(self_supervised_start=0)
    with caplog.at_level(logging.WARNING):
        model.train_on_batch(batch)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    kernels = {call[1:]: call[0] for call in calls}
    assert len(kernels) == len(calls), calls  # one kernel per kind of call
    patches, length = 16, 16  # the tiny NaFlex tower and text length
    assert kernels[(patches, patches, False)] == "cudnn"  # towers, teacher, masked view
    assert kernels[(length, length, True)] == "xla"  # decoder self-attention: general mask
    assert kernels[(3 * length, patches, False)] == "cudnn"  # cross-attention, 3 tasks
    assert kernels[(1, patches, False)] == "xla"  # MAP probe
    assert kernels[(4, 4, False)] == "xla"  # 2×2-patch local crops
