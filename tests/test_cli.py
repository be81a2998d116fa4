"""The `siglip2` command: help, listing, and clear failures with exit codes
before any model is loaded. With a model: `integration/end_to_end/test_cli.py`."""

import pytest
from PIL import Image

from keras_siglip2 import cli
from keras_siglip2.data import make_demo_examples


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for command in ("demo", "convert", "presets"):
        assert command in out


def test_presets_lists_aliases_and_counts(capsys):
    assert cli.main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "siglip2_so400m_patch14_384" in out and "1,136,008,498" in out and "so400m" in out


def test_convert_of_unknown_name_fails_with_close_matches(tmp_path, capsys):
    assert cli.main(["convert", "so400n", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "Unknown SigLIP 2 preset 'so400n'" in err and "so400m" in err


def test_missing_arguments_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["convert"])
    assert exit_info.value.code == 2


# ------------------------------------------------------------ model commands

COMMANDS = ("zero-shot", "embed", "eval", "heatmap", "export", "train", "demo", "convert", "presets")


@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    for i, example in enumerate(make_demo_examples(3, split="test")):
        Image.fromarray(example["image"]).save(folder / f"{i}.png")
    return folder


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--backend" in out
    if command in ("zero-shot", "embed", "eval", "heatmap", "export"):
        assert "--preset" in out and "alias" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["zero-shot", "{images}/0.png", "--labels", " , "], "--labels is empty"),
        (["zero-shot", "{images}/0.png", "--labels", "cat,cat"], "duplicates"),
        (["zero-shot", "{tmp}/missing.png", "--labels", "cat"], "does not exist"),
        (["zero-shot", "{tmp}", "--labels", "cat,dog"], "No images in the folder"),
        (["embed", "{images}", "--output", "{tmp}/out.csv"], "must end in .npy or .parquet"),
        (["embed", "--texts", "--output", "{tmp}/out.npy"], "Nothing to embed"),
        (["train", "{tmp}/missing.json"], "No such file"),
    ],
)
def test_bad_input_fails_before_loading_a_model(argv, message, image_files, tmp_path, capsys):
    argv = [a.format(images=image_files, tmp=tmp_path) for a in argv]
    # A preset that does not exist: these must fail on the input, before loading.
    assert cli.main([*argv, *(["--preset", "not-a-preset"] if argv[0] != "train" else [])]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
