"""Multi-device tests run in their own pytest process (see `TEST_RUNS` in dev.py):

    XLA_FLAGS=--xla_force_host_platform_device_count=8 KERAS_BACKEND=jax \
        .venv/bin/python -m pytest -m multi_device integration/multi_device/test_jax_*.py
    KERAS_BACKEND=tensorflow .venv/bin/python -m pytest -m multi_device \
        integration/multi_device/test_tf_mirrored.py

They fail (never skip) when the devices are not there.
"""

import os

import keras
import pytest

JAX_DEVICES = 8
TF_LOGICAL_DEVICES = 2


def _configure_tf_logical_devices():
    """Split the CPU into 2 logical devices; only possible before TF runs any op."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * TF_LOGICAL_DEVICES
        )
    except RuntimeError:  # TF already initialised: the fixture below reports it
        pass


if keras.backend.backend() == "tensorflow":
    _configure_tf_logical_devices()


@pytest.fixture
def jax_devices():
    """The 8 (fake CPU) JAX devices; fails with instructions when they are missing."""
    if keras.backend.backend() != "jax":
        pytest.fail(f"this test needs KERAS_BACKEND=jax, not {keras.backend.backend()!r}")
    import jax

    devices = jax.devices()
    assert len(devices) == JAX_DEVICES, (
        f"expected {JAX_DEVICES} JAX devices, found {len(devices)}: run with "
        f"XLA_FLAGS=--xla_force_host_platform_device_count={JAX_DEVICES} "
        f"(XLA_FLAGS is {os.environ.get('XLA_FLAGS')!r}); see integration/multi_device/conftest.py"
    )
    return devices


@pytest.fixture
def tf_devices():
    """The 2 logical TF CPU devices; fails with instructions when they are missing."""
    if keras.backend.backend() != "tensorflow":
        pytest.fail(f"this test needs KERAS_BACKEND=tensorflow, not {keras.backend.backend()!r}")
    import tensorflow as tf

    devices = tf.config.list_logical_devices("CPU")
    assert len(devices) == TF_LOGICAL_DEVICES, (
        f"expected {TF_LOGICAL_DEVICES} logical CPU devices, found {len(devices)}: TF ran "
        "an op before integration/multi_device/conftest.py could split the CPU; run this file "
        "in its own pytest process"
    )
    return [d.name for d in devices]
