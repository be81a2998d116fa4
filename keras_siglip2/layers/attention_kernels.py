"""Which attention kernel runs each call, chosen by us rather than by a fallback.

On JAX the fused cuDNN flash-attention kernel saves the `(B, heads, T, S)`
score matrix (memory) and time, but it accepts only some shapes, dtypes and
masks, and JAX checks some of them only when the call is differentiated. Left to
Keras (`ops.dot_product_attention(flash_attention=None)`), a refusal is logged
as an error and silently replaced by XLA, or, inside `ops.cond`, escapes as an
exception at differentiation time. So on JAX every call is routed here:
`choose_kernel` decides from the shapes, dtype, mask kind and training mode,
using JAX's own cuDNN checks for both the inference and the training rule, and
the call goes to `jax.nn.dot_product_attention` with that implementation named
explicitly. Nothing is tried and caught.

Masks: a key padding mask `(B, S)` is passed to cuDNN as per-example key
lengths, which is the same thing when the valid keys come first (NaFlex packs
real patches first; its input checks insist on it). A general `(B, 1, T, S)`
mask (the LocCa decoder's mix of causal and parallel sequences) always takes
the XLA kernel.

`set_attention_kernel("xla" | "cudnn" | "auto")` (or the environment variable
`KERAS_SIGLIP2_ATTENTION`) forces a kernel; forcing cuDNN where it cannot run
raises a `ValueError` that says why. On PyTorch the call goes straight to
`torch.nn.functional.scaled_dot_product_attention` on transposed views
(`torch_attention`): Keras' op first copies query, key and value into
contiguous `(B, heads, T, hd)` tensors, three passes PyTorch's kernels do not
need. TensorFlow uses `keras.ops.dot_product_attention` unchanged.
"""

import dataclasses
import functools
import os

import keras
from keras import ops

KERNELS = ("auto", "xla", "cudnn")
ENVIRONMENT_VARIABLE = "KERAS_SIGLIP2_ATTENTION"
# Below this many scores per head (T·S) the score matrix is small enough that
# a flash kernel saves neither memory nor time worth having: the MAP probe
# (T = 1) and 6×6-patch local crops (36 × 36) take XLA.
MIN_CUDNN_SCORES = 64 * 64
_CUDNN_DTYPES = ("bfloat16", "float16")

_setting = None  # set_attention_kernel; None → the environment variable, else "auto"


def set_attention_kernel(kernel):
    """Force the attention kernel for calls traced from now on: "auto" (our
    per-call choice, the default), "xla" or "cudnn" (JAX on an NVIDIA GPU)."""
    global _setting
    if kernel not in KERNELS:
        raise ValueError(f"The attention kernel must be one of {KERNELS}; got {kernel!r}.")
    _setting = kernel


def attention_kernel_setting():
    """The forced kernel: `set_attention_kernel`, else `$KERAS_SIGLIP2_ATTENTION`,
    else "auto"."""
    if _setting is not None:
        return _setting
    kernel = os.environ.get(ENVIRONMENT_VARIABLE, "auto").strip().lower() or "auto"
    if kernel not in KERNELS:
        raise ValueError(
            f"${ENVIRONMENT_VARIABLE}={kernel!r} is not one of {KERNELS}; unset it or "
            "pick one of those."
        )
    return kernel


@dataclasses.dataclass(frozen=True)
class CudnnDevice:
    """What the cuDNN decision needs to know about the GPU."""

    cudnn_version: int  # e.g. 91000 for 9.10.0
    compute_capability: tuple  # e.g. (9, 0)


@functools.lru_cache(maxsize=None)
def local_cudnn_device():
    """The first JAX device as a `CudnnDevice`, or None without a CUDA GPU with cuDNN."""
    if keras.backend.backend() != "jax":
        return None
    import jax

    device = jax.devices()[0]
    capability = getattr(device, "compute_capability", None)
    if device.platform != "gpu" or not capability:
        return None
    try:
        from jax._src.cudnn.fused_attention_stablehlo import check_cudnn_version

        version = int(check_cudnn_version())
    except (ImportError, RuntimeError):
        return None
    return CudnnDevice(version, tuple(int(part) for part in str(capability).split(".")))


def choose_kernel(query_shape, key_shape, dtype, mask="none", training=None, device=None,
                  setting="auto"):
    """`("cudnn" | "xla", reason)` for one attention call.

    `query_shape (B, T, heads, head_dim)`, `key_shape (B, S, heads, head_dim)`;
    `mask`: "none", "padding" (valid keys first, passed as lengths) or
    "general" (any boolean mask); `training`: False when the call is never
    differentiated (None counts as training); `device`: a `CudnnDevice` or
    None (no cuDNN); `setting`: "auto", "xla" or "cudnn" (forced; raises a
    `ValueError` with the reason when cuDNN cannot take the call).
    """
    if setting not in KERNELS:
        raise ValueError(f"The attention kernel must be one of {KERNELS}; got {setting!r}.")
    if setting == "xla":
        return "xla", "forced"
    reason = _cudnn_refusal(query_shape, key_shape, dtype, mask, training, device)
    if reason is None and setting == "auto":
        scores = query_shape[1] * key_shape[1]
        if scores < MIN_CUDNN_SCORES:
            reason = f"T·S = {scores} < {MIN_CUDNN_SCORES} scores per head"
    if reason is None:
        return "cudnn", "accepted by JAX's cuDNN checks"
    if setting == "cudnn":
        raise ValueError(
            f"The cuDNN attention kernel was forced but cannot take query {tuple(query_shape)}, "
            f"key {tuple(key_shape)} {dtype} with mask {mask!r}: {reason}. Use "
            "set_attention_kernel('auto') to let it fall back to XLA where needed."
        )
    return "xla", reason


def _cudnn_refusal(query_shape, key_shape, dtype, mask, training, device):
    """Why cuDNN cannot take this call, or None when it can."""
    if device is None:
        return "no NVIDIA GPU with cuDNN under JAX"
    if keras.backend.standardize_dtype(dtype) not in _CUDNN_DTYPES:
        return f"dtype {keras.backend.standardize_dtype(dtype)} (cuDNN takes bfloat16/float16)"
    if mask == "general":
        return "a general mask (cuDNN takes key lengths or none)"
    if tuple(device.compute_capability) < (8, 0):
        return f"compute capability {device.compute_capability} < 8.0"
    try:
        import jax
        from jax._src.cudnn import fused_attention_stablehlo as cudnn
    except ImportError:
        return "this JAX has no cuDNN attention"
    batch = query_shape[0]
    query = jax.ShapeDtypeStruct(tuple(query_shape), dtype)
    key = jax.ShapeDtypeStruct(tuple(key_shape), dtype)
    lengths = jax.ShapeDtypeStruct((batch,), "int32") if mask == "padding" else None
    layout = cudnn.AttentionLayout.BTNH.value
    try:
        cudnn.check_layout(query, key, key, None, lengths, lengths, None, None, None, None,
                           cudnn.AttentionLayout.BTNH)
        # The inference rule, and the training rule unless the call is never
        # differentiated (JAX applies the latter only when it differentiates).
        for is_training in (False, True) if training is not False else (False,):
            cudnn.check_is_flash_attention(
                query, key, key, layout, device.cudnn_version, has_bias=False,
                is_training=is_training,
            )
    except (NotImplementedError, ValueError, TypeError) as error:
        return str(error)
    return None


def dot_product_attention(query, key, value, scale, key_mask=None, mask=None, training=None):
    """Scaled dot-product attention with the kernel `choose_kernel` picks.

    `query (B, T, heads, hd)`, `key`/`value (B, S, heads, hd)`; `key_mask
    (B, S)` valid keys (first in each row) or None; `mask` a 4-D boolean mask
    broadcastable to `(B, heads, T, S)` or None (not both) → `(B, T, heads, hd)`.
    """
    if keras.backend.backend() == "torch":
        return torch_attention(query, key, value, scale, key_mask=key_mask, mask=mask)
    if keras.backend.backend() != "jax":
        if key_mask is not None:
            mask = ops.cast(key_mask, "bool")[:, None, None, :]
        return ops.dot_product_attention(query, key, value, mask=mask, scale=scale)
    import jax
    import jax.numpy as jnp

    kind = "general" if mask is not None else "padding" if key_mask is not None else "none"
    kernel, _ = choose_kernel(
        query.shape, key.shape, query.dtype, kind, training, local_cudnn_device(),
        attention_kernel_setting(),
    )
    arguments = {}
    if kind == "padding" and kernel == "cudnn":
        arguments["key_value_seq_lengths"] = jnp.sum(key_mask.astype("int32"), axis=-1)
    elif kind == "padding":
        arguments["mask"] = key_mask.astype("bool")[:, None, None, :]
    elif kind == "general":
        arguments["mask"] = mask.astype("bool")
    return jax.nn.dot_product_attention(
        query, key, value, scale=scale, implementation=kernel, **arguments
    )


def torch_attention(query, key, value, scale, key_mask=None, mask=None):
    """`dot_product_attention` on PyTorch tensors (same shapes and masks): one
    `scaled_dot_product_attention` on `(B, heads, T, hd)` views. A mask is
    passed as an additive bias of Keras' large negative value, so a query with
    no valid key attends uniformly (as Keras' op does) rather than giving NaN."""
    import torch
    import torch.nn.functional as F

    if key_mask is not None:
        mask = key_mask[:, None, None, :]
    bias = None
    if mask is not None:
        negative = 0.7 * torch.finfo(query.dtype).min
        bias = torch.zeros(mask.shape, dtype=query.dtype, device=query.device)
        bias = bias.masked_fill(~mask.bool(), negative)
    attended = F.scaled_dot_product_attention(
        query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2),
        attn_mask=bias, scale=scale,
    )
    return attended.transpose(1, 2)
