"""Every model of `keras_siglip2.models` (both towers, the backbone, and the
`SigLIP2` task model with and without its LocCa decoder and self-supervised
heads) passes the shared checks of `tests/harness.py`. `SigLIP2` also keeps
its preprocessor and, compiled, its training state through a `.keras` file."""

import functools

import keras
import numpy as np
import pytest

from keras_siglip2 import configs
from keras_siglip2.data import make_demo_examples
from keras_siglip2.layers.similarity import SigmoidLogitHead
from keras_siglip2.models.backbone import SigLIP2Backbone
from keras_siglip2.models.siglip2 import SigLIP2
from keras_siglip2.models.text_encoder import SigLIP2TextEncoder
from keras_siglip2.models.vision_encoder import SigLIP2VisionEncoder
from keras_siglip2.preprocessing import (
    NaFlexImageConverter,
    SigLIP2ImageConverter,
    SigLIP2Preprocessor,
    SigLIP2Tokenizer,
)
from tests import harness
from tests.models.test_backbone import tiny_inputs
from tests.training.helpers import COORDINATE_BINS, TINY_SELF_SUPERVISED, tiny_model

pytestmark = pytest.mark.backends

_rng = np.random.default_rng(0)
INPUTS = {naflex: tiny_inputs(_rng, naflex) for naflex in (False, True)}
EMBEDDINGS = ("image_embeddings", "text_embeddings", "logits")  # float32 by design


def _images(naflex):
    return {k: v for k, v in INPUTS[naflex].items() if k != "token_ids"}


def _with_locca_inputs(inputs, images=2):
    """The backbone inputs plus the three LocCa tasks' decoder inputs."""
    vocabulary = 1000 + COORDINATE_BINS
    tasks = {f"{task}_inputs": _rng.integers(0, vocabulary, (images, 16)).astype("int32")
             for task in ("captioning", "referring", "grounded")}
    return {**inputs, **tasks, "captioning_parallel": np.array([True, False])}


def _tower(cls, **config):
    return lambda dtype=None: cls(**config, dtype=dtype)


def _backbone(naflex, dtype=None):
    return SigLIP2Backbone(**configs.tiny(naflex=naflex), dtype=dtype)


_Case = harness.Case
BACKBONES = [
    _Case(f"backbone_{'naflex' if naflex else 'fixed'}", functools.partial(_backbone, naflex),
          (INPUTS[naflex],), float32_outputs=EMBEDDINGS, float32_layers=(SigmoidLogitHead,))
    for naflex in (False, True)
]
# `SigLIP2` takes its towers' policy from the backbone; its own (that of the
# losses, and of the heads' step counter and centres) is the global one. Its
# preprocessor runs before the model, in tf.data.
_TASK = dict(
    float32_outputs=EMBEDDINGS, float32_layers=(SigmoidLogitHead, SigLIP2),
    outside_policy=(SigLIP2Preprocessor, SigLIP2Tokenizer, SigLIP2ImageConverter,
                    NaFlexImageConverter),
)
CASES = [
    _Case("vision_encoder_fixed", _tower(SigLIP2VisionEncoder, **configs.tiny()["vision"]),
          (_images(False),)),
    _Case("vision_encoder_naflex",
          _tower(SigLIP2VisionEncoder, **configs.tiny(naflex=True)["vision"]), (_images(True),)),
    _Case("text_encoder", _tower(SigLIP2TextEncoder, **configs.tiny()["text"]),
          ({"token_ids": INPUTS[False]["token_ids"]},)),
    *BACKBONES,
    _Case("siglip2_fixed", functools.partial(tiny_model, naflex=False, locca=False),
          (INPUTS[False],), **_TASK),
    _Case("siglip2_naflex_locca", functools.partial(tiny_model, naflex=True, locca=True),
          (_with_locca_inputs(INPUTS[True]),), **_TASK),
    _Case("siglip2_self_supervised",
          functools.partial(tiny_model, locca=True, self_supervised=TINY_SELF_SUPERVISED),
          (_with_locca_inputs(INPUTS[False]),), **_TASK),
]


@pytest.mark.parametrize("check", harness.CHECKS, ids=harness.check_id)
@pytest.mark.parametrize("case", CASES, ids=harness.case_id)
def test_model_passes_the_common_checks(case, check, tmp_path):
    check(case, tmp_path)


@pytest.mark.parametrize("case", BACKBONES, ids=harness.case_id)
def test_backbone_runs_in_bfloat16(case):
    harness.check_mixed_precision(case, policy="bfloat16")


def test_keras_file_keeps_the_preprocessor(tmp_path):
    case = CASES[-2]
    model = case.make()
    restored = harness.check_keras_file_round_trip(case, tmp_path)
    texts = ["ein roter kreis", "赤い円", "A Blue Square!"]
    np.testing.assert_array_equal(restored.text_inputs(texts), model.text_inputs(texts))
    images = [e["image"] for e in make_demo_examples(2, split="test")]
    for key, value in model.image_inputs(images).items():
        np.testing.assert_array_equal(restored.image_inputs(images)[key], value, err_msg=key)


def test_compiled_model_keeps_its_training_state_in_a_keras_file(tmp_path):
    """`load_model` compiles with the saved `compile` arguments and restores
    the optimizer's state (set by hand here: a first step compiles for seconds)."""
    model = tiny_model(naflex=True, self_supervised=TINY_SELF_SUPERVISED)
    model.compile(warmup_steps=2, total_steps=10, self_supervised_start=0.5,
                  loss_weights={"locca": 0.5}, chunk_size=64, steps_per_execution=2)
    model.optimizer.build(model.trainable_variables)
    for variable in model.optimizer.variables:
        if variable.dtype.startswith("float"):
            variable.assign(_rng.uniform(size=variable.shape).astype(variable.dtype))
        else:
            variable.assign(3)  # the step counter
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    assert restored.get_compile_config() == model.get_compile_config()
    assert restored.loss_weights_ == model.loss_weights_ and restored.chunk_size == 64
    assert restored.self_supervised_start == 5 and restored.steps_per_execution == 2
    assert [v.path for v in restored.trainable_variables] == [
        v.path for v in model.trainable_variables
    ]
    assert len(restored.optimizer.variables) == len(model.optimizer.variables)
    for a, b in zip(restored.optimizer.variables, model.optimizer.variables):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b), err_msg=b.path
        )
    rate = keras.ops.convert_to_numpy(model.optimizer.learning_rate)
    assert rate > 0 and keras.ops.convert_to_numpy(restored.optimizer.learning_rate) == rate


def test_a_curation_teacher_cannot_be_saved_in_a_keras_file(tmp_path, recwarn):
    model = tiny_model(locca=False)
    model.compile(curation_teacher=tiny_model(locca=False, seed=1))
    with pytest.raises(ValueError, match="compiled with a `curation_teacher` cannot be saved"):
        model.save(tmp_path / "model.keras")
    model.compile()  # not yet trained: the optimizer is not built
    model.save(tmp_path / "model.keras")
    restored = keras.saving.load_model(tmp_path / "model.keras")
    assert restored.curation is None and not restored.optimizer.built
    assert not [w for w in recwarn if "Skipping variable loading" in str(w.message)]
