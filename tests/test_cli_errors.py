"""Every `siglip2` command, given bad input, prints exactly one `error: ...`
line (a long message continues on indented lines), no traceback, no Keras
wrapping or ANSI codes, and exits with status 1 — in process and through the
real command."""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_siglip2 import cli
from tests.presets.offline import stalled_server  # noqa: F401  (fixture)
from tests.training.helpers import tiny_model

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Tiny fixed and NaFlex presets and the bad inputs the commands get."""
    root = tmp_path_factory.mktemp("cli_errors")
    tiny_model(naflex=True, seed=4, locca=False).save_to_preset(root / "naflex")
    tiny_model(naflex=False, seed=5, locca=False).save_to_preset(root / "fixed")
    Image.fromarray(np.zeros((12, 12, 3), np.uint8)).save(root / "good.png")
    (root / "broken.png").write_bytes(b"\x89PNG but not really")
    (root / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    (root / "bad.jsonl").write_text(json.dumps({"image": "good.png", "caption": 5}) + "\n")
    (root / "corrupt").mkdir()
    (root / "corrupt" / "config.json").write_text("{not json")
    (root / "images").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "images" / "0.png")
    train = {"data": "missing.jsonl", "steps": 2, "batch_size": 2, "output_dir": "run", "model": "tiny"}
    (root / "missing.jsonl").write_text(json.dumps({"image": "gone.png", "caption": "x"}) + "\n")
    (root / "null.jsonl").write_text(json.dumps({"image": "good.png", "caption": None}) + "\n")
    configs = {
        "all_missing": train,
        "null_caption": {**train, "data": "null.jsonl"},
        "patches_on_fixed": {**train, "data": "demo:8", "max_num_patches": 16},
        "string_rate": {**train, "data": "demo:8", "learning_rate": "fast"},
    }
    for name, config in configs.items():
        (root / f"{name}.json").write_text(json.dumps(config))
    return root


CASES = [
    ("zero-shot-corrupt-image", "zero-shot {root}/broken.png --labels a,b --preset {root}/naflex",
     "Could not read image file .*broken.png"),
    ("zero-shot-patches-on-fixed", "zero-shot {root}/good.png --labels a --max-num-patches 4 --preset {root}/fixed",
     "NaFlex models only"),
    ("zero-shot-zero-patches", "zero-shot {root}/good.png --labels a --max-num-patches 0 --preset {root}/naflex",
     "`max_num_patches` must be a positive int"),
    ("embed-zero-batch", "embed {root}/good.png --output {tmp}/o.npy --batch-size 0 --preset {root}/naflex",
     "`batch_size` must be a positive int"),
    ("embed-texts-file-not-utf8", "embed --texts-file {root}/latin1.txt --output {tmp}/o.npy --preset {root}/naflex",
     "latin1.txt is not UTF-8 text"),
    ("embed-undecodable-argument", "embed --texts a\udcffb --output {tmp}/o.npy --preset {root}/naflex",
     "not valid Unicode"),
    ("eval-caption-not-text", "eval retrieval {root}/bad.jsonl --preset {root}/naflex",
     "bad.jsonl:1: 'caption' must be a string"),
    ("heatmap-corrupt-image", "heatmap {root}/broken.png --text a --output {tmp}/h.png --preset {root}/naflex",
     "Could not read image file"),
    ("export-into-a-full-folder", "export {root}/images --preset {root}/naflex", "not an empty folder"),
    ("train-every-image-missing", "train {root}/all_missing.json", "no usable example"),
    ("train-null-caption", "train {root}/null_caption.json", "null.jsonl:1: 'caption' must be a string; got null"),
    ("train-patches-on-fixed", "train {root}/patches_on_fixed.json", "applies to NaFlex models only"),
    ("train-string-rate", "train {root}/string_rate.json", "`learning_rate` must be a number; got str"),
    ("demo-zero-steps", "demo --steps 0 --output-dir {tmp}/demo", r"`steps` \(--steps\) must be a positive integer"),
    ("convert-corrupt-config", "convert {root}/corrupt {tmp}/out", "config.json is not valid JSON"),
    ("convert-bad-dtype", "convert {root}/naflex {tmp}/out --dtype garbage", "`dtype` must be a dtype policy"),
]


def assert_one_error_line(err, message):
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, err
    assert "Traceback" not in err and "\x1b" not in err and "Exception encountered" not in err, err
    assert re.search(message, errors[0]), (message, err)


@pytest.mark.parametrize("command, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_prints_one_error_line(files, command, message, tmp_path, capsys):
    argv = command.format(root=files, tmp=tmp_path).split()
    assert cli.main(argv) == 1
    assert_one_error_line(capsys.readouterr().err, message)


def test_unexpected_errors_name_their_type(monkeypatch, capsys):
    from keras_siglip2 import configs

    def broken(verbose):
        raise KeyError("presets")

    monkeypatch.setattr(configs, "list_presets", broken)
    assert cli.main(["presets"]) == 1
    assert_one_error_line(capsys.readouterr().err, "error: KeyError: 'presets'")


def test_ctrl_c_outside_training_exits_130(monkeypatch, capsys):
    from keras_siglip2 import configs

    def interrupted(verbose):
        raise KeyboardInterrupt

    monkeypatch.setattr(configs, "list_presets", interrupted)
    assert cli.main(["presets"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted."


@pytest.fixture
def stalled_proxy(stalled_server, monkeypatch):
    from keras_siglip2.presets import hubs

    url, _ = stalled_server
    monkeypatch.setattr(hubs, "_recent_failures", {})
    environment = {"HTTPS_PROXY": url, "HTTP_PROXY": url, "KERAS_SIGLIP2_HUB_TIMEOUT": "2"}
    for name in ("no_proxy", "NO_PROXY", "https_proxy", "http_proxy", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    return environment


def test_a_stalled_hub_is_one_error_line_with_the_remedies(files, stalled_proxy, tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants

    for name, value in stalled_proxy.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kaggle"))
    start = time.monotonic()
    argv = ["embed", "--texts", "a", "--output", str(tmp_path / "o.npy"), "--preset",
            "kaggle://keras/siglip/keras/siglip2_base_patch16_224"]
    assert cli.main(argv) == 1
    assert time.monotonic() - start < 2 + 3
    err = capsys.readouterr().err
    assert_one_error_line(err, "error: Could not fetch the SigLIP 2 preset 'kaggle://")
    assert "\n    - kaggle://keras/siglip/keras/siglip2_base_patch16_224: cannot reach Kaggle" in err
    assert "\n  or pass a local path" in err


@pytest.mark.slow
def test_the_real_command_fails_in_time_through_a_stalled_proxy(stalled_proxy, tmp_path):
    environment = {
        **os.environ, **stalled_proxy, "HF_HUB_CACHE": str(tmp_path / "hf"),
        "KAGGLEHUB_CACHE": str(tmp_path / "kaggle"), "PYTHONPATH": str(REPO),
    }
    for name in ("no_proxy", "NO_PROXY"):
        environment.pop(name, None)

    def zero_shot():
        return subprocess.run(
            [sys.executable, "-m", "keras_siglip2.cli", "zero-shot", str(tmp_path), "--labels",
             "a", "--preset", "hf://google/siglip2-base-patch16-224"],
            cwd=REPO, env=environment, capture_output=True, text=True, timeout=300,
        )

    done = zero_shot()
    assert done.returncode == 1, done.stderr
    # The folder has no images: bad input is found before anything is fetched.
    assert_one_error_line(done.stderr, "No images in the folder")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "0.png")
    done = zero_shot()
    assert done.returncode == 1, done.stderr
    assert_one_error_line(done.stderr, "error: Could not fetch the SigLIP 2 preset 'hf://")
    assert "no answer from 127.0.0.1" in done.stderr and "through the proxy" in done.stderr
