"""Prompt templates for zero-shot classification.

`IMAGENET_TEMPLATES` holds the 80 ImageNet prompt templates published by OpenAI with
CLIP (the CLIP repository's notebook "Prompt_Engineering_for_ImageNet.ipynb"), in
their published order. SigLIP and SigLIP 2 report ImageNet zero-shot accuracy with
these templates plus the bare class name, `"{}"`:
`IMAGENET_TEMPLATES_WITH_PLAIN` (81 templates, the default of
`class_text_embeddings`).

Each template contains `"{}"` where the class name goes. Prompts are canonicalised
afterwards (`canonicalize_text(..., mode="eval")`: punctuation dropped, lower-cased),
so "a photo of a {}." is embedded as "a photo of a cat".
"""

IMAGENET_TEMPLATES = (
    "a bad photo of a {}.",
    "a photo of many {}.",
    "a sculpture of a {}.",
    "a photo of the hard to see {}.",
    "a low resolution photo of the {}.",
    "a rendering of a {}.",
    "graffiti of a {}.",
    "a bad photo of the {}.",
    "a cropped photo of the {}.",
    "a tattoo of a {}.",
    "the embroidered {}.",
    "a photo of a hard to see {}.",
    "a bright photo of a {}.",
    "a photo of a clean {}.",
    "a photo of a dirty {}.",
    "a dark photo of the {}.",
    "a drawing of a {}.",
    "a photo of my {}.",
    "the plastic {}.",
    "a photo of the cool {}.",
    "a close-up photo of a {}.",
    "a black and white photo of the {}.",
    "a painting of the {}.",
    "a painting of a {}.",
    "a pixelated photo of the {}.",
    "a sculpture of the {}.",
    "a bright photo of the {}.",
    "a cropped photo of a {}.",
    "a plastic {}.",
    "a photo of the dirty {}.",
    "a jpeg corrupted photo of a {}.",
    "a blurry photo of the {}.",
    "a photo of the {}.",
    "a good photo of the {}.",
    "a rendering of the {}.",
    "a {} in a video game.",
    "a photo of one {}.",
    "a doodle of a {}.",
    "a close-up photo of the {}.",
    "a photo of a {}.",
    "the origami {}.",
    "the {} in a video game.",
    "a sketch of a {}.",
    "a doodle of the {}.",
    "a origami {}.",
    "a low resolution photo of a {}.",
    "the toy {}.",
    "a rendition of the {}.",
    "a photo of the clean {}.",
    "a photo of a large {}.",
    "a rendition of a {}.",
    "a photo of a nice {}.",
    "a photo of a weird {}.",
    "a blurry photo of a {}.",
    "a cartoon {}.",
    "art of a {}.",
    "a sketch of the {}.",
    "a embroidered {}.",
    "a pixelated photo of a {}.",
    "itap of the {}.",
    "a jpeg corrupted photo of the {}.",
    "a good photo of a {}.",
    "a plushie {}.",
    "a photo of the nice {}.",
    "a photo of the small {}.",
    "a photo of the weird {}.",
    "the cartoon {}.",
    "art of the {}.",
    "a drawing of the {}.",
    "a photo of the large {}.",
    "a black and white photo of a {}.",
    "the plushie {}.",
    "a dark photo of a {}.",
    "itap of a {}.",
    "graffiti of the {}.",
    "a toy {}.",
    "itap of my {}.",
    "a photo of a cool {}.",
    "a photo of a small {}.",
    "a tattoo of the {}.",
)

IMAGENET_TEMPLATES_WITH_PLAIN = IMAGENET_TEMPLATES + ("{}",)

PLACEHOLDER = "{}"


def fill_template(template, class_name):
    """Put `class_name` where `template` has `"{}"` (plain substitution, no
    `str.format`, so braces inside a class name or a template are left alone)."""
    return template.replace(PLACEHOLDER, class_name)


TEMPLATE_SETS = {"plain": ("{}",), "imagenet": IMAGENET_TEMPLATES_WITH_PLAIN}


def resolve_templates(templates):
    """`"plain"` → `("{}",)`, `"imagenet"` → the 80 CLIP templates plus `"{}"`;
    a sequence of templates is returned as a tuple."""
    if isinstance(templates, str):
        if templates not in TEMPLATE_SETS:
            raise ValueError(
                f"Unknown template set {templates!r}: use one of {sorted(TEMPLATE_SETS)} "
                "or a list of templates containing '{}'."
            )
        return TEMPLATE_SETS[templates]
    return tuple(templates)
