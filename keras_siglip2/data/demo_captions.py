"""Captions of the demo dataset in five languages: word tables and grammar.

Every caption is lowercase (the SigLIP 2 text pipeline lowercases). A language
is one entry of `_LANGUAGES`: its words, a `phrase` function (how adjectives
agree with a noun), how a list of phrases is joined, and the four caption
templates. Colours, shapes, sizes and backgrounds are keyed by their English
names, the names `demo_shapes` uses.
"""

import dataclasses
import functools
from typing import Callable

# German: grammatical gender decides the strong adjective ending after "ein"
# (nominative: m -er, n -es); after "einem" (dative) every ending is -en.
_DE = {
    "colour": {"red": "rot", "orange": "orangefarben", "yellow": "gelb", "green": "grün",
               "blue": "blau", "purple": "violett"},
    "shape": {"circle": ("kreis", "m"), "square": ("quadrat", "n"), "triangle": ("dreieck", "n"),
              "star": ("stern", "m"), "cross": ("kreuz", "n"), "ring": ("ring", "m")},
    "size": {"large": "groß", "small": "klein"},
}

# French: colour after the noun, size before; feminine nouns take feminine forms.
_FR = {
    "colour": {"red": ("rouge", "rouge"), "orange": ("orange", "orange"),
               "yellow": ("jaune", "jaune"), "green": ("vert", "verte"),
               "blue": ("bleu", "bleue"), "purple": ("violet", "violette")},
    "shape": {"circle": ("cercle", "m"), "square": ("carré", "m"), "triangle": ("triangle", "m"),
              "star": ("étoile", "f"), "cross": ("croix", "f"), "ring": ("anneau", "m")},
    "size": {"large": ("grand", "grande"), "small": ("petit", "petite")},
}

# Russian: adjectives agree in gender (m, f, n), nominative only.
_RU = {
    "colour": {"red": ("красный", "красная", "красное"),
               "orange": ("оранжевый", "оранжевая", "оранжевое"),
               "yellow": ("жёлтый", "жёлтая", "жёлтое"),
               "green": ("зелёный", "зелёная", "зелёное"),
               "blue": ("синий", "синяя", "синее"),
               "purple": ("фиолетовый", "фиолетовая", "фиолетовое")},
    "shape": {"circle": ("круг", "m"), "square": ("квадрат", "m"),
              "triangle": ("треугольник", "m"), "star": ("звезда", "f"),
              "cross": ("крест", "m"), "ring": ("кольцо", "n")},
    "size": {"large": ("большой", "большая", "большое"),
             "small": ("маленький", "маленькая", "маленькое")},
}
_RU_GENDER_INDEX = {"m": 0, "f": 1, "n": 2}

# Japanese: no spaces; adjectives precede nouns; the background phrase comes first.
_JA = {
    "colour": {"red": "赤い", "orange": "オレンジ色の", "yellow": "黄色い", "green": "緑の",
               "blue": "青い", "purple": "紫の"},
    "shape": {"circle": "円", "square": "正方形", "triangle": "三角形", "star": "星",
              "cross": "十字", "ring": "リング"},
    "size": {"large": "大きな", "small": "小さな"},
}

# Phrase forms: "bare" ("red circle", region texts and class names), "a" (with
# the indefinite article where the language has one: "a red circle") and
# "dative" (German "einem roten kreis"; elsewhere the same as "a").


def _en_phrase(colour, shape, size=None, form="bare"):
    text = " ".join(([size] if size else []) + [colour, shape])
    if form == "bare":
        return text
    return ("an " if text[0] in "aeiou" else "a ") + text


def _de_phrase(colour, shape, size=None, form="bare"):
    noun, gender = _DE["shape"][shape]
    ending = "en" if form == "dative" else ("er" if gender == "m" else "es")
    adjectives = ([_DE["size"][size]] if size else []) + [_DE["colour"][colour]]
    article = {"bare": [], "a": ["ein"], "dative": ["einem"]}[form]
    return " ".join(article + [a + ending for a in adjectives] + [noun])


def _fr_phrase(colour, shape, size=None, form="bare"):
    noun, gender = _FR["shape"][shape]
    g = 1 if gender == "f" else 0
    words = ([_FR["size"][size][g]] if size else []) + [noun, _FR["colour"][colour][g]]
    if form != "bare":
        words = ["une" if g else "un"] + words
    return " ".join(words)


def _ru_phrase(colour, shape, size=None, form="bare"):
    noun, gender = _RU["shape"][shape]
    g = _RU_GENDER_INDEX[gender]
    return " ".join(([_RU["size"][size][g]] if size else []) + [_RU["colour"][colour][g], noun])


def _ja_phrase(colour, shape, size=None, form="bare"):
    return (_JA["size"][size] if size else "") + _JA["colour"][colour] + _JA["shape"][shape]


def _join(items, conjunction):
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + f" {conjunction} " + items[-1]


@dataclasses.dataclass(frozen=True)
class _Language:
    phrase: Callable  # (colour, shape, size=None, form="bare") -> str
    join: Callable  # [phrase, ...] -> str
    backgrounds: dict  # background kind -> phrase
    # Templates 0–3; fields: {main} (the main object), {all} (every object with
    # sizes), {all_dative}, {background}.
    templates: tuple


_LANGUAGES = {
    "en": _Language(
        _en_phrase,
        functools.partial(_join, conjunction="and"),
        {"plain": "on a plain background", "gradient": "on a gradient background",
         "noise": "on a noisy background", "stripes": "on a striped background"},
        ("{main}", "{main} {background}", "{all}", "a picture of {all} {background}"),
    ),
    "de": _Language(
        _de_phrase,
        functools.partial(_join, conjunction="und"),
        {"plain": "auf einfarbigem hintergrund", "gradient": "auf einem farbverlauf",
         "noise": "auf verrauschtem hintergrund", "stripes": "auf gestreiftem hintergrund"},
        ("{main}", "{main} {background}", "{all}", "ein bild mit {all_dative} {background}"),
    ),
    "fr": _Language(
        _fr_phrase,
        functools.partial(_join, conjunction="et"),
        {"plain": "sur un fond uni", "gradient": "sur un fond dégradé",
         "noise": "sur un fond bruité", "stripes": "sur un fond rayé"},
        ("{main}", "{main} {background}", "{all}", "une image avec {all} {background}"),
    ),
    "ru": _Language(
        _ru_phrase,
        functools.partial(_join, conjunction="и"),
        {"plain": "на однотонном фоне", "gradient": "на градиентном фоне",
         "noise": "на зашумлённом фоне", "stripes": "на полосатом фоне"},
        ("{main}", "{main} {background}", "{all}", "на картинке {all} {background}"),
    ),
    "ja": _Language(
        _ja_phrase,
        "と".join,
        {"plain": "無地の背景に", "gradient": "グラデーションの背景に",
         "noise": "ノイズのある背景に", "stripes": "縞模様の背景に"},
        ("{main}", "{background}{main}", "{all}", "{background}{all}の画像"),
    ),
}

LANGUAGES = tuple(_LANGUAGES)
NUM_TEMPLATES = 4


def _language(language):
    if language not in _LANGUAGES:
        raise ValueError(f"Unknown language {language!r}; expected one of {LANGUAGES}.")
    return _LANGUAGES[language]


def region_text(colour, shape, language="en"):
    """The bare "colour shape" phrase of a region (and class) in `language`."""
    return _language(language).phrase(colour, shape)


def caption(objects, background, language, template):
    """A caption for `objects` [(colour, shape), …] (main object first).

    Templates: 0 main object alone, 1 main object and background, 2 every object with
    sizes (when there are several), 3 "a picture of …" every object and the background.
    """
    grammar = _language(language)
    sizes = [None] * len(objects) if len(objects) == 1 else ["large"] + ["small"] * (len(objects) - 1)
    sized = [(c, s, z) for (c, s), z in zip(objects, sizes)]
    return grammar.templates[template].format(
        main=grammar.phrase(*objects[0], form="a"),
        all=grammar.join([grammar.phrase(*o, form="a") for o in sized]),
        all_dative=grammar.join([grammar.phrase(*o, form="dative") for o in sized]),
        background=grammar.backgrounds[background],
    )
