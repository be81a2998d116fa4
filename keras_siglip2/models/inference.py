"""Inference methods of `SigLIP2`: embeddings, similarity, zero-shot, retrieval,
dense patch features, localisation and export.

Images and texts may be given as one item or any collection of them (lists,
arrays, generators, `tf.data` datasets: see `keras_siglip2.preprocessing.inputs`).
Everything is processed `batch_size` items at a time, so inputs of any length
fit in memory; a progress bar appears once a call has run more than 8 batches.
"""

import contextlib
import itertools

import keras
import numpy as np
from keras import ops

from keras_siglip2.layers.similarity import l2_normalize
from keras_siglip2.models.input_checks import ChecksBatches
from keras_siglip2.preprocessing.inputs import (
    collection_size,
    image_items,
    is_text_collection,
    text_items,
    text_list,
)

SIMILARITY_KINDS = ("cosine", "logit", "probability")


class InferenceMethods(ChecksBatches):
    """Mixed into `SigLIP2`; expects `self.backbone`, `self.preprocessor` and
    (for `locate`) `self.decoder`, `self.num_coordinate_bins`,
    `self.image_positions`. Also checks the batches of `SigLIP2`'s Keras loops
    (`check_batch`, see `ChecksBatches`)."""

    def check_batch(self, inputs, training):
        """A `SigLIP2` batch: the image tower's inputs, and `token_ids` for
        training and evaluation (the sigmoid loss pairs images with texts)."""
        vision, text = self.backbone.vision_encoder, self.backbone.text_encoder
        required = list(vision.input) + (["token_ids"] if training else [])
        missing = [key for key in required if not isinstance(inputs, dict) or key not in inputs]
        if missing:
            given = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
            raise ValueError(
                f"SigLIP2 batches are dicts with {required} (and, for the LocCa and "
                f"self-supervised losses, more keys); got {given}, missing {missing}. Make "
                "training batches with `keras_siglip2.data.training_batches`."
            )
        vision.check_inputs({key: inputs[key] for key in vision.input})
        if "token_ids" in inputs:
            text.check_inputs({"token_ids": inputs["token_ids"]})

    def _require_preprocessor(self, part):
        component = getattr(self.preprocessor, part, None) if self.preprocessor else None
        if component is None:
            raise ValueError(
                f"This model has no {part.replace('_', ' ')}: build it with a "
                "`SigLIP2Preprocessor`, or load one with `SigLIP2.from_preset`."
            )
        return component

    # ------------------------------------------------------------ inputs
    def image_inputs(self, images, max_num_patches=None):
        """Raw images (a list, a `(B, H, W, 3)` array or one image) → image-tower
        inputs as NumPy: `images (B, R, R, 3)` or NaFlex `patches (B, N, P·P·3)`,
        `patch_mask (B, N)`, `spatial_shapes (B, 2)`."""
        converter = self._require_preprocessor("image_converter")
        if max_num_patches is not None and not self.backbone.naflex:
            size = self.backbone.vision_encoder.image_size
            raise ValueError(
                f"`max_num_patches` applies to NaFlex models only; this model takes "
                f"{size}×{size} images. Drop it, or load a NaFlex preset (e.g. 'b16-naflex')."
            )
        if not isinstance(images, (list, tuple)):
            images = list(images) if getattr(images, "ndim", 0) == 4 else [images]
        if len(images) == 0:
            raise ValueError("Got an empty list of images.")
        if self.backbone.naflex:
            outputs = converter(images, max_num_patches=max_num_patches)
        else:
            outputs = {"images": converter(images)}
        return {k: ops.convert_to_numpy(v) for k, v in outputs.items()}

    def text_inputs(self, texts):
        """A string or list of strings → `token_ids (N, L)` int32."""
        tokenizer = self._require_preprocessor("tokenizer")
        return ops.convert_to_numpy(tokenizer(text_list(texts))).astype("int32")

    # ------------------------------------------------------- embeddings
    def embed_images(self, images, batch_size=32, max_num_patches=None, verbose="auto"):
        """L2-normalised image embeddings `(N, D)` float32 NumPy."""

        def encode(chunk):
            inputs = self.image_inputs(chunk, max_num_patches)
            return self.backbone.vision_encoder.predict_on_batch(inputs)["pooled"]

        pooled = _map_batches(
            encode, image_items(images), batch_size, verbose, "image", collection_size(images)
        )
        return _normalized(pooled)

    def embed_texts(self, texts, batch_size=64, verbose="auto"):
        """L2-normalised text embeddings `(N, D)` float32 NumPy."""

        def encode(chunk):
            token_ids = self.text_inputs(chunk)
            return self.backbone.text_encoder.predict_on_batch({"token_ids": token_ids})["pooled"]

        pooled = _map_batches(
            encode, text_items(texts), batch_size, verbose, "text", collection_size(texts)
        )
        return _normalized(pooled)

    def similarity(self, images, texts, kind="cosine", batch_size=32, max_num_patches=None):
        """Image–text scores `(N_img, N_txt)` float32: `"cosine"` similarity of the
        normalised embeddings, the sigmoid `"logit"` (`cos · exp(t') + b`), or its
        `"probability"` (sigmoid of the logit, independent per pair)."""
        if kind not in SIMILARITY_KINDS:
            raise ValueError(f"`kind` must be one of {list(SIMILARITY_KINDS)}; got {kind!r}.")
        cosine = self.embed_images(images, batch_size, max_num_patches) @ self.embed_texts(texts).T
        if kind == "cosine":
            return cosine
        log_temperature, bias = self.logit_parameters()
        logits = (cosine * np.exp(log_temperature) + bias).astype("float32")
        return logits if kind == "logit" else np.exp(-np.logaddexp(0.0, -logits)).astype("float32")

    def logit_parameters(self):
        """The learned `(log_temperature t', bias b)` as Python floats."""
        head = self.backbone.logit_head
        return (
            float(ops.convert_to_numpy(head.log_temperature)),
            float(ops.convert_to_numpy(head.bias)),
        )

    # --------------------------------------------------- classification
    def zero_shot(
        self,
        images,
        labels,
        templates=("{}",),
        batch_size=32,
        max_num_patches=None,
        return_argmax=False,
    ):
        """Sigmoid probabilities `(N, C)` of each label for each image (independent
        per pair, SPEC §1), with prompt-ensembled label embeddings (SPEC §5).

        `templates`: prompt templates with `"{}"`, or `"imagenet"` for the 80 CLIP
        ImageNet templates plus `"{}"`. With `return_argmax=True`, returns
        `(probabilities, argmax (N,) int64)` — the most probable label per image.
        """
        from keras_siglip2.evaluation import class_text_embeddings, zero_shot_probabilities
        from keras_siglip2.evaluation.templates import resolve_templates

        labels = text_list(labels, "labels")
        classes = class_text_embeddings(
            labels, self.embed_texts, templates=resolve_templates(templates), verbose=False
        )
        probabilities = zero_shot_probabilities(
            self.embed_images(images, batch_size, max_num_patches),
            classes,
            *self.logit_parameters(),
        )
        if return_argmax:
            return probabilities, probabilities.argmax(axis=1)
        return probabilities

    def retrieve(self, queries, corpus, k=5, batch_size=32, max_num_patches=None):
        """The `k` corpus items most similar to each query.

        `queries` and `corpus` are each texts (a string / strings) or images (any
        image input); text→image, image→text, image→image and text→text all work.
        Returns `(indices (Q, k'), scores (Q, k'))` with `k' = min(k, corpus size)`,
        most similar first; scores are cosine similarities (higher is better, the
        same order as the sigmoid probabilities); ties go to the lower index.
        """
        from keras_siglip2.evaluation import top_k_neighbours

        def embed(items):
            if isinstance(items, str) or is_text_collection(items):
                return self.embed_texts(items)
            return self.embed_images(items, batch_size, max_num_patches)

        return top_k_neighbours(embed(queries), embed(corpus), k)

    # ---------------------------------------------------- dense features
    def patch_features(self, images, space="tokens", batch_size=32, max_num_patches=None):
        """Dense per-patch features, one float32 array `(h, w, D)` per image in a
        list; `(h, w)` is the image's patch grid (for NaFlex, each image's own grid,
        padding removed).

        `space="tokens"`: the un-pooled tokens after the final LayerNorm (the
        "dense features" of SPEC §1). `space="joint"`: each patch token pooled on
        its own by the MAP head (attention over a single key is its value path),
        then L2-normalised — a per-patch embedding comparable with text embeddings,
        used by `keras_siglip2.visualize.patch_similarity`.
        """
        if space not in ("tokens", "joint"):
            raise ValueError(f"`space` must be 'tokens' or 'joint'; got {space!r}.")
        vision = self.backbone.vision_encoder

        def encode(chunk):
            inputs = self.image_inputs(chunk, max_num_patches)
            tokens = vision.predict_on_batch(inputs)["patch_features"]
            if space == "joint":
                batch, count, width = tokens.shape
                flat = ops.reshape(ops.convert_to_tensor(tokens), (batch * count, 1, width))
                with without_autograd(vision):
                    pooled = _normalized(vision.pooling(flat))
                tokens = pooled.reshape(batch, count, width)
            return [
                np.asarray(t[: h * w], "float32").reshape(h, w, -1)
                for t, (h, w) in zip(ops.convert_to_numpy(tokens), _grids(vision, inputs))
            ]

        return _map_batches(
            encode, image_items(images), batch_size, "auto", "image", collection_size(images),
            stack=False,
        )

    # ----------------------------------------------------- localisation
    def locate(self, images, texts, max_num_patches=None, decoding="mean"):
        """Referring expressions: the box `(ymin, xmin, ymax, xmax)` in [0, 1] of
        `texts[i]` in `images[i]`, from the LocCa decoder's four coordinate
        tokens, decoded one after the other. Returns `(N, 4)` float32 NumPy.

        `decoding="mean"` (default): each coordinate is the mean of the
        decoder's distribution over the coordinate bins (the nearest bin is fed
        back for the next coordinate), which hedges between near bins where
        the model is unsure; `"greedy"`: the most likely bin's centre.
        """
        from keras_siglip2.preprocessing.locca_sequences import referring_prompt

        if self.decoder is None:
            raise ValueError("`locate` needs the LocCa decoder (build with locca=True).")
        if decoding not in ("mean", "greedy"):
            raise ValueError(f"`decoding` must be 'mean' or 'greedy'; got {decoding!r}.")
        texts = text_list(texts)
        inputs = self.image_inputs(images, max_num_patches)
        if len(texts) != len(next(iter(inputs.values()))):
            raise ValueError(f"Got {len(texts)} texts for {len(next(iter(inputs.values())))} images.")
        with without_autograd(self):  # eager calls: no autograd graph on PyTorch
            vision = self.backbone.vision_encoder(inputs)
            memory, memory_mask = vision["patch_features"], inputs.get("patch_mask")
            centres = self.image_positions(inputs, memory)
            tokens, positions = referring_prompt(
                self.text_inputs(texts), self.decoder.sequence_length
            )
            offset = self.decoder.text_vocabulary_size
            bins = self.num_coordinate_bins
            task = np.ones(len(texts), "int32")  # LocCaDecoder.TASKS[1]: referring
            rows = np.arange(len(texts))
            boxes = np.zeros((len(texts), 4), "float32")
            for step in range(4):  # ymin, xmin, ymax, xmax
                hidden = self.decoder(tokens, memory, memory_mask, task, image_positions=centres)
                logits = ops.convert_to_numpy(self.decoder.logits(hidden))
                scores = logits[rows, positions + step, offset : offset + bins].astype("float64")
                if decoding == "greedy":
                    chosen = scores.argmax(-1)
                    boxes[:, step] = (chosen + 0.5) / bins
                else:
                    probabilities = np.exp(scores - scores.max(-1, keepdims=True))
                    probabilities /= probabilities.sum(-1, keepdims=True)
                    expected = probabilities @ np.arange(bins)
                    chosen = np.rint(expected).astype("int64")
                    boxes[:, step] = (expected + 0.5) / bins
                tokens[rows, positions + step + 1] = offset + chosen
            return boxes

    # ------------------------------------------------------------ export
    def export(self, filepath, format="tf_saved_model", max_num_patches=None, verbose=True):
        """Export the image and text encoders for serving without this package.

        `format="tf_saved_model"`: a SavedModel directory with preprocessing
        inside (signatures `embed_images` on uint8 pixels, `embed_texts` on
        strings) and the bare towers (`image_encoder`, `text_encoder`).
        `format="onnx"`: a directory with `image_encoder.onnx`,
        `text_encoder.onnx` (bare towers) and `siglip2_export.json`, which
        documents the preprocessing to apply before them.
        `format=["tf_saved_model", "onnx"]`: both, in `filepath/<format>`.
        See `keras_siglip2.export`. Returns the path written.
        """
        from keras_siglip2.export import export_model

        return export_model(
            self, filepath, format=format, max_num_patches=max_num_patches, verbose=verbose
        )


# ---------------------------------------------------------------- helpers
def without_autograd(model):
    """A context for eager inference calls outside Keras' loops (whose
    `predict` already runs under `no_grad`): on PyTorch `torch.inference_mode()`,
    so that no autograd graph is recorded, unless `model` is not built yet
    (weights created inside would be inference tensors that training cannot
    use). Elsewhere, no change."""
    if keras.backend.backend() != "torch" or not model.built:
        return contextlib.nullcontext()
    import torch

    return torch.inference_mode()


def _normalized(pooled):
    return ops.convert_to_numpy(l2_normalize(ops.convert_to_tensor(pooled, "float32")))


def _grids(vision, inputs):
    """Patch grid `(h, w)` of each image in a batch of tower inputs."""
    if vision.naflex:
        return [tuple(int(v) for v in s) for s in inputs["spatial_shapes"]]
    side = vision.image_size // vision.patch_size
    return [(side, side)] * len(inputs["images"])


def _map_batches(encode, items, batch_size, verbose, unit, total=None, stack=True):
    """Apply `encode(list) -> (b, …)` to `items` in chunks of `batch_size`; return
    the concatenation (or, with `stack=False`, the concatenated lists)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be a positive int; got {batch_size!r}.")
    outputs, done, progbar = [], 0, None
    items = iter(items)
    for index in itertools.count():
        chunk = list(itertools.islice(items, batch_size))
        if not chunk:
            break
        result = encode(chunk)
        if stack:
            result = ops.convert_to_numpy(result)
        outputs.append(result)
        done += len(chunk)
        show = index == 8 if verbose == "auto" else bool(verbose)
        if progbar is None and show:
            progbar = keras.utils.Progbar(total, unit_name=unit)
        if progbar is not None:
            progbar.update(done)
    if progbar is not None:
        progbar.update(done, finalize=True)
    if not outputs:
        raise ValueError(f"Got no {unit}s: the input is empty.")
    if stack:
        return np.concatenate(outputs, axis=0)
    return [x for chunk in outputs for x in chunk]
