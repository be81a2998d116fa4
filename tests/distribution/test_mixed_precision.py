"""`mixed_bfloat16` training keeps the loss, every softmax / exponential and the
EMA teacher in float32 (JAX: checked on the traced training computation)."""

import keras
import numpy as np
import pytest

from keras_siglip2 import configs
from keras_siglip2.data import demo_dataset
from keras_siglip2.data.pipeline import training_batches
from keras_siglip2.models.backbone import SigLIP2Backbone
from keras_siglip2.models.siglip2 import SigLIP2
from keras_siglip2.models.self_supervised import ema_update
from tests.training.helpers import first_batch, tiny_model

# exp / log / softmax-like primitives: none may run in bfloat16.
TRANSCENDENTAL = {"exp", "exp2", "log", "log1p", "logistic", "expm1"}


def _primitives(jaxpr):
    """(primitive name, output dtypes) of every equation, sub-computations included."""
    for eqn in jaxpr.eqns:
        yield eqn.primitive.name, [str(v.aval.dtype) for v in eqn.outvars]
        for param in eqn.params.values():
            for sub in param if isinstance(param, (list, tuple)) else [param]:
                sub = getattr(sub, "jaxpr", sub)  # ClosedJaxpr → Jaxpr
                if hasattr(sub, "eqns"):
                    yield from _primitives(sub)


def test_mixed_bfloat16_loss_and_softmaxes_are_float32():
    if keras.backend.backend() != "jax":
        pytest.fail("this test traces the JAX computation: run it with KERAS_BACKEND=jax")
    import jax

    keras.config.set_dtype_policy("mixed_bfloat16")
    model = tiny_model(seed=0)
    batch = first_batch(training_batches(demo_dataset(4, seed=0), model, 4, seed=0,
                                         shuffle_buffer=0))
    model.compile(total_steps=10)
    model.optimizer.build(model.trainable_variables)
    assert model.backbone.vision_encoder.encoder_blocks[0].compute_dtype == "bfloat16"
    assert {v.dtype for v in model.weights} == {"float32"}

    def loss(trainable):
        value, _ = model.compute_loss_and_updates(
            trainable, [v.value for v in model.non_trainable_variables],
            [v.value for v in model.metrics_variables], batch, None, None, training=True,
            optimizer_variables=[v.value for v in model.optimizer.variables],
        )
        return value

    trainable = [v.value for v in model.trainable_variables]
    traced = jax.make_jaxpr(jax.value_and_grad(loss))(trainable)
    primitives = list(_primitives(traced.jaxpr))
    assert any("bfloat16" in dtypes for _, dtypes in primitives)  # it is mixed precision
    transcendental = [(name, dtypes) for name, dtypes in primitives if name in TRANSCENDENTAL]
    assert len(transcendental) > 10
    assert all(dtypes == ["float32"] for _, dtypes in transcendental), transcendental
    assert str(traced.out_avals[0].dtype) == "float32"


def test_mixed_bfloat16_ema_teacher_is_float32():
    keras.config.set_dtype_policy("mixed_bfloat16")
    settings = dict(
        num_prototypes=16, num_patch_prototypes=8, head_hidden_dim=16, head_bottleneck_dim=8
    )
    model = SigLIP2(SigLIP2Backbone.from_config(configs.tiny()), self_supervised=settings)
    pairs = model.teacher_pairs()
    assert pairs and all(t.dtype == s.dtype == "float32" for t, s in pairs)
    teacher, student = pairs[0]
    before = np.array(teacher.numpy())
    student.assign(student + 1e-3)  # an update far below bfloat16's resolution near 1
    ema_update([(teacher, student)], 0.5, True)
    np.testing.assert_allclose(teacher.numpy(), before + 0.5e-3, rtol=0, atol=1e-6)
