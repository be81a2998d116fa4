"""Reading presets saved by earlier versions of this package.

Before the attention projections became `EinsumDense` layers (for LoRA and
quantization), each `MultiHeadAttention` held eight variables of its own:
`query_kernel`, `query_bias`, `key_kernel`, `key_bias`, `value_kernel`,
`value_bias`, `output_kernel`, `output_bias`. Now they are the `kernel` and
`bias` of its `query`, `key`, `value` and `attention_output` layers. The values
and shapes are unchanged; only where they are stored moved.
"""

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile

_LEGACY_PATH = re.compile(r"^(.*attention)/(query|key|value|output)_(kernel|bias)$")
_PROJECTIONS = {"query": "query", "key": "key", "value": "value", "output": "attention_output"}
# The order of the old layer's own variables in a `.weights.h5` group.
_LEGACY_ORDER = ("query", "key", "value", "attention_output")


def upgrade_variable_path(path):
    """A variable path of an earlier version → today's (others unchanged):
    `…/attention/query_kernel` → `…/attention/query/kernel`."""
    match = _LEGACY_PATH.match(path)
    if not match:
        return path
    prefix, projection, kind = match.groups()
    return f"{prefix}/{_PROJECTIONS[projection]}/{kind}"


def _legacy_attention_groups(h5_file):
    """`{group path: [variable indices]}` of the attention groups of an h5
    file (or shard) that still hold variables of their own."""
    found = {}

    def visit(name, item):
        if name.endswith("attention/vars") and len(item):
            found[name[: -len("/vars")]] = sorted(int(key) for key in item)

    h5_file.visititems(visit)
    return found


def _upgrade_file(path):
    """Move the legacy attention variables of one h5 file in place →
    `{old "/…/attention/vars": {new "/…/<projection>/vars", ...}}`."""
    import h5py

    moved = {}
    with h5py.File(path, "r+") as weights:
        for group, indices in _legacy_attention_groups(weights).items():
            targets = moved.setdefault(f"/{group}/vars", set())
            for index in indices:
                projection = _LEGACY_ORDER[index // 2]
                target = weights.require_group(f"{group}/{projection}/vars")
                weights.move(f"{group}/vars/{index}", f"{target.name}/{index % 2}")
                targets.add(f"{target.name}")
    return moved


@contextlib.contextmanager
def upgraded_keras_weights(path):
    """Context: `path` of a `.weights.h5` file (or a sharded `.weights.json`
    index) as it is, or, when the weights were written before the attention
    projections became layers, an upgraded copy in a temporary directory that
    is removed on exit. The user's files are never changed."""
    directory = tempfile.mkdtemp(prefix="siglip2_upgrade_")
    try:
        yield _upgrade_into(path, directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _upgrade_into(path, directory):
    """`path` unchanged when nothing is legacy, else the path of its upgraded
    copy (every shard, and the index) in `directory`."""
    import h5py

    index = None
    if path.endswith(".json"):
        with open(path, encoding="utf-8") as f:
            index = json.load(f)
        shards = sorted({name for value in index["weight_map"].values()
                         for name in (value if isinstance(value, list) else [value])})
        files = [os.path.join(os.path.dirname(path), name) for name in shards]
    else:
        files = [path]
    legacy = False
    for file in files:
        with h5py.File(file, "r") as weights:
            legacy = legacy or bool(_legacy_attention_groups(weights))
    if not legacy:
        return path
    logging.getLogger(__name__).warning(
        "%s was saved by an earlier keras-siglip2 (attention variables of the "
        "layer itself); loading an upgraded copy. Save the model again with "
        "`save_to_preset` to skip this copy next time.", path,
    )
    for file in files:
        copy = os.path.join(directory, os.path.basename(file))
        shutil.copyfile(file, copy)
        for old, new_groups in _upgrade_file(copy).items():
            if index is not None:
                names = index["weight_map"].get(old)
                for group in new_groups:
                    index["weight_map"][group] = names
    upgraded = os.path.join(directory, os.path.basename(path))
    if index is not None:
        with open(upgraded, "w", encoding="utf-8") as f:
            json.dump(index, f)
    return upgraded
