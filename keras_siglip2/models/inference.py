"""Inference methods of `SigLIP2`: embeddings, zero-shot, localisation."""

import numpy as np
from keras import ops

from keras_siglip2.layers.similarity import l2_normalize


class InferenceMethods:
    """Mixed into `SigLIP2`; expects `self.backbone`, `self.preprocessor` and
    (for `locate`) `self.decoder`, `self.num_coordinate_bins`."""

    def _require_preprocessor(self, part):
        component = getattr(self.preprocessor, part, None) if self.preprocessor else None
        if component is None:
            raise ValueError(
                f"This model has no {part.replace('_', ' ')}: build it with a "
                "`SigLIP2Preprocessor`, or load one with `SigLIP2.from_preset`."
            )
        return component

    def image_inputs(self, images, max_num_patches=None):
        """Raw images (arrays, PIL images, paths, bytes) → image-tower inputs."""
        converter = self._require_preprocessor("image_converter")
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
        texts = [texts] if isinstance(texts, str) else list(texts)
        if len(texts) == 0:
            raise ValueError("Got an empty list of texts.")
        return ops.convert_to_numpy(tokenizer(texts)).astype("int32")

    def embed_images(self, images, batch_size=32, max_num_patches=None, verbose="auto"):
        """L2-normalised image embeddings `(N, D)` float32 NumPy."""
        inputs = self.image_inputs(images, max_num_patches)
        pooled = self.backbone.vision_encoder.predict(
            inputs, batch_size=batch_size, verbose=_verbosity(verbose, len(images), batch_size)
        )["pooled"]
        return ops.convert_to_numpy(l2_normalize(ops.convert_to_tensor(pooled, "float32")))

    def embed_texts(self, texts, batch_size=64, verbose="auto"):
        """L2-normalised text embeddings `(N, D)` float32 NumPy."""
        token_ids = self.text_inputs(texts)
        pooled = self.backbone.text_encoder.predict(
            {"token_ids": token_ids},
            batch_size=batch_size,
            verbose=_verbosity(verbose, len(token_ids), batch_size),
        )["pooled"]
        return ops.convert_to_numpy(l2_normalize(ops.convert_to_tensor(pooled, "float32")))

    def zero_shot(self, images, labels, templates=("{}",), batch_size=32):
        """Sigmoid probabilities `(N, C)` of each label for each image (independent
        per pair, SPEC §1), with prompt-ensembled label embeddings."""
        from keras_siglip2.evaluation import class_text_embeddings, zero_shot_probabilities

        labels = [labels] if isinstance(labels, str) else list(labels)
        classes = class_text_embeddings(labels, self.embed_texts, templates=templates)
        head = self.backbone.logit_head
        return zero_shot_probabilities(
            self.embed_images(images, batch_size),
            classes,
            float(ops.convert_to_numpy(head.log_temperature)),
            float(ops.convert_to_numpy(head.bias)),
        )

    def locate(self, images, texts, max_num_patches=None):
        """Referring expressions: the box `(ymin, xmin, ymax, xmax)` in [0, 1] of
        `texts[i]` in `images[i]`, decoded greedily from the LocCa decoder's
        coordinate tokens. Returns `(N, 4)` float32 NumPy."""
        from keras_siglip2.preprocessing.locca_sequences import referring_prompt
        from keras_siglip2.preprocessing.boxes import tokens_to_boxes

        if self.decoder is None:
            raise ValueError("`locate` needs the LocCa decoder (build with locca=True).")
        texts = [texts] if isinstance(texts, str) else list(texts)
        inputs = self.image_inputs(images, max_num_patches)
        if len(texts) != len(next(iter(inputs.values()))):
            raise ValueError(f"Got {len(texts)} texts for {len(next(iter(inputs.values())))} images.")
        vision = self.backbone.vision_encoder(inputs)
        memory, memory_mask = vision["patch_features"], inputs.get("patch_mask")
        tokens, positions = referring_prompt(self.text_inputs(texts), self.decoder.sequence_length)
        offset = self.decoder.text_vocabulary_size
        task = np.ones(len(texts), "int32")  # LocCaDecoder.TASKS[1]: referring
        rows = np.arange(len(texts))
        for step in range(4):  # ymin, xmin, ymax, xmax
            hidden = self.decoder(tokens, memory, memory_mask, task)
            logits = ops.convert_to_numpy(self.decoder.logits(hidden))
            choice = logits[rows, positions + step, offset:].argmax(-1)
            tokens[rows, positions + step + 1] = offset + choice
        box_tokens = tokens[rows[:, None], positions[:, None] + 1 + np.arange(4)]
        return tokens_to_boxes(box_tokens, offset, self.num_coordinate_bins).astype("float32")


def _verbosity(verbose, count, batch_size):
    if verbose == "auto":
        return 1 if count > 8 * batch_size else 0
    return verbose
