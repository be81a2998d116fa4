"""naflex_target_size: SPEC §2 cases, transformers parity, TF graph version."""

import numpy as np
import pytest
import tensorflow as tf

from keras_siglip2.preprocessing import naflex_target_size
from keras_siglip2.preprocessing import naflex_target_size_tf

# SPEC §2: (H, W, P, N) -> (target H, target W)
REFERENCE_CASES = [
    ((48, 48, 3, 121), (33, 33)),
    ((112, 109, 7, 225), (105, 105)),
    ((256, 64, 16, 12), (96, 32)),
    ((256, 64, 8, 15), (56, 16)),
    ((63, 241, 16, 16), (32, 128)),
    ((16, 512, 16, 16), (16, 256)),
    ((480, 640, 16, 256), (224, 288)),
    ((1080, 1920, 16, 256), (192, 336)),
]


def random_cases(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        if i % 3 == 0:  # extreme aspect ratios
            short, long = int(rng.integers(1, 40)), int(rng.integers(200, 20000))
            h, w = (short, long) if i % 2 else (long, short)
        else:
            h, w = (int(v) for v in rng.integers(1, 4097, 2))
        p = int(rng.choice([1, 2, 3, 7, 8, 14, 16, 32]) if i % 4 else rng.integers(1, 65))
        n_max = int(rng.choice([1, 2, 16, 128, 256, 576, 784, 1024]) if i % 5 else rng.integers(1, 4097))
        cases.append((h, w, p, n_max))
    return cases


@pytest.mark.parametrize("args,expected", REFERENCE_CASES)
def test_spec_reference_cases(args, expected):
    assert naflex_target_size(*args) == expected


def test_spec_reference_cases_in_tf_graph():
    h, w, p, n = (tf.constant(list(c)) for c in zip(*[a for a, _ in REFERENCE_CASES]))
    th, tw = tf.function(naflex_target_size_tf)(h, w, p, n)
    assert list(zip(th.numpy().tolist(), tw.numpy().tolist())) == [e for _, e in REFERENCE_CASES]


def test_tf_graph_version_equals_python_version():
    cases = random_cases(seed=1) + [a for a, _ in REFERENCE_CASES]
    columns = [tf.constant(list(c), tf.int32) for c in zip(*cases)]
    th, tw = tf.function(naflex_target_size_tf)(*columns)
    expected = [naflex_target_size(*c) for c in cases]
    assert list(zip(th.numpy().tolist(), tw.numpy().tolist())) == expected
    # Scalar Python ints work too (the converters call it per image).
    assert tuple(int(v) for v in naflex_target_size_tf(1080, 1920, 16, 256)) == (192, 336)


def test_invariants():
    for h, w, p, n in random_cases(300, seed=2):
        th, tw = naflex_target_size(h, w, p, n)
        assert th % p == 0 and tw % p == 0 and th >= p and tw >= p
        assert (th // p) * (tw // p) <= max(n, 1)
    # A 1-pixel image is scaled up by at most 100×.
    assert naflex_target_size(1, 1, 16, 256) == (112, 112)
    assert naflex_target_size(1, 10000, 16, 256) == (16, 4096)


@pytest.mark.parametrize("bad", [(0, 10, 16, 256), (10, -1, 16, 256), (10, 10, 0, 256),
                                 (10, 10, 16, 0), (10.5, 10, 16, 256), (True, 10, 16, 256)])
def test_bad_arguments(bad):
    with pytest.raises(ValueError, match="positive int"):
        naflex_target_size(*bad)
