"""`SigLIP2.compile` refuses arguments that would train wrongly or not at all
(a negative rate ascends, `total_steps < 1` pins the rate at 0), naming the
argument; good arguments, including the edge values, are accepted."""

import math

import pytest

from tests.training.helpers import tiny_model


@pytest.fixture(scope="module")
def model():
    return tiny_model(naflex=False, seed=0, locca=False)


BAD = [
    ("negative-rate", dict(learning_rate=-1.0), ValueError, "`learning_rate` must be a finite number > 0; got -1.0"),
    ("negative-int-rate", dict(learning_rate=-1), ValueError, "`learning_rate` must be .* > 0"),
    ("zero-rate", dict(learning_rate=0.0), ValueError, "`learning_rate`"),
    ("nan-rate", dict(learning_rate=math.nan), ValueError, "`learning_rate` must be a finite"),
    ("string-rate", dict(learning_rate="fast"), TypeError, "`learning_rate` must be a number; got str"),
    ("bool-rate", dict(learning_rate=True), TypeError, "`learning_rate` must be a number; got bool"),
    ("negative-total", dict(total_steps=-5), ValueError, "`total_steps` must be ≥ 1; got -5"),
    ("zero-total", dict(total_steps=0), ValueError, "`total_steps` must be ≥ 1"),
    ("float-total", dict(total_steps=10.5), TypeError, "`total_steps` must be an int"),
    ("negative-warmup", dict(warmup_steps=-1), ValueError, "`warmup_steps` must be ≥ 0"),
    ("warmup-past-total", dict(warmup_steps=20, total_steps=10), ValueError, "must not exceed `total_steps`"),
    ("negative-decay", dict(weight_decay=-1e-4), ValueError, "`weight_decay`"),
    ("zero-clipnorm", dict(global_clipnorm=0.0), ValueError, "`global_clipnorm` must be a finite number > 0"),
    ("string-loss-weight", dict(loss_weights={"sigmoid": "x"}), TypeError, r"`loss_weights\['sigmoid'\]` must be a number"),
    ("negative-loss-weight", dict(loss_weights={"locca": -1.0}), ValueError, r"`loss_weights\['locca'\]`"),
    ("loss-weights-list", dict(loss_weights=[1.0]), TypeError, "`loss_weights` must be a dict"),
    ("unknown-loss-weight", dict(loss_weights={"contrastive": 1.0}), ValueError, "Unknown loss weights"),
    ("zero-chunk", dict(chunk_size=0), ValueError, "`chunk_size` must be ≥ 1"),
    ("string-fraction", dict(curation_fraction="half"), TypeError, "`curation_fraction` must be a number"),
]


@pytest.mark.parametrize("arguments, error, message", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_bad_compile_arguments_are_refused(model, arguments, error, message):
    with pytest.raises(error, match=message):
        model.compile(**arguments)


@pytest.mark.parametrize(
    "arguments",
    [
        dict(),
        dict(learning_rate=1, total_steps=1, warmup_steps=1),
        dict(learning_rate=3e-3, warmup_steps=0, total_steps=None, global_clipnorm=None),
        dict(weight_decay=0, loss_weights={"sigmoid": 0.0}),
    ],
    ids=["defaults", "one-step", "constant-rate", "zero-weights"],
)
def test_edge_values_are_accepted(model, arguments):
    model.compile(**arguments)
    assert float(model.optimizer.learning_rate) >= 0.0
