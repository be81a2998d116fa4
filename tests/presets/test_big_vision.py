"""big_vision `.npz` checkpoints (per-layer and stacked, fixed and NaFlex) → `from_preset`."""

import pickle
import zipfile

import numpy as np
import pytest

from keras_siglip2 import SigLIP2Backbone
from keras_siglip2.presets import NpzReader, config_from_big_vision, locate_preset
from tests.presets import checkpoints

TOLERANCE = 1e-5


@pytest.mark.parametrize("naflex", [False, True], ids=["fixed", "naflex"])
@pytest.mark.parametrize("stacked", [False, True], ids=["per_layer", "stacked"])
def test_npz_matches_the_transformers_model_it_was_made_from(tmp_path, rng, naflex, stacked):
    reference = checkpoints.transformers_model(naflex, seed=1)
    params = checkpoints.big_vision_params(reference, stacked=stacked)
    assert any("/encoderblock/" in k for k in params) == stacked
    path = tmp_path / "siglip2.npz"
    np.savez(path, **params)

    assert locate_preset(str(path)).format == "big_vision"
    ours = SigLIP2Backbone.from_preset(str(path))
    assert ours.naflex == naflex

    batch = checkpoints.inputs(rng, naflex)
    errors = checkpoints.max_errors(ours(batch), checkpoints.transformers_outputs(reference, batch))
    print("big_vision npz → ours", "stacked" if stacked else "per-layer",
          "NaFlex" if naflex else "fixed", errors)
    assert max(errors.values()) <= TOLERANCE, errors


def test_compressed_stacked_npz_gives_the_same_weights(tmp_path):
    reference = checkpoints.transformers_model(naflex=False, seed=2)
    params = checkpoints.big_vision_params(reference, stacked=True)
    np.savez(tmp_path / "plain.npz", **params)
    np.savez_compressed(tmp_path / "packed.npz", **params)
    plain = SigLIP2Backbone.from_preset(str(tmp_path / "plain.npz"))
    packed = SigLIP2Backbone.from_preset(str(tmp_path / "packed.npz"))
    for a, b in zip(plain.weights, packed.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)


def test_uncompressed_members_are_memory_mapped_and_stacked_layers_sliced(tmp_path):
    params = checkpoints.big_vision_params(checkpoints.transformers_model(False), stacked=True)
    np.savez(tmp_path / "c.npz", **params)
    reader = NpzReader(str(tmp_path / "c.npz"))
    stacked = "params/img/Transformer/encoderblock/MlpBlock_0/Dense_0/kernel"
    layer = reader.get("params/img/Transformer/encoderblock_1/MlpBlock_0/Dense_0/kernel")
    assert isinstance(layer, np.memmap)  # a view into the file, not a read of all layers
    np.testing.assert_array_equal(layer, params[stacked][1])
    assert reader.shape("params/txt/Encoder_0/encoderblock_0/LayerNorm_0/scale") == (64,)
    with pytest.raises(KeyError):
        reader.get("params/img/Transformer/encoderblock_2/MlpBlock_0/Dense_0/kernel")


def test_config_is_inferred_from_shapes(tmp_path):
    params = checkpoints.big_vision_params(checkpoints.transformers_model(naflex=True))
    np.savez(tmp_path / "n.npz", **params)
    config = config_from_big_vision(NpzReader(str(tmp_path / "n.npz")))
    assert config["vision"] == dict(
        hidden_dim=64, num_layers=2, num_heads=4, intermediate_dim=128, patch_size=16,
        image_size=None, position_grid_size=4, max_num_patches=256,
    )
    assert config["text"] == dict(
        hidden_dim=64, num_layers=2, num_heads=4, intermediate_dim=128,
        vocabulary_size=1000, sequence_length=64, projection_dim=64,
    )


def test_so400m_patch14_grid_maps_back_to_its_384_resolution(tmp_path):
    # 384 // 14 = 27: a 27×27 position grid is the released 384 model, not 378.
    from keras_siglip2.presets.big_vision import _fixed_image_size

    assert _fixed_image_size(14, 27, 1152) == 384
    assert _fixed_image_size(16, 16, 768) == 256
    assert _fixed_image_size(8, 4, 64) == 32


def test_pickled_object_arrays_are_refused_before_unpickling(tmp_path):
    params = checkpoints.big_vision_params(checkpoints.transformers_model(False))
    params["params/extra"] = np.array([{"code": "would run on unpickling"}], dtype=object)
    np.savez(tmp_path / "p.npz", **params)  # np.savez pickles object arrays
    with pytest.raises(ValueError, match="pickled"):
        SigLIP2Backbone.from_preset(str(tmp_path / "p.npz"))


def test_a_pickle_disguised_as_npz_is_refused(tmp_path):
    with open(tmp_path / "model.npz", "wb") as f:
        pickle.dump({"params/t": np.zeros(1)}, f)
    with pytest.raises(ValueError, match="pickle"):
        SigLIP2Backbone.from_preset(str(tmp_path / "model.npz"))


def test_truncated_npz_gives_a_clear_error(tmp_path):
    params = checkpoints.big_vision_params(checkpoints.transformers_model(False))
    np.savez(tmp_path / "full.npz", **params)
    data = (tmp_path / "full.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated|not a NumPy"):
        SigLIP2Backbone.from_preset(str(tmp_path / "cut.npz"))


def test_member_names_escaping_the_archive_are_refused(tmp_path):
    with zipfile.ZipFile(tmp_path / "evil.npz", "w") as archive:
        with archive.open("../../etc/x.npy", "w") as f:
            np.lib.format.write_array(f, np.zeros(3, "float32"))
    with pytest.raises(ValueError, match="relative paths"):
        NpzReader(str(tmp_path / "evil.npz"))


def test_checkpoint_of_other_shapes_than_its_config_is_refused(tmp_path):
    params = checkpoints.big_vision_params(checkpoints.transformers_model(False))
    key = "params/txt/Encoder_0/encoderblock_1/MlpBlock_0/Dense_1/kernel"
    params[key] = params[key][:, :32]
    np.savez(tmp_path / "bad.npz", **params)
    with pytest.raises(ValueError, match="Dense_1/kernel.*shape"):
        SigLIP2Backbone.from_preset(str(tmp_path / "bad.npz"))


def test_missing_arrays_are_named(tmp_path):
    params = checkpoints.big_vision_params(checkpoints.transformers_model(False))
    del params["params/img/MAPHead_0/probe"]
    np.savez(tmp_path / "partial.npz", **params)
    with pytest.raises(ValueError, match="MAPHead_0/probe"):
        SigLIP2Backbone.from_preset(str(tmp_path / "partial.npz"))
