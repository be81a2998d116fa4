"""Fine-tuning a checkpoint: LoRA, frozen towers (LiT), the fine-tuning
recipe, quantization, and presets saved before the attention projections
became layers."""

import h5py
import keras
import numpy as np
import pytest
from keras import ops

import keras_siglip2 as ks
from keras_siglip2.data import demo_dataset
from keras_siglip2.data.pipeline import training_batches
from tests.training.helpers import TINY_SELF_SUPERVISED, first_batch, tiny_model

pytestmark = pytest.mark.backends


def _numpy(values):
    return {v.path: np.array(ops.convert_to_numpy(v)) for v in values}


def _train_one_step(model, **compile_arguments):
    batch = first_batch(training_batches(demo_dataset(8, seed=0), model, 4, seed=0))
    model.compile(**compile_arguments)
    before = _numpy(model.weights)
    model.train_on_batch(batch)
    after = _numpy(model.weights)
    return {path for path in before if not np.array_equal(before[path], after[path])}


def test_lora_trains_only_its_factors():
    model = tiny_model(locca=False)
    model.backbone.enable_lora(4)
    trainable = {v.path for v in model.trainable_variables}
    assert trainable and all("lora_kernel" in path for path in trainable)
    # query and value of every attention (towers and MAP head) and both MLP layers.
    assert any("map_head/attention/value/lora_kernel_a" in p for p in trainable)
    assert any("text_encoder/encoder_block_1/mlp/fc2/lora_kernel_b" in p for p in trainable)
    assert not any("/key/" in p or "attention_output" in p for p in trainable)
    changed = _train_one_step(model)
    # Only the factors move (every b factor starts at zero, so it moves first),
    # and the optimiser keeps state for them alone.
    assert changed and changed <= trainable, changed - trainable
    slots = [v for v in model.optimizer.variables if len(v.shape)]
    assert len(slots) == 2 * len(trainable)


def test_lora_with_the_logit_head_and_round_trip(tmp_path):
    model = tiny_model(locca=False)
    model.backbone.enable_lora(2, train_logit_head=True)
    changed = _train_one_step(model)
    assert "logit_head/bias" in changed
    path = str(tmp_path / "adapter.lora.h5")
    model.backbone.save_lora_weights(path)
    fresh = tiny_model(locca=False)  # same seed: the same base weights
    fresh.backbone.load_lora_weights(path)
    inputs = first_batch(training_batches(demo_dataset(4, seed=1), fresh, 4, seed=1))
    inputs = {k: inputs[k] for k in ("images", "token_ids")}
    ours = ops.convert_to_numpy(model.backbone(inputs)["image_embeddings"])
    theirs = ops.convert_to_numpy(fresh.backbone(inputs)["image_embeddings"])
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_lit_frozen_text_tower_stays_bit_identical():
    model = tiny_model(locca=True)
    model.backbone.text_encoder.trainable = False
    changed = _train_one_step(model)
    assert not any(path.startswith("text_encoder/") for path in changed)
    assert any(path.startswith("vision_encoder/") for path in changed)
    optimised = {v.path for v in model.trainable_variables}
    assert not any(path.startswith("text_encoder/") for path in optimised)


def test_combinations_that_cannot_train_are_refused():
    model = tiny_model(naflex=True, self_supervised=TINY_SELF_SUPERVISED)
    model.backbone.vision_encoder.trainable = False
    with pytest.raises(ValueError, match="image tower"):
        model.compile()
    lora = tiny_model(naflex=True, self_supervised=TINY_SELF_SUPERVISED)
    lora.backbone.enable_lora(2)
    with pytest.raises(ValueError, match="LoRA"):
        lora.compile()
    frozen = tiny_model(locca=False)
    frozen.trainable = False
    with pytest.raises(ValueError, match="nothing would train"):
        frozen.compile()


def test_fine_tuning_recipe():
    model = tiny_model(locca=False)
    model.compile(recipe="fine_tuning")
    assert float(ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(1e-5)
    assert model.optimizer.weight_decay == 0.0
    model.compile(recipe="fine_tuning", learning_rate=3e-5)
    assert float(ops.convert_to_numpy(model.optimizer.learning_rate)) == pytest.approx(3e-5)
    with pytest.raises(ValueError, match="recipe"):
        model.compile(recipe="finetune")


@pytest.mark.parametrize("mode", ["int8", "int4", "float8"])
def test_quantized_backbone_saves_and_loads(tmp_path, mode):
    backbone = ks.SigLIP2Backbone.from_config(ks.configs.tiny(image_size=32))
    rng = np.random.default_rng(0)
    inputs = {"images": rng.uniform(-1, 1, (2, 32, 32, 3)).astype("float32"),
              "token_ids": rng.integers(0, 1000, (2, 16)).astype("int32")}
    before = ops.convert_to_numpy(backbone(inputs)["image_embeddings"])
    backbone.quantize(mode)
    quantized = ops.convert_to_numpy(backbone(inputs)["image_embeddings"])
    assert (before * quantized).sum(-1).min() > {"int8": 0.99, "float8": 0.95, "int4": 0.9}[mode]
    attention = backbone.vision_encoder.encoder_blocks[0].attention
    assert attention.query.quantization_mode == mode
    backbone.save_to_preset(str(tmp_path))
    loaded = ks.SigLIP2Backbone.from_preset(str(tmp_path))
    assert loaded.vision_encoder.encoder_blocks[0].attention.query.quantization_mode == mode
    np.testing.assert_array_equal(
        ops.convert_to_numpy(loaded(inputs)["image_embeddings"]), quantized
    )


def _to_legacy_layout(weights_file):
    """Rewrite a `.weights.h5` as earlier versions wrote it: the eight
    attention variables as the attention layer's own."""
    with h5py.File(weights_file, "r+") as f:
        groups = []
        f.visit(lambda name: groups.append(name) if name.endswith("attention/query") else None)
        for query in groups:
            attention = query[: -len("/query")]
            for index, name in enumerate(("query", "key", "value", "attention_output")):
                for part in range(2):
                    f.move(f"{attention}/{name}/vars/{part}", f"{attention}/vars/{2 * index + part}")
                del f[f"{attention}/{name}"]
    return len(groups)


def test_presets_of_earlier_versions_load(tmp_path):
    from safetensors.numpy import load_file, save_file

    model = tiny_model(locca=True)
    model.save_to_preset(str(tmp_path))
    assert _to_legacy_layout(tmp_path / "model.weights.h5") > 0
    task_file = tmp_path / ks.SigLIP2.TASK_WEIGHTS_FILE
    tensors = load_file(str(task_file))
    legacy_names = {"query/kernel": "query_kernel", "attention_output/bias": "output_bias"}
    renamed = {}
    for name, value in tensors.items():
        for new, old in legacy_names.items():
            name = name.replace(f"attention/{new}", f"attention/{old}")
        renamed[name] = value
    assert any(name.endswith("attention/query_kernel") for name in renamed)
    save_file(renamed, str(task_file))
    loaded = ks.SigLIP2.from_preset(str(tmp_path))
    expected, got = _numpy(model.weights), _numpy(loaded.weights)
    assert expected.keys() == got.keys()
    for path, value in expected.items():
        np.testing.assert_array_equal(got[path], value, err_msg=path)


def test_float16_trains_with_loss_scaling_or_is_refused():
    """mixed_float16: JAX on CPU cannot run float16 matmuls and says so when the
    model is built; TensorFlow and PyTorch train with Keras' loss scaling
    (the first steps overflow and are skipped while the scale falls) and
    give finite outputs."""
    keras.config.set_dtype_policy("mixed_float16")
    if keras.backend.backend() == "jax":
        with pytest.raises(ValueError, match="float16"):
            tiny_model(locca=True)
        return
    model = tiny_model(locca=True)
    batch = first_batch(training_batches(demo_dataset(8, seed=0), model, 4, seed=0))
    model.compile()
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    losses = [model.train_on_batch(batch, return_dict=True)["loss"] for _ in range(14)]
    assert np.isfinite(losses).all()
    assert float(ops.convert_to_numpy(model.optimizer.dynamic_scale)) < 2**15
    assert losses[-1] < losses[0] - 0.5, losses
    outputs = model.predict_on_batch({k: batch[k] for k in ("images", "token_ids")})
    assert all(np.isfinite(ops.convert_to_numpy(v)).all() for v in outputs.values())


def test_extend_text_positions():
    from keras_siglip2.layers.embeddings import extend_text_positions

    table = np.arange(12, dtype="float32").reshape(4, 3)  # 4 positions
    longer = extend_text_positions(table, 7)
    np.testing.assert_array_equal(longer[:3], table[:3])  # the texts' own positions
    np.testing.assert_array_equal(longer[-1], table[-1])  # the pooled last position
    steps = np.diff(longer[2:], axis=0)  # rows 2 … 6 walk evenly from row 2 to row 3
    np.testing.assert_allclose(steps, np.full_like(steps, 0.75), rtol=1e-6)
    np.testing.assert_array_equal(extend_text_positions(table, 4), table)
    with pytest.raises(ValueError, match="extended"):
        extend_text_positions(table, 3)


def test_longer_texts_from_a_preset(tmp_path):
    model = tiny_model(locca=False)
    model.save_to_preset(str(tmp_path))
    longer = ks.SigLIP2.from_preset(str(tmp_path), text_sequence_length=24)
    assert longer.backbone.text_encoder.sequence_length == 24
    assert longer.preprocessor.tokenizer("a cat").shape == (24,)
    texts = ["red circle", "blue square"]
    before, after = model.embed_texts(texts), longer.embed_texts(texts)
    assert (before * after).sum(-1).min() > 0.9  # close, not equal: more padding attends
    # The new positions train: their gradient reaches the table.
    batch = first_batch(training_batches(demo_dataset(4, seed=0), longer, 4, seed=0))
    assert batch["token_ids"].shape[1] == 24
    positions = longer.backbone.text_encoder.embedding.position_embeddings
    before_step = np.array(ops.convert_to_numpy(positions))
    longer.compile(optimizer=keras.optimizers.SGD(1.0))
    longer.train_on_batch(batch)
    moved = np.abs(np.array(ops.convert_to_numpy(positions)) - before_step).max(-1)
    assert (moved[16:] > 0).all()
    locca = tiny_model(locca=True)
    locca.save_to_preset(str(tmp_path / "locca"))
    with pytest.raises(ValueError, match="locca=False"):
        ks.SigLIP2.from_preset(str(tmp_path / "locca"), text_sequence_length=24)
