"""The `siglip2` commands end to end on a tiny random model saved as a preset
(and one trained by `siglip2 train`): embeddings and zero-shot output, clear
failures on bad data with a model loaded, training with resume."""

import json

import numpy as np
import pytest

from keras_siglip2 import cli
from tests.test_cli import image_files  # noqa: F401  (fixture)
from tests.training.helpers import tiny_model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A tiny random NaFlex model saved as a preset, and its folder."""
    model = tiny_model(naflex=True, seed=4, locca=False)
    path = tmp_path_factory.mktemp("tiny") / "preset"
    model.save_to_preset(path)
    return model, str(path)


def test_unreadable_image_and_bad_data_with_a_model(tiny, image_files, tmp_path, capsys):
    _, preset = tiny
    (tmp_path / "broken.png").write_bytes(b"\x89PNG but not really")
    argv = ["zero-shot", str(tmp_path / "broken.png"), "--labels", "a,b", "--preset", preset]
    assert cli.main(argv) == 1
    assert "Could not read" in capsys.readouterr().err
    empty = tmp_path / "classes"
    (empty / "cat").mkdir(parents=True)
    assert cli.main(["eval", "zero-shot", str(empty), "--preset", preset]) == 1
    assert "No images found in class subfolders" in capsys.readouterr().err
    (empty / "cat" / "0.png").write_bytes((image_files / "0.png").read_bytes())
    argv = ["eval", "zero-shot", str(empty), "--classes", "cat,dog", "--preset", preset]
    assert cli.main(argv) == 1
    assert "do not match the subfolders" in capsys.readouterr().err
    assert cli.main(["export", str(image_files), "--preset", preset]) == 1
    assert "not an empty folder" in capsys.readouterr().err


def test_embed_writes_npy_and_parquet(tiny, image_files, tmp_path, capsys):
    import pyarrow.parquet as pq

    model, preset = tiny
    assert cli.main(["embed", str(image_files), "--output", str(tmp_path / "i.npy"), "--preset", preset]) == 0
    paths = sorted(str(p) for p in image_files.glob("*.png"))
    np.testing.assert_allclose(np.load(tmp_path / "i.npy"), model.embed_images(paths), atol=1e-6)
    texts = ["a red circle", "zwei blaue sterne"]
    argv = ["embed", "--texts", *texts, "--output", str(tmp_path / "t.parquet"), "--preset", preset]
    assert cli.main(argv) == 0
    assert "Wrote 2 embeddings of size 32" in capsys.readouterr().out
    table = pq.read_table(tmp_path / "t.parquet").to_pydict()
    assert table["input"] == texts
    np.testing.assert_allclose(np.array(table["embedding"]), model.embed_texts(texts), atol=1e-6)


def test_zero_shot_table_output(tiny, image_files, capsys):
    _, preset = tiny
    argv = ["zero-shot", str(image_files / "0.png"), str(image_files / "1.png")]
    assert cli.main([*argv, "--labels", "red circle,blue star", "--preset", preset]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("0.png") and "(next: " in lines[0]


def test_train_from_a_config_and_resume(tmp_path, capsys):
    config = {
        "model": "tiny-naflex", "data": "demo:64", "steps": 4, "batch_size": 8,
        "steps_per_checkpoint": 2, "output_dir": "run", "learning_rate": 1e-3, "locca": False,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert cli.main(["train", str(tmp_path / "config.json")]) == 0
    history = (tmp_path / "run" / "history.csv").read_text().splitlines()
    assert len(history) == 3 and "sigmoid_loss" in history[0]
    from keras_siglip2 import SigLIP2

    model = SigLIP2.from_preset(tmp_path / "run" / "preset")
    assert model.backbone.naflex and not model.locca
    # A second run finds the finished checkpoint and trains no further.
    assert cli.main(["train", str(tmp_path / "config.json")]) == 0
    assert (tmp_path / "run" / "history.csv").read_text().splitlines() == history

    (tmp_path / "bad.json").write_text(json.dumps({"model": "tiny", "steps": 0}))
    assert cli.main(["train", str(tmp_path / "bad.json")]) == 1
    assert "missing keys ['data', 'batch_size', 'output_dir']" in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{not json")
    assert cli.main(["train", str(tmp_path / "bad.json")]) == 1
    assert "not valid JSON" in capsys.readouterr().err
