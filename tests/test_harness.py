"""The checks of `tests/harness.py` fail on the faults they exist to catch."""

import keras
import numpy as np
import pytest

from tests import harness

pytestmark = pytest.mark.backends  # the harness runs on every backend
X = np.random.default_rng(0).normal(size=(2, 3, 4)).astype("float32")


@keras.saving.register_keras_serializable(package="harness_test")
class Scale(keras.layers.Layer):
    """`x · factor` through a Dense: correct on every check."""

    def __init__(self, factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def build(self, input_shape):
        self.dense = keras.layers.Dense(4, dtype=self.dtype_policy, name="dense")
        self.dense.build(input_shape)

    def call(self, x):
        return self.dense(x) * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="harness_test")
class ForgetsFactor(Scale):
    def get_config(self):
        return keras.layers.Layer.get_config(self)


@keras.saving.register_keras_serializable(package="harness_test")
class UnsavedState(Scale):
    """Holds a random offset that is not a variable, so no file keeps it."""

    def build(self, input_shape):
        super().build(input_shape)
        self.offset = float(np.random.default_rng().normal())

    def call(self, x):
        return super().call(x) + self.offset


@keras.saving.register_keras_serializable(package="harness_test")
class DropsPolicy(Scale):
    """Its Dense is made without the layer's policy."""

    def build(self, input_shape):
        self.dense = keras.layers.Dense(4, name="dense")
        self.dense.build(input_shape)


@keras.saving.register_keras_serializable(package="harness_test")
class Float32Output(Scale):
    def call(self, x):
        return keras.ops.cast(super().call(x), "float32")


@keras.saving.register_keras_serializable(package="harness_test")
class WrongSpecDtype(Scale):
    """Its symbolic output claims float16, the eager one is the compute dtype."""

    def compute_output_spec(self, x):
        return keras.KerasTensor(x.shape, dtype="float16")


@keras.saving.register_keras_serializable(package="harness_test")
class WrongSpecShape(Scale):
    """Its symbolic output claims a width of 5, the eager one has 4."""

    def compute_output_spec(self, x):
        return keras.KerasTensor((*x.shape[:-1], 5), dtype=self.compute_dtype)


def _case(cls, **options):
    return harness.Case(cls.__name__, lambda dtype=None: cls(2.0, dtype=dtype), (X,), **options)


@pytest.mark.parametrize("check", harness.CHECKS, ids=harness.check_id)
def test_a_correct_layer_passes(check, tmp_path):
    check(_case(Scale), tmp_path)


@pytest.mark.parametrize(
    "cls, check, message",
    [
        (ForgetsFactor, harness.check_config_round_trip, "Arrays are not equal"),
        (ForgetsFactor, harness.check_keras_file_round_trip, "Arrays are not equal"),
        (UnsavedState, harness.check_keras_file_round_trip, "Arrays are not equal"),
        (DropsPolicy, harness.check_mixed_precision, "dense has the policy float32"),
        (Float32Output, harness.check_mixed_precision, "output 'output' is float32"),
        (WrongSpecDtype, harness.check_mixed_precision, "symbolic output 0: float16"),
        (WrongSpecShape, harness.check_mixed_precision, r"symbolic output 0: \S+ \(2, 3, 5\)"),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_a_faulty_layer_fails(cls, check, message, tmp_path):
    with pytest.raises(AssertionError, match=message):
        check(_case(cls), tmp_path)


def test_declared_float32_outputs_and_layers_pass(tmp_path):
    harness.check_mixed_precision(_case(Float32Output, float32_outputs=True))
    harness.check_mixed_precision(
        _case(DropsPolicy, float32_outputs=True, float32_layers=(keras.layers.Dense,))
    )
