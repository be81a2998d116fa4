"""Tensor-by-tensor reading of (sharded) safetensors checkpoints.

Files are opened with `safetensors.safe_open`, which parses only the header
and reads one tensor per `get_tensor` call. NumPy has no bfloat16, so those
tensors are read from the byte range the header gives and viewed as
`ml_dtypes.bfloat16`. Nothing here can execute code from the file.
"""

import json
import os
import struct

import numpy as np

from keras_siglip2.presets.hubs import safe_relative_path

SINGLE_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"


def _corrupt(path, error):
    return ValueError(
        f"{path} is not a readable safetensors file (corrupt or truncated download?): "
        f"{error}. Delete it from the cache and download it again."
    )


class _File:
    def __init__(self, path):
        from safetensors import safe_open

        self.path = path
        try:
            self.handle = safe_open(path, framework="numpy")
            self.keys = set(self.handle.keys())
        except Exception as error:  # SafetensorError is not exported portably
            raise _corrupt(path, error) from error
        self._header = None

    def _raw_header(self):
        if self._header is None:
            with open(self.path, "rb") as f:
                (length,) = struct.unpack("<Q", f.read(8))
                self._header = (8 + length, json.loads(f.read(length)))
        return self._header

    def _read_bfloat16(self, name):
        import ml_dtypes

        start, header = self._raw_header()
        info = header[name]
        begin, end = info["data_offsets"]
        data = np.fromfile(self.path, dtype="<u2", count=(end - begin) // 2, offset=start + begin)
        return data.view(ml_dtypes.bfloat16).reshape(info["shape"])

    def get(self, name):
        try:
            return self.handle.get_tensor(name)
        except TypeError as error:  # "data type 'bfloat16' not understood"
            if "bfloat16" in str(error):
                return self._read_bfloat16(name)
            raise _corrupt(self.path, error) from error
        except Exception as error:
            raise _corrupt(self.path, error) from error


class SafetensorsReader:
    """`get(name)` → NumPy array from a single file or a sharded checkpoint.

    `fetch(filename)` returns the local path of a file of the checkpoint
    (downloading it if needed); shards are opened on first use.
    """

    def __init__(self, fetch, label):
        self.label = label
        self._fetch = fetch
        self._files = {}
        # An offline hub cannot tell "no index" from "index not cached": then
        # the single file decides, and the download error is kept for the message.
        index_error = None
        try:
            index_path = fetch(INDEX_FILE)
        except FileNotFoundError:
            index_path = None
        except OSError as error:
            index_path, index_error = None, error
        if index_path is not None:
            try:
                with open(index_path, encoding="utf-8") as f:
                    weight_map = json.load(f)["weight_map"]
            except (ValueError, KeyError, TypeError) as error:
                raise ValueError(f"{index_path} is not a valid safetensors index: {error}") from error
            self._shard_of = {name: safe_relative_path(shard) for name, shard in weight_map.items()}
        else:
            try:
                fetch(SINGLE_FILE)
            except FileNotFoundError:
                if index_error is not None:
                    raise index_error from None
                raise FileNotFoundError(
                    f"{label} has neither {SINGLE_FILE} nor {INDEX_FILE}."
                ) from None
            except OSError:
                if index_error is not None:
                    raise index_error from None
                raise
            self._shard_of = None
            self._open(SINGLE_FILE)

    def _open(self, filename):
        if filename not in self._files:
            self._files[filename] = _File(self._fetch(filename))
        return self._files[filename]

    def keys(self):
        if self._shard_of is not None:
            return set(self._shard_of)
        return set(self._files[SINGLE_FILE].keys)

    def get(self, name):
        filename = SINGLE_FILE if self._shard_of is None else self._shard_of.get(name)
        if filename is None:
            raise KeyError(name)
        file = self._open(filename)
        if name not in file.keys:
            if self._shard_of is not None:
                raise ValueError(
                    f"{INDEX_FILE} of {self.label} maps {name!r} to {filename}, which lacks it."
                )
            raise KeyError(name)
        return file.get(name)

    def close(self):
        self._files.clear()


def local_fetch(directory):
    """A `fetch` for checkpoint files in a local directory."""

    def fetch(filename):
        path = os.path.join(directory, safe_relative_path(filename))
        if not os.path.isfile(path):
            raise FileNotFoundError(path)
        return path

    return fetch
