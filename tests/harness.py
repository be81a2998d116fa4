"""The checks every layer and model of the package passes, in one place.

A `Case` names how to make a fresh instance and what to call it with; three
checks take a case:

- `check_config_round_trip`: `get_config` → JSON → `deserialize_keras_object`
  (the registered name and `from_config`) rebuilds an instance with the same
  config that, given the same weights, gives the same outputs.
- `check_keras_file_round_trip`: `keras.saving.save_model(path.keras)` (what
  `model.save` does; a bare layer saves the same way) → `load_model` gives
  the same class, config, variables (by path and value) and outputs.
- `check_mixed_precision`: built with a dtype policy (`mixed_bfloat16` unless
  told), the instance and every sublayer carry it, floating variables have
  its variable dtype, floating outputs its compute dtype and are finite, and
  the symbolic call (a functional model's view) agrees with the eager one.
  Layers that keep float32 by design (`Case.float32_layers`) and outputs
  computed in float32 (`Case.float32_outputs`) are declared, never guessed.

`CHECKS` lists the three for parametrised tests:

    @pytest.mark.parametrize("check", harness.CHECKS, ids=harness.check_id)
    @pytest.mark.parametrize("case", CASES, ids=harness.case_id)
    def test_checks(case, check, tmp_path):
        check(case, tmp_path)

Outputs are compared exactly: the same computation on the same weights.
"""

import dataclasses
import json
from typing import Any, Callable

import keras
import numpy as np


@dataclasses.dataclass(frozen=True)
class Case:
    """A layer or model to check.

    `make(dtype=None)` returns a fresh instance (`dtype` a policy name).
    `args`, `kwargs`: what to call it with (NumPy arrays; None, Python values).
    `float32_outputs`: keys of a dict output computed in float32 by
    design, or True for every output. `float32_layers`: classes that keep a
    float32 policy under any policy. `outside_policy`: classes the policy does
    not reach by design (a preprocessor, which runs before the model), whose
    policy is not checked.
    """

    name: str
    make: Callable[..., Any]
    args: tuple = ()
    kwargs: dict = dataclasses.field(default_factory=dict)
    float32_outputs: Any = ()
    float32_layers: tuple = ()
    outside_policy: tuple = ()


def case_id(case):
    return case.name


def check_id(check):
    return check.__name__.removeprefix("check_")


def numpy_leaves(outputs):
    """The outputs' tensors, flattened (dicts by sorted key), as NumPy arrays."""
    return [keras.ops.convert_to_numpy(x) for x in keras.tree.flatten(outputs)]


def assert_same_outputs(actual, expected):
    actual, expected = numpy_leaves(actual), numpy_leaves(expected)
    assert len(actual) == len(expected), (len(actual), len(expected))
    for index, (a, b) in enumerate(zip(actual, expected)):
        np.testing.assert_array_equal(a, b, err_msg=f"output {index}")


def assert_same_variables(actual, expected):
    """Same variables in the same order: paths, dtypes and values."""
    assert [v.path for v in actual.weights] == [v.path for v in expected.weights]
    for a, b in zip(actual.weights, expected.weights):
        assert a.dtype == b.dtype, a.path
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), err_msg=a.path
        )


def check_config_round_trip(case, tmp_path=None):
    """`get_config` → JSON → `deserialize_keras_object` → same config, and the
    same outputs once it has the original's weights."""
    args, kwargs = case.args, case.kwargs
    instance = case.make()
    expected = instance(*args, **kwargs)
    config = instance.get_config()
    serialized = json.loads(json.dumps(keras.saving.serialize_keras_object(instance)))
    restored = keras.saving.deserialize_keras_object(serialized)
    assert type(restored) is type(instance)
    assert restored.get_config() == config
    restored(*args, **kwargs)  # builds it, as the first call does
    assert len(restored.weights) == len(instance.weights)
    restored.set_weights(instance.get_weights())
    assert_same_outputs(restored(*args, **kwargs), expected)
    return restored


def check_keras_file_round_trip(case, tmp_path):
    """`save_model(path.keras)` → `load_model`: same class, config, variables
    and outputs."""
    args, kwargs = case.args, case.kwargs
    instance = case.make()
    expected = instance(*args, **kwargs)
    path = tmp_path / f"{case.name}.keras"
    keras.saving.save_model(instance, path)
    restored = keras.saving.load_model(path)
    assert type(restored) is type(instance)
    assert restored.get_config() == instance.get_config()
    assert_same_variables(restored, instance)
    assert_same_outputs(restored(*args, **kwargs), expected)
    return restored


def _is_floating(dtype):
    return "float" in keras.backend.standardize_dtype(dtype)


def _symbolic(value):
    if isinstance(value, (np.ndarray, np.generic)):
        return keras.KerasTensor(value.shape, dtype=keras.backend.standardize_dtype(value.dtype))
    return value


def check_mixed_precision(case, tmp_path=None, policy="mixed_bfloat16"):
    """Built with `policy`: the policy reaches every sublayer, floating
    variables have its variable dtype, floating outputs its compute dtype
    (float32 where the case declares it) and are finite, and the symbolic call
    gives the eager outputs' dtypes and shapes."""
    policy = keras.dtype_policies.get(policy)
    float32 = keras.dtype_policies.get("float32")
    args, kwargs = case.args, case.kwargs
    instance = case.make(dtype=policy.name)
    outputs = instance(*args, **kwargs)

    # `_flatten_layers` is Keras' own recursive walk (keras-hub's checks use it too).
    kept_float32 = set()
    for layer in instance._flatten_layers(include_self=True):
        if isinstance(layer, (keras.layers.InputLayer, *case.outside_policy)):
            continue
        expected = float32 if isinstance(layer, case.float32_layers) else policy
        assert layer.dtype_policy.name == expected.name, (
            f"{layer.path} has the policy {layer.dtype_policy.name}, expected {expected.name}"
        )
        if expected is float32:
            kept_float32.update(id(v) for v in layer.weights)
    for variable in instance.weights:
        if _is_floating(variable.dtype):
            expected = "float32" if id(variable) in kept_float32 else policy.variable_dtype
            what = f"{variable.path} is {variable.dtype}, expected {expected}"
            assert variable.dtype == expected, what

    if isinstance(outputs, dict):
        named = sorted(outputs.items())
        float32_names = set(outputs) if case.float32_outputs is True else set(case.float32_outputs)
        assert float32_names <= set(outputs), float32_names - set(outputs)
    else:
        named = [("output", outputs)]
        float32_names = {"output"} if case.float32_outputs is True else set()
    for name, output in named:
        for tensor in keras.tree.flatten(output):
            if not _is_floating(tensor.dtype):
                continue
            expected = "float32" if name in float32_names else policy.compute_dtype
            actual = keras.backend.standardize_dtype(tensor.dtype)
            assert actual == expected, f"output {name!r} is {actual}, expected {expected}"
            values = keras.ops.convert_to_numpy(keras.ops.cast(tensor, "float32"))
            assert np.isfinite(values).all(), name

    symbolic = instance(*keras.tree.map_structure(_symbolic, args),
                        **keras.tree.map_structure(_symbolic, kwargs))
    eager, spec = keras.tree.flatten(outputs), keras.tree.flatten(symbolic)
    assert len(spec) == len(eager)
    for index, (e, s) in enumerate(zip(eager, spec)):
        what = f"symbolic output {index}: {s.dtype} {s.shape}, eager {e.dtype} {e.shape}"
        static, actual = (keras.backend.standardize_dtype(t.dtype) for t in (s, e))
        # Keras' torch backend traces a custom layer's symbolic call without
        # the mixed-precision casts: a layer with no `compute_output_spec` of
        # its own reports float32 there while it computes in the compute dtype.
        torch_trace = keras.backend.backend() == "torch" and static == "float32"
        assert static == actual or torch_trace and actual == policy.compute_dtype, what
        assert len(s.shape) == len(e.shape), what
        assert all(a is None or a == b for a, b in zip(s.shape, e.shape)), what
    return instance


CHECKS = (check_config_round_trip, check_keras_file_round_trip, check_mixed_precision)
