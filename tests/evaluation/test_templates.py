from keras_siglip2.evaluation import IMAGENET_TEMPLATES
from keras_siglip2.evaluation import IMAGENET_TEMPLATES_WITH_PLAIN
from keras_siglip2.evaluation.templates import fill_template


def test_eighty_distinct_templates_with_one_placeholder_each():
    assert len(IMAGENET_TEMPLATES) == 80
    assert len(set(IMAGENET_TEMPLATES)) == 80
    assert all(t.count("{}") == 1 for t in IMAGENET_TEMPLATES)
    # Published order: first and last entries of CLIP's list.
    assert IMAGENET_TEMPLATES[0] == "a bad photo of a {}."
    assert IMAGENET_TEMPLATES[-1] == "a tattoo of the {}."
    assert "itap of my {}." in IMAGENET_TEMPLATES


def test_with_plain_adds_bare_class_name_last():
    assert IMAGENET_TEMPLATES_WITH_PLAIN[:80] == IMAGENET_TEMPLATES
    assert IMAGENET_TEMPLATES_WITH_PLAIN[80:] == ("{}",)


def test_fill_template_is_plain_substitution():
    assert fill_template("a {} in a video game.", "cat") == "a cat in a video game."
    # Braces in a class name are not interpreted (str.format would fail or substitute).
    assert fill_template("a photo of a {}.", "{0} thing") == "a photo of a {0} thing."
