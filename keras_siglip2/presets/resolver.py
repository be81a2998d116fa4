"""Where a preset lives and in which format: `locate_preset(preset) -> Preset`.

Accepted identifiers:

* a released checkpoint name or alias (`"so400m"`, `"b16-naflex"`,
  `"siglip2_base_patch16_224"`): the keras-hub preset on Kaggle where one
  exists, else the Hugging Face repo `google/siglip2-*`;
* `kaggle://owner/model/framework/variation[/version]`, `hf://org/name[@rev]`;
* a local directory: our preset (`save_to_preset`), a keras-hub SigLIP
  preset, or a Hugging Face checkpoint (`config.json` + safetensors);
* a local big_vision `.npz` file.

Formats: `"keras"` (ours, or any Keras preset: the loader checks its class),
`"keras_hub"` (keras-hub SigLIP), `"transformers"`, `"big_vision"`.
Remote files are fetched lazily through `Preset.file`, cache first.
"""

import dataclasses
import json
import os
import warnings
from typing import Optional

from keras_siglip2 import configs
from keras_siglip2.presets.hubs import (
    HubFileNotFoundError,
    HuggingFaceFiles,
    KaggleFiles,
    PresetDownloadError,
    hf_cache_dir,
    kaggle_cache_dir,
    safe_relative_path,
)
from keras_siglip2.presets.keras_hub_siglip import is_keras_hub_siglip

CONFIG_FILE = "config.json"
KERAS_WEIGHTS_FILE = "model.weights.h5"
KERAS_SHARDED_WEIGHTS_FILE = "model.weights.json"
# SentencePiece model location per format (keras-hub's SentencePieceTokenizer
# saves `assets/tokenizer/vocabulary.spm`; Hugging Face repos `tokenizer.model`).
TOKENIZER_FILES = {
    "keras": "assets/tokenizer/vocabulary.spm",
    "keras_hub": "assets/tokenizer/vocabulary.spm",
    "transformers": "tokenizer.model",
}
FORMATS = ("keras", "keras_hub", "transformers", "big_vision")


@dataclasses.dataclass
class Preset:
    """A located preset.

    Attributes:
      format: "keras" (ours), "keras_hub", "transformers" or "big_vision".
      path: local directory holding the preset's files (for big_vision, the
        `.npz` file). For a remote preset, files appear here as fetched.
      source: what was loaded, as a handle or local path (for messages).
      name: the released checkpoint name when an alias/name was given.
      config: the parsed `config.json` (None for big_vision).
      hub: for a remote preset, the `KaggleFiles` / `HuggingFaceFiles` that
        fetches its files (cache first).
    """

    format: str
    path: str
    source: str
    name: Optional[str] = None
    config: Optional[dict] = None
    hub: Optional[object] = dataclasses.field(default=None, repr=False)

    def file(self, filename, required=True):
        """Local path of a file of this preset (downloaded if remote).

        With `required=False`, None when the preset has no such file — or,
        with a warning, when it cannot be downloaded now (offline). A file
        that cannot be read as what its name says is a `ValueError` naming it
        (`check_readable`), whether required or not.
        """
        filename = safe_relative_path(filename)
        try:
            if self.hub is not None:
                try:
                    return check_readable(self.hub.fetch(filename))
                except PresetDownloadError as error:
                    if required:
                        raise _download_error(self.source, [(self.hub, error)], self.name) from None
                    raise
            base = self.path if os.path.isdir(self.path) else os.path.dirname(self.path)
            path = os.path.join(base, filename)
            if not os.path.isfile(path):
                raise FileNotFoundError(f"{self.source} has no file {filename!r}")
            return check_readable(path)
        except FileNotFoundError:
            if required:
                raise
            return None
        except PresetDownloadError as error:
            if required:
                raise
            warnings.warn(f"Optional file {filename!r} of {self.source} is unavailable: {error}")
            return None

    @property
    def tokenizer_file(self):
        """Path of the SentencePiece model shipped with the preset, or None."""
        name = TOKENIZER_FILES.get(self.format)
        return self.file(name, required=False) if name else None


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except ValueError as error:
        raise ValueError(
            f"{path} is not valid JSON (corrupt or truncated download?): {error}. "
            + _REMEDY
        ) from error


def _read_safetensors(path):
    from safetensors import safe_open

    with safe_open(path, framework="numpy") as f:
        f.keys()


def _read_hdf5(path):
    import h5py

    h5py.File(path, "r").close()


def _read_sentencepiece(path):
    import sentencepiece

    sentencepiece.SentencePieceProcessor(model_file=path)


_REMEDY = (
    "Download it again (from a hub: delete it from the cache first), or re-save the "
    "preset with `save_to_preset`."
)
# What each kind of preset file is read as, by suffix (nothing is executed).
_READERS = {
    ".json": ("JSON", _read_json),
    ".safetensors": ("safetensors", _read_safetensors),
    ".h5": ("HDF5 (Keras weights)", _read_hdf5),
    ".spm": ("SentencePiece model", _read_sentencepiece),
    ".model": ("SentencePiece model", _read_sentencepiece),
}


def check_readable(path):
    """`path`, after checking that it parses as what its suffix says (JSON,
    safetensors header, HDF5, SentencePiece); else a `ValueError` naming the
    file and what to do. Files of other kinds are returned unchecked."""
    kind, read = _READERS.get(os.path.splitext(path)[1], (None, None))
    if read is None:
        return path
    try:
        read(path)
    except Exception as error:  # the readers' own types: SafetensorError, OSError, ...
        if read is _read_json:
            raise  # it names the file and the remedy already
        raise _unreadable(path, kind, error) from error
    return path


def _unreadable(path, kind, error):
    return ValueError(
        f"{path} is not a readable {kind} file (corrupt or truncated download?): "
        f"{type(error).__name__}: {str(error)[:200].rstrip('. ')}. " + _REMEDY
    )


def format_of_config(config, source):
    """Which format a `config.json` belongs to; a clear error if none of ours."""
    if not isinstance(config, dict):
        raise ValueError(f"{source}: config.json does not hold a JSON object.")
    if config.get("registered_name") is not None:
        # Whether the class fits is checked where it is known: `load_backbone(cls, ...)`.
        return "keras_hub" if is_keras_hub_siglip(config) else "keras"
    model_type = config.get("model_type")
    if model_type in ("siglip", "siglip2"):
        return "transformers"
    if model_type is not None:
        raise ValueError(
            f"{source} is a Hugging Face checkpoint of model_type {model_type!r}; "
            "expected 'siglip' (fixed resolution) or 'siglip2' (NaFlex)."
        )
    raise ValueError(f"{source}: config.json is neither a Keras preset nor a transformers config.")


def _is_npz(path):
    return os.path.isfile(path) and (path.endswith(".npz") or not path.endswith(".json"))


def _locate_local(path):
    path = os.path.abspath(os.path.expanduser(path))
    if os.path.isdir(path):
        config_path = os.path.join(path, CONFIG_FILE)
        if os.path.isfile(config_path):
            config = _read_json(config_path)
            return Preset(format_of_config(config, path), path, path, config=config)
        npz = sorted(f for f in os.listdir(path) if f.endswith(".npz"))
        if len(npz) == 1:
            return Preset("big_vision", os.path.join(path, npz[0]), path)
        raise ValueError(
            f"{path} holds no config.json (nor exactly one big_vision .npz): it is not a "
            "Keras, keras-hub or Hugging Face preset directory."
        )
    if path.endswith(".safetensors"):
        raise ValueError(
            f"{path}: pass the directory holding this file and its config.json, not the file."
        )
    if _is_npz(path):
        return Preset("big_vision", path, path)
    raise ValueError(f"{path} is not a preset directory or a big_vision .npz file.")


def _locate_remote(hub, name=None):
    config_path = hub.fetch(CONFIG_FILE)
    config = _read_json(config_path)
    return Preset(
        format_of_config(config, hub.describe()),
        os.path.dirname(config_path),
        hub.describe(),
        name=name,
        config=config,
        hub=hub,
    )


def _download_error(preset, attempts, name=None):
    label = f"{preset!r}" + (f" ({name})" if name and name != preset else "")
    lines = [f"Could not fetch the SigLIP 2 preset {label}:"]
    for hub, error in attempts:
        lines.append(f"  - {hub.describe()}: {error}  [cache: {hub.cache_dir()}]")
    lines.append(
        "To use it offline, download it once where the internet is reachable (the "
        "cache directories above can be copied, or set KAGGLEHUB_CACHE / HF_HUB_CACHE):"
    )
    lines += [f"    {hub.download_hint()}" for hub, _ in attempts]
    lines.append(
        "or pass a local path (a preset directory, a Hugging Face checkpoint directory "
        "or a big_vision .npz). `from_preset(..., load_weights=False)` builds the "
        "architecture without any download."
    )
    return PresetDownloadError("\n".join(lines))


def hubs_for(name):
    """The hubs to try for a released checkpoint, in order."""
    facts = configs.CHECKPOINTS[name]
    hubs = []
    if facts.get("kaggle_handle"):
        hubs.append(KaggleFiles(facts["kaggle_handle"]))
    if facts.get("hf_repo"):
        hubs.append(HuggingFaceFiles(facts["hf_repo"]))
    return hubs


def locate_preset(preset):
    """Locate `preset` (see module doc) and tell its format → `Preset`.

    Raises:
      ValueError: unknown name (with close matches), unsupported directory or file.
      FileNotFoundError: a path-like identifier that does not exist.
      PresetDownloadError: every hub failed (offline, not found); the message
        names each source tried, its cache directory and how to pre-download.
    """
    if isinstance(preset, Preset):
        return preset
    if isinstance(preset, os.PathLike):
        preset = os.fspath(preset)
    if not isinstance(preset, str):
        raise TypeError(f"A preset is a name, handle or path string; got {type(preset).__name__}.")
    if os.path.exists(os.path.expanduser(preset)):
        return _locate_local(preset)
    scheme, sep, _ = preset.partition("://")
    if sep:
        if scheme.lower() == "kaggle":
            hub = KaggleFiles(preset)
        elif scheme.lower() == "hf":
            hub = HuggingFaceFiles(preset)
        else:
            raise ValueError(
                f"Unsupported preset scheme {scheme + '://'!r} in {preset!r}; use kaggle://, "
                "hf://, a local path or a preset name."
            )
        try:
            return _locate_remote(hub)
        except (PresetDownloadError, HubFileNotFoundError) as error:
            raise _download_error(preset, [(hub, error)]) from None
    try:
        name = configs.resolve_name(preset)
    except ValueError:
        looks_like_path = any(c in preset for c in "/\\") or preset.endswith((".npz", ".json"))
        if looks_like_path:
            raise FileNotFoundError(f"No such preset file or directory: {preset!r}.") from None
        raise
    attempts = []
    for hub in hubs_for(name):
        try:
            return _locate_remote(hub, name=name)
        except (PresetDownloadError, HubFileNotFoundError) as error:
            attempts.append((hub, error))
    raise _download_error(preset, attempts, name=name)


def cache_directories():
    """The hub caches presets are downloaded into: {"kaggle": ..., "huggingface": ...}."""
    return {"kaggle": kaggle_cache_dir(), "huggingface": hf_cache_dir()}
