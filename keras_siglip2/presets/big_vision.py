"""big_vision `.npz` checkpoints (the original JAX release) → our backbone.

Parameter names (flattened with "/"), as written by big_vision's two-tower
SigLIP models:

  params/img/embedding/{kernel,bias}        conv (P, P, 3, D) fixed-res, or
                                            Dense (P·P·3, D) NaFlex
  params/img/pos_embedding                  (1, N, D) fixed-res, (G, G, D) NaFlex
  params/img/Transformer/encoderblock_{i}/  LayerNorm_0, MultiHeadDotProductAttention_0
                                            ({query,key,value,out}/{kernel,bias}),
                                            LayerNorm_1, MlpBlock_0/Dense_{0,1}
  params/img/Transformer/encoder_norm
  params/img/MAPHead_0/{probe, MultiHeadDotProductAttention_0, LayerNorm_0, MlpBlock_0}
  params/txt/Embed_0/embedding, params/txt/pos_embedding (1, L, D)
  params/txt/Encoder_0/encoderblock_{i}/..., params/txt/Encoder_0/encoder_norm
  params/txt/head/{kernel,bias}
  params/t, params/b                        (1,) log temperature and bias

Models trained with `scan=True` store every block under one `encoderblock`
prefix with a leading depth axis; both layouts are read. Attention kernels are
(D, H, D/H), output (H, D/H, D) — our layout, so only reshapes are needed.

`NpzReader` never unpickles: member headers are checked (object dtypes are
refused) before any data is read, and uncompressed members are memory-mapped
so a stacked (depth, ...) array is sliced without reading all of it.
"""

import math
import re
import zipfile
import zlib

import numpy as np

from keras_siglip2 import configs
from keras_siglip2.presets.hubs import safe_relative_path

_LOCAL_HEADER = 30  # bytes of a zip local file header before name and extra
_BLOCK = re.compile(r"^(.*)/encoderblock_(\d+)/(.*)$")


def _pickle_error(path, detail):
    return ValueError(
        f"{path} holds pickled Python objects ({detail}). Pickled checkpoints are "
        "refused because unpickling can run arbitrary code; save the parameters "
        "as plain arrays (`np.savez(path, **flat_params)`)."
    )


def _read_header(stream):
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(stream)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(stream)
    return np.lib.format._read_array_header(stream, version)  # (3, 0): utf-8 names


class NpzReader:
    """Read-only access to the arrays of a `.npz` file, one at a time.

    `shape(key)` reads only headers; `get(key)` reads one array (a slice of
    a memory map when the member is stored uncompressed). Keys are the member
    names without `.npy`. Per-layer names `.../encoderblock_{i}/...` are also
    served from a stacked `.../encoderblock/...` array.
    """

    def __init__(self, path):
        self.path = path
        if not zipfile.is_zipfile(path):
            with open(path, "rb") as f:
                start = f.read(2)
            if start[:1] == b"\x80":
                raise _pickle_error(path, "the file is a pickle, not a .npz archive")
            raise ValueError(f"{path} is not a NumPy .npz archive (not a zip file).")
        try:
            self._zip = zipfile.ZipFile(path)
            self._members = {}
            for info in self._zip.infolist():
                self._add_member(info)
        except (zipfile.BadZipFile, EOFError, OSError) as error:
            raise ValueError(f"{path} is a corrupt or truncated .npz archive: {error}") from error
        self._cache_key, self._cache_value = None, None

    def _add_member(self, info):
        if info.is_dir():
            return
        name = safe_relative_path(info.filename)
        if not name.endswith(".npy"):
            raise ValueError(f"{self.path}: unexpected member {name!r} (not a .npy array).")
        if info.flag_bits & 0x1:
            raise ValueError(f"{self.path}: member {name!r} is encrypted.")
        with self._zip.open(info) as stream:
            try:
                shape, fortran, dtype = _read_header(stream)
            except ValueError as error:
                raise ValueError(f"{self.path}: member {name!r} has no valid .npy header: {error}")
            header_size = stream.tell()
        if dtype.hasobject:
            raise _pickle_error(self.path, f"member {name!r} has dtype {dtype}")
        nbytes = math.prod(shape) * dtype.itemsize
        if info.file_size != header_size + nbytes:
            raise ValueError(
                f"{self.path}: member {name!r} holds {info.file_size - header_size} data bytes "
                f"but its header promises {nbytes} (corrupt archive)."
            )
        self._members[name[: -len(".npy")]] = (info, tuple(shape), fortran, dtype, header_size)

    def keys(self):
        return set(self._members)

    def _storage(self, key):
        """(member key, layer index or None) that holds `key`."""
        if key in self._members:
            return key, None
        match = _BLOCK.match(key)
        if match:
            stacked = f"{match.group(1)}/encoderblock/{match.group(3)}"
            layer = int(match.group(2))
            shape = self._members[stacked][1] if stacked in self._members else ()
            if shape and layer < shape[0]:
                return stacked, layer
        raise KeyError(key)

    def storage_key(self, key):
        try:
            return self._storage(key)[0]
        except KeyError:
            return key

    def shape(self, key):
        member, layer = self._storage(key)
        shape = self._members[member][1]
        return shape if layer is None else shape[1:]

    def _read_member(self, member):
        info, shape, fortran, dtype, header_size = self._members[member]
        order = "F" if fortran else "C"
        if info.compress_type == zipfile.ZIP_STORED:
            with open(self.path, "rb") as f:
                f.seek(info.header_offset)
                local = f.read(_LOCAL_HEADER)
            if local[:4] != b"PK\x03\x04":
                raise ValueError(f"{self.path}: bad local header for {member!r} (corrupt archive).")
            name_length = int.from_bytes(local[26:28], "little")
            extra_length = int.from_bytes(local[28:30], "little")
            offset = info.header_offset + _LOCAL_HEADER + name_length + extra_length + header_size
            if not shape or math.prod(shape) == 0:
                return np.zeros(shape, dtype)
            return np.memmap(self.path, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)
        with self._zip.open(info) as stream:  # compressed: read this one member
            stream.read(header_size)
            data = stream.read()
        if len(data) != math.prod(shape) * dtype.itemsize:
            raise ValueError(f"{self.path}: member {member!r} is truncated.")
        return np.frombuffer(data, dtype=dtype).reshape(shape, order=order)

    def get(self, key):
        member, layer = self._storage(key)
        if member == self._cache_key:
            array = self._cache_value
        else:
            try:
                array = self._read_member(member)
            except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as error:
                raise ValueError(f"{self.path}: cannot read {member!r}: {error}") from error
            if not isinstance(array, np.memmap):
                # A decompressed member: keep it for the next layer's slice.
                self._cache_key, self._cache_value = member, array
        if layer is not None:
            array = array[layer]
        return _to_standard_dtype(array)

    def close(self):
        self._cache_key, self._cache_value = None, None
        self._zip.close()


def _to_standard_dtype(array):
    if array.dtype.kind == "V" and array.dtype.itemsize == 2:  # bfloat16 saved as raw bytes
        import ml_dtypes

        return array.view(ml_dtypes.bfloat16)
    return array


# ----------------------------------------------------------------------------
# Config inference from shapes.

IMG, TXT = "params/img", "params/txt"


def _depth(reader, prefix):
    stacked = f"{prefix}/encoderblock/LayerNorm_0/scale"
    if stacked in reader.keys():
        return reader.shape(stacked)[0]
    depth = 0
    while f"{prefix}/encoderblock_{depth}/LayerNorm_0/scale" in reader.keys():
        depth += 1
    return depth


def _trunk(reader, prefix):
    depth = _depth(reader, prefix)
    if depth == 0:
        raise ValueError(f"{reader.path}: no transformer blocks under {prefix!r}.")
    block = f"{prefix}/encoderblock_0"
    width, heads, _ = reader.shape(f"{block}/MultiHeadDotProductAttention_0/query/kernel")
    return dict(
        hidden_dim=width,
        num_layers=depth,
        num_heads=heads,
        intermediate_dim=reader.shape(f"{block}/MlpBlock_0/Dense_0/kernel")[1],
    )


def _fixed_image_size(patch_size, grid, width):
    """Resolution of a released checkpoint with this grid, else grid·patch
    (So400m/14 at 384 has a 27×27 grid: 384 // 14 = 27)."""
    for facts in configs.CHECKPOINTS.values():
        res = facts["image_size"]
        if (
            res is not None
            and facts["patch_size"] == patch_size
            and res // patch_size == grid
            and configs.VARIANTS[facts["image_variant"]]["hidden_dim"] == width
        ):
            return res
    return grid * patch_size


def config_from_big_vision(reader, max_num_patches=configs.NAFLEX_DEFAULT_MAX_PATCHES):
    """Our backbone config, inferred from the array shapes of a big_vision checkpoint."""
    keys = reader.keys()
    required = [f"{IMG}/embedding/kernel", f"{IMG}/pos_embedding", f"{TXT}/Embed_0/embedding",
                f"{TXT}/pos_embedding", f"{TXT}/head/kernel"]
    absent = [k for k in required if k not in keys]
    if absent:
        raise ValueError(
            f"{reader.path} is not a big_vision SigLIP two-tower checkpoint: missing "
            f"{absent[:3]}. Found keys like {sorted(keys)[:3]}."
        )
    vision = _trunk(reader, f"{IMG}/Transformer")
    kernel = reader.shape(f"{IMG}/embedding/kernel")
    positions = reader.shape(f"{IMG}/pos_embedding")
    if len(kernel) == 4:  # conv: fixed resolution
        patch = kernel[0]
        grid = math.isqrt(positions[1])
        if len(positions) != 3 or grid * grid != positions[1]:
            raise ValueError(f"{reader.path}: pos_embedding {positions} is not a square grid.")
        vision.update(patch_size=patch, image_size=_fixed_image_size(patch, grid, vision["hidden_dim"]))
    elif len(kernel) == 2:  # Dense over flattened patches: NaFlex
        patch = math.isqrt(kernel[0] // 3)
        if patch * patch * 3 != kernel[0] or len(positions) != 3 or positions[0] != positions[1]:
            raise ValueError(f"{reader.path}: unexpected NaFlex shapes {kernel}, {positions}.")
        vision.update(
            patch_size=patch,
            image_size=None,
            position_grid_size=positions[0],
            max_num_patches=max_num_patches,
        )
    else:
        raise ValueError(f"{reader.path}: unexpected patch embedding shape {kernel}.")

    text = _trunk(reader, f"{TXT}/Encoder_0")
    vocabulary, width = reader.shape(f"{TXT}/Embed_0/embedding")
    text.update(
        vocabulary_size=vocabulary,
        sequence_length=reader.shape(f"{TXT}/pos_embedding")[1],
        projection_dim=reader.shape(f"{TXT}/head/kernel")[1],
    )
    return {"vision": vision, "text": text}


# ----------------------------------------------------------------------------
# Weight map.


def _squeeze_to(shape):
    """Drop/merge leading axes, e.g. (1, N, D) → (N, D), conv (P, P, 3, D) → (P·P·3, D)."""

    def reshape(array):
        if array.size != math.prod(shape):
            raise ValueError(f"a tensor of shape {array.shape} cannot fill shape {shape}")
        return array.reshape(shape)

    return reshape


def _attention(attention, prefix):
    entries = []
    pairs = (("query", "query"), ("key", "key"), ("value", "value"), ("attention_output", "out"))
    for ours, theirs in pairs:
        layer = getattr(attention, ours)
        entries += [
            (layer.kernel, f"{prefix}/{theirs}/kernel", None),
            (layer.bias, f"{prefix}/{theirs}/bias", None),
        ]
    return entries


def _norm(norm, prefix):
    return [(norm.gamma, f"{prefix}/scale", None), (norm.beta, f"{prefix}/bias", None)]


def _mlp(mlp, prefix):
    return [
        (mlp.fc1.kernel, f"{prefix}/Dense_0/kernel", None),
        (mlp.fc1.bias, f"{prefix}/Dense_0/bias", None),
        (mlp.fc2.kernel, f"{prefix}/Dense_1/kernel", None),
        (mlp.fc2.bias, f"{prefix}/Dense_1/bias", None),
    ]


def _blocks(blocks, prefix):
    entries = []
    for i, block in enumerate(blocks):
        p = f"{prefix}/encoderblock_{i}"
        entries += _norm(block.attention_norm, f"{p}/LayerNorm_0")
        entries += _attention(block.attention, f"{p}/MultiHeadDotProductAttention_0")
        entries += _norm(block.mlp_norm, f"{p}/LayerNorm_1")
        entries += _mlp(block.mlp, f"{p}/MlpBlock_0")
    return entries


def big_vision_weight_map(backbone):
    """List of `(our variable, big_vision parameter name, transform or None)`."""
    vision, text = backbone.vision_encoder, backbone.text_encoder
    patch = vision.patch_embedding.kernel
    positions = vision.position_embedding.embeddings
    entries = [
        (backbone.logit_head.log_temperature, "params/t", _squeeze_to(())),
        (backbone.logit_head.bias, "params/b", _squeeze_to(())),
        (patch, f"{IMG}/embedding/kernel", _squeeze_to(tuple(patch.shape))),
        (vision.patch_embedding.bias, f"{IMG}/embedding/bias", None),
        (positions, f"{IMG}/pos_embedding", _squeeze_to(tuple(positions.shape))),
    ]
    entries += _blocks(vision.encoder_blocks, f"{IMG}/Transformer")
    entries += _norm(vision.final_norm, f"{IMG}/Transformer/encoder_norm")
    head = vision.pooling
    entries += [(head.probe, f"{IMG}/MAPHead_0/probe", None)]
    entries += _attention(head.attention, f"{IMG}/MAPHead_0/MultiHeadDotProductAttention_0")
    entries += _norm(head.norm, f"{IMG}/MAPHead_0/LayerNorm_0")
    entries += _mlp(head.mlp, f"{IMG}/MAPHead_0/MlpBlock_0")

    text_positions = text.embedding.position_embeddings
    entries += [
        (text.embedding.token_embeddings, f"{TXT}/Embed_0/embedding", None),
        (text_positions, f"{TXT}/pos_embedding", _squeeze_to(tuple(text_positions.shape))),
    ]
    entries += _blocks(text.encoder_blocks, f"{TXT}/Encoder_0")
    entries += _norm(text.final_norm, f"{TXT}/Encoder_0/encoder_norm")
    entries += [
        (text.head.kernel, f"{TXT}/head/kernel", None),
        (text.head.bias, f"{TXT}/head/bias", None),
    ]
    return entries


def unused_keys(reader, entries):
    """Checkpoint arrays that no entry reads (e.g. extra heads), for a warning."""
    used = {reader.storage_key(name) for _, name, _ in entries}
    return sorted(reader.keys() - used)
