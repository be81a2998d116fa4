"""Which compute dtypes the towers can run on the current backend and device."""

import keras


def check_compute_dtype(dtype=None):
    """Refuse float16 computation where it cannot run: XLA on CPU has no
    float16 matrix products (JAX fails deep inside `dot_general`). Float16
    runs on GPUs with every backend, and on CPU with TensorFlow and PyTorch;
    `fit` then scales the loss (Keras' `LossScaleOptimizer`)."""
    policy = keras.dtype_policies.get(dtype) if dtype is not None else keras.config.dtype_policy()
    policy = getattr(policy, "default_policy", None) or policy  # a DTypePolicyMap
    if policy.compute_dtype != "float16" or keras.backend.backend() != "jax":
        return
    import jax

    if jax.devices()[0].platform == "cpu":
        raise ValueError(
            f"The dtype policy {policy.name!r} computes in float16, which JAX cannot "
            "run on CPU (XLA has no float16 matrix product there). Use "
            "'mixed_bfloat16' or 'float32' on CPU, float16 on a GPU, or the "
            "TensorFlow or PyTorch backend."
        )
