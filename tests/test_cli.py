"""The `siglip2` command: help, listing, and clear failures with exit codes."""

import pytest

from keras_siglip2 import cli


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
