"""Export the image and text encoders of a `SigLIP2` to a TF SavedModel or ONNX.

Both formats are traced on the TensorFlow backend: SavedModel is TensorFlow's
own format, and ONNX is produced from the same TF graph by `tf2onnx`. On JAX or
PyTorch, `export_model` saves the model as a preset in a temporary folder and
exports it from a child process running `KERAS_BACKEND=tensorflow` (weights
and numbers are the same on every backend). The child loads only that preset.

SavedModel (`format="tf_saved_model"`) signatures; `B`, `N`, `H`, `W` dynamic:

- `image_encoder`: the bare image tower. Fixed resolution: `images (B, R, R, 3)`
  float32 in [-1, 1]. NaFlex: `patches (B, N, P·P·3)` float32, `patch_mask
  (B, N)` bool, `spatial_shapes (B, 2)` int32. Outputs `image_embeddings (B, D)`
  (L2-normalised) and `patch_features (B, N, D)` (NaFlex: padded rows included).
- `embed_images`: preprocessing inside: `images (B, H, W, 3)` uint8 pixels (one
  size per call) → the same outputs (NaFlex with `max_num_patches` patches).
- `text_encoder`: `token_ids (B, L)` int32 → `text_embeddings (B, D)`.
- `embed_texts`: `texts (B,)` strings, tokenised inside → `text_embeddings`.
  Loading it needs `import tensorflow_text` first (SentencePiece op).

The logit scale travels as scalar variables `log_temperature` and `bias`:
`logits = image_embeddings @ text_embeddings.T * exp(log_temperature) + bias`.

ONNX (`format="onnx"`): a folder with `image_encoder.onnx` and `text_encoder.onnx`
(the bare towers, same input and output names) and `siglip2_export.json`
describing the preprocessing to apply before them (ONNX has no SentencePiece
op and no antialiased bilinear resize matching `tf.image.resize`), the logit
scale and bias; the SentencePiece vocabulary is copied beside them as
`tokenizer.spm`.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

FORMATS = ("tf_saved_model", "onnx")
MANIFEST = "siglip2_export.json"
ONNX_OPSET = 17


def export_model(model, filepath, format="tf_saved_model", max_num_patches=None, verbose=True):
    """Export `model` (a `SigLIP2`) to `filepath`; see the module docstring.

    `format`: `"tf_saved_model"`, `"onnx"`, or a list of both, which writes
    `filepath/tf_saved_model` and `filepath/onnx` in one pass.
    `max_num_patches`: NaFlex sequence length of the `embed_images` signature
    (default: the image converter's). Returns `filepath` as a `Path`.
    """
    import keras

    formats = [format] if isinstance(format, str) else list(format)
    if not formats or any(f not in FORMATS for f in formats) or len(set(formats)) < len(formats):
        raise ValueError(f"`format` must be one of {list(FORMATS)} or a list of them; got {format!r}.")
    filepath = Path(filepath)
    if filepath.exists() and (not filepath.is_dir() or any(filepath.iterdir())):
        raise FileExistsError(f"{filepath} exists and is not an empty folder; choose another path.")
    if keras.backend.backend() == "tensorflow":
        _export_here(model, filepath, formats, max_num_patches)
    else:
        _export_in_child(model, filepath, formats, max_num_patches)
    if verbose:
        print(f"Wrote {' and '.join(formats)} export to {filepath}")
    return filepath


def _export_in_child(model, filepath, formats, max_num_patches):
    with tempfile.TemporaryDirectory(prefix="siglip2_export_") as temporary:
        preset = Path(temporary) / "preset"
        model.save_to_preset(preset)
        command = [sys.executable, "-m", "keras_siglip2.export", str(preset), str(filepath)]
        command += ["--format", ",".join(formats)]
        if max_num_patches is not None:
            command += ["--max-num-patches", str(max_num_patches)]
        env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
        result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(
            f"Exporting on the TensorFlow backend failed (exit {result.returncode}):\n"
            + result.stderr[-4000:]
        )


# ----------------------------------------------------- TensorFlow tracing
def _functions(model, max_num_patches):
    """The four endpoints as Python functions plus their input signatures."""
    import tensorflow as tf
    from keras import ops

    from keras_siglip2.layers.similarity import l2_normalize

    backbone = model.backbone
    vision, text = backbone.vision_encoder, backbone.text_encoder
    preprocessor = model.preprocessor
    converter = getattr(preprocessor, "image_converter", None)
    tokenizer = getattr(preprocessor, "tokenizer", None)

    def image_encoder(inputs):
        outputs = vision(inputs, training=False)
        return {
            "image_embeddings": l2_normalize(ops.cast(outputs["pooled"], "float32")),
            "patch_features": ops.cast(outputs["patch_features"], "float32"),
        }

    def text_encoder(token_ids):
        pooled = text({"token_ids": ops.cast(token_ids, "int32")}, training=False)["pooled"]
        return {"text_embeddings": l2_normalize(ops.cast(pooled, "float32"))}

    image_spec = {
        name: tf.TensorSpec(tensor.shape, tensor.dtype, name=name)
        for name, tensor in vision.input.items()
    }
    token_spec = tf.TensorSpec((None, text.sequence_length), tf.int32, name="token_ids")
    functions = {
        "image_encoder": (image_encoder, [image_spec]),
        "text_encoder": (text_encoder, [token_spec]),
    }
    if converter is not None:
        limit = max_num_patches or getattr(converter, "max_num_patches", None)

        def embed_images(images):
            converted = converter(images, max_num_patches=limit) if vision.naflex else {
                "images": converter(images)
            }
            return image_encoder(converted)

        pixels = tf.TensorSpec((None, None, None, 3), tf.uint8, name="images")
        functions["embed_images"] = (embed_images, [pixels])
    if tokenizer is not None:

        def embed_texts(texts):
            return text_encoder(tokenizer(texts))

        functions["embed_texts"] = (embed_texts, [tf.TensorSpec((None,), tf.string, name="texts")])
    return functions


def _export_here(model, filepath, formats, max_num_patches):
    from keras_siglip2.models.inference import InferenceMethods

    if not isinstance(model, InferenceMethods):
        raise ValueError(f"Expected a SigLIP2 model; got {type(model).__name__}.")
    if model.backbone.dtype_policy.name != "float32":
        raise ValueError(
            f"Export needs float32 weights; this model uses {model.backbone.dtype_policy.name}. "
            "Load it with dtype='float32'."
        )
    functions = _functions(model, max_num_patches)
    for format in formats:
        target = filepath / format if len(formats) > 1 else filepath
        if format == "tf_saved_model":
            _write_saved_model(model, target, functions)
        else:
            _write_onnx(model, target, functions)


def _write_saved_model(model, filepath, functions):
    """One `tf.Module` tracking the weights (and the SentencePiece resource),
    each endpoint traced once as a signature."""
    import tensorflow as tf

    module = tf.Module()
    module.weights = [variable.value for variable in model.backbone.weights]
    head = model.backbone.logit_head
    module.log_temperature = head.log_temperature.value
    module.bias = head.bias.value
    tokenizer = getattr(model.preprocessor, "tokenizer", None)
    if tokenizer is not None:
        tokenizer._maybe_initialized_tf()
        module.sentencepiece = tokenizer._sentence_piece
    signatures = {}
    for name, (function, signature) in functions.items():
        traced = tf.function(function, input_signature=signature, autograph=False)
        setattr(module, name, traced)
        signatures[name] = traced.get_concrete_function()
    tf.saved_model.save(module, str(filepath), signatures=signatures)


def _write_onnx(model, folder, functions):
    import tensorflow as tf

    try:
        import onnx
        import tf2onnx
    except ImportError as error:
        raise ImportError(
            "ONNX export needs `tf2onnx` and `onnx`: pip install 'keras-siglip2[export]'."
        ) from error
    from keras.src.export.tf2onnx_lib import patch_tf2onnx

    patch_tf2onnx()  # tf2onnx still uses NumPy 1 aliases
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("image_encoder", "text_encoder"):
        function, signature = functions[name]
        proto, _ = tf2onnx.convert.from_function(
            tf.function(function), input_signature=signature, opset=ONNX_OPSET
        )
        onnx.save(proto, str(folder / f"{name}.onnx"))
    manifest = export_manifest(model)
    tokenizer = getattr(model.preprocessor, "tokenizer", None)
    if tokenizer is not None:
        (folder / "tokenizer.spm").write_bytes(tokenizer.proto)
        manifest["text_preprocessing"]["vocabulary"] = "tokenizer.spm"
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))


def export_manifest(model):
    """What an ONNX user needs besides the graphs: inputs, preprocessing, logit scale."""
    vision = model.backbone.vision_encoder
    text = model.backbone.text_encoder
    log_temperature, bias = model.logit_parameters()
    converter = getattr(model.preprocessor, "image_converter", None)
    tokenizer = getattr(model.preprocessor, "tokenizer", None)
    scale = "float32 RGB, x / 127.5 - 1 after resizing (uint8 pixels in [0, 255])"
    if vision.naflex:
        image = {
            "kind": "naflex",
            "patch_size": vision.patch_size,
            "max_num_patches": getattr(converter, "max_num_patches", vision.max_num_patches),
            "target_size": "largest s with ceil(H*s/P)*ceil(W*s/P) <= N (binary search on "
            "[1e-6, 100] to width 1e-5); each side max(P, P*ceil(side*s/P))",
            "resize": "bilinear with antialiasing (tf.image.resize(antialias=True))",
            "values": scale,
            "patches": "row-major P x P patches, each flattened in (py, px, channel) order; "
            "zero rows pad to N; patch_mask true for real rows; spatial_shapes (h, w) in patches",
        }
        image_inputs = {
            "patches": ["B", "N", vision.patch_size**2 * 3, "float32"],
            "patch_mask": ["B", "N", "bool"],
            "spatial_shapes": ["B", 2, "int32"],
        }
    else:
        image = {
            "kind": "fixed",
            "image_size": vision.image_size,
            "resize": f"{getattr(converter, 'interpolation', 'bilinear')} to image_size x "
            f"image_size, aspect ratio not kept, antialias={getattr(converter, 'antialias', True)}",
            "values": scale,
        }
        image_inputs = {"images": ["B", vision.image_size, vision.image_size, 3, "float32"]}
    return {
        "image_encoder": {
            "file": "image_encoder.onnx",
            "inputs": image_inputs,
            "outputs": {"image_embeddings": ["B", "D"], "patch_features": ["B", "N", "D"]},
        },
        "text_encoder": {
            "file": "text_encoder.onnx",
            "inputs": {"token_ids": ["B", text.sequence_length, "int32"]},
            "outputs": {"text_embeddings": ["B", "D"]},
        },
        "embedding_dim": vision.hidden_dim,
        "log_temperature": log_temperature,
        "bias": bias,
        "logits": "image_embeddings @ text_embeddings.T * exp(log_temperature) + bias; "
        "probability = sigmoid(logits), independent per pair",
        "image_preprocessing": image,
        "text_preprocessing": {
            "canonicalize": getattr(tokenizer, "canonicalize", "lower"),
            "tokenizer": "SentencePiece, no BOS",
            "eos_id": getattr(tokenizer, "end_token_id", 1),
            "pad_id": getattr(tokenizer, "pad_token_id", 0),
            "sequence_length": text.sequence_length,
            "packing": "first L-1 pieces, then EOS, right-padded with pad_id to exactly L",
        },
    }


def main(argv=None):
    """Child-process entry point: `python -m keras_siglip2.export PRESET DEST`."""
    parser = argparse.ArgumentParser(prog="python -m keras_siglip2.export")
    parser.add_argument("preset")
    parser.add_argument("destination")
    parser.add_argument("--format", default="tf_saved_model", help="Comma-separated formats.")
    parser.add_argument("--max-num-patches", type=int)
    args = parser.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    from keras_siglip2.models.siglip2 import SigLIP2

    model = SigLIP2.from_preset(args.preset)
    formats = args.format.split(",")
    export_model(model, args.destination, formats, args.max_num_patches, verbose=False)


if __name__ == "__main__":
    main()
